"""daskloc: Crocker-Grier particle location for microscopy videos of any length, on Dask.

The data flow one way: ``open_video`` makes a lazy, frame-chunked array of a video;
``locate_frame``/``locate_stack`` find features in frames (pure numpy, no Dask);
``locate`` turns a video into a dask DataFrame of features (one partition per chunk,
divisions by frame); ``batch`` streams features to a store as chunks finish and
resumes interrupted jobs; ``read_features`` loads any frame range back; ``export``
copies a store to CSV, Excel, MATLAB or another store.
"""

from daskloc._version import __version__
from daskloc.cluster import connect, make_client
from daskloc.export import export
from daskloc.locate import locate_frame, locate_stack
from daskloc.pipeline import BatchError, batch, locate
from daskloc.stores import StoreMismatchError, read_features, store_info
from daskloc.video import open_video

__all__ = [
    "BatchError",
    "StoreMismatchError",
    "__version__",
    "batch",
    "connect",
    "export",
    "locate",
    "locate_frame",
    "locate_stack",
    "make_client",
    "open_video",
    "read_features",
    "store_info",
]


def __getattr__(name):
    # ``daskloc.plot`` without ``import daskloc.plot``: matplotlib is imported only then.
    if name == "plot":
        import importlib

        return importlib.import_module("daskloc.plot")
    raise AttributeError(f"module 'daskloc' has no attribute {name!r}")
