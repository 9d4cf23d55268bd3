"""The public functions: :func:`locate` (lazy) and :func:`batch` (streamed to a store,
resumable; one video or many).
"""

from __future__ import annotations

import os

from dask.delayed import delayed

from daskloc.correct import Correction, check_background_name
from daskloc.locate import normalize_params, split_options
from daskloc.metadata import MetadataError
from daskloc.pipeline._executors import _cluster_or_threads, _execute, _find_client
from daskloc.pipeline._graph import UNSHIPPABLE, pickling_error
from daskloc.pipeline._job import _Job, _writing
from daskloc.pipeline._partitions import _locate_block, _meta
from daskloc.pipeline._plan import _Plan
from daskloc.pipeline._readback import _from_store
from daskloc.pipeline._videos import BatchError, _describe_source, many_videos
from daskloc.progress import ProgressBar
from daskloc.stores import open_store
from daskloc.stores._names import video_table
from daskloc.stores.base import FeatureStore, check_table_name


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


def locate(video, diameter, *, mask=None, background=None, **params):
    """Locate features in every frame of a video, lazily, as a Dask DataFrame.

    Parameters
    ----------
    video : xarray.DataArray or anything :func:`daskloc.open_video` accepts
        Grey video with dims ``("frame", "y", "x")`` (2-D frames) or ``("frame", "z",
        "y", "x")`` (3-D volumes, e.g. confocal z-stacks over time) and a ``frame``
        coordinate of absolute, strictly increasing frame numbers, normally dask-backed
        and chunked along ``frame`` only (a numpy-backed array is split in chunks of 64
        frames; chunks along ``z``/``y``/``x`` are merged lazily). Paths, arrays etc. go
        through ``open_video`` with its defaults.
    diameter : int or tuple of int
        Feature diameter in pixels, odd; or one per axis, slowest first (``(5, 11, 11)``
        for ``(z, y, x)`` volumes whose planes are further apart than their pixels).
        ``separation``, ``noise_size`` and ``smoothing_size`` also take one value per
        axis; per-axis values must have as many entries as the images have axes.
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
        Other parameters of :func:`daskloc.locate_frame` (``minmass``, ``invert``, ...),
        and trackpy's ``engine`` (any of its values runs daskloc's kernel; recorded in
        the metadata's execution options, not part of the job's identity).

    Returns
    -------
    dask.dataframe.DataFrame
        One partition per frame chunk, indexed by ``frame`` (int64, absolute frame
        numbers) with known divisions (each chunk's first frame; the last division is
        the last frame). Columns as ``trackpy.locate`` names them for these dims and
        parameters (:func:`daskloc.locate.job_columns`): ``y, x, mass, size, ecc,
        signal, raw_mass, ep`` for 2-D frames; ``z`` first for 3-D volumes; ``size_z,
        size_y, size_x`` and ``ep_z, ep_y, ep_x`` (2-D: ``_y, _x``) for a per-axis
        ``diameter`` (``ep_*`` also for a per-axis ``noise_size``); ``z, y, x, mass``
        with ``characterize=False``. All float64; positions in pixels. Every partition
        has this schema, also when empty (e.g. a chunk of black frames).

    Raises
    ------
    ValueError
        Bad parameters (e.g. an even or negative ``diameter``), checked before any graph
        is built; per-axis parameters with another number of values than the video's
        images have axes (``diameter=(5, 11, 11)`` for a 2-D video); a video with a
        ``channel`` dimension (pass ``channel=<int>`` or
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
    # dask.dataframe is imported by the calls that make DataFrames, not by batch's
    # streaming, which needs none (the CLI's jobs start without it).
    import dask.dataframe as dd

    asked, _ = split_options(params)
    params = normalize_params(diameter, **asked)
    plan = _Plan(video)
    columns = plan.fit(diameter, asked)  # per-axis parameters fit the video's dims
    meta = _meta(columns)
    if not plan.chunks:
        return dd.from_pandas(meta, npartitions=1)
    correction = _correction(plan, mask, background)
    if _find_client(None) is not None:  # computing on a cluster: can its workers run it?
        why = pickling_error(plan.block_graph(), 0)
        if why is not None:
            import warnings

            warnings.warn(
                UNSHIPPABLE.format(why=why) + ": compute this DataFrame with "
                "scheduler='threads', or open the file with daskloc.open_video(PATH), "
                "which each worker opens again (daskloc.batch falls back to threads "
                "itself)", UserWarning, stacklevel=2)
    plan.data = correction.apply(plan.data, correction.shift(plan.data))
    blocks = plan.data.to_delayed(optimize_graph=False).reshape(-1)
    parts = [
        delayed(_locate_block, pure=True)(blocks[c.index], c.frames, params, columns)
        for c in plan.chunks
    ]
    return dd.from_delayed(
        parts, meta=meta, divisions=plan.divisions, prefix="daskloc-locate", verify_meta=False
    )


def batch(
    video,
    diameter,
    *,
    store=None,
    output=None,
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
    follow=False,
    idle=None,
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
    diameter : int or tuple of int
        Feature diameter in pixels, odd, or one per axis, as for :func:`locate`.
    store : str, os.PathLike or daskloc.stores.FeatureStore
        Output store, e.g. ``"features.parquet"`` (a Parquet dataset directory with one
        file per chunk and ``_daskloc.parquet`` metadata). Created if missing; resumed if it
        holds the same job. Several videos need a location (str or path), not a
        FeatureStore object.
    output : str, os.PathLike or daskloc.stores.FeatureStore
        trackpy's name for ``store`` (``trackpy.batch(frames, 11, output=store)``); give
        one of the two.
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
    follow : bool, default False
        Locate a recording **while it is being written**: a folder of image files
        (or a glob of them), a multi-page TIFF or a Zarr array that a microscope's
        software or a camera script is still filling. The frames that are complete
        are located, then the recording is watched (a scan every
        :data:`~daskloc.pipeline._follow.FOLLOW_POLL` s) and new frames are located
        as they complete, chunk by chunk, into the same store, until the recording
        ends: the writer's end marker where the format has one (a TIFF holding all
        the pages its OME-XML, ImageJ or tifffile description announces), ``idle``
        seconds without a new frame, ``open_options["frames"] = N`` frames, or
        ``KeyboardInterrupt`` (Ctrl-C). Then the last, shorter chunk is located too
        and ``batch`` returns. A frame counts once it is completely written (see
        :class:`daskloc.video.images.GrowingImages`,
        :class:`daskloc.video.tiff.GrowingTiff`,
        :class:`daskloc.video.zarr.GrowingZarr`): a half-written file is never read.
        Chunks are :data:`~daskloc.video._follow.FOLLOW_CHUNK_FRAMES` (16) frames
        unless ``open_options["chunks"]`` says otherwise. While it runs, the store's
        metadata says how many frames are located and that the recording is still
        growing (``daskloc info``); readers see every chunk written. A job killed
        and started again resumes; on a store of a recording followed to its end
        with no new frame since, it does nothing and warns so. One video only;
        ``background`` must be an array (a mean or median needs the whole
        recording).
    idle : float, optional
        With ``follow``: seconds without a new complete frame after which the
        recording is taken as ended (default 60), and how long to wait for its first
        frame.
    mask, background : optional
        Bad pixels to fill and a static background to subtract before locating, as for
        :func:`locate` (the same mask for every video; ``"mean"``/``"median"`` are
        each video's own, computed once before its chunks run, on ``client``). Both
        are part of the job's identity in the store's metadata (``params["mask"]``:
        number of pixels and a SHA-256 of the mask; ``params["background"]``:
        ``"mean"``, ``"median"`` or ``"array sha256:..."``): resuming with another
        mask or background is refused unless ``overwrite``.
    **params
        Other parameters of :func:`daskloc.locate_frame` (``minmass``, ``invert``, ...),
        and trackpy's ``engine`` (any of its values runs daskloc's kernel; recorded in
        the metadata's execution options, not part of the job's identity).

    Returns
    -------
    dask.dataframe.DataFrame, dict or None
        None if ``do_not_return``. One video: the features read lazily from the store,
        as :func:`locate` returns them (indexed by ``frame``, known divisions). Several:
        ``{video name: such a DataFrame}`` in input order.

    Raises
    ------
    ValueError
        Bad parameters (before anything is computed or written), per-axis parameters
        for another number of axes than the video's images have (one video; with
        several, that video fails alone); a video with a ``channel`` dimension (one
        video); ``store`` is a non-empty directory that is not a daskloc store; a list
        mixing single images with videos; an unknown ``engine``.
    TypeError
        Neither ``store`` nor ``output`` given, or both; a keyword that is not a locate
        parameter (trackpy's ``filter_before``, ``processes``... are named with what to
        use instead).
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
    store = _store_argument(store, output)
    asked, options = split_options(params)
    params = normalize_params(diameter, **asked)

    check_background_name(background)  # the same mistake for every video: fail first
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    correct = {"mask": mask, "background": background, "on_error": on_error,
               "asked": (diameter, asked), **options}
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
    if follow:
        if many is not None:
            raise ValueError("follow=True follows one recording; give one folder, TIFF or "
                             "Zarr array (run one job per recording)")
        return _batch_follow(video, params, store=store, overwrite=overwrite,
                             do_not_return=do_not_return, client=client, progress=progress,
                             table=table, storage_options=storage_options,
                             open_options=open_options, idle=idle, **correct)
    if idle is not None:
        raise TypeError("idle= is for follow=True (seconds without a new frame)")
    if many is None:
        return _batch_one(video, params, store=store, overwrite=overwrite,
                          do_not_return=do_not_return, client=client, progress=progress,
                          table=table, storage_options=storage_options,
                          open_options=open_options, **correct)
    return _batch_many(many, params, store=store, overwrite=overwrite,
                       do_not_return=do_not_return, client=client, progress=progress,
                       table=table, storage_options=storage_options,
                       open_options=open_options, **correct)


def _refuse_mixed_layout(st, many):
    """One video's result and a many-video job's per-video tables never share a table:
    readers (``daskloc info``, ``read_features``, plain ``pandas.read_parquet``) would
    mix them. Raises ValueError naming what the store holds and what to do instead."""
    where = st.url if hasattr(st, "url") else st.path
    base = f"table {st.table!r} of {where}" if st.table else str(where)
    try:
        holds = st.exists()
    except MetadataError:  # a result with damaged metadata: the job's checks explain it
        holds = True
    if many:
        if holds:
            raise ValueError(
                f"{base} holds the features of one video; a job of several videos writes "
                "one table per video beside it, which readers would mix with it: write "
                "the videos to another store (or, from Python, give batch a table=... "
                "of their own)"
            )
        return
    if holds:
        return
    try:
        tables = st.list_tables()
    except NotImplementedError:  # a plugin backend that cannot list: nothing to compare
        return
    prefix = (st.table + "/" if st.table else "")
    videos = [t for t in tables if t.startswith(prefix + "video=")]
    if videos:
        shown = ", ".join(t[len(prefix):] for t in videos[:5]) + (
            ", ..." if len(videos) > 5 else "")
        raise ValueError(
            f"{base} holds the tables of a job of several videos ({shown}); one video "
            "written there would lie beside them and readers would mix them: give the "
            "video in a list with the others (each keeps its own table), or write it to "
            "another store (or, from Python, give batch a table=... of its own)"
        )


def _batch_one(video, params, *, store, overwrite, do_not_return, client, progress, table,
               storage_options, open_options, asked, mask=None, background=None,
               on_error="raise", engine="numba"):
    plan = _Plan(video, open_options)
    plan.fit(*asked)  # per-axis parameters for another number of axes: fail first
    correction = _correction(plan, mask, background)
    st = open_store(store, "a", table=table, storage_options=storage_options)
    _refuse_mixed_layout(st, many=False)
    job = _Job(plan, st, params, correction=correction, on_error=on_error, engine=engine)
    with _writing([job], overwrite):
        client = _cluster_or_threads([job], client)
        _apply_correction(job, client)
        _execute([job], params, client, progress, fail_fast=True)
    if job.error is not None:
        raise job.error
    if do_not_return:
        return None
    return _from_store(st)


def _batch_follow(video, params, *, store, overwrite, do_not_return, client, progress, table,
                  storage_options, open_options, asked, idle, mask=None, background=None,
                  on_error="raise", engine="numba"):
    from daskloc.pipeline._follow import FOLLOW_IDLE, batch_follow

    if isinstance(background, str):
        raise ValueError(
            f"background={background!r} is computed over the whole video, and a followed "
            "recording is not whole yet: give a background array (e.g. the median of "
            "frames recorded before), or locate the finished recording without follow")
    if idle is None:
        idle = FOLLOW_IDLE
    if isinstance(idle, bool) or not isinstance(idle, (int, float)) or not idle > 0:
        raise ValueError(f"idle must be a positive number of seconds, got {idle!r}")
    st = open_store(store, "a", table=table, storage_options=storage_options)
    _refuse_mixed_layout(st, many=False)

    def correction_of(plan):
        plan.fit(*asked)  # per-axis parameters for another number of axes: fail first
        return _correction(plan, mask, background)

    batch_follow(video, params, store=st, overwrite=overwrite, client=client,
                 progress=progress, open_options=open_options, correction_of=correction_of,
                 idle=float(idle), on_error=on_error, engine=engine)
    if do_not_return:
        return None
    return _from_store(st)


def _batch_many(many, params, *, store, overwrite, do_not_return, client, progress, table,
                storage_options, open_options, asked, mask=None, background=None,
                on_error="raise", engine="numba"):

    if isinstance(store, FeatureStore):
        raise TypeError(
            f"several videos go to one table each: give the store's location (a path or "
            f"URL, with storage_options), not the store object {store!r}"
        )
    check_table_name(table)
    _refuse_mixed_layout(open_store(store, "a", table=table, storage_options=storage_options),
                         many=True)
    failed, sources = {}, {}
    jobs = []
    for name, item in many:
        try:
            plan = _Plan(item, open_options)
            plan.fit(*asked)  # per-axis parameters for another number of axes
            correction = _correction(plan, mask, background)  # e.g. a mask of another shape
        except Exception as exc:  # noqa: BLE001 - this video cannot be read: it fails alone
            failed[name] = exc
            sources[name] = _describe_source(item)
            continue
        st = open_store(store, "a", table=video_table(name, table),
                        storage_options=storage_options)
        jobs.append(_Job(plan, st, params, name=name, correction=correction,
                         on_error=on_error, engine=engine))
    with _writing(jobs, overwrite):
        client = _cluster_or_threads(jobs, client)
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


def _store_argument(store, output):
    """``store=``, or trackpy's name for it, ``output=`` (one of the two)."""
    if store is not None and output is not None:
        raise TypeError("give store= or output= (trackpy's name for it), not both")
    if store is None and output is None:
        raise TypeError("batch needs a store to write to: store='features.parquet' "
                        "(trackpy's output= works too)")
    return output if store is None else store


def check_batch(video, diameter, *, store=None, output=None, overwrite=False, table=None,
                storage_options=None, open_options=None, mask=None, background=None,
                on_error="raise", **params):
    """Check what :func:`batch` would refuse, without starting or writing anything.

    For callers that start a cluster only when the job can run (the CLI): the
    parameters, the video (one), the mask and background, and the store's metadata
    (another job's, or damaged). Reading only the metadata, it costs one read however
    many chunks the store holds; :func:`batch` checks all of this again under the
    store's lease, and each stored chunk's identity too.

    Parameters
    ----------
    video, diameter, store, output, overwrite, table, storage_options, open_options, mask, \
background, on_error, **params
        As for :func:`batch`; ``video`` is one video.

    Returns
    -------
    None

    Raises
    ------
    ValueError, TypeError
        What :func:`batch` raises for these arguments before computing.
    daskloc.stores.StoreMismatchError
        The store holds another job and ``overwrite`` is False (the message lists what
        differs, one field per line).
    daskloc.stores.MetadataError
        The store's metadata is damaged and ``overwrite`` is False.
    """
    store = _store_argument(store, output)
    asked, options = split_options(params)
    params = normalize_params(diameter, **asked)
    check_background_name(background)
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    plan = _Plan(video, open_options)
    plan.fit(diameter, asked)
    correction = _correction(plan, mask, background)
    st = open_store(store, "a", table=table,
                    storage_options=storage_options)
    _refuse_mixed_layout(st, many=False)
    job = _Job(plan, st, params, correction=correction, on_error=on_error, **options)
    job.check(overwrite)  # the metadata only: batch checks each chunk's identity itself
