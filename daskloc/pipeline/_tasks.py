"""The worker side of :func:`daskloc.pipeline.batch`: one chunk task locates a chunk
and appends it to the store (or sends it back to the client's writer).
"""

from __future__ import annotations

import numpy as np

from daskloc.locate import locate_stack_counted
from daskloc.metadata import chunk_id
from daskloc.pipeline._errors import _append_chunk
from daskloc.video import skip_undecodable


def _chunk_task_skipping(ref, frame_numbers, store, start, stop, params, columns, identity):
    """:func:`_chunk_task` with ``on_error="skip"``: the chunk's frames are read here,
    inside :func:`daskloc.video.skip_undecodable`, and only the frames that decode are
    located; the others are listed in the summary (and stored with the chunk)."""
    from dask.local import get_sync


    with skip_undecodable() as skipped:
        block = get_sync(ref.dsk, ref.key)
    frame_numbers = np.asarray(frame_numbers, dtype=np.int64)
    gone = sorted(int(f) for f in skipped if start <= f < stop)
    keep = ~np.isin(frame_numbers, gone)
    summary = _chunk_task(np.asarray(block)[keep], frame_numbers[keep], store, start, stop,
                          params, columns, chunk_id(identity, start, stop, gone),
                          skipped=gone)
    summary["n_frames"] = len(frame_numbers)
    summary["skip_reasons"] = {int(f): skipped.reasons.get(f) for f in gone}
    return summary


def _chunk_task(block, frame_numbers, store, start, stop, params, columns, chunk_id,
                skipped=()):
    """Worker side of :func:`batch`: locate one chunk and append it to the store.

    ``columns`` are the job's feature columns (its metadata's, decided from the video's
    dims and the parameters before any chunk ran): every chunk is stored with exactly
    these, in this order, as float64, and ``frame`` as int64.

    ``store`` is a :class:`~daskloc.stores.FeatureStore`; it pickles to its location and
    options only, and opens its own files or connections on the worker. A store that
    allows one writer only is not written here: the features go back to the client
    (in the summary's ``"features"``), which appends them."""
    # NaN pixels: counted here, warned about once per job by the client (_execute)
    df, n_bad, n_bad_frames, empty = locate_stack_counted(block, frame_numbers=frame_numbers,
                                                          **params)
    cols = list(columns)
    df = df[cols + ["frame"]].astype({c: np.float64 for c in cols} | {"frame": np.int64})
    summary = {"start": start, "stop": stop, "n_rows": int(len(df)),
               "n_frames": len(frame_numbers), "chunk_id": chunk_id,
               "n_nonfinite": n_bad, "n_nonfinite_frames": n_bad_frames,
               "no_features": empty,
               "skipped": list(skipped)}
    if store.concurrent_writers:
        _append_chunk(store, start, stop, df, chunk_id, skipped)
    else:
        summary["features"] = df
    return summary
