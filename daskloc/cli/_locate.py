"""``daskloc locate``: a video (or several) to a feature store, on a cluster.
"""

from __future__ import annotations

import click

from daskloc._runner import run_batch, run_follow, summary_text
from daskloc._utils import is_glob, natural_key
from daskloc.cli._console import expected_errors, fail
from daskloc.cli._options import (
    CHANNEL_OPTION,
    CHUNK_FRAMES_OPTION,
    CLUSTER_OPTION,
    DASHBOARD_OPTION,
    LEVEL_OPTION,
    _check_dashboard_cluster,
    _with_params,
    one_position,
    parse_channel,
    parse_frames,
)


def _video_source(videos):
    """What the VIDEO arguments of ``locate`` name: one video, or several.

    One argument that is not a glob pattern is one video, as it always was. Otherwise
    each glob pattern is expanded (natural order; its files, or its folders when it
    matches no file) and the paths are classified as :func:`daskloc.batch` does: if
    all are single images (PNG, JPEG, BMP, single-page TIFF) they are ONE image
    sequence (for one pattern, the pattern itself goes to ``open_video``); if all are
    videos (movies, multi-page TIFFs, folders of images, Zarr arrays) each is its own
    video in the store, even when a pattern matched only one; a mix is an error. A
    path given twice counts once.
    """
    import glob
    import os

    from daskloc.pipeline import many_videos

    if len(videos) == 1 and not is_glob(videos[0]):
        return videos[0]
    paths, expanded = [], False
    for v in videos:
        if not is_glob(v):
            paths.append(v)
            continue
        expanded = True
        matches = sorted(glob.glob(v, recursive=True), key=natural_key)
        files = [m for m in matches if os.path.isfile(m)]
        matches = files or matches  # folders (image sequences) when no file matches
        if not matches:
            if len(videos) == 1:
                return v  # open_video says that nothing matches
            raise click.UsageError(f"no files match the pattern {v!r}")
        paths.extend(matches)
    unique = list(dict.fromkeys(os.path.normpath(p) for p in paths))
    if many_videos(unique) is None:  # single images: one image sequence, as always
        if len(videos) == 1:
            return videos[0]
        return paths if expanded else list(videos)
    return unique


def _corrections(mask_file, background):
    """``mask=`` and ``background=`` from ``--mask`` and ``--background``; daskloc.correct
    (dask.array, xarray: a second of imports) only when one is given."""
    if mask_file is None and background is None:
        return {"mask": None, "background": None}
    from daskloc.correct import read_background, read_mask

    return {"mask": read_mask(mask_file) if mask_file is not None else None,
            "background": read_background(background)}


@click.command()
@click.argument("videos", nargs=-1, required=True)
@_with_params
@CHANNEL_OPTION
@LEVEL_OPTION
@click.option("--position", default=None,
              help="Of a multi-position file (OME-TIFF series, CZI scenes), locate only this "
                   "position (index or name); without it each position is its own video.")
@click.option("--frames", default=None,
              help="Frames to process: START:STOP[:STEP] or a list 1,5,9.")
@CHUNK_FRAMES_OPTION
@click.option("--out", "-o", required=True, help="Output store, e.g. features.parquet.")
@CLUSTER_OPTION
@click.option("--cluster-config", type=click.Path(dir_okay=False), default=None,
              help="Dask config YAML for the cluster (jobqueue.slurm.*, kubernetes.*), "
                   "merged over ~/.config/dask for this run.")
@click.option("--workers", type=int, default=None,
              help="Local worker processes [one per core], or SLURM jobs / Kubernetes worker pods.")
@click.option("--scheduler", default=None,
              help="Use a running Dask scheduler, e.g. tcp://host:8786 "
              "(same as --cluster tcp://host:8786).")
@DASHBOARD_OPTION
@click.option("--overwrite", is_flag=True,
              help="Replace an existing store written with other settings.")
@click.option("--mask", "mask_file", default=None,
              help="Bad pixels to fill before locating: a .npy boolean (y, x) array (True = bad), "
                   "or a 'daskloc pixel-stats' Zarr store (its stuck and hot pixels).")
@click.option("--background", default=None,
              help="Static background to subtract before locating: mean, median (per pixel, "
                   "over the video), or a .npy (y, x) array.")
@click.option("--follow", is_flag=True,
              help="VIDEO is still being recorded (a folder of images, a multi-page TIFF or "
                   "a Zarr array): locate its frames as they are written, until the writer's "
                   "end marker, --idle seconds without a new frame, --frames N, or Ctrl-C. "
                   "Chunks of 16 frames unless --chunk-frames says otherwise.")
@click.option("--idle", type=click.FloatRange(min=0, min_open=True), default=None,
              help="With --follow: seconds without a new frame that end the recording "
                   "[60].")
@click.option("--on-error", type=click.Choice(["raise", "skip"]), default="raise",
              show_default=True,
              help="Frames that cannot be decoded (a damaged file): raise = their chunk fails "
                   "(recorded; the other chunks complete; exit status 1); skip = locate every "
                   "frame that decodes, the skipped ones listed by 'daskloc info'.")
def locate(videos, diameter, channel, level, position, frames, chunk_frames, out, cluster,
           cluster_config, workers, scheduler, dashboard_address, overwrite, mask_file,
           background, follow, idle, on_error, **params):
    """Locate features in every frame of VIDEO and stream them to --out.

    VIDEO is a movie (.mov .mp4 .avi ...), a multi-page TIFF, a glob of images
    ('frames/*.png', quoted) or several image files. A store that holds part of the
    same job is resumed: finished chunks are kept.

    Several videos in one job: give several movies, multi-page TIFFs or folders of
    images, or a quoted glob of them ('run*/*.mov'). Each becomes its own table
    video=NAME in --out (NAME: the file stem, made unique: bulk-water, bulk-water-2),
    their chunks run interleaved, and --frames/--channel/--chunk-frames apply to each.
    Single images given together (or a glob of them) stay ONE image sequence. A
    multi-position file (an OME-TIFF of several series, a CZI file of several scenes)
    is one video per position, named FILE-POSITION (--position picks one). A video
    that cannot be read fails alone: the others complete, then the failed ones are
    listed and the exit status is 1.

    --mask and --background correct every frame before locating (see
    daskloc.correct): masked pixels take the median of their unmasked 3x3
    neighbours; the background B is subtracted as frame - B + mean(B). Both are part
    of the job: resuming with others is refused (--overwrite replaces).
    """
    from daskloc.pipeline import BatchError

    if scheduler is not None:
        if cluster not in ("local", scheduler):
            raise click.UsageError("give --cluster or --scheduler, not both")
        cluster = scheduler
    if workers is not None and "://" in cluster:
        raise click.UsageError("--workers sizes a cluster daskloc starts; "
                               "a running scheduler has its own")
    _check_dashboard_cluster(dashboard_address, cluster)
    if idle is not None and not follow:
        raise click.UsageError("--idle is for --follow (seconds without a new frame)")
    if follow:
        if len(videos) != 1:
            raise click.UsageError("--follow follows one recording: give one folder, TIFF "
                                   "or Zarr array")
        for name, given in (("--position", position), ("--level", level)):
            if given is not None:
                raise click.UsageError(f"{name} does not apply to --follow")
        try:
            info, seconds = run_follow(
                videos[0], out=out, diameter=diameter, chunk_frames=chunk_frames,
                channel=parse_channel(channel), frames=parse_frames(frames), workers=workers,
                cluster=cluster, cluster_config=cluster_config, overwrite=overwrite,
                params=params, dashboard_address=dashboard_address, on_error=on_error,
                **_corrections(mask_file, background), idle=idle)
        except click.ClickException:
            raise
        except expected_errors() as exc:
            fail(exc)
        click.echo(summary_text(info, seconds))
        return
    try:
        source = (_video_source(videos) if position is None
                  else one_position(videos, position))
        info, seconds = run_batch(
            source, out=out, diameter=diameter, chunk_frames=chunk_frames,
            channel=parse_channel(channel), frames=parse_frames(frames), workers=workers,
            cluster=cluster, cluster_config=cluster_config, overwrite=overwrite, params=params,
            dashboard_address=dashboard_address, on_error=on_error, level=level,
            **_corrections(mask_file, background),
        )
    except click.ClickException:
        raise
    except BatchError as exc:  # some of several videos failed: the others are done
        if getattr(exc, "summary", None):
            click.echo(exc.summary)
        fail(exc)
    except expected_errors() as exc:
        fail(exc)
    click.echo(summary_text(info, seconds))
