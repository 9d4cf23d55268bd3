"""Synthetic microscopy videos with known particle positions.

Used by ``daskloc demo`` and by the tests of the locate kernel: every video comes with
its ground truth, so a locator can be scored (recall, position error) without shipping
data. :func:`write_video` writes a video to a movie or TIFF file so that the file
readers can be exercised the same way.

Conventions (the same as the feature tables): positions are ``(y, x)`` in pixels, with
the origin at the *centre* of the top-left pixel, ``y`` pointing down. A pixel ``(i, j)``
covers ``[i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]``.

Examples
--------
>>> from daskloc.synthetic import make_video
>>> video, truth = make_video(n_frames=3, shape=(64, 64), n_particles=4, seed=1)
>>> video.shape, video.dtype
((3, 64, 64), dtype('uint8'))
>>> list(truth.columns), len(truth)
(['frame', 'particle', 'y', 'x'], 12)
"""

from __future__ import annotations

import math
import numbers
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import erf

__all__ = ["make_frame", "make_video", "random_walks", "spot_sigma", "write_video"]

#: Ratio ``diameter / sigma`` of the Gaussian spots. With ``sigma = diameter / 5`` the
#: locate mask radius (``diameter / 2``) is 2.5 standard deviations (~96 % of a spot's
#: mass). Measured with trackpy 0.7 on noise-free spots, ``diameter=9``: mean position
#: error 0.006 px for ``diameter / 5`` against 0.022 px for ``diameter / 4`` (trackpy's
#: band pass and mask cut the wider spot's tails unevenly); both find every particle.
DIAMETER_PER_SIGMA = 5.0

#: File extensions written as H.264 movies by :func:`write_video`.
MOVIE_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi")
#: File extensions written as multi-page TIFF by :func:`write_video`.
TIFF_EXTENSIONS = (".tif", ".tiff")

_TRUTH_COLUMNS = ("frame", "particle", "y", "x")


def spot_sigma(diameter):
    """Standard deviation (pixels) of the Gaussian spot drawn for a given ``diameter``.

    Parameters
    ----------
    diameter : float
        Particle diameter in pixels (as passed to ``locate``).

    Returns
    -------
    float
        ``diameter / 5`` (see :data:`DIAMETER_PER_SIGMA`).
    """
    return float(diameter) / DIAMETER_PER_SIGMA


# --------------------------------------------------------------------------- checks


def _check_shape(shape, ndims=(2,)):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a pair of ints (height, width), got {shape!r}") from None
    if len(shape) not in ndims or min(shape) < 1:
        what = "two positive ints (height, width)"
        if 3 in ndims:
            what += " or three (z, height, width)"
        raise ValueError(f"shape must be {what}, got {shape!r}")
    return shape


def _check_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":
        raise ValueError(
            f"dtype must be an integer or floating-point type (e.g. 'uint8', 'uint16', "
            f"'float32'), got {dtype}"
        )
    return dtype


def _check_nonneg(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return float(value)


def _check_positive(name, value):
    value = _check_nonneg(name, value)
    if value == 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _check_brightness(brightness, n):
    b = np.asarray(brightness, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(n, float(b))
    if b.shape != (n,):
        raise ValueError(
            f"brightness must be a number or one value per particle (shape ({n},)), "
            f"got shape {b.shape}"
        )
    if not np.all(np.isfinite(b)):
        raise ValueError("brightness must be finite")
    return b


# ------------------------------------------------------------------------ rendering


def _profile_1d(lo, hi, centre, sigma):
    """Gaussian of unit peak integrated over each pixel ``lo..hi-1`` (pixel widths)."""
    edges = (np.arange(lo, hi + 1, dtype=np.float64) - 0.5 - centre) / (sigma * math.sqrt(2.0))
    cdf = erf(edges)
    return (cdf[1:] - cdf[:-1]) * (sigma * math.sqrt(math.pi / 2.0))


def _render_nd(shape, positions, sigmas, amplitudes):
    """:func:`_render` for 3-D images and per-axis sigmas (separable: one profile per axis)."""
    image = np.zeros(shape, dtype=np.float64)
    reach = [int(math.ceil(6.0 * s)) + 1 for s in sigmas]
    for p, a in zip(positions, amplitudes):
        if a == 0 or not np.all(np.isfinite(p)):
            continue
        box, profile = [], None
        for c, s, r, n in zip(p, sigmas, reach, shape):
            lo, hi = max(int(round(c)) - r, 0), min(int(round(c)) + r + 1, n)
            if lo >= hi:
                break
            box.append(slice(lo, hi))
            g = _profile_1d(lo, hi, c, s)
            profile = g if profile is None else np.multiply.outer(profile, g)
        else:
            image[tuple(box)] += a * profile
    return image


def _render(shape, positions, sigma, amplitudes):
    """Sum of pixel-integrated Gaussian spots on a zero float64 image."""
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(shape),))
    if len(shape) != 2 or sigmas[0] != sigmas[1]:
        return _render_nd(shape, positions, tuple(sigmas), amplitudes)
    sigma = float(sigmas[0])
    image = np.zeros(shape, dtype=np.float64)
    reach = int(math.ceil(6.0 * sigma)) + 1
    h, w = shape
    for (y, x), a in zip(positions, amplitudes):
        if a == 0 or not (np.isfinite(y) and np.isfinite(x)):
            continue
        cy, cx = int(round(y)), int(round(x))
        y0, y1 = max(cy - reach, 0), min(cy + reach + 1, h)
        x0, x1 = max(cx - reach, 0), min(cx + reach + 1, w)
        if y0 >= y1 or x0 >= x1:
            continue
        gy = _profile_1d(y0, y1, y, sigma)
        gx = _profile_1d(x0, x1, x, sigma)
        image[y0:y1, x0:x1] += a * np.outer(gy, gx)
    return image


def _finish(spots, *, brightness_max, background, noise, invert, shot_noise, dtype, rng):
    """Spots (float, >= 0) -> background, inversion, noise, clipping, cast."""
    if invert:
        ideal = (background + brightness_max) - spots
    else:
        ideal = background + spots
    if shot_noise:
        ideal = rng.poisson(np.clip(ideal, 0, None)).astype(np.float64)
    if noise > 0:
        ideal = ideal + rng.normal(0.0, noise, size=ideal.shape)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return np.clip(np.rint(ideal), info.min, info.max).astype(dtype)
    return np.clip(ideal, 0, None).astype(dtype)


def make_frame(
    shape,
    positions,
    diameter,
    *,
    brightness=200,
    background=20,
    noise=0.0,
    invert=False,
    dtype="uint8",
    sigma=None,
    shot_noise=False,
    seed=0,
):
    """Draw one frame (or one 3-D stack) of Gaussian spots at sub-pixel positions.

    Each spot is a Gaussian of standard deviation ``sigma`` (per axis) and peak
    ``brightness`` (above ``background``), integrated over the area (volume) of each
    pixel, so that its centroid is exactly the given position and its integrated
    intensity (mass) is ``2 * pi * sigma**2 * brightness`` in 2-D whatever the
    sub-pixel offset. Spots add up where they overlap; spots partly or wholly outside
    the frame are cut off.

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the frame, or ``(z, height, width)`` of a 3-D stack,
        pixels.
    positions : array_like, shape (N, 2) or (N, 3)
        Spot centres ``(y, x)`` (or ``(z, y, x)``) in pixels, origin at the centre of
        the top-left pixel. N may be 0.
    diameter : float or tuple of float
        Particle diameter in pixels (per axis for anisotropic spots, e.g. a confocal
        stack's ``(5, 11, 11)``); sets ``sigma = diameter / 5`` unless ``sigma`` is
        given.
    brightness : float or array_like of shape (N,), optional
        Peak intensity of each spot above the background (intensity units of ``dtype``).
    background : float, optional
        Background level (intensity units).
    noise : float, optional
        Standard deviation of additive Gaussian (read) noise, intensity units. 0 for a
        noise-free frame (only rounding to an integer ``dtype``).
    invert : bool, optional
        Dark particles on a light background: the frame is
        ``background + max(brightness) - spots``, so the background sits at
        ``background + max(brightness)`` and spot centres dip towards ``background``.
    dtype : str or numpy.dtype, optional
        Output dtype. Integer types are rounded and clipped to their range; float types
        are clipped at 0.
    sigma : float or tuple of float, optional
        Standard deviation of the spots in pixels (per axis). Default ``diameter / 5``.
    shot_noise : bool, optional
        Draw each pixel from a Poisson distribution of mean the noise-free value (in
        intensity units taken as photon counts) before adding the Gaussian noise.
    seed : int, numpy.random.Generator or None, optional
        Seed of ``numpy.random.default_rng`` for the noise.

    Returns
    -------
    numpy.ndarray, shape ``shape``, dtype ``dtype``

    Raises
    ------
    ValueError
        If ``shape`` is not two or three positive ints, ``positions`` is not
        ``(N, len(shape))``, a size or
        level is negative (or ``diameter``/``sigma`` not positive), ``brightness`` has the
        wrong length, or ``dtype`` is not an integer or float type.
    TypeError
        If a numeric parameter is not a number.

    Examples
    --------
    >>> frame = make_frame((32, 32), [[10.0, 12.0]], diameter=9)
    >>> frame.shape, frame.dtype
    ((32, 32), dtype('uint8'))
    >>> int(frame[0, 0]), int(frame[10, 12])  # background, peak (pixel-averaged)
    (20, 215)
    >>> make_frame((16, 32, 32), [[8.0, 10.0, 12.0]], diameter=(5, 9, 9)).shape
    (16, 32, 32)
    """
    shape = _check_shape(shape, (2, 3))
    ndim = len(shape)
    positions = np.asarray(positions, dtype=np.float64)
    if positions.size == 0:
        positions = positions.reshape(0, ndim)
    if positions.ndim != 2 or positions.shape[1] != ndim:
        axes = "(y, x)" if ndim == 2 else "(z, y, x)"
        raise ValueError(f"positions must have shape (N, {ndim}) {axes}, got {positions.shape}")

    def per_axis(name, value):
        values = value if np.iterable(value) else (value,)
        values = tuple(_check_positive(name, v) for v in values)
        if len(values) not in (1, ndim):
            raise ValueError(f"{name} takes one number or {ndim} (one per axis), "
                             f"got {value!r}")
        return values[0] if len(set(values)) == 1 else values

    diameter = per_axis("diameter", diameter)
    if sigma is None:
        sigma = (spot_sigma(diameter) if not isinstance(diameter, tuple)
                 else tuple(spot_sigma(d) for d in diameter))
    else:
        sigma = per_axis("sigma", sigma)
    amplitudes = _check_brightness(brightness, len(positions))
    background = _check_nonneg("background", background)
    noise = _check_nonneg("noise", noise)
    dtype = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    spots = _render(shape, positions, sigma, amplitudes)
    return _finish(
        spots,
        brightness_max=float(amplitudes.max(initial=0.0)),
        background=background,
        noise=noise,
        invert=invert,
        shot_noise=shot_noise,
        dtype=dtype,
        rng=rng,
    )


# ---------------------------------------------------------------------- trajectories


def _initial_positions(rng, n, lo, hi, min_distance, max_tries=2000):
    """Random sequential placement in the box ``lo..hi`` with pairwise ``min_distance``."""
    placed = np.empty((n, 2), dtype=np.float64)
    count = 0
    batch = 64
    d2 = min_distance**2
    for _ in range(max_tries):
        if count == n:
            break
        cand = rng.uniform(lo, hi, size=(batch, 2))
        for c in cand:
            if count and np.min(np.sum((placed[:count] - c) ** 2, axis=1)) < d2:
                continue
            placed[count] = c
            count += 1
            if count == n:
                break
    if count < n:
        raise ValueError(
            f"could not place {n} particles at least {min_distance:g} px apart in a "
            f"{hi[0] - lo[0]:g} x {hi[1] - lo[1]:g} px area (placed {count}); use fewer "
            "particles, a smaller diameter or a larger shape"
        )
    return placed


def _reflect(values, lo, hi):
    """Fold ``values`` into ``[lo, hi]`` by reflection at both walls (any step size)."""
    span = hi - lo
    period = np.where(span > 0, 2 * span, 1.0)
    v = np.mod(values - lo, period)
    folded = lo + np.where(v > span, period - v, v)
    return np.where(span > 0, folded, lo)


def make_video(
    n_frames=200,
    shape=(256, 256),
    n_particles=40,
    diameter=9,
    *,
    brightness=200,
    background=20,
    noise=5.0,
    diffusion=0.5,
    invert=False,
    dtype="uint8",
    seed=0,
    sigma=None,
    shot_noise=False,
):
    """A synthetic video of Brownian particles, with the true positions.

    Particles start at random positions at least ``diameter`` pixels from every edge and
    at least ``1.5 * diameter`` from each other, then take independent Gaussian steps
    each frame, reflected at the walls of the box that keeps them ``diameter`` from the
    edges. Later frames may have overlapping particles; the truth still lists every
    particle at its true position. Each frame is drawn by :func:`make_frame`.

    Parameters
    ----------
    n_frames : int, optional
        Number of frames (>= 0).
    shape : tuple of int, optional
        ``(height, width)`` of each frame, pixels.
    n_particles : int, optional
        Number of particles (>= 0); the same particles are in every frame.
    diameter : float, optional
        Particle diameter in pixels (spots have ``sigma = diameter / 5``); use the same
        value (odd) for ``locate``.
    brightness : float or array_like of shape (n_particles,), optional
        Peak spot intensity above background, intensity units.
    background : float, optional
        Background level, intensity units.
    noise : float, optional
        Standard deviation of the additive Gaussian noise, intensity units.
    diffusion : float, optional
        Standard deviation of each coordinate's step between consecutive frames, pixels
        (so the 2-D rms step is ``diffusion * sqrt(2)``). 0 for static particles.
    invert : bool, optional
        Dark particles on a light background (see :func:`make_frame`).
    dtype : str or numpy.dtype, optional
        Output dtype (integers are rounded and clipped to their range).
    seed : int, numpy.random.Generator or None, optional
        Seed of ``numpy.random.default_rng``; the same seed gives the same video and truth.
    sigma : float, optional
        Spot standard deviation in pixels, default ``diameter / 5``.
    shot_noise : bool, optional
        Add Poisson noise before the Gaussian noise (see :func:`make_frame`).

    Returns
    -------
    video : numpy.ndarray, shape (n_frames, height, width), dtype ``dtype``
    truth : pandas.DataFrame
        ``n_frames * n_particles`` rows sorted by ``frame`` then ``particle``, columns
        ``frame`` (int64), ``particle`` (int64, 0..n_particles-1), ``y``, ``x`` (float64,
        pixels, origin at the centre of the top-left pixel). ``truth.attrs`` holds the
        generation parameters (``diameter``, ``sigma``, ``seed``, ...).

    Raises
    ------
    ValueError
        If a count is negative, the frame is too small to keep particles ``diameter``
        from the edges, the particles cannot be placed ``1.5 * diameter`` apart, or any
        check of :func:`make_frame` fails.
    TypeError
        If a numeric parameter is not a number.

    Notes
    -----
    Random draws, in order, from one ``default_rng(seed)``: initial positions, all steps,
    then per-frame noise. Changing ``noise`` therefore never changes the trajectories.
    """
    n_frames = int(n_frames)
    n_particles = int(n_particles)
    if n_frames < 0 or n_particles < 0:
        raise ValueError(
            f"n_frames and n_particles must be >= 0, got {n_frames} and {n_particles}"
        )
    shape = _check_shape(shape)
    diameter = _check_positive("diameter", diameter)
    sigma = spot_sigma(diameter) if sigma is None else _check_positive("sigma", sigma)
    diffusion = _check_nonneg("diffusion", diffusion)
    amplitudes = _check_brightness(brightness, n_particles)
    background = _check_nonneg("background", background)
    noise = _check_nonneg("noise", noise)
    dtype = _check_dtype(dtype)

    lo = np.array([diameter, diameter])
    hi = np.array([shape[0] - 1 - diameter, shape[1] - 1 - diameter], dtype=np.float64)
    if n_particles and np.any(hi < lo):
        raise ValueError(
            f"shape {shape} is too small to keep particles {diameter:g} px (one diameter) "
            f"from the edges: each side must be at least {int(2 * diameter) + 1} px"
        )
    rng = np.random.default_rng(seed)
    start = _initial_positions(rng, n_particles, lo, hi, 1.5 * diameter)
    steps = rng.normal(0.0, diffusion, size=(max(n_frames - 1, 0), n_particles, 2))
    if n_frames:
        traj = np.concatenate([start[None], start[None] + np.cumsum(steps, axis=0)])
        traj = _reflect(traj, lo, hi)  # folding the free walk: a reflected walk (equal in law)
    else:
        traj = np.empty((0, n_particles, 2))

    video = np.empty((n_frames, *shape), dtype=dtype)
    b_max = float(amplitudes.max(initial=0.0))
    for t in range(n_frames):
        spots = _render(shape, traj[t], sigma, amplitudes)
        video[t] = _finish(
            spots,
            brightness_max=b_max,
            background=background,
            noise=noise,
            invert=invert,
            shot_noise=shot_noise,
            dtype=dtype,
            rng=rng,
        )

    truth = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(n_frames, dtype=np.int64), n_particles),
            "particle": np.tile(np.arange(n_particles, dtype=np.int64), n_frames),
            "y": traj[..., 0].reshape(-1).astype(np.float64),
            "x": traj[..., 1].reshape(-1).astype(np.float64),
        },
        columns=list(_TRUTH_COLUMNS),
    )
    truth.attrs.update(
        diameter=diameter,
        sigma=sigma,
        brightness=b_max,
        background=background,
        noise=noise,
        diffusion=diffusion,
        invert=bool(invert),
        dtype=str(dtype),
        seed=seed if isinstance(seed, (int, type(None))) else None,
    )
    return video, truth


# -------------------------------------------------------------------------- writing


def write_video(path, video, fps=24, *, crf=10, pix_fmt="yuv420p"):
    """Write a video to a movie (H.264 via PyAV) or a multi-page TIFF, chosen by extension.

    Parameters
    ----------
    path : str or os.PathLike
        Output file. ``.mp4``, ``.mov``, ``.mkv``, ``.avi``: H.264 movie (lossy);
        ``.tif``, ``.tiff``: multi-page TIFF, one page per frame (lossless, any dtype).
        An existing file is overwritten.
    video : array_like, shape (n_frames, height, width) or (n_frames, height, width, 3)
        Grey or RGB frames. Movies need ``uint8`` and at least one frame.
    fps : float, optional
        Frame rate, frames per second (e.g. ``24`` or ``24000 / 1001``). Stored in the movie
        container; ignored for TIFF.
    crf : int, optional
        x264 constant rate factor, 0..51: lower is closer to the input and larger (23 is
        x264's default). Movies only. Measured on a noisy grey 8-bit video (noise 5): mean
        absolute pixel error after decoding about 0.6 at ``crf=0``, 1.0 at 10, 2.1 at 17,
        4.0 at 23 (``yuv420p``; the grey levels also go through the limited 16..235 range).
    pix_fmt : {"yuv420p", "yuv444p"}, optional
        Pixel format of the encoded movie: ``"yuv420p"`` (what cameras and players use;
        needs an even height and width) or ``"yuv444p"`` (any size, High 4:4:4 profile).
        Movies only. (x264's ``"gray"`` is not offered: decoders read it back with the
        wrong range, about 15 grey levels off.)

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ValueError
        If the extension is not supported, ``video`` does not have one of the shapes
        above, a movie is asked for with a dtype other than ``uint8``, no frames, odd
        dimensions with ``yuv420p`` or another ``pix_fmt``, or ``fps`` or ``crf`` is out
        of range.
    """
    path = Path(os.fspath(path))
    ext = path.suffix.lower()
    video = np.asarray(video)
    if video.ndim not in (3, 4) or (video.ndim == 4 and video.shape[-1] != 3):
        raise ValueError(
            "video must have shape (n_frames, height, width) or (n_frames, height, width, 3), "
            f"got {video.shape}"
        )
    if ext in TIFF_EXTENSIONS:
        import tifffile

        # one series of one page per frame (also for a single frame)
        tifffile.imwrite(path, video, photometric="rgb" if video.ndim == 4 else "minisblack")
        return path
    if ext not in MOVIE_EXTENSIONS:
        raise ValueError(
            f"cannot write {path.name!r}: extension {ext or '(none)'!r} is not one of "
            f"{', '.join(MOVIE_EXTENSIONS + TIFF_EXTENSIONS)}"
        )
    if video.dtype != np.uint8:
        raise ValueError(
            f"movies need uint8 frames, got {video.dtype}; scale the video or write a TIFF"
        )
    if len(video) == 0:
        raise ValueError("cannot write a movie with no frames")
    if pix_fmt not in ("yuv420p", "yuv444p"):
        raise ValueError(f"pix_fmt must be 'yuv420p' or 'yuv444p', got {pix_fmt!r}")
    if isinstance(crf, bool) or not isinstance(crf, numbers.Integral) or not 0 <= crf <= 51:
        raise ValueError(f"crf must be an integer from 0 to 51, got {crf!r}")
    height, width = video.shape[1:3]
    if pix_fmt == "yuv420p" and (height % 2 or width % 2):
        raise ValueError(
            f"yuv420p needs an even height and width, got {height} x {width}; crop the "
            "video or use pix_fmt='yuv444p'"
        )
    fps = _check_positive("fps", fps)
    rate = Fraction(fps).limit_denominator(1001)

    import av

    in_format = "rgb24" if video.ndim == 4 else "gray"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width = width
        stream.height = height
        stream.pix_fmt = pix_fmt
        stream.options = {"crf": str(int(crf))}
        for frame in video:
            av_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=in_format)
            for packet in stream.encode(av_frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def random_walks(n_frames, n_particles, shape=(512, 512), *, step=1.0, drift=0.0,
                 blink=0.0, first_frame=0, seed=0):
    """Features of particles in Brownian motion with drift, some blinking: inputs to link.

    Positions are generated directly (no images): for the tests and benchmarks of
    linking, where what matters is the trajectories, with crossings at high density.

    Parameters
    ----------
    n_frames : int
        Frames, numbered ``first_frame ..``.
    n_particles : int
        Particles at any time (a particle leaving the field is replaced by a new one at
        a random place, as particles enter and leave a microscope's view).
    shape : tuple of int
        The field, pixels: ``(ny, nx)`` for 2-D, ``(nz, ny, nx)`` for 3-D positions.
    step : float or tuple of float
        Standard deviation of one frame's displacement per axis, pixels.
    drift : float or tuple of float
        Mean displacement per frame, pixels: one for every axis, or one per axis.
    blink : float
        Probability that a feature is missing from a frame (then the particle continues
        unseen: linking needs ``memory``).
    first_frame : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        ``z`` (3-D only), ``y``, ``x`` (float64, pixels), ``mass`` (float64), ``frame``
        (int64) and ``truth`` (int64: the particle's true number), sorted by frame.

    Examples
    --------
    >>> df = random_walks(5, 10, seed=1)
    >>> list(df.columns), int(df.frame.max())
    (['y', 'x', 'mass', 'frame', 'truth'], 4)
    """
    import pandas as pd

    shape = tuple(float(v) for v in shape)
    ndim = len(shape)
    if ndim not in (2, 3):
        raise ValueError(f"shape must be (ny, nx) or (nz, ny, nx), got {shape!r}")
    drift = np.broadcast_to(np.asarray(drift, dtype=np.float64), (ndim,))
    step = np.broadcast_to(np.asarray(step, dtype=np.float64), (ndim,))
    rng = np.random.default_rng(seed)
    size = np.array(shape)
    pos = rng.random((n_particles, ndim)) * size
    ids = np.arange(n_particles, dtype=np.int64)
    next_id = n_particles
    parts = []
    for t in range(n_frames):
        seen = rng.random(n_particles) >= blink
        part = {"pos": pos[seen].copy(), "truth": ids[seen].copy(),
                "frame": np.full(int(seen.sum()), first_frame + t, dtype=np.int64)}
        parts.append(part)
        pos = pos + drift + rng.normal(0.0, 1.0, pos.shape) * step
        out = np.any((pos < 0) | (pos >= size), axis=1)
        n_out = int(out.sum())
        if n_out:
            pos[out] = rng.random((n_out, ndim)) * size
            ids[out] = np.arange(next_id, next_id + n_out)
            next_id += n_out
    allpos = np.concatenate([p["pos"] for p in parts]) if parts else np.empty((0, ndim))
    names = ["z", "y", "x"][3 - ndim:]
    df = pd.DataFrame({n: allpos[:, i] for i, n in enumerate(names)})
    df["mass"] = rng.uniform(100.0, 1000.0, len(df))
    df["frame"] = np.concatenate([p["frame"] for p in parts]) if parts else \
        np.empty(0, np.int64)
    df["truth"] = np.concatenate([p["truth"] for p in parts]) if parts else \
        np.empty(0, np.int64)
    return df
