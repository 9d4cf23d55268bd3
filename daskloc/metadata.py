"""The job-metadata document of a feature store, and the identity of the job and its chunks.

Every store holds one small JSON document per table (in Parquet the footer of
``_daskloc.parquet``, ``_daskloc.json`` before 0.2; the
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
when used; per-axis values as lists), the source's identity fields
(:data:`SOURCE_IDENTITY`) and, for a video that is not 2-D, its ``dims``. Execution
choices (cluster, chunk order, the error policy) are not part of it. A 2-D job's
identity is the same as before dims were recorded, so stores written then resume.
"""

from __future__ import annotations

import copy
import hashlib
import json
import numbers
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import numpy as np

from daskloc.schema import feature_dtypes

__all__ = [
    "METADATA_FORMAT",
    "METADATA_VERSION",
    "RESULT_KINDS",
    "SOURCE_IDENTITY",
    "FOLLOW_IDENTITY",
    "DIMS_2D",
    "VIDEO_DIMS",
    "ChunkMark",
    "ChunkVerifier",
    "JobMetadata",
    "MetadataError",
    "UnsafeStoreError",
    "as_metadata",
    "chunk_id",
    "id_from_words",
    "id_words",
    "job_identity",
    "make_chunk_id",
    "utc_now",
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

#: Source fields that identify a followed recording (``daskloc.batch(..., follow=True)``):
#: what stays the same while it grows. ``follow`` holds the reader and a SHA-256 of the
#: first frame, which tells this recording from another written to the same path;
#: the frame count, file sizes and times grow, so they are progress, not identity.
FOLLOW_IDENTITY = (
    "path",
    "frame_shape",
    "dtype",
    "channel",
    "follow",
)

#: The dims of a 2-D video: what a document without ``dims`` (written before 3-D videos)
#: describes. Images are ``(y, x)`` frames or ``(z, y, x)`` volumes (daskloc.schema.AXES).
DIMS_2D = ("frame", "y", "x")
#: The dims a video may have.
VIDEO_DIMS = (DIMS_2D, ("frame", "z", "y", "x"))

#: What a result set may hold (the document's ``kind``; absent: features).
RESULT_KINDS = ("features", "trajectories")

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
    dims = meta.get("dims")
    if dims is not None and (not isinstance(dims, list)
                             or tuple(dims) not in VIDEO_DIMS):
        raise _damaged(where, f"dims is {dims!r}, expected "
                              + " or ".join(repr(list(d)) for d in VIDEO_DIMS))
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
                            ("kind", lambda v: v in RESULT_KINDS,
                             " or ".join(repr(k) for k in RESULT_KINDS)),
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


# ----------------------------------------------------------------- identities


def _canonical(value):
    return json.dumps(json.loads(json.dumps(value, allow_nan=False)), sort_keys=True,
                      separators=(",", ":"), ensure_ascii=True)


def job_identity(meta):
    """The identity of the job a metadata document describes.

    Parameters
    ----------
    meta : dict
        A metadata document (or the ``params``, ``source`` and ``dims`` a job will
        record).

    Returns
    -------
    str
        64 hex digits: SHA-256 of canonical JSON of ``params``, the
        :data:`SOURCE_IDENTITY` fields of ``source`` (:data:`FOLLOW_IDENTITY` for a
        followed recording, see :func:`identity_fields`; and its ``position_index``, for
        one position of a multi-position file) and, unless they are :data:`DIMS_2D`
        (or not given), the video's ``dims``: a 2-D job of a one-position file has the
        identity it had before dims and positions were recorded.
    """
    source = meta.get("source") or {}
    doc = {"params": meta.get("params") or {},
           "source": {k: source.get(k) for k in identity_fields(source)}}
    if source.get("position_index") is not None:
        doc["source"]["position_index"] = source["position_index"]
    dims = meta.get("dims")
    if dims is not None and tuple(dims) != DIMS_2D:
        doc["dims"] = list(dims)
    return hashlib.sha256(_canonical(doc).encode("ascii")).hexdigest()


def identity_fields(source):
    """The source fields of a job's identity: :data:`FOLLOW_IDENTITY` for a followed
    recording (a source with ``follow``), else :data:`SOURCE_IDENTITY`."""
    return FOLLOW_IDENTITY if (source or {}).get("follow") else SOURCE_IDENTITY


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
    meta : JobMetadata or dict
        The job's metadata (a dict is a stored document, validated first).
    """

    def __init__(self, meta):
        meta = as_metadata(meta)
        self.legacy = meta.legacy
        self.planned = set(meta.chunks) if "chunks" in meta.chunking else None
        self.identity = meta.identity
        self.skipped = meta.skipped_frames()

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


# ----------------------------------------------------------------- the model


def utc_now():
    """The current time as ISO 8601 UTC text to the second (``2026-12-01T14:00:00+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


#: Locate parameters recorded only when set (mask and background corrections, see
#: daskloc.correct.Correction.identity), so stores written without them still resume.
OPTIONAL_PARAMS = ("mask", "background")


def _describe_chunking(chunks):
    if not chunks:
        return "no chunks"
    sizes = sorted({b - a for a, b in chunks})
    return (
        f"{len(chunks)} chunks of frames {chunks[0][0]}..{chunks[-1][1] - 1} "
        f"(first [{chunks[0][0]}, {chunks[0][1]}), spans {sizes[:3]}"
        f"{'...' if len(sizes) > 3 else ''})"
    )


def _describe_dims(dims):
    kind = "3-D volumes" if "z" in dims else "2-D frames"
    return f"{tuple(dims)} ({kind})"


@dataclass
class JobMetadata:
    """The job-metadata document of one result set (one table of a store), as a model.

    Every writer (the pipeline, export) builds one and stores :meth:`to_json`; every
    reader (resume, ``daskloc info``, read-back, export, plots) goes through
    :meth:`from_json`, which validates the document. Fields are the document's keys.

    Attributes
    ----------
    params : dict
        The normalised locate parameters (plus ``mask``/``background`` when used):
        what changes features, the job's identity with the source's
        :data:`SOURCE_IDENTITY` fields.
    source : dict
        The source video: ``path``, ``file_size`` and ``file_mtime_ns`` (bytes and
        newest mtime of the files read: the one file, or every file of a Zarr,
        OME-Zarr, image sequence or multi-file OME-TIFF, see
        :meth:`daskloc.video.Source.fingerprint`), ``n_frames``, ``frames`` (an
        :func:`~daskloc.stores.base.encode_frames` spec), ``shape``, ``dtype``,
        ``channel``, ...
    chunking : dict
        ``{"chunk_frames": [int, ...], "chunks": [[start, stop], ...]}``: the job's
        chunks as absolute frame ranges (a resume with other chunks is refused).
    dims : list of str or None
        The video's dims: ``["frame", "y", "x"]`` or ``["frame", "z", "y", "x"]``
        (:data:`VIDEO_DIMS`); None in documents written before 3-D videos (2-D). Part of
        the identity when not 2-D; a resume with other dims is refused.
    columns : dict or None
        Column name → dtype name of the feature table; None for documents that do not
        list them (the schema's columns for ``params["characterize"]`` apply).
    options : dict
        Execution options (``on_error``, the kernel ``engine`` ...): recorded, never
        part of the identity, so a later engine or policy resumes the same store.
    store : dict or None
        ``{"backend": name}`` of the store that holds the result set.
    kind : str or None
        What the result set holds: None (or ``"features"``) for located features,
        ``"trajectories"`` for features linked by :func:`daskloc.link` (then
        :attr:`params` are the linking parameters and :attr:`source` the features'
        store).
    video : str or None
        The video's name in a many-video store.
    complete_chunks, failed_chunks, skipped, skip_reasons, n_features, finished
        Progress: chunks written, chunks that failed (with the error), frames left out
        by ``on_error="skip"`` per chunk and why, rows stored, and whether every chunk
        is done.
    format_version : int
        :data:`METADATA_VERSION` for documents of this daskloc; 1 for daskloc 0.1's.
    job : str or None
        The identity recorded when written (differs from :attr:`identity` if edited).
    daskloc_version, created, updated, versions, exported_from
        Provenance: who wrote it and when, library versions, and the store an
        exported copy came from.
    extra : dict
        Keys this daskloc does not know (kept as they are when written back).

    Examples
    --------
    >>> m = JobMetadata(params={"diameter": 11}, source={"path": "movie.mov"},
    ...                 chunking={"chunk_frames": [64], "chunks": [[0, 64]]})
    >>> JobMetadata.from_json(m.to_json(), "example") == m
    True
    >>> m.diff(JobMetadata(params={"diameter": 9}, source={"path": "movie.mov"},
    ...                    chunking=m.chunking))
    [('diameter', '11', '9')]
    """

    params: dict = field(default_factory=dict)
    source: dict = field(default_factory=dict)
    chunking: dict = field(default_factory=dict)
    dims: list | None = None
    columns: dict | None = None
    options: dict = field(default_factory=dict)
    store: dict | None = None
    kind: str | None = None
    video: str | None = None
    complete_chunks: list = field(default_factory=list)
    n_features: int = 0
    finished: bool = False
    failed_chunks: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    skip_reasons: dict = field(default_factory=dict)
    format_version: int = METADATA_VERSION
    job: str | None = None
    daskloc_version: str | None = None
    created: str | None = None
    updated: str | None = None
    versions: dict | None = None
    exported_from: dict | None = None
    extra: dict = field(default_factory=dict)

    # ------------------------------------------------------------- JSON

    #: Keys written only when they hold something (documents stay as daskloc 0.2 wrote).
    _OPTIONAL = ("options", "kind", "video", "skip_reasons", "exported_from", "dims")

    @classmethod
    def from_json(cls, doc, where="the store"):
        """The model of a stored document.

        Parameters
        ----------
        doc : dict
            The parsed JSON document.
        where : str
            The store's location, for messages.

        Returns
        -------
        JobMetadata

        Raises
        ------
        MetadataError
            As :func:`validate_metadata`: not daskloc metadata, a newer format, or a
            field of the wrong type.
        """
        validate_metadata(doc, where)
        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in doc.items() if k in known and v is not None}
        for k in ("params", "source", "chunking", "options", "skip_reasons"):
            kwargs[k] = dict(doc.get(k) or {})
        kwargs["extra"] = {k: v for k, v in doc.items() if k not in known and k != "format"}
        kwargs.setdefault("format_version", 1)
        return cls(**kwargs)

    def to_json(self):
        """The document to store: JSON values only, ``format`` first.

        Returns
        -------
        dict
        """
        doc = {"format": METADATA_FORMAT}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if f.name in self._OPTIONAL and not value:
                continue
            doc[f.name] = copy.deepcopy(value)
        doc.update(copy.deepcopy(self.extra))
        return doc

    def copy(self):
        """A deep copy."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------- what it says

    @property
    def identity(self):
        """:func:`job_identity` of the parameters, source and dims (64 hex digits)."""
        return job_identity({"params": self.params, "source": self.source,
                             "dims": self.dims})

    @property
    def video_dims(self):
        """The video's dims as a tuple (:data:`DIMS_2D` for documents without them)."""
        return tuple(self.dims) if self.dims else DIMS_2D

    @property
    def ndim(self):
        """Dimensions of one image of the video: 2 (``y, x``) or 3 (``z, y, x``)."""
        return len(self.video_dims) - 1

    @property
    def edited(self):
        """True if the recorded identity is not the one the parameters and source give."""
        return self.job is not None and self.job != self.identity

    @property
    def legacy(self):
        """True for documents of daskloc 0.1 (chunks without identities)."""
        return self.format_version in LEGACY_VERSIONS

    @property
    def chunks(self):
        """The job's chunks, ``[(start, stop), ...]`` (empty if not listed)."""
        return [tuple(c) for c in self.chunking.get("chunks", [])]

    @property
    def followed(self):
        """True for the features of a recording followed while it was written."""
        return bool(self.source.get("follow"))

    @property
    def growing(self):
        """True while a followed recording is still being written (its job has not
        seen its end): readers see the frames located so far."""
        return self.followed and not self.finished

    @property
    def trajectories(self):
        """True for a result set of trajectories (:func:`daskloc.link`)."""
        return self.kind == "trajectories"

    @property
    def characterize(self):
        """Whether the features have the characterisation columns."""
        return self.params.get("characterize", True)

    def skipped_frames(self):
        """``{(start, stop): tuple of frame numbers}`` left out per chunk."""
        return {(int(a), int(b)): tuple(int(f) for f in fr) for a, b, fr in self.skipped}

    def column_dtypes(self):
        """Column name → dtype name of the feature table, ``frame`` last.

        Returns
        -------
        dict of str to str
            :attr:`columns`, or for documents without them the schema's columns of
            :attr:`characterize` (see :func:`daskloc.schema.feature_dtypes`).
        """
        if self.columns:
            return dict(self.columns)
        return feature_dtypes(self.characterize)

    def diff(self, other):
        """What differs between the job this document describes and ``other``.

        Only what changes the features counts: the video's dims, the parameters (per-axis
        values included), the source's identity fields and the chunk ranges. Execution
        options, progress and provenance do not.

        Parameters
        ----------
        other : JobMetadata
            The job asked for.

        Returns
        -------
        list of (str, str, str)
            ``(field, this, other)`` for each field that differs, values as text, e.g.
            ``("minmass", "20", "200")``, ``("diameter", "[5, 11, 11]", "[7, 11, 11]")``,
            ``("dims", "('frame', 'y', 'x')", "('frame', 'z', 'y', 'x')")`` or
            ``("source n_frames", "40", "41")``; empty when ``other`` may resume this
            result set.
        """
        diffs = []
        if (self.kind or "features") != (other.kind or "features"):
            diffs.append(("kind", self.kind or "features", other.kind or "features"))
        if self.video_dims != other.video_dims:
            diffs.append(("dims", _describe_dims(self.video_dims),
                          _describe_dims(other.video_dims)))
        old_p, new_p = self.params, other.params
        for k in new_p:
            if old_p.get(k, object()) != new_p[k]:
                missing = None if k in OPTIONAL_PARAMS else "<missing>"
                diffs.append((k, repr(old_p.get(k, missing)), repr(new_p[k])))
        for k in OPTIONAL_PARAMS:  # recorded only when used: absent means None
            if k in old_p and k not in new_p:
                diffs.append((k, repr(old_p[k]), "None"))
        followed = self.followed, other.followed
        if followed[0] != followed[1]:
            diffs.append(("source followed", *(
                "a recording followed while written (follow=True)" if f else
                "a finished recording" for f in followed)))
        keys = dict.fromkeys(identity_fields(self.source) + identity_fields(other.source)
                             + ("position_index",))
        for k in keys:
            if self.source.get(k) != other.source.get(k):
                diffs.append((f"source {k}", repr(self.source.get(k)),
                              repr(other.source.get(k))))
        if all(followed):  # the chunks grow with the recording: their size is the job's
            size = self.chunking.get("follow_frames"), other.chunking.get("follow_frames")
            if size[0] != size[1]:
                diffs.append(("chunking", f"chunks of {size[0]} frames",
                              f"chunks of {size[1]} frames"))
        elif self.chunks != other.chunks:
            diffs.append(("chunking", _describe_chunking(self.chunks),
                          _describe_chunking(other.chunks)))
        return diffs


def as_metadata(meta, where="the store"):
    """``meta`` as a :class:`JobMetadata` (a dict is a stored document: validated).

    Raises
    ------
    MetadataError
        A document that is not valid daskloc metadata.
    """
    if isinstance(meta, JobMetadata):
        return meta
    return JobMetadata.from_json(meta, where)
