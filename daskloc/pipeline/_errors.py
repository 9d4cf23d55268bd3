"""Errors of a batch: storage failures explained (an OSError naming the store, the
problem and the fix; SQLite's own messages too), chunks that could not be decoded.
"""

from __future__ import annotations

import os


def _storage_error(store, what, exc):
    """``exc``, raised while writing ``what`` to ``store``, as an OSError naming the store,
    the problem and the fix; None if ``exc`` is not the storage refusing a write.

    Storage failures are OSErrors, and database errors saying the disk is full or the
    database is read-only (SQLite's own messages)."""
    import errno

    detail = getattr(exc, "orig", None) or exc  # a database driver's error, unwrapped
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:
        text = str(detail).lower()
        if "disk is full" in text or "no space left" in text:
            code = errno.ENOSPC
        elif "readonly database" in text or "read-only file system" in text:
            code = errno.EROFS
        elif not isinstance(exc, OSError):
            return None
    problem = os.strerror(code) if code is not None else (str(detail) or type(exc).__name__)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free space there, or choose another output (CLI: --out)"
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = ("make it writable again (permissions, a read-only mount, an immutable "
               "attribute), or choose another output (CLI: --out)")
    else:
        fix = "check the storage, or choose another output (CLI: --out)"
    message = (
        f"cannot write {what} to the feature store at {store.url}: {problem}; {fix}. "
        "The complete chunks are kept: rerun the same command to resume from them"
    )
    kind = PermissionError if code in (errno.EACCES, errno.EPERM) else OSError
    return kind(code, message) if code is not None else kind(message)


def _append_chunk(store, start, stop, features, chunk_id, skipped=()):
    """``store.append_chunk``; a storage failure (a full disk, no permission) is raised
    as an OSError of the same kind naming the store, the problem and the fix."""
    try:
        store.append_chunk(start, stop, features, chunk_id=chunk_id, skipped=skipped)
    except Exception as exc:
        err = _storage_error(store, f"frames [{start}, {stop})", exc)
        if err is None:
            raise
        raise err from exc


def _write_metadata(store, metadata):
    """``store.write_metadata``, with storage failures explained as in :func:`_append_chunk`."""
    try:
        store.write_metadata(metadata)
    except Exception as exc:
        err = _storage_error(store, "the progress metadata", exc)
        if err is None:
            raise
        raise err from exc


def _frames_text(frames):
    shown = ", ".join(str(f) for f in frames[:10])
    return shown + (f", ... ({len(frames)} in all)" if len(frames) > 10 else "")


class UndecodableChunksError(ValueError):
    """Chunks of a video could not be decoded (damaged data); every other chunk was
    located and stored.

    Attributes
    ----------
    failed : dict
        ``{(start, stop): reason}`` of the chunks that failed (also in the store's
        metadata, ``failed_chunks``, and shown by ``daskloc info``).
    store : str
        The store's location.
    """

    def __init__(self, job):
        self.failed = dict(job.failed)
        self.store = job.store.url
        n, total = len(self.failed), len(job.planned)
        items = sorted(self.failed.items())
        listed = "; ".join(f"frames {a}..{b - 1}: {why}" for (a, b), why in items[:5])
        if n > 5:
            listed += f"; and {n - 5} more (daskloc info lists them)"
        held = ("" if not job.halted else
                f" (the chunks after the first failed one were not stored: a "
                f"{job.store.backend} store takes chunks in frame order)")
        super().__init__(
            f"{n} of {total} chunks could not be decoded ({listed}); {len(job.done)} chunks "
            f"are stored in {self.store}{held}. Rerun with on_error='skip' (CLI: "
            "--on-error skip) to locate every frame that can be decoded; the frames left "
            "out are listed in the store's metadata and by daskloc info"
        )

    def __reduce__(self):
        return (_rebuild_undecodable, (str(self), self.failed, self.store))


def _rebuild_undecodable(message, failed, store):
    exc = UndecodableChunksError.__new__(UndecodableChunksError)
    ValueError.__init__(exc, message)
    exc.failed, exc.store = failed, store
    return exc
