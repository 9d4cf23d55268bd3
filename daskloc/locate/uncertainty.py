"""Background noise and the static error ``ep`` of feature positions.

Method: Savin & Doyle, Biophys. J. 88, 623 (2005), "Static and dynamic errors in
particle tracking microrheology", Appendix (Fig. C): the background is every pixel
farther than the feature radius from any non-zero pixel of the band-passed image;
its mean is the black level and its standard deviation the noise. Then
``ep = noise / (raw_mass - N * black_level) * noise_size * sqrt(sum_{mask} dx**2)``,
with ``N`` the number of mask pixels.
"""

from __future__ import annotations

import numba
import numpy as np

from daskloc.locate.refine import circular_mask


@numba.njit(cache=True, nogil=True)
def _row_counts(bp, pad, counts):
    # counts[y, pad + k] = number of non-zero pixels in bp[y, :k], k clamped to 0..nx
    # (so the count over columns a..b of a row is counts[y, pad + b + 1] - counts[y, pad + a],
    # for any a, b up to pad beyond the edges, without bounds checks).
    ny, nx = bp.shape
    for y in range(ny):
        for k in range(pad):
            counts[y, k] = 0
        c = 0
        for x in range(nx):
            counts[y, pad + x] = c
            c += bp[y, x] != 0
        for k in range(pad + nx, nx + 2 * pad + 1):
            counts[y, k] = c
    return counts


@numba.njit(cache=True, nogil=True)
def _background_stats(bp, raw, radius, half_widths, counts):
    # A pixel is background when no non-zero pixel of the band-passed frame lies in
    # the circular mask around it: for every row offset j of the mask, row y + j has no
    # non-zero pixel within the mask's half-width there. Rows are processed whole so
    # the comparisons vectorise.
    ny, nx = bp.shape
    pad = radius + 1
    _row_counts(bp, pad, counts)
    fg = np.empty(nx, dtype=np.uint8)
    count = 0
    total = 0.0
    total2 = 0.0
    shift = float(raw[0, 0])  # shifted sums keep the variance accurate for float frames
    for y in range(ny):
        fg[:] = 0
        for j in range(-radius, radius + 1):
            yy = y + j
            if 0 <= yy < ny:
                hw = half_widths[j + radius]
                upper = counts[yy, pad + hw + 1 : pad + hw + 1 + nx]
                lower = counts[yy, pad - hw : pad - hw + nx]
                for x in range(nx):
                    fg[x] |= np.uint8(upper[x] > lower[x])
        for x in range(nx):
            if fg[x] == 0:
                v = float(raw[y, x]) - shift
                count += 1
                total += v
                total2 += v * v
    if count == 0:
        return 0, np.nan, np.nan
    mean = total / count
    if count == 1:
        return 1, mean + shift, np.nan
    var = max(total2 / count - mean * mean, 0.0)
    return count, mean + shift, np.sqrt(var)


def background_noise(bandpassed, raw, radius):
    """Mean and standard deviation of the raw frame away from all features.

    Parameters
    ----------
    bandpassed : numpy.ndarray, shape (y, x)
        The (scaled) band-passed frame; its non-zero pixels mark signal.
    raw : numpy.ndarray, shape (y, x)
        The raw (inverted if needed) frame, in its own intensity units.
    radius : int
        Feature radius, pixels: background lies farther than this from signal.

    Returns
    -------
    black_level, noise : float
        Mean and (population) standard deviation of ``raw`` over the background;
        NaN when there is no background (noise is also NaN with a single pixel).
    """
    r = int(radius)
    dy, dx, _, _, _ = circular_mask(r)
    # Half-width of each row of the (symmetric) mask, read off the mask itself.
    half_widths = np.zeros(2 * r + 1, dtype=np.int64)
    np.maximum.at(half_widths, dy, np.abs(dx - r))
    # 16-bit counts (rows are far shorter than 65535 pixels) halve the memory the
    # comparisons stream through, so twice as many fit a vector register.
    ny, nx = bandpassed.shape
    dtype = np.uint16 if nx + 2 * (r + 1) + 1 < 65535 else np.int64
    counts = np.empty((ny, nx + 2 * (r + 1) + 1), dtype=dtype)
    _, mean, std = _background_stats(bandpassed, raw, r, half_widths, counts)
    return mean, std


def static_error(raw_mass, black_level, noise, radius, noise_size):
    """Static error ``ep`` of each feature's position, pixels.

    Parameters
    ----------
    raw_mass : numpy.ndarray, float64, shape (n,)
        Raw brightness summed over each feature's mask.
    black_level, noise : float
        From :func:`background_noise`.
    radius : int
        Mask radius, pixels.
    noise_size : float
        Noise correlation length (the low-pass sigma), pixels.

    Returns
    -------
    numpy.ndarray, float64, shape (n,)
        ``ep`` in pixels. Where the background-corrected mass is not positive the
        estimate is meaningless and NaN is returned (trackpy reports a negative
        number there).
    """
    dy, dx, r2, _, _ = circular_mask(int(radius))
    n_px = len(dx)
    moment = np.sqrt(np.sum((dx - int(radius)) ** 2.0))
    mass = np.asarray(raw_mass, dtype=np.float64) - n_px * black_level
    with np.errstate(divide="ignore", invalid="ignore"):
        ep = noise / mass * noise_size * moment
    ep[~(mass > 0)] = np.nan
    return ep
