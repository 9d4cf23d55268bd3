"""Watching a job from outside: what a store holds now, and how fast it grows.

:func:`job_progress` reads one snapshot (the store's metadata and chunks, and the
features of the last chunks written); :func:`watch_job` yields snapshots until the job
ends, with the rate and, when the total is known, the time left. ``daskloc watch
STORE`` and the tutorial notebook's live plot are built on them. A reader only: no
lease is taken, nothing is written.
"""

from __future__ import annotations

import time

__all__ = ["job_progress", "watch_job"]

#: Chunks whose features per frame a snapshot reads (the most recent ones).
RECENT_CHUNKS = 8


def job_progress(store, *, recent=RECENT_CHUNKS, storage_options=None):
    """One snapshot of a job's store: frames done, features, features per frame lately.

    Parameters
    ----------
    store : str, os.PathLike or FeatureStore
        A store being written by :func:`daskloc.batch` (``follow=True`` or not), or
        one written before.
    recent : int, default 8
        How many of the last chunks written to read for ``per_frame``.
    storage_options : dict, optional
        fsspec options for stores on object storage.

    Returns
    -------
    dict
        :func:`daskloc.stores.store_info` (``frames_complete``, ``frames_total``,
        ``n_features``, ``complete``, ``growing``, ``writer`` ...) plus
        ``per_frame``: a :class:`pandas.Series` of the number of features in each
        frame of the last ``recent`` chunks (index ``frame``; frames without
        features count 0), and ``running``: True while a job holds the store's
        lease.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`daskloc.read_features` (no store there, not a daskloc store).
    """
    import numpy as np
    import pandas as pd

    from daskloc.stores import open_store, read_features, store_info

    info = store_info(store, storage_options=storage_options)
    st = open_store(store, "r", storage_options=storage_options)
    meta = st.metadata()
    done = sorted(st.chunk_report(meta)["valid"]) if meta is not None else []
    last = done[-recent:] if recent else []
    per_frame = pd.Series([], dtype=np.int64, index=pd.Index([], dtype=np.int64, name="frame"))
    if last:
        rows = read_features(store, frames=slice(last[0][0], last[-1][1]),
                             storage_options=storage_options)
        frames = np.concatenate([np.arange(a, b) for a, b in last])
        counts = (rows["frame"] if "frame" in rows.columns
                  else pd.Series(rows.index.to_numpy())).value_counts()
        per_frame = counts.reindex(frames, fill_value=0).astype(np.int64)
        per_frame.index.name = "frame"
    info["per_frame"] = per_frame
    writer = info.get("writer")
    info["running"] = bool(writer) and not writer.get("stale")
    return info


def watch_job(store, *, interval=1.0, recent=RECENT_CHUNKS, storage_options=None, stop=None):
    """Snapshots of a running job, every ``interval`` seconds, until it ends.

    Parameters
    ----------
    store : str, os.PathLike or FeatureStore
    interval : float, default 1.0
        Seconds between two snapshots.
    recent : int, default 8
        As for :func:`job_progress`.
    storage_options : dict, optional
    stop : callable, optional
        Called with each snapshot; True stops the watch (e.g. after a number of
        snapshots).

    Yields
    ------
    dict
        :func:`job_progress`, plus ``rate`` (frames per second over the last two
        snapshots, None at first) and ``eta`` (seconds left when the job's total is
        known and the rate positive, else None). The last snapshot is the first one
        taken when no job holds the store any more (it ended, or stopped).
    """
    before = None
    while True:
        now = time.monotonic()
        snap = job_progress(store, recent=recent, storage_options=storage_options)
        snap["rate"] = snap["eta"] = None
        done = snap.get("frames_complete")
        if before is not None and done is not None and before[1] is not None:
            seconds = now - before[0]
            if seconds > 0:
                snap["rate"] = (done - before[1]) / seconds
        total = snap.get("frames_total")
        if (snap["rate"] and total is not None and done is not None
                and not snap.get("growing")):
            snap["eta"] = max(0.0, (total - done) / snap["rate"])
        yield snap
        if not snap["running"] or (stop is not None and stop(snap)):
            return
        before = (now, done)
        time.sleep(max(0.0, interval - (time.monotonic() - now)))
