"""Per-pixel statistics of a video, and the stuck and hot pixels they reveal.

:func:`pixel_stats` reads a video once, chunk by chunk, and returns the mean, variance,
standard deviation, minimum and maximum of every pixel (every voxel of a video of
z-stacks) over time. :func:`stuck_pixels`
lists the pixels that never change; :func:`hot_pixels` the pixels much brighter on
average than their neighbourhood. Both results can be given to
:func:`daskloc.locate` / :func:`daskloc.batch` as ``mask=`` (see
:mod:`daskloc.correct`).

Pure Dask, numpy, scipy and xarray: no file format is read or written here (save the
statistics with ``stats.to_zarr(path)``, read them back with ``xarray.open_zarr``).
"""

from __future__ import annotations

import os

import dask
import numpy as np
import pandas as pd
from dask.delayed import delayed

from daskloc.video import frame_chunked, grey_video

__all__ = ["hot_pixels", "pixel_stats", "stuck_pixels"]

#: Frames converted to float64 at a time inside a chunk task (bounds its memory to a
#: few such slabs, whatever the chunk length).
SLAB_FRAMES = 16

#: Default of :func:`hot_pixels`: a pixel is hot when its mean exceeds the median of its
#: neighbourhood by more than this many robust standard deviations.
HOT_THRESHOLD = 8.0
#: Default side of :func:`hot_pixels`' square neighbourhood, pixels (odd).
HOT_SIZE = 5
#: Default of :func:`hot_pixels`: the largest cluster of adjacent outstanding pixels
#: still counted as defective pixels (larger ones are features: particles, dust).
HOT_MAX_CLUSTER = 2

#: 1 / Phi^-1(3/4): turns a median absolute deviation into a standard deviation for
#: normally distributed data (Rousseeuw & Croux 1993; Huber 1981).
MAD_TO_SIGMA = 1.4826


# ---------------------------------------------------------------------------------------
# Partial statistics and their pairwise combination (Chan, Golub & LeVeque 1979)
# ---------------------------------------------------------------------------------------


def _slab_partial(block):
    """(n, mean, M2, min, max) of a stack of frames, two-pass in float64."""
    x = np.asarray(block, dtype=np.float64)
    n = x.shape[0]
    mean = x.mean(axis=0)
    dev = x - mean
    np.square(dev, out=dev)
    m2 = dev.sum(axis=0)
    return {
        "n": n,
        "mean": mean,
        "m2": m2,
        "min": np.asarray(block.min(axis=0), dtype=np.float64),
        "max": np.asarray(block.max(axis=0), dtype=np.float64),
    }


def _combine(a, b):
    """Merge two partials: Chan, Golub & LeVeque's pairwise update.

    For sets A and B with counts n_A, n_B, means m_A, m_B and sums of squared
    deviations M2_A, M2_B, the union has ``n = n_A + n_B``,
    ``mean = m_A + delta n_B / n`` and ``M2 = M2_A + M2_B + delta**2 n_A n_B / n``
    with ``delta = m_B - m_A``: only differences of means are squared, never raw
    values, so nothing cancels catastrophically when the mean is large.
    """
    if a is None:
        return b
    if b is None:
        return a
    na, nb = a["n"], b["n"]
    n = na + nb
    delta = b["mean"] - a["mean"]
    return {
        "n": n,
        "mean": a["mean"] + delta * (nb / n),
        "m2": a["m2"] + b["m2"] + np.square(delta) * (na * nb / n),
        "min": np.minimum(a["min"], b["min"]),
        "max": np.maximum(a["max"], b["max"]),
    }


def _chunk_partial(block):
    """The partial statistics of one frame chunk, in slabs of :data:`SLAB_FRAMES`."""
    block = np.asarray(block)
    out = None
    for start in range(0, block.shape[0], SLAB_FRAMES):
        out = _combine(out, _slab_partial(block[start : start + SLAB_FRAMES]))
    return out


def _tree(items, combine):
    """Reduce a list of delayed partials pairwise (a balanced binary tree)."""
    items = list(items)
    while len(items) > 1:
        nxt = [delayed(combine, pure=True)(items[i], items[i + 1])
               for i in range(0, len(items) - 1, 2)]
        if len(items) % 2:
            nxt.append(items[-1])
        items = nxt
    return items[0]


def _finish(p):
    """Population variance etc. from the total partial."""
    n = p["n"]
    var = p["m2"] / n
    var[p["min"] == p["max"]] = 0.0  # constant pixels: exactly zero, not an ulp off
    np.maximum(var, 0.0, out=var)
    return {"mean": p["mean"], "var": var, "std": np.sqrt(var), "min": p["min"],
            "max": p["max"], "n": n}


# ---------------------------------------------------------------------------------------
# The video as a frame-chunked dask array
# ---------------------------------------------------------------------------------------


def stats_video(video):
    """An xarray DataArray (frame, [z,] y, x) from anything open_video takes, with pixels
    pixel statistics can count."""
    video = grey_video(video, purpose="pixel statistics need grey frames")
    if video.sizes["frame"] == 0:
        raise ValueError("the video has no frames")
    dtype = np.dtype(video.dtype)
    if dtype == np.bool_ or not (np.issubdtype(dtype, np.integer)
                                 or np.issubdtype(dtype, np.floating)):
        raise TypeError(f"pixel statistics need integer or float pixels, got dtype {dtype}")
    return video


def stats_delayed(data):
    """A Delayed of the statistics dict of a frame-chunked dask array (nothing computed)."""
    blocks = data.to_delayed(optimize_graph=True).reshape(-1)
    partials = [delayed(_chunk_partial, pure=True)(b) for b in blocks]
    return delayed(_finish, pure=True)(_tree(partials, _combine))


def _compute(obj, client):
    if client is not None:
        return client.compute(obj).result()
    return dask.compute(obj)[0]


def _describe_source(video):
    src = video.attrs.get("source")
    if isinstance(src, (list, tuple)):
        if not src:
            return "image sequence"
        return f"{os.fspath(src[0])} ... ({len(src)} files)"
    if src is None:
        return type(video.data).__module__.split(".")[0] + " array"
    return os.fspath(src) if isinstance(src, os.PathLike) else str(src)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------


def pixel_stats(video, *, client=None):
    """Mean, variance, standard deviation, minimum and maximum of every pixel over time.

    One pass over the video: each frame chunk is one task that reduces its frames to
    partial statistics (count, mean, sum of squared deviations ``M2``, min, max, in
    float64); the partials are merged pairwise in a balanced tree with the parallel
    algorithm of Chan, Golub & LeVeque (1979). No task ever holds more than one chunk
    of frames (converted to float64 a slab of :data:`SLAB_FRAMES` frames at a time)
    plus a few (y, x) partials, so memory does not grow with the video's length.
    For a video of z-stacks every voxel is reduced over frames (the partials are
    (z, y, x)).

    Parameters
    ----------
    video : xarray.DataArray or anything :func:`daskloc.open_video` accepts
        Grey video, dims ``("frame", "y", "x")`` or ``("frame", "z", "y", "x")``,
        integer or float pixels; normally dask-backed and chunked along ``frame``
        (chunks along ``z``/``y``/``x`` are merged lazily; a numpy-backed array is
        split in chunks of 64 frames). Paths and
        arrays go through ``open_video`` with its defaults (use ``open_video(path,
        channel=0, frames=...)`` first for colour movies or a frame range).
    client : distributed.Client, optional
        Where to compute. Default: Dask's current scheduler (the default distributed
        client if there is one, else the local threaded scheduler).

    Returns
    -------
    xarray.Dataset
        Dims ``("y", "x")`` (the frame's height and width in pixels, with integer
        pixel-index coordinates), or ``("z", "y", "x")`` for a video of z-stacks (one
        value per voxel; ``z`` in planes). Variables, all float64, in the video's
        intensity units (grey levels):

        - ``mean``: the mean over frames;
        - ``var``: the **population** variance (``ddof=0``: sum of squared deviations
          divided by the number of frames N, as ``numpy.var``'s default); exactly 0
          where ``min == max``;
        - ``std``: ``sqrt(var)``;
        - ``min``, ``max``: the extreme values (exact for integer pixels up to 2**53).

        ``attrs``: ``n_frames`` (int, frames reduced), ``source`` (str, the video's
        path or a description), ``dtype`` (str, the video's dtype), ``ddof`` (0),
        ``first_frame``, ``last_frame`` (int, frame numbers). Save with
        ``stats.to_zarr(path)``, read with ``xarray.open_zarr(path)``.

    Raises
    ------
    ValueError
        The video has a ``channel`` dimension (pick one with ``channel=``), other
        dims, or no frames.
    TypeError
        Pixels that are not integer or float numbers.
    FileNotFoundError, daskloc.video.VideoError
        As :func:`daskloc.open_video`, for a path.

    Notes
    -----
    The naive single-pass formula ``var = E[x**2] - E[x]**2`` loses every significant
    digit when the mean is large compared with the spread (for ``x ~ 1e9 +- 1`` in
    float64, ``x**2 ~ 1e18`` has an absolute rounding error of ~100): it is not used.
    Inside a slab the variance is computed in two passes (mean, then squared
    deviations from it); slabs and chunks are merged with

    ``delta = mean_B - mean_A``, ``n = n_A + n_B``,
    ``mean = mean_A + delta * n_B / n``,
    ``M2 = M2_A + M2_B + delta**2 * n_A * n_B / n``

    (T. F. Chan, G. H. Golub and R. J. LeVeque, "Updating formulae and a pairwise
    algorithm for computing sample variances", Stanford report STAN-CS-79-773, 1979;
    also Am. Stat. 37, 242 (1983)). Results do not depend on the chunking beyond
    floating-point rounding.

    Examples
    --------
    >>> import numpy as np, daskloc
    >>> video = np.stack([np.full((2, 3), v, np.uint8) for v in (1, 2, 3, 4)])
    >>> stats = daskloc.pixel_stats(video)
    >>> float(stats["mean"][0, 0]), float(stats["var"][0, 0]), stats.attrs["n_frames"]
    (2.5, 1.25, 4)
    """
    import xarray as xr

    video = stats_video(video)
    data = frame_chunked(video)
    result = _compute(stats_delayed(data), client)
    space = video.dims[1:]  # ("y", "x") or ("z", "y", "x")
    coords = {}
    for dim, size in zip(space, data.shape[1:]):
        coords[dim] = (np.asarray(video.coords[dim].values) if dim in video.coords
                       else np.arange(size, dtype=np.int64))
    frames = (np.asarray(video.coords["frame"].values) if "frame" in video.coords
              else np.arange(data.shape[0]))
    ds = xr.Dataset(
        {name: (space, np.asarray(result[name], dtype=np.float64))
         for name in ("mean", "var", "std", "min", "max")},
        coords=coords,
        attrs={
            "n_frames": int(result["n"]),
            "source": _describe_source(video),
            "dtype": str(np.dtype(video.dtype)),
            "ddof": 0,
            "first_frame": int(frames[0]),
            "last_frame": int(frames[-1]),
        },
    )
    ds["mean"].attrs["long_name"] = "mean over frames"
    ds["var"].attrs["long_name"] = "population variance over frames (ddof=0)"
    ds["std"].attrs["long_name"] = "population standard deviation over frames (ddof=0)"
    ds["min"].attrs["long_name"] = "minimum over frames"
    ds["max"].attrs["long_name"] = "maximum over frames"
    return ds


def _as_stats(stats, needed):
    """A Dataset with the variables ``needed``; a path is opened with xarray.open_zarr."""
    import xarray as xr

    if isinstance(stats, (str, os.PathLike)):
        stats = xr.open_zarr(os.fspath(stats))
    if not isinstance(stats, xr.Dataset):
        raise TypeError(
            f"stats must be the xarray.Dataset of daskloc.pixel_stats (or the path of its "
            f"Zarr copy), got {type(stats).__name__}"
        )
    missing = [v for v in needed if v not in stats.variables]
    if missing:
        raise ValueError(
            f"stats lacks the variable(s) {', '.join(missing)} (has: "
            f"{', '.join(sorted(map(str, stats.data_vars)))}); compute it with "
            "daskloc.pixel_stats"
        )
    return stats


def _space(var):
    """The spatial dims of a statistics variable: ("y", "x") or ("z", "y", "x")."""
    return ("z", "y", "x") if "z" in var.dims else ("y", "x")


def _image(var):
    """A statistics variable as a numpy array in (z,) y, x order."""
    return np.asarray(var.transpose(*_space(var)).values)


def _indices(mask, space):
    """{dim: int64 indices} of the True entries of ``mask``, raster order."""
    return {d: i.astype(np.int64) for d, i in zip(space, np.nonzero(mask))}


def stuck_pixels(stats):
    """Pixels whose value never changes over the video (zero variance).

    Parameters
    ----------
    stats : xarray.Dataset or str or os.PathLike
        The result of :func:`pixel_stats` (variables ``min`` and ``max`` over dims
        ``("y", "x")`` or ``("z", "y", "x")``), or the path of its Zarr copy.

    Returns
    -------
    pandas.DataFrame
        One row per stuck pixel, in raster order (by ``y`` then ``x``), columns
        ``y``, ``x`` (int64, pixel indices: row and column) and ``value`` (float64,
        the constant value, in the video's intensity units). Empty (same columns) if
        there is none. For statistics of z-stacks, one row per stuck voxel, a ``z``
        column (int64, plane index) first, in raster order by ``z``, ``y``, ``x``.

    Raises
    ------
    TypeError
        ``stats`` is not a Dataset or path.
    ValueError
        ``stats`` lacks ``min`` or ``max``.

    Notes
    -----
    A pixel is stuck when ``min == max`` over all frames: exactly the pixels of zero
    population variance, tested without rounding error (a float variance of a
    constant can come out an ulp above zero; ``min == max`` cannot). A video of one
    frame has every pixel "stuck".
    """
    stats = _as_stats(stats, ("min", "max"))
    space = _space(stats["min"])
    lo = _image(stats["min"])
    hi = _image(stats["max"])
    at = _indices(lo == hi, space)
    return pd.DataFrame({**at, "value": lo[tuple(at.values())].astype(np.float64)})


def _hot_scores(mean, size):
    """(local median, residual, robust sigma) of a mean image."""
    from scipy import ndimage

    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 3 \
            or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3 (pixels), got {size!r}")
    footprint = np.ones((size, size), dtype=bool)
    footprint[size // 2, size // 2] = False  # the pixel itself is not its neighbour
    # "mirror" reflects about the edge pixel without repeating it, so a pixel on the
    # edge never counts itself among its neighbours either. The footprint holds an even
    # number of pixels: the median is the mean of the two middle values (median_filter
    # alone would return the upper one).
    k = size * size - 1
    lower = ndimage.rank_filter(mean, k // 2 - 1, footprint=footprint, mode="mirror")
    upper = ndimage.rank_filter(mean, k // 2, footprint=footprint, mode="mirror")
    local = 0.5 * (lower + upper)
    residual = mean - local
    finite = residual[np.isfinite(residual)]
    if finite.size == 0:
        return local, residual, np.inf
    center = np.median(finite)
    sigma = MAD_TO_SIGMA * np.median(np.abs(finite - center))
    if sigma == 0:
        # More than half the residuals equal: fall back to the mean absolute
        # deviation, scaled to a standard deviation for normal data (sqrt(pi/2)).
        sigma = np.sqrt(np.pi / 2) * np.mean(np.abs(finite - center))
    # sigma is 0 only when every residual is the same: then nothing stands out
    return local, residual, sigma


def hot_pixels(stats, *, threshold=HOT_THRESHOLD, size=HOT_SIZE, max_cluster=HOT_MAX_CLUSTER):
    """Pixels whose mean is far above the median of their neighbourhood.

    Parameters
    ----------
    stats : xarray.Dataset or str or os.PathLike
        The result of :func:`pixel_stats` (variable ``mean`` over dims
        ``("y", "x")``, or ``("z", "y", "x")``: then each z plane is searched on its
        own, as an image of its own), or the path of its Zarr copy.
    threshold : float, default :data:`HOT_THRESHOLD` (8)
        How many robust standard deviations above its neighbourhood a pixel's mean
        must be to count as hot.
    size : int, default :data:`HOT_SIZE` (5)
        Side of the square neighbourhood, pixels (odd, >= 3).
    max_cluster : int or None, default :data:`HOT_MAX_CLUSTER` (2)
        Largest group of adjacent outstanding pixels still counted as hot pixels
        (see Notes, step 5); None counts every pixel above ``threshold``.

    Returns
    -------
    pandas.DataFrame
        One row per hot pixel, in raster order, columns ``y``, ``x`` (int64, pixel
        indices: row and column), ``mean`` (float64, the pixel's mean, intensity
        units), ``local_median`` (float64, the median of its neighbours' means) and
        ``score`` (float64, ``(mean - local_median) / sigma``, see Notes). Empty (same
        columns) if there is none. For statistics of z-stacks, a ``z`` column (int64,
        plane index) first, rows in raster order by ``z``, ``y``, ``x``.

    Raises
    ------
    TypeError
        ``stats`` is not a Dataset or path.
    ValueError
        ``stats`` lacks ``mean``; ``size`` is not an odd integer >= 3; ``threshold``
        is not a positive finite number; ``max_cluster`` is not None or an int >= 1.

    Notes
    -----
    The rule, applied to the mean image ``m``:

    1. ``local = median of m over the size x size neighbourhood, the pixel itself
       excluded`` (``size**2 - 1`` values, an even number: the mean of the two middle
       ones; ``scipy.ndimage.rank_filter`` with a footprint whose centre is False; at
       the image edges the neighbourhood is mirrored about the edge pixel, without
       repeating it);
    2. ``r = m - local`` (the residual);
    3. ``sigma = 1.4826 * median(|r - median(r)|)`` over the whole image: the median
       absolute deviation (MAD) scaled to estimate the standard deviation of normally
       distributed residuals, a robust scale estimate that the hot pixels themselves
       (and particles, dust) barely move (Hampel, J. Am. Stat. Assoc. 69, 383 (1974);
       Rousseeuw & Croux, J. Am. Stat. Assoc. 88, 1273 (1993); Iglewicz & Hoaglin,
       "How to Detect and Handle Outliers", ASQC 1993). If the MAD is 0 (more than
       half the residuals are equal, e.g. a flat synthetic image), ``sigma =
       sqrt(pi/2) * mean(|r - median(r)|)`` instead; if that is 0 too no pixel is
       hot;
    4. ``score = r / sigma``; a pixel is a candidate where ``score > threshold``;
    5. a defective pixel is one pixel (or two adjacent ones), a particle or speck of
       dust that sits still is several pixels wide: pixels with ``score > threshold
       / 2`` are grouped into 8-connected clusters, and a candidate counts as hot only
       if its cluster has at most ``max_cluster`` pixels. (On the real ``stuck.tif``
       recording, 5 frames in which about 45 particles barely move, steps 1-4 alone
       flag 240 pixels of those particles at ``threshold=8``; step 5 leaves none.)

    Only pixels brighter than their neighbours are flagged (dark, dead pixels are not
    "hot"). Moving particles average out in the mean of many frames; with few frames
    they show in it, and only step 5 keeps them from being flagged.

    For z-stacks the rule is applied to each z plane's mean image separately (its own
    ``sigma``, 2-D neighbourhoods and clusters): a camera's defect lies in the image
    plane, and the planes of a stack can differ in brightness and noise.
    """
    stats = _as_stats(stats, ("mean",))
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)) \
            or not np.isfinite(threshold) or threshold <= 0:
        raise ValueError(f"threshold must be a positive number of sigmas, got {threshold!r}")
    if max_cluster is not None and (isinstance(max_cluster, bool)
                                    or not isinstance(max_cluster, (int, np.integer))
                                    or max_cluster < 1):
        raise ValueError(f"max_cluster must be None or an integer >= 1, got {max_cluster!r}")
    space = _space(stats["mean"])
    mean = _image(stats["mean"]).astype(np.float64)
    if len(space) == 2:
        hot, local, score = _hot_plane(mean, threshold, size, max_cluster)
    else:
        planes = [_hot_plane(plane, threshold, size, max_cluster) for plane in mean]
        hot, local, score = (np.stack([p[i] for p in planes]) for i in range(3))
    at = _indices(hot, space)
    index = tuple(at.values())
    return pd.DataFrame({
        **at,
        "mean": mean[index],
        "local_median": local[index].astype(np.float64),
        "score": score[index].astype(np.float64),
    })


def _hot_plane(mean, threshold, size, max_cluster):
    """(hot, local median, score) of one (y, x) mean image: steps 1-5 of hot_pixels."""
    local, residual, sigma = _hot_scores(mean, size)
    if not sigma > 0:
        score = np.zeros_like(residual)
    else:
        score = residual / sigma
    hot = np.isfinite(score) & (score > threshold)
    if max_cluster is not None and hot.any():
        from scipy import ndimage

        labels, _ = ndimage.label(np.isfinite(score) & (score > threshold / 2),
                                  structure=np.ones((3, 3), dtype=bool))
        sizes = np.bincount(labels.ravel())
        hot &= sizes[labels] <= max_cluster
    return hot, local, score
