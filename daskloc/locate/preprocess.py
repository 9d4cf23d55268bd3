"""Image preparation for Crocker-Grier location: inversion, band pass, integer scaling.

Method: Crocker & Grier, J. Colloid Interface Sci. 179, 298 (1996), section 3.1
("Image restoration"), in the form trackpy documents it: a Gaussian low pass of
standard deviation ``noise_size`` (truncated at 4 sigma, zero outside the image)
minus a boxcar (rolling average) background of side ``smoothing_size`` (edges
extended), clipped below ``threshold``.
"""

from __future__ import annotations

import functools

import numba
import numpy as np


def invert(image):
    """Turn dark features on a light background into light features on a dark one.

    Parameters
    ----------
    image : numpy.ndarray, shape (y, x) or (z, y, x)
        Integer images are reflected about their dtype's maximum (``255 - v`` for
        uint8); float images are assumed to span 0..1 and become ``1 - v``
        (trackpy's convention, kept so that ``minmass`` means the same thing).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``image``.
    """
    if np.issubdtype(image.dtype, np.integer):
        # For unsigned types max ^ v == max - v, without a temporary of a wider type.
        return np.bitwise_xor(image, np.iinfo(image.dtype).max)
    return 1.0 - image


def gaussian_weights(sigma, truncate=4.0):
    """Normalised 1-D Gaussian kernel of standard deviation ``sigma`` pixels.

    Parameters
    ----------
    sigma : float
        Standard deviation in pixels.
    truncate : float
        Half-width of the kernel in units of ``sigma`` (rounded to whole pixels).

    Returns
    -------
    numpy.ndarray, float64, shape (2 * int(truncate * sigma + 0.5) + 1,)
    """
    half = int(truncate * sigma + 0.5)
    offsets = np.arange(-half, half + 1)
    weights = np.exp(offsets**2 / (-2.0 * sigma**2))
    return weights / weights.sum()


@functools.lru_cache(maxsize=32)
def _lowpass_weights(sigma):
    # The kernel's weights of one axis (one tap of 1 when sigma is 0), made once per
    # sigma. Private: the kernel never writes them, and they are never handed out.
    return gaussian_weights(sigma) if sigma > 0 else np.ones(1)


@numba.njit(cache=True, nogil=True)
def _boxcar_axis0(src, size, out):
    # scipy.ndimage.uniform_filter1d(mode="nearest") along axis 0 with the same
    # float64 running sum, divided by size at each output, cast to out's dtype.
    ny, nx = src.shape
    half = size // 2
    acc = np.zeros(nx)
    for k in range(size):
        j = min(max(k - half, 0), ny - 1)
        for x in range(nx):
            acc[x] += src[j, x]
    for x in range(nx):
        out[0, x] = acc[x] / size
    for y in range(1, ny):
        j_in = min(y + size - 1 - half, ny - 1)
        j_out = min(max(y - 1 - half, 0), ny - 1)
        for x in range(nx):
            acc[x] += np.float64(src[j_in, x]) - np.float64(src[j_out, x])
            out[y, x] = acc[x] / size


@numba.njit(cache=True, nogil=True)
def _boxcar_axis1(src, size, out):
    ny, nx = src.shape
    half = size // 2
    for y in range(ny):
        acc = 0.0
        for k in range(size):
            acc += src[y, min(max(k - half, 0), nx - 1)]
        out[y, 0] = acc / size
        for x in range(1, nx):
            i_in = min(x + size - 1 - half, nx - 1)
            i_out = min(max(x - 1 - half, 0), nx - 1)
            acc += np.float64(src[y, i_in]) - np.float64(src[y, i_out])
            out[y, x] = acc / size


@numba.njit(cache=True, nogil=True)
def _boxcar_axis1_exact(src, size, out):
    # For integer frames every partial sum of the running mean is an exact integer, so
    # the window sums can come from prefix sums (vectorisable) and give the very same
    # values as the running sum: out = trunc(sum / size).
    ny, nx = src.shape
    half = size // 2
    prefix = np.zeros(nx + 2 * half + 1, dtype=np.int64)
    for y in range(ny):
        c = 0
        for k in range(nx + 2 * half):
            prefix[k] = c
            c += np.int64(src[y, min(max(k - half, 0), nx - 1)])
        prefix[nx + 2 * half] = c
        for x in range(nx):
            out[y, x] = np.float64(prefix[x + size] - prefix[x]) / size


@numba.njit(cache=True, nogil=True)
def _bandpass(image, weights, size, threshold, exact_sums):
    ny, nx = image.shape
    # Background: boxcar in the frame's own dtype, axis 0 then axis 1.
    tmp = np.empty_like(image)
    background = np.empty_like(image)
    if size > 1:
        _boxcar_axis0(image, size, tmp)
        if exact_sums:
            _boxcar_axis1_exact(tmp, size, background)
        else:
            _boxcar_axis1(tmp, size, background)
    else:
        background[:] = image
    # Low pass: Gaussian along axis 0 then axis 1, zero outside the frame; each output
    # starts from the centre tap and adds symmetric pairs from the outside in, as
    # scipy's correlate1d does, so every value is bit-identical to it. One row at a
    # time: the axis-0 pass of row y goes to a small padded line (in L1 cache), the
    # axis-1 pass reads it at once, so no whole-frame float64 temporary is made.
    # Loops run over whole rows (slices, no index arithmetic) so they vectorise.
    half = (weights.shape[0] - 1) // 2
    result = np.empty((ny, nx))
    line = np.zeros(nx + 2 * half)  # zero padding = scipy's mode="constant", cval=0
    row = line[half : half + nx]
    peak_bits = np.int64(0)
    for y in range(ny):
        _lowpass_rows(image, weights, y, row)
        out = result[y]
        _lowpass_line(line, weights, out)
        peak_bits = _clip_peak(out, background[y], threshold, peak_bits)
    if peak_bits < 0:  # every value negative (a negative threshold): plain float max
        return result, result.max()
    peak = np.array([peak_bits]).view(np.float64)[0]
    return result, peak


@numba.njit(cache=True, nogil=True)
def _lowpass_line(line, weights, out):
    # The axis-1 low pass of one row: line is the row with half zeros each side; centre
    # tap, then symmetric pairs from the outside in, as scipy's correlate1d adds them.
    nx = out.shape[0]
    half = (weights.shape[0] - 1) // 2
    w0 = weights[half]
    for x in range(nx):
        out[x] = line[half + x] * w0
    for k in range(half, 0, -1):
        wk = weights[half - k]
        left = line[half - k : half - k + nx]
        right = line[half + k : half + k + nx]
        for x in range(nx):
            out[x] += (left[x] + right[x]) * wk


@numba.njit(cache=True, nogil=True)
def _clip_peak(out, background, threshold, peak_bits):
    # out - background, zero below threshold, in place; returns the larger of peak_bits
    # and the row's peak as the largest bit pattern: for doubles >= +0.0 integer order
    # is float order (negative doubles have negative patterns, below every positive
    # one), and an integer max vectorises where a float max (NaN rules) does not.
    nx = out.shape[0]
    for x in range(nx):
        v = out[x] - np.float64(background[x])
        out[x] = v if v >= threshold else 0.0
    bits = out.view(np.int64)
    for x in range(nx):
        peak_bits = max(peak_bits, bits[x])
    return peak_bits


@numba.njit(cache=True, nogil=True)
def _bandpass_unsigned(image, weights, size, threshold, result):
    # _bandpass for uint8/uint16 frames in one pass over the rows, nothing but the
    # result as large as the frame. The boxcar's two passes truncate to the frame's
    # dtype, so each is a floor division of an integer window sum (the same values as
    # the running sums of _boxcar_axis0/_boxcar_axis1_exact): the axis-0 sums are kept
    # per column and updated by one row in, one row out; the axis-1 sums of each row
    # come from its prefix sums. Those sums are integers below 2**53, held exactly in
    # float64, and for a non-negative quotient floor() is int() truncation: the same
    # values, with no conversion between int64 and float64 (which AVX2 has no vector
    # instruction for: int64 sums ran the boxcar 3x slower on an AVX2-only EPYC). The
    # low pass and the subtraction are _bandpass's, operation for operation.
    ny, nx = image.shape
    hb = size // 2
    half = (weights.shape[0] - 1) // 2
    w0 = weights[half]
    column = np.zeros(nx)
    padded = np.empty(nx + 2 * hb)
    mid = padded[hb : hb + nx]
    prefix = np.empty(nx + 2 * hb + 1)
    background = np.empty(nx)
    line = np.zeros(nx + 2 * half)  # zero padding = scipy's mode="constant", cval=0
    row = line[half : half + nx]
    for k in range(size):
        src = image[min(max(k - hb, 0), ny - 1)]
        for x in range(nx):
            column[x] += np.float64(src[x])
    peak_bits = np.int64(0)
    for y in range(ny):
        if size > 1:
            if y > 0:
                a = image[min(y + size - 1 - hb, ny - 1)]
                b = image[min(max(y - 1 - hb, 0), ny - 1)]
                for x in range(nx):
                    column[x] += np.float64(np.int32(a[x]) - np.int32(b[x]))
            for x in range(nx):
                mid[x] = np.floor(column[x] / size)
            for k in range(hb):
                padded[k] = mid[0]
                padded[hb + nx + k] = mid[nx - 1]
            c = 0.0
            for k in range(nx + 2 * hb):
                prefix[k] = c
                c += padded[k]
            prefix[nx + 2 * hb] = c
            for x in range(nx):
                background[x] = np.floor((prefix[x + size] - prefix[x]) / size)
        else:
            src = image[y]
            for x in range(nx):
                background[x] = np.float64(src[x])
        src = image[y]
        if half == 4 and 4 <= y < ny - 4:
            # The default low pass (noise_size 1: 9 taps) away from the top and bottom
            # rows, written out: the same adds in the same order in one pass, the row
            # kept in registers instead of stored and reloaded per tap.
            u4, u3, u2, u1 = image[y - 4], image[y - 3], image[y - 2], image[y - 1]
            d1, d2, d3, d4 = image[y + 1], image[y + 2], image[y + 3], image[y + 4]
            w4, w3, w2, w1 = weights[0], weights[1], weights[2], weights[3]
            # (a pair of integers adds exactly in int32: the same double as two
            # converted pixels added)
            for x in range(nx):
                row[x] = ((((np.float64(src[x]) * w0
                             + np.float64(np.int32(u4[x]) + np.int32(d4[x])) * w4)
                            + np.float64(np.int32(u3[x]) + np.int32(d3[x])) * w3)
                           + np.float64(np.int32(u2[x]) + np.int32(d2[x])) * w2)
                          + np.float64(np.int32(u1[x]) + np.int32(d1[x])) * w1)
        else:
            _lowpass_rows(image, weights, y, row)
        out = result[y]
        if half == 4:
            w4, w3, w2, w1 = weights[0], weights[1], weights[2], weights[3]
            for x in range(nx):
                c = x + 4
                out[x] = ((((line[c] * w0 + (line[c - 4] + line[c + 4]) * w4)
                            + (line[c - 3] + line[c + 3]) * w3)
                           + (line[c - 2] + line[c + 2]) * w2)
                          + (line[c - 1] + line[c + 1]) * w1)
        else:
            _lowpass_line(line, weights, out)
        peak_bits = _clip_peak(out, background, threshold, peak_bits)
    if peak_bits < 0:  # every value negative (a negative threshold): plain float max
        return result.max()
    return np.array([peak_bits]).view(np.float64)[0]


@numba.njit(cache=True, nogil=True)
def _lowpass_rows(image, weights, y, row):
    # The axis-0 low pass of row y of an image into row (zeros outside the frame):
    # centre tap, then symmetric pairs from the outside in, as scipy's correlate1d adds
    # them.
    ny, nx = image.shape
    half = (weights.shape[0] - 1) // 2
    w0 = weights[half]
    src = image[y]
    for x in range(nx):
        row[x] = np.float64(src[x]) * w0
    for k in range(half, 0, -1):
        wk = weights[half - k]
        up = y - k
        down = y + k
        if up >= 0 and down < ny:
            a = image[up]
            b = image[down]
            for x in range(nx):
                row[x] += (np.float64(a[x]) + np.float64(b[x])) * wk
        elif up >= 0:
            a = image[up]
            for x in range(nx):
                row[x] += (np.float64(a[x]) + 0.0) * wk
        elif down < ny:
            b = image[down]
            for x in range(nx):
                row[x] += (0.0 + np.float64(b[x])) * wk


def bandpass(image, noise_size, smoothing_size, threshold):
    """Band-pass filter a frame: Gaussian low pass minus boxcar background.

    Parameters
    ----------
    image : numpy.ndarray, shape (y, x), integer or float dtype
        One frame (already inverted if features are dark).
    noise_size : float
        Standard deviation of the Gaussian low pass, pixels.
    smoothing_size : int
        Side of the square boxcar used as background, pixels (odd).
    threshold : float
        Values of the band-passed image below this are set to zero (intensity
        units of ``image``).

    Returns
    -------
    numpy.ndarray, float64, shape (y, x)
        The band-passed frame, zero where it is below ``threshold``.

    Notes
    -----
    The background is computed in the dtype of ``image``: for integer frames each
    one-dimensional pass of the boxcar truncates to integers, and the low pass
    treats pixels outside the frame as zero -- trackpy's choices, reproduced with
    the same floating-point operations in the same order (a fused numba kernel
    instead of four ``scipy.ndimage`` passes), so the result equals trackpy's to
    the bit.
    """
    return _bandpass_peak(image, noise_size, smoothing_size, threshold)[0]


def _bandpass_peak(image, noise_size, smoothing_size, threshold, out=None):
    """``(result, peak)``: :func:`bandpass` and its maximum; into ``out`` (float64, the
    image's shape) when given, for uint8 and uint16 frames."""
    image = np.ascontiguousarray(image)
    weights = _lowpass_weights(float(noise_size))
    size = int(smoothing_size)
    if image.dtype in (np.uint8, np.uint16) and image.size and 1 <= size < 2**16:
        result = np.empty(image.shape) if out is None else out
        return result, _bandpass_unsigned(image, weights, size, float(threshold), result)
    # Exact integer window sums need integer pixels and sums that fit float64 exactly.
    exact = bool(np.issubdtype(image.dtype, np.integer) and image.dtype.itemsize <= 4)
    return _bandpass(image, weights, int(smoothing_size), float(threshold), exact)


@numba.njit(cache=True, nogil=True)
def _scale(image, factor, limit, out):
    ny, nx = image.shape
    for y in range(ny):
        for x in range(nx):
            v = image[y, x]
            out[y, x] = min(factor * (v if v > 0.0 else 0.0), limit)


def scale_to_integer(image, dtype, peak=None, out=None):
    """Scale a float image onto the full range of an integer dtype.

    Parameters
    ----------
    image : numpy.ndarray, float64, shape (y, x) or (z, y, x)
        Band-passed frame; negative values are clipped to zero.
    dtype : numpy integer dtype
        Target dtype (the raw frame's dtype, or uint8 for float frames).
    peak : float, optional
        ``image.max()`` if already known.
    out : numpy.ndarray of ``dtype``, optional
        Where to write ``scaled`` (same shape as ``image``, C-contiguous); float64
        images only (others get a new array).

    Returns
    -------
    scale : float
        The factor applied: ``iinfo(dtype).max / image.max()`` (1 for a black image).
    scaled : numpy.ndarray of ``dtype``
        ``scale * clip(image, 0)`` truncated to integers, as trackpy's working image
        (float32 images are scaled in float32 arithmetic, as trackpy's are). For
        64-bit integer dtypes the values are clipped below ``2**63`` (``2**64``): the
        largest double that fits, where trackpy's peak pixel wraps around.
    """
    if np.issubdtype(image.dtype, np.integer):
        return 1.0, image
    if peak is None:
        peak = image.max() if image.size else 0.0
    top = np.iinfo(dtype).max
    scale = 1.0 if peak == 0 else top / peak
    if image.dtype == np.float32:
        # trackpy's arithmetic: a float32 scale times float32 pixels, rounded in float32
        return float(scale), (np.float32(scale) * np.clip(image, 0, None)).astype(dtype)
    scaled = np.empty(image.shape, dtype=dtype) if out is None else out
    # For 64-bit integers the top value is not a double: 2**63 would wrap to the most
    # negative int64 (the peak pixel darkest), so clip to the largest double below it.
    limit = float(top) if top < 2**53 else float(np.nextafter(float(top), 0.0))
    flat = (-1, image.shape[-1]) if image.ndim else (1, 1)  # elementwise: any ndim as 2-D
    _scale(np.ascontiguousarray(image, dtype=np.float64).reshape(flat), float(scale), limit,
           scaled.reshape(flat))
    return float(scale), scaled


@numba.njit(cache=True, nogil=True)
def _gauss_axis0(src, weights, out):
    # correlate1d along axis 0 of a 2-D float64 array, zeros outside: centre tap, then
    # symmetric pairs from the outside in (scipy's order, so bit-identical); whole rows.
    ny, nx = src.shape
    half = (weights.shape[0] - 1) // 2
    w0 = weights[half]
    for y in range(ny):
        row = out[y]
        s0 = src[y]
        for x in range(nx):
            row[x] = s0[x] * w0
        for k in range(half, 0, -1):
            wk = weights[half - k]
            up = y - k
            down = y + k
            if up >= 0 and down < ny:
                a = src[up]
                b = src[down]
                for x in range(nx):
                    row[x] += (a[x] + b[x]) * wk
            elif up >= 0:
                a = src[up]
                for x in range(nx):
                    row[x] += (a[x] + 0.0) * wk
            elif down < ny:
                b = src[down]
                for x in range(nx):
                    row[x] += (0.0 + b[x]) * wk


@numba.njit(cache=True, nogil=True)
def _gauss_planes(src, weights, out):
    # correlate1d along axis 1 of a 3-D array: axis 0 of each plane.
    for z in range(src.shape[0]):
        _gauss_axis0(src[z], weights, out[z])


@numba.njit(cache=True, nogil=True)
def _gauss_last_bandpass(src, weights, background, threshold, out):
    # The last axis's correlate1d, then minus the background and clipped below the
    # threshold (one pass); returns the peak. Rows of a 2-D view (n_rows, nx).
    ny, nx = src.shape
    half = (weights.shape[0] - 1) // 2
    line = np.zeros(nx + 2 * half)
    peak = -np.inf
    for y in range(ny):
        line[half : half + nx] = src[y]
        o = out[y]
        _lowpass_line(line, weights, o)
        bg = background[y]
        for x in range(nx):
            v = o[x] - np.float64(bg[x])
            v = v if v >= threshold else 0.0
            o[x] = v
            peak = max(peak, v)
    return peak


def bandpass_nd(image, noise_size, smoothing_size, threshold):
    """Band-pass a 2-D or 3-D image with per-axis sizes (anisotropic, or volumes).

    Parameters
    ----------
    image : numpy.ndarray, shape (y, x) or (z, y, x), integer or float
        The (inverted if needed) image.
    noise_size : tuple of float
        Standard deviation of the Gaussian low pass per axis, pixels (0: none).
    smoothing_size : tuple of int
        Side of the boxcar background per axis, pixels (odd; 1: none).
    threshold : float
        Values below this are set to zero (intensity units of ``image``).

    Returns
    -------
    result : numpy.ndarray, float64, same shape
        Low pass minus background, zero below ``threshold``.
    peak : float
        ``result.max()`` (0 for an empty image).

    Notes
    -----
    The separable passes of :func:`bandpass`, one axis at a time, slowest first: the
    boxcar (a running mean, edges extended) in the image's own dtype, then the
    Gaussian (truncated at 4 sigma, zeros outside) in float64. These are the
    operations of trackpy's ``bandpass`` (``scipy.ndimage.uniform_filter1d`` and
    ``correlate1d`` axis by axis) with the same floating-point operations in the same
    order, so the result is the same to the bit. Each pass runs on a 2-D view of the
    image (axis 0: planes as rows; the last axis: rows), vectorised along the
    contiguous axis.
    """
    image = np.ascontiguousarray(image)
    if image.size == 0:
        return np.zeros(image.shape), 0.0
    volume = image if image.ndim == 3 else image[None]
    smoothing = (1,) * (3 - image.ndim) + tuple(int(v) for v in smoothing_size)
    sigmas = (0,) * (3 - image.ndim) + tuple(noise_size)
    nz, ny, nx = volume.shape
    exact = bool(np.issubdtype(image.dtype, np.integer) and image.dtype.itemsize <= 4)
    background = volume
    for axis, size in enumerate(smoothing):
        if size <= 1:
            continue
        out = np.empty_like(volume)
        if axis == 0:
            _boxcar_axis0(background.reshape(nz, ny * nx), size, out.reshape(nz, ny * nx))
        elif axis == 1:
            for z in range(nz):
                _boxcar_axis0(background[z], size, out[z])
        elif exact:
            _boxcar_axis1_exact(background.reshape(nz * ny, nx), size, out.reshape(nz * ny, nx))
        else:
            _boxcar_axis1(background.reshape(nz * ny, nx), size, out.reshape(nz * ny, nx))
        background = out
    result = np.array(volume, dtype=np.float64)
    spare = np.empty_like(result)
    for axis in (0, 1):
        if sigmas[axis] > 0:
            weights = _lowpass_weights(float(sigmas[axis]))
            if axis == 0:
                _gauss_axis0(result.reshape(nz, ny * nx), weights, spare.reshape(nz, ny * nx))
            else:
                _gauss_planes(result, weights, spare)
            result, spare = spare, result
    weights = _lowpass_weights(float(sigmas[2]))
    peak = _gauss_last_bandpass(result.reshape(nz * ny, nx), weights,
                                background.reshape(nz * ny, nx), float(threshold),
                                spare.reshape(nz * ny, nx))
    return spare.reshape(image.shape), float(peak)
