"""Compare daskloc's features with trackpy's, computed live on the same frame."""

import warnings

import numpy as np
from scipy.spatial import cKDTree

PROPERTIES = ("mass", "size", "ecc", "signal", "raw_mass")
POSITIONS = ("z", "y", "x")


def _properties(theirs):
    """trackpy's characterisation columns in this table (per-axis sizes included)."""
    return [c for c in theirs.columns
            if c in PROPERTIES or c.startswith("size_")]


def trackpy_locate(image, diameter, **params):
    import trackpy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trackpy.locate(image, diameter, engine="numba", **params)


def match(ours, theirs, tol=0.01):
    """Pair each trackpy feature with our nearest one.

    Returns (n_theirs, n_matched, n_extra, worst relative difference per property).
    """
    n_theirs = len(theirs)
    if n_theirs == 0 or len(ours) == 0:
        return n_theirs, 0, len(ours), {}
    pos = [c for c in POSITIONS if c in theirs]
    assert [c for c in POSITIONS if c in ours] == pos, "position columns differ"
    # Within tol along every axis (Chebyshev distance; in 2-D this is at most tol * sqrt 2
    # apart, and tol is far below any real difference).
    dist, idx = cKDTree(ours[pos].to_numpy()).query(theirs[pos].to_numpy(), p=np.inf)
    ok = dist < tol
    worst = {}
    for col in _properties(theirs):
        if col in ours:
            a = theirs[col].to_numpy(dtype=float)[ok]
            b = ours[col].to_numpy()[idx[ok]]
            both_nan = np.isnan(a) & np.isnan(b)  # 3-D ecc: NaN in both is the same
            rel = np.abs(b - a) / np.maximum(np.abs(a), 1e-12)
            rel = np.where(both_nan, 0.0, np.where(np.isnan(rel), np.inf, rel))
            worst[col] = float(rel.max()) if rel.size else 0.0
    matched = int(ok.sum())
    # Each of ours is used at most once, else extra features could hide.
    assert len(np.unique(idx[ok])) == matched
    return n_theirs, matched, len(ours) - matched, worst


def assert_same_features(ours, theirs, *, tol=0.01, rel=1e-3, min_found=0.999, max_extra=0.001):
    n, matched, extra, worst = match(ours, theirs, tol)
    if n == 0:
        assert len(ours) == 0, f"trackpy found nothing, daskloc found {len(ours)}"
        return
    assert matched >= min_found * n, f"only {matched} of {n} trackpy features found within {tol} px"
    assert extra <= max_extra * n, f"{extra} extra features beyond trackpy's {n}"
    for col, w in worst.items():
        assert w <= rel, f"{col} differs by {w:.2e} relative (limit {rel})"
