"""Console runs of a batch (progress bar, dashboard link), shared by the CLI and the demo."""

from __future__ import annotations

import contextlib
import threading
import time


class _Progress:
    """A rich progress bar over chunks, fed by the progress callback of batch (or link)."""

    def __init__(self, console, label="locate", what="features"):
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn(f"[bold]{label}[/]"), BarColumn(), MofNCompleteColumn(),
            TextColumn("chunks"), TextColumn("{task.fields[features]:,} " + what),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False,
        )
        self.task = None
        self.label = label

    def __call__(self, done, total, n_features):
        if self.task is None:
            if done:  # the first call counts the chunks of an earlier run
                self.bar.console.print(f"resuming: {done} of {total} chunks already done, "
                                       f"{n_features:,} features")
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, completed=done,
                                          features=n_features)
        self.bar.update(self.task, completed=done, total=total, features=n_features)

    def stop(self):
        if self.task is not None:
            self.bar.stop()


class _StartingClient:
    """:func:`daskloc.cluster.make_client` run in a thread, started at once: the cluster
    comes up (worker processes spawned and importing) while this process goes on importing
    the pipeline and opening the videos. On two cores this saves about 1.5 s of a job's
    start (measured on ``benchmarks/bench_end_to_end.py``).

    ``get()`` waits for the client (or raises what ``make_client`` raised); ``discard()``
    waits for it and closes it, for a run that fails before using it. Dask's configuration
    is global: a ``--cluster-config`` file applies, for the seconds ``make_client`` takes,
    to this thread too.
    """

    def __init__(self, make_client, cluster, **kwargs):
        self._outcome = {}
        self._thread = threading.Thread(target=self._run, args=(make_client, cluster, kwargs),
                                        name="daskloc-cluster-start", daemon=True)
        self._thread.start()

    def _run(self, make_client, cluster, kwargs):
        try:
            self._outcome["client"] = make_client(cluster, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again by get()
            self._outcome["error"] = exc

    def get(self):
        self._thread.join()
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["client"]

    def discard(self):
        self._thread.join()
        client = self._outcome.pop("client", None)
        if client is not None:
            client.close()


def dashboard_text(client, cluster):
    """The console line naming the Dask cluster and its dashboard link.

    Parameters
    ----------
    client : distributed.Client
    cluster : str
        What :func:`daskloc.cluster.make_client` was given (``"local"``, ``"slurm"``,
        ``"tcp://..."``).

    Returns
    -------
    str
        ``dask: local cluster, N workers; dashboard http://127.0.0.1:8787/status``, and a
        second line warning that the dashboard has no login when it listens on more than
        loopback (``--dashboard-address 0.0.0.0:8787``).
    """
    from daskloc.cluster import DASHBOARD_WARNING, dashboard_bound, dashboard_is_public

    workers = client.scheduler_info().get("workers", {})
    if "://" in cluster:
        where = f"scheduler {cluster}"
    else:
        where = f"{cluster} cluster, {len(workers)} workers"
    text = f"dask: {where}; dashboard {client.dashboard_link}"
    bound = dashboard_bound(client)
    if dashboard_is_public(bound):
        listening = ", ".join(f"{host}:{port}" for host, port in bound)
        port = bound[0][1]
        text += (f"\nwarning: the dashboard listens on {listening}, beyond this machine: "
                 f"{DASHBOARD_WARNING}. daskloc's default keeps it on 127.0.0.1; "
                 f"reach it from elsewhere with an SSH tunnel (ssh -L {port}:localhost:{port} "
                 "THIS-HOST)")
    return text


def _refuse_colour(video, source):
    """Refuse a colour video without ``--channel``, in the CLI's words."""
    if "channel" in video.dims:
        raise ValueError(
            f"{video.attrs.get('source', source)} is a colour video "
            f"({video.sizes['channel']} channels): pick one with --channel 0 (or 1, 2), "
            "or convert to grey with --channel grey"
        )


def run_batch(source, *, out, diameter, chunk_frames, channel, frames, workers, overwrite, params,
              cluster="local", cluster_config=None, quiet=False, mask=None, background=None,
              dashboard_address=None, on_error="raise", level=None):
    """Open the video(s), connect to Dask, stream to the store with a progress bar.

    ``source`` is one video (what :func:`daskloc.open_video` takes) or a list of
    videos (see :func:`daskloc.pipeline.many_videos`); ``chunk_frames``, ``channel``,
    ``frames`` and ``level`` (of a multiscale image; None: the source's default) apply
    to each. ``mask`` and ``background`` go to
    :func:`daskloc.batch`, as ``on_error`` does. ``cluster``, ``workers``, ``cluster_config`` and
    ``dashboard_address`` go to :func:`daskloc.cluster.make_client` (the dashboard
    listens on 127.0.0.1 unless ``dashboard_address`` says otherwise).

    Returns
    -------
    info : dict
        :func:`daskloc.stores.store_info` of the finished store.
    seconds : float
        Wall time from connecting to Dask to the last chunk written.

    Raises
    ------
    daskloc.pipeline.BatchError
        Some of several videos failed (the others completed); its ``summary``
        attribute holds :func:`summary_text` of the videos that completed ("" if none).
    """
    import dask
    from rich.console import Console

    from daskloc.cluster import default_workers, make_client
    from daskloc.locate import normalize_params
    from daskloc.pipeline._videos import many_videos
    from daskloc.video import open_video

    console = Console(stderr=True, quiet=quiet)
    normalize_params(diameter, **params)  # bad parameters fail before anything starts
    many = many_videos(source)
    levels = {} if level is None else {"level": level}
    starting = None
    if many is None:
        from daskloc.pipeline import check_batch

        video = open_video(source, chunks=chunk_frames, channel=channel, frames=frames,
                           **levels)
        _refuse_colour(video, source)
        n_frames = video.sizes["frame"]
        console.print(
            f"video: {video.attrs.get('source', source)} -- {n_frames} "
            + ("volumes of {z}x{y}x{x}" if "z" in video.dims else "frames of {y}x{x}")
            .format(**video.sizes) + f" {video.dtype}, "
            f"{len(video.chunks[0])} chunks of "
            f"<= {max(video.chunks[0], default=0)} frames"
        )
        shape = video.attrs.get("original_shape")
        if channel is not None and shape is not None and len(shape) == 3:
            console.print(f"note: the video is greyscale; --channel {channel} changes nothing")
        target, open_options = video, None
        # what batch would refuse (another job in the store, damaged metadata): now,
        # before any cluster starts
        check_batch(video, diameter, store=out, overwrite=overwrite, mask=mask,
                    background=background, on_error=on_error, **params)
    else:
        console.print(f"videos: {len(many)}, chunks: {chunk_frames} frames")
        for name, path in many:
            console.print(f"  {name}: {path}")
        if channel is None:
            # The videos of one job mostly come from one camera: a colour first video
            # without --channel is refused before any cluster starts (the others are
            # not all probed twice; a video that cannot be opened fails alone, later).
            try:
                first = open_video(many[0][1], chunks=chunk_frames, frames=frames, **levels)
            except Exception:  # noqa: BLE001 - batch reports it, for this video alone
                first = None
            if first is not None:
                _refuse_colour(first, many[0][1])
        target = dict(many)
        open_options = {"chunks": chunk_frames, "channel": channel, "frames": frames,
                        **levels}
        # Several videos always take a cluster, and batch checks each video's job as
        # it opens it: the cluster starts now, while the pipeline is imported and the
        # videos opened (a refused job then closes it).
        start = time.perf_counter()
        starting = _StartingClient(make_client, cluster, workers=workers,
                                   config=cluster_config,
                                   dashboard_address=dashboard_address)
    try:
        from daskloc.pipeline import LOCAL_THREADS, BatchError, batch
        from daskloc.stores import store_info
    except BaseException:
        if starting is not None:
            starting.discard()
        raise
    if starting is None:
        start = time.perf_counter()
    small = None
    if cluster == "local" and workers is None and many is None and dashboard_address is None:
        n_chunks = len(video.chunks[0])
        if n_chunks <= default_workers():  # each worker would get one chunk at most
            small = max(n_chunks, 1)
    if small is not None:
        # No cluster at all: starting one (and its dashboard) costs more than the job.
        connect = contextlib.nullcontext(LOCAL_THREADS)
        console.print(f"dask: {small} thread{'s' if small != 1 else ''} in this process, no "
                      "cluster (a job this small does not pay for starting one; pass "
                      "--workers N for a local cluster with its dashboard)",
                      markup=False, soft_wrap=True)
    elif starting is not None:
        connect = starting.get()
    else:
        connect = make_client(cluster, workers=workers, config=cluster_config,
                              dashboard_address=dashboard_address)
    threads = dask.config.set(num_workers=small) if small else contextlib.nullcontext()
    with connect as client, threads:
        if small is None:
            console.print(dashboard_text(client, cluster), markup=False, soft_wrap=True)
        progress = _Progress(console)
        corrections = []
        if mask is not None:
            corrections.append("bad pixels filled (mask)")
        if background is not None:
            kind = background if isinstance(background, str) else "array"
            corrections.append(f"background ({kind}) subtracted")
        if corrections:
            console.print("correction: " + ", ".join(corrections))
        try:
            batch(target, diameter, store=out, overwrite=overwrite, do_not_return=True,
                  client=client, progress=progress, open_options=open_options, mask=mask,
                  background=background, on_error=on_error, **params)
        except BatchError as exc:
            exc.summary = _completed_summary(out, exc, time.perf_counter() - start)
            raise
        finally:
            progress.stop()
    seconds = time.perf_counter() - start
    return store_info(out), seconds


def run_follow(source, *, out, diameter, chunk_frames, channel, frames, workers, overwrite,
               params, cluster="local", cluster_config=None, quiet=False, mask=None,
               background=None, dashboard_address=None, on_error="raise", idle=None):
    """``daskloc locate --follow``: follow a recording being written into ``out``.

    As :func:`run_batch` for one video, with :func:`daskloc.batch`'s ``follow=True``
    and ``idle``. A local cluster of ``workers`` starts unless ``cluster`` names
    another (a followed job runs for as long as the recording).

    Returns
    -------
    info : dict
        :func:`daskloc.stores.store_info` of the store.
    seconds : float
        Wall time from connecting to Dask to the last chunk written.
    """
    import warnings

    from rich.console import Console

    from daskloc.cluster import make_client
    from daskloc.locate import normalize_params
    from daskloc.pipeline import batch
    from daskloc.pipeline._follow import follow_frames_limit
    from daskloc.stores import store_info
    from daskloc.video._follow import follow_video

    console = Console(stderr=True, quiet=quiet)
    normalize_params(diameter, **params)  # bad parameters fail before anything starts
    limit = follow_frames_limit(frames)
    grow = follow_video(source)
    console.print(f"following: {grow.path} ({grow.reader}); it ends at the writer's end "
                  f"marker, {idle or 60:g} s without a new frame"
                  + (f", {limit} frames" if limit else "") + " or Ctrl-C",
                  markup=False, soft_wrap=True)
    start = time.perf_counter()
    with make_client(cluster, workers=workers, config=cluster_config,
                     dashboard_address=dashboard_address) as client:
        console.print(dashboard_text(client, cluster), markup=False, soft_wrap=True)
        progress = _Progress(console, label="follow")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                batch(source, diameter, store=out, overwrite=overwrite, do_not_return=True,
                      client=client, progress=progress, mask=mask, background=background,
                      on_error=on_error, follow=True, idle=idle,
                      open_options={"chunks": chunk_frames, "channel": channel,
                                    "frames": limit}, **params)
            finally:
                progress.stop()
        for w in caught:
            console.print(str(w.message), markup=False, soft_wrap=True)
    seconds = time.perf_counter() - start
    info = store_info(out)
    if info.get("ended"):
        console.print(f"recording ended: {info['ended']}", markup=False, soft_wrap=True)
    return info, seconds


def summary_text(info, seconds):
    """The closing lines of ``daskloc locate``: frames, features, time and store.

    Parameters
    ----------
    info : dict
        :func:`daskloc.stores.store_info` of the store.
    seconds : float

    Returns
    -------
    str
        One line for one video; for several, one line per video then the totals.
    """
    skipped = info.get("skipped_frames")
    n_skipped = (sum(len(v) for v in skipped.values()) if isinstance(skipped, dict)
                 else len(skipped or []))
    note = (f" ({n_skipped} could not be decoded and were skipped: daskloc info lists them)"
            if n_skipped else "")
    total = (f"{info['frames_complete']} frames{note}, {info['n_features']} features, "
             f"{seconds:.1f} s -> {info['path']}")
    videos = info.get("videos")
    if videos is None:
        return total
    lines = [
        f"  {name}: {v['frames_complete']} frames, {v['n_features']} features"
        + ("" if v["complete"] else f" (incomplete: {v['chunks_complete']} of "
           f"{v['chunks_total']} chunks)")
        for name, v in videos.items()
    ]
    return "\n".join(lines + [f"{len(videos)} videos, {total}"])


def _completed_summary(out, exc, seconds):
    """summary_text of the videos of a failed many-video batch that completed."""
    from daskloc.stores import store_info

    try:
        info = store_info(out)
    except Exception:  # noqa: BLE001 - nothing readable was written (every video failed)
        return ""
    videos = {n: v for n, v in (info.get("videos") or {}).items() if n in exc.completed}
    if not videos:
        return ""
    info = dict(info, videos=videos)
    info["frames_complete"] = sum(v["frames_complete"] or 0 for v in videos.values())
    info["n_features"] = sum(v["n_features"] for v in videos.values())
    return summary_text(info, seconds)
