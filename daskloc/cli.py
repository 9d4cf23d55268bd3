"""The ``daskloc`` command: a thin shell over the Python API. Its six commands:

    daskloc locate VIDEO... --diameter 11 --minmass 20 --invert --out features.parquet
    daskloc info features.parquet
    daskloc export features.parquet features.csv
    daskloc plot features.parquet --frame 100 --kind all --out f100.png
    daskloc pixel-stats VIDEO --out stats.zarr
    daskloc demo
"""

from __future__ import annotations

import json
import re
import sys

import click

from daskloc._runner import run_batch, summary_text
from daskloc.locate import PARAMETERS
from daskloc.pipeline import BatchError, _frames_text
from daskloc.stores.base import StoreBusyError

#: Errors a person can act on: printed as one line, exit status 1, no traceback.
#: (StoreBusyError: another writer holds the store, or a program keeps an HDF5 file open.)
EXPECTED_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                   ValueError, TypeError, IndexError, OSError, StoreBusyError)


def _fail(exc):
    message = str(exc) or exc.__class__.__name__
    if isinstance(exc, FileNotFoundError) and exc.filename and str(exc.filename) not in message:
        message = f"{message}: {exc.filename}"
    click.echo(f"daskloc: error: {message}", err=True)
    sys.exit(1)


class _Chunks(click.ParamType):
    """``--chunk-frames``: a positive int or ``auto``."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of frames; use a positive int or 'auto'",
                      param, ctx)
        if n < 1:
            self.fail(f"{n} frames per chunk; use a positive int or 'auto'", param, ctx)
        return n


CHUNKS = _Chunks()


def parse_frames(text):
    """Parse ``--frames``: ``A:B`` or ``A:B:STEP`` (a slice), ``A,B,C`` (a list) or ``N``.

    Parameters
    ----------
    text : str or None

    Returns
    -------
    slice, list of int, or None

    Raises
    ------
    click.BadParameter
        Anything else.
    """
    if text is None:
        return None
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            return slice(*parts)
        return [int(p) for p in text.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a frame range; use START:STOP (e.g. 0:480), START:STOP:STEP, or 1,5,9"
        ) from None


def parse_channel(text):
    """Parse ``--channel``: an integer or ``grey``/``gray``; None keeps the source as is."""
    if text is None:
        return None
    if text.lower() in ("grey", "gray"):
        return "grey"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a channel number (0, 1, 2) or 'grey'") from None


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

    def is_glob(v):
        return any(ch in v for ch in "*?[") and not os.path.exists(v)

    if len(videos) == 1 and not is_glob(videos[0]):
        return videos[0]
    natural = lambda p: [int(t) if t.isdigit() else t.casefold()  # noqa: E731
                         for t in re.split(r"(\d+)", p)]
    paths, expanded = [], False
    for v in videos:
        if not is_glob(v):
            paths.append(v)
            continue
        expanded = True
        matches = sorted(glob.glob(v, recursive=True), key=natural)
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


def _param_option(p):
    """The click option of one locate parameter (daskloc.locate.PARAMETERS)."""
    flag = "--" + p.name.replace("_", "-")
    if p.type is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", default=p.default,
                            show_default=p.default is True, help=p.help)
    decls = (flag, "-d") if p.name == "diameter" else (flag,)
    return click.option(*decls, type=p.type, default=p.default, required=p.required,
                        show_default=p.default is not None, help=p.help)


_PARAMS = [_param_option(p) for p in PARAMETERS]


def _dashboard_address(ctx, param, value):
    """``--dashboard-address``: checked before anything starts (HOST:PORT of this machine)."""
    if value is None:
        return None
    from daskloc.cluster import check_dashboard_address

    try:
        return check_dashboard_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


DASHBOARD_OPTION = click.option(
    "--dashboard-address", default=None, metavar="HOST:PORT", callback=_dashboard_address,
    help="Where the dashboard of the cluster daskloc starts (local, slurm) listens "
         "[127.0.0.1:8787: this machine only; a free port if 8787 is taken]. "
         "0.0.0.0:8787 or :8787 opens it to the network: the dashboard has NO LOGIN and "
         "shows everything about the job (file names, tasks, worker logs) to whoever "
         "reaches it; prefer an SSH tunnel (ssh -L 8787:localhost:8787 HOST). Not with "
         "--cluster tcp://... or kubernetes, whose schedulers serve their own.",
)


def _check_dashboard_cluster(dashboard_address, cluster):
    """--dashboard-address only for the clusters daskloc starts a scheduler of here."""
    if dashboard_address is None:
        return
    if "://" in cluster:
        raise click.UsageError(
            "--dashboard-address sets the dashboard of a cluster daskloc starts; the running "
            f"scheduler {cluster} serves its own (set it where that scheduler is started: "
            "dask scheduler --dashboard-address 127.0.0.1:8787)"
        )
    if cluster == "kubernetes":
        raise click.UsageError(
            "--dashboard-address cannot move the Kubernetes dashboard: it runs in the "
            "scheduler pod (port 8787 of its Service); reach it with kubectl port-forward"
        )


def _with_params(func):
    for option in reversed(_PARAMS):
        func = option(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="daskloc")
def main():
    """Find particles in microscopy videos (Crocker-Grier locate, as in trackpy) on Dask."""


@main.command()
@click.argument("videos", nargs=-1, required=True)
@_with_params
@click.option("--channel", default=None,
              help="Colour channel number, or 'grey'. Required for colour video.")
@click.option("--frames", default=None,
              help="Frames to process: START:STOP[:STEP] or a list 1,5,9.")
@click.option("--chunk-frames", type=CHUNKS, default="auto", show_default=True,
              help="Frames per chunk (task), or 'auto' (movies: whole keyframe groups, "
                   "<= 256 frames; else 64).")
@click.option("--out", "-o", required=True, help="Output store, e.g. features.parquet.")
@click.option("--cluster", default="local", show_default=True,
              help="Where to run: local, slurm, kubernetes, or tcp://ADDRESS of a running "
                   "scheduler.")
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
@click.option("--on-error", type=click.Choice(["raise", "skip"]), default="raise",
              show_default=True,
              help="Frames that cannot be decoded (a damaged file): raise = their chunk fails "
                   "(recorded; the other chunks complete; exit status 1); skip = locate every "
                   "frame that decodes, the skipped ones listed by 'daskloc info'.")
def locate(videos, diameter, channel, frames, chunk_frames, out, cluster, cluster_config, workers,
           scheduler, dashboard_address, overwrite, mask_file, background, on_error, **params):
    """Locate features in every frame of VIDEO and stream them to --out.

    VIDEO is a movie (.mov .mp4 .avi ...), a multi-page TIFF, a glob of images
    ('frames/*.png', quoted) or several image files. A store that holds part of the
    same job is resumed: finished chunks are kept.

    Several videos in one job: give several movies, multi-page TIFFs or folders of
    images, or a quoted glob of them ('run*/*.mov'). Each becomes its own table
    video=NAME in --out (NAME: the file stem, made unique: bulk-water, bulk-water-2),
    their chunks run interleaved, and --frames/--channel/--chunk-frames apply to each.
    Single images given together (or a glob of them) stay ONE image sequence. A video
    that cannot be read fails alone: the others complete, then the failed ones are
    listed and the exit status is 1.

    --mask and --background correct every frame before locating (see
    daskloc.correct): masked pixels take the median of their unmasked 3x3
    neighbours; the background B is subtracted as frame - B + mean(B). Both are part
    of the job: resuming with others is refused (--overwrite replaces).
    """
    from daskloc.correct import read_background, read_mask

    if scheduler is not None:
        if cluster not in ("local", scheduler):
            raise click.UsageError("give --cluster or --scheduler, not both")
        cluster = scheduler
    if workers is not None and "://" in cluster:
        raise click.UsageError("--workers sizes a cluster daskloc starts; "
                               "a running scheduler has its own")
    _check_dashboard_cluster(dashboard_address, cluster)
    try:
        info, seconds = run_batch(
            _video_source(videos), out=out, diameter=diameter, chunk_frames=chunk_frames,
            channel=parse_channel(channel), frames=parse_frames(frames), workers=workers,
            cluster=cluster, cluster_config=cluster_config, overwrite=overwrite, params=params,
            dashboard_address=dashboard_address, on_error=on_error,
            mask=read_mask(mask_file) if mask_file is not None else None,
            background=read_background(background),
        )
    except click.ClickException:
        raise
    except BatchError as exc:  # some of several videos failed: the others are done
        if getattr(exc, "summary", None):
            click.echo(exc.summary)
        _fail(exc)
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    click.echo(summary_text(info, seconds))


@main.command("pixel-stats")
@click.argument("video")
@click.option("--out", "-o", required=True, help="Zarr store to write, e.g. stats.zarr.")
@click.option("--channel", default=None,
              help="Colour channel number, or 'grey'. Required for colour video.")
@click.option("--frames", default=None,
              help="Frames to use: START:STOP[:STEP] or a list 1,5,9 [all].")
@click.option("--chunk-frames", type=CHUNKS, default="auto", show_default=True,
              help="Frames per chunk (task), or 'auto' (movies: whole keyframe groups, "
                   "<= 256 frames; else 64).")
@click.option("--hot-threshold", type=float, default=None,
              help="Robust sigmas above the neighbourhood median for a hot pixel [8].")
@click.option("--cluster", default="local", show_default=True,
              help="Where to run: local, slurm, kubernetes, or tcp://ADDRESS of a running "
                   "scheduler.")
@click.option("--cluster-config", type=click.Path(dir_okay=False), default=None,
              help="Dask config YAML for the cluster, merged over ~/.config/dask for this run.")
@click.option("--workers", type=int, default=None, help="Local worker processes [one per core].")
@DASHBOARD_OPTION
@click.option("--overwrite", is_flag=True, help="Replace --out if it is a pixel-stats store.")
def pixel_stats(video, out, channel, frames, chunk_frames, hot_threshold, cluster, cluster_config,
                workers, dashboard_address, overwrite):
    """Per-pixel mean, var, std, min, max of VIDEO over time, plus stuck and hot pixels.

    One pass over the video on a Dask cluster. Writes an xarray Dataset to --out
    (Zarr; read it with xarray.open_zarr) with float64 variables mean, var (population,
    ddof=0), std, min, max and boolean variables stuck (min == max) and hot (see
    daskloc.hot_pixels), and prints a summary. Use it as 'daskloc locate --mask OUT'.
    """
    from daskloc._pixel_runner import run_pixel_stats
    from daskloc._pixel_runner import summary_text as stats_summary
    from daskloc.pixels import HOT_THRESHOLD

    if workers is not None and "://" in cluster:
        raise click.UsageError("--workers sizes a cluster daskloc starts; "
                               "a running scheduler has its own")
    _check_dashboard_cluster(dashboard_address, cluster)
    try:
        ds, stuck, hot, seconds = run_pixel_stats(
            video, out=out, chunk_frames=chunk_frames, channel=parse_channel(channel),
            frames=parse_frames(frames), workers=workers, cluster=cluster,
            cluster_config=cluster_config, overwrite=overwrite,
            dashboard_address=dashboard_address,
            hot_threshold=HOT_THRESHOLD if hot_threshold is None else hot_threshold,
        )
    except click.ClickException:
        raise
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    click.echo(stats_summary(ds, stuck, hot, out, seconds))


@main.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def info(store, as_json):
    """Show what a feature STORE holds: progress, features, parameters, source."""
    from daskloc.stores import store_info

    try:
        summary = store_info(store)
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    state = "complete" if summary["complete"] else "incomplete (rerun the same command to resume)"
    click.echo(f"store:      {summary['path']} ({summary['backend']})")
    click.echo(f"state:      {state}")
    click.echo(f"frames:     {summary['frames_complete']} of {summary['frames_total']} done "
               f"({summary['chunks_complete']} of {summary['chunks_total']} chunks)")
    click.echo(f"features:   {summary['n_features']}")
    source = summary.get("source") or {}
    click.echo(f"source:     {source.get('path', source.get('description', '?'))}")
    params = summary.get("params") or {}
    click.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    click.echo(f"written by: daskloc {summary.get('daskloc_version')} ({summary.get('updated')})")
    for line in _warnings_of(summary):
        click.echo(line)


def _warnings_of(summary):
    """The lines of ``daskloc info`` about what a careful reader must know."""
    lines = []
    writer = summary.get("writer")
    if writer:
        state = (f"left by a writer that is gone ({writer['stale']}; the next job takes it "
                 "over)" if writer.get("stale") else "being written now")
        lines.append(f"writer:     {state}: process {writer.get('pid')} on "
                     f"{writer.get('host')}, since {writer.get('started')}, last heartbeat "
                     f"{writer.get('heartbeat')}")
    if not summary.get("verified", True):
        lines.append("note:       written by daskloc < 0.2: its chunks carry no job identity "
                     "(readable, not resumable; --overwrite locates it again)")
    if summary.get("metadata_edited"):
        lines.append("warning:    the metadata's parameters or source were changed after the "
                     "job wrote it: chunks that do not match them are not read")
    ignored = [(c, c["chunk"], c["reason"]) for c in summary.get("ignored_chunks") or []]
    if ignored:
        lines += _chunk_lines("ignored:    {} chunks in the store are not read:", ignored)
        lines.append("            (remove them, or rerun with --overwrite; plain Parquet "
                     "readers would read them)")
    failed = [(c, (c["start"], c["stop"]), c.get("error"))
              for c in summary.get("failed_chunks") or []]
    if failed:
        lines += _chunk_lines("failed:     {} chunks could not be located:", failed)
    skipped = summary.get("skipped_frames")
    if skipped:
        if isinstance(skipped, dict):
            n = sum(len(v) for v in skipped.values())
            text = "; ".join(f"{k}: {_frames_text(v)}" for k, v in skipped.items())
        else:
            n, text = len(skipped), _frames_text(skipped)
        lines.append(f"skipped:    {n} frames could not be decoded and have no features "
                     f"(on_error=skip): {text}")
    return lines


def _chunk_lines(title, items, shown=10):
    """A title line and one line per chunk: ``(entry, (start, stop), why)`` items."""
    lines = [title.format(len(items))]
    for c, (a, b), why in items[:shown]:
        where = f"video {c['video']}: " if c.get("video") else ""
        lines.append(f"            {where}frames [{a}, {b}): {why}")
    if len(items) > shown:
        lines.append(f"            ... and {len(items) - shown} more (--json lists all)")
    return lines


@main.command()
@click.argument("store")
@click.argument("out")
@click.option("--frames", default=None,
              help="Frames to export: START:STOP[:STEP] or a list 1,5,9 [all].")
@click.option("--table", default=None, help="Result set to read, in a STORE holding several.")
@click.option("--out-table", default=None, help="Result set to write, in an output store.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export(store, out, frames, table, out_table, overwrite):
    """Export the features of STORE to OUT, chosen by OUT's suffix or URL.

    \b
    features.csv     text, streamed chunk by chunk
    features.xlsx    Excel: sheet 'features' (continued on 'features_2', ... beyond
                     1,048,576 rows) and sheet 'parameters'
    features.mat     MATLAB/Octave: struct 'features' of N-by-1 columns, 'params', 'source'
    another store    .parquet, .zarr, .h5, sqlite:///f.db, postgresql+psycopg://...,
                     mysql+pymysql://... (same rows, same metadata)
    """
    from daskloc.export import export as export_features
    from daskloc.stores.base import StoreBusyError

    try:
        summary = export_features(store, out, parse_frames(frames), table=table,
                                  out_table=out_table, overwrite=overwrite)
    except (*EXPECTED_ERRORS, StoreBusyError) as exc:
        _fail(exc)
    sheets = f" (sheets {', '.join(summary['sheets'])})" if summary.get("sheets") else ""
    frames_text = f" of frames {summary['frames']}" if summary["frames"] else ""
    click.echo(f"{summary['n_features']} features{frames_text} -> {summary['out']} "
               f"({summary['format']}){sheets}")


@main.command()
@click.argument("store")
@click.option("--video", default=None,
              help="The video the features came from [the path recorded in STORE].")
@click.option("--frame", type=int, default=None,
              help="Frame number to plot [the first located frame].")
@click.option("--out", "-o", required=True,
              help="PNG to write; with --kind all, the stem of four PNGs.")
@click.option("--kind", type=click.Choice(["annotate", "mass", "size", "subpx", "all"]),
              default="annotate", show_default=True, help="Which picture.")
@click.option("--channel", default=None,
              help="Colour channel of the video, or 'grey' [as recorded in STORE].")
@click.option("--table", default=None,
              help="Result set to read, in a STORE holding several (video=NAME).")
@click.option("--dpi", type=int, default=100, show_default=True,
              help="Pixels per inch of the PNGs.")
def plot(store, video, frame, out, kind, channel, table, dpi):
    """Plot one frame's features from STORE to PNG: circles on the frame, mass, size, sub-pixel.

    \b
    annotate  the frame with a circle (the locate diameter) on every feature
    mass      histogram of mass (where to put --minmass)
    size      size against mass (trackpy's mass_size)
    subpx     histograms of x % 1 and y % 1: flat if --diameter is large enough
    all       the four, as OUT's stem + -annotate, -mass, -size, -subpx (e.g. f-mass.png)
    """
    from daskloc.plot import save_plots

    try:
        written = save_plots(store, out, frame=frame, video=video, kind=kind,
                             channel=parse_channel(channel), table=table, dpi=dpi)
    except EXPECTED_ERRORS as exc:
        _fail(exc)
    for path in written.values():
        click.echo(str(path))


@main.command()
@click.option("--out", "-o", default="daskloc-demo", show_default=True,
              type=click.Path(file_okay=False),
              help="Folder for the synthetic video and its features.")
@click.option("--frames", "n_frames", type=int, default=200, show_default=True,
              help="Frames to generate.")
@click.option("--particles", type=int, default=40, show_default=True,
              help="Particles in the video.")
@click.option("--workers", type=int, default=None, help="Local worker processes [one per core].")
def demo(out, n_frames, particles, workers):
    """Generate a synthetic video with known particles, locate them, report accuracy."""
    from daskloc.demo import run_demo

    try:
        run_demo(out, n_frames=n_frames, n_particles=particles, workers=workers)
    except EXPECTED_ERRORS as exc:
        _fail(exc)


if __name__ == "__main__":  # pragma: no cover
    main()
