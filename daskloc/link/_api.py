"""``daskloc.link``: trajectories from a feature store, linked in parallel over time.

The store's frames are cut into segments of whole chunks; each segment is linked with
trackpy's linker on a worker, starting a few frames early (its warm-up); the client
joins the segments in frame order by the rule of :mod:`daskloc.link._core` (a segment is
accepted only where it provably made the sequential run's decisions, otherwise it is
linked again from earlier), numbers the trajectories by birth and writes each segment's
chunks of trajectories as soon as it is joined.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings

import numpy as np

from daskloc._version import __version__
from daskloc.link._core import join_segment, linker_options
from daskloc.link._tasks import finish_segment, link_task, segment_head
from daskloc.metadata import ChunkVerifier, JobMetadata, MetadataError, chunk_id, utc_now
from daskloc.pipeline._errors import _write_metadata
from daskloc.pipeline._executors import _client_threads, _find_client
from daskloc.pipeline._job import _check_same_job, _versions
from daskloc.stores import StoreMismatchError, open_store, store_info
from daskloc.stores._names import trajectories_table, video_table

__all__ = ["LinkError", "link"]

#: Features per segment at most (a segment's table is held by one worker while linked).
SEGMENT_ROWS = 500_000
#: Segments per worker thread when the store is small enough for fewer.
SEGMENTS_PER_THREAD = 2
#: The first warm-up of a segment, in units of the join window (memory + 1 frames).
FIRST_WARMUP = 4
#: The trajectories' chunks: each chunk of features cut in pieces of at most this many
#: frames (a segment is whole pieces, so a store of few long chunks still links in
#: parallel). A rule of the features' chunking alone, so every run plans the same.
PIECE_FRAMES = 32
#: Minimum seconds between two progress updates of the trajectories' metadata.
METADATA_INTERVAL = 1.0


class _Ties(Exception):
    """Two runs of trackpy's linker from the first frame disagreed: exact ties."""

    def __init__(self, frame):
        super().__init__(frame)
        self.frame = frame


class LinkError(ValueError):
    """trackpy's linker could not link a frame (e.g. a subnetwork too large to solve).

    Attributes
    ----------
    frame : int
        The frame it failed at.
    """

    def __init__(self, message, frame=None):
        super().__init__(message)
        self.frame = frame


# ----------------------------------------------------------------- parameters


def _check_search_range(search_range, ndim):
    def number(v):
        return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))

    if number(search_range):
        values = [float(search_range)]
    else:
        if isinstance(search_range, (str, bytes)) or not hasattr(search_range, "__iter__") \
                or not all(number(v) for v in search_range):
            raise TypeError(f"search_range must be a number of pixels or one per axis, got "
                            f"{search_range!r}")
        values = [float(v) for v in search_range]
        if ndim is not None and len(values) != ndim:
            raise ValueError(f"search_range {search_range!r} has {len(values)} values; give "
                             f"one number or one per position column ({ndim})")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"search_range must be positive (pixels a feature may move between "
                         f"frames), got {search_range!r}")
    return values[0] if len(values) == 1 else values


def check_link_params(search_range, memory=0, adaptive_stop=None, adaptive_step=0.95,
                      ndim=None):
    """Check the linking parameters that do not depend on the features.

    :func:`link` calls it; a caller that must start something costly first (the CLI
    starts a cluster) calls it before that, so bad values fail at once.

    Parameters
    ----------
    search_range : float or sequence of float
        Pixels a feature may move between frames: one value, or one per position column.
    memory : int
        Frames a feature may vanish for and keep its particle number (>= 0).
    adaptive_stop : float, optional
        Smallest search range (pixels) of trackpy's adaptive search; positive, finite.
    adaptive_step : float
        Factor the adaptive search shrinks the search range by, 0 < step < 1.
    ndim : int, optional
        Number of position columns, to check a per-axis ``search_range`` against
        (None: not checked here).

    Returns
    -------
    dict
        ``search_range`` (a float, or a list of floats per axis), ``memory`` (int),
        ``adaptive_stop`` (float or None), ``adaptive_step`` (float).

    Raises
    ------
    TypeError
        ``search_range`` is not a number or a sequence of numbers.
    ValueError
        A value out of its range, or ``search_range`` with other than ``ndim`` values.

    Examples
    --------
    >>> check_link_params(5, memory=3)["search_range"]
    5.0
    >>> check_link_params(0)
    Traceback (most recent call last):
    ...
    ValueError: search_range must be positive (pixels a feature may move between frames), got 0
    """
    if not isinstance(memory, numbers.Integral) or isinstance(memory, bool) or memory < 0:
        raise ValueError(f"memory must be a whole number of frames >= 0, got {memory!r}")
    if adaptive_stop is not None:
        if not isinstance(adaptive_stop, numbers.Real) or isinstance(adaptive_stop, bool) \
                or not math.isfinite(adaptive_stop) or not adaptive_stop > 0:
            raise ValueError(f"adaptive_stop must be a positive, finite distance (pixels), "
                             f"got {adaptive_stop!r}")
        adaptive_stop = float(adaptive_stop)
    if not isinstance(adaptive_step, numbers.Real) or isinstance(adaptive_step, bool) \
            or not 0 < adaptive_step < 1:
        raise ValueError(f"adaptive_step must be a factor between 0 and 1, got "
                         f"{adaptive_step!r}")
    return {
        "search_range": _check_search_range(search_range, ndim),
        "memory": int(memory),
        "adaptive_stop": adaptive_stop,
        "adaptive_step": float(adaptive_step),
    }


def _predictor_name(predictor):
    if predictor is None:
        return None
    if not callable(predictor):
        raise TypeError(f"predictor must be callable (trackpy's predict module), got "
                        f"{predictor!r}")
    owner = getattr(predictor, "__self__", None)
    target = type(owner) if owner is not None else predictor
    name = getattr(target, "__qualname__", type(target).__qualname__)
    return f"{getattr(target, '__module__', '?')}.{name}"


def _link_params(meta, search_range, memory, predictor, adaptive_stop, adaptive_step,
                 pos_columns):
    """The linking parameters as recorded (the trajectories' identity with the features')."""
    columns = meta.column_dtypes()
    if pos_columns is None:
        pos_columns = ["z", "y", "x"] if "z" in columns else ["y", "x"]
    if isinstance(pos_columns, str):
        pos_columns = [pos_columns]
    pos_columns = [str(c) for c in pos_columns]
    if len(set(pos_columns)) != len(pos_columns):
        raise ValueError(f"pos_columns {pos_columns!r} names a column twice")
    missing = [c for c in pos_columns if c not in columns or c == "frame"]
    if missing or not pos_columns:
        raise ValueError(f"pos_columns {pos_columns!r}: the features have no column "
                         f"{missing!r}; choose among {[c for c in columns if c != 'frame']}")
    return {
        **check_link_params(search_range, memory, adaptive_stop, adaptive_step,
                            len(pos_columns)),
        "pos_columns": pos_columns,
        "predictor": _predictor_name(predictor),
        "features_job": meta.job or meta.identity,
    }


# ----------------------------------------------------------------- which features


def _features_prefix(fst, meta, partial):
    """The features' chunks to link: all planned (complete store), or with ``partial``
    the complete ones up to the first that is not."""
    planned = meta.chunks
    valid = set(fst.valid_chunks(meta))
    prefix = []
    for c in planned:
        if c not in valid:
            break
        prefix.append(c)
    if len(prefix) == len(planned) and planned:
        return prefix
    writer = fst.lease_holder()
    state = (f"is still being written ({writer})" if writer else
             f"is incomplete ({len(valid)} of {len(planned)} chunks located"
             + (f"; {len(meta.failed_chunks)} failed" if meta.failed_chunks else "") + ")")
    if not partial:
        raise ValueError(
            f"the feature store {fst.url} {state}: linking it now would give wrong "
            "trajectories at the missing frames; wait for the locate job to finish (or "
            "run it again to resume it), or pass partial=True (CLI: --partial) to link "
            "the frames complete so far")
    if not prefix:
        raise ValueError(f"the feature store {fst.url} {state}, and its first chunk is not "
                         "complete yet: there is nothing to link")
    return prefix


def _pieces(chunk):
    """A chunk of features ``(start, stop)`` as the trajectories' chunks: near-equal
    frame ranges of at most PIECE_FRAMES frames."""
    a, b = chunk
    k = max(1, math.ceil((b - a) / PIECE_FRAMES))
    edges = [a + (b - a) * i // k for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _piece_rows(fst, chunks):
    """``(pieces, estimated feature counts)`` of the features' ``chunks``."""
    marks = fst.chunk_ids(chunks)
    rows = [marks[c].n_rows if c in marks else None for c in chunks]
    if any(r is None for r in rows):
        rows = [fst.n_rows([c]) for c in chunks]
    pieces, counts = [], []
    for c, r in zip(chunks, rows):
        parts = _pieces(c)
        pieces.extend(parts)
        counts.extend([int(r) / len(parts)] * len(parts))
    return pieces, counts


def _plan_segments(chunks, rows, n_target, min_frames):
    """Group consecutive chunks into ``n_target`` segments of similar feature counts
    (more, so that none holds over SEGMENT_ROWS features unless one chunk does; fewer
    when there are fewer chunks), each spanning at least ``min_frames`` frames (a join
    window must lie in one segment)."""
    total = max(sum(rows), 1)
    n = max(1, min(len(chunks), max(n_target, math.ceil(total / SEGMENT_ROWS))))
    cum = np.cumsum(rows, dtype=np.float64)
    # cut after the chunk where the running count first reaches each i/n of the total
    cuts = sorted({int(np.searchsorted(cum, total * i / n, side="left")) + 1
                   for i in range(1, n)})
    segments, start = [], 0
    for cut in [*cuts, len(chunks)]:
        cut = max(cut, start + 1)
        if cut > len(chunks) or start >= len(chunks):
            break
        group = chunks[start:cut]
        if group[-1][1] - group[0][0] < min_frames and cut < len(chunks):
            continue  # too short: this group grows to the next cut
        segments.append(group)
        start = cut
    if start < len(chunks):
        segments.append(chunks[start:])
    if len(segments) > 1 and segments[-1][-1][1] - segments[-1][0][0] < min_frames:
        segments[-2].extend(segments.pop())
    return segments


# ----------------------------------------------------------------- execution


class _Local:
    """Runs the tasks in this process, one after the other (no cluster)."""

    threads = 1

    def submit(self, fn, *args):
        return fn(*args)

    def result(self, handle):
        return handle

    def release(self, handle):
        pass


class _Dask:
    def __init__(self, client):
        self.client = client
        self.threads = _client_threads(client)

    def submit(self, fn, *args):
        return self.client.submit(fn, *args, pure=False)

    def result(self, handle):
        return handle.result()

    def release(self, handle):
        handle.release()


# ----------------------------------------------------------------- one table


class _LinkJob:
    """The trajectories of one features table: metadata, resume, the segments' joins."""

    def __init__(self, fst, meta, out, params, chunks, partial, options):
        self.fst = fst
        self.out = out
        self.params = params
        self.options = options
        self.window = params["memory"] + 1
        # the trajectories' chunks linked now (of all the features' chunks, or a prefix)
        self.chunks, self.rows = _piece_rows(fst, chunks)
        cols = dict(meta.column_dtypes())
        cols["particle"] = "int64"
        self.meta = JobMetadata(
            kind="trajectories",
            params=params,
            # The features are identified by features_job (their own identity, source
            # included), not by where the store lies: a moved store still resumes.
            source={"store": fst.url, "frames": meta.source.get("frames"),
                    "n_frames": meta.source.get("n_frames"), "video": meta.video},
            chunking={"piece_frames": PIECE_FRAMES,
                      "chunks": [list(p) for c in meta.chunks for p in _pieces(c)]},
            dims=meta.dims,
            columns=cols,
            options={"partial": bool(partial)},
            store={"backend": out.backend},
            video=meta.video,
            daskloc_version=__version__,
            created=utc_now(),
            versions=_versions(),
        )
        self.identity = self.meta.job = self.meta.identity
        self.done = set()
        self.n_features = 0
        self.last_meta = 0.0
        self.lease = None
        self.relinked = 0
        self.segments = 0
        self.n_particles = None

    def chunk_id(self, c):
        return chunk_id(self.identity, *c)

    def check(self, overwrite):
        out = self.out
        try:
            old = out.metadata()
        except MetadataError:
            if not overwrite:
                raise
            old = None
        if old is not None and not overwrite:
            if not old.trajectories:
                raise StoreMismatchError(
                    f"{out.url} holds features, not trajectories: give link another "
                    "out= store (CLI: --out)")
            _check_same_job(out, old, self.meta)
            self.meta.created = old.created or self.meta.created
        present = out.complete_chunks()
        if present and not overwrite:
            verifier = ChunkVerifier(self.meta)
            marks = out.chunk_ids(present)
            foreign = [c for c in present if verifier.reason(c, marks.get(c)) is not None]
            if foreign:
                raise StoreMismatchError(
                    f"{out.url} holds {len(foreign)} chunks of trajectories of another link "
                    "(other parameters or features); nothing was changed: pass "
                    "overwrite=True (CLI: --overwrite) to replace them")
        if overwrite and (old is not None or present):
            out.check_clear()
            out.clear()
        out.remove_temporary()
        self.done = set(out.valid_chunks(self.meta)) & set(self.meta.chunks)
        self.n_features = out.n_rows(sorted(self.done)) if self.done else 0

    def write_meta(self, finished=False, force=True):
        now = time.monotonic()
        if not force and now - self.last_meta < METADATA_INTERVAL:
            return
        if self.lease is not None:
            self.lease.check()
        self.meta.complete_chunks = [list(c) for c in sorted(self.done)]
        self.meta.n_features = int(self.n_features)
        self.meta.finished = bool(finished)
        self.meta.updated = utc_now()
        _write_metadata(self.out, self.meta.to_json())
        self.last_meta = now

    # -- the start of what is left to link ----------------------------------------
    def resume_point(self):
        """``(first chunk index to link, particle numbers used, window particles)``."""
        k = 0
        while k < len(self.chunks) and self.chunks[k] in self.done:
            k += 1
        if k == 0:
            return 0, 0, None
        s = self.chunks[k][0] if k < len(self.chunks) else self.chunks[-1][1]
        next_id = 0
        for c in self.chunks[:k]:  # one chunk at a time: memory stays bounded
            p = self.out.read(slice(*c), chunks=[c], strict=False)["particle"]
            if len(p):
                next_id = max(next_id, int(p.max()) + 1)
        tail = self.out.read(slice(max(s - self.window, 0), s), strict=False)
        return k, next_id, tail["particle"].to_numpy(dtype=np.int64)

    def run(self, ex, segments, progress):
        k0, next_id, tail = self.resume_point()
        self.n_particles = next_id
        todo = self.chunks[k0:]
        if progress is not None:
            progress(len(self.done), len(self.meta.chunks), self.n_features)
        if not todo:
            return
        first_frame = self.chunks[0][0]
        if self.params["predictor"] is not None:
            # A predictor's state reaches back over many frames (velocities): no join
            # rule covers it, so the whole range links in one segment from the start.
            groups, k0, next_id, tail = [self.chunks], 0, 0, None
        else:
            n_target = segments if segments is not None else (
                ex.threads * SEGMENTS_PER_THREAD if ex.threads > 1 else 1)
            groups = _plan_segments(todo, self.rows[k0:], n_target, self.window)
        self.segments = len(groups)
        pos, sr = self.params["pos_columns"], self.params["search_range"]
        sr = tuple(sr) if isinstance(sr, list) else sr
        ahead = max(2, 2 * ex.threads)
        warm = {}
        handles = {}

        def start_link(i):
            own_start = groups[i][0][0]
            w = warm.setdefault(i, FIRST_WARMUP * self.window)
            lo = max(own_start - w, first_frame)
            handles[i] = (lo, ex.submit(link_task, self.fst, lo, own_start, groups[i][-1][1],
                                        pos, sr, self.options))

        for i in range(min(ahead, len(groups))):
            start_link(i)
        i = 0
        while i < len(groups):
            for j in range(i, min(i + ahead, len(groups))):
                if j not in handles:
                    start_link(j)
            lo, handle = handles[i]
            own_start = groups[i][0][0]
            head = ex.result(ex.submit(segment_head, handle, self.window))
            exact = lo <= first_frame
            failure = head["failure"]
            known = None
            if failure is None or failure[0] >= own_start:
                known = {} if tail is None else join_segment(tail, head["labels"])
            if known is None or (failure is not None and failure[0] < own_start):
                if exact:
                    if failure is not None:
                        raise _link_error(self.fst, failure, self.params)
                    # Linked from the first frame, yet grouped the window otherwise:
                    # trackpy broke an exact tie (equal distances) another way. It does
                    # so in an order of memory addresses, so no two runs need agree.
                    raise _Ties(own_start)
                ex.release(handle)
                warm[i] *= 2  # too short a warm-up: link it again from earlier
                self.relinked += 1
                start_link(i)
                continue
            if failure is not None:
                raise _link_error(self.fst, failure, self.params)
            chunks = [c for c in groups[i] if c not in self.done]
            write = self.out.concurrent_writers
            fin = ex.result(ex.submit(
                finish_segment, handle, known, next_id, self.window,
                groups[i + 1][0][0] if i + 1 < len(groups) else groups[i][-1][1], chunks,
                self.out, {c: self.chunk_id(c) for c in chunks}, write))
            ex.release(handle)
            del handles[i]
            if not write:
                for a, b, part in fin["chunks"]:
                    self.out.append_chunk(a, b, part, chunk_id=self.chunk_id((a, b)))
            for a, b, n in fin["written"]:
                self.done.add((a, b))
                self.n_features += n
            next_id, tail = fin["next_id"], fin["tail"]
            self.n_particles = next_id
            self.write_meta(finished=False, force=False)
            if progress is not None:
                progress(len(self.done), len(self.meta.chunks), self.n_features)
            i += 1


def _link_error(fst, failure, params):
    frame, text, kind = failure
    if kind == "SubnetOversizeException":
        hint = ("pass a smaller search_range, or adaptive_stop=... (CLI: --adaptive-stop) so "
                "trackpy shrinks the search range for such subnetworks")
    elif params.get("predictor"):
        hint = (f"the predictor {params['predictor']} raised it: check it works with "
                "trackpy.link(features, search_range, predictor=...)")
    else:
        hint = "trackpy's linker raised it on that frame's features"
    return LinkError(f"linking {fst.url} failed at frame {frame}: {kind}: {text}; {hint} "
                     f"(search_range={params['search_range']!r})", frame=frame)


# ----------------------------------------------------------------- the API


def _tables(store, video, table, storage_options):
    """``[(video name or None, features table)]`` to link."""
    from daskloc.stores import _video_tables

    if video is not None:
        names = [video] if isinstance(video, str) else list(video)
        return [(n, video_table(n, table)) for n in names]
    try:
        st = open_store(store, "r", table=table, storage_options=storage_options)
        if st.exists():
            return [(None, table)]
    except (FileNotFoundError, ValueError):
        pass
    videos = _video_tables(store, table, storage_options)
    if videos:
        return list(videos.items())
    open_store(store, "r", table=table, storage_options=storage_options)  # says what is wrong
    raise ValueError(f"{store} holds no features to link")


def link(store, search_range, *, memory=0, predictor=None, adaptive_stop=None,
         adaptive_step=0.95, pos_columns=None, video=None, out=None, client=None,
         table=None, overwrite=False, partial=False, segments=None, progress=None,
         storage_options=None):
    """Link the features of a store into trajectories, streamed and in parallel over time.

    The frames are cut into segments of whole chunks, linked at the same time on the
    cluster with trackpy's linker (:func:`trackpy.linking.link_iter`), each starting a
    few frames early; the segments are joined in frame order only where the join is
    proven exact (see Notes), so the trajectories are those of one sequential
    :func:`trackpy.link` run on the whole table. Each segment's chunks of trajectories
    are written as soon as it is joined: they can be read while the link runs, and a
    killed link resumes where it stopped.

    Parameters
    ----------
    store : str or os.PathLike
        A feature store written by :func:`daskloc.batch` (any format: Parquet, Zarr,
        HDF5, SQL, ``s3://``). A many-video store: every video is linked on its own.
    search_range : float or sequence of float
        The farthest a feature moves between frames, pixels (trackpy's
        ``search_range``); one per position column for an anisotropic range. Must be
        positive.
    memory : int, default 0
        Frames a feature may vanish for and still continue its trajectory (trackpy's
        ``memory``; counted in frame numbers, empty frames included).
    predictor : callable, optional
        trackpy's ``predictor``: ``predictor(t, points)`` gives where trackpy's points
        (``.pos``, ``.t``) are expected at frame ``t``, e.g. under a known drift. Its
        state may reach back over many frames, which no join covers: with a predictor
        the whole table is linked as one sequential segment, on one worker that holds
        all its features, and written when done; a resume links again from the first
        frame (the chunks already stored are kept).
    adaptive_stop, adaptive_step : float, optional
        trackpy's adaptive search: when a subnetwork is too large, shrink the search
        range by ``adaptive_step`` down to ``adaptive_stop`` (pixels).
    pos_columns : list of str, optional
        Position columns, default ``["y", "x"]`` (``["z", "y", "x"]`` for 3-D features).
    video : str or list of str, optional
        Of a many-video store: link only these videos.
    out : str or os.PathLike, optional
        Store for the trajectories (its format from its suffix or URL, as for
        :func:`daskloc.batch`). Default: ``store`` itself. Either way the trajectories of
        the features table ``T`` are its table ``"T/_trajectories"`` (``"_trajectories"``
        for a one-video store; ``"video=<name>/_trajectories"`` per video; the ``_``
        keeps them out of ``pandas.read_parquet`` of the features).
    client : distributed.Client, optional
        The cluster; default: the current default client, else this process alone (one
        segment after the other).
    table : str, optional
        The features' table, for a store holding several (as for :func:`daskloc.batch`).
    overwrite : bool, default False
        Replace trajectories of other parameters (or other features). Without it, such
        a result is refused (:class:`~daskloc.stores.StoreMismatchError`).
    partial : bool, default False
        Link a feature store that is still being written (or stopped incomplete) up to
        its first missing chunk. Without it such a store is refused. A later run links
        the rest (it resumes).
    segments : int, optional
        Number of segments (an execution choice: the result is the same for any number).
        Default: two per worker thread (one without a cluster), fewer when the store
        has fewer pieces, more so that none holds over 500,000 features.
    progress : callable, optional
        Called as ``progress(done_chunks, total_chunks, n_rows)`` after every segment
        written.
    storage_options : dict, optional
        fsspec options for stores on object storage.

    Returns
    -------
    dict
        :func:`daskloc.stores.store_info` of the trajectories (for a many-video store:
        ``{video name: that summary}``), plus ``n_particles`` (trajectories),
        ``segments`` (segments linked) and ``relinked`` (segments linked again with a
        longer warm-up).

    Raises
    ------
    ValueError
        A ``search_range`` that is not positive, a negative ``memory``, ``pos_columns``
        the features lack, a store still being written (without ``partial``), a store
        with no features.
    LinkError
        trackpy could not link a frame (a ``SubnetOversizeException``): the message
        names the frame and the fix (a smaller ``search_range``, ``adaptive_stop``).
    daskloc.stores.StoreMismatchError
        Trajectories of other parameters are stored there (pass ``overwrite=True``).
    daskloc.stores.StoreInUseError
        Another link writes the same trajectories.

    Notes
    -----
    Why the joins are exact: trackpy's linker carries from frame to frame only the last
    frame's features and, with ``memory = m``, the last feature of tracks that vanished
    in the last ``m`` frames. Its state after a frame is therefore fixed by how the
    features of the last ``m + 1`` frames are grouped into tracks. A segment is joined
    to the one before it only when it grouped the features of the ``m + 1`` frames
    before its own first frame exactly as that one did; then both linkers hold the same
    state, and every later decision is the same. Otherwise its warm-up is doubled and
    it is linked again (at worst from the first frame: the sequential run). Exact ties
    between two assignments of equal total distance are decided by trackpy in an
    order that depends on its internal point numbering, in one run as in several.

    Trajectories are numbered 0, 1, ... by birth (first frame, then the order of the
    features in it): trackpy's own numbers are the same in the first frame and may be
    permuted later; the trajectories themselves are trackpy's.

    References
    ----------
    Crocker, J. C. & Grier, D. G. (1996). Methods of digital video microscopy for
    colloidal studies. J. Colloid Interface Sci. 179, 298-310.

    Examples
    --------
    >>> info = link("features.parquet", search_range=5, memory=3)  # doctest: +SKIP
    >>> tracks = read_features("features.parquet", trajectories=True)  # doctest: +SKIP
    """
    from daskloc._extras import require

    require("trackpy")
    if segments is not None and (not isinstance(segments, numbers.Integral)
                                 or isinstance(segments, bool) or segments < 1):
        raise ValueError(f"segments must be a positive whole number, got {segments!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable (done, total, n_rows), got {progress!r}")
    if video is not None and not isinstance(video, str) and not list(video):
        raise ValueError("video=[] names no video: give one or more names, or None for all")
    target = store if out is None else out
    tables = _tables(store, video, table, storage_options)
    jobs = []
    for name, t in tables:
        if name is not None:
            from daskloc.stores import _open_video
            fst = _open_video(store, name, table, storage_options)
        else:
            fst = open_store(store, "r", table=t, storage_options=storage_options)
        meta = fst.metadata()
        if meta is None:
            raise ValueError(f"{fst.url} is not a daskloc feature store (no metadata)")
        if meta.trajectories:
            raise ValueError(f"{fst.url} holds trajectories already; link the features "
                             "table they came from")
        params = _link_params(meta, search_range, memory, predictor, adaptive_stop,
                              adaptive_step, pos_columns)
        chunks = _features_prefix(fst, meta, partial)
        if fst.n_rows(chunks) == 0:
            raise ValueError(f"the feature store {fst.url} holds no features: nothing to "
                             "link (lower minmass or check the video)")
        outst = open_store(target, "a", table=trajectories_table(t),
                           storage_options=storage_options)
        options = linker_options(memory, predictor, adaptive_stop, adaptive_step)
        jobs.append((name, _LinkJob(fst, meta, outst, params, chunks, partial, options)))
    cl = _find_client(client)
    ex = _Dask(cl) if cl is not None else _Local()
    results = {}
    for name, job in jobs:
        job.out.prepare()
        with job.out.lease() as lease:
            job.lease = lease
            job.check(overwrite)
            job.write_meta(finished=False)
            try:
                job.run(ex, segments, progress)
            except _Ties as exc:
                warnings.warn(
                    f"{job.fst.url}: features at exactly tied distances near frame "
                    f"{exc.frame} (integer or rounded positions?) were linked differently "
                    "by two runs of trackpy's linker, which breaks ties in an order of "
                    "memory addresses (trackpy.link itself may differ between runs "
                    "there); linking again as one sequential run", RuntimeWarning,
                    stacklevel=2)
                job.out.clear()
                job.done, job.n_features = set(), 0
                job.write_meta(finished=False)
                job.run(ex, 1, progress)
            job.write_meta(finished=len(job.done) == len(job.meta.chunks))
            job.out.finish(last=True)
        info = store_info(target, table=job.out.table, storage_options=storage_options)
        info.update(n_particles=job.n_particles, segments=job.segments,
                    relinked=job.relinked)
        results[name] = info
    if len(results) == 1 and None in results:
        return results[None]
    return results

