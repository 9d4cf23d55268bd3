"""Open microscopy videos as lazy arrays chunked by frame.

:func:`open_video` turns a movie, a multi-page TIFF, a Zeiss CZI file, an image
sequence, an OME-Zarr image, a Zarr array, a pims reader or an in-memory array into an
:class:`xarray.DataArray` with dims ``("frame", "y", "x")`` (plus ``"channel"`` for
colour), backed by a dask array chunked along ``frame`` only.

The task graph holds no pixel data and no open file: every chunk task receives a small,
picklable description of what to read (a path, a handful of frame numbers or
timestamps) and opens its own reader. Anything expensive to discover -- the number of
frames, a movie's table of contents (packet timestamps and keyframes) -- is found once,
on the client, when the video is opened.

Layout
------
``_base``
    The :class:`Source` interface and the errors every source shares.
``_chunks``
    The graph of chunk tasks and what one task does (channel, decode errors).
``_registry``
    Which source opens a thing: built-ins plus the ``daskloc.readers`` plugins.
``_api``
    :func:`open_video`: frame selection, ``chunks="auto"``, ``channel``, ``position``.
``_calibration``
    :class:`Calibration`: µm per pixel per axis and frames per second, the one model
    readers fill (``attrs``) and stores record.
``_probe``
    :func:`probe`: what a recording holds and how a job would read it.
``arrays``, ``zarr``, ``omezarr``, ``movie``, ``tiff``, ``czi``, ``images``, ``pims``
    One module per built-in source (``czi`` needs the ``[czi]`` extra: pylibCZIrw;
    ``omezarr``: OME-Zarr images and bioformats2raw containers, local or on S3;
    ``pims``: any pims reader, reopened in each task from its class and path; pims
    itself is imported only for pims objects).

Third-party readers: the ``daskloc.readers`` entry point group
--------------------------------------------------------------
A package adds a video format by subclassing :class:`Source` and declaring the class
in its metadata, e.g. in ``pyproject.toml``::

    [project.entry-points."daskloc.readers"]
    myformat = "mypackage.reader:MyFormatSource"

The entry points are read lazily, the first time a video is opened (call
:func:`reload_readers` to read them again in a running process). Sources are asked
``can_open(source)`` in increasing :attr:`Source.priority` (built-ins 10-40, a plugin's
default 50, the image sequence -- which takes any directory, glob or list -- 90), so a
plugin sees what no specific built-in claims and can set a lower priority to come
first. A plugin that cannot be imported, is not a :class:`Source` subclass, or whose
``can_open`` raises is skipped with a ``RuntimeWarning``. :mod:`daskloc.testing.readers`
holds the conformance suite (``ReaderTests``) a reader's tests subclass.

A minimal reader of ``.npy`` stacks::

    import numpy as np
    from daskloc.video import Source

    class NpySource(Source):
        name, suffixes, summary, per_frame = "npy", (".npy",), "NumPy files (.npy)", True

        def __init__(self, source):
            self.path = str(source)
            a = np.load(self.path, mmap_mode="r")
            self.frame_shape, self.dtype = a.shape[1:], a.dtype
            self.labels = np.arange(len(a), dtype=np.int64)
            self.attrs = {"source": self.path, "original_shape": a.shape,
                          "original_dtype": str(a.dtype), "n_frames": len(a)}

        def spec(self):
            return (self.path,)

        def chunk_args(self, positions):
            return tuple(int(p) for p in positions)

        @staticmethod
        def read(spec, arg):
            yield slice(None), np.load(spec[0], mmap_mode="r")[list(arg)]
"""

from daskloc.video._api import DEFAULT_CHUNK_FRAMES, frame_chunked, grey_video, open_video
from daskloc.video._base import (
    AUTO_CHUNK_BYTES,
    AUTO_FRAMES,
    AUTO_MOVIE_FRAMES,
    Position,
    SkippedFrames,
    Source,
    Unreadable,
    UnsupportedSourceError,
    VideoDecodeError,
    VideoError,
    pick_position,
    skip_undecodable,
)
from daskloc.video._calibration import Calibration
from daskloc.video._chunks import GREY_WEIGHTS
from daskloc.video._probe import probe, probe_text
from daskloc.video._registry import (
    ENTRY_POINT_GROUP,
    Found,
    classify,
    find_videos,
    positions,
    reload_readers,
    source_for,
    sources,
)
from daskloc.video.images import IMAGE_EXTENSIONS
from daskloc.video.movie import MOVIE_EXTENSIONS
from daskloc.video.tiff import TIFF_EXTENSIONS

__all__ = [
    "AUTO_CHUNK_BYTES",
    "AUTO_FRAMES",
    "AUTO_MOVIE_FRAMES",
    "Calibration",
    "DEFAULT_CHUNK_FRAMES",
    "ENTRY_POINT_GROUP",
    "GREY_WEIGHTS",
    "IMAGE_EXTENSIONS",
    "MOVIE_EXTENSIONS",
    "TIFF_EXTENSIONS",
    "Found",
    "Position",
    "SkippedFrames",
    "Source",
    "Unreadable",
    "UnsupportedSourceError",
    "VideoDecodeError",
    "VideoError",
    "classify",
    "find_videos",
    "frame_chunked",
    "grey_video",
    "open_video",
    "pick_position",
    "positions",
    "probe",
    "probe_text",
    "reload_readers",
    "skip_undecodable",
    "source_for",
    "sources",
]
