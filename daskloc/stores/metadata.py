"""The job-metadata document of a feature store, and the identity of the job and its chunks.

Every store holds one small JSON document per table (``_daskloc.json`` in Parquet, the
``daskloc`` group attribute in Zarr, the ``daskloc_metadata`` node in HDF5, a row of
``daskloc_stores`` in SQL). This module owns what is in it: the format marker and
version, the fields daskloc reads and their types (:func:`validate_metadata`), and the
**identity** of the job it describes (:func:`job_identity`) from which every stored
chunk's identity follows (:func:`chunk_id`).

Why chunk identities
--------------------
A chunk of features is only right for the job that computed it: the same parameters,
the same source video and the same frame range. Since format version 2 every chunk
carries ``chunk_id(job_identity(metadata), start, stop, skipped)`` (in the Parquet
file's key-value metadata, the Zarr/HDF5 chunk records, the SQL progress rows),
written atomically with its rows. Readers and resumed jobs count a chunk only when
its own identity equals the one the metadata's parameters and source give, so a lost,
replaced or edited metadata document can never pass old rows off as new ones, and a
stray file is never read.

The identity is a SHA-256 over canonical JSON (sorted keys, no whitespace) of the
job's ``params`` (the normalised locate parameters, plus ``mask``/``background``
when used) and the source's identity fields (:data:`SOURCE_IDENTITY`). Execution
choices (cluster, chunk order, the error policy) are not part of it.
"""

from __future__ import annotations

import hashlib
import json
import numbers

import numpy as np

__all__ = [
    "METADATA_FORMAT",
    "METADATA_VERSION",
    "SOURCE_IDENTITY",
    "ChunkMark",
    "ChunkVerifier",
    "MetadataError",
    "UnsafeStoreError",
    "chunk_id",
    "id_from_words",
    "id_words",
    "job_identity",
    "make_chunk_id",
    "validate_metadata",
]

#: Value of the ``"format"`` key of every daskloc metadata document.
METADATA_FORMAT = "daskloc-features"
#: Version of the metadata layout. 2: every chunk carries its job's identity.
METADATA_VERSION = 2
#: Versions written before chunk identities existed: readable, not resumable.
LEGACY_VERSIONS = (1,)

#: Source fields that identify the input: a store written from another source refuses
#: to resume, and its chunks' identities differ.
SOURCE_IDENTITY = (
    "path",
    "file_size",
    "file_mtime_ns",
    "n_frames",
    "frames",
    "shape",
    "dtype",
    "channel",
)

#: Hex digits of a chunk identity (128 bits).
CHUNK_ID_HEX = 32


class MetadataError(ValueError):
    """A store's metadata document is missing a field daskloc needs, or holds garbage.

    The message names the store, what is wrong and the fix.
    """


class UnsafeStoreError(ValueError):
    """A store holds something that would run code when read (e.g. a pickled object).

    daskloc refuses to open such a store; nothing in it is executed.
    """


# ----------------------------------------------------------------- validation

_FIX = ("if the store is yours, run the job again with overwrite=True (CLI: --overwrite) "
        "to locate it anew, or restore the metadata from a copy")


def _damaged(where, what):
    return MetadataError(f"{where}: the store's metadata is damaged: {what}; {_FIX}")


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _type_name(v):
    return "null" if v is None else type(v).__name__


def _check_frames(where, spec):
    if spec is None:
        return
    if isinstance(spec, dict):
        start, stop, step = spec.get("start"), spec.get("stop"), spec.get("step", 1)
        if not (_is_int(start) and _is_int(stop) and _is_int(step)) or step <= 0 or start < 0:
            raise _damaged(where, f"source.frames is {spec!r}, expected "
                                  "{'start': int >= 0, 'stop': int, 'step': int > 0}")
        return
    if isinstance(spec, list):
        if not all(_is_int(v) and v >= 0 for v in spec) or any(
                b <= a for a, b in zip(spec, spec[1:])):
            raise _damaged(where, "source.frames is a list that is not of increasing "
                                  "non-negative integers")
        return
    raise _damaged(where, f"source.frames is a {_type_name(spec)}, expected a dict or a list")


def _check_ranges(where, name, ranges, ordered=True):
    if not isinstance(ranges, list):
        raise _damaged(where, f"{name} is a {_type_name(ranges)}, expected a list of "
                              "[start, stop] frame ranges")
    prev = None
    for r in ranges:
        if (not isinstance(r, list) or len(r) != 2 or not all(_is_int(v) for v in r)
                or not 0 <= r[0] < r[1]):
            raise _damaged(where, f"{name} holds {r!r}, expected [start, stop] with "
                                  "0 <= start < stop")
        if ordered and prev is not None and r[0] < prev:
            raise _damaged(where, f"{name} holds overlapping or unsorted ranges "
                                  f"(... [{prev}, ...], {r!r})")
        prev = r[1]


def validate_metadata(meta, where):
    """Check that a metadata document has the fields and types daskloc reads.

    Parameters
    ----------
    meta : object
        What the store's metadata parsed to (JSON values).
    where : str
        The store's location, for messages.

    Returns
    -------
    dict
        ``meta`` itself.

    Raises
    ------
    MetadataError
        Not a daskloc metadata document, a newer format version than this daskloc
        reads, or a field of the wrong type (the message names the field, what it
        holds and the fix).
    """
    if not isinstance(meta, dict) or meta.get("format") != METADATA_FORMAT:
        raise MetadataError(
            f"{where}: the metadata is not daskloc feature-store metadata (no "
            f"'format': {METADATA_FORMAT!r}); {_FIX}")
    version = meta.get("format_version", 1)
    if not _is_int(version) or version < 1:
        raise _damaged(where, f"format_version is {version!r}, expected a positive integer")
    if version > METADATA_VERSION:
        raise MetadataError(
            f"{where}: written by a newer daskloc (metadata format version {version}; "
            f"this daskloc reads up to {METADATA_VERSION}): upgrade daskloc to read it")
    for key in ("params", "source", "chunking", "columns", "store", "versions"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], dict):
            raise _damaged(where, f"{key} is a {_type_name(meta[key])}, expected an object")
    source = meta.get("source") or {}
    _check_frames(where, source.get("frames"))
    chunking = meta.get("chunking") or {}
    if "chunks" in chunking:
        _check_ranges(where, "chunking.chunks", chunking["chunks"])
    frames = chunking.get("chunk_frames")
    if frames is not None and (not isinstance(frames, list)
                               or not all(_is_int(v) and v > 0 for v in frames)):
        raise _damaged(where, "chunking.chunk_frames is not a list of positive integers")
    columns = meta.get("columns")
    if columns is not None:
        for name, dt in columns.items():
            try:
                ok = isinstance(dt, str) and np.dtype(dt).kind in "fiu"
            except TypeError:
                ok = False
            if not ok:
                raise _damaged(where, f"columns[{name!r}] is {dt!r}, expected a numeric "
                                      "dtype name such as 'float64'")
        if columns and "frame" not in columns:
            raise _damaged(where, "columns has no 'frame' column")
    if "complete_chunks" in meta:
        _check_ranges(where, "complete_chunks", meta["complete_chunks"], ordered=False)
    for key, kind, what in (("n_features", _is_int, "an integer"),
                            ("finished", lambda v: isinstance(v, bool), "true or false"),
                            ("created", lambda v: isinstance(v, str), "a string"),
                            ("updated", lambda v: isinstance(v, str), "a string"),
                            ("daskloc_version", lambda v: isinstance(v, str), "a string"),
                            ("job", lambda v: isinstance(v, str), "a string"),
                            ("video", lambda v: isinstance(v, str), "a string")):
        if meta.get(key) is not None and not kind(meta[key]):
            raise _damaged(where, f"{key} is {meta[key]!r}, expected {what}")
    failed = meta.get("failed_chunks", [])
    if not isinstance(failed, list) or not all(
            isinstance(f, dict) and _is_int(f.get("start")) and _is_int(f.get("stop"))
            for f in failed):
        raise _damaged(where, "failed_chunks is not a list of {'start', 'stop', 'error'}")
    skipped = meta.get("skipped", [])
    if not isinstance(skipped, list) or not all(
            isinstance(s, list) and len(s) == 3 and _is_int(s[0]) and _is_int(s[1])
            and isinstance(s[2], list) and all(_is_int(v) for v in s[2]) for s in skipped):
        raise _damaged(where, "skipped is not a list of [start, stop, [frames]]")
    return meta


def is_legacy(meta):
    """True for metadata written before chunk identities (format version 1)."""
    return meta.get("format_version", 1) in LEGACY_VERSIONS


def planned_chunks(meta):
    """The job's chunks ``[(start, stop), ...]`` from the metadata, or None if not listed."""
    chunks = (meta.get("chunking") or {}).get("chunks")
    return None if chunks is None else [tuple(c) for c in chunks]


def skipped_frames(meta):
    """``{(start, stop): tuple of skipped frame numbers}`` recorded in the metadata."""
    return {(int(a), int(b)): tuple(int(f) for f in fr) for a, b, fr in meta.get("skipped", [])}


# ----------------------------------------------------------------- identities


def _canonical(value):
    return json.dumps(json.loads(json.dumps(value, allow_nan=False)), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)


def job_identity(meta):
    """The identity of the job a metadata document describes.

    Parameters
    ----------
    meta : dict
        A metadata document (or the ``params`` and ``source`` a job will record).

    Returns
    -------
    str
        64 hex digits: SHA-256 of canonical JSON of ``params`` and the
        :data:`SOURCE_IDENTITY` fields of ``source``.
    """
    source = meta.get("source") or {}
    doc = {"params": meta.get("params") or {},
           "source": {k: source.get(k) for k in SOURCE_IDENTITY}}
    return hashlib.sha256(_canonical(doc).encode("ascii")).hexdigest()


def chunk_id(identity, start, stop, skipped=()):
    """The identity of one chunk of a job.

    Parameters
    ----------
    identity : str
        :func:`job_identity` of the job.
    start, stop : int
        The chunk's frame range ``[start, stop)`` (absolute frame numbers).
    skipped : sequence of int, optional
        Frames of the chunk that could not be decoded and were left out
        (``on_error="skip"``); empty for a whole chunk.

    Returns
    -------
    str
        32 hex digits (128 bits of a SHA-256).
    """
    frames = ",".join(str(int(f)) for f in sorted(skipped))
    text = f"daskloc-chunk:{identity}:{int(start)}:{int(stop)}:{frames}"
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:CHUNK_ID_HEX]


#: :func:`chunk_id` under a name that does not clash with ``chunk_id=`` arguments.
make_chunk_id = chunk_id


def id_words(hex_id):
    """A 32-hex-digit chunk identity as two int64 words (for integer-only layouts)."""
    raw = np.array([int(hex_id[:16], 16), int(hex_id[16:32], 16)], dtype=np.uint64)
    return tuple(int(v) for v in raw.view(np.int64))


def id_from_words(hi, lo):
    """Inverse of :func:`id_words`; None for the all-zero words of a chunk without one."""
    words = np.array([hi, lo], dtype=np.int64).view(np.uint64)
    if not words.any():
        return None
    return f"{int(words[0]):016x}{int(words[1]):016x}"


class ChunkMark:
    """What a store holds about one stored chunk: its identity, skipped frames, rows.

    Attributes
    ----------
    id : str or None
        The chunk's identity as stored (None: written before identities existed).
    skipped : tuple of int or None
        Skipped frames stored with the chunk; None when the backend keeps them only in
        the metadata document.
    n_rows : int or None
        Number of features in the chunk, when known without reading it.
    """

    __slots__ = ("id", "skipped", "n_rows")

    def __init__(self, id=None, skipped=None, n_rows=None):  # noqa: A002 - the field's name
        self.id, self.skipped, self.n_rows = id, skipped, n_rows

    def __repr__(self):
        return f"ChunkMark(id={self.id!r}, skipped={self.skipped!r}, n_rows={self.n_rows!r})"


class ChunkVerifier:
    """Decides which stored chunks belong to the job a metadata document describes.

    Parameters
    ----------
    meta : dict
        A validated metadata document.
    """

    def __init__(self, meta):
        self.legacy = is_legacy(meta)
        planned = planned_chunks(meta)
        self.planned = None if planned is None else set(planned)
        self.identity = job_identity(meta)
        self.skipped = skipped_frames(meta)

    def expected(self, chunk, mark=None):
        """The identity a chunk of this job has (given what is stored with it)."""
        stored = mark.skipped if mark is not None and mark.skipped is not None else None
        skipped = stored if stored is not None else self.skipped.get(tuple(chunk), ())
        return chunk_id(self.identity, chunk[0], chunk[1], skipped)

    def reason(self, chunk, mark):
        """None if ``chunk`` (with its stored ``mark``) is this job's, else why not."""
        chunk = tuple(chunk)
        if self.planned is not None and chunk not in self.planned:
            return "not one of the job's chunks (its frame range is not in the chunking)"
        if self.legacy:  # metadata of daskloc 0.1: its chunks carried no identity
            if mark is not None and mark.id is not None:
                return ("carries a job identity, but the metadata is of daskloc < 0.2 (the "
                        "metadata was replaced by an older copy)")
            return None
        if mark is None or mark.id is None:
            return "carries no job identity (not written by this job)"
        if mark.id != self.expected(chunk, mark):
            return ("written by another job (other parameters or source than the "
                    "metadata says)")
        return None

    def accepts(self, chunk, mark):
        return self.reason(chunk, mark) is None
