"""What runs on a worker: link one segment read from the feature store, then number its
trajectories and write its chunks of trajectories.

A linked segment stays on the worker that linked it (a Dask future): the client only
fetches its small join window (:func:`segment_head`), and the write
(:func:`finish_segment`) runs where the features already are.
"""

from __future__ import annotations

import numpy as np

from daskloc.link._core import birth_order, link_segment

__all__ = ["LinkedSegment", "finish_segment", "link_task", "segment_head"]


class LinkedSegment:
    """A segment's features (the frames it owns) and the links of every frame it linked."""

    def __init__(self, owned, links, own_start, own_stop):
        self.owned = owned
        self.links = links
        self.own_start = own_start
        self.own_stop = own_stop


def link_task(features, start, own_start, own_stop, pos_columns, search_range, options):
    """Read frames ``[start, own_stop)`` of the feature store and link them.

    Parameters
    ----------
    features : FeatureStore
        The features' table (opened on the worker from its location).
    start : int
        The first frame linked (``own_start`` minus the warm-up).
    own_start, own_stop : int
        The frames whose trajectories this segment gives.
    pos_columns : list of str
    search_range, options
        As :func:`daskloc.link._core.link_segment`.

    Returns
    -------
    LinkedSegment
    """
    df = features.read(slice(start, own_stop), strict=False)
    frame = df["frame"].to_numpy(dtype=np.int64)
    links = link_segment(frame, df[pos_columns].to_numpy(dtype=np.float64), start, own_stop,
                         search_range, options)
    a = int(np.searchsorted(frame, own_start))
    owned = df.iloc[a:].reset_index(drop=True)
    return LinkedSegment(owned, links, own_start, own_stop)


def segment_head(seg, window):
    """What the client needs to join a segment: its labels over the join window.

    Parameters
    ----------
    seg : LinkedSegment
    window : int
        Frames in the window (``memory + 1``), ending at ``seg.own_start``.

    Returns
    -------
    dict
        ``labels`` (int64 array: the segment's track numbers of the window's features),
        ``failure`` (None or ``(frame, error text, error type name)``).
    """
    links = seg.links
    rows = links.rows(seg.own_start - window, seg.own_start)
    failure = None
    if links.failure is not None:
        err = links.failure.error
        failure = (links.failure.frame, str(err), type(err).__name__)
    return {"labels": links.labels[rows].copy(), "failure": failure}


def finish_segment(seg, known, first_id, window, next_start, chunks, out, identities,
                   write):
    """Number the segment's trajectories and write (or return) its chunks.

    Parameters
    ----------
    seg : LinkedSegment
    known : dict of int to int
        The segment's track number -> particle of the tracks that continue from the
        segment before (:func:`daskloc.link._core.join_segment`).
    first_id : int
        The particle number of the first trajectory born in this segment.
    window : int
        Frames of the next join window (``memory + 1``).
    next_start : int
        The first frame the next segment owns: its join window is the ``window`` frames
        before it (``seg.own_stop``, or later when the store's frames have gaps, as a
        stepped selection's chunks do).
    chunks : list of (int, int)
        The trajectories' chunks of the frames this segment owns, in order, with those
        already stored left out.
    out : FeatureStore
        The trajectories' table.
    identities : dict
        ``{(start, stop): chunk identity}``.
    write : bool
        Append the chunks here (a store that takes concurrent writers); False: return
        them, for the client to append.

    Returns
    -------
    dict
        ``next_id``, ``tail`` (particles of the features of the ``window`` frames before
        ``next_start``),
        ``written`` (``[(start, stop, n_rows)]``) and, when not ``write``, ``chunks``
        (``[(start, stop, DataFrame)]``).
    """
    links = seg.links
    own = links.rows(seg.own_start, seg.own_stop)
    particle, next_id = birth_order(links.labels[own], known, first_id)
    df = seg.owned.assign(particle=particle)
    frame = df["frame"].to_numpy()
    tail_rows = slice(int(np.searchsorted(frame, next_start - window)), len(df))
    out_chunks, written = [], []
    for a, b in chunks:
        i, j = np.searchsorted(frame, [a, b])
        part = df.iloc[int(i):int(j)].reset_index(drop=True)
        if write:
            out.append_chunk(a, b, part, chunk_id=identities[(a, b)])
        else:
            out_chunks.append((a, b, part))
        written.append((a, b, len(part)))
    result = {"next_id": int(next_id), "tail": particle[tail_rows].copy(), "written": written}
    if not write:
        result["chunks"] = out_chunks
    return result
