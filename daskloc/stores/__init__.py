"""Feature stores: where :func:`daskloc.batch` streams features, and how to read them back.

One small interface (:class:`FeatureStore`) with one class per format: Parquet
(:class:`ParquetStore`), Zarr, HDF5 and SQL, plus any a plugin adds through the
entry-point group ``daskloc.stores``. Each class declares the suffixes and URL schemes
it opens and what it can do (:data:`~daskloc.stores.base.CAPABILITIES`); the registry
built from them (:func:`store_formats`, :func:`store_class`) lets :func:`open_store`
pick the class of a location. :func:`read_features` and :func:`store_info` are the
reading API.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from daskloc._utils import natural_key
from daskloc.metadata import JobMetadata
from daskloc.stores._lease import LockFileOps, ObjectLeaseOps, lease_name
from daskloc.stores._names import VIDEO_KEY, trajectories_table, video_table
from daskloc.stores._registry import (
    ENTRY_POINT_GROUP,
    OBJECT_SCHEMES,
    StoreFormat,
    StorePluginWarning,
    clear_registry_cache,
    is_store_location,
    open_store,
    register_backend,
    register_store,
    store_class,
    store_formats,
)
from daskloc.stores._watch import job_progress, watch_job
from daskloc.stores.base import (
    CAPABILITIES,
    FeatureStore,
    MetadataError,
    StoreBusyError,
    StoreInUseError,
    StoreMismatchError,
    UnsafeStoreError,
    count_frames_in,
    decode_frames,
    encode_frames,
    normalize_selection,
)
from daskloc.stores.parquet import ParquetStore

__all__ = [
    "job_progress",
    "watch_job",
    "CAPABILITIES",
    "ENTRY_POINT_GROUP",
    "OBJECT_SCHEMES",
    "ObjectLeaseOps",
    "FeatureStore",
    "LockFileOps",
    "MetadataError",
    "ParquetStore",
    "StoreBusyError",
    "StoreFormat",
    "StoreInUseError",
    "StoreMismatchError",
    "StorePluginWarning",
    "UnsafeStoreError",
    "clear_registry_cache",
    "decode_frames",
    "encode_frames",
    "is_store_location",
    "lease_name",
    "open_store",
    "read_features",
    "register_backend",
    "register_store",
    "store_class",
    "store_formats",
    "store_info",
]


def _video_tables(store, table=None, storage_options=None):
    """``{video name: table}`` of the videos of a many-video batch under ``table``.

    Names are in natural order (``a2`` before ``a10``); ``{}`` when there are none or the
    backend cannot list its tables.
    """
    if isinstance(store, FeatureStore):
        root = store
        if store.table is not None and table is None:
            table = store.table
    else:
        root = open_store(store, "a", storage_options=storage_options)
    if not root.lists_tables:
        return {}
    try:
        tables = root.list_tables()
    except NotImplementedError:  # a class that says it lists its tables, yet does not
        return {}
    prefix = f"{table}/" if table else ""
    key = f"{VIDEO_KEY}="
    out = {}
    for t in tables:
        rest = t[len(prefix):] if t.startswith(prefix) else None
        if rest and "/" not in rest and rest.startswith(key):
            out[rest[len(key):]] = t
    return {n: out[n] for n in sorted(out, key=natural_key)}


def _open_video(store, video, table, storage_options):
    """The store of one video of a many-video batch; a clear error listing the others."""
    if isinstance(store, FeatureStore):
        raise TypeError(
            f"video= needs the store's location (a path or URL), not the store object {store!r}"
        )
    if not isinstance(video, str):
        raise TypeError(f"video must be a video name (str), got {video!r}")
    st = open_store(store, "a", table=video_table(video, table),
                    storage_options=storage_options)
    if st.exists():
        return st
    videos = _video_tables(store, table, storage_options)
    if videos:
        raise ValueError(
            f"the store {_location(store)} has no video {video!r}; its videos are "
            f"{', '.join(repr(v) for v in videos)}"
        )
    open_store(store, "r", table=table, storage_options=storage_options)  # absent: says so
    raise ValueError(
        f"the store {_location(store)} holds no videos of a many-video batch (no table "
        f"video=...); read it without video="
    )


def _location(store):
    return store.url if isinstance(store, FeatureStore) else os.fspath(store)


def _read_videos(stores, frames):
    """Rows of several videos, with a categorical ``video`` column (videos in order)."""
    normalize_selection(frames)  # a malformed selection raises, whatever the videos
    parts = []
    for name, st in stores.items():  # per video: frames it lacks give no rows
        parts.append(st.read(frames, strict=False).assign(video=name))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"video": []})
    out["video"] = pd.Categorical(out["video"], categories=list(stores))
    return out


def _chosen_particles(df, particles):
    if particles is None:
        return df
    if isinstance(particles, (int, np.integer)):
        particles = [particles]
    particles = list(particles)
    if not all(isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in particles):
        raise ValueError(f"particles must be whole particle numbers, got {particles!r}")
    wanted = np.asarray(particles, dtype=np.int64)
    return df[df["particle"].isin(wanted)].reset_index(drop=True)


def read_features(store, frames=None, *, video=None, table=None, trajectories=False,
                  particles=None, storage_options=None):
    """Read the features of a frame range from a store, also while a batch writes to it.

    Parameters
    ----------
    store : str, os.PathLike or FeatureStore
        A store written by :func:`daskloc.batch` (e.g. ``"features.parquet"``).
    frames : None, int, slice, range or sequence of int, optional
        Absolute frame numbers to read. Slices and ranges are half-open like Python's:
        ``slice(100, 200)`` and ``range(100, 200)`` are frames 100..199 (``slice(None,
        200)`` starts at the source's first frame); a list picks exact frames. None
        (default) reads everything stored.
    video : str or list of str, optional
        In a store written by a many-video :func:`daskloc.batch`: the name of the
        video to read (``"bulk-water"``), or a list of names (the result then has a
        ``video`` column). Without ``video=`` such a store gives every video.
    table : str, optional
        Which result set, in a store holding several (see :func:`open_store`); for a
        many-video batch, the base ``table`` it was given.
    trajectories : bool, default False
        Read the trajectories :func:`daskloc.link` made of these features (in this
        store, or in the ``out=`` store it was given, then pass that store) instead of
        the features: the same columns plus ``particle`` (int64), in the same order.
        Also while the link runs: frames it has not written yet give no rows.
    particles : int or sequence of int, optional
        With ``trajectories=True``: only these trajectories (their ``particle``
        numbers).
    storage_options : dict, optional
        fsspec options for stores on object storage.

    Returns
    -------
    pandas.DataFrame
        The job's columns as ``trackpy.locate`` names them (float64; the metadata's
        ``columns``): ``y, x, mass, size, ecc, signal, raw_mass, ep`` for 2-D frames
        (``y, x, mass`` only when located with ``characterize=False``), ``z`` first for
        3-D volumes, ``size_z, size_y, size_x`` and ``ep_z, ...`` for a per-axis
        diameter; and ``frame`` (int64, absolute frame numbers), sorted by frame and,
        within a frame, in the order the locator found them; default RangeIndex.
        Positions are in pixels (origin at the centre of the top-left pixel, y down).
        Ready for ``trackpy.link`` (3-D: ``pos_columns=["z", "y", "x"]``).

        Several videos (a many-video store read without ``video=``, or a list of
        names): the same columns plus ``video`` (categorical, categories in the order
        of the names, natural order for a whole store), rows grouped by video and
        sorted by frame within each. Link each video on its own
        (``df.groupby("video", observed=True)``).

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``store``.
    ValueError
        ``store`` is not a daskloc store; ``frames`` reaches outside the source video's
        frames (the message names the range and the source's frames; for several
        videos at once a video simply contributes the frames it has); no video of that
        name (the message lists the store's videos).

    Notes
    -----
    Only complete chunks are read: while a batch is still running, frames whose chunk is
    not finished yet are simply absent. Frames inside the source's range that the store
    does not hold (not computed yet, or not selected) give no rows: asking only for such
    frames returns an empty table with the columns and dtypes above, not an error.

    Only the files whose frame range (in their names) meets the selection are opened,
    and in those only the row groups whose ``frame`` statistics meet it are read.

    Examples
    --------
    >>> df = read_features("features.parquet", frames=slice(0, 100))  # doctest: +SKIP
    >>> import trackpy; tracks = trackpy.link(df, search_range=5)  # doctest: +SKIP
    >>> one = read_features("videos.parquet", video="bulk-water")  # doctest: +SKIP
    """
    if particles is not None and not trajectories:
        raise ValueError("particles= picks trajectories: pass trajectories=True as well")
    if trajectories:
        return _chosen_particles(
            _read_trajectories(store, frames, video, table, storage_options), particles)
    if video is not None:
        if isinstance(video, (list, tuple)):
            stores = {v: _open_video(store, v, table, storage_options) for v in video}
            return _read_videos(stores, frames)
        return _open_video(store, video, table, storage_options).read(frames)
    try:
        st = open_store(store, "r", table=table, storage_options=storage_options)
    except (FileNotFoundError, ValueError):
        videos = _video_tables(store, table, storage_options)
        if not videos:
            raise
        stores = {n: open_store(store, "r", table=t, storage_options=storage_options)
                  for n, t in videos.items()}
        return _read_videos(stores, frames)
    return st.read(frames)


def _check_fresh(traj, store, table, storage_options):
    """Refuse trajectories linked from other features than the store now holds (the
    features were located again since): their rows would pass for the new ones."""
    meta = traj.metadata()
    if meta is None or not meta.trajectories:
        raise ValueError(f"{traj.url} does not hold trajectories (its metadata says "
                         f"{'nothing' if meta is None else 'features'})")
    def features_at(location, t):
        try:
            st = open_store(location, "r", table=t, storage_options=storage_options)
            m = st.metadata()
        except (FileNotFoundError, ValueError):
            return None, None
        return (None, None) if m is None or m.trajectories else (st, m)

    features, fmeta = features_at(store, table)
    if features is None and meta.source.get("store"):
        # trajectories in link's out= store: the features' store is recorded
        features, fmeta = features_at(meta.source["store"], None)
    if features is None:
        return  # the features are gone or moved: nothing to compare with
    if meta.params.get("features_job") != (fmeta.job or fmeta.identity):
        raise StoreMismatchError(
            f"the trajectories in {traj.url} were linked from other features than "
            f"{features.url} holds now (it was located again since): link it again "
            "with overwrite=True (CLI: daskloc link --overwrite)")


def _read_trajectories(store, frames, video, table, storage_options):
    """read_features(..., trajectories=True) without the choice of particles."""
    def one(t):
        try:
            traj = open_store(store, "r", table=trajectories_table(t),
                              storage_options=storage_options)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{_location(store)} holds no trajectories in table "
                f"{trajectories_table(t)!r}: link its features first (daskloc.link, CLI: "
                "daskloc link), or read the store given to link's out=") from None
        _check_fresh(traj, store, t, storage_options)
        return traj

    if video is not None:
        names = [video] if isinstance(video, str) else list(video)
        stores = {}
        for v in names:
            try:  # in the features' store, or in the out= store of a link
                stores[v] = one(video_table(v, table))
            except FileNotFoundError:
                if not isinstance(store, FeatureStore):
                    try:
                        _open_video(store, v, table, storage_options)
                    except (FileNotFoundError, ValueError) as exc:
                        if "has no video" in str(exc):  # names the videos there are
                            raise exc from None
                raise
        if isinstance(video, str):
            return stores[video].read(frames)
        return _read_videos(stores, frames)
    try:
        return one(table).read(frames)
    except (FileNotFoundError, ValueError):
        videos = _video_tables(store, table, storage_options)
        if not videos:
            raise
    stores = {}
    for v, t in videos.items():
        stores[v] = one(t)
    return _read_videos(stores, frames)


def _table_info(st):
    """store_info of one table (one video)."""
    stored = st.metadata()
    report = st.chunk_report(stored)
    meta = stored if stored is not None else JobMetadata()
    planned = meta.chunks
    done = report["valid"]
    source = meta.source
    frames = decode_frames(source["frames"]) if source.get("frames") is not None else None
    if frames is not None:
        frames_done = sum(count_frames_in(frames, a, b) for a, b in done)
        frames_total = len(frames)
    else:
        frames_done = frames_total = None
    return {
        "path": st.url,
        "backend": st.backend,
        # a followed recording is complete once its end was seen and located
        "complete": bool(planned) and len(done) == len(planned) and not meta.growing,
        "followed": meta.followed,
        "growing": meta.growing,
        "ended": source.get("ended") if meta.followed else None,
        "chunks_complete": len(done),
        "chunks_total": len(planned),
        "frames_complete": frames_done,
        "frames_total": frames_total,
        "first_frame": int(frames[0]) if frames is not None and len(frames) else None,
        "last_frame": int(frames[-1]) if frames is not None and len(frames) else None,
        "n_features": report["n_rows"],
        "ignored_chunks": report["ignored"],
        "failed_chunks": list(meta.failed_chunks),
        "skipped_frames": sorted({f for fr in meta.skipped_frames().values() for f in fr}),
        "verified": stored is not None and not meta.legacy,
        "metadata_edited": meta.edited,
        "writer": st.lease_holder(),
        "params": meta.params if stored is not None else None,
        "dims": list(meta.video_dims) if stored is not None else None,
        "columns": list(meta.column_dtypes()) if stored is not None else None,
        "source": source,
        "daskloc_version": meta.daskloc_version,
        "created": meta.created,
        "updated": meta.updated,
    }


def _sum(values):
    values = list(values)
    return None if any(v is None for v in values) else int(sum(values))


def store_info(store, *, video=None, table=None, storage_options=None):
    """Summarise a feature store: progress, feature count, parameters, source.

    Parameters
    ----------
    store : str, os.PathLike or FeatureStore
    video : str, optional
        One video of a store written by a many-video :func:`daskloc.batch`.
    table : str, optional
        Which result set (for a many-video batch: the base ``table`` it was given).
    storage_options : dict, optional
        fsspec options for stores on object storage.

    Returns
    -------
    dict
        ``path``, ``backend``, ``complete`` (bool: every chunk done),
        ``chunks_complete``, ``chunks_total``, ``frames_complete``, ``frames_total``
        (numbers of source frames), ``first_frame``, ``last_frame`` (of the source
        selection, or None), ``n_features`` (in complete chunks), ``params`` (the
        normalised locate parameters; per-axis values as lists), ``dims`` (the video's:
        ``["frame", "y", "x"]`` or ``["frame", "z", "y", "x"]``), ``columns`` (the
        feature table's, ``frame`` last), ``source`` (as in the metadata),
        ``daskloc_version``, ``created``, ``updated`` (ISO 8601 UTC). With ``video=``
        also ``video`` (its name). And what a careful reader checks:
        ``ignored_chunks`` (``[{"chunk": [start, stop], "reason": ...}]``: chunks present
        in the store but not read, e.g. a stray file or a chunk of another job),
        ``failed_chunks`` (``[{"start", "stop", "error"}]`` recorded by the last run),
        ``skipped_frames`` (frames left out by ``on_error="skip"``), ``verified``
        (chunks carry their job's identity: False for stores of daskloc < 0.2),
        ``metadata_edited`` (the metadata's parameters or source differ from the job
        identity it records), ``writer`` (the lease holder while a job writes, see
        :meth:`FeatureStore.lease_holder`, else None). For a recording followed
        while written (``batch(..., follow=True)``): ``followed`` True, ``growing``
        (its job has not seen its end yet; ``frames_total`` counts the frames
        complete when it last planned chunks) and ``ended`` (what ended it, e.g.
        ``"no new frame for 60 s (idle)"``); ``complete`` only once it ended.

        A many-video store read without ``video=``: the same keys summed over the
        videos (``complete`` when all are; ``first_frame``/``last_frame`` None;
        ``params``, ``dims`` and ``columns`` when all videos share them, else None;
        ``source`` a description; ``created`` the earliest, ``updated`` the latest),
        plus ``videos``:
        ``{name: the summary of that video}`` in natural order of names.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`read_features`.
    """
    if video is not None:
        return dict(_table_info(_open_video(store, video, table, storage_options)), video=video)
    try:
        st = open_store(store, "r", table=table, storage_options=storage_options)
    except (FileNotFoundError, ValueError):
        videos = _video_tables(store, table, storage_options)
        if not videos:
            raise
        per = {}
        for name, t in videos.items():
            st = open_store(store, "r", table=t, storage_options=storage_options)
            per[name] = dict(_table_info(st), video=name)
        return _summarise_videos(store, table, per)
    return _table_info(st)


def _summarise_videos(store, table, per):
    infos = list(per.values())
    shared = {}
    for key in ("params", "dims", "columns"):  # when every video has the same, else None
        shared[key] = infos[0][key]
        if any(i[key] != shared[key] for i in infos):
            shared[key] = None
    path = _location(store) if table is None else f"{_location(store)}#{table}"
    names = list(per)
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    stamps = lambda k: [i[k] for i in infos if i[k]]  # noqa: E731
    return {
        "path": path,
        "backend": infos[0]["backend"],
        "complete": all(i["complete"] for i in infos),
        "followed": any(i["followed"] for i in infos),
        "growing": any(i["growing"] for i in infos),
        "ended": None,
        "chunks_complete": sum(i["chunks_complete"] for i in infos),
        "chunks_total": sum(i["chunks_total"] for i in infos),
        "frames_complete": _sum(i["frames_complete"] for i in infos),
        "frames_total": _sum(i["frames_total"] for i in infos),
        "first_frame": None,
        "last_frame": None,
        "n_features": sum(i["n_features"] for i in infos),
        "ignored_chunks": [dict(c, video=n) for n, i in per.items() for c in i["ignored_chunks"]],
        "failed_chunks": [dict(c, video=n) for n, i in per.items() for c in i["failed_chunks"]],
        "skipped_frames": {n: i["skipped_frames"] for n, i in per.items() if i["skipped_frames"]},
        "verified": all(i["verified"] for i in infos),
        "metadata_edited": any(i["metadata_edited"] for i in infos),
        "writer": next((i["writer"] for i in infos if i["writer"]), None),
        **shared,
        "source": {"description": f"{len(names)} videos: {shown}"},
        "daskloc_version": infos[0]["daskloc_version"],
        "created": min(stamps("created"), default=None),
        "updated": max(stamps("updated"), default=None),
        "videos": per,
    }
