"""One chunk's features as a partition of the result: its schema (the empty meta),
the conversion to it, and the task of :func:`daskloc.pipeline.locate`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from daskloc.locate import locate_stack_counted, no_feature_message, nonfinite_message


def _meta(columns):
    """The empty partition of a job whose feature columns are ``columns`` (the job's
    columns, :meth:`daskloc.pipeline._plan._Plan.columns`; ``frame`` is the index)."""
    return pd.DataFrame(
        {c: np.empty(0, dtype=np.float64) for c in columns},
        index=pd.Index(np.empty(0, dtype=np.int64), name="frame"),
    )


def _to_partition(df, columns):
    out = df[list(columns)].astype(np.float64)
    out.index = pd.Index(df["frame"].to_numpy(dtype=np.int64), name="frame")
    return out


def _locate_block(block, frame_numbers, params, columns):
    df, n_bad, n_bad_frames, empty = locate_stack_counted(block, frame_numbers=frame_numbers,
                                                          **params)
    # NaN pixels, frames without features: one warning each per partition, where it is
    # computed (locate's Notes)
    if n_bad or empty:
        import warnings

        where = f"daskloc.locate, frames {frame_numbers[0]}..{frame_numbers[-1]}"
        if n_bad:
            warnings.warn(nonfinite_message(n_bad, n_bad_frames, where=where), UserWarning,
                          stacklevel=2)
        if empty:
            warnings.warn(no_feature_message(empty, where=where, n_frames=len(frame_numbers)),
                          UserWarning, stacklevel=2)
    return _to_partition(df, columns)
