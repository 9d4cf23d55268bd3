"""daskloc: Crocker-Grier particle location for microscopy videos of any length, on Dask.

The data flow one way: ``open_video`` makes a lazy, frame-chunked array of a video;
``locate_frame``/``locate_stack`` find features in frames (pure numpy, no Dask);
``locate`` turns a video into a dask DataFrame of features (one partition per chunk,
divisions by frame); ``batch`` streams features to a store as chunks finish and
resumes interrupted jobs; ``read_features`` loads any frame range back; ``export``
copies a store to CSV, Excel, MATLAB or another store. ``pixel_stats`` reduces a
video to per-pixel mean, variance, min and max in one pass; ``stuck_pixels`` and
``hot_pixels`` find bad pixels in them; ``correct_video`` (and ``mask=``,
``background=`` of ``locate``/``batch``) fills bad pixels and subtracts a static
background before locating.
"""

import importlib
import sys
import types

from daskloc._version import __version__  # noqa: F401 - in __all__, built below

#: Where each public name lives. Imported on first use (PEP 562), so ``import daskloc``
#: and the ``daskloc`` command start without importing dask, pandas and numba until a
#: name that needs them is used.
_NAMES = {
    "connect": "daskloc.cluster",
    "make_client": "daskloc.cluster",
    "correct_video": "daskloc.correct",
    "export": "daskloc.export",
    "locate_frame": "daskloc.locate",
    "locate_stack": "daskloc.locate",
    "BatchError": "daskloc.pipeline",
    "UndecodableChunksError": "daskloc.pipeline",
    "batch": "daskloc.pipeline",
    "locate": "daskloc.pipeline",
    "hot_pixels": "daskloc.pixels",
    "pixel_stats": "daskloc.pixels",
    "stuck_pixels": "daskloc.pixels",
    "ProgressBar": "daskloc.progress",
    "MetadataError": "daskloc.stores",
    "StoreInUseError": "daskloc.stores",
    "StoreMismatchError": "daskloc.stores",
    "UnsafeStoreError": "daskloc.stores",
    "read_features": "daskloc.stores",
    "store_info": "daskloc.stores",
    "VideoDecodeError": "daskloc.video",
    "open_video": "daskloc.video",
}

__all__ = sorted(["__version__", *_NAMES])


def __getattr__(name):
    # ``daskloc.plot`` without ``import daskloc.plot``: matplotlib is imported only then.
    if name == "plot":
        return importlib.import_module("daskloc.plot")
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module 'daskloc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found at once next time
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | {"plot"})


class _Package(types.ModuleType):
    """``daskloc`` itself. ``daskloc.locate`` is the function (as ``from daskloc import
    locate``), also after the kernel subpackage of the same name is imported, which
    would otherwise bind the subpackage here (``import daskloc.locate`` and ``from
    daskloc.locate import ...`` still reach the subpackage, through ``sys.modules``)."""

    def __setattr__(self, name, value):
        if name == "locate" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
