"""Lazy corrections of a video before features are located: bad pixels, static background.

:func:`correct_video` returns the corrected video (lazy, same shape and dtype);
:func:`daskloc.locate` and :func:`daskloc.batch` apply the same correction when given
``mask=`` and/or ``background=``. The locate kernel itself is untouched: it sees
corrected frames of the video's own dtype, so ``minmass``, ``threshold`` and
``invert`` keep their meaning.

Per frame, in this order:

1. **mask** -- every masked (bad) pixel is replaced by the median of its unmasked
   3 x 3 neighbours (:func:`fill_masked`);
2. **background** -- the static background image ``B`` is subtracted and its spatial
   mean added back: ``frame - B + mean(B)`` (:func:`subtract_background`).

**Z-stacks** (videos with dims ``("frame", "z", "y", "x")``): a ``(y, x)`` mask (a
camera's bad pixels) applies to every z plane and a ``(z, y, x)`` mask voxel by voxel;
either way each z plane is filled on its own with the 2-D fill above (the median of the
unmasked 3 x 3 neighbours *in the same plane*, never from the planes above or below,
which a z step larger than the pixel size makes a different depth). The background is
per voxel, ``(z, y, x)``, and ``mean(B)`` its mean over all voxels.
"""

from __future__ import annotations

import hashlib
import math
import numbers

import dask.array as da
import numpy as np
import pandas as pd
from dask.delayed import delayed

# The fill is the kernel's (NaN pixels are filled the same way); re-exported here, and
# applied plane by plane to z-stacks (fill_plans, apply_fill_plans).
from daskloc.locate.fill import apply_fill, fill_masked, fill_plan, to_dtype
from daskloc.pixels import SLAB_FRAMES, hot_pixels, stats_delayed, stats_video, stuck_pixels
from daskloc.video import frame_chunked

__all__ = ["BACKGROUNDS", "MEDIAN_MAX_FRAMES", "as_mask", "check_background_name",
           "correct_video", "fill_masked", "fill_plans", "apply_fill_plans",
           "median_background", "read_background",
           "read_mask", "subtract_background", "background_shift"]

#: The background images computed from the video itself.
BACKGROUNDS = ("mean", "median")
#: At most this many frames (every k-th frame of the video) go into
#: ``background="median"``.
MEDIAN_MAX_FRAMES = 200
#: Bytes of one space tile of the frames used by the median background.
_MEDIAN_TILE_BYTES = 64 * 2**20

# ---------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------


def _space_dims(obj):
    """("z", "y", "x") if ``obj`` (an xarray object) has a z dim, else ("y", "x")."""
    return ("z", "y", "x") if "z" in obj.dims else ("y", "x")


def as_mask(mask, shape):
    """A boolean (y, x) or (z, y, x) mask of bad pixels from any of the accepted forms.

    Parameters
    ----------
    mask : None, array-like, pandas.DataFrame or xarray.Dataset
        - a boolean array of shape ``shape``, True = bad pixel (integer arrays of 0
          and 1 are accepted too); for z-stacks (``shape`` is ``(z, y, x)``) also of
          shape ``(y, x)``: the same pixels are bad in every z plane (a camera's bad
          pixels);
        - a DataFrame with integer columns ``y`` and ``x`` (pixel row and column), one
          row per bad pixel, e.g. :func:`daskloc.stuck_pixels` or
          :func:`daskloc.hot_pixels` (or both concatenated); for z-stacks also with a
          ``z`` column (plane index), one row per bad voxel (without it, every plane);
        - the Dataset of :func:`daskloc.pixel_stats`: its boolean variables ``stuck``
          and/or ``hot`` (as ``daskloc pixel-stats`` writes them), or else its stuck
          and hot pixels found with the default settings.
    shape : tuple of int
        ``(height, width)`` of the video's frames, pixels, or ``(depth, height,
        width)`` for z-stacks (planes, pixels).

    Returns
    -------
    numpy.ndarray of bool, shape ``shape`` or ``shape[-2:]``, or None
        None when ``mask`` is None. For z-stacks a mask given per pixel stays
        ``(y, x)`` (it applies to every plane) and a mask given per voxel is
        ``(z, y, x)``.

    Raises
    ------
    ValueError
        A mask of another shape (the message gives both shapes); pixel indices outside
        the frame; an integer array holding other values than 0 and 1; a DataFrame
        without ``y``/``x`` columns; a ``z`` column or a (z, y, x) mask for 2-D frames.
    TypeError
        Anything else (e.g. a float array).
    """
    import xarray as xr

    if mask is None:
        return None
    shape = tuple(int(s) for s in shape)
    accepted = (shape, shape[-2:]) if len(shape) == 3 else (shape,)
    if isinstance(mask, xr.Dataset):
        names = [n for n in ("stuck", "hot") if n in mask.data_vars]
        if names:
            arrays = [np.asarray(mask[n].transpose(*_space_dims(mask[n])).values).astype(bool)
                      for n in names]
            for a in arrays:
                if a.shape not in accepted:
                    return as_mask(a, shape)  # raises, naming both shapes
            out = np.zeros(max((a.shape for a in arrays), key=len), dtype=bool)
            for a in arrays:
                out |= a  # a (y, x) flag broadcasts over the planes of a (z, y, x) one
            return out

        found = [stuck_pixels(mask), hot_pixels(mask)]
        cols = [c for c in ("z", "y", "x") if c in found[0].columns]
        mask = pd.concat([f[cols] for f in found])
    if isinstance(mask, pd.DataFrame):
        if not {"y", "x"} <= set(mask.columns):
            raise ValueError(
                f"a mask DataFrame needs columns 'y' and 'x' (pixel row and column), got "
                f"{list(mask.columns)}"
            )
        names = ("z", "y", "x") if "z" in mask.columns else ("y", "x")
        if "z" in mask.columns and len(shape) != 3:
            raise ValueError(
                "the mask DataFrame has a 'z' column but the video's frames are 2-D "
                f"{shape} (y, x): give y and x only"
            )
        target = shape[-len(names):]
        index = []
        for name, n in zip(names, target):
            v = np.asarray(mask[name])
            if v.size and not np.issubdtype(v.dtype, np.integer):
                if not np.all(np.asarray(v, dtype=np.float64) % 1 == 0):
                    raise ValueError(f"mask column {name!r} must hold integer pixel indices")
            v = np.asarray(v, dtype=np.int64)
            if v.size and (v.min() < 0 or v.max() >= n):
                raise ValueError(
                    f"mask pixel {name} indices must lie in 0..{n - 1} (frames of "
                    f"{' x '.join(map(str, shape))} pixels), got {v.min()}..{v.max()}"
                )
            index.append(v)
        out = np.zeros(target, dtype=bool)
        out[tuple(index)] = True
        return out
    if isinstance(mask, xr.DataArray):
        space = _space_dims(mask)
        mask = mask.transpose(*space).values if set(mask.dims) == set(space) else mask.values
    arr = np.asarray(mask)
    if arr.shape not in accepted:
        if len(shape) == 3:
            raise ValueError(
                f"the mask has shape {arr.shape} but the video's frames are z-stacks of "
                f"shape {shape} (z, y, x): give one value per voxel, shape {shape}, or one "
                f"per pixel of the camera, shape {shape[-2:]} (y, x; every z plane), True "
                "where the pixel is bad"
            )
        raise ValueError(
            f"the mask has shape {arr.shape} but the video's frames have shape {shape} "
            "(y, x): give one value per pixel, True where the pixel is bad"
        )
    if arr.dtype == np.bool_:
        return arr.copy()
    if np.issubdtype(arr.dtype, np.integer):
        if not np.isin(arr, (0, 1)).all():
            raise ValueError("an integer mask must hold only 0 (good) and 1 (bad pixel)")
        return arr.astype(bool)
    raise TypeError(
        f"the mask must be a boolean array (True = bad pixel), a DataFrame with y, x "
        f"columns or the Dataset of pixel_stats, got an array of dtype {arr.dtype}"
    )


# ---------------------------------------------------------------------------------------
# Filling masked pixels, plane by plane
# ---------------------------------------------------------------------------------------


class _PerPlane:
    """The fill plans of a (z, y, x) mask: one per z plane (None: nothing masked)."""

    __slots__ = ("plans",)

    def __init__(self, plans):
        self.plans = tuple(plans)


def fill_plans(mask):
    """How to fill the masked pixels of ``mask``, made once and applied to any frames.

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (y, x) or (z, y, x)
        True where the pixel is bad.

    Returns
    -------
    object
        For :func:`apply_fill_plans`: the kernel's :func:`~daskloc.locate.fill.fill_plan`
        of a (y, x) mask, or one such plan per z plane of a (z, y, x) mask.

    Raises
    ------
    ValueError
        The mask covers every pixel of the frame (of a z plane).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2:
        return fill_plan(mask)
    plans = []
    for z, plane in enumerate(mask):
        if plane.all():
            raise ValueError(
                f"the mask covers every pixel of z plane {z}: nothing to fill them from "
                "(each plane is filled from its own pixels)"
            )
        plans.append(fill_plan(plane) if plane.any() else None)
    return _PerPlane(plans)


def apply_fill_plans(frames, plans):
    """A copy of ``frames`` with the masked pixels of :func:`fill_plans` filled.

    Parameters
    ----------
    frames : numpy.ndarray, shape (..., y, x) or (..., z, y, x)
        Integer or float pixels: any number of frames, planes or volumes; (..., y, x)
        for the plans of a (y, x) mask (every plane is filled the same way), (..., z,
        y, x) for those of a (z, y, x) mask.
    plans : object
        :func:`fill_plans` of the mask.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``frames``. Each (y, x) plane is filled on its own,
        from the unmasked pixels of the same plane, as
        :func:`daskloc.locate.fill.fill_masked` fills a 2-D frame.

    Examples
    --------
    >>> import numpy as np
    >>> stacks = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(1, 2, 3, 3)  # (n, z, y, x)
    >>> bad = np.zeros((3, 3), bool); bad[1, 1] = True  # the same pixel in every plane
    >>> apply_fill_plans(stacks, fill_plans(bad))[0, :, 1, 1].tolist()
    [4, 13]
    """
    frames = np.asarray(frames)
    if isinstance(plans, _PerPlane):
        out = np.array(frames, copy=True, order="C")
        volumes = out.reshape((-1,) + out.shape[-3:])
        for z, plan in enumerate(plans.plans):
            if plan is not None:
                volumes[:, z] = apply_fill(volumes[:, z], plan)
        return out
    return apply_fill(frames, plans)


# ---------------------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------------------


def median_background(video, *, max_frames=MEDIAN_MAX_FRAMES):
    """The per-pixel median over time, lazily, from at most ``max_frames`` frames.

    Parameters
    ----------
    video : xarray.DataArray or anything :func:`daskloc.open_video` accepts
        Grey video, dims ``("frame", "y", "x")`` or ``("frame", "z", "y", "x")``.
    max_frames : int, default :data:`MEDIAN_MAX_FRAMES` (200)
        Most frames used.

    Returns
    -------
    dask.array.Array, float64, shape (y, x) or (z, y, x)
        Not computed (per voxel for z-stacks). The median of every pixel over the
        frames used, in the video's intensity units (for an even number of frames,
        the mean of the two middle values).

    Notes
    -----
    A median over time needs a pixel's whole time series at once, which a video
    chunked by frame does not give. Up to ``max_frames`` frames the median is exact.
    For a longer video it is the median of every k-th frame, ``k = ceil(n_frames /
    max_frames)`` (frames 0, k, 2k, ... of the selection): a static background does
    not need every frame, and memory stays bounded. Those frames are rechunked into
    space tiles holding every used frame (the whole subsample passes through memory
    once, at most ``max_frames`` frames in the video's dtype), and each tile's median is
    one task.
    """

    if isinstance(max_frames, bool) or not isinstance(max_frames, numbers.Integral) \
            or max_frames < 1:
        raise ValueError(f"max_frames must be a positive integer, got {max_frames!r}")
    data = frame_chunked(stats_video(video))
    n, space = data.shape[0], data.shape[1:]
    step = max(1, math.ceil(n / max_frames))
    sub = data[::step]
    # space tiles of whole rows (whole planes, for z-stacks, when they fit)
    budget = _MEDIAN_TILE_BYTES // max(1, sub.shape[0] * 8)  # pixels of one frame a tile
    tile = [-1] * len(space)
    for axis, size in enumerate(space[:-1]):
        inner = int(np.prod(space[axis + 1 :], dtype=np.int64))
        if inner <= budget:
            tile[axis] = max(1, min(size, budget // max(1, inner)))
            break
        tile[axis] = 1
    sub = sub.rechunk((-1,) + tuple(tile))
    return sub.map_blocks(_median_block, drop_axis=0, dtype=np.float64,
                          meta=np.empty((0,) * len(space), np.float64))


def _median_block(block):
    return np.median(block, axis=0).astype(np.float64, copy=False)


def subtract_background(frames, background):
    """``frames - background + mean(background)``, in the frames' dtype.

    Parameters
    ----------
    frames : numpy.ndarray, shape (y, x) or (n, y, x); or (z, y, x) or (n, z, y, x)
        Integer or float pixels: frames, or z-stacks for a (z, y, x) background.
    background : numpy.ndarray, shape (y, x) or (z, y, x)
        The static background, same intensity units (per voxel for z-stacks).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``frames``; computed in float64, then for integer
        frames rounded to the nearest integer (halves to even) and clipped to the
        dtype's range.

    Notes
    -----
    Adding back the background's spatial mean (one number) keeps the frame at its
    usual level and polarity: a flat background stays a flat background at the same
    average grey level, bright particles stay brighter and dark particles darker than
    it, and ``invert=True`` (which reflects integer frames about the dtype's maximum)
    still turns dark particles into bright ones. Subtracting alone would leave the
    background at 0 and dark particles negative, clipped away in integer frames.
    Pixels pushed beyond the dtype's range (a bright feature where the background is
    far below its mean) are clipped.
    """
    frames = np.asarray(frames)
    background = np.asarray(background, dtype=np.float64)
    k = background.ndim
    if k not in (2, 3) or frames.ndim not in (k, k + 1) or background.shape != frames.shape[-k:]:
        raise ValueError(
            f"the background has shape {background.shape} but the frames have shape "
            f"{frames.shape}: a (y, x) background takes frames (y, x) or (n, y, x), a "
            "(z, y, x) background z-stacks (z, y, x) or (n, z, y, x)"
        )
    single = frames.ndim == k
    stack = frames[None] if single else frames
    out = _add_shift(stack, background_shift(background))
    return out[0] if single else out


def background_shift(background):
    """What :func:`subtract_background` adds to every frame: ``mean(B) - B``.

    Parameters
    ----------
    background : numpy.ndarray, shape (y, x) or (z, y, x)
        The static background (float64).

    Returns
    -------
    numpy.ndarray, float64, same shape
        ``mean(B) - B``, the mean over the finite pixels (voxels) of ``B``; 0 where ``B`` is NaN
        or infinite. A per-pixel mean or median over time is NaN at a pixel that is NaN
        in any frame (a dead pixel of a float camera): such a pixel is left as it is,
        and the locate kernel fills it from its neighbours in each frame, as it fills
        every NaN pixel. Without this the one NaN pixel made the mean NaN, every
        corrected frame NaN, and the job found no features.
    """
    background = np.asarray(background, dtype=np.float64)
    finite = np.isfinite(background)
    if finite.all():
        return background.mean() - background
    if not finite.any():
        return np.zeros_like(background)
    return np.where(finite, background[finite].mean() - background, 0.0)


def _add_shift(frames, shift):
    """``frames + shift`` (n, [z,] y, x) back in the frames' dtype, a few frames at a time
    (one float64 temporary of :data:`daskloc.pixels.SLAB_FRAMES` frames)."""

    out = np.empty_like(frames)
    for a in range(0, frames.shape[0], SLAB_FRAMES):
        values = frames[a : a + SLAB_FRAMES].astype(np.float64)
        values += shift
        out[a : a + SLAB_FRAMES] = to_dtype(values, frames.dtype)
    return out


def _correct_block(block, shift, *, plan, out_dtype):
    """One frame chunk: fill the masked pixels, add ``shift`` (= mean(B) - B)."""
    block = np.asarray(block)
    if plan is not None:
        block = apply_fill_plans(block, plan)
    if shift is not None:
        block = _add_shift(block, np.asarray(shift, dtype=np.float64))
    return block.astype(out_dtype, copy=False)


def _digest(array):
    array = np.ascontiguousarray(array)
    h = hashlib.sha256()
    h.update(f"{array.dtype.str}{array.shape}".encode())
    h.update(array.tobytes())
    return h.hexdigest()[:16]


class Correction:
    """A validated mask/background for one video's frame shape and dtype (internal).

    ``identity`` holds what identifies the correction in a store's metadata:
    ``{"mask": "<n> pixels sha256:<16 hex>"}`` (only with a mask that masks something;
    ``"<n> voxels sha256:..."`` for a (z, y, x) mask) and ``{"background": "mean" |
    "median" | "array sha256:<16 hex>"}``. ``shape`` is the frame's, (y, x) or
    (z, y, x).
    """

    def __init__(self, mask, background, shape, dtype):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        mask = as_mask(mask, self.shape)
        if mask is not None and not mask.any():
            mask = None  # nothing to fill: the same job as no mask
        self.mask = mask
        self.plan = fill_plans(mask) if mask is not None else None
        self.identity = {}
        if mask is not None and mask.ndim == 2:  # as in 2-D jobs, for every plane too
            self.identity["mask"] = (f"{int(mask.sum())} pixels sha256:"
                                     f"{_digest(np.packbits(mask))}")
        elif mask is not None:
            self.identity["mask"] = (f"{int(mask.sum())} voxels sha256:"
                                     f"{_digest(np.packbits(mask, axis=-1))}")
        self.background = _check_background(background, self.shape)
        if isinstance(self.background, np.ndarray):
            self.identity["background"] = f"array sha256:{_digest(self.background)}"
        elif self.background is not None:
            self.identity["background"] = self.background

    @property
    def active(self):
        return self.mask is not None or self.background is not None

    def _background(self, data):
        """The background image as a lazy (y, x) or (z, y, x) float64 dask array, masked
        pixels filled."""

        if isinstance(self.background, np.ndarray):
            bg = da.from_array(self.background, chunks=-1)
        elif self.background == "mean":
            stats = stats_delayed(data)
            bg = da.from_delayed(delayed(_pick, pure=True)(stats, "mean"),
                                 shape=self.shape, dtype=np.float64,
                                 meta=np.empty((0,) * len(self.shape), np.float64))
        else:
            bg = median_background(_wrap(data)).rechunk(-1)
        if self.plan is not None:
            bg = bg.map_blocks(_fill_image, plan=self.plan, dtype=np.float64)
        return bg

    def shift(self, data, client=None, lazy=True):
        """``mean(B) - B`` for the frame-chunked dask array ``data``; None without a
        background. ``lazy=False`` computes it (on ``client`` if given) to numpy."""
        if self.background is None:
            return None
        bg = self._background(data)  # one block: the whole (y, x) image
        shift = bg.map_blocks(background_shift, dtype=np.float64)
        if lazy:
            return shift
        if client is not None:
            return np.asarray(client.compute(shift).result())
        return np.asarray(shift.compute())

    def apply(self, data, shift):
        """The corrected frame-chunked dask array (lazy; same chunks, shape, dtype)."""
        if not self.active:
            return data
        if shift is not None and not isinstance(shift, da.Array):
            shift = da.from_array(np.asarray(shift, dtype=np.float64), chunks=-1)
        args = (data,) if shift is None else (data, shift)
        func = _correct_block if shift is not None else _correct_no_shift
        return da.map_blocks(func, *args, plan=self.plan, out_dtype=self.dtype, dtype=self.dtype,
                             meta=np.empty((0,) * data.ndim, self.dtype),
                             name="daskloc-correct-" + _token(self, data, shift))


def _token(correction, data, shift):
    from dask.base import tokenize

    return tokenize(data.name, correction.identity, None if shift is None else shift.name)


def _correct_no_shift(block, *, plan, out_dtype):
    return _correct_block(block, None, plan=plan, out_dtype=out_dtype)


def _fill_image(image, *, plan):
    return apply_fill_plans(np.asarray(image, dtype=np.float64), plan)


def _pick(d, key):
    return d[key]


def _wrap(data):
    import xarray as xr

    dims = ("frame", "y", "x") if data.ndim == 3 else ("frame", "z", "y", "x")
    return xr.DataArray(data, dims=dims)


def check_background_name(background):
    """Raise ValueError for a background string that is not one of :data:`BACKGROUNDS`.

    Parameters
    ----------
    background : object
        What was given as ``background=``; only strings are checked here.

    Raises
    ------
    ValueError
        An unknown string; the message lists the options.
    """
    if isinstance(background, str) and background not in BACKGROUNDS:
        raise ValueError(
            f"unknown background {background!r}: use one of "
            f"{', '.join(repr(b) for b in BACKGROUNDS)}, or a (y, x) array ((z, y, x) for "
            "z-stacks)"
        )


def _check_background(background, shape):
    if background is None:
        return None
    if isinstance(background, str):
        check_background_name(background)
        return background
    import xarray as xr

    if isinstance(background, xr.DataArray) and set(background.dims) == set(
            _space_dims(background)):
        background = background.transpose(*_space_dims(background)).values
    arr = np.asarray(background)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer)
                                     or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(
            f"background must be 'mean', 'median' or a numeric (y, x) array, got "
            f"{type(background).__name__} of dtype {arr.dtype}"
        )
    if arr.shape != shape:
        if len(shape) == 3:
            raise ValueError(
                f"the background has shape {arr.shape} but the video's frames are z-stacks "
                f"of shape {shape} (z, y, x): give one value per voxel, e.g. the mean of "
                "daskloc.pixel_stats on this video, or background='mean'/'median'"
            )
        raise ValueError(
            f"the background has shape {arr.shape} but the video's frames have shape "
            f"{shape} (y, x)"
        )
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise ValueError("the background array holds NaN or infinite values")
    return arr


def correct_video(video, *, mask=None, background=None):
    """The video with bad pixels filled and/or a static background subtracted, lazily.

    Parameters
    ----------
    video : xarray.DataArray or anything :func:`daskloc.open_video` accepts
        Grey video, dims ``("frame", "y", "x")`` or ``("frame", "z", "y", "x")``,
        integer or float pixels.
    mask : None, bool array (y, x) or (z, y, x), DataFrame with ``y``, ``x`` (and ``z``)
        columns, or Dataset
        Bad pixels, True = bad (see :func:`as_mask`: e.g. the output of
        :func:`daskloc.stuck_pixels` / :func:`daskloc.hot_pixels`, or the Dataset
        ``daskloc pixel-stats`` writes). Each is replaced, in every frame, by the
        median of its unmasked 3 x 3 neighbours (:func:`fill_masked`). For z-stacks
        a (y, x) mask applies to every z plane, a (z, y, x) mask voxel by voxel, and
        each plane is filled from its own pixels.
    background : None, "mean", "median" or array (y, x) or (z, y, x)
        Static background ``B`` subtracted from every frame as ``frame - B +
        mean(B)`` (:func:`subtract_background`):

        - ``"mean"``: the per-pixel mean over the video (as :func:`daskloc.pixel_stats`
          computes it, one pass over the video);
        - ``"median"``: the per-pixel median over time (:func:`median_background`:
          exact up to :data:`MEDIAN_MAX_FRAMES` frames, else over every k-th frame);
          better than the mean when particles often sit on the same pixels;
        - an array of the frame's shape, in the video's intensity units ((z, y, x),
          one value per voxel, for z-stacks).

        With a mask, the background's masked pixels are filled the same way as the
        frames' (otherwise a hot pixel's high mean would dig a hole in every
        corrected frame).

    Returns
    -------
    xarray.DataArray
        Same dims, coordinates, attrs, shape, chunks and dtype as the video; the frames
        are corrected when computed. ``attrs["correction"]`` describes the correction
        (as stored in a feature store's metadata). With ``"mean"`` or ``"median"`` the
        background is part of the graph: computing any frame computes it first (the
        mean reads the whole video once).

    Raises
    ------
    ValueError
        A mask or background array of another shape than the frames (both shapes are
        named); an unknown background string (the options are listed); a mask covering
        every pixel (of a z plane).
    TypeError
        A mask or background of an unsupported type.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloc.correct import correct_video
    >>> from daskloc.video import open_video
    >>> stacks = np.full((3, 2, 4, 4), 10, np.uint16)  # 3 volumes of 2 planes
    >>> stacks[:, :, 1, 2] = 900                         # a hot camera pixel
    >>> bad = np.zeros((4, 4), bool); bad[1, 2] = True
    >>> video = open_video(stacks, dims=("frame", "z", "y", "x"))
    >>> fixed = correct_video(video, mask=bad)
    >>> fixed.dims, int(fixed.data.compute()[:, :, 1, 2].max())
    (('frame', 'z', 'y', 'x'), 10)
    """

    video = stats_video(video)
    data = frame_chunked(video)
    corr = Correction(mask, background, data.shape[1:], data.dtype)
    out = corr.apply(data, corr.shift(data))
    result = video.copy(data=out)
    result.attrs = dict(video.attrs, correction=dict(corr.identity))
    return result


# ---------------------------------------------------------------------------------------
# Files (for the command line)
# ---------------------------------------------------------------------------------------


def read_mask(path):
    """Load a mask file for ``mask=``: a ``.npy`` array or a ``pixel-stats`` Zarr store.

    Parameters
    ----------
    path : str or os.PathLike
        - ``*.npy``: a boolean (or 0/1 integer) array of shape (y, x), True = bad
          pixel (``numpy.save("mask.npy", mask)``);
        - a Zarr store written by ``daskloc pixel-stats`` (or ``pixel_stats(...)
          .to_zarr``): its stuck and hot pixels (the ``stuck``/``hot`` variables,
          found when it was written; or found now with the defaults of
          :func:`daskloc.stuck_pixels` / :func:`daskloc.hot_pixels`).

    Returns
    -------
    numpy.ndarray of bool or xarray.Dataset
        What :func:`as_mask` takes.

    Raises
    ------
    FileNotFoundError
        No such file or folder.
    ValueError
        Another kind of file.
    """
    import os

    text = os.fspath(path)
    if not os.path.exists(text):
        raise FileNotFoundError(f"no such mask file: {text!r}")
    if text.lower().endswith(".npy"):
        return np.load(text, allow_pickle=False)
    if os.path.isdir(text):
        import xarray as xr

        try:
            ds = xr.open_zarr(text)
        except Exception as exc:  # noqa: BLE001 - not a Zarr store: say what is accepted
            raise ValueError(
                f"{text}: cannot open as the Zarr store of daskloc pixel-stats "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        return ds.load()
    raise ValueError(
        f"{text}: a mask is a .npy file of booleans (y, x) or the Zarr store written by "
        "'daskloc pixel-stats'"
    )


def read_background(text):
    """``--background``: ``"mean"``, ``"median"`` or the path of a ``.npy`` (y, x) array.

    Parameters
    ----------
    text : str or None

    Returns
    -------
    None, str or numpy.ndarray
        What ``background=`` takes.

    Raises
    ------
    ValueError
        Anything else (the options are listed).
    FileNotFoundError
        A ``.npy`` path that does not exist.
    """
    import os

    if text is None or text in BACKGROUNDS:
        return text
    if text.lower().endswith(".npy"):
        if not os.path.exists(text):
            raise FileNotFoundError(f"no such background file: {text!r}")
        return np.load(text, allow_pickle=False)
    raise ValueError(
        f"unknown background {text!r}: use one of "
        f"{', '.join(repr(b) for b in BACKGROUNDS)}, or the path of a .npy (y, x) array"
    )
