"""Conformance suites and helpers for testing daskloc extensions: subclass a base class
to check an extension.

:mod:`daskloc.testing.readers`
    ``ReaderTests``, the test base class every video reader's tests subclass (built-in
    or registered through the ``daskloc.readers`` entry point group), and
    ``count_chunk_reads``, which counts the chunk tasks of arrays opened meanwhile.
:mod:`daskloc.testing.stores`
    ``StoreTests``, the conformance suite of feature stores (built-in or registered
    through the ``daskloc.stores`` entry point group).

These modules import pytest; they are meant to be imported by test suites only.
"""
