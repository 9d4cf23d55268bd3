"""The Crocker-Grier locate kernel: pure numpy/scipy/numba, no Dask, no I/O."""

from daskloc.locate._locate import (
    locate_frame,
    locate_stack,
    locate_stack_counted,
    nonfinite_message,
)
from daskloc.locate._params import (
    ENGINES,
    PARAM_NAMES,
    PARAMETERS,
    TRACKPY_ONLY,
    Parameter,
    check_engine,
    normalize_params,
    split_options,
)
from daskloc.schema import empty_features, feature_columns

__all__ = [
    "ENGINES",
    "TRACKPY_ONLY",
    "check_engine",
    "split_options",
    "PARAMETERS",
    "PARAM_NAMES",
    "Parameter",
    "empty_features",
    "feature_columns",
    "locate_frame",
    "locate_stack",
    "locate_stack_counted",
    "nonfinite_message",
    "normalize_params",
]
