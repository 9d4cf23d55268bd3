"""locate_frame and locate_stack: the Crocker-Grier pipeline on one frame or a stack."""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd

from daskloc.locate._params import (
    axis_values,
    check_engine,
    check_ndim,
    job_columns,
    normalize_params,
    split_options,
)
from daskloc.locate._scratch import scratch
from daskloc.locate.fill import fill_masked
from daskloc.locate.maxima import (
    NO_PEAK_MESSAGES,
    close_to_drop,
    local_maxima,
    local_maxima_nd,
    peakless_reason,
)
from daskloc.locate.preprocess import _bandpass_peak, bandpass_nd, invert, scale_to_integer
from daskloc.locate.refine import refine, refine_nd
from daskloc.locate.uncertainty import (
    background_noise,
    background_noise_nd,
    static_error,
    static_error_nd,
)

#: Why a frame gave no features, in trackpy's words (its UserWarning texts).
NO_FEATURE_MESSAGES = {
    **NO_PEAK_MESSAGES,
    "filtered": "No maxima survived mass- and size-based filtering.",
}


def _check_frame(image):
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(
            f"locate_frame takes one grey 2-D frame (y, x) or 3-D stack (z, y, x); got shape "
            f"{image.shape}. For colour video pick a channel (open_video(..., channel=0) or "
            "channel='grey'); for a stack of frames use locate_stack."
        )
    if image.ndim == 3 and image.shape[0] == 1:
        raise ValueError(
            f"a (z, y, x) stack of shape {image.shape} has one plane: locate it as a 2-D frame "
            "(image[0]; for a video, open it without its z axis), since a 3-D band pass over "
            "one plane leaves nothing"
        )
    if image.ndim == 3 and image.shape[-1] <= 4:
        raise ValueError(
            f"an image of shape {image.shape} looks like a colour frame (y, x, channel), not "
            f"a (z, y, x) stack with {image.shape[-1]} pixels along x: pick a channel first "
            "(e.g. image[..., 0], or open_video(..., channel=0)); a real stack needs more than "
            "4 pixels along x"
        )
    if image.dtype == np.bool_ or not (
        np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    ):
        raise TypeError(f"frame must hold integer or float pixels, got dtype {image.dtype}")
    return image


def _fill_nonfinite(image):
    """``(image, n)``: the image with its ``n`` NaN/infinite pixels filled as masked pixels.

    Integer images are returned as they are (they cannot hold NaN: not scanned). A
    float image costs one :func:`numpy.isfinite` pass when every pixel is finite; else
    its non-finite pixels are filled by :func:`~daskloc.locate.fill.fill_masked`
    (median of the finite 3 x 3 neighbours, blocks from their edges inwards; in a 3-D
    stack plane by plane, a plane with no finite pixel taking the stack's finite
    median). The image is None when every pixel is non-finite (nothing to fill from,
    nothing to locate).
    """
    if not np.issubdtype(image.dtype, np.floating):
        return image, 0
    finite = np.isfinite(image)
    if finite.all():
        return image, 0
    bad = ~finite
    n = int(np.count_nonzero(bad))
    if n == bad.size:
        return None, n
    if image.ndim == 2:
        return fill_masked(image, bad), n
    filled = np.array(image, copy=True)
    for k in range(len(image)):
        if bad[k].all():
            filled[k] = np.median(image[finite])
        elif bad[k].any():
            filled[k] = fill_masked(image[k], bad[k])
    return filled, n


def nonfinite_message(n_pixels, n_frames, *, where="", per_video=(), avoid=None):
    """The warning text for ``n_pixels`` NaN/infinite pixels filled in ``n_frames`` frames.

    Parameters
    ----------
    n_pixels, n_frames : int
        Non-finite pixels found and the number of frames holding them.
    where : str
        What found them, e.g. ``"locate_stack"`` or ``"daskloc.batch"``.
    per_video : sequence of (str, int, int)
        ``(video name, n_pixels, n_frames)`` of each video holding some, appended as
        ``" Per video: a: 3 pixels in 2 frames; b: ..."``; nothing when empty.
    avoid : str, optional
        How to avoid the warning; default: fill or mask them yourself.

    Returns
    -------
    str
    """
    if avoid is None:
        avoid = ("fill or mask them yourself first, e.g. frame = "
                 "daskloc.correct.fill_masked(frame, ~numpy.isfinite(frame)), or pass "
                 "mask= (bad pixels at fixed positions) to daskloc.locate/batch")
    prefix = f"{where}: " if where else ""
    text = (f"{prefix}{_count(n_pixels, 'NaN or infinite pixel')} in "
            f"{_count(n_frames, 'frame')} {'were' if n_pixels != 1 else 'was'} treated as "
            "masked pixels: each was filled with the median of its finite 3 x 3 neighbours "
            "before locating (a z plane with no finite pixel with the stack's median; frames "
            "with no finite pixel give no features). To avoid "
            f"this warning, {avoid}.")
    if per_video:
        text += " Per video: " + "; ".join(
            f"{name}: {_count(n, 'pixel')} in {_count(f, 'frame')}" for name, n, f in per_video
        ) + "."
    return text


def _count(n, noun):
    return f"{n} {noun}{'s' * (n != 1)}"


def _locate_filled(image, p):
    """``(values, n_nonfinite, reason)``: :func:`_locate` on a validated image whose NaN
    and infinite pixels are filled first (no rows for an image with no finite pixel)."""
    filled, n = _fill_nonfinite(image)
    if filled is None:
        return np.empty((0, len(job_columns(p, image.ndim)))), n, "black"
    values, reason = _locate(filled, p)
    return values, n, reason


def _isotropic(p):
    return not any(isinstance(p[n], list) for n in
                   ("diameter", "separation", "noise_size", "smoothing_size"))


def _locate(image, p):
    """Locate on a validated image with normalised parameters ``p``.

    Returns ``(values, reason)``: a float64 array of shape (n_features, n_columns),
    columns in the order of :func:`~daskloc.locate.job_columns` (tables are built once
    per call of the public functions), and why there are none (a key of
    :data:`NO_FEATURE_MESSAGES`) or None."""
    check_ndim(p, image.ndim)
    if image.ndim == 2 and _isotropic(p):
        return _locate_2d(image, p)
    return _locate_nd(image, p)


def _threshold(image, p):
    if p["threshold"] is not None:
        return p["threshold"]
    return 1 if np.issubdtype(image.dtype, np.integer) else 1 / 255.0


def _locate_2d(image, p):
    """The 2-D isotropic kernel (fused band pass, window maxima)."""
    is_float = not np.issubdtype(image.dtype, np.integer)
    threshold = _threshold(image, p)
    raw = invert(image) if p["invert"] else image
    target = np.uint8 if is_float else raw.dtype
    if p["preprocess"]:
        # The frame-sized intermediates are this thread's, reused frame to frame.
        bp, peak = _bandpass_peak(raw, p["noise_size"], p["smoothing_size"], threshold,
                                  out=scratch("bandpass", raw.shape, np.float64))
        scale, scaled = scale_to_integer(bp, target, peak=peak,
                                         out=scratch("scaled", raw.shape, target))
    else:
        scale, scaled = scale_to_integer(raw, target)

    diameter = p["diameter"]
    radius = diameter // 2
    separation = p["separation"]
    margin = max(radius, int(separation // 2 - 1), int(p["smoothing_size"] // 2))
    # Peaks also keep ``radius`` from the edges whatever the parameters, for the mask.
    peaks = local_maxima(scaled, separation, p["percentile"], margin, radius)
    characterize = p["characterize"]
    ncols = 8 if characterize else 3
    if len(peaks) == 0:
        return np.empty((0, ncols)), peakless_reason(scaled, p["percentile"], separation)
    found = refine(raw, scaled, radius, peaks, max_iterations=p["max_iterations"],
                   characterize=characterize)
    if separation > 0 and len(found) > 1:
        drop = close_to_drop(found[:, :2], separation, found[:, 2])
        if len(drop):
            found = np.delete(found, drop, axis=0)
    found[:, 2] /= scale  # mass
    found[:, 6] /= scale  # signal
    keep = found[:, 2] > p["minmass"]
    if p["maxsize"] is not None:
        keep &= found[:, 4] < p["maxsize"]
    found = found[keep]
    if len(found) == 0:
        return np.empty((0, ncols)), "filtered"
    if p["topn"] is not None and len(found) > p["topn"]:
        brightest = np.sort(np.argsort(found[:, 2], kind="stable")[-p["topn"]:])
        found = found[brightest]

    if not characterize:
        return np.ascontiguousarray(found[:, :3]), None
    out = np.empty((len(found), 8))
    out[:, :3] = found[:, :3]  # y, x, mass
    out[:, 3] = found[:, 4]  # size
    out[:, 4] = found[:, 5]  # ecc
    out[:, 5] = found[:, 6]  # signal
    out[:, 6] = found[:, 3]  # raw_mass
    black_level, noise = background_noise(scaled, raw, radius)
    out[:, 7] = static_error(found[:, 3], black_level, noise, radius, p["noise_size"])
    return out, None


def _locate_nd(image, p):
    """3-D images and per-axis parameters: the same steps, axis by axis (trackpy's
    N-dimensional locate)."""
    ndim = image.ndim
    columns = job_columns(p, ndim)
    is_float = not np.issubdtype(image.dtype, np.integer)
    threshold = _threshold(image, p)
    raw = invert(image) if p["invert"] else image
    target = np.uint8 if is_float else raw.dtype
    diameter = axis_values(p, "diameter", ndim)
    separation = axis_values(p, "separation", ndim)
    smoothing = axis_values(p, "smoothing_size", ndim)
    noise_size = axis_values(p, "noise_size", ndim)
    if p["preprocess"]:
        bp, peak = bandpass_nd(raw, noise_size, smoothing, threshold)
        scale, scaled = scale_to_integer(bp, target, peak=peak)
    else:
        scale, scaled = scale_to_integer(raw, target)
    radius = tuple(d // 2 for d in diameter)
    margin = tuple(max(r, s // 2 - 1, m // 2) for r, s, m in zip(radius, separation, smoothing))
    peaks, reason = local_maxima_nd(scaled, separation, p["percentile"], margin)
    if len(peaks) == 0:
        return np.empty((0, len(columns))), reason
    characterize = p["characterize"]
    found = refine_nd(raw, scaled, radius, peaks, max_iterations=p["max_iterations"],
                      characterize=characterize)
    n_size = found.shape[1] - ndim - 4
    mass_col = ndim
    signal_col = found.shape[1] - 1
    if all(s > 0 for s in separation) and len(found) > 1:
        drop = close_to_drop(found[:, :ndim], separation, found[:, mass_col])
        if len(drop):
            found = np.delete(found, drop, axis=0)
    found[:, mass_col] /= scale
    found[:, signal_col] /= scale
    keep = found[:, mass_col] > p["minmass"]
    if p["maxsize"] is not None:  # isotropic diameter only (normalize_params)
        keep &= found[:, ndim + 2] < p["maxsize"]
    found = found[keep]
    if len(found) == 0:
        return np.empty((0, len(columns))), "filtered"
    if p["topn"] is not None and len(found) > p["topn"]:
        brightest = np.sort(np.argsort(found[:, mass_col], kind="stable")[-p["topn"]:])
        found = found[brightest]
    n = ndim + 1
    if not characterize:
        return np.ascontiguousarray(found[:, :n]), None
    n_ep = len(columns) - (n + n_size + 3)
    out = np.empty((len(found), len(columns)))
    out[:, :n] = found[:, :n]  # positions, mass
    out[:, n:n + n_size] = found[:, n + 1:n + 1 + n_size]  # size(s)
    out[:, n + n_size] = found[:, n + 1 + n_size]  # ecc
    out[:, n + n_size + 1] = found[:, signal_col]  # signal
    out[:, n + n_size + 2] = found[:, n]  # raw_mass
    black_level, noise = background_noise_nd(scaled, raw, radius)
    ep = static_error_nd(found[:, n], black_level, noise, radius, noise_size)
    out[:, len(columns) - n_ep:] = ep.reshape(len(found), n_ep)
    return out, None


@functools.lru_cache(maxsize=64)
def _column_index(columns):
    return pd.Index(columns)


def _table(values, columns, frames=None):
    """A feature DataFrame from a (n, n_columns) float64 array (plus int64 ``frame``).

    The array becomes one float64 block, not a block per column, and the column index
    is made once per set of columns: a DataFrame of 9 columns built from a dict of
    arrays cost more than locating the features of a small frame."""
    table = pd.DataFrame(values, columns=_column_index(tuple(columns)), copy=False)
    if frames is not None:
        table["frame"] = frames
    return table


#: Frame numbers a summary of frames without features keeps (the rest are counted).
MAX_LISTED_FRAMES = 1000


def no_feature_message(frames, *, where="", n_frames=None, counts=None):
    """The warning text for frames that gave no features, gathered into one summary.

    Parameters
    ----------
    frames : dict of int to str
        Frame number → why it gave none (a key of :data:`NO_FEATURE_MESSAGES`); may
        hold only the first of them when ``counts`` has them all.
    where : str
        What located them, e.g. ``"locate_stack"`` or ``"daskloc.batch"``.
    n_frames : int, optional
        Frames located in all (adds "of N").
    counts : dict of str to int, optional
        Reason → number of frames, when ``frames`` is not all of them (see
        :func:`add_no_feature_frames`). Default: counted from ``frames``.

    Returns
    -------
    str
        E.g. ``"daskloc.batch: 3 of 100 frames gave no features (frames 4, 9, 17):
        Image contains no local maxima. (2); No maxima survived mass- and size-based
        filtering. (1)"``; the first 20 frame numbers are listed.

    Examples
    --------
    >>> no_feature_message({3: "black", 5: "black"}, where="locate_stack", n_frames=6)
    'locate_stack: 2 of 6 frames gave no features (frames 3, 5): Image is completely black. (2)'
    """
    prefix = f"{where}: " if where else ""
    numbers = sorted(frames)
    if counts is None:
        counts = {}
        for f in numbers:
            counts[frames[f]] = counts.get(frames[f], 0) + 1
    total = sum(counts.values())
    listed = ", ".join(str(f) for f in numbers[:20]) + (", ..." if total > 20 else "")
    why = "; ".join(f"{NO_FEATURE_MESSAGES.get(r, r)} ({c})" for r, c in counts.items())
    of = f" of {n_frames}" if n_frames is not None else ""
    noun = "frame" if total == 1 and n_frames is None else "frames"
    return (f"{prefix}{total}{of} {noun} gave no features "
            f"(frame{'s' * (total != 1)} {listed}): {why}")


def add_no_feature_frames(summary, frames):
    """Add one chunk's frames without features to a job's running summary.

    Parameters
    ----------
    summary : dict
        ``{"frames": {frame: reason}, "counts": {reason: n}}`` (filled in place; start
        from ``{}``). At most :data:`MAX_LISTED_FRAMES` frame numbers are kept, every
        one is counted.
    frames : dict of int to str
        The chunk's frames (from :func:`locate_stack_counted`).

    Returns
    -------
    dict
        ``summary``, for :func:`no_feature_message` (``frames=summary["frames"],
        counts=summary["counts"]``).
    """
    kept = summary.setdefault("frames", {})
    counts = summary.setdefault("counts", {})
    for frame, reason in frames.items():
        counts[reason] = counts.get(reason, 0) + 1
        if len(kept) < MAX_LISTED_FRAMES:
            kept[int(frame)] = reason
    return summary


def locate_frame(image, diameter, *, minmass=None, maxsize=None, separation=None,
                 noise_size=1, smoothing_size=None, threshold=None, invert=False,
                 percentile=64, topn=None, preprocess=True, max_iterations=10,
                 characterize=True, engine="auto", **unknown):
    """Locate Gaussian-like features (particles) in one frame, Crocker-Grier style.

    Parameters
    ----------
    image : array_like, shape (y, x) or (z, y, x), integer or float
        One grey frame, or one 3-D stack (a confocal z-stack: planes first). Integer
        images keep their dtype's range (uint8: 0..255); float images are taken to
        span 0..1 (as in trackpy). NaN and infinite pixels are filled as masked pixels
        (see Notes).
    diameter : int or tuple of int
        Approximate feature diameter in pixels; odd (round up when in doubt), or one
        per axis, slowest first (``(5, 11, 11)`` for a stack whose z step is about
        twice its pixel size). Sets the (elliptical) mask of radius ``diameter // 2``
        per axis for refinement and characterisation.
    minmass : float, optional
        Keep features whose ``mass`` is greater than this (band-passed intensity
        units, as trackpy reports them). Default 0.
    maxsize : float, optional
        Keep features whose ``size`` (radius of gyration, pixels) is below this (not
        with a per-axis ``diameter``, as in trackpy).
    separation : float or tuple of float, optional
        Minimum distance between features, pixels (per axis: features closer than
        the ellipsoid of these diameters). Default ``diameter + 1`` per axis.
    noise_size : float or tuple of float
        Standard deviation of the Gaussian low pass, pixels (per axis; 0: none along
        that axis, and then ``ep`` is 0 along it, as in trackpy). Default 1.
    smoothing_size : int or tuple of int, optional
        Side of the boxcar background, pixels (odd; per axis). Default ``diameter``.
    threshold : float, optional
        Clip the band-passed frame below this (intensity units of ``image``).
        Default 1 for integer and 1/255 for float frames.
    invert : bool
        True for dark features on a light background.
    percentile : float
        Peaks must be brighter than this percentile (0..100) of the non-zero
        band-passed pixels. Default 64.
    topn : int, optional
        Keep only the ``topn`` brightest features (by ``mass``).
    preprocess : bool
        Band-pass the frame first (default). False locates on the raw frame.
    max_iterations : int
        Most one-pixel moves of the mask during refinement. Default 10.
    characterize : bool
        Compute ``size, ecc, signal, raw_mass, ep`` (default).
    engine : {"auto", "numba", "python"}
        trackpy's keyword, accepted so trackpy calls run unchanged: every value runs
        daskloc's numba kernel, whose features equal trackpy's with either engine. An
        execution option, not a parameter of the features.
    **unknown
        Nothing else is taken: another name raises TypeError listing the parameters,
        and trackpy's ``filter_before``, ``filter_after`` say what to use instead.

    Returns
    -------
    pandas.DataFrame
        One row per feature, float64 columns ``y, x, mass, size, ecc, signal,
        raw_mass, ep`` (``y, x, mass`` when ``characterize=False``), trackpy's columns
        in every case: a 3-D stack adds ``z`` first; a per-axis ``diameter`` gives
        ``size_z, size_y, size_x`` and ``ep_z, ep_y, ep_x`` (``ep`` splits per axis
        also when only ``noise_size`` does); ``ecc`` is NaN in 3-D. The columns
        depend only on the image's dims and the parameters
        (:func:`daskloc.locate.job_columns`). Positions are in pixels (planes for
        ``z``) with the origin at the centre of the top-left pixel, ``y`` down.
        ``mass`` and ``signal`` are in band-passed intensity units (scaled back from
        the 8/16-bit working image as trackpy does), ``raw_mass`` in raw intensity
        units, ``size`` and ``ep`` in pixels, ``ecc`` dimensionless (0 = round).
        Rows are in raster order of the peaks (by ``z``, ``y``, then ``x``).

    Raises
    ------
    ValueError
        If ``diameter`` is not a positive odd integer, ``smoothing_size`` is not an
        odd integer larger than ``noise_size``, a per-axis value has another number
        of axes than ``image``, ``maxsize`` meets a per-axis ``diameter``, or
        ``image`` is neither 2-D nor 3-D, or is 3-D with at most 4 pixels along its
        last axis (a colour frame ``(y, x, channel)``: pick a channel first).
    TypeError
        If a parameter is not a number, or ``image`` is not an integer or float
        array.

    Warns
    -----
    UserWarning
        The frame holds NaN or infinite pixels (their number; they were filled).
        No features, in trackpy's words: "Image is completely black.", "Image
        contains no local maxima.", "All local maxima were in the margins.", "No
        maxima survived mass- and size-based filtering." (:func:`locate_stack` and
        :func:`daskloc.batch` gather these into one summary.)

    Notes
    -----
    The algorithm of Crocker & Grier (1996) as documented by trackpy
    (``trackpy.locate``): band pass, local maxima (no brighter pixel in a window of
    the separation's size, the peaks trackpy's grey dilation finds) above a
    percentile threshold away from the edges, iterative centre-of-mass refinement,
    removal of the dimmer of two features closer than ``separation``, mass/size
    filters, and characterisation; ``ep`` after Savin & Doyle (2005). Results match
    ``trackpy.locate`` on the same frame to well under 0.01 pixel. Where trackpy is
    inconsistent daskloc is not:

    - a frame without features gives the same float64 columns as any other frame
      (trackpy returns object columns and no ``ep``);
    - ``ep`` is NaN where the background-corrected mass is not positive (trackpy
      returns a negative, meaningless number);
    - ``topn`` keeps the rows in raster order (trackpy sorts them by mass);
    - NaN and infinite pixels (float frames only; integer frames cannot hold them and
      are not scanned) are treated as masked pixels: each is replaced by the median of
      its finite 3 x 3 neighbours, blocks of them filled from their edges inwards,
      exactly as ``mask=`` pixels are (:func:`daskloc.correct.fill_masked`), and a
      ``UserWarning`` gives their number. The features are those of the filled frame,
      ``ep`` stays finite; a frame with no finite pixel gives no features. (trackpy
      loses most features of a frame with a single NaN pixel, and every ``ep``, without
      a word.) Checking a float frame costs one :func:`numpy.isfinite` pass.

    3-D stacks and per-axis sizes take the same steps axis by axis, as trackpy's
    N-dimensional locate: separable band pass, the box inside the ellipsoid of
    ``separation`` for the maxima, an elliptical mask (``sum((d_i / r_i)**2) <= 1``),
    per-axis sizes ``sqrt(ndim * sum(d_i**2 I) / mass)`` and static errors
    ``noise / (raw_mass - N black) * noise_size_i * sqrt(sum d_i**2)``.

    References
    ----------
    .. [1] J. C. Crocker and D. G. Grier, "Methods of digital video microscopy for
       colloidal studies", J. Colloid Interface Sci. 179, 298-310 (1996).
    .. [2] T. Savin and P. S. Doyle, "Static and dynamic errors in particle tracking
       microrheology", Biophys. J. 88, 623-638 (2005).
    .. [3] trackpy documentation, ``trackpy.locate``, https://soft-matter.github.io/trackpy

    Examples
    --------
    >>> import numpy as np
    >>> from daskloc import locate_frame
    >>> yy, xx = np.mgrid[:64, :64]
    >>> frame = (200 * np.exp(-((yy - 30.3)**2 + (xx - 20.6)**2) / 8)).astype(np.uint8)
    >>> f = locate_frame(frame, 9)
    >>> f[["y", "x"]].iloc[0].round(1).tolist()
    [30.3, 20.6]
    """
    image = _check_frame(image)
    # per-axis values as given must fit the image: (7, 7) is refused for a volume
    p = normalize_params(
        diameter, ndim=image.ndim, minmass=minmass, maxsize=maxsize, separation=separation,
        noise_size=noise_size, smoothing_size=smoothing_size, threshold=threshold,
        invert=invert, percentile=percentile, topn=topn, preprocess=preprocess,
        max_iterations=max_iterations, characterize=characterize, **unknown,
    )
    check_engine(engine)
    values, n_bad, reason = _locate_filled(image, p)
    if n_bad:
        warnings.warn(nonfinite_message(n_bad, 1, where="locate_frame"), UserWarning,
                      stacklevel=2)
    if reason is not None:
        warnings.warn(NO_FEATURE_MESSAGES[reason], UserWarning, stacklevel=2)
    return _table(values, job_columns(p, image.ndim))


def locate_stack(frames, diameter, *, frame_numbers=None, **params):
    """Locate features in every frame of a stack and return one table.

    Parameters
    ----------
    frames : array_like, shape (n_frames, y, x) or (n_frames, z, y, x)
        Grey frames or 3-D stacks (integer or float), e.g. one dask chunk of a video.
    diameter : int or tuple of int
        Feature diameter, pixels (odd, or one per axis); see :func:`locate_frame`.
    frame_numbers : array_like of int, shape (n_frames,), optional
        Absolute frame number of each frame, written to ``frame``. Default
        ``0 .. n_frames - 1``.
    **params
        Any other parameter of :func:`locate_frame`.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`locate_frame` plus ``frame`` (int64), rows ordered by
        frame. Empty (with the same columns and dtypes) if no frame has features.

    Raises
    ------
    ValueError
        Bad parameters (see :func:`locate_frame`), ``frames`` neither 3-D nor 4-D,
        or ``frame_numbers`` of the wrong length.
    TypeError
        Non-numeric parameters or pixels.

    Warns
    -----
    UserWarning
        Once per call, when any frame holds NaN or infinite pixels: how many pixels in
        how many frames were filled. Once per call, when frames gave no features: how
        many, which, and why in trackpy's words (:func:`no_feature_message`), instead
        of trackpy's one warning per frame.

    Notes
    -----
    NaN and infinite pixels of float frames are filled frame by frame (each frame
    its own positions) as :func:`locate_frame` describes; a frame with no finite
    pixel gives no rows. :func:`locate_stack_counted` returns the counts instead of
    warning.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloc.locate import locate_stack
    >>> z, y, x = np.ogrid[:16, :40, :40]
    >>> stack = 200 * np.exp(-((z - 7)**2 / 2 + ((y - 20)**2 + (x - 19)**2) / 8))
    >>> f = locate_stack(stack[None].astype(np.uint8), (5, 9, 9))
    >>> f[["z", "y", "x"]].round(1).values.tolist()
    [[7.0, 20.0, 19.0]]
    >>> list(f.columns)[4:7]
    ['size_z', 'size_y', 'size_x']
    """
    features, n_pixels, n_frames, empty = locate_stack_counted(
        frames, diameter, frame_numbers=frame_numbers, **params)
    if n_pixels:
        warnings.warn(nonfinite_message(n_pixels, n_frames, where="locate_stack"),
                      UserWarning, stacklevel=2)
    if empty:
        warnings.warn(no_feature_message(empty, where="locate_stack",
                                         n_frames=len(np.asarray(frames))),
                      UserWarning, stacklevel=2)
    return features


def locate_stack_counted(frames, diameter, *, frame_numbers=None, **params):
    """:func:`locate_stack` without its warning: the features and the NaN counts.

    For callers that report NaN pixels themselves, once for many stacks
    (:func:`daskloc.batch`: once per job, from the counts of its chunk tasks).

    Parameters
    ----------
    frames, diameter, frame_numbers, **params
        As for :func:`locate_stack`.

    Returns
    -------
    features : pandas.DataFrame
        What :func:`locate_stack` returns.
    n_pixels : int
        NaN and infinite pixels filled (all pixels of a frame with no finite pixel
        included).
    n_frames : int
        Frames holding at least one of them.
    no_features : dict of int to str
        Frames that gave no features → why (a key of :data:`NO_FEATURE_MESSAGES`).

    Raises
    ------
    ValueError, TypeError
        As :func:`locate_stack`.
    """
    params, _ = split_options(params)
    frames = np.asarray(frames)
    if frames.ndim not in (3, 4):
        raise ValueError(
            "locate_stack takes frames of shape (n_frames, y, x) or stacks of shape "
            f"(n_frames, z, y, x); got shape {frames.shape}"
        )
    p = normalize_params(diameter, ndim=frames.ndim - 1, **params)
    if frame_numbers is None:
        frame_numbers = np.arange(len(frames), dtype=np.int64)
    frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
    if frame_numbers.shape != (len(frames),):
        raise ValueError(
            f"frame_numbers has {frame_numbers.size} entries for {len(frames)} frames"
        )
    columns = job_columns(p, frames.ndim - 1)
    parts, bad, empty = [], [], {}
    for number, image in zip(frame_numbers, frames):
        values, n, reason = _locate_filled(_check_frame(image), p)
        parts.append(values)
        bad.append(n)
        if reason is not None:
            empty[int(number)] = reason
    counts = [len(part) for part in parts]
    values = np.concatenate(parts) if parts else np.empty((0, len(columns)))
    features = _table(values, columns, np.repeat(frame_numbers, counts))
    return features, int(sum(bad)), int(np.count_nonzero(bad)), empty
