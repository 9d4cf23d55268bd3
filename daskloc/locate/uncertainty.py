"""Background noise and the static error ``ep`` of feature positions.

Method: Savin & Doyle, Biophys. J. 88, 623 (2005), "Static and dynamic errors in
particle tracking microrheology", Appendix (Fig. C): the background is every pixel
farther than the feature radius from any non-zero pixel of the band-passed image;
its mean is the black level and its standard deviation the noise. Then
``ep = noise / (raw_mass - N * black_level) * noise_size * sqrt(sum_{mask} dx**2)``,
with ``N`` the number of mask pixels.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

from daskloc.locate._scratch import scratch
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
def _foreground_row(counts, y, radius, half_widths, fg):
    # fg[x] = 1 where a non-zero pixel of the band-passed frame lies in the circular
    # mask around (y, x): for some row offset j of the mask, row y + j has a non-zero
    # pixel within the mask's half-width there. Whole rows, so the comparisons vectorise.
    ny = counts.shape[0]
    nx = fg.shape[0]
    pad = radius + 1
    fg[:] = 0
    for j in range(-radius, radius + 1):
        yy = y + j
        if 0 <= yy < ny:
            hw = half_widths[j + radius]
            upper = counts[yy, pad + hw + 1 : pad + hw + 1 + nx]
            lower = counts[yy, pad - hw : pad - hw + nx]
            for x in range(nx):
                fg[x] |= np.uint8(upper[x] > lower[x])


@numba.njit(cache=True, nogil=True)
def _background_stats(bp, raw, radius, half_widths, counts):
    # Count, mean and standard deviation of raw where fg is 0 (float frames).
    ny, nx = bp.shape
    _row_counts(bp, radius + 1, counts)
    fg = np.empty(nx, dtype=np.uint8)
    count = 0
    total = 0.0
    total2 = 0.0
    shift = float(raw[0, 0])  # shifted sums keep the variance accurate for float frames
    for y in range(ny):
        _foreground_row(counts, y, radius, half_widths, fg)
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


@numba.njit(cache=True, nogil=True)
def _background_sums(bp, raw, radius, half_widths, counts):
    # Count, sum and sum of squares of raw where fg is 0, for integer frames of at most
    # 16 bits: exact in uint64 (below 2**64 for any frame of fewer than 2**31 pixels),
    # accumulated without branches so the loop vectorises. A pixel and its square fit
    # 32 bits (65535**2 < 2**32): multiplied there, then widened, since AVX2 has no
    # 64-bit vector multiply (int64 products ran the loop twice as long on an AVX2 EPYC).
    ny, nx = bp.shape
    _row_counts(bp, radius + 1, counts)
    fg = np.empty(nx, dtype=np.uint8)
    count = np.uint64(0)
    total = np.uint64(0)
    total2 = np.uint64(0)
    for y in range(ny):
        _foreground_row(counts, y, radius, half_widths, fg)
        r = raw[y]
        for x in range(nx):
            b = np.uint32(fg[x] == 0)
            v = np.uint32(r[x]) * b
            count += np.uint64(b)
            total += np.uint64(v)
            total2 += np.uint64(np.uint32(v * v))
    return count, total, total2


def _exact_stats(count, total, total2, shift=0):
    """Mean and population standard deviation from exact integer sums (Python ints:
    the variance ``(n * sum x**2 - (sum x)**2) / n**2`` without cancellation), of
    values ``x - shift`` when the sums are of ``x``."""
    count, total, total2 = int(count), int(total), int(total2)
    total2 -= 2 * shift * total - count * shift * shift
    total -= count * shift
    if count == 0:
        return np.nan, np.nan
    mean = total / count
    if count == 1:
        return mean, np.nan
    return mean, float(np.sqrt((count * total2 - total * total) / count**2))


@functools.lru_cache(maxsize=32)
def _half_widths(radius):
    # Half-width of each row of the (symmetric) circular mask, read off the mask itself.
    dy, dx, _, _, _ = circular_mask(radius)
    half_widths = np.zeros(2 * radius + 1, dtype=np.int64)
    np.maximum.at(half_widths, dy, np.abs(dx - radius))
    return half_widths


@functools.lru_cache(maxsize=32)
def _mask_moment(radius):
    # The number of mask pixels and sqrt(sum dx**2) over the mask, for ep.
    dy, dx, _, _, _ = circular_mask(radius)
    return len(dx), float(np.sqrt(np.sum((dx - radius) ** 2.0)))


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

    Notes
    -----
    For integer frames of at most 16 bits the sums are exact integers and the
    variance is formed without cancellation, so both values are correctly rounded
    (trackpy's ``numpy.mean``/``numpy.std`` agree to about 1e-15); float frames use
    sums shifted by their first pixel.
    """
    r = int(radius)
    half_widths = _half_widths(r)
    # 16-bit counts (rows are far shorter than 65535 pixels) halve the memory the
    # comparisons stream through, so twice as many fit a vector register.
    ny, nx = bandpassed.shape
    dtype = np.uint16 if nx + 2 * (r + 1) + 1 < 65535 else np.int64
    counts = scratch("background counts", (ny, nx + 2 * (r + 1) + 1), dtype)
    if raw.dtype.kind in "ui" and raw.dtype.itemsize <= 2 and raw.size < 2**31:
        shift = 0
        if raw.dtype.kind == "i":
            # signed: summed as unsigned with the sign bit flipped (x + 2**(bits - 1),
            # exactly), the shift taken off the exact sums after
            unsigned = np.dtype(f"u{raw.dtype.itemsize}")
            shift = 1 << (8 * raw.dtype.itemsize - 1)
            raw = raw.view(unsigned) ^ unsigned.type(shift)
        sums = _background_sums(bandpassed, raw, r, half_widths, counts)
        return _exact_stats(*sums, shift=shift)
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
    n_px, moment = _mask_moment(int(radius))
    mass = np.asarray(raw_mass, dtype=np.float64) - n_px * black_level
    with np.errstate(divide="ignore", invalid="ignore"):
        ep = noise / mass * noise_size * moment
    ep[~(mass > 0)] = np.nan
    return ep


@numba.njit(cache=True, nogil=True)
def _background_stats_nd(bp, raw, row_dz, row_dy, row_hw, pad, counts):
    # bp, raw: (z, y, x) (a 2-D frame is one plane). A voxel is background when no
    # non-zero voxel of bp lies in the mask around it: for every mask row (dz, dy) of
    # half-width hw, row (z + dz, y + dy) has no non-zero voxel within hw of x. Prefix
    # counts per row make each test two loads; rows run whole so the tests vectorise.
    nz, ny, nx = bp.shape
    for z in range(nz):
        for y in range(ny):
            for k in range(pad):
                counts[z, y, k] = 0
            c = 0
            for x in range(nx):
                counts[z, y, pad + x] = c
                c += bp[z, y, x] != 0
            for k in range(pad + nx, nx + 2 * pad + 1):
                counts[z, y, k] = c
    fg = np.empty(nx, dtype=np.uint8)
    count = 0
    total = 0.0
    total2 = 0.0
    shift = float(raw[0, 0, 0])  # shifted sums keep the variance accurate for floats
    for z in range(nz):
        for y in range(ny):
            fg[:] = 0
            for r in range(row_dz.shape[0]):
                zz = z + row_dz[r]
                yy = y + row_dy[r]
                if 0 <= zz < nz and 0 <= yy < ny:
                    hw = row_hw[r]
                    upper = counts[zz, yy, pad + hw + 1 : pad + hw + 1 + nx]
                    lower = counts[zz, yy, pad - hw : pad - hw + nx]
                    for x in range(nx):
                        fg[x] |= np.uint8(upper[x] > lower[x])
            for x in range(nx):
                if fg[x] == 0:
                    v = float(raw[z, y, x]) - shift
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


def background_noise_nd(bandpassed, raw, radius):
    """:func:`background_noise` for 3-D images and per-axis radii.

    Parameters
    ----------
    bandpassed : numpy.ndarray, shape (y, x) or (z, y, x)
        The (scaled) band-passed image; its non-zero pixels mark signal.
    raw : numpy.ndarray, same shape
        The raw (inverted if needed) image, in its own intensity units.
    radius : tuple of int
        Mask radius per axis, pixels: background lies outside the elliptical mask of
        every signal pixel (trackpy: the complement of the binary dilation of the
        signal by that mask).

    Returns
    -------
    black_level, noise : float
        Mean and (population) standard deviation of ``raw`` over the background;
        NaN when there is no background (noise is also NaN with a single pixel).
    """
    from daskloc.locate.refine import ellipsoid_mask

    radius = tuple(int(r) for r in radius)
    offsets = ellipsoid_mask(radius)[0] - np.asarray(radius)
    if len(radius) == 2:
        offsets = np.column_stack([np.zeros(len(offsets), dtype=np.int64), offsets])
        bandpassed, raw = bandpassed[None], raw[None]
    rows = {}
    for dz, dy, dx in offsets:
        rows[(dz, dy)] = max(rows.get((dz, dy), 0), abs(int(dx)))
    keys = sorted(rows)
    row_dz = np.array([k[0] for k in keys], dtype=np.int64)
    row_dy = np.array([k[1] for k in keys], dtype=np.int64)
    row_hw = np.array([rows[k] for k in keys], dtype=np.int64)
    pad = radius[-1] + 1
    nz, ny, nx = bandpassed.shape
    dtype = np.uint16 if nx + 2 * pad + 1 < 65535 else np.int64
    counts = np.empty((nz, ny, nx + 2 * pad + 1), dtype=dtype)
    _, mean, std = _background_stats_nd(np.ascontiguousarray(bandpassed),
                                        np.ascontiguousarray(raw), row_dz, row_dy, row_hw,
                                        pad, counts)
    return mean, std


def static_error_nd(raw_mass, black_level, noise, radius, noise_size):
    """Static error of each feature's position, per axis or one value (trackpy's ``ep``).

    Parameters
    ----------
    raw_mass : numpy.ndarray, float64, shape (n,)
        Raw brightness summed over each feature's mask.
    black_level, noise : float
        From :func:`background_noise_nd`.
    radius : tuple of int
        Mask radius per axis, pixels.
    noise_size : tuple of float
        Noise correlation length (the low-pass sigma) per axis, pixels.

    Returns
    -------
    numpy.ndarray, float64, shape (n,) or (n, ndim)
        ``ep`` in pixels: one value per feature when both ``radius`` and
        ``noise_size`` are the same on every axis, else one per axis
        (``noise / mass * noise_size_i * sqrt(sum_mask d_i ** 2)``). NaN where the
        background-corrected mass is not positive.
    """
    from daskloc.locate.refine import ellipsoid_mask

    radius = tuple(int(r) for r in radius)
    offsets = ellipsoid_mask(radius)[0] - np.asarray(radius)
    moments = np.sqrt(np.sum(offsets.astype(np.float64) ** 2, axis=0))
    mass = np.asarray(raw_mass, dtype=np.float64) - len(offsets) * black_level
    noise_size = tuple(noise_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        n_s = noise / mass
        if len(set(radius)) == 1 and len(set(noise_size)) == 1:
            ep = n_s * noise_size[0] * moments[0]
        else:
            ep = n_s[:, None] * (np.asarray(noise_size, dtype=np.float64) * moments)[None, :]
    ep[~(mass > 0)] = np.nan
    return ep
