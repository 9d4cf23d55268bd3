"""locate_frame and locate_stack: the Crocker-Grier pipeline on one frame or a stack."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from daskloc.locate._params import check_engine, normalize_params, split_options
from daskloc.locate.fill import fill_masked
from daskloc.locate.maxima import close_to_drop, local_maxima
from daskloc.locate.preprocess import _bandpass_peak, invert, scale_to_integer
from daskloc.locate.refine import refine
from daskloc.locate.uncertainty import background_noise, static_error
from daskloc.schema import feature_columns


def _check_frame(image):
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(
            f"locate_frame takes one grey 2-D frame of shape (y, x); got shape {image.shape}. "
            "For colour video pick a channel (open_video(..., channel=0) or channel='grey'); "
            "for a stack of frames use locate_stack."
        )
    if image.dtype == np.bool_ or not (
        np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)
    ):
        raise TypeError(f"frame must hold integer or float pixels, got dtype {image.dtype}")
    return image


def _fill_nonfinite(image):
    """``(frame, n)``: the frame with its ``n`` NaN/infinite pixels filled as masked pixels.

    Integer frames are returned as they are (they cannot hold NaN: not scanned). A
    float frame costs one :func:`numpy.isfinite` pass when every pixel is finite; else
    its non-finite pixels are filled by :func:`~daskloc.locate.fill.fill_masked`
    (median of the finite 3 x 3 neighbours, blocks from their edges inwards). The
    frame is None when every pixel is non-finite (nothing to fill from, nothing to
    locate).
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
    return fill_masked(image, bad), n


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
            "before locating (frames with no finite pixel give no features). To avoid "
            f"this warning, {avoid}.")
    if per_video:
        text += " Per video: " + "; ".join(
            f"{name}: {_count(n, 'pixel')} in {_count(f, 'frame')}" for name, n, f in per_video
        ) + "."
    return text


def _count(n, noun):
    return f"{n} {noun}{'s' * (n != 1)}"


def _locate_filled(image, p):
    """``(values, n_nonfinite)``: :func:`_locate` on a validated frame whose NaN and
    infinite pixels are filled first (no rows for a frame with no finite pixel)."""
    filled, n = _fill_nonfinite(image)
    if filled is None:
        return np.empty((0, len(feature_columns(p["characterize"])))), n
    return _locate(filled, p), n


def _locate(image, p):
    """Locate on a validated 2-D frame with normalised parameters ``p``.

    Returns a float64 array of shape (n_features, n_columns), columns in the order of
    :func:`feature_columns` (tables are built once per call of the public functions)."""
    is_float = not np.issubdtype(image.dtype, np.integer)
    threshold = p["threshold"]
    if threshold is None:
        threshold = 1 / 255.0 if is_float else 1
    raw = invert(image) if p["invert"] else image
    target = np.uint8 if is_float else raw.dtype
    if p["preprocess"]:
        bp, peak = _bandpass_peak(raw, p["noise_size"], p["smoothing_size"], threshold)
        scale, scaled = scale_to_integer(bp, target, peak=peak)
    else:
        scale, scaled = scale_to_integer(raw, target)

    diameter = p["diameter"]
    radius = diameter // 2
    separation = p["separation"]
    margin = max(radius, int(separation // 2 - 1), int(p["smoothing_size"] // 2))
    # Peaks also keep ``radius`` from the edges whatever the parameters, for the mask.
    peaks = local_maxima(scaled, separation, p["percentile"], margin, radius)
    characterize = p["characterize"]
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
    if p["topn"] is not None and len(found) > p["topn"]:
        brightest = np.sort(np.argsort(found[:, 2], kind="stable")[-p["topn"]:])
        found = found[brightest]

    if not characterize:
        return np.ascontiguousarray(found[:, :3])
    out = np.empty((len(found), 8))
    out[:, :3] = found[:, :3]  # y, x, mass
    out[:, 3] = found[:, 4]  # size
    out[:, 4] = found[:, 5]  # ecc
    out[:, 5] = found[:, 6]  # signal
    out[:, 6] = found[:, 3]  # raw_mass
    if len(found):
        black_level, noise = background_noise(scaled, raw, radius)
        out[:, 7] = static_error(found[:, 3], black_level, noise, radius, p["noise_size"])
    return out


def _table(values, characterize, frames=None):
    """A feature DataFrame from a (n, n_columns) float64 array (plus int64 ``frame``)."""
    data = {c: values[:, i] for i, c in enumerate(feature_columns(characterize))}
    if frames is not None:
        data["frame"] = frames
    return pd.DataFrame(data, copy=False)


def locate_frame(image, diameter, *, minmass=None, maxsize=None, separation=None,
                 noise_size=1, smoothing_size=None, threshold=None, invert=False,
                 percentile=64, topn=None, preprocess=True, max_iterations=10,
                 characterize=True, engine="auto", **unknown):
    """Locate Gaussian-like features (particles) in one frame, Crocker-Grier style.

    Parameters
    ----------
    image : array_like, shape (y, x), integer or float
        One grey frame. Integer frames keep their dtype's range (uint8: 0..255);
        float frames are taken to span 0..1 (as in trackpy). NaN and infinite pixels
        are filled as masked pixels (see Notes).
    diameter : int
        Approximate feature diameter in pixels; odd (round up when in doubt). Sets
        the mask (radius ``diameter // 2``) for refinement and characterisation.
    minmass : float, optional
        Keep features whose ``mass`` is greater than this (band-passed intensity
        units, as trackpy reports them). Default 0.
    maxsize : float, optional
        Keep features whose ``size`` (radius of gyration, pixels) is below this.
    separation : float, optional
        Minimum distance between features, pixels. Default ``diameter + 1``.
    noise_size : float
        Standard deviation of the Gaussian low pass, pixels. Default 1.
    smoothing_size : int, optional
        Side of the boxcar background, pixels (odd). Default ``diameter``.
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
        raw_mass, ep`` (``y, x, mass`` when ``characterize=False``). Positions are
        in pixels with the origin at the centre of the top-left pixel, ``y`` down.
        ``mass`` and ``signal`` are in band-passed intensity units (scaled back from
        the 8/16-bit working image as trackpy does), ``raw_mass`` in raw intensity
        units, ``size`` and ``ep`` in pixels, ``ecc`` dimensionless (0 = round).
        Rows are in raster order of the peaks (by ``y``, then ``x``).

    Raises
    ------
    ValueError
        If ``diameter`` is not a positive odd integer, ``smoothing_size`` is not an
        odd integer larger than ``noise_size``, or ``image`` is not 2-D (colour
        frames need a channel chosen first).
    TypeError
        If a parameter is not a number, or ``image`` is not an integer or float
        array.

    Warns
    -----
    UserWarning
        The frame holds NaN or infinite pixels (their number; they were filled).

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

    Only 2-D frames are supported (no volumes, no anisotropic diameters).

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
    p = normalize_params(
        diameter, minmass=minmass, maxsize=maxsize, separation=separation,
        noise_size=noise_size, smoothing_size=smoothing_size, threshold=threshold,
        invert=invert, percentile=percentile, topn=topn, preprocess=preprocess,
        max_iterations=max_iterations, characterize=characterize, **unknown,
    )
    check_engine(engine)
    values, n_bad = _locate_filled(_check_frame(image), p)
    if n_bad:
        warnings.warn(nonfinite_message(n_bad, 1, where="locate_frame"), UserWarning,
                      stacklevel=2)
    return _table(values, p["characterize"])


def locate_stack(frames, diameter, *, frame_numbers=None, **params):
    """Locate features in every frame of a stack and return one table.

    Parameters
    ----------
    frames : array_like, shape (n_frames, y, x)
        Grey frames (integer or float), e.g. one dask chunk of a video.
    diameter : int
        Feature diameter, pixels (odd); see :func:`locate_frame`.
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
        Bad parameters (see :func:`locate_frame`), ``frames`` not 3-D, or
        ``frame_numbers`` of the wrong length.
    TypeError
        Non-numeric parameters or pixels.

    Warns
    -----
    UserWarning
        Once per call, when any frame holds NaN or infinite pixels: how many pixels in
        how many frames were filled.

    Notes
    -----
    NaN and infinite pixels of float frames are filled frame by frame (each frame
    its own positions) as :func:`locate_frame` describes; a frame with no finite
    pixel gives no rows. :func:`locate_stack_counted` returns the counts instead of
    warning.
    """
    features, n_pixels, n_frames = locate_stack_counted(
        frames, diameter, frame_numbers=frame_numbers, **params)
    if n_pixels:
        warnings.warn(nonfinite_message(n_pixels, n_frames, where="locate_stack"),
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

    Raises
    ------
    ValueError, TypeError
        As :func:`locate_stack`.
    """
    params, _ = split_options(params)
    p = normalize_params(diameter, **params)
    frames = np.asarray(frames)
    if frames.ndim != 3:
        raise ValueError(
            f"locate_stack takes frames of shape (n_frames, y, x); got shape {frames.shape}"
        )
    if frame_numbers is None:
        frame_numbers = np.arange(len(frames), dtype=np.int64)
    frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
    if frame_numbers.shape != (len(frames),):
        raise ValueError(
            f"frame_numbers has {frame_numbers.size} entries for {len(frames)} frames"
        )
    parts, bad = [], []
    for image in frames:
        values, n = _locate_filled(_check_frame(image), p)
        parts.append(values)
        bad.append(n)
    counts = [len(part) for part in parts]
    ncols = len(feature_columns(p["characterize"]))
    values = np.concatenate(parts) if parts else np.empty((0, ncols))
    features = _table(values, p["characterize"], np.repeat(frame_numbers, counts))
    return features, int(sum(bad)), int(np.count_nonzero(bad))
