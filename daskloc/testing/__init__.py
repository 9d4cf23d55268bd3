"""Conformance suites and helpers for testing daskloc extensions.

:mod:`daskloc.testing.readers`
    ``ReaderTests``, the test base class every video reader's tests subclass (built-in
    or registered through the ``daskloc.readers`` entry point group), and
    ``count_chunk_reads``, which counts the chunk tasks of arrays opened meanwhile.

These modules import pytest; they are meant to be imported by test suites only.
"""
