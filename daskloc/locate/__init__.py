"""The Crocker-Grier locate kernel: pure numpy/scipy/numba, no Dask, no I/O."""

from daskloc.locate._locate import (
    locate_frame,
    locate_stack,
    locate_stack_counted,
    nonfinite_message,
)
from daskloc.locate._params import PARAM_NAMES, PARAMETERS, Parameter, normalize_params
from daskloc.schema import empty_features, feature_columns

__all__ = [
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
