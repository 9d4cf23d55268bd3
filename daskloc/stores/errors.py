"""The errors a store raises when another process has it (one owner, imported by the
stores and their leases)."""

from __future__ import annotations

__all__ = ["StoreBusyError", "StoreInUseError"]


class StoreBusyError(RuntimeError):
    """The store cannot be used now because another process has it open.

    Raised by backends whose format cannot be read while it is written
    (``FeatureStore.live_reads`` is False), and as :class:`StoreInUseError` when a
    second writer finds the store leased; the message says what to do instead.
    """


class StoreInUseError(StoreBusyError):
    """Another writer holds the store's lease: one writer per store (see
    :meth:`FeatureStore.lease`). The message names the holder (host, process, since
    when, last heartbeat)."""
