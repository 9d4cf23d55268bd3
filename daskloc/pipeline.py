"""The Dask pipeline: a lazy video becomes features, lazily (:func:`locate`) or streamed to a
store chunk by chunk, resumable (:func:`batch`).

Both work on the video's frame chunks: one chunk of frames is one task (read the frames,
locate every frame, return or store the features) and one partition of the result. The
pipeline knows stores only through :mod:`daskloc.stores`' interface, never a file format.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import re
import sys
import time
import unicodedata
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from dask.core import get_dependencies
from dask.delayed import Delayed, delayed

from daskloc._version import __version__
from daskloc.correct import Correction, check_background_name
from daskloc.locate import (
    feature_columns,
    locate_stack_counted,
    nonfinite_message,
    normalize_params,
)
from daskloc.metadata import ChunkVerifier, JobMetadata, MetadataError, chunk_id, utc_now
from daskloc.progress import ProgressBar
from daskloc.schema import feature_dtypes
from daskloc.stores import StoreMismatchError, encode_frames, open_store
from daskloc.stores._names import video_table
from daskloc.stores.base import FeatureStore, check_table_name
from daskloc.video import VideoDecodeError, classify, frame_chunked, grey_video, skip_undecodable

logger = logging.getLogger(__name__)

__all__ = ["BatchError", "StoreMismatchError", "UndecodableChunksError", "batch", "locate",
           "many_videos", "video_names", "video_table"]

#: Chunks kept in flight per worker thread by :func:`batch`.
IN_FLIGHT_PER_THREAD = 2
#: Minimum seconds between two progress updates of the store metadata during a batch.
METADATA_INTERVAL = 1.0
#: After a chunk error on a cluster, how long to let the chunks in flight finish before
#: the error is raised (they are cancelled after that).
DRAIN_SECONDS = 120



# ----------------------------------------------------------------- the video's chunks


class _Chunk:
    __slots__ = ("index", "frames", "start", "stop")

    def __init__(self, index, frames):
        self.index = index  # block index along the frame axis of the dask array
        self.frames = frames  # absolute frame numbers, int64, strictly increasing
        self.start = int(frames[0])
        self.stop = int(frames[-1]) + 1


class _Plan:
    """A validated video: the dask array (one block per frame chunk) and its chunks."""

    def __init__(self, video, open_options=None):
        video = grey_video(video, open_options=open_options)
        data = frame_chunked(video)
        if "frame" in video.coords:
            frames = np.asarray(video.coords["frame"].values)
            if frames.size and not np.issubdtype(frames.dtype, np.integer):
                raise ValueError(f"the frame coordinate must hold integers, got {frames.dtype}")
            frames = frames.astype(np.int64)
        else:
            frames = np.arange(data.shape[0], dtype=np.int64)
        if frames.size > 1 and not np.all(np.diff(frames) > 0):
            raise ValueError(
                "the video's frame numbers must increase strictly (sort the frame selection "
                "given to open_video)"
            )
        if frames.size and frames[0] < 0:
            raise ValueError(f"frame numbers must be non-negative, got {frames[0]}")
        self.video = video
        self.data = data
        self.frames = frames
        self.chunks = []
        offset = 0
        for i, n in enumerate(data.chunks[0]):
            if n:
                self.chunks.append(_Chunk(i, frames[offset : offset + n]))
            offset += n

    @property
    def divisions(self):
        return tuple(c.start for c in self.chunks) + (self.chunks[-1].stop - 1,)

    def block_graph(self):
        return _BlockGraph(self.data)

    def source(self):
        """The source description recorded in a store's metadata (JSON values)."""
        attrs = dict(self.video.attrs)
        src = attrs.get("source")
        path = file_size = mtime = None
        if isinstance(src, (str, os.PathLike)):
            path = os.fspath(src)
            if os.path.exists(path):
                path = os.path.abspath(path)
                if os.path.isfile(path):
                    st = os.stat(path)
                    file_size, mtime = st.st_size, st.st_mtime_ns
        elif isinstance(src, (list, tuple)) and src:
            path = [os.path.abspath(os.fspath(p)) if isinstance(p, (str, os.PathLike))
                    else str(p) for p in src]
        elif src is not None:
            path = str(src)
        n_frames = attrs.get("n_frames")
        return _jsonable({
            "path": path,
            "file_size": file_size,
            "file_mtime_ns": mtime,
            "n_frames": int(n_frames) if n_frames is not None else int(self.frames.size),
            "frames": encode_frames(self.frames),
            "n_selected": int(self.frames.size),
            "shape": list(self.data.shape),
            "dtype": str(self.data.dtype),
            "channel": attrs.get("channel"),
            "fps": attrs.get("fps"),
            "original_shape": attrs.get("original_shape"),
            "original_dtype": attrs.get("original_dtype"),
        })


class _BlockGraph:
    """One small task graph per frame chunk, cut from the video's graph once.

    Culling the whole graph for every chunk costs O(n_chunks) each time; the dependency
    table built here makes each chunk's sub-graph cost only its own size.
    """

    def __init__(self, data):
        blocks = data.to_delayed(optimize_graph=True).reshape(-1)
        self.keys = [b.key for b in blocks]
        self.dsk = dict(blocks[0].dask) if len(blocks) else {}
        self.deps = {k: get_dependencies(self.dsk, k) for k in self.dsk}

    def subgraph(self, index):
        """``(graph, key)`` of one chunk's block: its tasks only."""
        key = self.keys[index]
        sub, stack = {}, [key]
        while stack:
            k = stack.pop()
            if k not in sub:
                sub[k] = self.dsk[k]
                stack.extend(self.deps[k])
        return sub, key

    def block(self, index):
        sub, key = self.subgraph(index)
        return Delayed(key, sub)


class _GraphRef:
    """A block's task graph carried as an opaque argument (dask does not look inside):
    the chunk task computes it itself, inside ``skip_undecodable``."""

    __slots__ = ("dsk", "key")

    def __init__(self, dsk, key):
        self.dsk, self.key = dsk, key

    def __getstate__(self):
        return {"dsk": self.dsk, "key": self.key}

    def __setstate__(self, state):
        self.dsk, self.key = state["dsk"], state["key"]


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    return str(value)


def _meta(characterize):
    cols = feature_columns(characterize)
    return pd.DataFrame(
        {c: np.empty(0, dtype=np.float64) for c in cols},
        index=pd.Index(np.empty(0, dtype=np.int64), name="frame"),
    )


def _to_partition(df, characterize):
    cols = list(feature_columns(characterize))
    out = df[cols].astype(np.float64)
    out.index = pd.Index(df["frame"].to_numpy(dtype=np.int64), name="frame")
    return out


def _locate_block(block, frame_numbers, params):
    df, n_bad, n_bad_frames = locate_stack_counted(block, frame_numbers=frame_numbers, **params)
    if n_bad:  # NaN pixels: one warning per partition, where it is computed (locate's Notes)
        import warnings

        where = f"daskloc.locate, frames {frame_numbers[0]}..{frame_numbers[-1]}"
        warnings.warn(nonfinite_message(n_bad, n_bad_frames, where=where), UserWarning,
                      stacklevel=2)
    return _to_partition(df, params["characterize"])


def _correction(plan, mask, background):
    """The validated mask/background correction for a plan's frames (daskloc.correct)."""

    return Correction(mask, background, plan.data.shape[1:], plan.data.dtype)


def _apply_correction(job, client):
    """Correct a batch job's frames before its chunks run. A background from the video
    ("mean", "median") is computed here, once, not once per chunk task."""
    correction = job.correction
    if correction is None or not correction.active or not job.todo:
        return
    shift = correction.shift(job.plan.data, client=_find_client(client), lazy=False)
    job.plan.data = correction.apply(job.plan.data, shift)


# ----------------------------------------------------------------- locate (lazy)


def locate(video, diameter, *, mask=None, background=None, **params):
    """Locate features in every frame of a video, lazily, as a Dask DataFrame.

    Parameters
    ----------
    video : xarray.DataArray or anything :func:`daskloc.open_video` accepts
        Grey video with dims ``("frame", "y", "x")`` and a ``frame`` coordinate of
        absolute, strictly increasing frame numbers, normally dask-backed and chunked
        along ``frame`` only (a numpy-backed array is split in chunks of 64 frames; chunks
        along ``y``/``x`` are merged lazily). Paths, arrays etc. go through
        ``open_video`` with its defaults.
    diameter : int
        Feature diameter in pixels, odd.
    mask : None, bool array (y, x), DataFrame with ``y``, ``x`` columns, or Dataset
        Bad pixels (True = bad), e.g. :func:`daskloc.stuck_pixels` /
        :func:`daskloc.hot_pixels`: replaced in every frame by the median of their
        unmasked 3 x 3 neighbours before locating (:func:`daskloc.correct.correct_video`).
    background : None, "mean", "median" or array (y, x)
        Static background ``B`` (the per-pixel mean or median over the video, or an
        array in intensity units) subtracted from every frame as ``frame - B +
        mean(B)`` before locating, so frames keep their level, polarity (``invert``
        works as before) and dtype (:func:`daskloc.correct.correct_video`). Lazy:
        ``"mean"``/``"median"`` are computed as part of the graph, before any chunk.
    **params
        Other parameters of :func:`daskloc.locate_frame` (``minmass``, ``invert``, ...).

    Returns
    -------
    dask.dataframe.DataFrame
        One partition per frame chunk, indexed by ``frame`` (int64, absolute frame
        numbers) with known divisions (each chunk's first frame; the last division is
        the last frame). Columns ``y, x, mass, size, ecc, signal, raw_mass, ep``
        (float64; ``y, x, mass`` with ``characterize=False``); positions in pixels. Every
        partition has this schema, also when empty (e.g. a chunk of black frames).

    Raises
    ------
    ValueError
        Bad parameters (e.g. an even or negative ``diameter``), checked before any graph
        is built; a video with a ``channel`` dimension (pass ``channel=<int>`` or
        ``channel="grey"`` to ``open_video``); frame numbers not increasing; a mask or
        background array of another shape than the frames; an unknown background.
    TypeError
        Non-numeric parameters; a mask or background of an unsupported type.

    Notes
    -----
    Nothing is computed here. ``ddf.loc[a:b]`` computes (and reads) only the chunks
    holding frames ``a..b`` (inclusive, as ``.loc`` is). ``trackpy.link`` wants
    ``frame`` as a column: use ``ddf.reset_index()`` (or ``ddf.compute().reset_index()``).

    NaN and infinite pixels of float frames are treated as masked pixels: filled, frame
    by frame, with the median of their finite 3 x 3 neighbours as ``mask=`` pixels are
    (after ``mask=``/``background=``), and a frame with no finite pixel gives no
    features (see :func:`daskloc.locate_frame`). Each partition holding any warns once
    (``UserWarning``, ``"daskloc.locate, frames a..b: ..."``) in the process that
    computes it: in yours with the local schedulers, in a worker's log on a
    distributed cluster. :func:`batch` counts them over the whole job instead and
    warns once, on the client.

    Examples
    --------
    >>> import daskloc
    >>> video = daskloc.open_video("movie.mov", channel=0)  # doctest: +SKIP
    >>> ddf = daskloc.locate(video, 11, minmass=20, invert=True)  # doctest: +SKIP
    >>> first = ddf.loc[0:99].compute()  # reads only the chunks of frames 0..99  # doctest: +SKIP
    """
    params = normalize_params(diameter, **params)
    plan = _Plan(video)
    meta = _meta(params["characterize"])
    if not plan.chunks:
        return dd.from_pandas(meta, npartitions=1)
    correction = _correction(plan, mask, background)
    plan.data = correction.apply(plan.data, correction.shift(plan.data))
    blocks = plan.data.to_delayed(optimize_graph=False).reshape(-1)
    parts = [
        delayed(_locate_block, pure=True)(blocks[c.index], c.frames, params)
        for c in plan.chunks
    ]
    return dd.from_delayed(
        parts, meta=meta, divisions=plan.divisions, prefix="daskloc-locate", verify_meta=False
    )


# ----------------------------------------------------------------- batch (streamed)


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


def _chunk_task_skipping(ref, frame_numbers, store, start, stop, params, identity):
    """:func:`_chunk_task` with ``on_error="skip"``: the chunk's frames are read here,
    inside :func:`daskloc.video.skip_undecodable`, and only the frames that decode are
    located; the others are listed in the summary (and stored with the chunk)."""
    from dask.local import get_sync


    with skip_undecodable() as skipped:
        block = get_sync(ref.dsk, ref.key)
    frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
    gone = sorted(int(f) for f in skipped if start <= f < stop)
    keep = ~np.isin(frame_numbers, gone)
    summary = _chunk_task(np.asarray(block)[keep], frame_numbers[keep], store, start, stop,
                          params, chunk_id(identity, start, stop, gone), skipped=gone)
    summary["n_frames"] = len(frame_numbers)
    summary["skip_reasons"] = {int(f): skipped.reasons.get(f) for f in gone}
    return summary


def _chunk_task(block, frame_numbers, store, start, stop, params, chunk_id, skipped=()):
    """Worker side of :func:`batch`: locate one chunk and append it to the store.

    ``store`` is a :class:`~daskloc.stores.FeatureStore`; it pickles to its location and
    options only, and opens its own files or connections on the worker. A store that
    allows one writer only is not written here: the features go back to the client
    (in the summary's ``"features"``), which appends them."""
    # NaN pixels: counted here, warned about once per job by the client (_execute)
    df, n_bad, n_bad_frames = locate_stack_counted(block, frame_numbers=frame_numbers, **params)
    cols = list(feature_columns(params["characterize"]))
    df = df[cols + ["frame"]].astype({c: np.float64 for c in cols} | {"frame": np.int64})
    summary = {"start": start, "stop": stop, "n_rows": int(len(df)),
               "n_frames": len(frame_numbers), "chunk_id": chunk_id,
               "n_nonfinite": n_bad, "n_nonfinite_frames": n_bad_frames,
               "skipped": list(skipped)}
    if store.concurrent_writers:
        _append_chunk(store, start, stop, df, chunk_id, skipped)
    else:
        summary["features"] = df
    return summary


class _ClientWriter:
    """Appends finished chunks on the client, for stores that allow a single writer.

    With ``store.ordered_appends`` a chunk is held until every chunk before it (in frame
    order, among those to do) is written. Summaries of chunks already written by the
    workers pass straight through.
    """

    def __init__(self, store, todo, job=None):
        self.store = store
        self.job = job
        self.order = [(c.start, c.stop) for c in todo] if store.ordered_appends else None
        self.next = 0
        self.held = {}
        self.abandoned = False
        self.limit = None if self.order is None else len(self.order)

    def __call__(self, summary):
        """Take a finished chunk's summary; return the summaries of chunks now written."""
        if "features" not in summary:
            return [summary]
        if self.order is None:
            return [self._append(summary)]
        if self.abandoned:  # a chunk before it failed: it can never be appended in order
            return []
        chunk = (summary["start"], summary["stop"])
        if self.order.index(chunk) >= self.limit:  # after a failed chunk: never appended
            return []
        self.held[chunk] = summary
        written = []
        while self.next < self.limit and self.order[self.next] in self.held:
            written.append(self._append(self.held.pop(self.order[self.next])))
            self.next += 1
        return written

    def abandon(self, chunk=None):
        """The video failed: drop the chunks held for ordered appends (a rerun redoes them).

        With ``chunk`` (one that failed): only the chunks from it on are dropped; the
        ones before it are still appended when they arrive."""
        if chunk is None or self.order is None:
            self.abandoned = True
            self.held.clear()
            return
        self.limit = min(self.limit, self.order.index(chunk))
        for c in [c for c in self.held if self.order.index(c) >= self.limit]:
            del self.held[c]

    def _append(self, summary):
        if self.job is not None and self.job.note_skipped(summary):
            # This store keeps skipped frames only in the metadata: list them before the
            # chunk lands, so the chunk's identity can always be checked.
            self.job.write_meta()
        _append_chunk(self.store, summary["start"], summary["stop"], summary.pop("features"),
                      summary["chunk_id"], summary.get("skipped", ()))
        return summary


def _versions():
    out = {"python": platform.python_version()}
    for name in ("dask", "distributed", "numpy", "pandas", "pyarrow", "xarray"):
        mod = sys.modules.get(name)
        if mod is None:
            try:
                mod = __import__(name)
            except ImportError:
                continue
        out[name] = getattr(mod, "__version__", None)
    return out


def _check_same_job(store, old, new):
    """Raise StoreMismatchError naming everything that differs between two jobs."""
    diffs = old.diff(new)
    if diffs:
        was = ", ".join(d[0] for d in diffs)
        asked = ", ".join(d[1] for d in diffs)
        raise StoreMismatchError(
            f"store {store.url} was written with {was}, you asked for {asked}; pass "
            "overwrite=True (CLI: --overwrite) to replace it, or choose another --out"
        )


def _local_threads():
    if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
        return 1
    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _find_client(client):
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _client_threads(client):
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001 - a scheduler without workers yet, or a hiccup
        return 1


# ----------------------------------------------------------------- many videos: which, names


class BatchError(RuntimeError):
    """Some videos of a many-video :func:`batch` failed; every other video completed.

    Raised once, after the last video finished. The message has one line per failed
    video (its name, source and error).

    Attributes
    ----------
    failed : dict
        ``{video name: exception}`` of the videos that failed, in input order.
    sources : dict
        ``{video name: source path or description}`` of the failed videos.
    completed : list of str
        Names of the videos whose every chunk is in the store.
    store : str
        The store's location.
    """

    def __init__(self, message, failed=None, sources=None, completed=None, store=None):
        super().__init__(message)
        self.failed = dict(failed or {})
        self.sources = dict(sources or {})
        self.completed = list(completed or [])
        self.store = store


def _is_glob(text):
    return any(ch in text for ch in "*?[")


def _kind(item):
    """How an item of a list given to batch counts: a "video", one "frame" of an image
    sequence, or "unknown" (cannot tell: missing or unreadable); the video registry
    decides (:func:`daskloc.video.classify`)."""
    return classify(item).kind


def _clean_name(text):
    text = unicodedata.normalize("NFC", str(text))
    text = "".join(c if (c.isalnum() or c in "_-.") else "_" for c in text)
    text = re.sub(r"_{2,}", "_", text).strip("._")
    return text or None


def _name_from_path(text):
    text = os.fspath(text)
    if _is_glob(text) and not os.path.exists(text):
        fixed = []
        for part in Path(text).parts:
            if _is_glob(part):
                break
            fixed.append(part)
        return _clean_name(Path(*fixed).name) if fixed else None
    return _clean_name(classify(text).stem)


def _base_name(item):
    import xarray as xr

    if isinstance(item, xr.DataArray):
        src = item.attrs.get("source")
        if isinstance(src, (list, tuple)) and src and isinstance(src[0], (str, os.PathLike)):
            return _clean_name(Path(os.fspath(src[0])).parent.name)
        if isinstance(src, (str, os.PathLike)):
            text = os.fspath(src)
            if os.path.exists(text) or _is_glob(text):
                return _name_from_path(text)
        return _clean_name(item.name) if isinstance(item.name, str) else None
    if isinstance(item, (str, os.PathLike)):
        return _name_from_path(item)
    return None


def video_names(videos):
    """The names :func:`batch` gives the videos of a list: file stems, made unique.

    Parameters
    ----------
    videos : list
        As given to :func:`batch`.

    Returns
    -------
    list of str
        One name per video, in order: a file's stem (``bulk-water`` for
        ``run1/bulk-water.mov``), a folder's name, the folder of a glob pattern; for an
        xarray DataArray the same from the file it was opened from
        (``attrs["source"]``), else its ``name``; else ``video-<i>`` (1-based
        position). Characters other than letters, digits, ``_``, ``-`` and ``.``
        become ``_``. A name already taken (compared case-insensitively) gets
        ``-2``, ``-3``, ...: ``bulk-water``, ``bulk-water-2``.
    """
    taken, out = set(), []
    for i, item in enumerate(videos):
        base = _base_name(item) or f"video-{i + 1}"
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        out.append(name)
    return out


def many_videos(video):
    """Whether ``video`` is several videos, and which: the rule of :func:`batch`.

    Parameters
    ----------
    video : object
        What was given to :func:`batch` (or the CLI's resolved arguments).

    Returns
    -------
    list of (str, object) or None
        ``[(name, video), ...]`` for several videos; None for one video (a single
        path or array, or a list of single images: one image sequence).

    Raises
    ------
    ValueError
        A list mixing single images (frames of one sequence) with videos; an empty
        dict; a bad or repeated name in a dict; the same path given twice.
    """
    if isinstance(video, Mapping):
        if not video:
            raise ValueError("no videos given: the dict of videos is empty")
        items, taken = [], {}
        for name, item in video.items():
            if not isinstance(name, str) or "=" in name or not _name_ok(name):
                raise ValueError(
                    f"video name {name!r} is not usable: use letters, digits, '_', '-' and "
                    "'.' (e.g. 'bulk-water')"
                )
            if name.casefold() in taken:
                raise ValueError(
                    f"video names {taken[name.casefold()]!r} and {name!r} differ only in "
                    "case; stores on case-insensitive file systems and SQL databases "
                    "cannot keep both: rename one"
                )
            taken[name.casefold()] = name
            items.append((name, item))
        _refuse_repeats([v for _, v in items])
        return items
    if not isinstance(video, (list, tuple)):
        return None
    kinds = [_kind(v) for v in video]
    if "video" not in kinds:
        return None
    if "frame" in kinds:
        frames = [os.fspath(v) for v, k in zip(video, kinds) if k == "frame"]
        videos = [v if isinstance(v, (str, os.PathLike)) else type(v).__name__
                  for v, k in zip(video, kinds) if k == "video"]
        raise ValueError(
            f"the list mixes single images (frames of one image sequence, e.g. "
            f"{frames[0]!r}) with videos (e.g. {os.fspath(videos[0])!r}): give either "
            "image files only (one sequence), or videos only (movies, multi-page TIFFs, "
            "folders of images, arrays)"
        )
    _refuse_repeats(video)
    return list(zip(video_names(video), video))


def _name_ok(name):
    try:
        check_table_name(name)
    except (TypeError, ValueError):
        return False
    return "/" not in name


def _refuse_repeats(videos):
    seen = {}
    for v in videos:
        if isinstance(v, (str, os.PathLike)):
            key = os.path.abspath(os.fspath(v))
            if key in seen:
                raise ValueError(f"the video {os.fspath(v)!r} is given twice")
            seen[key] = v


def _describe_source(item, plan=None):
    if plan is not None:
        src = plan.video.attrs.get("source")
        if src is not None:
            return str(src) if not isinstance(src, (list, tuple)) else f"{len(src)} files"
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    return type(item).__name__


# ----------------------------------------------------------------- batch (streamed)


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


class _Job:
    """One video of a batch: its plan, its table in the store and its progress."""

    def __init__(self, plan, store, params, name=None, correction=None, on_error="raise"):
        self.plan = plan
        #: "raise" or "skip": what a chunk with frames that cannot be decoded does.
        self.on_error = on_error
        #: {(start, stop): reason} of the chunks that could not be decoded in this run.
        self.failed = {}
        #: True once an ordered store cannot take this video's later chunks.
        self.halted = False
        self.correction = correction
        self.store = store
        self.name = name
        self.planned = [(c.start, c.stop) for c in plan.chunks]
        self.meta = JobMetadata(
            params=dict(params, **(correction.identity if correction else {})),
            source=plan.source(),
            chunking={
                "chunk_frames": [len(c.frames) for c in plan.chunks],
                "chunks": [list(c) for c in self.planned],
            },
            columns=feature_dtypes(params["characterize"]),
            options={"on_error": on_error},
            store={"backend": store.backend},
            video=name,
            daskloc_version=__version__,
            created=utc_now(),
            versions=_versions(),
        )
        #: The job's identity: every chunk it writes carries chunk_id(identity, ...).
        self.identity = self.meta.job = self.meta.identity
        self.old = None
        self.damaged = None
        self.marks = None  # what the store holds about each chunk, read by verify()
        self.done = set()
        self.n_features = 0
        self.todo = []
        self.writer = None
        self.graph = None
        self.error = None
        self.lease = None
        self.last_meta = 0.0

    def note_skipped(self, summary):
        """Make the metadata list the frames a chunk skipped (``on_error="skip"``),
        replacing what an earlier run listed for it (none: its entry goes).

        Returns
        -------
        bool
            True if the metadata changed.
        """
        key = [summary["start"], summary["stop"]]
        frames = sorted(int(f) for f in summary.get("skipped") or ())
        entries = [e for e in self.meta.skipped if e[:2] != key]
        if frames:
            entries.append(key + [frames])
        entries.sort()
        changed = entries != self.meta.skipped
        self.meta.skipped = entries
        reasons = summary.get("skip_reasons")
        if reasons:
            self.meta.skip_reasons.update(
                {str(f): r for f, r in reasons.items()})
        return changed

    def chunk_id(self, c):
        """The identity of this job's chunk ``c`` (a _Chunk or (start, stop))."""
        start, stop = (c.start, c.stop) if isinstance(c, _Chunk) else c
        return chunk_id(self.identity, start, stop)

    def check(self, overwrite):
        """Read the store's metadata; raise StoreMismatchError for another job.

        Damaged metadata is an error naming the fix, unless ``overwrite``."""
        try:
            self.old = self.store.metadata()
        except MetadataError as exc:
            if not overwrite:
                raise
            self.old, self.damaged = None, exc
        if self.old is not None and not overwrite:
            _check_same_job(self.store, self.old, self.meta)
            # Frames skipped by an earlier run are part of its chunks' identities.
            self.meta.skipped = list(self.old.skipped)
            self.meta.skip_reasons = dict(self.old.skip_reasons)

    def verify(self, overwrite):
        """Which stored chunks are this job's; refuse chunks of another job (unless
        ``overwrite``): the identity of each chunk, not the metadata, decides."""
        st = self.store
        if overwrite:
            return
        present = st.complete_chunks()
        if not present:
            return
        if self.old is not None and self.old.legacy:
            raise StoreMismatchError(
                f"store {st.url} was written by daskloc {self.old.daskloc_version} "
                "before chunks carried their job's identity, so its chunks cannot be "
                "checked to be this job's: it can still be read (read_features, daskloc "
                "info, export), but not resumed; pass overwrite=True (CLI: --overwrite) to "
                "locate it again, or choose another --out"
            )
        marks = self.marks = st.chunk_ids(present)
        verifier = ChunkVerifier(self.meta)
        foreign = [c for c in present if verifier.reason(c, marks.get(c)) is not None]
        if foreign:
            shown = ", ".join(f"[{a}, {b})" for a, b in foreign[:3])
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            why = ("its metadata is missing" if self.old is None else
                   "its metadata says this job, but the chunks' own identities disagree "
                   "(the metadata was edited or replaced)")
            raise StoreMismatchError(
                f"store {st.url} holds {len(foreign)} chunks written by another job (other "
                f"parameters, source or chunking: frames {shown}{more}); {why}. Nothing "
                "was changed. Pass overwrite=True (CLI: --overwrite) to replace them, or "
                "choose another --out"
            )
        partial = sorted(c for c in present
                         if (marks[c].skipped if marks[c].skipped is not None
                             else verifier.skipped.get(c)))
        if partial and self.on_error != "skip":
            frames = sorted({f for c in partial for f in (
                marks[c].skipped if marks[c].skipped is not None else verifier.skipped[c])})
            raise StoreMismatchError(
                f"store {st.url} was written with on_error='skip': {len(frames)} frames "
                f"that could not be decoded were left out ({_frames_text(frames)}); resume "
                "with on_error='skip' (CLI: --on-error skip) to keep them out, or pass "
                "overwrite=True (CLI: --overwrite) to try every frame again"
            )

    def start(self, overwrite):
        """Clear (``overwrite``) or resume: find the chunks done, write the metadata."""
        st = self.store
        if overwrite and (self.old is not None or self.damaged is not None
                          or st.complete_chunks()):
            st.clear()  # checked beforehand (check_clear) for every job of the batch
        elif self.old is not None:
            self.meta.created = self.old.created or self.meta.created
        st.remove_temporary()
        # Identities read by verify() (under the lease): reused where reading them again
        # costs a request per chunk and nothing since could change them (Parquet, SQL;
        # an HDF5 repair in remove_temporary can drop chunks).
        if self.marks is not None and not overwrite and st.concurrent_writers:
            verifier = ChunkVerifier(self.meta)
            self.done = {c for c, m in self.marks.items() if verifier.accepts(c, m)}
            counts = [self.marks[c].n_rows for c in self.done]
            self.n_features = (sum(counts) if None not in counts
                               else st.n_rows(sorted(self.done)))
        else:
            self.done = set(st.valid_chunks(self.meta)) & set(self.planned)
            self.n_features = st.n_rows(sorted(self.done))
        self.write_meta(finished=len(self.done) == len(self.planned))
        self.todo = [c for c in self.plan.chunks if (c.start, c.stop) not in self.done]
        self.writer = _ClientWriter(st, self.todo, self)

    def write_meta(self, finished=False):
        if self.lease is not None:
            self.lease.check()  # another writer took the store over: stop writing
        self.meta.failed_chunks = [{"start": a, "stop": b, "error": why}
                                   for (a, b), why in sorted(self.failed.items())]
        self.meta.complete_chunks = [list(c) for c in sorted(self.done)]
        self.meta.n_features = int(self.n_features)
        self.meta.finished = bool(finished)
        self.meta.updated = utc_now()
        _write_metadata(self.store, self.meta.to_json())

    def refresh(self):
        """Take the store's chunks as the authority (chunks in flight may have landed)."""
        self.done |= set(self.store.valid_chunks(self.meta)) & set(self.planned)
        self.n_features = self.store.n_rows(sorted(self.done))

    @property
    def complete(self):
        return len(self.done) == len(self.planned)


def _interleave(jobs):
    """Chunks to do, round-robin over the videos: one chunk of each in turn.

    Lazy: a video that failed meanwhile is skipped from then on.
    """
    queues = [(job, iter(job.todo)) for job in jobs if job.todo]
    while queues:
        alive = []
        for job, it in queues:
            if job.error is not None or job.halted:
                continue
            c = next(it, None)
            if c is None:
                continue
            yield job, c
            alive.append((job, it))
        queues = alive


def _execute(jobs, params, client, progress, fail_fast):
    """Run the chunks to do of every job in one bounded window; record what lands.

    With ``fail_fast`` the first chunk error is raised (one video); otherwise it is kept
    on its job (``job.error``), that job's remaining chunks are skipped and the others
    go on.
    """
    total = sum(len(j.planned) for j in jobs)
    counts = {"done": sum(len(j.done) for j in jobs),
              "features": sum(j.n_features for j in jobs)}
    nonfinite = {}  # job -> [NaN/inf pixels, frames holding them], chunks of this run
    if progress is not None:
        progress(counts["done"], total, counts["features"])
    if not any(j.todo for j in jobs):
        return
    for job in jobs:
        if job.todo:
            job.graph = job.plan.block_graph()
            job.last_meta = time.monotonic()

    def task(item):
        job, c = item
        if job.on_error == "skip":
            return delayed(_chunk_task_skipping, pure=False)(
                _GraphRef(*job.graph.subgraph(c.index)), c.frames, job.store, c.start,
                c.stop, params, job.identity
            )
        return delayed(_chunk_task, pure=False)(
            job.graph.block(c.index), c.frames, job.store, c.start, c.stop, params,
            job.chunk_id(c)
        )

    def on_error(item, exc):
        job, c = item
        if isinstance(exc, VideoDecodeError):
            # Damaged frames: this chunk fails (recorded with its reason), the others go
            # on. An ordered store cannot take the chunks after it: they wait for a rerun.
            job.failed[(c.start, c.stop)] = (
                f"{exc.path}: frame {exc.frame}: {exc.reason}" if hasattr(exc, "reason")
                else str(exc))
            if job.store.ordered_appends:
                job.halted = True
                job.writer.abandon((c.start, c.stop))
            return
        if fail_fast:
            raise exc
        if job.error is None:
            job.error = exc
        job.writer.abandon()

    def record(item, summary):
        job = item[0]
        try:
            written = job.writer(summary)
        except Exception as exc:  # the client's append of this video failed
            on_error(item, exc)
            return
        for w in written:
            job.done.add((w["start"], w["stop"]))
            job.failed.pop((w["start"], w["stop"]), None)
            if job.on_error == "skip":
                job.note_skipped(w)
            job.n_features += w["n_rows"]
            if w.get("n_nonfinite"):
                bad = nonfinite.setdefault(job, [0, 0])
                bad[0] += w["n_nonfinite"]
                bad[1] += w["n_nonfinite_frames"]
            counts["done"] += 1
            counts["features"] += w["n_rows"]
            if progress is not None:
                progress(counts["done"], total, counts["features"])
        if time.monotonic() - job.last_meta >= METADATA_INTERVAL:
            job.write_meta()
            job.last_meta = time.monotonic()

    def backlog():
        return sum(len(j.writer.held) for j in jobs)

    queue = _interleave(jobs)
    cl = _find_client(client)
    try:
        if cl is not None:
            _run_distributed(cl, queue, task, record, on_error, backlog)
        else:
            _run_local(queue, task, record, on_error, backlog)
    except BaseException:
        # Chunks still running when the error came may have landed since: the
        # store's chunks are the authority, record them. Best effort: the store may
        # refuse writes (a full disk), and the error to report is the first one.
        for job in jobs:
            try:
                job.refresh()
                job.write_meta(finished=job.complete)
            except Exception:  # noqa: BLE001
                pass
        raise
    for job in jobs:
        job.write_meta(finished=job.complete)
        if job.failed and job.error is None:
            job.error = UndecodableChunksError(job)
    if nonfinite:  # NaN pixels the chunk tasks filled: one warning for the whole job
        import warnings

        n, f = (sum(v[i] for v in nonfinite.values()) for i in (0, 1))
        per_video = [(j.name, *nonfinite[j]) for j in jobs if j in nonfinite and j.name is not None]
        warnings.warn(nonfinite_message(n, f, where="daskloc.batch", per_video=per_video),
                      UserWarning, stacklevel=4)  # _execute -> _batch_one/_many -> batch


def batch(
    video,
    diameter,
    *,
    store,
    overwrite=False,
    do_not_return=False,
    client=None,
    progress=None,
    table=None,
    storage_options=None,
    open_options=None,
    mask=None,
    background=None,
    on_error="raise",
    **params,
):
    """Locate features in every frame and stream them to a store, chunk by chunk; resumable.

    One video, or many in one job (one Dask graph, chunks of all videos interleaved,
    each video its own table in the store).

    Parameters
    ----------
    video : xarray.DataArray, anything :func:`daskloc.open_video` accepts, list or dict
        One video, as for :func:`locate`; or several:

        - a **list** (or tuple) of videos: paths of movies, multi-page TIFFs, folders of
          images, Zarr arrays, glob patterns (each one image sequence), arrays or
          DataArrays, each one video. A list of single-image files (PNG, JPEG, BMP,
          single-page TIFF) stays what it always was: ONE image sequence. A list mixing
          both raises ValueError. Videos are named by :func:`video_names` (file stem,
          made unique: ``bulk-water``, ``bulk-water-2``);
        - a **dict** ``{name: video}`` names them yourself.
    diameter : int
        Feature diameter in pixels, odd.
    store : str, os.PathLike or daskloc.stores.FeatureStore
        Output store, e.g. ``"features.parquet"`` (a Parquet dataset directory with one
        file per chunk and ``_daskloc.json`` metadata). Created if missing; resumed if it
        holds the same job. Several videos need a location (str or path), not a
        FeatureStore object.
    overwrite : bool, default False
        Replace an existing store (for several videos: each video's table) written with
        other parameters, source or chunking (only if it is a daskloc store). Tables of
        videos not in this job are never touched.
    do_not_return : bool, default False
        Return None and hold nothing (for very long videos and the CLI).
    client : distributed.Client, optional
        Cluster to run on; default: the current default client if there is one, else
        a local thread pool.
    progress : callable or bool, optional
        Called as ``progress(done_chunks, total_chunks, n_features_so_far)`` once at the
        start (counting chunks done by an earlier, resumed run) and after every chunk,
        in the calling thread. With several videos the counts cover all of them.
        ``True`` shows a :class:`daskloc.ProgressBar` (a tqdm bar: a widget in
        Jupyter, text on stderr elsewhere).
    table : str, optional
        Name of this result set in a store holding several (``"bulk_water/features"``);
        see :func:`daskloc.stores.open_store`. With several videos, the base under
        which each video's table ``video=<name>`` lies.
    storage_options : dict, optional
        fsspec options for a store on object storage (``s3://...``).
    open_options : dict, optional
        Keyword arguments of :func:`daskloc.open_video` (``chunks``, ``channel``,
        ``frames``) for videos given as paths; DataArrays are used as they are.
    on_error : {"raise", "skip"}, default "raise"
        What a chunk whose frames cannot be read or decoded (a damaged movie or image,
        :class:`daskloc.video.VideoDecodeError`) does. ``"raise"``: that chunk fails,
        recorded with its reason in the store's metadata (``failed_chunks``, shown by
        ``daskloc info``); the other chunks complete (in a Zarr or HDF5 store, which
        takes chunks in frame order, those after it wait for the next run); then
        :class:`UndecodableChunksError` lists the failed chunks. ``"skip"``: every frame
        that can be decoded is located (see :func:`daskloc.video.skip_undecodable`) and
        the frames left out are listed in the metadata (``skipped``, with reasons in
        ``skip_reasons``) and by ``daskloc info``; they are part of each chunk's
        identity, so a store written with ``"skip"`` resumes only with ``"skip"``.
        Not part of the job's identity otherwise.
    mask, background : optional
        Bad pixels to fill and a static background to subtract before locating, as for
        :func:`locate` (the same mask for every video; ``"mean"``/``"median"`` are
        each video's own, computed once before its chunks run, on ``client``). Both
        are part of the job's identity in the store's metadata (``params["mask"]``:
        number of pixels and a SHA-256 of the mask; ``params["background"]``:
        ``"mean"``, ``"median"`` or ``"array sha256:..."``): resuming with another
        mask or background is refused unless ``overwrite``.
    **params
        Other parameters of :func:`daskloc.locate_frame` (``minmass``, ``invert``, ...).

    Returns
    -------
    dask.dataframe.DataFrame, dict or None
        None if ``do_not_return``. One video: the features read lazily from the store,
        as :func:`locate` returns them (indexed by ``frame``, known divisions). Several:
        ``{video name: such a DataFrame}`` in input order.

    Raises
    ------
    ValueError
        Bad parameters (before anything is computed or written); a video with a
        ``channel`` dimension (one video); ``store`` is a non-empty directory that is
        not a daskloc store; a list mixing single images with videos.
    daskloc.stores.StoreMismatchError
        The store holds a job with other parameters, source or chunking (the message
        names what differs, and for several videos which ones) and ``overwrite`` is
        False; raised before anything is computed.
    PermissionError, OSError
        The store cannot be written (raised before any computing; the message names the
        path).
    UndecodableChunksError
        One video, ``on_error="raise"``: chunks with frames that cannot be decoded
        (every other chunk is stored; the message lists each failed chunk, its frames
        and why, and says to rerun with ``on_error="skip"``).
    daskloc.stores.StoreInUseError
        Another batch is writing the store (the message names its host, process and
        start); one writer per store.
    daskloc.stores.MetadataError
        The store's metadata is damaged and ``overwrite`` is False (the message names
        what is damaged).
    BatchError
        Several videos: one or more could not be opened or failed while being
        processed. Raised after every other video completed; lists each failed video
        and why. Chunks they completed stay in the store.
    Exception
        One video: the first error raised by a chunk task; completed chunks stay in the
        store and a later run resumes from them.

    Notes
    -----
    Each chunk task reads its frames, locates them and appends them to the store *on
    the worker*; only a small summary (frame range, row count) comes back, so the
    client holds no feature data. At most ``2 x`` (total worker threads) chunks are in
    flight at any time (submitted as earlier ones finish), so memory stays bounded by a
    few chunks per thread whatever the video length. Without a distributed client, a
    thread pool of ``dask.config["num_workers"]`` (default: CPU count) threads is used,
    or one thread under ``dask.config.set(scheduler="synchronous")``.

    Every chunk is written atomically; the store's chunks are the authority on what is
    done. Re-running the same call after an interruption (even SIGKILL) skips the
    complete chunks, discards partial writes and computes the rest: the final table is
    identical to that of an uninterrupted run. Read results (also during a run) with
    :func:`daskloc.read_features`.

    For an in-memory array source the store identifies it by shape, dtype and frame
    numbers only (not by content); a file source also by path, size and mtime.

    **NaN and infinite pixels** of float frames are treated as masked pixels: each
    chunk task fills them, frame by frame, with the median of their finite 3 x 3
    neighbours (as ``mask=`` pixels are; a frame with no finite pixel gives no
    features, see :func:`daskloc.locate_frame`) and returns their count in its summary.
    The client adds the counts up and warns ONCE per job, after the last chunk, on the
    client (a ``UserWarning`` with the total number of pixels and frames, and per video
    with several videos; the command line prints it on stderr). Chunks done by an
    earlier, resumed run are not counted again. Fixed bad pixels are better given as
    ``mask=``: they are filled before the chunk tasks see them, without a warning.

    **Several videos.** Chunks are submitted round-robin over the videos (one chunk of
    each in turn, through the same bounded window), so every video progresses and the
    workers stay busy while short videos finish. Each video is its own table
    ``[table/]video=<name>`` holding exactly what a one-video run would (its metadata
    also records ``"video": name``):

    - Parquet: the folder ``features.parquet/video=<name>/`` (hive-style:
      ``pandas.read_parquet("features.parquet")`` gets a ``video`` column);
    - Zarr: the group ``video=<name>``; HDF5: the key ``video=<name>``;
    - SQL: the registry name ``video=<name>``, SQL table ``video_<name>``.

    Resume and the mismatch check work per video and per chunk. A video that cannot be
    opened, or whose chunk fails, stops alone (its remaining chunks are skipped); the
    others complete, then :class:`BatchError` names each failed video.

    Examples
    --------
    >>> daskloc.batch(["a.mov", "b.mov"], 11, store="f.parquet", minmass=20,
    ...               open_options={"channel": 0})  # doctest: +SKIP
    >>> daskloc.read_features("f.parquet", video="a", frames=slice(0, 100))  # doctest: +SKIP
    """
    params = normalize_params(diameter, **params)

    check_background_name(background)  # the same mistake for every video: fail first
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    correct = {"mask": mask, "background": background, "on_error": on_error}
    if progress is True:

        progress = ProgressBar()
    elif progress is False:
        progress = None
    elif progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be a callable progress(done, total, n_features), True or None; "
            f"got {progress!r}"
        )
    many = many_videos(video)
    if many is None:
        return _batch_one(video, params, store=store, overwrite=overwrite,
                          do_not_return=do_not_return, client=client, progress=progress,
                          table=table, storage_options=storage_options,
                          open_options=open_options, **correct)
    return _batch_many(many, params, store=store, overwrite=overwrite,
                       do_not_return=do_not_return, client=client, progress=progress,
                       table=table, storage_options=storage_options,
                       open_options=open_options, **correct)


@contextlib.contextmanager
def _writing(jobs, overwrite):
    """Take every job's table for writing, or change nothing.

    In order, for all jobs before the next step: check each location can be written
    (``prepare``), take each table's lease (one writer per table: a second batch is
    refused at once, naming the first), read and check the metadata and the chunks'
    identities against the job (a store of another job is refused unless
    ``overwrite``), with ``overwrite`` check that every table can be cleared without
    touching anything daskloc did not write, and only then clear or resume each. The
    leases are given up when the block ends, however it ends.
    """
    with contextlib.ExitStack() as stack:
        for job in jobs:
            job.store.prepare()  # unwritable path / foreign directory: fail before computing
        for job in jobs:
            job.lease = stack.enter_context(job.store.lease())
            if job.lease.taken_over:
                logger.warning("%s", job.lease.taken_over)
        problems = []
        for job in jobs:
            try:
                job.check(overwrite)
                job.verify(overwrite)
            except (StoreMismatchError, MetadataError) as exc:
                problems.append((job, exc))
        if len(problems) == 1 and problems[0][0].name is None:
            raise problems[0][1]
        if problems:
            lines = [f"video {job.name!r}: {exc}" for job, exc in problems]
            head = (f"{len(lines)} videos differ from what the store holds:\n  "
                    if len(lines) > 1 else "")
            kind = (StoreMismatchError if any(isinstance(e, StoreMismatchError)
                                              for _, e in problems) else MetadataError)
            raise kind(head + "\n  ".join(lines))
        if overwrite:
            for job in jobs:
                job.store.check_clear()  # nothing is removed unless all can be
        for job in jobs:
            job.start(overwrite)
        yield


def _batch_one(video, params, *, store, overwrite, do_not_return, client, progress, table,
               storage_options, open_options, mask=None, background=None, on_error="raise"):
    plan = _Plan(video, open_options)
    correction = _correction(plan, mask, background)
    st = open_store(store, "a", table=table, storage_options=storage_options)
    job = _Job(plan, st, params, correction=correction, on_error=on_error)
    with _writing([job], overwrite):
        _apply_correction(job, client)
        _execute([job], params, client, progress, fail_fast=True)
    if job.error is not None:
        raise job.error
    if do_not_return:
        return None
    return _from_store(st)


def _batch_many(many, params, *, store, overwrite, do_not_return, client, progress, table,
                storage_options, open_options, mask=None, background=None,
                on_error="raise"):

    if isinstance(store, FeatureStore):
        raise TypeError(
            f"several videos go to one table each: give the store's location (a path or "
            f"URL, with storage_options), not the store object {store!r}"
        )
    check_table_name(table)
    failed, sources = {}, {}
    jobs = []
    for name, item in many:
        try:
            plan = _Plan(item, open_options)
            correction = _correction(plan, mask, background)  # e.g. a mask of another shape
        except Exception as exc:  # noqa: BLE001 - this video cannot be read: it fails alone
            failed[name] = exc
            sources[name] = _describe_source(item)
            continue
        st = open_store(store, "a", table=video_table(name, table),
                        storage_options=storage_options)
        jobs.append(_Job(plan, st, params, name=name, correction=correction,
                         on_error=on_error))
    with _writing(jobs, overwrite):
        for job in jobs:
            try:
                _apply_correction(job, client)
            except Exception as exc:  # noqa: BLE001 - e.g. its background cannot be read
                job.error = exc
        _execute(jobs, params, client, progress, fail_fast=False)
    for job in jobs:
        if job.error is not None:
            failed[job.name] = job.error
            sources[job.name] = _describe_source(None, job.plan)
    if failed:
        order = [name for name, _ in many]
        failed = {n: failed[n] for n in order if n in failed}
        completed = [j.name for j in jobs if j.error is None and j.complete]
        location = os.fspath(store)
        lines = [
            f"{name} ({sources[name]}): {type(exc).__name__}: {exc}"
            for name, exc in failed.items()
        ]
        raise BatchError(
            f"{len(failed)} of {len(many)} videos failed ({len(completed)} completed in "
            f"{location}):\n  " + "\n  ".join(lines),
            failed=failed, sources=sources, completed=completed, store=location,
        )
    if do_not_return:
        return None
    return {job.name: _from_store(job.store) for job in jobs}


def _run_distributed(client, queue, task, record, on_error, backlog):
    from distributed import as_completed

    window = IN_FLIGHT_PER_THREAD * _client_threads(client)
    futures = {}
    pending = None

    def submit():
        item = next(queue, None)
        if item is None:
            return False
        fut = client.compute(task(item), optimize_graph=False)
        futures[fut] = item
        if pending is not None:
            pending.add(fut)
        return True

    for _ in range(window):
        if not submit():
            break
    pending = as_completed(list(futures), loop=client.loop)
    try:
        for n, fut in enumerate(pending, 1):
            item = futures.pop(fut)
            try:
                summary = fut.result()
            except Exception as exc:  # noqa: BLE001 - on_error decides (raise or record)
                fut.release()
                on_error(item, exc)
            else:
                fut.release()
                record(item, summary)
            if n % 32 == 0:
                window = IN_FLIGHT_PER_THREAD * _client_threads(client)
            # Chunks held by the client for an ordered store count against the window.
            while len(futures) + backlog() < window:
                if not submit():
                    break
    except Exception:
        # A chunk failed: let the chunks in flight finish (at most the window) before
        # the error goes up, so the store's chunks are final when the caller records
        # them; a cancelled task that is already running would land later otherwise.
        deadline = time.monotonic() + DRAIN_SECONDS
        for fut in list(futures):
            try:
                fut.exception(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - timed out (cancelled below) or lost
                pass
        raise
    finally:
        if futures:
            client.cancel(list(futures))


def _run_local(queue, task, record, on_error, backlog):
    threads = _local_threads()
    window = IN_FLIGHT_PER_THREAD * threads

    def run(item):
        return dask.compute(task(item), scheduler="sync", optimize_graph=False)[0]

    with ThreadPoolExecutor(threads, thread_name_prefix="daskloc-batch") as pool:
        pending = {}

        order = {}

        def submit():
            item = next(queue, None)
            if item is None:
                return False
            fut = pool.submit(run, item)
            pending[fut] = item
            order[fut] = len(order)
            return True

        for _ in range(window):
            if not submit():
                break
        try:
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                # Chunks that finished together are taken in submission order, and the
                # good ones are recorded before any error is handled (on_error may
                # raise): work that is done is never thrown away.
                errors = []
                for fut in sorted(finished, key=order.pop):
                    item = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        errors.append((item, exc))
                        continue
                    record(item, fut.result())
                for item, exc in errors:
                    on_error(item, exc)
                while len(pending) + backlog() < window:
                    if not submit():
                        break
        finally:
            for fut in pending:
                fut.cancel()


# ----------------------------------------------------------------- reading back lazily


def _read_chunk(store, start, stop, characterize):
    df = store.read(frames=slice(start, stop))
    return _to_partition(df, characterize)


def _from_store(st):
    """A store's complete chunks as a Dask DataFrame indexed by frame, known divisions."""
    meta = st.metadata()
    characterize = meta.characterize if meta is not None else True
    chunks = st.valid_chunks(meta) if meta is not None else []
    empty = _meta(characterize)
    if not chunks:
        return dd.from_pandas(empty, npartitions=1)
    divisions = tuple(a for a, _ in chunks) + (chunks[-1][1] - 1,)
    return dd.from_map(
        _read_chunk,
        [st] * len(chunks),
        [a for a, _ in chunks],
        [b for _, b in chunks],
        args=(characterize,),
        meta=empty,
        divisions=divisions,
        label="daskloc-read",
        enforce_metadata=False,
    )
