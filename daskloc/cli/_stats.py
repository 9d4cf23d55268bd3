"""``daskloc pixel-stats``: per-pixel statistics of a video, stuck and hot pixels.
"""

from __future__ import annotations

import click

from daskloc.cli._console import expected_errors, fail
from daskloc.cli._options import (
    CHANNEL_OPTION,
    CHUNK_FRAMES_OPTION,
    CLUSTER_OPTION,
    DASHBOARD_OPTION,
    LEVEL_OPTION,
    _check_dashboard_cluster,
    one_position,
    parse_channel,
    parse_frames,
)


@click.command("pixel-stats")
@click.argument("video")
@LEVEL_OPTION
@click.option("--position", default=None,
              help="Of a multi-position file (OME-TIFF series, CZI scenes): the position, "
                   "by index or name.")
@click.option("--out", "-o", required=True, help="Zarr store to write, e.g. stats.zarr.")
@CHANNEL_OPTION
@click.option("--frames", default=None,
              help="Frames to use: START:STOP[:STEP] or a list 1,5,9 [all].")
@CHUNK_FRAMES_OPTION
@click.option("--hot-threshold", type=float, default=None,
              help="Robust sigmas above the neighbourhood median for a hot pixel [8].")
@CLUSTER_OPTION
@click.option("--cluster-config", type=click.Path(dir_okay=False), default=None,
              help="Dask config YAML for the cluster, merged over ~/.config/dask for this run.")
@click.option("--workers", type=int, default=None, help="Local worker processes [one per core].")
@DASHBOARD_OPTION
@click.option("--overwrite", is_flag=True, help="Replace --out if it is a pixel-stats store.")
def pixel_stats(video, level, position, out, channel, frames, chunk_frames, hot_threshold, cluster,
                cluster_config, workers, dashboard_address, overwrite):
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
    if position is not None:
        video = one_position([video], position)
    try:
        ds, stuck, hot, seconds = run_pixel_stats(
            video, out=out, chunk_frames=chunk_frames, channel=parse_channel(channel),
            frames=parse_frames(frames), workers=workers, cluster=cluster,
            cluster_config=cluster_config, overwrite=overwrite,
            dashboard_address=dashboard_address, level=level,
            hot_threshold=HOT_THRESHOLD if hot_threshold is None else hot_threshold,
        )
    except click.ClickException:
        raise
    except expected_errors() as exc:
        fail(exc)
    click.echo(stats_summary(ds, stuck, hot, out, seconds))
