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

from daskloc._version import __version__
from daskloc.cluster import connect, make_client
from daskloc.correct import correct_video
from daskloc.export import export
from daskloc.locate import locate_frame, locate_stack
from daskloc.pipeline import BatchError, UndecodableChunksError, batch, locate
from daskloc.pixels import hot_pixels, pixel_stats, stuck_pixels
from daskloc.progress import ProgressBar
from daskloc.stores import (
    MetadataError,
    StoreInUseError,
    StoreMismatchError,
    UnsafeStoreError,
    read_features,
    store_info,
)
from daskloc.video import VideoDecodeError, open_video

__all__ = [
    "BatchError",
    "MetadataError",
    "ProgressBar",
    "StoreInUseError",
    "StoreMismatchError",
    "UndecodableChunksError",
    "UnsafeStoreError",
    "VideoDecodeError",
    "__version__",
    "batch",
    "connect",
    "correct_video",
    "export",
    "hot_pixels",
    "locate",
    "locate_frame",
    "locate_stack",
    "make_client",
    "open_video",
    "pixel_stats",
    "read_features",
    "store_info",
    "stuck_pixels",
]


def __getattr__(name):
    # ``daskloc.plot`` without ``import daskloc.plot``: matplotlib is imported only then.
    if name == "plot":
        import importlib

        return importlib.import_module("daskloc.plot")
    raise AttributeError(f"module 'daskloc' has no attribute {name!r}")
