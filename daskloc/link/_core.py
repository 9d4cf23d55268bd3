"""Linking one segment of frames with trackpy's linker, and the rule that joins segments.

Pure numpy/pandas and trackpy: no Dask, no stores. :mod:`daskloc.link._api` cuts a
store's frames into segments, links them here (on the cluster's workers), proves each
join with :func:`join_segment` and writes the result.

The join rule
-------------
trackpy's linker (:class:`trackpy.linking.Linker`, no predictor) carries from one frame
to the next only

- the features of the last frame, each with its track, and
- with ``memory = m``, the last feature of each track that vanished within the last
  ``m`` frames (its "memory" set).

So its state after frame ``t`` is fixed by the features of frames ``t - m .. t`` (the
last ``m + 1`` frames) and by how they are grouped into tracks. Two linkers that end
frame ``t`` with the same grouping of those features hold the same state (up to the
track numbers), so every later decision of theirs is the same. A segment that starts
``W`` frames before the frame ``s`` it owns is therefore proven equal to one sequential
run when, over frames ``s - m - 1 .. s - 1``, it groups the features exactly as the
previous segment (already proven) did. Otherwise its warm-up was too short: the caller
relinks it from earlier. A segment that starts at the first frame is the sequential run.

Frames are every integer from the first frame with features to the last, empty ones
included, as :func:`trackpy.link` iterates them, so ``memory`` counts frame numbers.

Track numbers
-------------
A trajectory's ``particle`` number is its rank in birth order: trajectories numbered
0, 1, ... by their first feature (frame, then the feature's order in that frame). This
is what the segments can agree on; trackpy numbers tracks in the order its linker
creates them, which is the same in the first frame and may differ later. The
trajectories (which features belong together) are trackpy's.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading

import numpy as np

__all__ = [
    "LinkFailure",
    "SegmentLinks",
    "birth_order",
    "join_segment",
    "link_segment",
    "linker_options",
]

#: trackpy's linker numbers points and tracks with class-level counters that every new
#: linker resets: two linkers in threads of one process would corrupt each other's
#: numbers. Links in one process run one at a time (processes link in parallel).
_LINKER_LOCK = threading.Lock()


class LinkFailure(Exception):
    """trackpy's linker raised at ``frame`` (e.g. a ``SubnetOversizeException``)."""

    def __init__(self, frame, error):
        super().__init__(frame, error)
        self.frame = int(frame)
        self.error = error


def linker_options(memory=0, predictor=None, adaptive_stop=None, adaptive_step=0.95,
                   link_strategy=None):
    """The keyword arguments of :func:`trackpy.linking.link_iter` (values as given)."""
    options = {"memory": int(memory), "adaptive_step": adaptive_step}
    if predictor is not None:
        options["predictor"] = predictor
    if adaptive_stop is not None:
        options["adaptive_stop"] = adaptive_stop
    if link_strategy is not None:
        options["link_strategy"] = link_strategy
    return options


class SegmentLinks:
    """The links trackpy's linker made in one segment of frames.

    Attributes
    ----------
    start : int
        The first frame linked (the warm-up starts here).
    stop : int
        One past the last frame linked.
    frame : numpy.ndarray of int64, shape (n,)
        Frame of each feature linked, sorted (the features' order in the store).
    labels : numpy.ndarray of int64, shape (n,)
        The linker's track number of each feature (this segment's own numbering).
    failure : LinkFailure or None
        The error the linker raised, if any; ``labels`` then holds the frames before it
        (``-1`` after).
    """

    def __init__(self, start, stop, frame, labels, failure=None):
        self.start, self.stop = int(start), int(stop)
        self.frame = frame
        self.labels = labels
        self.failure = failure

    def rows(self, lo, hi):
        """Row slice of the features of frames ``[lo, hi)``."""
        a, b = np.searchsorted(self.frame, [lo, hi])
        return slice(int(a), int(b))


def link_segment(frame, positions, start, stop, search_range, options):
    """Link the features of frames ``[start, stop)`` with trackpy's linker.

    Parameters
    ----------
    frame : numpy.ndarray of int, shape (n,)
        Frame number of each feature, sorted (stable order within a frame).
    positions : numpy.ndarray of float, shape (n, ndim)
        The features' positions (columns in the order of ``search_range``'s axes),
        pixels.
    start, stop : int
        The frames to link; every feature must lie in ``[start, stop)``.
    search_range : float or tuple of float
        trackpy's ``search_range`` (pixels; per axis as a tuple).
    options : dict
        Further keyword arguments of :func:`trackpy.linking.link_iter`
        (:func:`linker_options`).

    Returns
    -------
    SegmentLinks
        Frames start at the first frame with features (an empty segment links nothing).
        Every integer frame up to the last one with features is given to the linker,
        empty frames included, as :func:`trackpy.link` does. An error of the linker at
        a frame is caught and kept in ``failure``.

    References
    ----------
    Crocker, J. C. & Grier, D. G. (1996). Methods of digital video microscopy for
    colloidal studies. J. Colloid Interface Sci. 179, 298-310 (the linking step).
    trackpy's :func:`trackpy.linking.link_iter` is the implementation used.
    """
    from trackpy.linking import link_iter

    frame = np.asarray(frame, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    labels = np.full(frame.size, -1, dtype=np.int64)
    if frame.size == 0:
        return SegmentLinks(start, stop, frame, labels)
    first, last = int(frame[0]), int(frame[-1])
    edges = np.searchsorted(frame, np.arange(first, last + 2))

    def coords():
        for i, t in enumerate(range(first, last + 1)):
            yield t, positions[edges[i]:edges[i + 1]]

    done = first - 1  # the last frame whose links are in
    failure = None
    # trackpy logs a line per frame at INFO (and shows INFO by default): quiet here
    log = logging.getLogger("trackpy")
    with _LINKER_LOCK, _level(log, logging.WARNING), _few_collections():
        try:
            for t, ids in link_iter(coords(), search_range, **options):
                i = t - first
                labels[edges[i]:edges[i + 1]] = ids
                done = t
        except Exception as exc:  # noqa: BLE001 - reported with its frame by the caller
            failure = LinkFailure(done + 1, exc)
    return SegmentLinks(first, stop, frame, labels, failure)


#: Allocations between two young-generation collections of the cyclic GC while linking
#: (Python's default: 700). trackpy's linker allocates a few objects per feature per
#: frame and keeps many alive, so with the default the collector runs thousands of
#: times per frame and takes 40-50 % of the time (measured on the bulk-water movie's
#: features: 7.6 s with the default, 4.2 s with this). Results are unchanged: only
#: when garbage is collected changes.
GC_THRESHOLD0 = 100_000


@contextlib.contextmanager
def _few_collections():
    """The cyclic GC's first threshold at :data:`GC_THRESHOLD0` for the block."""
    before = gc.get_threshold()
    gc.set_threshold(max(GC_THRESHOLD0, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@contextlib.contextmanager
def _level(logger, level):
    """``logger`` at ``level`` at least, for the block."""
    before = logger.level
    logger.setLevel(max(level, before))
    try:
        yield
    finally:
        logger.setLevel(before)


def birth_order(labels, known=None, first_id=0):
    """Number trajectories by birth: the global ``particle`` of each feature.

    Parameters
    ----------
    labels : numpy.ndarray of int64, shape (n,)
        Track numbers of features in store order (frame, then order in the frame).
    known : dict of int to int, optional
        Track number -> particle already given (tracks that continue from before).
    first_id : int
        Particle number of the first track born here.

    Returns
    -------
    particle : numpy.ndarray of int64, shape (n,)
    next_id : int
        One past the largest particle number given.
    """
    known = known or {}
    uniq, first = np.unique(labels, return_index=True)
    order = np.argsort(first, kind="stable")
    uniq = uniq[order]
    ids = np.empty(uniq.size, dtype=np.int64)
    new = np.array([u not in known for u in uniq.tolist()], dtype=bool)
    ids[~new] = [known[u] for u in uniq[~new].tolist()]
    ids[new] = first_id + np.arange(int(new.sum()), dtype=np.int64)
    lookup = np.argsort(uniq)
    particle = ids[lookup[np.searchsorted(uniq[lookup], labels)]] if labels.size else \
        np.empty(0, dtype=np.int64)
    return particle, first_id + int(new.sum())


def join_segment(window_particles, window_labels):
    """Whether a segment grouped the features of the join window as its predecessor did.

    Parameters
    ----------
    window_particles : numpy.ndarray of int64, shape (k,)
        The predecessor's (proven) particle numbers of the features of the window: the
        last ``memory + 1`` frames before the frame the segment owns from.
    window_labels : numpy.ndarray of int64, shape (k,)
        The segment's own track numbers of the same features, in the same order.

    Returns
    -------
    dict of int to int or None
        Track number -> particle number for every track of the segment in the window
        when the two groupings are the same (one-to-one); None when they differ.
    """
    a = np.asarray(window_particles, dtype=np.int64)
    b = np.asarray(window_labels, dtype=np.int64)
    if a.shape != b.shape or (b < 0).any():
        return None
    if a.size == 0:
        return {}
    pairs = np.unique(np.stack([b, a], axis=1), axis=0)
    if len(np.unique(pairs[:, 0])) != len(pairs) or len(np.unique(pairs[:, 1])) != len(pairs):
        return None
    return {int(u): int(p) for u, p in pairs.tolist()}
