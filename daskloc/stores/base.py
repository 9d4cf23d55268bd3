"""The feature-store interface: append a chunk atomically, list complete chunks, read frames.

A *feature store* holds the features of one located video: one piece per frame chunk
plus a small JSON metadata document (parameters, source, chunking, progress). Every
backend (Parquet now; Zarr, HDF5, SQL later) implements :class:`FeatureStore`; the
pipeline talks only to this interface and never to a file format.

Contract every backend keeps
----------------------------
- A chunk becomes visible (in :meth:`FeatureStore.complete_chunks` and to
  :meth:`FeatureStore.read`) only once it is complete: a reader never sees part of a chunk.
- Every chunk is stored with its identity (:func:`daskloc.metadata.chunk_id`),
  atomically with its rows. Reads take exactly the chunks that are in the metadata's
  chunking and whose identity is the one the metadata's parameters and source give
  (:meth:`FeatureStore.valid_chunks`); anything else present is ignored (and reported
  by :meth:`FeatureStore.chunk_report`). The metadata's list of complete chunks is
  informational.
- One writer at a time: a job holds the store's lease (:meth:`FeatureStore.lease`);
  readers never need it.
- A store can be opened from its path/URL alone (a plain string, picklable), so a Dask
  worker can open it and append the chunk it computed: feature data never travels back
  to the client.
- Chunks are identified by their frame range ``[start, stop)`` in absolute frame numbers;
  the ranges of one store never overlap.
"""

from __future__ import annotations

import abc
import bisect
import numbers
import os

import numpy as np
import pandas as pd

from daskloc.metadata import (
    METADATA_FORMAT,
    METADATA_VERSION,
    ChunkMark,
    ChunkVerifier,
    JobMetadata,
    MetadataError,
    UnsafeStoreError,
    as_metadata,
    make_chunk_id,
)
from daskloc.stores._lease import Lease, holder_of
from daskloc.stores.errors import StoreBusyError, StoreInUseError

__all__ = [
    "METADATA_FORMAT",
    "METADATA_VERSION",
    "ChunkMark",
    "FeatureStore",
    "MetadataError",
    "StoreBusyError",
    "StoreInUseError",
    "StoreMismatchError",
    "CAPABILITIES",
    "decode_frames",
    "encode_frames",
    "write_error",
    "UnsafeStoreError",
]



class StoreMismatchError(ValueError):
    """An existing store was written with other parameters, another source or chunking."""


# ----------------------------------------------------------------- frame selections


def encode_frames(frame_numbers):
    """Describe a selection of frame numbers compactly as JSON.

    Parameters
    ----------
    frame_numbers : array_like of int, shape (n,)
        Strictly increasing absolute frame numbers.

    Returns
    -------
    dict or list of int
        ``{"start": a, "stop": b, "step": s}`` (as Python's ``range``) when the frames are
        an arithmetic progression, else the list of frame numbers.
    """
    f = np.asarray(frame_numbers, dtype=np.int64)
    if f.size == 0:
        return {"start": 0, "stop": 0, "step": 1}
    if f.size == 1:
        return {"start": int(f[0]), "stop": int(f[0]) + 1, "step": 1}
    d = np.diff(f)
    if d[0] > 0 and np.all(d == d[0]):
        return {"start": int(f[0]), "stop": int(f[-1]) + 1, "step": int(d[0])}
    return [int(v) for v in f]


def decode_frames(spec):
    """Inverse of :func:`encode_frames`.

    Parameters
    ----------
    spec : dict or list of int
        As written by :func:`encode_frames`.

    Returns
    -------
    range or numpy.ndarray of int64
        A sorted sequence of frame numbers supporting ``len`` and indexing.
    """
    if isinstance(spec, dict):
        return range(int(spec["start"]), int(spec["stop"]), int(spec.get("step", 1)))
    return np.asarray(spec, dtype=np.int64)


def count_frames_in(frames, start, stop):
    """Number of frames of a sorted sequence ``frames`` that fall in ``[start, stop)``."""
    return bisect.bisect_left(frames, stop) - bisect.bisect_left(frames, start)


def _describe(frames):
    if isinstance(frames, slice):
        a = "" if frames.start is None else frames.start
        b = "" if frames.stop is None else frames.stop
        return f"{a}:{b}" + ("" if frames.step in (None, 1) else f":{frames.step}")
    if isinstance(frames, range):
        return repr(frames)
    vals = [int(v) if isinstance(v, numbers.Integral) else v for v in frames]
    return repr(vals) if len(vals) <= 8 else f"[{vals[0]}, {vals[1]}, ..., {vals[-1]}]"


def normalize_selection(frames, source_frames=None, where=""):
    """Turn a frame selection into ``(lo, hi, wanted)``.

    Parameters
    ----------
    frames : None, int, slice, range or sequence of int
        Absolute frame numbers. Slices and ranges are half-open like Python's
        (``slice(10, 20)`` is frames 10..19); ``None`` bounds of a slice are open.
    source_frames : range or ndarray, optional
        The source video's selected frames (sorted). When given, a selection reaching
        outside ``source_frames[0] .. source_frames[-1]`` raises.
    where : str
        Name of the store, for messages.

    Returns
    -------
    lo, hi : int
        The selection lies within ``[lo, hi)``.
    wanted : numpy.ndarray of int64 or None
        The exact sorted frames wanted, or None for every frame in ``[lo, hi)``.

    Raises
    ------
    ValueError
        Negative frame numbers, a zero or negative step, non-integer frames, or frames
        outside the source video's frames.
    TypeError
        A selection of an unsupported type.
    """
    first = last = None
    if source_frames is not None and len(source_frames):
        first, last = int(source_frames[0]), int(source_frames[-1])

    def outside(desc):
        return ValueError(
            f"frames {desc} are outside the source video's frames {first}..{last}"
            f"{' of store ' + where if where else ''}; ask for frames within that range"
        )

    if frames is None:
        if first is None:
            return 0, np.iinfo(np.int64).max, None
        return first, last + 1, None
    if isinstance(frames, numbers.Integral) and not isinstance(frames, bool):
        frames = [int(frames)]
    if isinstance(frames, (slice, range)):
        step = 1 if frames.step is None else frames.step
        if step <= 0:
            raise ValueError(f"frames {_describe(frames)}: the step must be positive")
        for bound in (frames.start, frames.stop):
            if bound is not None and (
                not isinstance(bound, numbers.Integral) or isinstance(bound, bool) or bound < 0
            ):
                raise ValueError(
                    f"frames {_describe(frames)}: bounds must be non-negative integers "
                    "(absolute frame numbers)"
                )
        lo = frames.start if frames.start is not None else (first if first is not None else 0)
        if frames.stop is not None:
            hi = frames.stop
        else:
            hi = last + 1 if last is not None else np.iinfo(np.int64).max
        lo, hi = int(lo), int(hi)
        if first is not None and hi > lo and (lo < first or hi > last + 1):
            raise outside(_describe(frames))
        if hi <= lo:
            return lo, lo, np.empty(0, dtype=np.int64)
        if step == 1:
            return lo, hi, None
        if hi == np.iinfo(np.int64).max:
            raise ValueError(f"frames {_describe(frames)}: a stepped selection needs a stop")
        wanted = np.arange(lo, hi, step, dtype=np.int64)
        return int(wanted[0]), int(wanted[-1]) + 1, wanted
    if isinstance(frames, (str, bytes, dict)) or not hasattr(frames, "__iter__"):
        raise TypeError(
            f"frames must be None, an int, a slice, a range or a list of ints; got {frames!r}"
        )
    arr = np.asarray(list(frames))
    if arr.size == 0:
        return 0, 0, np.empty(0, dtype=np.int64)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"frames must be integers (absolute frame numbers), got {_describe(arr)}")
    if arr.min() < 0:
        raise ValueError("frames must be non-negative (absolute frame numbers), got "
                         f"{_describe(arr)}")
    wanted = np.unique(arr.astype(np.int64))
    if first is not None and (wanted[0] < first or wanted[-1] > last):
        bad = wanted[(wanted < first) | (wanted > last)]
        raise outside(_describe(bad))
    return int(wanted[0]), int(wanted[-1]) + 1, wanted


def write_error(exc, message):
    """The error a store raises when its location cannot be written.

    Every backend (and :func:`daskloc.export`) maps an OSError of its file system or
    object store through this one function, so the caller sees the same kind of error
    with a message that names the location and the fix.

    Parameters
    ----------
    exc : OSError
        The error met.
    message : str
        What could not be written, why (``exc.strerror``) and what to do.

    Returns
    -------
    OSError
        Of the class of ``exc`` if that is a builtin one (``PermissionError``,
        ``IsADirectoryError``, ...), else of the nearest of ``PermissionError``,
        ``FileNotFoundError``, ``NotADirectoryError``, ``FileExistsError`` or plain
        ``OSError`` (a library's own subclass is not re-created); ``errno`` kept.
    """
    kind = type(exc)
    if kind.__module__ != "builtins":
        for kind in (PermissionError, FileNotFoundError, NotADirectoryError, FileExistsError):
            if isinstance(exc, kind):
                break
        else:
            kind = OSError
    return kind(exc.errno, message) if exc.errno is not None else kind(message)


def chunk_may_hold(start, stop, lo, hi, wanted):
    """Whether frames ``[start, stop)`` can hold any frame of the selection ``(lo, hi, wanted)``."""
    if start >= hi or stop <= lo:
        return False
    if wanted is None:
        return True
    i = np.searchsorted(wanted, start, side="left")
    return bool(i < wanted.size and wanted[i] < stop)


def check_chunk_features(start, stop, features):
    """Validate one chunk's features for :meth:`FeatureStore.append_chunk`.

    Every backend checks its input here, before it writes anything.

    Parameters
    ----------
    start, stop : int
        The chunk's frame range ``[start, stop)``.
    features : pandas.DataFrame
        Feature columns and an integer ``frame`` column (whole numbers of another
        dtype are accepted).

    Returns
    -------
    start, stop : int
    features : pandas.DataFrame
        With ``frame`` as int64, sorted by frame (stable) if it was not.

    Raises
    ------
    ValueError
        An empty range (``stop <= start``), no ``frame`` column, frames that are not
        whole numbers, or a frame outside ``[start, stop)``.
    """
    start, stop = int(start), int(stop)
    if stop <= start:
        raise ValueError(f"chunk [{start}, {stop}) is empty: stop must exceed start")
    if "frame" not in features.columns:
        raise ValueError("features must have a 'frame' column")
    frame = features["frame"].to_numpy()
    if frame.dtype != np.int64:
        if frame.size and not np.issubdtype(frame.dtype, np.integer):
            try:
                f = frame.astype(np.float64)
            except (TypeError, ValueError):
                f = np.array([np.nan])
            if not np.all(np.isfinite(f)) or not np.all(f == np.round(f)):
                raise ValueError("the 'frame' column must hold integer frame numbers")
        frame = frame.astype(np.int64)
        features = features.assign(frame=frame)
    if frame.size and (frame.min() < start or frame.max() >= stop):
        raise ValueError(
            f"chunk [{start}, {stop}) got features of frames {frame.min()}..{frame.max()}"
        )
    if frame.size and not np.all(frame[1:] >= frame[:-1]):
        features = features.sort_values("frame", kind="stable")
    return start, stop, features


# ----------------------------------------------------------------- the interface

#: The capability attributes of a store class (class attributes of
#: :class:`FeatureStore`, all bool): ``supports_remote``, ``lists_tables``,
#: ``concurrent_writers``, ``ordered_appends``, ``live_reads``.
CAPABILITIES = ("supports_remote", "lists_tables", "concurrent_writers", "ordered_appends",
                "live_reads")


class FeatureStore(abc.ABC):
    """A place to stream a video's features to, one chunk of frames at a time.

    Open one with :func:`open_store`. Instances hold only their location, table name
    and options (plain strings and numbers), so they pickle cheaply and a Dask worker
    that unpickles one opens its own files or connections. Backends that cache open
    handles keep them in attributes whose names start with ``_live_``; those are dropped
    when pickling.

    Parameters
    ----------
    path : str or os.PathLike
        Where the store lives: a local path (made absolute) or a URL.
    table : str, optional
        Name of one result set inside the store, for stores holding several (e.g.
        ``"bulk_water/features"``). None is the backend's default table.
    """

    # -- what the class opens (read by the registry, daskloc.stores._registry) ----
    #: Short name of the backend, recorded in the metadata (e.g. ``"parquet"``).
    backend = None
    #: Name of the format for people (e.g. ``"Parquet"``), used in messages.
    format_name = None
    #: File-name suffixes of the locations this class opens, lower case, the usual one
    #: first (e.g. ``(".parquet", ".parq", ".pq")``).
    suffixes = ()
    #: URL schemes this class opens (the part before ``+`` of ``postgresql+psycopg://``).
    url_schemes = ()
    #: For messages: what the URLs of :attr:`url_schemes` are, and examples.
    url_description = None
    url_examples = ()
    #: True for the class that opens local paths whose suffix no class claims.
    fallback = False

    # -- capabilities (see CAPABILITIES; FeatureStore.capabilities lists them) ---
    #: True if the store can live on object storage (``s3://bucket/name<suffix>``,
    #: through fsspec, with ``storage_options``).
    supports_remote = False
    #: True if :meth:`list_tables` lists the tables of the store (a many-video batch's
    #: videos are found this way); False: readers must name the table.
    lists_tables = False
    #: True if any number of processes may append chunks at once (each chunk written by
    #: the Dask worker that computed it). False for single-writer formats: then
    #: :func:`daskloc.batch` brings each chunk's features back to the client, which
    #: alone appends them.
    concurrent_writers = True
    #: True if chunks must be appended in increasing frame order (the client then holds
    #: finished chunks until the ones before them are written).
    ordered_appends = False
    #: True if another process can read complete chunks while a batch writes. A backend
    #: that cannot offer it raises :class:`StoreBusyError` from reads during a write.
    live_reads = True

    @classmethod
    def capabilities(cls):
        """What the class can do: ``{name: bool}`` for every name of :data:`CAPABILITIES`.

        Returns
        -------
        dict
        """
        return {name: bool(getattr(cls, name)) for name in CAPABILITIES}

    def __init__(self, path, *, table=None):
        path = os.fspath(path)
        self.path = path if "://" in path else os.path.abspath(path)
        self.table = check_table_name(table)

    @property
    def store_path(self):
        """str: Where the whole store (all its tables) lives: a local path or a URL.

        Two stores of the same class and :attr:`table` whose ``store_path`` names the
        same place are the same table.
        """
        return self.path

    @property
    def url(self):
        """str: The store's location (with the table name after ``#``, if any)."""
        return self.path if self.table is None else f"{self.path}#{self.table}"

    def __repr__(self):
        table = "" if self.table is None else f", table={self.table!r}"
        return f"{type(self).__name__}({self.path!r}{table})"

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_live_")}

    def close(self):
        """Release open files or connections (they are re-opened when needed)."""
        for name in [k for k in self.__dict__ if k.startswith("_live_")]:
            handle = self.__dict__.pop(name)
            for method in ("dispose", "close"):
                if hasattr(handle, method):
                    getattr(handle, method)()
                    break

    # -- lifecycle ---------------------------------------------------------------
    @abc.abstractmethod
    def exists(self):
        """Return True if a daskloc store (with metadata) is at :attr:`path`."""

    def location_exists(self):
        """Return True if anything exists at :attr:`path` (a store or not)."""
        return os.path.exists(self.path)

    @abc.abstractmethod
    def prepare(self):
        """Create the store's location if needed and check that it can be written.

        Writes nothing another writer of the store could be writing at the same time
        (it runs before the writer's lease is taken).

        Raises
        ------
        PermissionError, OSError
            The location cannot be created or written (the message names the path and
            the fix).
        ValueError
            The location exists, is not empty and is not a daskloc store (nothing is
            written into it).
        """

    def check_clear(self):  # noqa: B027 - optional hook: the default checks nothing
        """Check that :meth:`clear` can remove this table without touching anything else.

        :func:`daskloc.batch` calls it for every table of a job before it clears any,
        so an overwrite either starts or changes nothing.

        Raises
        ------
        ValueError
            The location holds data daskloc did not write (the message lists it and
            says to move it out of the store first); nothing is removed.
        """

    @abc.abstractmethod
    def clear(self):
        """Remove every chunk, temporary piece and the metadata of this table.

        Checks first (:meth:`check_clear`) and deletes only what daskloc wrote; works
        on a damaged daskloc store (metadata garbage or truncated), so a job can always
        start again with ``overwrite=True``.

        Raises
        ------
        ValueError
            The location holds other data and is not a daskloc store: nothing is removed.
        """

    @abc.abstractmethod
    def remove_temporary(self):
        """Remove leftovers of writers that died mid-write (never visible to readers)."""

    def finish(self, last=True):  # noqa: B027 - optional hook: the default does nothing
        """Called once a job's writes to this table are over, still under its lease.

        :func:`daskloc.batch` and :func:`daskloc.export` call it after the last
        metadata write, also when the job failed (best effort then). A backend can
        prepare the table for plain readers here (the Zarr store writes consolidated
        metadata); it must leave the table readable and resumable as before, and the
        next write (a resumed job, :meth:`clear`) must undo whatever it wrote first.

        Parameters
        ----------
        last : bool, optional
            False when the batch finishes more tables of the same store right after
            this one (work for the whole store can wait for the last).
        """

    # -- the writer's lease ------------------------------------------------------
    def _lease_ops(self):
        """The backend's lease primitives: a backend returns
        ``daskloc.stores.LockFileOps(path)`` for a local lock file beside its data (name
        it with ``daskloc.stores.lease_name(location, table)``) or
        ``daskloc.stores.ObjectLeaseOps(fs, path)`` on object storage; ``batch`` refuses
        to write a store without a lease (one writer per store)."""
        raise NotImplementedError(
            f"the {self.backend or type(self).__name__} store backend has no lease"
        )

    def lease(self):
        """The one-writer lease of this table (not yet acquired).

        Returns
        -------
        daskloc.stores._lease.Lease
            ``with store.lease(): ...`` holds it: acquiring raises
            :class:`StoreInUseError` (naming host, process, start and last heartbeat
            of the holder) while another live writer holds it, and takes over a lease
            whose writer died (a process gone on this host, or no heartbeat for
            :data:`daskloc.stores._lease.LEASE_TIMEOUT` seconds).
        """

        return Lease(self._lease_ops(), self.url)

    def lease_holder(self):
        """The writer holding this table's lease now, or None.

        Returns
        -------
        dict or None
            ``host``, ``pid``, ``started`` (ISO 8601 UTC), ``heartbeat`` (ISO 8601
            UTC) and ``stale`` (the reason it may be taken over, or None).
        """

        try:
            return holder_of(self._lease_ops())
        except NotImplementedError:
            return None

    # -- metadata ----------------------------------------------------------------
    @abc.abstractmethod
    def write_metadata(self, metadata):
        """Replace the metadata document atomically.

        Parameters
        ----------
        metadata : dict
            JSON-able values only.
        """

    def metadata(self):
        """The job metadata of this table as a model, or None if there is none.

        Returns
        -------
        JobMetadata or None

        Raises
        ------
        MetadataError
            As :meth:`read_metadata`.
        """
        doc = self.read_metadata()
        return None if doc is None else JobMetadata.from_json(doc, self.url)

    @abc.abstractmethod
    def read_metadata(self):
        """Return the metadata document, or None if there is none.

        Returns
        -------
        dict or None
            Checked by :func:`daskloc.metadata.validate_metadata`.

        Raises
        ------
        MetadataError
            The metadata exists but cannot be parsed or has fields of the wrong type
            (the message names the store, what is damaged and the fix).
        """

    # -- chunks ------------------------------------------------------------------
    @abc.abstractmethod
    def append_chunk(self, start, stop, features, chunk_id=None, skipped=()):
        """Store the features of frames ``[start, stop)`` atomically, with their identity.

        Parameters
        ----------
        start, stop : int
            Frame range of the chunk (absolute frame numbers, ``stop`` exclusive).
        features : pandas.DataFrame
            Feature columns plus an int64 ``frame`` column with values in
            ``[start, stop)``; may be empty.
        chunk_id : str, optional
            The chunk's identity (:func:`daskloc.metadata.chunk_id`), stored
            with the rows. Default: the identity the store's current metadata gives
            (the metadata must be written first).
        skipped : sequence of int, optional
            Frames of the chunk that could not be decoded and are not in ``features``
            (``batch(..., on_error="skip")``); part of the chunk's identity. Backends
            that can store them with the chunk do (Parquet, SQL); the others rely on
            the metadata listing them (``"skipped"``), written before the chunk.

        Notes
        -----
        Until this returns, readers do not see the chunk; afterwards they see all of it.
        Appending the same range again replaces it atomically (where the backend
        allows replacing).
        """

    def _chunk_id_for(self, start, stop, chunk_id=None, skipped=()):
        """``chunk_id``, or the identity of ``[start, stop)`` under the current metadata."""
        if chunk_id is not None:
            return chunk_id
        meta = self.metadata()
        if meta is None:
            raise ValueError(f"{self.url} has no daskloc metadata: write_metadata comes first")
        if meta.legacy:
            raise ValueError(
                f"{self.url} has metadata of daskloc < 0.2 (format_version 1 or none), whose "
                "chunks carry no identity: it can be read, not appended to; write metadata "
                "of the current format first (or run the job with overwrite=True)")
        skipped = skipped or meta.skipped_frames().get((int(start), int(stop)), ())
        return make_chunk_id(meta.identity, start, stop, skipped)

    @abc.abstractmethod
    def complete_chunks(self):
        """Return the frame ranges of the chunks stored completely (whichever job wrote them).

        Returns
        -------
        list of tuple of int
            ``(start, stop)`` pairs sorted by ``start``.
        """

    @abc.abstractmethod
    def chunk_ids(self, chunks=None):
        """What is stored about each chunk: its identity, skipped frames and row count.

        Parameters
        ----------
        chunks : iterable of (int, int), optional
            Default: every complete chunk.

        Returns
        -------
        dict
            ``{(start, stop): ChunkMark}`` for the chunks asked for that are stored.
        """

    @abc.abstractmethod
    def n_rows(self, chunks=None):
        """Number of features stored in ``chunks`` (default: all complete chunks).

        Parameters
        ----------
        chunks : iterable of (int, int), optional

        Returns
        -------
        int
        """

    def valid_chunks(self, meta=None, chunks=None):
        """The stored chunks that belong to the job the metadata describes.

        A chunk counts when its frame range is one of the metadata's chunking and its
        stored identity is the one the metadata's parameters and source give (stores
        written before identities existed: the range alone). Everything else present
        (stray files, chunks of another job) is left out.

        Parameters
        ----------
        meta : JobMetadata or dict, optional
            The job metadata (or its stored document), if already read.
        chunks : iterable of (int, int), optional
            Candidates (default: every complete chunk).

        Returns
        -------
        list of tuple of int
            Sorted ``(start, stop)`` pairs; ``[]`` without metadata.
        """
        meta = self.read_metadata() if meta is None else meta
        if not meta:
            return []
        verifier = ChunkVerifier(meta)
        candidates = self.complete_chunks() if chunks is None else sorted(
            (int(a), int(b)) for a, b in chunks)
        if verifier.planned is not None:
            candidates = [c for c in candidates if c in verifier.planned]
        if not candidates:
            return candidates
        marks = self.chunk_ids(candidates)
        return [c for c in candidates if verifier.accepts(c, marks.get(c))]

    def chunk_report(self, meta=None):
        """The stored chunks that count, and those that do not with the reason.

        Parameters
        ----------
        meta : JobMetadata or dict, optional
            The job metadata (or its stored document), if already read.

        Returns
        -------
        dict
            ``valid``: sorted ``(start, stop)`` of :meth:`valid_chunks`; ``n_rows``:
            features in them; ``ignored``: ``[{"chunk": [start, stop], "reason": str}]``
            for every other complete chunk present.
        """
        meta = self.read_metadata() if meta is None else meta
        present = self.complete_chunks()
        marks = self.chunk_ids(present) if present else {}
        if not meta:
            return {"valid": [], "n_rows": 0, "ignored": [
                {"chunk": list(c), "reason": "the store has no metadata"} for c in present]}
        verifier = ChunkVerifier(meta)
        valid, ignored = [], []
        for c in present:
            why = verifier.reason(c, marks.get(c))
            if why is None:
                valid.append(c)
            else:
                ignored.append({"chunk": list(c), "reason": why})
        counts = [marks[c].n_rows for c in valid if c in marks]
        n = sum(counts) if None not in counts and len(counts) == len(valid) else self.n_rows(valid)
        return {"valid": valid, "n_rows": int(n), "ignored": ignored}

    @abc.abstractmethod
    def _read_selection(self, lo, hi, wanted, columns, chunks):
        """Backend part of :meth:`read`: rows of ``chunks`` (verified ``(start, stop)``
        pairs) with frame in the selection, sorted by frame."""

    def _candidates(self, lo, hi, wanted):
        """The complete chunks that can hold frames of the selection."""
        return [c for c in self.complete_chunks() if chunk_may_hold(*c, lo, hi, wanted)]

    def _read_chunks(self, lo, hi, wanted, columns, meta, chunks=None):
        """Rows of the selection from the chunks that :meth:`valid_chunks` accepts
        (among ``chunks``, a set of ``(start, stop)``, if given).

        Backends override this to check identities where they read them anyway
        (Parquet: in the footers of the chosen files; Zarr: in one read of the chunk
        table)."""
        candidates = self._candidates(lo, hi, wanted)
        if chunks is not None:
            candidates = [c for c in candidates if c in chunks]
        if not candidates:
            return None
        return self._read_selection(lo, hi, wanted, columns,
                                    self.valid_chunks(meta, candidates))

    def list_tables(self):
        """Names of the tables (result sets) in the whole store that hold daskloc metadata.

        Whatever table this instance is open on, the answer covers the store's location
        (directory, file, database). :func:`daskloc.batch` puts each video of a
        many-video job in its own table (``"video=<name>"``); this is how readers find
        them.

        Returns
        -------
        list of str
            Sorted table names, e.g. ``["run1/video=a", "video=bulk-water"]``. The
            default table (``table=None``) is not listed; an absent location gives ``[]``.

        Raises
        ------
        NotImplementedError
            The backend cannot list its tables (a backend written before this method;
            every backend shipped with daskloc implements it).
        """
        raise NotImplementedError(
            f"the {self.backend or type(self).__name__} store backend cannot list its tables: "
            "name the table (table=..., or video=... for a video of a many-video batch)"
        )

    # -- reading -----------------------------------------------------------------
    def columns(self, meta=None):
        """The stored columns and dtypes, from the metadata.

        Parameters
        ----------
        meta : JobMetadata or dict, optional
            The job metadata (or its stored document), if already read.

        Returns
        -------
        dict
            ``{column name: dtype name}`` in table order (features then ``frame``).
        """
        meta = self.metadata() if meta is None else meta
        return (as_metadata(meta, self.url) if meta else JobMetadata()).column_dtypes()

    def empty(self, meta=None):
        """An empty table with the store's columns and dtypes (pandas.DataFrame)."""
        return pd.DataFrame(
            {c: np.empty(0, dtype=dt) for c, dt in self.columns(meta).items()}
        )

    def source_frames(self, meta=None):
        """The source video's selected frames (range or ndarray), or None if unknown."""
        meta = self.metadata() if meta is None else meta
        spec = as_metadata(meta, self.url).source.get("frames") if meta else None
        return None if spec is None else decode_frames(spec)

    def read(self, frames=None, *, chunks=None, strict=True):
        """Read the features of some frames from the complete chunks.

        Parameters
        ----------
        frames : None, int, slice, range or sequence of int, optional
            Absolute frame numbers; slices and ranges are half-open (``slice(10, 20)``
            is frames 10..19). None reads every complete chunk.
        chunks : iterable of (int, int), optional
            Read only from these chunks (``(start, stop)`` as :meth:`valid_chunks`
            lists them); chunks that are not valid give no rows. Default: every valid
            chunk.
        strict : bool, default True
            Raise ValueError when ``frames`` reaches outside the source video's frames.
            False: such frames simply give no rows (as each video of a many-video read
            contributes the frames it has).

        Returns
        -------
        pandas.DataFrame
            Feature columns (float64) and ``frame`` (int64), sorted by frame (stable
            within a frame), with a default RangeIndex. Frames of the source that are
            not (yet) in a complete chunk contribute no rows: a selection with no
            stored frames gives an empty table with the same columns and dtypes.

        Raises
        ------
        ValueError
            The selection reaches outside the source video's frames (the message names
            both), or is malformed.
        """
        meta = self.read_metadata() or {}  # read once: it can be large for long videos
        lo, hi, wanted = normalize_selection(
            frames, self.source_frames(meta) if strict else None, where=self.url)
        columns = self.columns(meta)
        if hi <= lo or not meta:
            return self.empty(meta)
        out = self._read_chunks(lo, hi, wanted, columns, meta, _chunk_set(chunks))
        if out is None or len(out) == 0:
            return self.empty(meta)
        # Backends that keep every value column as float (SQL, HDF5) give back the
        # metadata's dtypes: trajectories' ``particle`` is int64 in every format.
        cast = {c: dt for c, dt in columns.items()
                if c in out.columns and out[c].dtype != np.dtype(dt)}
        return out.astype(cast) if cast else out


def _chunk_set(chunks):
    """``{(start, stop)}`` of a ``chunks=`` argument (None stays None)."""
    return None if chunks is None else {(int(a), int(b)) for a, b in chunks}


# ----------------------------------------------------------------- table names


#: Table-name parts reserved for a backend's own bookkeeping (the Zarr store keeps a
#: table's index in its sub-group ``_daskloc``): no table may be named so.
RESERVED_TABLE_PARTS = frozenset({"_daskloc"})


def _name_word_ok(word):
    return bool(word) and word not in (".", "..") and all(c.isalnum() or c in "_-." for c in word)


def check_table_name(table):
    """Validate a table (result set) name: ``None``, or words joined by ``/``.

    Parameters
    ----------
    table : str or None
        E.g. ``"features"`` or ``"bulk_water/features"``: letters, digits, ``_``, ``-``
        and ``.`` in each ``/``-separated part. A part may also be ``key=value`` (one
        ``=`` between two such words), the form :func:`daskloc.batch` gives the table
        of each video of a many-video job (``"video=bulk-water"``): in a Parquet store
        it is a hive-style partition folder. No part may be ``_daskloc`` (in any case):
        a Zarr table keeps its index in a sub-group of that name.

    Returns
    -------
    str or None

    Raises
    ------
    ValueError
        An empty part, characters that cannot name a file, group, key and SQL table
        alike, or a reserved part (``_daskloc``).
    """
    if table is None:
        return None
    if not isinstance(table, str):
        raise TypeError(f"table must be a string, got {table!r}")
    parts = table.strip("/").split("/")
    for part in parts:
        words = part.split("=")
        if len(words) > 2 or not all(_name_word_ok(w) for w in words):
            raise ValueError(
                f"table name {table!r} is not usable: use letters, digits, '_', '-' and '.', "
                "with '/' between parts (e.g. 'bulk_water/features'); a part may be "
                "key=value (e.g. 'video=bulk-water')"
            )
        if part.casefold() in RESERVED_TABLE_PARTS:
            raise ValueError(
                f"table name {table!r} is not usable: {part!r} is reserved for daskloc's "
                "own bookkeeping (a Zarr table keeps its index there); choose another name"
            )
    return "/".join(parts)
