"""Test suites that other packages can run: subclass a base class to check an extension.

:mod:`daskloc.testing.stores` holds :class:`~daskloc.testing.stores.StoreTests`, the
conformance suite of feature stores (pytest).
"""
