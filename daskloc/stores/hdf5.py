"""HDF5 feature store: one pandas/PyTables table per result set, readable with plain pandas.

Layout of ``features.h5`` holding the result set ``table="bulk_water/features"``::

    /bulk_water/features/          group of the pandas key "bulk_water/features"
        table                      the features: a PyTables Table in pandas' "frame_table"
                                   format, one row per feature: index (int64, row number
                                   when written), y, x, mass, size, ecc, signal, raw_mass, ep
                                   (float64; positions in pixels) and frame (int64); every
                                   column is a pandas data column; Blosc/zstd level 5 plus
                                   HDF5 Fletcher32 checksums; rows sorted by frame
        _i_table/frame/            PyTables index of the frame column (medium, optlevel 6)
        daskloc_frames             PyTables Table of int64 frame, row_start, row_stop: one
                                   row per frame with features (its rows of table), in
                                   frame order
        daskloc_chunks             PyTables Table of int64 start, stop, row_start, row_stop,
                                   frames_start, frames_stop: one row per complete chunk
                                   (frames [start, stop) are rows [row_start, row_stop) of
                                   table and [frames_start, frames_stop) of daskloc_frames),
                                   written after them, in a flush of its own
        daskloc_metadata           uint8 array, shape (n,): the metadata, UTF-8 JSON
        daskloc_metadata_backup    uint8 array: the previous metadata (used if the first one
                                   was torn by a kill while being rewritten)
    .features.h5.daskloc-lock      (next to the file, while a write needs it) lock file:
                                   ``flock`` for daskloc's writers and readers; lists
                                   (JSON) the keys whose writer has the file open; removed
                                   by the writer that leaves nothing noted

Plain pandas reads it as trackpy users do::

    pd.read_hdf("features.h5", "bulk_water/features", where="frame >= 100 & frame < 200")

The group's attributes are pandas' own (pandas pickles some of them, as in every
``HDFStore`` table); daskloc's own nodes hold only numbers and JSON text.

**Nothing in a store runs code.** PyTables unpickles every pickled attribute of a node
as soon as the node's attributes are loaded, and pandas stores some of its own
bookkeeping that way. While daskloc has a file open, PyTables' unpickling is replaced
by a loader that builds only plain data (lists, tuples, dicts, strings, numbers,
None: all that pandas' own attributes hold) and refuses anything that names a Python
object to import or call; a store carrying such an attribute, or an object array
(PyTables ``ObjectAtom``) where daskloc expects numbers, is refused with
:class:`~daskloc.stores.UnsafeStoreError` before any of it is used. The attributes
of the root, of the groups leading to the table and of every node of the table are
checked on every opening.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import json
import os
import pickle
import socket
import stat
import sys
import threading
import time
import warnings
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from daskloc._extras import require
from daskloc.metadata import (
    METADATA_FORMAT,
    METADATA_VERSION,
    ChunkMark,
    ChunkVerifier,
    JobMetadata,
    MetadataError,
    UnsafeStoreError,
    id_from_words,
    id_words,
    validate_metadata,
)
from daskloc.stores._lease import LockFileOps, lease_name
from daskloc.stores.base import (
    FeatureStore,
    StoreBusyError,
    check_chunk_features,
    decode_frames,
    normalize_selection,
    write_error,
)

__all__ = ["DamagedStoreError", "HDF5Store"]

#: Key of the result set when no ``table=`` is given.
DEFAULT_TABLE = "features"
#: The metadata (UTF-8 JSON as uint8) and its previous version, inside the key's group.
METADATA_NODE = "daskloc_metadata"
BACKUP_NODE = "daskloc_metadata_backup"
#: The complete-chunks table and the rows of each frame, inside the key's group.
CHUNKS_NODE = "daskloc_chunks"
FRAMES_NODE = "daskloc_frames"
_PANDAS_NODES = ("table", "_i_table")
_OUR_NODES = (METADATA_NODE, BACKUP_NODE, CHUNKS_NODE, FRAMES_NODE) + _PANDAS_NODES
_CHUNK_DTYPE = np.dtype([
    ("start", "<i8"), ("stop", "<i8"), ("row_start", "<i8"), ("row_stop", "<i8"),
    ("frames_start", "<i8"), ("frames_stop", "<i8"), ("id_hi", "<i8"), ("id_lo", "<i8"),
])
#: The fields of chunk records written before chunk identities (no id_hi, id_lo).
_LEGACY_CHUNK_FIELDS = _CHUNK_DTYPE.names[:6]
_FRAME_DTYPE = np.dtype([("frame", "<i8"), ("row_start", "<i8"), ("row_stop", "<i8")])
#: Attributes PyTables itself puts on groups (anything else is someone's data).
_PYTABLES_GROUP_ATTRS = {"CLASS", "TITLE", "VERSION", "PYTABLES_FORMAT_VERSION", "FILTERS"}
#: Attributes pandas puts on the group of a table it writes (the table's bookkeeping).
_PANDAS_GROUP_ATTRS = {"pandas_type", "pandas_version", "table_type", "index_cols",
                       "values_cols", "non_index_axes", "data_columns", "nan_rep",
                       "encoding", "errors", "levels", "info", "metadata",
                       "data_col_nan_rep", "mi_level_nan_rep"}
#: Features per frame assumed when sizing the table's HDF5 chunks.
EXPECTED_PER_FRAME = 300
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MARKER_SIZE = 128

#: PyTables (and the HDF5 library under it) is not thread-safe: every access from this
#: process goes through this lock.
_PROCESS_LOCK = threading.RLock()


class DamagedStoreError(OSError):
    """An HDF5 store left damaged by a writer killed mid-write, which daskloc cannot repair."""


def _tables():
    tables = require("tables")

    _install_pickle_guard(tables)
    return tables


# ----------------------------------------------------------------- no code from a file

class _PickleRefused(BaseException):
    """A pickle in the file names a Python object (BaseException: PyTables' attribute
    loader swallows every Exception and would hand back the raw bytes silently)."""

    def __init__(self, what, node=None, attr=None):
        super().__init__(what)
        self.what, self.node, self.attr = what, node, attr


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain data only: any reference to a class or function is refused."""

    def find_class(self, module, name):
        node = attr = None
        frame = sys._getframe(1)
        while frame is not None:  # PyTables' AttributeSet.__getattr__ knows which one
            loc = frame.f_locals
            if "name" in loc and hasattr(loc.get("self"), "_v__nodepath"):
                node, attr = loc["self"]._v__nodepath, loc["name"]
                break
            frame = frame.f_back
        raise _PickleRefused(f"{module}.{name}", node, attr)

    def persistent_load(self, pid):
        raise _PickleRefused("a persistent object reference")


class _GuardedPickle:
    """Stands in for the ``pickle`` module inside PyTables' attribute and atom code:
    within a daskloc session (this thread) only plain data is unpickled."""

    def __getattr__(self, name):
        return getattr(pickle, name)

    @staticmethod
    def loads(data, **kwargs):
        if not getattr(_GUARD, "depth", 0):
            return pickle.loads(data, **kwargs)
        return _DataOnlyUnpickler(io.BytesIO(bytes(data)), **kwargs).load()


_GUARD = threading.local()
#: Files whose attributes were checked, by (path, key): the signature (_signature) then.
_CHECKED = {}


def _signature(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _install_pickle_guard(tables):
    import tables.atom
    import tables.attributeset

    for module in (tables.attributeset, tables.atom):
        if not isinstance(module.pickle, _GuardedPickle):
            module.pickle = _GuardedPickle()


@contextlib.contextmanager
def _no_code(where):
    """Within: PyTables unpickles plain data only; a refused pickle becomes a clear
    UnsafeStoreError naming the node and attribute."""
    _GUARD.depth = getattr(_GUARD, "depth", 0) + 1
    try:
        yield
    except _PickleRefused as exc:
        place = (f"the attribute {exc.attr!r} of node {exc.node!r}" if exc.node else
                 "a node")
        raise UnsafeStoreError(
            f"{where}: {place} holds a pickled Python object ({exc.what}), which would "
            "run code if it were loaded; daskloc never unpickles objects from a store, so "
            "it does not open this file. If the file is yours, remove that attribute "
            "(e.g. with h5py: del f[node].attrs[name]); if it came from someone else, "
            "do not open it with pandas or PyTables either"
        ) from None
    finally:
        _GUARD.depth -= 1


def looks_like_hdf5(path):
    """Whether the file at ``path`` carries the HDF5 signature.

    The signature is at byte 0, or at 512, 1024, 2048, ... bytes after a user block.

    Parameters
    ----------
    path : str

    Returns
    -------
    bool
        False for an empty or unreadable file.
    """
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            offset = 0
            while offset + 8 <= size:
                f.seek(offset)
                if f.read(8) == _HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False
    return False


def _is_lock_error(exc):
    text = str(exc)
    return "unable to lock file" in text or "already opened" in text


def _parse_json(raw):
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return meta if isinstance(meta, dict) else None


def _as_records(raw):
    """Chunk records as _CHUNK_DTYPE (those written before identities get zero ids)."""
    raw = np.asarray(raw)
    if raw.dtype == _CHUNK_DTYPE:
        return raw
    out = np.zeros(len(raw), _CHUNK_DTYPE)
    for name in _LEGACY_CHUNK_FIELDS:
        out[name] = raw[name]
    return out


def _valid_chunks(records):
    """The longest prefix of chunk records that fits together (a torn append may add a
    record of zeros or garbage at the end)."""
    n = 0
    prev_stop, prev_row, prev_frames = None, 0, 0
    for r in records:
        start, stop, r0, r1, f0, f1 = (int(v) for v in tuple(r)[:6])
        if not (0 <= start < stop and r0 == prev_row <= r1 and f0 == prev_frames <= f1):
            break
        if prev_stop is not None and start < prev_stop:
            break
        if f1 - f0 > stop - start or (f1 > f0) != (r1 > r0):
            break
        prev_stop, prev_row, prev_frames = stop, r1, f1
        n += 1
    return records[:n]


class _LockFile:
    """``flock`` on the store's lock file, which also records, as JSON, the keys whose
    writer has the HDF5 file open: ``{"/bulk_water/features": "writing pid=... since=..."}``.

    A key found there by the next process to take the lock belongs to a writer that died
    with the file open (a live writer holds the lock).

    The file exists only while it is used: whoever locks creates it (a reader in a
    read-only directory locks it if it exists), and the last one to leave, finding
    nothing noted, removes it while holding it exclusively (so a finished job or read
    leaves no file beside the store); a killed writer's note stays. Whoever waited for
    the lock checks, once it has it, that the path still names the file it locked (it
    may have been removed meanwhile), and locks the file there now if not.
    """

    def __init__(self, path, exclusive, timeout, busy):
        self.path, self.exclusive, self.timeout, self.busy = path, exclusive, timeout, busy
        self.fd = None
        self.entries = {}
        self.size = 0

    def _open(self, flags):
        """Open the lock file, never through a symbolic link, only a regular file."""
        try:
            fd = os.open(self.path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o666)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PermissionError(
                    errno.EPERM,
                    f"the lock file {self.path} is a symbolic link; daskloc never writes "
                    "through one (it could point at someone else's file): remove it and "
                    "run again",
                ) from None
            raise
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PermissionError(
                errno.EPERM, f"the lock file {self.path} is not a regular file: remove it "
                             "and run again")
        return fd

    def _acquire(self):
        """Open the lock file and take the lock; False for a reader finding no file."""
        try:
            self.fd = self._open(os.O_RDWR | os.O_CREAT)
        except PermissionError as exc:
            if self.exclusive or exc.errno == errno.EPERM:
                raise
            try:  # a reader in a read-only directory: lock if the file exists
                self.fd = self._open(os.O_RDONLY)
            except FileNotFoundError:
                return False
        except OSError:
            if self.exclusive:
                raise
            try:  # a reader in a read-only directory: lock if the file exists
                self.fd = self._open(os.O_RDONLY)
            except FileNotFoundError:
                return False
        op = fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH
        start, pause = time.monotonic(), 0.001
        while True:
            try:
                fcntl.flock(self.fd, op | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                    return True  # a file system without flock: HDF5's own locking only
                if not isinstance(exc, BlockingIOError):
                    raise
                waited = time.monotonic() - start
                if waited > self.timeout:
                    os.close(self.fd)
                    self.fd = None
                    raise self.busy(waited) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.05)

    def _last_one(self):
        """Whether this process holds the lock file alone, exclusively, now (a shared
        lock is converted without waiting; someone else holding it keeps it)."""
        if not self.exclusive:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
        return self._still_there()

    def _still_there(self):
        """Whether the path still names the file this process has open (and locked)."""
        try:
            now = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return False
        held = os.fstat(self.fd)
        return (now.st_dev, now.st_ino) == (held.st_dev, held.st_ino)

    def __enter__(self):
        while True:
            if not self._acquire():
                return self  # a reader and no lock file: no writer is noted
            if self._still_there():
                break
            os.close(self.fd)  # removed (or replaced) while we waited: lock the one there
            self.fd = None
        raw = os.pread(self.fd, 1 << 20, 0)
        self.size = len(raw)
        try:
            entries = json.loads(raw.decode("utf-8")) if raw.strip() else {}
            self.entries = entries if isinstance(entries, dict) else {"*": "writing"}
        except (UnicodeDecodeError, json.JSONDecodeError):
            self.entries = {"*": "writing"}  # unreadable: assume the worst
        return self

    def dirty(self, key):
        """True if a writer of ``key`` died while it had the file open."""
        return key in self.entries or "*" in self.entries

    def mark(self, key, text=None):
        """Record that ``key``'s writer has the file open (``text``) or closed it (None)."""
        self.entries.pop("*", None)
        if text is None:
            self.entries.pop(key, None)
        else:
            self.entries[key] = text
        data = (json.dumps(self.entries) + "\n").encode() if self.entries else b""
        # Pad instead of truncating: a kill between two calls cannot leave half a document.
        os.pwrite(self.fd, data.ljust(self.size), 0)
        self.size = max(self.size, len(data))

    def __exit__(self, *exc):
        if self.fd is None:
            return
        try:
            if not self.entries and self._last_one():
                # Nothing noted and nobody else holds it: remove it while holding it
                # exclusively (a waiter finds its file gone and locks the next one).
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        finally:
            os.close(self.fd)  # releases the flock
            self.fd = None


class HDF5Store(FeatureStore):
    """Features in one HDF5 file as a pandas table with an indexed ``frame`` column.

    Parameters
    ----------
    path : str or os.PathLike
        The HDF5 file (conventionally ``.h5``). Other keys in it are left alone.
    table : str, optional
        The pandas key of this result set, e.g. ``"bulk_water/features"`` (nested keys
        are nested groups). Default ``"features"``.
    storage_options : None
        HDF5 stores are local (or network file system) files; anything else raises.
    complib : str, default ``"blosc:zstd"``
        PyTables compression of the features table (``"blosc:lz4"``, ``"zlib"``, ...),
        fixed when the table is created.
    complevel : int, default 5
        Compression level, 0-9.
    fsync : bool, default True
        fsync the file after a chunk's rows and again after its record (durability of
        complete chunks against power loss; a killed process does not need it).
    lock_timeout : float, default 120
        Seconds to wait while another process holds the file before raising
        :class:`~daskloc.stores.StoreBusyError`.

    Raises
    ------
    ValueError
        ``path`` is a URL, or ``storage_options`` are given.

    Notes
    -----
    **Layout**: see :mod:`daskloc.stores.hdf5`. Plain pandas reads a frame range with
    ``pandas.read_hdf(path, key, where="frame >= a & frame < b")``, which uses the
    PyTables index of ``frame``. daskloc's own reads take rows of recorded chunks only:
    each chunk's entries in ``daskloc_frames`` give the rows of its frames, so a frame
    range is read as one slice of the table, exactly its rows (not a scan), without
    relying on the PyTables index (which a kill can leave wrong, see below).

    **One writer, in frame order.** :attr:`concurrent_writers` is False, so
    :func:`daskloc.batch` brings each chunk's features back to the client, which
    appends them, in frame order (:attr:`ordered_appends`): the table is sorted by
    frame. Appending a chunk that is stored already, or one before the last stored
    chunk, raises ValueError.

    **Writing a chunk**: under an exclusive ``flock`` of the lock file, open the file
    and note the key as being written in the lock file; append the rows (pandas
    ``HDFStore.append``; PyTables updates the frame index) and their frames' entries to
    ``daskloc_frames``, flush and fsync; append the chunk's record to
    ``daskloc_chunks``, flush and fsync; close the file and clear the note. The metadata
    is rewritten in place the same way, after the previous version is copied to the
    backup. Several jobs may write different keys of one file: they take turns.

    **Reading while a batch writes.** The writer has the file open only for those few
    milliseconds per chunk (and per metadata update). daskloc readers
    (:func:`daskloc.read_features`, ``daskloc info``) take the lock shared, so they
    wait for the chunk being written, then read the complete chunks. A plain
    ``pandas.read_hdf`` / ``HDFStore`` does not know the lock file: it opens fine
    between chunks but gets HDF5's "unable to lock file" error during a write, and
    while it keeps the file open the writer waits (``lock_timeout``, then
    :class:`~daskloc.stores.StoreBusyError`). HDF5's single-writer/multiple-reader mode
    (SWMR) is not used: PyTables, hence pandas, cannot open a file being written in
    SWMR mode, and SWMR allows no PyTables index.

    **What a SIGKILL can do.** A kill while the file is closed (nearly all of a run:
    while frames are located) leaves it intact. HDF5 rewrites parts of the file in
    place (the last compressed chunk of the table, B-tree nodes, the index) and cannot
    roll back an interrupted write, so a kill while a chunk is being written can: leave
    rows that no chunk record owns (plain pandas sees them until the next run;
    daskloc never does); tear the HDF5 chunk holding the table's last rows (detected by
    the checksums); leave the frame index wrong (pandas ``where`` queries may then miss
    rows, without an error). The note left in the lock file tells the next writer of
    the key (the resumed batch, or :meth:`remove_temporary`) to repair: it drops
    unowned rows and chunk records whose rows cannot be read back (those chunks are
    located again), restores torn metadata from the backup and rebuilds the frame
    index. Meanwhile daskloc readers never see unowned rows, and get
    :class:`DamagedStoreError` ("run the same job again") for torn ones. Damage to
    HDF5's own structures (B-trees, object headers) is not
    repairable: then :class:`DamagedStoreError` says so, and ``overwrite=True`` starts
    again. In tests, 850 writers appending without pause were killed at random moments
    (most while the file was open): no daskloc read ever returned wrong rows, 849 files
    were repaired and resumed to the exact table (repair dropped 1-2 chunks in about 1
    in 30), and one had the table's object header torn (unrepairable).

    HDF5 does not reuse space freed in earlier sessions (a removed table, rewritten
    compressed chunks); ``ptrepack`` or ``h5repack`` compact a file. :meth:`clear`
    deletes the file when nothing else is left in it.

    Examples
    --------
    >>> import daskloc, pandas as pd
    >>> daskloc.batch(video, 11, minmass=20, store="features.h5",
    ...               table="bulk_water/features", do_not_return=True)  # doctest: +SKIP
    >>> daskloc.read_features("features.h5", frames=slice(100, 200),
    ...                       table="bulk_water/features")  # doctest: +SKIP
    >>> pd.read_hdf("features.h5", "bulk_water/features",
    ...             where="frame >= 100 & frame < 200")  # doctest: +SKIP
    """

    backend = "hdf5"
    format_name = "HDF5"
    suffixes = (".h5", ".hdf5", ".hdf")
    lists_tables = True
    concurrent_writers = False
    ordered_appends = True
    live_reads = True

    def __init__(self, path, *, table=None, storage_options=None, complib="blosc:zstd",
                 complevel=5, fsync=True, lock_timeout=120.0):
        super().__init__(path, table=table)
        if "://" in self.path or storage_options:
            raise ValueError(
                f"HDF5 stores must be local files, not {self.path!r}; use a Parquet or Zarr "
                "store on object storage"
            )
        #: The pandas key of the result set (no leading slash).
        self.key = self.table if self.table is not None else DEFAULT_TABLE
        self.complib = complib
        self.complevel = int(complevel)
        self.fsync = bool(fsync)
        self.lock_timeout = float(lock_timeout)

    @property
    def lock_path(self):
        """str: The lock file next to the HDF5 file."""
        head, tail = os.path.split(self.path)
        return os.path.join(head, f".{tail}.daskloc-lock")

    # -- locking and opening -----------------------------------------------------
    def _busy(self, action, waited, holder):
        return StoreBusyError(
            f"cannot {action} {self.url}: {holder} (waited {waited:.0f} s). HDF5 lets no "
            "process open a file while another writes it, and no writer in while another "
            "process holds it open. Close that program's handle (e.g. HDFStore.close()) or "
            "wait for the job to finish; to read results while a long job runs, use a "
            "Parquet, Zarr or SQL store, or read with daskloc.read_features (it waits for "
            "the chunk being written)"
        )

    def _lock(self, exclusive):
        action = "write to" if exclusive else "read"

        def busy(waited):
            return self._busy(action, waited,
                              f"another daskloc process holds its lock file {self.lock_path}")

        return _LockFile(self.lock_path, exclusive, self.lock_timeout, busy)

    def _open_file(self, write):
        """Open with pandas' HDFStore, retrying while another process holds the file."""
        tables = _tables()
        start, pause = time.monotonic(), 0.005
        while True:
            handles = tables.file._open_files
            before = {id(f) for f in handles.get_handlers_by_name(self.path)}
            try:
                if not write:
                    return pd.HDFStore(self.path, mode="r")
                # Tables pandas creates get these filters (with checksums).
                return pd.HDFStore(self.path, mode="a", complib=self.complib,
                                   complevel=self.complevel, fletcher32=True)
            except _PickleRefused:
                # Refused while PyTables loaded the root: close the file it left open.
                for f in list(handles.get_handlers_by_name(self.path)):
                    if id(f) not in before:
                        with contextlib.suppress(Exception):
                            f.close()
                raise
            except (tables.HDF5ExtError, ValueError, OSError) as exc:
                if not _is_lock_error(exc):
                    if write and not os.access(self.path, os.W_OK):
                        raise PermissionError(
                            errno.EACCES,
                            f"cannot write the feature store at {self.path} (permission "
                            "denied); choose a writable output path (CLI: --out) or fix the "
                            "file's permissions",
                        ) from None
                    raise self._damaged(exc, "cannot be opened") from exc
                waited = time.monotonic() - start
                if waited > self.lock_timeout:
                    holder = (
                        "another process has the file open (a program outside daskloc, "
                        "e.g. a pandas.HDFStore left open)" if write else
                        "another process has the file open for writing"
                    )
                    raise self._busy("write to" if write else "read", waited, holder) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    def _damaged(self, exc, what, repairable=False):
        if isinstance(exc, (PermissionError, FileNotFoundError)):
            return exc
        detail = str(exc).strip().splitlines()[-1].rstrip(".")
        if repairable:
            advice = (
                "the last writer was killed while writing it and nobody has written since: "
                "run the same job again (or call remove_temporary()) and daskloc repairs the "
                "file and locates the lost chunks again"
            )
        else:
            advice = (
                "if a job writing it was killed, HDF5 cannot roll back the write it "
                "interrupted: run the job again with overwrite=True (CLI: --overwrite), or "
                "delete the file"
            )
        return DamagedStoreError(errno.EIO, f"{self.url} {what} ({detail}); {advice}")

    @contextlib.contextmanager
    def _session(self, write=False, on_dirty="repair"):
        """An open HDFStore for one operation, under the process lock and the lock file.

        Parameters
        ----------
        write : bool
            Open for writing (exclusive lock; the lock file notes the key as being
            written until the file is closed again). Reading yields None when there is
            no HDF5 file.
        on_dirty : {"repair", "keep", "forget"}
            What to do, writing, when the last writer died with the file open: repair
            first; leave it for a later writer to repair; or nothing (the caller removes
            the store).
        """
        tables = _tables()
        with _PROCESS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore", tables.NaturalNameWarning)
            # PyTables warns and loads a damaged node as UnImplemented: _table raises.
            warnings.filterwarnings("ignore", "problems loading leaf", UserWarning)
            if not write and not (os.path.isfile(self.path) and looks_like_hdf5(self.path)):
                yield None
                return
            key = "/" + self.key
            with self._lock(write) as lock, _no_code(self.url):
                self._live_suspect = lock.dirty(key)
                if not write:
                    hs = self._open_file(False)
                    try:
                        self._check_attributes(hs, _signature(self.path))
                        yield hs
                    finally:
                        hs.close()
                    return
                if os.path.isfile(self.path) and os.path.getsize(self.path) == 0:
                    os.remove(self.path)  # an empty file: PyTables makes a new one
                dirty, previous = lock.dirty(key), lock.entries.get(key, "writing")
                hs = self._open_file(True)
                lock.mark(key, f"writing pid={os.getpid()} host={socket.gethostname()} since="
                          f"{datetime.now(UTC).isoformat(timespec='seconds')}")
                try:
                    self._check_attributes(hs, _signature(self.path))
                    if dirty and on_dirty == "repair":
                        self._repair(hs)
                        dirty = False
                    yield hs
                finally:
                    hs.close()
                    # Our own writes add no pickled objects: the file stays checked.
                    if _CHECKED.get((self.path, self.key)) is not None:
                        _CHECKED[(self.path, self.key)] = _signature(self.path)
                    if dirty and on_dirty == "keep":
                        lock.mark(key, previous)
                    elif not dirty or on_dirty == "forget":
                        lock.mark(key, None)

    def _check_attributes(self, hs, signature=None):
        """Load, under the pickle guard, the attributes of the root, of the groups on
        the way to the table and of every node of the table: a pickled object anywhere
        there is refused (UnsafeStoreError) before anything of the store is used.

        A file checked before in this process and unchanged since (same inode, size,
        modification and change times) is not checked again; the guard itself stays
        on for every load."""
        if signature is not None and _CHECKED.get((self.path, self.key)) == signature:
            return
        _CHECKED.pop((self.path, self.key), None)
        tables = _tables()
        h = hs._handle
        nodes, node, path = [h.root], h.root, ""
        for part in self.key.split("/"):
            path += "/" + part
            try:
                node = h.get_node(path)
            except tables.NoSuchNodeError:
                node = None
                break
            nodes.append(node)
            if not isinstance(node, tables.Group):
                break
        todo = [node] if isinstance(node, tables.Group) else []
        while todo:  # the table's subtree; a node HDF5 cannot load is left to its reader
            group = todo.pop()
            try:
                children = list(group._v_children)
            except tables.HDF5ExtError:
                continue
            for name in children:
                try:
                    child = group._f_get_child(name)
                except (tables.HDF5ExtError, tables.NoSuchNodeError):
                    continue
                nodes.append(child)
                if isinstance(child, tables.Group):
                    todo.append(child)
        for n in nodes:
            try:
                n._v_attrs  # noqa: B018 - loading the attribute set unpickles what it holds
            except tables.HDF5ExtError:
                continue
            if isinstance(n, tables.VLArray) and isinstance(n.atom, tables.ObjectAtom):
                raise UnsafeStoreError(
                    f"{self.url}: node {n._v_pathname!r} is an array of pickled Python "
                    "objects (PyTables ObjectAtom), which would run code if it were read; "
                    "daskloc never unpickles objects from a store, so it does not open "
                    "this file"
                )
        if signature is not None:
            _CHECKED[(self.path, self.key)] = signature

    # -- nodes -------------------------------------------------------------------
    def _node(self, hs, name=None):
        tables = _tables()
        path = "/" + self.key + ("" if name is None else "/" + name)
        try:
            return hs._handle.get_node(path)
        except tables.NoSuchNodeError:
            return None
        except tables.HDF5ExtError as exc:
            raise self._damaged(exc, f"has a damaged node {path}") from exc

    def _table(self, hs):
        """The features table, or None before the first chunk.

        Raises
        ------
        DamagedStoreError
            The node exists but PyTables cannot load it as a table (its HDF5 object
            header was torn by a kill).
        """
        node = self._node(hs, "table")
        if node is not None and not isinstance(node, _tables().Table):
            raise DamagedStoreError(
                errno.EIO,
                f"{self.url}: the features table cannot be loaded (HDF5 reports its header "
                "damaged, as a kill in the middle of a write can leave it). HDF5 cannot roll "
                "back an interrupted write: run the job again with overwrite=True (CLI: "
                "--overwrite), or delete the file",
            )
        return node

    def _check_ours(self, hs):
        """Raise ValueError unless the key is free, a daskloc store, or a bare group."""
        tables = _tables()
        h = hs._handle
        path = ""
        node = h.root
        for part in self.key.split("/"):
            path += "/" + part
            try:
                node = h.get_node(path)
            except tables.NoSuchNodeError:
                return
            except tables.HDF5ExtError as exc:
                raise self._damaged(exc, f"has a damaged node {path}") from exc
            if not isinstance(node, tables.Group):
                break
        else:
            if METADATA_NODE in node or CHUNKS_NODE in node:  # ours (metadata maybe lost)
                return
            has_data = any(isinstance(c, tables.Leaf) for c in node._v_children.values())
            if not has_data and getattr(node._v_attrs, "pandas_type", None) is None:
                return  # only other keys' groups below it: our nodes can sit beside them
        raise ValueError(
            f"{self.path} holds {node._v_pathname!r}, which is not a daskloc feature store "
            f"(no {METADATA_NODE}); refusing to write into it: choose another table=NAME "
            "(CLI: --out FILE.h5#NAME) or another file"
        )

    def _chunks(self, hs):
        node = self._node(hs, CHUNKS_NODE)
        if node is None:
            return np.empty(0, dtype=_CHUNK_DTYPE)
        if not isinstance(node, _tables().Table) or not set(
                _LEGACY_CHUNK_FIELDS) <= set(node.colnames):
            raise MetadataError(f"{self.url}: {CHUNKS_NODE} is not daskloc's chunk table; "
                                "run the job again with overwrite=True (CLI: --overwrite)")
        return _valid_chunks(_as_records(node.read()))

    def _bytes_node(self, hs, name):
        """Our uint8 node ``name`` (metadata or its backup), or None if absent."""
        node = self._node(hs, name)
        if node is not None and not (isinstance(node, _tables().Array)
                                     and node.atom.dtype == np.uint8 and node.ndim == 1):
            raise MetadataError(
                f"{self.url}: the store's metadata is damaged: {name} is not daskloc's "
                "uint8 JSON array; if the store is yours, run the job again with "
                "overwrite=True (CLI: --overwrite)")
        return node

    def _read_meta(self, hs):
        node = self._bytes_node(hs, METADATA_NODE)
        if node is None:
            return None
        meta = _parse_json(node.read())
        if meta is None:  # torn by a kill while rewritten: the previous version
            backup = self._bytes_node(hs, BACKUP_NODE)
            meta = None if backup is None else _parse_json(backup.read())
            if meta is None:
                raise MetadataError(
                    f"{self.url}: the store's metadata is damaged: {METADATA_NODE} and its "
                    f"backup {BACKUP_NODE} are not valid UTF-8 JSON; if the store is yours, "
                    "run the job again with overwrite=True (CLI: --overwrite) to locate it "
                    "anew")
        return validate_metadata(meta, f"{self.url} ({METADATA_NODE})")

    def _write_bytes(self, hs, name, data, title):
        """Overwrite a uint8 array in place (its uncompressed HDF5 chunks keep their
        place in the file, so rewriting leaves no dead space)."""
        tables = _tables()
        node = self._node(hs, name)
        if node is None:
            node = hs._handle.create_earray(
                self._node(hs), name, atom=tables.UInt8Atom(), shape=(0,), title=title,
                chunkshape=(16384,),
            )
        n, old = data.size, node.nrows
        if n > old:
            node.append(data[old:])
        if min(n, old):
            node[: min(n, old)] = data[: min(n, old)]
        if n < old:
            node.truncate(n)

    def _truncate_rows(self, hs, table, committed):
        if table.nrows > committed:
            table.remove_rows(committed)  # rebuilds the index if there is one
            hs.flush(fsync=self.fsync)

    def _repair(self, hs):
        """Undo what a writer killed while it had the file open left behind."""
        tables = _tables()
        try:
            group = self._node(hs)
            if group is None or METADATA_NODE not in group:
                return
            meta_node = self._node(hs, METADATA_NODE)
            if _parse_json(meta_node.read()) is None:
                backup = self._node(hs, BACKUP_NODE)
                raw = None if backup is None else backup.read()
                if raw is not None and _parse_json(raw) is not None:
                    self._write_bytes(hs, METADATA_NODE, raw, meta_node.title)
            node = self._node(hs, CHUNKS_NODE)
            chunks = np.empty(0, _CHUNK_DTYPE) if node is None else _as_records(node.read())
            keep = len(_valid_chunks(chunks))
            frames = self._node(hs, FRAMES_NODE)
            n_frames = 0 if frames is None else frames.nrows
            while keep and chunks["frames_stop"][keep - 1] > n_frames:
                keep -= 1
            table = self._table(hs)
            if table is not None:
                keep = self._readable_chunks(table, chunks[:keep])
                committed = int(chunks["row_stop"][keep - 1]) if keep else 0
                if table.cols.frame.is_indexed:
                    table.cols.frame.remove_index()
                if table.nrows > committed:
                    table.remove_rows(committed)
                self._index(table)
            if frames is not None:
                frames.truncate(int(chunks["frames_stop"][keep - 1]) if keep else 0)
            if node is not None and node.nrows > keep:
                node.truncate(keep)
            hs.flush(fsync=self.fsync)
        except tables.HDF5ExtError as exc:
            raise self._damaged(exc, "was left damaged by a writer killed mid-write") from exc

    def _readable_chunks(self, table, chunks):
        """How many of the recorded chunks can be read back (the HDF5 chunk holding the
        table's last rows is rewritten by every append, and may be torn)."""
        tables = _tables()
        committed = int(chunks["row_stop"][-1]) if len(chunks) else 0
        committed = min(committed, int(table.nrows))
        step = int(table.chunkshape[0])
        base = committed // step * step
        if committed > base:
            try:
                table.read(base, committed)
            except tables.HDF5ExtError:
                committed = base
        return int(np.searchsorted(chunks["row_stop"], committed, side="right"))

    def _index(self, table):
        tables = _tables()
        table.cols.frame.create_index(
            optlevel=6, kind="medium",
            filters=tables.Filters(complevel=self.complevel, complib=self.complib),
        )

    # -- lifecycle ---------------------------------------------------------------
    def list_tables(self):
        """Names of the daskloc tables (keys) in this HDF5 file, sorted; ``[]`` if no file.

        The default table (``"features"``) is not listed, as for the other backends.
        """
        with self._session() as hs:
            if hs is None:
                return []
            out = []
            for node in hs._handle.walk_nodes("/", "Leaf"):
                if node._v_name == METADATA_NODE:
                    key = node._v_parent._v_pathname.strip("/")
                    if key and key != DEFAULT_TABLE:
                        out.append(key)
        return sorted(out)

    def exists(self):
        with self._session() as hs:
            return hs is not None and self._node(hs, METADATA_NODE) is not None

    def location_exists(self):
        """True if the file holds this key (a daskloc store or not), or the file is
        there and is not HDF5."""
        if not os.path.exists(self.path):
            return False
        if not os.path.isfile(self.path):
            return True
        if not looks_like_hdf5(self.path):
            return os.path.getsize(self.path) > 0
        with self._session() as hs:
            return hs is not None and self._node(hs) is not None

    def prepare(self):
        path = self.path
        if os.path.isdir(path):
            raise IsADirectoryError(
                errno.EISDIR,
                f"cannot write the feature store at {path}: it is a directory, not an HDF5 "
                "file; choose another output path (CLI: --out)",
            )
        if os.path.isfile(path) and os.path.getsize(path) > 0 and not looks_like_hdf5(path):
            raise ValueError(
                f"{path} exists and is not an HDF5 file; refusing to write into it: choose "
                "another output path (CLI: --out)"
            )
        head = os.path.dirname(path)
        try:
            os.makedirs(head, exist_ok=True)
            target = path if os.path.exists(path) else head
            if not os.access(target, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as e:
            raise write_error(
                e,
                f"cannot write the feature store at {path} ({e.strerror}); choose a "
                "writable output path (CLI: --out) or fix the permissions",
            ) from e
        with self._session(write=True, on_dirty="keep") as hs:
            self._check_ours(hs)

    def _check_file_for_clear(self):
        """False if there is nothing to clear; raises if the file is not ours to clear."""
        path = self.path
        if not os.path.exists(path):
            return False
        if os.path.isdir(path):
            raise IsADirectoryError(
                errno.EISDIR, f"{path} is a directory, not an HDF5 store; not removing it"
            )
        if not looks_like_hdf5(path):
            if os.path.getsize(path) == 0:
                return False
            raise ValueError(f"{path} is not an HDF5 file; not touching it")
        return True

    def _check_group_for_clear(self, hs):
        tables = _tables()
        group = self._node(hs)
        if group is not None and (
            not isinstance(group, tables.Group)
            or (METADATA_NODE not in group and CHUNKS_NODE not in group)
        ):
            raise ValueError(
                f"{self.path} holds {group._v_pathname!r}, which is not a daskloc feature "
                f"store (no {METADATA_NODE}); refusing to remove it"
            )
        return group

    def check_clear(self):
        if self._check_file_for_clear():
            with self._session() as hs:
                self._check_group_for_clear(hs)

    def _lease_ops(self):

        # Per key: table=None and table="features" are the same key, so the same lease,
        # named like every other store's lease of its default table.
        table = None if self.key == DEFAULT_TABLE else self.key
        return LockFileOps(os.path.join(os.path.dirname(self.path),
                                        lease_name(self.path, table)))

    def clear(self):
        path = self.path
        if not self._check_file_for_clear():
            return
        tables = _tables()
        with self._session(write=True, on_dirty="forget") as hs:
            group = self._check_group_for_clear(hs)
            # Nothing else in the file: delete it, which also gives the space back (HDF5
            # never reuses it) and works on a damaged table too.
            nothing_left = self._only_ours(hs)
            if group is not None and not nothing_left:
                try:
                    self._remove_group(group)
                    hs.flush(fsync=self.fsync)
                except tables.HDF5ExtError as exc:
                    raise self._damaged(
                        exc, "cannot be removed from the file (HDF5 cannot delete an object "
                        "whose header is damaged); the file holds other data too, so it is "
                        "not deleted: copy that data to a new file (e.g. ptrepack) or write "
                        "this job to another file or table") from exc
            if nothing_left:
                hs.close()
                os.remove(path)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(self.lock_path)

    def _only_ours(self, hs):
        """True if the file holds nothing but this key (and the groups leading to it)."""
        tables = _tables()
        mine = "/" + self.key
        todo = [hs._handle.root]
        while todo:
            group = todo.pop()
            if set(group._v_attrs._v_attrnamesuser) - _PYTABLES_GROUP_ATTRS:
                return False
            for child in group._v_children.values():
                path = child._v_pathname
                if path == mine:
                    if not self._group_only_ours(child):
                        return False
                    continue
                if not (isinstance(child, tables.Group) and mine.startswith(path + "/")):
                    return False
                todo.append(child)
        return True

    def _group_only_ours(self, group):
        """True if the key's group holds daskloc's nodes and pandas' attributes only."""
        tables = _tables()
        if not isinstance(group, tables.Group):
            return False
        if set(group._v_attrs._v_attrnamesuser) - _PYTABLES_GROUP_ATTRS - _PANDAS_GROUP_ATTRS:
            return False
        return all(n in _OUR_NODES for n in group._v_children)

    def _remove_group(self, group):
        """Remove our nodes of the key's group; the group too if nothing else is in it."""
        if not self._group_only_ours(group):
            for name in _OUR_NODES:  # nested keys of someone else stay, with the group
                if name in group and name != METADATA_NODE:
                    group._f_get_child(name)._f_remove(recursive=True)
            for attr in list(group._v_attrs._v_attrnamesuser):
                if attr in _PANDAS_GROUP_ATTRS:  # the table's; anything else is someone's
                    delattr(group._v_attrs, attr)
            # The group still holds someone's data: an empty daskloc document keeps it
            # marked as this table's (not a foreign group), with no chunks.
            empty = {"format": METADATA_FORMAT, "format_version": METADATA_VERSION,
                     "cleared": True}
            data = np.frombuffer(json.dumps(empty).encode("utf-8"), np.uint8)
            node = group._f_get_child(METADATA_NODE) if METADATA_NODE in group else None
            if node is not None:
                node.truncate(0)
                node.append(data)
            else:
                _tables().File.create_earray(
                    group._v_file, group, METADATA_NODE, atom=_tables().UInt8Atom(),
                    shape=(0,), title="daskloc metadata: UTF-8 JSON", chunkshape=(16384,),
                    obj=data)
            return
        parent = group._v_parent
        group._f_remove(recursive=True)
        # Drop the parent groups made for a nested key once they are empty.
        while parent._v_pathname != "/" and not parent._v_children and not (
            set(parent._v_attrs._v_attrnamesuser) - _PYTABLES_GROUP_ATTRS
        ):
            up = parent._v_parent
            parent._f_remove()
            parent = up

    def remove_temporary(self):
        """Drop rows that no chunk record owns, and repair what a writer killed while it
        had the file open left behind (see the class Notes).

        Raises
        ------
        DamagedStoreError
            HDF5's own structures are damaged beyond what daskloc can repair.
        """
        if not (os.path.isfile(self.path) and looks_like_hdf5(self.path)):
            return
        with self._session(write=True) as hs:
            table = self._table(hs)
            if table is not None and self._node(hs, METADATA_NODE) is not None:
                chunks = self._chunks(hs)
                self._truncate_rows(hs, table, int(chunks["row_stop"][-1]) if len(chunks) else 0)
                frames = self._node(hs, FRAMES_NODE)
                n_frames = int(chunks["frames_stop"][-1]) if len(chunks) else 0
                if frames is not None and frames.nrows > n_frames:
                    frames.truncate(n_frames)
                    hs.flush(fsync=self.fsync)

    # -- metadata ----------------------------------------------------------------
    def write_metadata(self, metadata):
        items = [
            f" {json.dumps(str(k))}: {json.dumps(v, allow_nan=False, separators=(', ', ': '))}"
            for k, v in metadata.items()
        ]
        data = np.frombuffer(("{\n" + ",\n".join(items) + "\n}\n").encode("utf-8"), np.uint8)
        with self._session(write=True) as hs:
            self._check_ours(hs)
            if self._node(hs) is None:
                parent, _, name = ("/" + self.key).rpartition("/")
                hs._handle.create_group(parent or "/", name, createparents=True)
            current = self._node(hs, METADATA_NODE)
            if current is not None:
                old = current.read()
                if _parse_json(old) is not None:
                    self._write_bytes(hs, BACKUP_NODE, old,
                                      "daskloc metadata, previous version: UTF-8 JSON")
                    hs.flush(fsync=self.fsync)
            self._write_bytes(hs, METADATA_NODE, data, "daskloc metadata: UTF-8 JSON")
            hs.flush(fsync=self.fsync)
            columns = list(metadata.get("columns") or [])
            if "frame" in columns and self._table(hs) is None:
                # pandas finds an (empty) table from the start, not a bare group.
                self._create_table(hs, columns, metadata)
                hs.flush(fsync=self.fsync)

    def read_metadata(self):
        with self._session() as hs:
            return None if hs is None else self._read_meta(hs)

    # -- chunks ------------------------------------------------------------------
    def append_chunk(self, start, stop, features, chunk_id=None, skipped=()):
        start, stop, features = check_chunk_features(start, stop, features)
        id_hi, id_lo = id_words(self._chunk_id_for(start, stop, chunk_id, skipped))
        with self._session(write=True) as hs:
            meta = self._read_meta(hs)
            if meta is None:
                raise ValueError(f"{self.url} has no daskloc metadata: write_metadata comes first")
            chunks = self._chunks(hs)
            node = self._node(hs, CHUNKS_NODE)
            if node is not None and "id_hi" not in node.colnames:
                raise ValueError(
                    f"{self.url} was written by an older daskloc (chunks without "
                    "identities): it can be read but not appended to; run the job again "
                    "with overwrite=True (CLI: --overwrite)")
            for a, b in zip(chunks["start"], chunks["stop"]):
                if (a, b) == (start, stop):
                    raise ValueError(
                        f"chunk [{start}, {stop}) is already stored in {self.url}; an HDF5 "
                        "store takes each chunk once (one writer at a time: daskloc.batch "
                        "holds the store's lease while it writes)"
                    )
            if len(chunks) and start < chunks["stop"][-1]:
                raise ValueError(
                    f"chunk [{start}, {stop}) is out of order: an HDF5 store appends chunks "
                    f"in frame order and [{chunks['start'][-1]}, {chunks['stop'][-1]}) is "
                    "stored already"
                )
            committed = int(chunks["row_stop"][-1]) if len(chunks) else 0
            table = self._table(hs)
            if table is None:
                declared = list(meta.get("columns") or [])
                if set(declared) != set(features.columns):
                    declared = [c for c in features.columns if c != "frame"] + ["frame"]
                table = self._create_table(hs, declared, meta)
            self._truncate_rows(hs, table, committed)
            columns = [c for c in table.colnames if c != "index"]
            if set(columns) != set(features.columns):
                raise ValueError(
                    f"chunk [{start}, {stop}) has columns {sorted(features.columns)}; the "
                    f"table in {self.url} has {sorted(columns)}"
                )
            df = features[columns].astype(
                {c: np.int64 if c == "frame" else np.float64 for c in columns}
            )
            df.index = pd.RangeIndex(committed, committed + len(df))
            frames_node = self._frames_node(hs)
            n_frames = int(chunks["frames_stop"][-1]) if len(chunks) else 0
            if frames_node.nrows > n_frames:
                frames_node.truncate(n_frames)
            # The rows of each frame: the next reads take a frame range as one slice.
            values, first, counts = np.unique(df["frame"].to_numpy(), return_index=True,
                                              return_counts=True)
            entries = np.empty(len(values), _FRAME_DTYPE)
            entries["frame"] = values
            entries["row_start"] = committed + first
            entries["row_stop"] = committed + first + counts
            if len(df):
                hs.append(self.key, df, format="table", data_columns=True, index=False)
                frames_node.append(entries)
                hs.flush(fsync=self.fsync)
            # Then the record that makes the chunk complete, in a flush of its own.
            record = np.array([(start, stop, committed, committed + len(df), n_frames,
                                n_frames + len(entries), id_hi, id_lo)], _CHUNK_DTYPE)
            self._chunks_node(hs).append(record)
            hs.flush(fsync=self.fsync)

    def _chunks_node(self, hs):
        node = self._node(hs, CHUNKS_NODE)
        if node is None:
            node = hs._handle.create_table(
                self._node(hs), CHUNKS_NODE, description=_CHUNK_DTYPE, chunkshape=(1024,),
                title="daskloc complete chunks: frames [start, stop) are rows [row_start, "
                      "row_stop) of table and rows [frames_start, frames_stop) of "
                      "daskloc_frames",
            )
        return node

    def _frames_node(self, hs):
        node = self._node(hs, FRAMES_NODE)
        if node is None:
            node = hs._handle.create_table(
                self._node(hs), FRAMES_NODE, description=_FRAME_DTYPE, chunkshape=(2048,),
                title="daskloc rows of each frame (frames with features): frame is rows "
                      "[row_start, row_stop) of table",
            )
        return node

    def _create_table(self, hs, names, meta):
        """Create the empty pandas table with the frame index.

        Parameters
        ----------
        hs : pandas.HDFStore
        names : list of str
            Column names in table order; ``frame`` is int64, the others float64.
        meta : dict
            The metadata: the number of source frames sizes the table's HDF5 chunks.
        """
        tables = _tables()
        dummy = pd.DataFrame(
            {c: np.zeros(1, dtype=np.int64 if c == "frame" else np.float64) for c in names}
        )
        # PyTables sizes the table's HDF5 chunks from the rows it expects in all.
        try:
            n_source = len(decode_frames(meta["source"]["frames"]))
        except (KeyError, TypeError, ValueError):
            n_source = 10_000
        expected = int(min(max(n_source * EXPECTED_PER_FRAME, 10_000), 10**10))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tables.PerformanceWarning)
            hs.append(self.key, dummy, format="table", data_columns=True, index=False,
                      expectedrows=expected)
        table = self._table(hs)
        table.truncate(0)
        self._index(table)
        return table

    def complete_chunks(self):
        with self._session() as hs:
            chunks = np.empty(0, _CHUNK_DTYPE) if hs is None else self._chunks(hs)
        return [(int(a), int(b)) for a, b in zip(chunks["start"], chunks["stop"])]

    def chunk_ids(self, chunks=None):
        with self._session() as hs:
            stored = np.empty(0, _CHUNK_DTYPE) if hs is None else self._chunks(hs)
        wanted = None if chunks is None else {(int(a), int(b)) for a, b in chunks}
        out = {}
        for r in stored:
            c = (int(r["start"]), int(r["stop"]))
            if wanted is None or c in wanted:
                out[c] = ChunkMark(id_from_words(r["id_hi"], r["id_lo"]), None,
                                   int(r["row_stop"] - r["row_start"]))
        return out

    def n_rows(self, chunks=None):
        with self._session() as hs:
            stored = np.empty(0, _CHUNK_DTYPE) if hs is None else self._chunks(hs)
        counts = {(int(r["start"]), int(r["stop"])): int(r["row_stop"] - r["row_start"])
                  for r in stored}
        if chunks is None:
            return sum(counts.values())
        return sum(counts.get((int(a), int(b)), 0) for a, b in chunks)

    # -- reading -----------------------------------------------------------------
    def read(self, frames=None, *, chunks=None, strict=True):
        """Read the features of some frames from the complete chunks.

        As :meth:`FeatureStore.read` (the same parameters); the metadata, the chunk
        records and the rows come
        from one opening of the file, so they agree with each other.

        Raises
        ------
        daskloc.stores.StoreBusyError
            Another program kept the file open for writing longer than ``lock_timeout``
            (a daskloc batch holds it for milliseconds per chunk).
        DamagedStoreError
            Rows of the selection cannot be read back (a writer was killed mid-write and
            nobody resumed since: resuming the batch repairs the file).
        """
        with self._session() as hs:
            doc = None if hs is None else self._read_meta(hs)
            meta = JobMetadata.from_json(doc, self.url) if doc else None
            source = self.source_frames(meta) if meta else None
            lo, hi, wanted = normalize_selection(frames, source if strict else None,
                                                 where=self.url)
            columns = self.columns(meta) if meta else JobMetadata().column_dtypes()
            out = None
            if hs is not None and hi > lo and meta:
                verifier = ChunkVerifier(meta)
                keep = None if chunks is None else {(int(a), int(b)) for a, b in chunks}
                valid = [(int(r["start"]), int(r["stop"])) for r in self._chunks(hs)
                         if (keep is None or (int(r["start"]), int(r["stop"])) in keep)
                         and verifier.accepts((int(r["start"]), int(r["stop"])), ChunkMark(
                             id_from_words(r["id_hi"], r["id_lo"])))]
                out = self._select(hs, lo, hi, wanted, columns, valid)
        if out is None or len(out) == 0:
            return pd.DataFrame({c: np.empty(0, dtype=dt) for c, dt in columns.items()})
        return out

    def _read_selection(self, lo, hi, wanted, columns, chunks):
        with self._session() as hs:
            return None if hs is None else self._select(hs, lo, hi, wanted, columns, chunks)

    def plan(self, hs, lo, hi, wanted=None, chunks=None):
        """Row ranges of the table that hold a frame selection.

        Parameters
        ----------
        hs : pandas.HDFStore
            The open file.
        lo, hi : int
            The selection lies in frames ``[lo, hi)``.
        wanted : numpy.ndarray of int64, optional
            Exact sorted frames; None means every frame in ``[lo, hi)``.
        chunks : iterable of (int, int), optional
            Only these recorded chunks (default: all).

        Returns
        -------
        list of (int, int)
            ``(row_start, row_stop)`` ranges in increasing order, from the recorded
            chunks only: each chunk's entries in ``daskloc_frames`` give the rows of its
            frames, so the ranges start and end exactly at the selection's first and last
            rows (in between, frames not wanted are read and dropped). Ranges of
            neighbouring chunks are merged.
        """
        frames = self._node(hs, FRAMES_NODE)
        runs = []
        keep = None if chunks is None else {(int(a), int(b)) for a, b in chunks}
        for c in self._chunks(hs):
            start, stop = int(c["start"]), int(c["stop"])
            if keep is not None and (start, stop) not in keep:
                continue
            a, b = max(start, lo), min(stop, hi)
            f0, f1 = int(c["frames_start"]), int(c["frames_stop"])
            if a >= b or f0 == f1:
                continue
            entries = frames.read(f0, f1)
            f = entries["frame"]
            if wanted is None:
                entries = entries[(f >= a) & (f < b)]
            else:
                entries = entries[np.isin(f, wanted)]
            if not len(entries):
                continue
            i, j = int(entries["row_start"][0]), int(entries["row_stop"][-1])
            if not int(c["row_start"]) <= i < j <= int(c["row_stop"]):
                raise DamagedStoreError(
                    errno.EIO, f"{self.url}: daskloc_frames disagrees with daskloc_chunks "
                    f"for chunk [{start}, {stop}); run the job again with overwrite=True"
                )
            if runs and runs[-1][1] == i:
                runs[-1] = (runs[-1][0], j)
            else:
                runs.append((i, j))
        return runs

    def _select(self, hs, lo, hi, wanted, columns, chunks=None):
        tables = _tables()
        try:
            runs = self.plan(hs, lo, hi, wanted, chunks)
            if not runs:
                return None
            table = self._table(hs)
            rec = np.concatenate([table.read(i, j) for i, j in runs])
        except tables.HDF5ExtError as exc:
            raise self._damaged(exc, "has rows that cannot be read back",
                                repairable=getattr(self, "_live_suspect", False)) from exc
        if wanted is not None:
            rec = rec[np.isin(rec["frame"], wanted)]
        return pd.DataFrame({c: np.asarray(rec[c], dtype=dt) for c, dt in columns.items()})
