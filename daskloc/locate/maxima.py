"""Candidate features: local maxima of the band-passed frame.

Method: Crocker & Grier (1996), section 3.2 ("Locating particles"): a pixel is a
candidate if no brighter pixel lies within a neighbourhood of the feature's size
and it is in the upper ``percentile`` of brightness. trackpy finds these pixels with a
grey-scale dilation (a pixel equal to the dilated frame); here a window search does:
each pixel above the threshold (in integer frames, only one not below its 8 neighbours)
is compared with the pixels of its window (a row of the window at a time), stopping at
the first row holding a brighter one, which gives the same peaks. As in trackpy, the
neighbourhood is the largest square inside the circle of diameter ``separation`` (side
``int(2 * separation / sqrt(2))``), the percentile is taken over the non-zero pixels,
and peaks within ``margin`` pixels of the edge are dropped.
"""

from __future__ import annotations

import functools

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _nonzero_histogram(image, n_bins):
    # Counts of each non-zero value (bin 0 is set to 0). Pixel i goes to sub-histogram
    # i % 8: band-passed frames are two-thirds zeros, and consecutive increments of one
    # bin wait on each other, so eight independent ones keep the loop going (measured
    # on the bulk-water movie: 0.08 ms a frame against 0.12 with four; skipping zero
    # words instead was slower, 0.17, the branch mispredicted).
    sub = np.zeros((8, n_bins), dtype=np.int32)  # < 2**31 per bin: n / 8 pixels at most
    flat = image.ravel()
    n = flat.size
    m = n // 8 * 8
    for i in range(0, m, 8):
        for k in range(8):
            sub[k, flat[i + k]] += 1
    for i in range(m, n):
        sub[0, flat[i]] += 1
    counts = np.zeros(n_bins, dtype=np.int64)
    for k in range(8):
        for v in range(n_bins):
            counts[v] += sub[k, v]
    counts[0] = 0
    return counts


@numba.njit(cache=True, nogil=True)
def _percentile_of_counts(counts, percentile):
    # numpy.percentile's default (linear between closest ranks) of the values whose
    # counts these are; NaN when there are none.
    n = np.int64(0)
    for v in range(counts.shape[0]):
        n += counts[v]
    if n == 0:
        return np.nan
    index = (percentile / 100.0) * (n - 1)
    lo = np.int64(np.floor(index))
    hi = min(lo + 1, n - 1)
    a = -1.0
    b = -1.0
    seen = np.int64(0)
    for v in range(counts.shape[0]):  # the values at ranks lo and hi (0-based)
        seen += counts[v]
        if a < 0 and seen > lo:
            a = float(v)
        if seen > hi:
            b = float(v)
            break
    t = index - lo
    # numpy's lerp: from the nearer end, so the result is exact at t = 0 and 1.
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


def percentile_threshold(image, percentile):
    """The ``percentile``-th percentile of the non-zero pixels of ``image``.

    Parameters
    ----------
    image : numpy.ndarray, integer dtype, shape (y, x) or (z, y, x)
        Scaled band-passed frame (or stack).
    percentile : float
        0..100.

    Returns
    -------
    float
        Linear interpolation between closest ranks (numpy's default method);
        NaN if every pixel is zero.

    Notes
    -----
    For 8- and 16-bit images the order statistics are read off a histogram instead
    of sorting, which gives the same value as ``numpy.percentile`` in a fraction of
    the time.
    """
    if image.dtype.itemsize <= 2 and np.issubdtype(image.dtype, np.unsignedinteger):
        counts = _nonzero_histogram(np.ascontiguousarray(image),
                                    int(np.iinfo(image.dtype).max) + 1)
        return float(_percentile_of_counts(counts, float(percentile)))
    not_black = image[image != 0]
    if not_black.size == 0:
        return np.nan
    return float(np.percentile(not_black, percentile))


@functools.lru_cache(maxsize=32)
def _window_offsets(lo, hi):
    """Offsets of a (lo + hi + 1)^2 window, nearest the centre first (ties in raster order)."""
    dy, dx = np.mgrid[-lo : hi + 1, -lo : hi + 1]
    dy, dx = dy.ravel(), dx.ravel()
    order = np.argsort(dy * dy + dx * dx, kind="stable")
    out = np.ascontiguousarray(np.stack([dy[order], dx[order]], axis=1), dtype=np.intp)
    out.setflags(write=False)
    return out


@numba.njit(cache=True, nogil=True)
def _append(out, count, y, x):
    if count == out.shape[0]:
        bigger = np.empty((2 * count, 2), dtype=np.intp)
        bigger[:count] = out
        out = bigger
    out[count, 0] = y
    out[count, 1] = x
    return out


@numba.njit(cache=True, nogil=True)
def _window_peak(image, offsets, y, x, v):
    # No pixel of the window brighter than v, pixels outside the frame counting as
    # zero; searched outward from the centre (offsets nearest first), with bounds checks.
    ny, nx = image.shape
    if v < 0:
        return False  # the zeros outside the frame are brighter
    for i in range(offsets.shape[0]):
        yy = y + offsets[i, 0]
        xx = x + offsets[i, 1]
        if 0 <= yy < ny and 0 <= xx < nx and image[yy, xx] > v:
            return False
    return True


@numba.njit(cache=True, nogil=True)
def _maxima(image, offsets, lo, hi, threshold, edge, prefilter, int_threshold):
    # A pixel is a peak when it is brighter than threshold and no pixel of its
    # window is brighter (pixels outside the frame count as zero).
    if prefilter:
        return _maxima_prefiltered(image, offsets, lo, hi, threshold, edge, int_threshold)
    ny, nx = image.shape
    count = 0
    out = np.empty((64, 2), dtype=np.intp)
    for y in range(edge, ny - edge):
        for x in range(edge, nx - edge):
            v = image[y, x]
            if v > threshold and _window_peak(image, offsets, y, x, v):
                out = _append(out, count, y, x)
                count += 1
    return out[:count]


@numba.njit(cache=True, nogil=True)
def _maxima_prefiltered(image, offsets, lo, hi, threshold, edge, t):
    # Integer frames with a pixel on every side (edge >= 1). Per row: a vectorised
    # pre-filter marks the pixels above the threshold (v > threshold <=> v > t =
    # floor(threshold) for integers) and not below any of their 8 neighbours; their
    # columns are gathered; each is then checked against its window a row at a time
    # (the maximum of a contiguous run of the row, vectorised) when the window lies
    # inside the frame, or pixel by pixel with bounds checks near the edges.
    ny, nx = image.shape
    count = 0
    out = np.empty((64, 2), dtype=np.intp)
    n = nx - 2 * edge
    flags = np.empty(max(n, 0), dtype=np.uint8)
    candidates = np.empty(max(n, 0), dtype=np.intp)
    for y in range(edge, ny - edge):
        c = image[y, edge : edge + n]
        w = image[y, edge - 1 : edge - 1 + n]
        e = image[y, edge + 1 : edge + 1 + n]
        nw = image[y - 1, edge - 1 : edge - 1 + n]
        no = image[y - 1, edge : edge + n]
        ne = image[y - 1, edge + 1 : edge + 1 + n]
        sw = image[y + 1, edge - 1 : edge - 1 + n]
        so = image[y + 1, edge : edge + n]
        se = image[y + 1, edge + 1 : edge + 1 + n]
        for i in range(n):
            v = c[i]
            flags[i] = ((v > t) & (v >= w[i]) & (v >= e[i]) & (v >= nw[i]) & (v >= no[i])
                        & (v >= ne[i]) & (v >= sw[i]) & (v >= so[i]) & (v >= se[i]))
        m = 0
        for i in range(n):  # branch-free gather of the marked columns
            candidates[m] = edge + i
            m += flags[i]
        rows_inside = y - lo >= 0 and y + hi < ny
        for q in range(m):
            x = candidates[q]
            v = image[y, x]
            if not v > threshold:
                continue
            if rows_inside and x - lo >= 0 and x + hi < nx:
                peak = True
                for j in range(y - lo, y + hi + 1):
                    r = image[j, x - lo : x + hi + 1]
                    top = r[0]
                    for i in range(r.shape[0]):
                        top = max(top, r[i])
                    if top > v:
                        peak = False
                        break
            else:
                peak = _window_peak(image, offsets, y, x, v)
            if peak:
                out = _append(out, count, y, x)
                count += 1
    return out[:count]


def local_maxima(image, separation, percentile, margin, radius=0):
    """Integer positions of local maxima brighter than a percentile threshold.

    Parameters
    ----------
    image : numpy.ndarray, integer dtype, shape (y, x)
        Scaled band-passed frame.
    separation : float
        Minimum feature separation, pixels; sets the window searched around each
        pixel, the largest square inside a circle of diameter ``separation``.
    percentile : float
        Peaks must be brighter than this percentile of the non-zero pixels.
    margin : int
        Peaks closer than this to an edge (pixels) are dropped.
    radius : int
        Peaks closer than this to an edge are dropped too (room for the mask).

    Returns
    -------
    numpy.ndarray, intp, shape (n, 2)
        ``(y, x)`` pixel positions in raster order; empty for a black frame.

    Notes
    -----
    The neighbourhood of pixel ``i`` spans ``i - (side - 1) // 2 .. i + side // 2``
    in each axis, with pixels outside the frame counting as zero: the alignment of
    ``scipy.ndimage.grey_dilation`` that trackpy uses, also for even sides.
    """
    threshold = percentile_threshold(image, percentile)
    if np.isnan(threshold):
        return np.empty((0, 2), dtype=np.intp)
    side = max(int(2 * separation / np.sqrt(2)), 1)
    lo, hi = (side - 1) // 2, side // 2
    edge = max(int(margin), int(radius), 0)
    prefilter = edge >= 1 and np.issubdtype(image.dtype, np.integer)
    if prefilter:
        info = np.iinfo(image.dtype)
        int_threshold = image.dtype.type(min(max(np.floor(threshold), info.min), info.max))
    else:
        int_threshold = image.dtype.type(0)
    return _maxima(np.ascontiguousarray(image), _window_offsets(lo, hi), lo, hi,
                   float(threshold), edge, prefilter, int_threshold)


@numba.njit(cache=True, nogil=True)
def _close_pairs(scaled, limit2):
    # Pairs (i < j) closer than sqrt(limit2) <= 1. Features are binned into square cells
    # of side 1 (= separation in these scaled units; a counting sort), so a close pair
    # lies in the same or a neighbouring cell and each feature meets only a handful of
    # others instead of everything in its band of rows.
    n = scaled.shape[0]
    y0 = scaled[0, 0]
    x0 = scaled[0, 1]
    for i in range(n):
        y0 = min(y0, scaled[i, 0])
        x0 = min(x0, scaled[i, 1])
    y1 = y0
    x1 = x0
    for i in range(n):
        y1 = max(y1, scaled[i, 0])
        x1 = max(x1, scaled[i, 1])
    # Cells of side >= 1 work the same; widen them when features are sparse so the
    # table of cells stays a few times the number of features.
    side = 1.0
    while ((y1 - y0) / side + 1) * ((x1 - x0) / side + 1) > 4 * n + 64:
        side *= 2
    cy = np.empty(n, dtype=np.intp)
    cx = np.empty(n, dtype=np.intp)
    ny = 1
    nx = 1
    for i in range(n):
        cy[i] = int((scaled[i, 0] - y0) / side)  # >= 0, so int() is floor
        cx[i] = int((scaled[i, 1] - x0) / side)
        ny = max(ny, cy[i] + 1)
        nx = max(nx, cx[i] + 1)
    start = np.zeros(ny * nx + 1, dtype=np.intp)
    for i in range(n):
        start[cy[i] * nx + cx[i] + 1] += 1
    for c in range(ny * nx):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    members = np.empty(n, dtype=np.intp)
    for i in range(n):
        c = cy[i] * nx + cx[i]
        members[fill[c]] = i
        fill[c] += 1
    out = np.empty((max(n, 4), 2), dtype=np.intp)
    count = 0
    for i in range(n):
        yi = scaled[i, 0]
        xi = scaled[i, 1]
        for gy in range(max(cy[i] - 1, 0), min(cy[i] + 2, ny)):
            for gx in range(max(cx[i] - 1, 0), min(cx[i] + 2, nx)):
                c = gy * nx + gx
                for m in range(start[c], start[c + 1]):
                    j = members[m]
                    if j <= i:
                        continue
                    dy = scaled[j, 0] - yi
                    dx = scaled[j, 1] - xi
                    if dy * dy + dx * dx <= limit2:
                        if count == out.shape[0]:
                            bigger = np.empty((2 * count, 2), dtype=np.intp)
                            bigger[:count] = out
                            out = bigger
                        out[count, 0] = i
                        out[count, 1] = j
                        count += 1
    return out[:count]


def close_to_drop(positions, separation, mass):
    """Indices of features that have a brighter neighbour closer than ``separation``.

    Parameters
    ----------
    positions : numpy.ndarray, float64, shape (n, ndim)
        Refined positions, pixels, slowest axis first (``(y, x)`` or ``(z, y, x)``).
    separation : float or sequence of float
        Minimum allowed distance, pixels; per axis, two features are too close when
        their offsets divided by the per-axis separations are closer than 1.
    mass : numpy.ndarray, float64, shape (n,)
        Brightness deciding which of a close pair survives.

    Returns
    -------
    numpy.ndarray, intp
        Sorted unique indices to drop. For each pair closer than ``separation`` (to
        within a relative 1e-7) the dimmer feature is dropped; for equal masses, the one
        with the smaller sum of scaled coordinates (the earlier one when those are equal
        too). Pairs are judged independently, as trackpy does, so a chain of three close
        features may lose two. Nothing is dropped when a separation is 0.
    """
    separation = np.broadcast_to(np.asarray(separation, dtype=np.float64),
                                 (positions.shape[1],))
    if len(positions) < 2 or np.any(separation <= 0):
        return np.empty(0, dtype=np.intp)
    scaled = np.ascontiguousarray(positions / separation)
    if scaled.shape[1] == 2:
        pairs = _close_pairs(scaled, (1 - 1e-7) ** 2)
    else:
        from scipy.spatial import cKDTree

        pairs = cKDTree(scaled).query_pairs(1 - 1e-7, output_type="ndarray")
    if len(pairs) == 0:
        return np.empty(0, dtype=np.intp)
    return _drop_dimmer(np.ascontiguousarray(pairs, dtype=np.intp),
                        np.ascontiguousarray(mass, dtype=np.float64), scaled)


@numba.njit(cache=True, nogil=True)
def _drop_dimmer(pairs, mass, scaled):
    # For each close pair (i, j) the dimmer one goes; for equal masses the one with the
    # smaller sum of scaled coordinates (i when those are equal too). Sorted, unique.
    n = scaled.shape[0]
    gone = np.zeros(n, dtype=np.bool_)
    for p in range(pairs.shape[0]):
        i = pairs[p, 0]
        j = pairs[p, 1]
        if mass[i] > mass[j]:
            gone[j] = True
        elif mass[i] < mass[j]:
            gone[i] = True
        else:
            si = 0.0
            sj = 0.0
            for d in range(scaled.shape[1]):
                si += scaled[i, d]
                sj += scaled[j, d]
            gone[j if si > sj else i] = True
    return np.flatnonzero(gone).astype(np.intp)


#: trackpy's words for frames where no peak is found, by reason (kept verbatim, so
#: code filtering trackpy's warnings filters daskloc's).
NO_PEAK_MESSAGES = {
    "black": "Image is completely black.",
    "no_maxima": "Image contains no local maxima.",
    "margins": "All local maxima were in the margins.",
}


@functools.lru_cache(maxsize=32)
def _box_offsets(lo, hi, scale):
    """Offsets ``(dz, dy, dx)`` of a box ``-lo .. hi`` per axis, nearest first (distance
    in units of ``scale`` per axis; ties in raster order)."""
    grids = np.meshgrid(*[np.arange(-a, b + 1) for a, b in zip(lo, hi)], indexing="ij")
    d = np.stack([g.ravel() for g in grids], axis=1)
    order = np.argsort(np.sum((d / np.asarray(scale, dtype=np.float64)) ** 2, axis=1),
                       kind="stable")
    out = np.ascontiguousarray(d[order], dtype=np.intp)
    out.setflags(write=False)
    return out


@numba.njit(cache=True, nogil=True)
def _maxima_3d(image, offsets, lo, hi, threshold, edge):
    # A voxel is a peak when it is brighter than threshold and no voxel of its box is
    # brighter (voxels outside the image count as zero, scipy's mode="constant"). The
    # box is searched outward from the centre, so a voxel on a slope is rejected after a
    # few comparisons; inside the image the box is addressed by flat offsets.
    nz, ny, nx = image.shape
    flat = image.ravel()
    n_off = offsets.shape[0]
    flat_off = np.empty(n_off, dtype=np.intp)
    for i in range(n_off):
        flat_off[i] = (offsets[i, 0] * ny + offsets[i, 1]) * nx + offsets[i, 2]
    count = 0
    out = np.empty((64, 3), dtype=np.intp)
    for z in range(edge[0], nz - edge[0]):
        z_inside = z - lo[0] >= 0 and z + hi[0] < nz
        for y in range(edge[1], ny - edge[1]):
            row_inside = z_inside and y - lo[1] >= 0 and y + hi[1] < ny
            base = (z * ny + y) * nx
            for x in range(edge[2], nx - edge[2]):
                v = flat[base + x]
                if not v > threshold:
                    continue
                peak = True
                if row_inside and x - lo[2] >= 0 and x + hi[2] < nx:
                    centre = base + x
                    for i in range(n_off):
                        if flat[centre + flat_off[i]] > v:
                            peak = False
                            break
                else:
                    if v < 0:
                        continue  # the zeros outside the image are brighter
                    for i in range(n_off):
                        zz = z + offsets[i, 0]
                        yy = y + offsets[i, 1]
                        xx = x + offsets[i, 2]
                        if (0 <= zz < nz and 0 <= yy < ny and 0 <= xx < nx
                                and image[zz, yy, xx] > v):
                            peak = False
                            break
                if peak:
                    if count == out.shape[0]:
                        bigger = np.empty((2 * count, 3), dtype=np.intp)
                        bigger[:count] = out
                        out = bigger
                    out[count, 0] = z
                    out[count, 1] = y
                    out[count, 2] = x
                    count += 1
    return out[:count]


def local_maxima_nd(image, separation, percentile, margin):
    """Integer positions of local maxima in a 2-D or 3-D image, per-axis sizes.

    Parameters
    ----------
    image : numpy.ndarray, integer dtype, shape (y, x) or (z, y, x)
        Scaled band-passed image.
    separation : tuple of float
        Minimum separation per axis, pixels; the box searched around each pixel is
        the largest box inside the ellipsoid of these diameters (side
        ``int(2 * separation_i / sqrt(ndim))`` along axis ``i``).
    percentile : float
        Peaks must be brighter than this percentile of the non-zero pixels.
    margin : tuple of int
        Peaks closer than this to a face (pixels, per axis) are dropped.

    Returns
    -------
    peaks : numpy.ndarray, intp, shape (n, ndim)
        Pixel positions in raster order.
    reason : str or None
        Why there are none: a key of :data:`NO_PEAK_MESSAGES`; None when there are.

    Notes
    -----
    trackpy's definition: the pixels equal to the grey dilation of the image by that
    box (``scipy.ndimage.grey_dilation``, zeros outside; the box spans
    ``i - (side - 1) // 2 .. i + side // 2``, also for even sides) and brighter than
    the threshold. Here a box search from the centre outwards finds the same pixels
    without making the dilated image.
    """
    ndim = image.ndim
    threshold = percentile_threshold(image, percentile)
    if np.isnan(threshold):
        return np.empty((0, ndim), dtype=np.intp), "black"
    size = [max(int(2 * s / np.sqrt(ndim)), 1) for s in separation]
    volume = np.ascontiguousarray(image if ndim == 3 else image[None])
    size = [1] * (3 - ndim) + size
    lo = tuple((v - 1) // 2 for v in size)
    hi = tuple(v // 2 for v in size)
    scale = tuple(max(v, 1) for v in size)
    offsets = _box_offsets(lo, hi, scale)

    def search(edge):
        found = _maxima_3d(volume, offsets, np.array(lo, dtype=np.intp),
                           np.array(hi, dtype=np.intp), float(threshold),
                           np.array(edge, dtype=np.intp))
        return found[:, 3 - ndim:]

    edge = [0] * (3 - ndim) + [max(int(np.ceil(m)), 0) for m in margin]
    peaks = search(edge)
    if len(peaks):
        return peaks, None
    return peaks, "margins" if len(search([0, 0, 0])) else "no_maxima"


def peakless_reason(image, percentile, separation):
    """Why :func:`local_maxima` found no peak in a 2-D frame: a :data:`NO_PEAK_MESSAGES` key.

    Parameters
    ----------
    image : numpy.ndarray, integer dtype, shape (y, x)
        Scaled band-passed frame.
    percentile, separation : float
        As given to :func:`local_maxima`.

    Returns
    -------
    str
        ``"black"``, ``"no_maxima"`` or ``"margins"`` (maxima exist, all near an edge).
    """
    threshold = percentile_threshold(image, percentile)
    if np.isnan(threshold):
        return "black"
    side = max(int(2 * separation / np.sqrt(2)), 1)
    lo, hi = (side - 1) // 2, side // 2
    anywhere = _maxima(np.ascontiguousarray(image), _window_offsets(lo, hi), lo, hi,
                       float(threshold), 0, False, image.dtype.type(0))
    return "margins" if len(anywhere) else "no_maxima"
