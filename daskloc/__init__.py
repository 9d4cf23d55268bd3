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
import importlib.util
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
    "LinkError": "daskloc.link",
    "link": "daskloc.link",
    "BatchError": "daskloc.pipeline",
    "UndecodableChunksError": "daskloc.pipeline",
    "batch": "daskloc.pipeline",
    "calibration": "daskloc.pipeline",
    "locate": "daskloc.pipeline",
    "hot_pixels": "daskloc.pixels",
    "pixel_stats": "daskloc.pixels",
    "stuck_pixels": "daskloc.pixels",
    "ProgressBar": "daskloc.progress",
    "MetadataError": "daskloc.stores",
    "StoreInUseError": "daskloc.stores",
    "StoreMismatchError": "daskloc.stores",
    "UnsafeStoreError": "daskloc.stores",
    "job_progress": "daskloc.stores",
    "read_features": "daskloc.stores",
    "store_info": "daskloc.stores",
    "watch_job": "daskloc.stores",
    "VideoDecodeError": "daskloc.video",
    "open_video": "daskloc.video",
    "probe": "daskloc.video",
}

__all__ = sorted(["__version__", *_NAMES])


def __getattr__(name):
    # ``daskloc.plot`` without ``import daskloc.plot``: matplotlib is imported only then.
    if name == "plot":
        return importlib.import_module("daskloc.plot")
    module = _NAMES.get(name)
    if module is None:
        # a subpackage used as an attribute after ``import daskloc`` (``daskloc.stores``),
        # as when this namespace imported them all
        if not name.startswith("_") and importlib.util.find_spec(f"daskloc.{name}"):
            return importlib.import_module(f"daskloc.{name}")
        raise AttributeError(f"module 'daskloc' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found at once next time
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | {"plot"})


class _Package(types.ModuleType):
    """``daskloc`` itself. A public name that is also a submodule's (``locate``,
    ``export``) stays the function (as ``from daskloc import export``), also after the
    submodule is imported, which would otherwise bind the submodule here (``import
    daskloc.export`` and ``from daskloc.locate import ...`` still reach the submodules,
    through ``sys.modules``)."""

    def __setattr__(self, name, value):
        if name in _NAMES and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)

    def __reduce__(self):
        # pickled by name, as every module is (a ModuleType subclass is not, by default:
        # a task referring to daskloc could not be sent to a worker)
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _Package
