"""The Crocker-Grier locate kernel: pure numpy/scipy/numba, no Dask, no I/O.

Names are imported on first use (PEP 562): the parameter table
(:data:`PARAMETERS`, which the CLI's options are made from) is there without
importing numba.

``daskloc.locate`` (the attribute) is the lazy :func:`daskloc.locate` function, as in
trackpy, so ``import daskloc.locate as L`` binds that function, not this package (Python
reads the attribute); import names from here instead::

    from daskloc.locate import locate_frame, locate_stack
"""

import importlib

_NAMES = {
    "locate_frame": "daskloc.locate._locate",
    "locate_stack": "daskloc.locate._locate",
    "locate_stack_counted": "daskloc.locate._locate",
    "nonfinite_message": "daskloc.locate._locate",
    "no_feature_message": "daskloc.locate._locate",
    "add_no_feature_frames": "daskloc.locate._locate",
    "NO_FEATURE_MESSAGES": "daskloc.locate._locate",
    "ENGINES": "daskloc.locate._params",
    "PARAM_NAMES": "daskloc.locate._params",
    "PARAMETERS": "daskloc.locate._params",
    "TRACKPY_ONLY": "daskloc.locate._params",
    "Parameter": "daskloc.locate._params",
    "check_engine": "daskloc.locate._params",
    "normalize_params": "daskloc.locate._params",
    "job_columns": "daskloc.locate._params",
    "check_ndim": "daskloc.locate._params",
    "axis_values": "daskloc.locate._params",
    "params_ndim": "daskloc.locate._params",
    "PER_AXIS": "daskloc.locate._params",
    "split_options": "daskloc.locate._params",
    "empty_features": "daskloc.schema",
    "feature_columns": "daskloc.schema",
}

__all__ = sorted(_NAMES)


def __getattr__(name):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'daskloc.locate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
