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
import importlib
import numbers
import os

import numpy as np
import pandas as pd

from daskloc.metadata import (
    METADATA_FORMAT,
    METADATA_VERSION,
    ChunkMark,
    ChunkVerifier,
    MetadataError,
    JobMetadata,
    UnsafeStoreError,
    as_metadata,
    make_chunk_id,
)

__all__ = [
    "METADATA_FORMAT",
    "METADATA_VERSION",
    "ChunkMark",
    "FeatureStore",
    "MetadataError",
    "StoreBusyError",
    "StoreInUseError",
    "StoreMismatchError",
    "decode_frames",
    "encode_frames",
    "open_store",
    "register_backend",
    "UnsafeStoreError",
]



class StoreMismatchError(ValueError):
    """An existing store was written with other parameters, another source or chunking."""


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
        raise ValueError(f"frames must be non-negative (absolute frame numbers), got {_describe(arr)}")
    wanted = np.unique(arr.astype(np.int64))
    if first is not None and (wanted[0] < first or wanted[-1] > last):
        bad = wanted[(wanted < first) | (wanted > last)]
        raise outside(_describe(bad))
    return int(wanted[0]), int(wanted[-1]) + 1, wanted


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

    Parameters
    ----------
    start, stop : int
        The chunk's frame range ``[start, stop)``.
    features : pandas.DataFrame
        Feature columns and an int64 ``frame`` column.

    Returns
    -------
    start, stop : int
    features : pandas.DataFrame
        Sorted by frame (stable) if it was not.

    Raises
    ------
    ValueError
        No ``frame`` column, or a frame outside ``[start, stop)``.
    """
    start, stop = int(start), int(stop)
    if "frame" not in features.columns:
        raise ValueError("features must have a 'frame' column")
    frame = features["frame"].to_numpy()
    if frame.size and (frame.min() < start or frame.max() >= stop):
        raise ValueError(
            f"chunk [{start}, {stop}) got features of frames {frame.min()}..{frame.max()}"
        )
    if frame.size and not np.all(frame[1:] >= frame[:-1]):
        features = features.sort_values("frame", kind="stable")
    return start, stop, features


# ----------------------------------------------------------------- the interface


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

    #: Short name of the backend, recorded in the metadata (e.g. ``"parquet"``).
    backend = None
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

    def __init__(self, path, *, table=None):
        path = os.fspath(path)
        self.path = path if "://" in path else os.path.abspath(path)
        self.table = check_table_name(table)

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

    def check_clear(self):
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

    # -- the writer's lease ------------------------------------------------------
    def _lease_ops(self):
        """The backend's lease primitives (see :mod:`daskloc.stores._lease`)."""
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
        from daskloc.stores._lease import Lease

        return Lease(self._lease_ops(), self.url)

    def lease_holder(self):
        """The writer holding this table's lease now, or None.

        Returns
        -------
        dict or None
            ``host``, ``pid``, ``started`` (ISO 8601 UTC), ``heartbeat`` (ISO 8601
            UTC) and ``stale`` (the reason it may be taken over, or None).
        """
        from daskloc.stores._lease import holder_of

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

    def _read_chunks(self, lo, hi, wanted, columns, meta):
        """Rows of the selection from the chunks that :meth:`valid_chunks` accepts.

        Backends override this to check identities where they read them anyway
        (Parquet: in the footers of the chosen files; Zarr: in one read of the chunk
        table)."""
        candidates = self._candidates(lo, hi, wanted)
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

    def read(self, frames=None):
        """Read the features of some frames from the complete chunks.

        Parameters
        ----------
        frames : None, int, slice, range or sequence of int, optional
            Absolute frame numbers; slices and ranges are half-open (``slice(10, 20)``
            is frames 10..19). None reads every complete chunk.

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
        lo, hi, wanted = normalize_selection(frames, self.source_frames(meta), where=self.url)
        columns = self.columns(meta)
        if hi <= lo or not meta:
            return self.empty(meta)
        out = self._read_chunks(lo, hi, wanted, columns, meta)
        if out is None or len(out) == 0:
            return self.empty(meta)
        return out


# ----------------------------------------------------------------- opening stores


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
        it is a hive-style partition folder.

    Returns
    -------
    str or None

    Raises
    ------
    ValueError
        An empty part, or characters that cannot name a file, group, key and SQL table
        alike.
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
    return "/".join(parts)


#: Backends by file-name suffix: ``suffix -> "module:Class"`` (imported on first use).
_BACKENDS = {
    ".parquet": "daskloc.stores.parquet:ParquetStore",
    ".parq": "daskloc.stores.parquet:ParquetStore",
    ".pq": "daskloc.stores.parquet:ParquetStore",
    ".zarr": "daskloc.stores.zarr:ZarrStore",
    ".h5": "daskloc.stores.hdf5:HDF5Store",
    ".hdf5": "daskloc.stores.hdf5:HDF5Store",
    ".hdf": "daskloc.stores.hdf5:HDF5Store",
}
#: Backends by URL scheme (the part before ``+`` for SQLAlchemy URLs).
_SCHEMES = {
    "sqlite": "daskloc.stores.sql:SQLStore",
    "postgresql": "daskloc.stores.sql:SQLStore",
    "postgres": "daskloc.stores.sql:SQLStore",
    "mysql": "daskloc.stores.sql:SQLStore",
    "mariadb": "daskloc.stores.sql:SQLStore",
}
#: Object-storage schemes (through fsspec) and the suffixes that may live there.
_OBJECT_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "memory")
_OBJECT_SUFFIXES = (".parquet", ".parq", ".pq", ".zarr")
_DEFAULT_BACKEND = "daskloc.stores.parquet:ParquetStore"


def register_backend(suffix, target):
    """Register a store backend for paths ending in ``suffix``.

    Parameters
    ----------
    suffix : str
        E.g. ``".zarr"`` (case-insensitive).
    target : str or type
        A :class:`FeatureStore` subclass or its ``"module:Class"`` name.
    """
    _BACKENDS[suffix.lower()] = target


def _backend_class(target):
    if isinstance(target, str):
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)
    return target


def _split_table(location, table):
    """``"path#table"`` -> (path, table); an explicit ``table`` must agree."""
    if "#" in location and "://" not in location.split("#", 1)[1]:
        location, _, from_url = location.partition("#")
        if table is not None and check_table_name(table) != check_table_name(from_url):
            raise ValueError(f"two table names given: {from_url!r} in the location and {table!r}")
        table = from_url
    return location, table


def backend_for(location):
    """The backend class (or its ``"module:Class"`` name) for a location.

    Parameters
    ----------
    location : str
        Local path or URL.

    Returns
    -------
    str or type

    Raises
    ------
    ValueError
        An unknown URL scheme, or a format that object storage cannot hold.
    """
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    suffix = os.path.splitext(location.rstrip("/" + os.sep))[1].lower()
    if scheme in ("", "file"):
        return _BACKENDS.get(suffix, _DEFAULT_BACKEND)
    base = scheme.split("+", 1)[0]
    if base in _SCHEMES:
        return _SCHEMES[base]
    if base in _OBJECT_SCHEMES:
        if suffix in _OBJECT_SUFFIXES:
            return _BACKENDS[suffix]
        raise ValueError(
            f"only Parquet (.parquet) and Zarr (.zarr) stores can live on object storage; "
            f"{location!r} has neither suffix"
        )
    raise ValueError(
        f"unknown store location {location!r}: use a path ending in .parquet, .zarr or .h5, "
        "an SQLAlchemy URL (sqlite:///features.db, postgresql+psycopg://..., "
        "mysql+pymysql://...) or an s3:// URL ending in .parquet or .zarr"
    )


def open_store(path, mode="r", *, table=None, storage_options=None, **options):
    """Open a feature store, choosing the backend from the location.

    Parameters
    ----------
    path : str, os.PathLike or FeatureStore
        Where the store is:

        - a local path ending in ``.parquet`` (or no suffix: Parquet), ``.zarr``,
          ``.h5``/``.hdf5``, or a ``file://`` URL;
        - an SQLAlchemy URL: ``sqlite:///features.db``,
          ``postgresql+psycopg://user:pw@host/db``, ``mysql+pymysql://user:pw@host/db``;
        - an object-storage URL ending in ``.parquet`` or ``.zarr``
          (``s3://bucket/features.zarr``), opened through fsspec.

        ``LOCATION#TABLE`` names a table as ``table`` does. A :class:`FeatureStore` is
        returned as is.
    mode : {"r", "a"}
        ``"r"``: the store must exist. ``"a"``: the store may not exist yet; nothing is
        touched until :meth:`FeatureStore.prepare` or a write.
    table : str, optional
        One result set among several in the same store (``"bulk_water/features"``).
    storage_options : dict, optional
        fsspec options for object storage (e.g. ``{"endpoint_url": ..., "key": ...,
        "secret": ...}``).
    **options
        Passed to the backend (e.g. ``row_group_rows`` for Parquet).

    Returns
    -------
    FeatureStore

    Raises
    ------
    FileNotFoundError
        ``mode="r"`` and there is no store (or no such table) at the location.
    ValueError
        ``mode="r"`` and the location is not a daskloc store; an unknown mode or
        location; a bad table name.
    """
    if isinstance(path, FeatureStore):
        if table is not None and check_table_name(table) != path.table:
            raise ValueError(f"{path!r} is already open on table {path.table!r}, not {table!r}")
        return path
    if mode not in ("r", "a"):
        raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
    location, table = _split_table(os.fspath(path), table)
    if location.startswith("file://"):
        location = location[len("file://"):]
    cls = _backend_class(backend_for(location))
    if storage_options is not None:
        options["storage_options"] = storage_options
    store = cls(location, table=table, **options)
    if mode == "r":
        if not store.exists():
            if not store.location_exists():
                raise FileNotFoundError(f"no feature store at {store.url}: the path does not exist")
            try:
                orphans = len(store.complete_chunks())
            except Exception:  # noqa: BLE001 - not a store at all: the message below
                orphans = 0
            if orphans:
                raise MetadataError(
                    f"{store.url} holds {orphans} chunks of daskloc features but no metadata "
                    "(its metadata document is missing or was deleted), and daskloc reads no "
                    "chunk it cannot check: run the job that wrote it again (its chunks are "
                    "kept if they are that job's, else it is refused), or with "
                    "overwrite=True (CLI: --overwrite)"
                )
            raise ValueError(
                f"{store.url} is not a daskloc feature store (it has no daskloc metadata"
                f"{'' if store.table is None else ' for table ' + repr(store.table)}); "
                "point to a store written by daskloc batch / daskloc locate --out"
            )
    return store
