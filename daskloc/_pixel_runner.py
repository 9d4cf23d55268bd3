"""``daskloc pixel-stats``: per-pixel statistics on a Dask cluster, written to Zarr."""

from __future__ import annotations

import os
import shutil
import time
import uuid

import numpy as np

#: Pixels listed by name in the summary; beyond that only their number is given.
LIST_PIXELS = 20


def _is_stats_store(path):
    """True if ``path`` is a Zarr store written by pixel-stats (safe to overwrite)."""
    import xarray as xr

    try:
        with xr.open_zarr(path) as ds:
            return {"mean", "var", "min", "max"} <= set(ds.data_vars) and "n_frames" in ds.attrs
    except Exception:  # noqa: BLE001 - not Zarr, or not ours
        return False


def _check_out(out, overwrite):
    if "://" in out or not os.path.exists(out):
        return
    if not overwrite:
        raise FileExistsError(
            f"{out} already exists; pass --overwrite to replace it, or choose another --out"
        )
    if not _is_stats_store(out) and not (os.path.isdir(out) and not os.listdir(out)):
        raise ValueError(
            f"{out} exists and is not a pixel-stats Zarr store: refusing to replace it; "
            "choose another --out"
        )


def _write(ds, out, overwrite):
    """Write the Dataset to Zarr; locally under a temporary name renamed when complete."""
    import warnings

    with warnings.catch_warnings():
        # consolidated metadata (what xarray.open_zarr looks for first) is not in the
        # Zarr v3 specification yet: zarr warns, xarray and zarr-python read it fine
        warnings.filterwarnings("ignore", message="Consolidated metadata")
        if "://" in out:
            ds.to_zarr(out, mode="w" if overwrite else "w-", consolidated=True)
            return
        parent = os.path.dirname(os.path.abspath(out))
        tmp = os.path.join(parent, f".{os.path.basename(out)}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            ds.to_zarr(tmp, mode="w-", consolidated=True)
            if os.path.exists(out):
                shutil.rmtree(out) if os.path.isdir(out) else os.remove(out)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)


def with_defects(stats, *, hot_threshold):
    """``stats`` plus boolean variables ``stuck`` and ``hot`` (y, x) and their settings.

    For the statistics of z-stacks the variables are (z, y, x), one flag per voxel.

    Parameters
    ----------
    stats : xarray.Dataset
        From :func:`daskloc.pixel_stats`.
    hot_threshold : float
        ``threshold`` of :func:`daskloc.hot_pixels`.

    Returns
    -------
    (xarray.Dataset, pandas.DataFrame, pandas.DataFrame)
        The Dataset, the stuck pixels and the hot pixels.
    """
    from daskloc.pixels import HOT_MAX_CLUSTER, HOT_SIZE, hot_pixels, stuck_pixels

    stuck = stuck_pixels(stats)
    hot = hot_pixels(stats, threshold=hot_threshold)
    ds = stats.copy()
    space = ("z", "y", "x") if "z" in ds["mean"].dims else ("y", "x")
    shape = tuple(ds.sizes[d] for d in space)
    for name, table, text in (
        ("stuck", stuck, "pixel never changes (min == max)"),
        ("hot", hot, "mean far above the neighbourhood median (see daskloc.hot_pixels)"),
    ):
        flag = np.zeros(shape, dtype=bool)
        flag[tuple(table[d].to_numpy() for d in space)] = True
        ds[name] = (space, flag)
        ds[name].attrs["long_name"] = text
    ds.attrs.update(hot_threshold=float(hot_threshold), hot_size=HOT_SIZE,
                    hot_max_cluster=HOT_MAX_CLUSTER)
    return ds, stuck, hot


def run_pixel_stats(source, *, out, chunk_frames, channel, frames, workers, overwrite,
                    hot_threshold, cluster="local", cluster_config=None, quiet=False,
                    dashboard_address=None, level=None):
    """Open the video, compute its pixel statistics on Dask, write them to ``out``.

    ``level`` is the resolution level of a multiscale image (None: the source's
    default, full resolution).

    ``cluster``, ``workers``, ``cluster_config`` and ``dashboard_address`` go to
    :func:`daskloc.cluster.make_client` (the dashboard listens on 127.0.0.1 unless
    ``dashboard_address`` says otherwise).

    Returns
    -------
    ds : xarray.Dataset
        What was written (statistics plus ``stuck`` and ``hot``).
    stuck, hot : pandas.DataFrame
        :func:`daskloc.stuck_pixels` and :func:`daskloc.hot_pixels`.
    seconds : float
        Wall time of the computation.
    """
    from rich.console import Console

    from daskloc import __version__
    from daskloc._runner import dashboard_text
    from daskloc.cluster import make_client
    from daskloc.pixels import pixel_stats
    from daskloc.video import open_video

    console = Console(stderr=True, quiet=quiet)
    _check_out(out, overwrite)  # before any computing
    video = open_video(source, chunks=chunk_frames, channel=channel, frames=frames,
                       **({} if level is None else {"level": level}))
    console.print(
        f"video: {video.attrs.get('source', source)} -- {video.sizes['frame']} frames of "
        f"{video.sizes['y']}x{video.sizes['x']} {video.dtype}, {len(video.chunks[0])} chunks "
        f"of <= {max(video.chunks[0], default=0)} frames"
    )
    start = time.perf_counter()
    with make_client(cluster, workers=workers, config=cluster_config,
                     dashboard_address=dashboard_address) as client:
        console.print(dashboard_text(client, cluster), markup=False, soft_wrap=True)
        stats = pixel_stats(video, client=client)
    seconds = time.perf_counter() - start
    ds, stuck, hot = with_defects(stats, hot_threshold=hot_threshold)
    if channel is not None:
        ds.attrs["channel"] = channel
    ds.attrs["daskloc_version"] = __version__
    _write(ds, out, overwrite)
    return ds, stuck, hot, seconds


def _pixel_list(table):
    shown = ", ".join(f"({y}, {x})" for y, x in zip(table["y"][:LIST_PIXELS],
                                                     table["x"][:LIST_PIXELS]))
    more = len(table) - LIST_PIXELS
    return shown + (f", ... and {more} more" if more > 0 else "")


def summary_text(ds, stuck, hot, out, seconds):
    """The lines ``daskloc pixel-stats`` prints: frames, ranges, stuck and hot pixels."""
    mean, std = ds["mean"].values, ds["std"].values
    a = ds.attrs
    lines = [
        f"{a['n_frames']} frames ({a['first_frame']}..{a['last_frame']}) of "
        f"{ds.sizes['y']}x{ds.sizes['x']} pixels, {a['source']}",
        f"mean {np.nanmin(mean):.6g}..{np.nanmax(mean):.6g} (image average "
        f"{np.nanmean(mean):.6g}), std {np.nanmin(std):.6g}..{np.nanmax(std):.6g} "
        f"(median {np.nanmedian(std):.6g}), population (ddof=0)",
        f"stuck pixels: {len(stuck)}" + (f" (y, x): {_pixel_list(stuck)}" if len(stuck) else ""),
        f"hot pixels: {len(hot)} (threshold {a['hot_threshold']:g} sigma)"
        + (f" (y, x): {_pixel_list(hot)}" if len(hot) else ""),
        f"{seconds:.1f} s -> {out}",
    ]
    return "\n".join(lines)
