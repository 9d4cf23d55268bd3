"""Sub-pixel refinement and characterisation of features.

Method: Crocker & Grier (1996), section 3.3 ("Refining location estimates"): the
position is the brightness-weighted centroid over a circular mask of radius
``diameter // 2``; while the centroid is more than ``shift_thresh`` (0.6) pixels
from the mask centre in y or x, the mask moves one pixel that way (at most
``max_iterations`` times, never past the edge). At the final mask the feature is
characterised with trackpy's definitions:

- ``mass``: sum of the (scaled) band-passed image over the mask;
- ``size``: radius of gyration, ``sqrt(sum(r**2 * I) / mass)`` with ``r`` measured
  from the mask centre in pixels;
- ``ecc``: ``sqrt(sum(I cos 2t)**2 + sum(I sin 2t)**2) / (mass - I_centre + 1e-6)``;
- ``signal``: the brightest mask pixel of the band-passed image;
- ``raw_mass``: the sum of the raw (inverted, not band-passed) image over the mask.
"""

from __future__ import annotations

import functools

import numba
import numpy as np

SHIFT_THRESH = 0.6


@functools.lru_cache(maxsize=32)
def circular_mask(radius):
    """Offsets and weights of the circular mask of radius ``radius`` pixels.

    Parameters
    ----------
    radius : int
        Mask radius in pixels (``diameter // 2``).

    Returns
    -------
    dy, dx : numpy.ndarray, int64, shape (m,)
        Offsets of the mask pixels from the corner of the ``(2r+1, 2r+1)`` box, in
        row-major order; a pixel belongs to the mask when
        ``(y - r)**2 + (x - r)**2 <= r**2``.
    r2, cos2, sin2 : numpy.ndarray, float64, shape (m,)
        Squared distance from the centre, and ``cos``/``sin`` of twice the polar
        angle (``atan2(y - r, x - r)``), per mask pixel.
    """
    r = int(radius)
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    if r > 0:
        inside = (yy / r) ** 2 + (xx / r) ** 2 <= 1
    else:
        inside = np.ones_like(yy, dtype=bool)
    dy, dx = yy[inside], xx[inside]
    theta = np.arctan2(dy, dx)
    out = (
        (dy + r).astype(np.int64),
        (dx + r).astype(np.int64),
        (dy * dy + dx * dx).astype(np.float64),
        np.cos(2 * theta),
        np.sin(2 * theta),
    )
    for a in out:
        a.setflags(write=False)
    return out


@numba.njit(cache=True, nogil=True)
def _refine(raw, image, radius, coords, max_iterations, shift_thresh,
            mdy, mdx, r2, cos2, sin2, characterize, out):
    n_mask = mdy.shape[0]
    ny, nx = image.shape
    upper_y = ny - radius - 1
    upper_x = nx - radius - 1
    for k in range(coords.shape[0]):
        cy = coords[k, 0]
        cx = coords[k, 1]
        y0 = cy - radius
        x0 = cx - radius
        mass = 0.0
        pos_y = 0.0
        pos_x = 0.0
        for _ in range(max(max_iterations, 1)):
            y0 = cy - radius
            x0 = cx - radius
            mass = 0.0
            sy = 0.0
            sx = 0.0
            for i in range(n_mask):
                v = float(image[y0 + mdy[i], x0 + mdx[i]])
                mass += v
                sy += v * mdy[i]
                sx += v * mdx[i]
            if mass > 0:
                off_y = sy / mass - radius
                off_x = sx / mass - radius
            else:
                off_y = 0.0
                off_x = 0.0
            pos_y = cy + off_y
            pos_x = cx + off_x
            if abs(off_y) < shift_thresh and abs(off_x) < shift_thresh:
                break
            if off_y > shift_thresh:
                cy += 1
            elif off_y < -shift_thresh:
                cy -= 1
            if off_x > shift_thresh:
                cx += 1
            elif off_x < -shift_thresh:
                cx -= 1
            cy = min(max(cy, radius), upper_y)
            cx = min(max(cx, radius), upper_x)
        out[k, 0] = pos_y
        out[k, 1] = pos_x
        out[k, 2] = mass
        # The mask the last centroid was measured on: characterise there.
        raw_mass = 0.0
        for i in range(n_mask):
            raw_mass += float(raw[y0 + mdy[i], x0 + mdx[i]])
        out[k, 3] = raw_mass
        if characterize:
            rg = 0.0
            e1 = 0.0
            e2 = 0.0
            signal = 0.0
            for i in range(n_mask):
                v = float(image[y0 + mdy[i], x0 + mdx[i]])
                rg += r2[i] * v
                e1 += cos2[i] * v
                e2 += sin2[i] * v
                if v > signal:
                    signal = v
            centre = float(image[y0 + radius, x0 + radius])
            out[k, 4] = np.sqrt(rg / mass) if mass > 0 else np.nan
            out[k, 5] = np.sqrt(e1 * e1 + e2 * e2) / (mass - centre + 1e-6)
            out[k, 6] = signal


def refine(raw, image, radius, coords, *, max_iterations=10, characterize=True,
           shift_thresh=SHIFT_THRESH):
    """Refine integer peak positions to sub-pixel centroids and characterise them.

    Parameters
    ----------
    raw : numpy.ndarray, shape (y, x)
        The raw frame (inverted if features are dark), for ``raw_mass``.
    image : numpy.ndarray, shape (y, x)
        The scaled band-passed frame the centroids are measured on.
    radius : int
        Mask radius, pixels (``diameter // 2``).
    coords : numpy.ndarray, integer, shape (n, 2)
        Starting ``(y, x)`` pixel positions, at least ``radius`` from every edge.
    max_iterations : int
        Most one-pixel moves of the mask per feature.
    characterize : bool
        Compute ``size, ecc, signal`` too.
    shift_thresh : float
        Centroid offset (pixels) beyond which the mask moves.

    Returns
    -------
    numpy.ndarray, float64, shape (n, 7)
        Columns ``y, x, mass, raw_mass, size, ecc, signal``; the last three are NaN
        when ``characterize`` is False. ``mass`` and ``signal`` are in units of
        ``image``.
    """
    coords = np.ascontiguousarray(coords, dtype=np.int64).reshape(-1, 2)
    out = np.full((len(coords), 7), np.nan)
    if len(coords):
        mdy, mdx, r2, cos2, sin2 = circular_mask(int(radius))
        _refine(raw, image, int(radius), coords, int(max_iterations), float(shift_thresh),
                mdy, mdx, r2, cos2, sin2, bool(characterize), out)
    return out


@functools.lru_cache(maxsize=32)
def ellipsoid_mask(radius):
    """Offsets and weights of the elliptical mask of per-axis radii ``radius``.

    The mask of trackpy's anisotropic (and 3-D) locate: a pixel (voxel) at offsets
    ``d`` from the centre belongs to it when ``sum((d_i / r_i) ** 2) <= 1``.

    Parameters
    ----------
    radius : tuple of int
        Mask radius per axis, pixels (``diameter // 2`` per axis), slowest axis first:
        ``(y, x)`` or ``(z, y, x)``.

    Returns
    -------
    offsets : numpy.ndarray, int64, shape (m, ndim)
        Offsets of the mask pixels from the corner of the ``2 r + 1`` box, in
        row-major (raster) order.
    r2 : numpy.ndarray, float64, shape (m,)
        Squared distance from the centre, pixels squared (``size`` when isotropic).
    x2 : numpy.ndarray, float64, shape (ndim, m)
        ``ndim * d_i ** 2`` per axis (the per-axis ``size_<axis>`` weights, trackpy's
        definition).
    cos2, sin2 : numpy.ndarray, float64, shape (m,)
        ``cos``/``sin`` of twice the polar angle in the ``(y, x)`` plane (2-D ``ecc``;
        zeros in 3-D, where ``ecc`` is NaN).

    Examples
    --------
    >>> offsets, r2, x2, cos2, sin2 = ellipsoid_mask((1, 2))
    >>> offsets.shape
    (7, 2)
    """
    radius = tuple(int(r) for r in radius)
    ndim = len(radius)
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in radius], indexing="ij")
    inside = sum((g / r) ** 2 if r > 0 else np.where(g == 0, 0.0, np.inf)
                 for g, r in zip(grids, radius)) <= 1
    d = np.stack([g[inside] for g in grids], axis=1)
    offsets = (d + np.asarray(radius)).astype(np.int64)
    r2 = np.sum(d * d, axis=1).astype(np.float64)
    x2 = (ndim * d.T ** 2).astype(np.float64)
    if ndim == 2:
        theta = np.arctan2(d[:, 0], d[:, 1])
        cos2, sin2 = np.cos(2 * theta), np.sin(2 * theta)
    else:
        cos2 = sin2 = np.zeros(len(d))
    out = (np.ascontiguousarray(offsets), r2, np.ascontiguousarray(x2), cos2, sin2)
    for a in out:
        a.setflags(write=False)
    return out


@numba.njit(cache=True, nogil=True)
def _refine_nd(raw, image, shape, radius, coords, max_iterations, shift_thresh,
               offsets, r2, x2, cos2, sin2, isotropic, characterize, out):
    # raw and image are flat (C order); shape, radius are per axis, slowest first. One
    # loop for 2-D and 3-D: mask pixels are addressed by flat offsets from the corner.
    ndim = shape.shape[0]
    n_mask = offsets.shape[0]
    strides = np.empty(ndim, dtype=np.int64)
    s = 1
    for d in range(ndim - 1, -1, -1):
        strides[d] = s
        s *= shape[d]
    flat = np.zeros(n_mask, dtype=np.int64)
    for i in range(n_mask):
        for d in range(ndim):
            flat[i] += offsets[i, d] * strides[d]
    centre = 0
    for d in range(ndim):
        centre += radius[d] * strides[d]
    coord = np.empty(ndim, dtype=np.int64)
    cm = np.empty(ndim)
    pos = np.empty(ndim)
    n_size = 1 if isotropic else ndim
    for k in range(coords.shape[0]):
        for d in range(ndim):
            coord[d] = coords[k, d]
        corner = 0
        mass = 0.0
        for _ in range(max(max_iterations, 1)):
            corner = 0
            for d in range(ndim):
                corner += (coord[d] - radius[d]) * strides[d]
            mass = 0.0
            cm[:] = 0.0
            for i in range(n_mask):
                v = float(image[corner + flat[i]])
                for d in range(ndim):
                    cm[d] += v * offsets[i, d]
                mass += v
            done = True
            for d in range(ndim):
                off = cm[d] / mass - radius[d] if mass > 0 else 0.0
                pos[d] = off + coord[d]
                cm[d] = off
                if abs(off) >= shift_thresh:
                    done = False
            if done:
                break
            for d in range(ndim):
                if cm[d] > shift_thresh:
                    coord[d] += 1
                elif cm[d] < -shift_thresh:
                    coord[d] -= 1
                coord[d] = min(max(coord[d], radius[d]), shape[d] - radius[d] - 1)
        for d in range(ndim):
            out[k, d] = pos[d]
        out[k, ndim] = mass
        raw_mass = 0.0
        for i in range(n_mask):
            raw_mass += float(raw[corner + flat[i]])
        out[k, ndim + 1] = raw_mass
        if not characterize:
            continue
        signal = 0.0
        e1 = 0.0
        e2 = 0.0
        rg = np.zeros(n_size)
        for i in range(n_mask):
            v = float(image[corner + flat[i]])
            if isotropic:
                rg[0] += r2[i] * v
            else:
                for d in range(ndim):
                    rg[d] += x2[d, i] * v
            e1 += cos2[i] * v
            e2 += sin2[i] * v
            if v > signal:
                signal = v
        for d in range(n_size):
            out[k, ndim + 2 + d] = np.sqrt(rg[d] / mass) if mass > 0 else np.nan
        c = ndim + 2 + n_size
        if ndim == 2:
            out[k, c] = np.sqrt(e1 * e1 + e2 * e2) / (mass - float(image[corner + centre])
                                                       + 1e-6)
        else:
            out[k, c] = np.nan
        out[k, c + 1] = signal


def refine_nd(raw, image, radius, coords, *, max_iterations=10, characterize=True,
              shift_thresh=SHIFT_THRESH):
    """:func:`refine` for 3-D images and per-axis radii (trackpy's anisotropic refine).

    Parameters
    ----------
    raw : numpy.ndarray, shape (y, x) or (z, y, x)
        The raw image (inverted if features are dark), for ``raw_mass``.
    image : numpy.ndarray, same shape
        The scaled band-passed image the centroids are measured on.
    radius : tuple of int
        Mask radius per axis, pixels (``diameter // 2`` per axis).
    coords : numpy.ndarray, integer, shape (n, ndim)
        Starting pixel positions, at least ``radius`` from every face.
    max_iterations : int
        Most one-pixel moves of the mask per feature (each axis moves by at most one
        pixel per move).
    characterize : bool
        Compute ``size``, ``ecc``, ``signal`` too.
    shift_thresh : float
        Centroid offset (pixels) beyond which the mask moves along that axis.

    Returns
    -------
    numpy.ndarray, float64, shape (n, ndim + 2 + n_size + 2)
        Columns: the ``ndim`` positions (slowest axis first), ``mass``, ``raw_mass``,
        then ``size`` (one column, or one per axis when ``radius`` differs per axis:
        ``sqrt(ndim * sum(d_i**2 I) / mass)``), ``ecc`` (2-D only, NaN in 3-D) and
        ``signal``; NaN when ``characterize`` is False.
    """
    radius = tuple(int(r) for r in radius)
    ndim = len(radius)
    isotropic = all(r == radius[0] for r in radius)
    n_size = 1 if isotropic else ndim
    coords = np.ascontiguousarray(coords, dtype=np.int64).reshape(-1, ndim)
    out = np.full((len(coords), ndim + 4 + n_size), np.nan)
    if len(coords):
        offsets, r2, x2, cos2, sin2 = ellipsoid_mask(radius)
        _refine_nd(np.ascontiguousarray(raw).ravel(), np.ascontiguousarray(image).ravel(),
                   np.asarray(image.shape, dtype=np.int64), np.asarray(radius, dtype=np.int64),
                   coords, int(max_iterations), float(shift_thresh), offsets, r2, x2,
                   cos2, sin2, isotropic, bool(characterize), out)
    return out
