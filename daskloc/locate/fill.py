"""Bad-pixel filling: each masked pixel becomes the median of its unmasked 3 x 3 neighbours.

Pure numpy, shared by the locate kernel (NaN and infinite pixels of float frames,
:mod:`daskloc.locate._locate`) and the ``mask=`` correction (:mod:`daskloc.correct`,
which re-exports :func:`fill_masked`), so both fill pixels the same way.
"""

from __future__ import annotations

import numpy as np

__all__ = ["apply_fill", "fill_masked", "fill_plan", "to_dtype"]

# the 8 neighbours of a pixel, (dy, dx)
_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


def fill_plan(mask):
    """Rounds of (targets, neighbours) for :func:`fill_masked`, on flat pixel indices.

    Round 1 fills the masked pixels that have at least one unmasked neighbour, from
    those; each later round fills those next to pixels filled before. Made once per
    mask and applied to any number of frames (:func:`apply_fill`).

    Parameters
    ----------
    mask : numpy.ndarray of bool, shape (y, x)
        True where the pixel is bad.

    Returns
    -------
    tuple of (numpy.ndarray, numpy.ndarray)
        Per round, ``targets`` (int64, flat indices of the pixels it fills) and
        ``neighbours`` (int64, shape (n_targets, 8), flat indices, -1 where there is
        no usable neighbour).

    Raises
    ------
    ValueError
        The mask covers every pixel.
    """
    ny, nx = mask.shape
    if mask.all():
        raise ValueError("the mask covers every pixel of the frame: nothing to fill them from")
    good = ~mask
    todo = mask.copy()
    rounds = []
    while todo.any():
        ty, tx = np.nonzero(todo)
        nbr = np.full((ty.size, 8), -1, dtype=np.int64)
        for j, (dy, dx) in enumerate(_NEIGHBOURS):
            y, x = ty + dy, tx + dx
            inside = (y >= 0) & (y < ny) & (x >= 0) & (x < nx)
            ok = np.zeros(ty.size, dtype=bool)
            ok[inside] = good[y[inside], x[inside]]
            nbr[ok, j] = y[ok] * nx + x[ok]
        fillable = (nbr >= 0).any(axis=1)
        rounds.append((ty[fillable] * nx + tx[fillable], nbr[fillable]))
        good[ty[fillable], tx[fillable]] = True
        todo[ty[fillable], tx[fillable]] = False
    return tuple(rounds)


def apply_fill(frames, plan):
    """A copy of ``frames`` with the plan's pixels filled, same dtype.

    Only the masked pixels' neighbourhoods are converted to float64 (for the median);
    for integer frames each median is rounded to the nearest integer.

    Parameters
    ----------
    frames : numpy.ndarray, shape (..., y, x)
        Integer or float pixels: frames, or frames of z planes ``(n, z, y, x)``; every
        ``(y, x)`` plane is filled the same way.
    plan : tuple
        :func:`fill_plan` of a mask of shape (y, x).

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``frames``.
    """
    out = np.array(frames, copy=True, order="C")
    flat = out.reshape(-1, out.shape[-2] * out.shape[-1])  # one row per (y, x) plane
    for targets, nbr in plan:
        values = flat[:, np.where(nbr >= 0, nbr, 0)].astype(np.float64)  # (n, targets, 8)
        values[:, nbr < 0] = np.nan
        flat[:, targets] = to_dtype(np.nanmedian(values, axis=2), out.dtype)
    return out


def to_dtype(values, dtype):
    """float64 values back to ``dtype``: integers rounded (halves to even) and clipped.

    Parameters
    ----------
    values : numpy.ndarray of float64
    dtype : numpy.dtype
        An integer or float dtype.

    Returns
    -------
    numpy.ndarray of ``dtype``
    """
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def fill_masked(frames, mask):
    """Replace masked pixels by the median of their unmasked 3 x 3 neighbours.

    Parameters
    ----------
    frames : numpy.ndarray, shape (y, x), (n, y, x) or (n, z, y, x)
        One frame, a stack, or a stack of 3-D frames, integer or float pixels; every
        ``(y, x)`` plane is filled from its own neighbours (never from other planes).
    mask : numpy.ndarray of bool, shape (y, x)
        True where the pixel is bad.

    Returns
    -------
    numpy.ndarray
        Same shape and dtype as ``frames``; unmasked pixels unchanged.

    Raises
    ------
    ValueError
        ``mask`` covers every pixel, or its shape differs from the frames'.

    Notes
    -----
    Each masked pixel gets, in every frame, the median of the values of its 8
    neighbours (fewer at the frame's edge) that are not masked; for integer frames the
    median is rounded to the nearest integer (halves to even). A masked pixel whose
    neighbours are all masked (inside a block of bad pixels) is filled in a later
    round, from the neighbours filled before it, so blocks fill from their edges
    inwards.
    """
    frames = np.asarray(frames)
    mask = np.asarray(mask, dtype=bool)
    if frames.shape[-2:] != mask.shape:
        raise ValueError(
            f"the mask has shape {mask.shape} but the frames have shape {frames.shape[-2:]}"
        )
    return apply_fill(frames, fill_plan(mask))
