"""Open microscopy videos as lazy arrays chunked by frame.

:func:`open_video` turns a movie, a multi-page TIFF, an image sequence, a Zarr array or
an in-memory array into an :class:`xarray.DataArray` with dims ``("frame", "y", "x")``
(plus ``"channel"`` for colour), backed by a dask array chunked along ``frame`` only.

The task graph holds no pixel data and no open file: every chunk task receives a small,
picklable description of what to read (a path, a handful of frame numbers or
timestamps) and opens its own reader. Anything expensive to discover -- the number of
frames, a movie's table of contents (packet timestamps and keyframes) -- is found once,
on the client, when the video is opened.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import glob as _glob
import itertools
import numbers
import os
import re
import threading
from pathlib import Path

import numpy as np

__all__ = ["VideoDecodeError", "VideoError", "open_video", "skip_undecodable"]

#: Movie containers read through PyAV (FFmpeg), compared case-insensitively.
MOVIE_EXTENSIONS = (".mov", ".mp4", ".m4v", ".avi", ".mkv", ".webm")
#: Multi-page TIFF files, read with tifffile.
TIFF_EXTENSIONS = (".tif", ".tiff")
#: Single-image files accepted in an image sequence.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")

_SUPPORTED = (
    "movies (" + ", ".join(MOVIE_EXTENSIONS) + "), multi-page TIFF (.tif, .tiff), "
    "image sequences (a glob such as 'dir/*.png', a list of paths or a directory of "
    "PNG/TIFF/JPEG/BMP files), Zarr arrays (a path ending in .zarr or a zarr.Array), "
    "numpy and dask arrays and xarray DataArrays"
)

#: Weights for R, G, B used by ``channel="grey"``: those of ``pims.as_grey`` (and
#: scikit-image's ``rgb2gray``, ITU-R BT.709), so grey frames equal what trackpy users
#: get from their usual pims pipeline.
GREY_WEIGHTS = (0.2125, 0.7154, 0.0721)

#: How many frames :func:`open_video` decodes on the client to check that a movie's
#: timestamps give the presentation order (and to learn the frame shape).
_MOVIE_PROBE_FRAMES = 32


class VideoError(ValueError):
    """A source exists but cannot be read as a video (corrupt, unsupported, inconsistent)."""


class VideoDecodeError(VideoError):
    """Frames of a file source could not be read or decoded when a chunk was computed.

    Raised by the read task of one chunk of an :func:`open_video` array (so at compute
    time, not by ``open_video`` itself) when reading or decoding fails: an FFmpeg error
    (a packet the decoder refuses, an unreadable container), an ``OSError`` (including
    a file deleted or truncated since ``open_video``), a tifffile, PIL or imageio error,
    a frame of the wrong shape. The original exception is chained (``__cause__``) and
    summarised in :attr:`reason`. ``MemoryError``, ``KeyboardInterrupt`` and
    ``SystemExit`` are never turned into a ``VideoDecodeError``.

    Inside :func:`skip_undecodable` chunk reads do not raise it: they skip the frames
    that cannot be decoded instead.

    Parameters
    ----------
    path : str
        The file that failed: the movie or TIFF, or for an image sequence the image
        file of the failing frame.
    frame : int
        Absolute frame number (the value of the ``frame`` coordinate of the array
        ``open_video`` returned) of the first frame of the chunk that could not be read.
    chunk : tuple of (int, int)
        Absolute frame numbers of the first and last frames of the chunk.
    reason : str
        The underlying error as ``"ExceptionType: message"``.

    Attributes
    ----------
    path, frame, chunk, reason
        As given. The exception pickles with all four (``__reduce__``), so it arrives
        intact from Dask workers in other processes; the chained ``__cause__`` does not
        travel, which is why :attr:`reason` holds its text.
    """

    def __init__(self, path, frame, chunk, reason):
        self.path = str(path)
        self.frame = int(frame)
        self.chunk = (int(chunk[0]), int(chunk[1]))
        self.reason = str(reason)
        super().__init__(
            f"{self.path}: cannot decode frame {self.frame} (in the chunk of frames "
            f"{self.chunk[0]}..{self.chunk[1]}): {self.reason}; the file is damaged (or "
            "changed since open_video) there: rerun with on_error='skip' (CLI: "
            "--on-error skip) to skip the frames that cannot be decoded and locate "
            "features in all the others"
        )

    def __reduce__(self):
        return (type(self), (self.path, self.frame, self.chunk, self.reason))


# ---------------------------------------------------------------------------------------
# Skipping undecodable frames
# ---------------------------------------------------------------------------------------


class SkippedFrames(list):
    """The list :func:`skip_undecodable` yields: frame numbers (int), sorted, unique.

    A plain ``list`` of the absolute frame numbers that chunk reads skipped, plus
    :attr:`reasons`, a dict mapping each of those frame numbers to the error (as
    ``"ExceptionType: message"``) that made it unreadable.
    """

    def __init__(self):
        super().__init__()
        self.reasons = {}


#: The SkippedFrames of the innermost active skip_undecodable(), or None.
_SKIPPED = contextvars.ContextVar("daskloc_video_skipped", default=None)
_SKIPPED_LOCK = threading.Lock()


@contextlib.contextmanager
def skip_undecodable():
    """Within this block, chunk reads skip undecodable frames instead of raising.

    Use it around computing :func:`open_video` chunks::

        with daskloc.video.skip_undecodable() as skipped:
            block = dask.compute(video.data.blocks[3], scheduler="sync")[0]
        # skipped == [101, 102, ...]: frames of the block filled with zeros

    Inside the block a chunk read task does not raise :class:`VideoDecodeError`. The
    frames it cannot read are filled with zeros and their absolute frame numbers (the
    ``frame`` coordinate) are added to ``skipped``. Every other frame is exactly what a
    read of an undamaged file gives, bit for bit, and carries its right frame number.

    Yields
    ------
    SkippedFrames
        A ``list`` of the skipped frame numbers (int), sorted and without duplicates
        whenever no chunk read is running (each read merges its frames in when it
        ends), across all chunks read in the block; its ``reasons`` attribute maps each
        skipped frame to the error that made it unreadable.

    Notes
    -----
    **Scope.** The setting lives in a :mod:`contextvars` variable: it applies to chunk
    reads run in the calling thread's context, i.e. by Dask's synchronous scheduler
    (``scheduler="sync"``) and by its threaded scheduler (which runs tasks in a copy of
    the caller's context), never to other threads started elsewhere, other processes or
    distributed workers, which read in raise mode. Blocks nest; the innermost wins.
    Outside the block nothing changes: chunk reads raise :class:`VideoDecodeError`.

    **What is skipped: movies.** A movie chunk is decoded in segments, each starting
    at a keyframe (a group of pictures, GOP). When decoding fails in a segment -- the
    decoder refuses a packet, the demuxer or a seek fails, or a wanted frame does not
    come out (missing, out of order, the file ends early) -- the wanted frames from the
    failure to the next keyframe are skipped and decoding resumes by seeking to that
    keyframe. The frames after a broken packet in the same GOP are skipped even though
    the decoder might return pictures for them: they are predicted from the broken one
    (directly or through other frames), so FFmpeg would hand back concealed, silently
    wrong images. A failure before the first wanted frame (in the pre-roll decoded from
    the keyframe up to it) skips the segment's frames up to the next keyframe for the
    same reason.

    Frames are identified as in a normal read: by presentation timestamp when the
    movie's timestamps give the presentation order, and each decoded frame is kept only
    if its timestamp is one of the wanted ones. In that mode the frames the decoder had
    finished before the broken packet (held back for reordering, e.g. the P-frame a
    B-frame is predicted from) are still collected by flushing the decoder, except the
    frame of the broken packet itself. Without usable timestamps frames are numbered by
    counting from a keyframe; a lost packet would shift that count, so after an error
    nothing more of the segment is counted or kept: decoding restarts at the next
    keyframe (whose position is known) and counts from there.

    Limits: a packet that FFmpeg accepts but decodes wrongly (garbage the decoder
    conceals without reporting an error) cannot be detected; and in counting mode a
    frame the decoder drops without reporting an error shifts the numbering of the
    frames after it up to the next keyframe.

    **Other sources.** When reading a chunk of a TIFF, an image sequence or a Zarr
    array fails, its frames are read again one at a time; only those that fail alone
    are skipped.

    Examples
    --------
    >>> import numpy as np
    >>> from daskloc.video import open_video, skip_undecodable
    >>> video = open_video(np.zeros((4, 2, 2), np.uint8))  # in memory: nothing to skip
    >>> with skip_undecodable() as skipped:
    ...     _ = video.data.compute(scheduler="sync")
    >>> skipped
    []
    """
    skipped = SkippedFrames()
    token = _SKIPPED.set(skipped)
    try:
        yield skipped
    finally:
        _SKIPPED.reset(token)


# ---------------------------------------------------------------------------------------
# Chunk-read counter (a testing aid)
# ---------------------------------------------------------------------------------------

#: Number of chunk reads performed *in this process* since import (testing aid).
#:
#: Every chunk task of a file-backed source (movie, TIFF, image sequence, Zarr) adds one
#: when it runs. With the synchronous or threaded scheduler the tasks run in the client
#: process, so tests can compare the value before and after a computation to check that
#: only the needed chunks were read. In-memory sources (numpy, dask, xarray) are not
#: counted, except that an xarray/dask input built by :func:`open_video` keeps counting
#: through its original readers. Read it as ``daskloc.video.CHUNK_READS``; do not rely
#: on it for anything but tests.
CHUNK_READS = 0
_CHUNK_READS_LOCK = threading.Lock()


def _count_chunk_read():
    global CHUNK_READS
    with _CHUNK_READS_LOCK:
        CHUNK_READS += 1


# ---------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------


def open_video(source, *, chunks="auto", channel=None, frames=None):
    """Open a video or image stack as a lazy DataArray chunked by frame.

    Parameters
    ----------
    source : str, path-like, list of paths, numpy/dask/zarr array or xarray.DataArray
        What to read:

        - a movie file (``.mov``, ``.mp4``, ``.m4v``, ``.avi``, ``.mkv``, ``.webm``),
          decoded with PyAV (FFmpeg);
        - a multi-page TIFF (``.tif``, ``.tiff``), read with tifffile, one frame per
          page (or along the single non-singleton leading axis of the TIFF series);
        - an image sequence: a glob pattern such as ``"dir/*.png"``, a list of paths or
          a directory holding PNG, TIFF, JPEG or BMP files, one frame per file, sorted
          naturally (``img2.png`` before ``img10.png``);
        - a Zarr array: a ``zarr.Array`` or a path ending in ``.zarr`` (or a directory
          holding a Zarr array);
        - an array with shape ``(frame, y, x)`` or ``(frame, y, x, channel)`` (a 2-D
          array is one frame): numpy, dask, or an xarray DataArray with dims
          ``frame``, ``y``, ``x`` (and optionally ``channel``), e.g. the result of an
          earlier ``open_video`` call, which is then re-chunked and/or sub-selected.
    chunks : "auto" or int, default "auto"
        Frames per dask chunk along ``frame``. ``y``, ``x`` and ``channel`` are always a
        single chunk. An int gives chunks of exactly that many frames (the last may be
        shorter). ``"auto"`` chooses by the source:

        - movies: chunks start at keyframes. Whole groups of pictures (keyframe to
          keyframe) are gathered into chunks of about :data:`AUTO_FRAMES` (64) frames;
          a group is not split unless it is longer than :data:`AUTO_MOVIE_FRAMES`
          (256) frames, and then into near-equal pieces. A chunk task decodes from the
          keyframe at or before its first frame, so a chunk starting mid-group decodes
          (and throws away) the frames before it; chunks that start at keyframes never
          do. On bulk-water.mov (keyframes at 0, 238, 478) this gives chunks of 238
          and 242 frames, and reads the movie about twice as fast as chunks of 64
          (``benchmarks/bench_chunks.py``); an all-keyframe movie gets chunks of 64.
        - other sources: :data:`AUTO_FRAMES` (64) frames.

        Either way a chunk holds at most about :data:`AUTO_CHUNK_BYTES` (128 MiB) of
        output frames (fewer frames for big or ``float64`` frames), at least 1 frame.
        Larger chunks amortise each task's fixed costs; smaller ones give more
        parallelism and less memory per task.
    channel : None, int or {"grey", "gray"}, optional
        ``None`` keeps all channels of a colour source (a trailing ``channel`` dim).
        An int picks that channel (0 = red for RGB movies) and drops the ``channel``
        dim, keeping the source dtype. ``"grey"`` (or ``"gray"``) converts RGB or RGBA
        to grey as ``pims.as_grey`` does, 0.2125 R + 0.7154 G + 0.0721 B in
        ``float64`` on the source's scale (alpha is ignored). On a greyscale source ``channel=0`` and
        ``"grey"`` are accepted and change nothing (the source dtype is kept); any other
        channel is an error.
    frames : None, slice, range or sequence of int, optional
        Which frames to read, as frame numbers of the source (0-based; for an xarray
        input, values of its ``frame`` coordinate). ``None`` reads all frames.

        - ``slice(start, stop, step)``: ``start`` defaults to the first frame, ``stop``
          to one past the last; negative values count from the end, as in Python. The
          step must be positive. Unlike Python slicing, a ``stop`` beyond the end of the
          video is an error, not clipped: those frames do not exist.
        - a range or a sequence of frame numbers: strictly increasing (negative values
          count from the end); every frame must exist.

    Returns
    -------
    xarray.DataArray
        Named ``"video"``, dims ``("frame", "y", "x")`` or ``("frame", "y", "x",
        "channel")``, sizes in frames and pixels. The ``frame`` coordinate (int64)
        holds the absolute frame numbers in the source, so a selection keeps its
        original numbering. The data is a dask array chunked along ``frame`` as
        ``chunks`` says.
        Dtype is the source's (``uint8`` for 8-bit movies and PNGs, ``uint16`` for 16-bit
        TIFFs), or ``float64`` after ``channel="grey"`` on a colour source.

        ``attrs``:

        - ``source`` (str): the path, glob pattern or directory, or a description such
          as ``"numpy array"``;
        - ``fps`` (float): frames per second, only when the source records it (movies,
          ImageJ TIFFs with a frame interval);
        - ``original_shape`` (tuple of int): the full source shape, before frame
          selection and channel handling, e.g. ``(480, 424, 640, 3)``;
        - ``original_dtype`` (str): the source dtype, e.g. ``"uint8"``;
        - ``n_frames`` (int): number of frames in the source (the selection's length is
          ``result.sizes["frame"]``);
        - ``channel`` (int or str): only when ``channel`` was given.

    Raises
    ------
    FileNotFoundError
        The path does not exist, a glob pattern matches no file, or a directory holds
        no supported image.
    VideoError
        (a ``ValueError``) The file cannot be read as a video: unknown extension,
        corrupt or undecodable data, no video stream, image-sequence frames of different
        shapes or modes, an unsupported array layout.
    IndexError
        ``frames`` names frames that are not in the source; the message gives the valid
        range, e.g. ``frames 400:600 outside the video (480 frames: 0..479)``.
    ValueError
        ``chunks`` < 1, an invalid ``channel``, or a ``frames`` selection that is empty,
        not strictly increasing or has a non-positive step.
    TypeError
        ``source``, ``chunks`` or ``frames`` of an unsupported type.

    VideoDecodeError
        (a ``VideoError``) Not by ``open_video`` itself but when the array is computed,
        from the read task of a chunk of a file source whose frames cannot be read or
        decoded: damaged movie data (an FFmpeg error), a TIFF page or
        image file that is corrupt, truncated, deleted or changed since ``open_video``,
        a frame of the wrong shape. It names the file, the first frame that failed and
        the chunk's frames, and chains the original error (its text is in
        ``reason``). Every recompute of that chunk fails the same way; to get the
        frames that can be decoded, compute inside :func:`skip_undecodable`.

    Notes
    -----
    **Seek once per chunk.** Random access in compressed movies is expensive: an H.264
    decoder can only start at a keyframe, and keyframes can be hundreds of frames apart
    (238 in the bulk-water example). ``open_video`` demuxes the movie once on the client
    (reading packet headers, not decoding) to build a table of contents: the
    presentation timestamp of every frame and which frames are keyframes. Each chunk
    task then seeks once to the keyframe at or before its first frame, decodes forward
    and keeps only the frames it was asked for, so a chunk costs about what decoding
    from that keyframe to its last frame costs. Frames are identified by their
    timestamps, never by counting after a seek, and a seek that lands after the wanted
    keyframe (some AVI files) is detected and retried from an earlier point. When a
    chunk holds scattered frames (a list selection) and a keyframe lies between two of
    them, the task seeks again instead of decoding the gap. If the timestamps do not
    give the presentation order (H.264 with B-frames in AVI), frames are numbered by
    decode order from each keyframe instead.

    **Damaged files.** Only the frames and headers needed to build the table of
    contents are read here, so damage further into a file shows at compute time, as a
    :class:`VideoDecodeError` from the chunk holding it; chunks without damaged frames
    read normally. Inside :func:`skip_undecodable` the chunk reads fill frames that
    cannot be decoded with zeros and list them instead (a movie skips from a broken
    packet to the next keyframe, since the frames between are predicted from it; other
    sources skip exactly the frames that fail).

    Colour movies are converted to RGB (``uint8``, or ``uint16`` for more than 8 bits
    per component) the way PyAV/pims do; greyscale movies stay single-channel.

    **Counting chunk reads.** ``daskloc.video.CHUNK_READS`` counts chunk reads in the
    current process, for tests (see its comment).

    Examples
    --------
    >>> from daskloc.video import open_video
    >>> import numpy as np
    >>> video = open_video(np.zeros((10, 4, 5), np.uint8), chunks=4, frames=slice(2, 9))
    >>> video.dims, video.shape, video.data.chunks[0]
    (('frame', 'y', 'x'), (7, 4, 5), (4, 3))
    >>> video.frame.values.tolist()
    [2, 3, 4, 5, 6, 7, 8]
    """
    chunks = _check_chunks(chunks)
    channel = _check_channel(channel)
    src = _open_source(source)
    positions = _resolve_frames(frames, src.labels)
    return src.to_dataarray(positions, chunks, channel)


# ---------------------------------------------------------------------------------------
# Argument checking
# ---------------------------------------------------------------------------------------


#: ``chunks="auto"``: longest group of pictures of a movie kept whole in one chunk.
AUTO_MOVIE_FRAMES = 256
#: ``chunks="auto"``: frames per chunk of other sources; for movies, the size up to
#: which short groups of pictures are gathered.
AUTO_FRAMES = 64
#: ``chunks="auto"``: most bytes of output frames per chunk (dask's default chunk size).
AUTO_CHUNK_BYTES = 128 * 2**20


def _auto_frames(cap, out_shape, out_dtype):
    """Frames per chunk for ``chunks="auto"``: ``cap``, fewer if that exceeds the bytes cap."""
    frame_bytes = int(np.prod(out_shape, dtype=np.int64)) * np.dtype(out_dtype).itemsize
    return int(max(1, min(cap, AUTO_CHUNK_BYTES // max(frame_bytes, 1))))


def _fixed_groups(positions, size):
    return [positions[i : i + size] for i in range(0, len(positions), size)]


def _check_chunks(chunks):
    if isinstance(chunks, str) and chunks == "auto":
        return chunks
    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral):
        raise TypeError(
            f"chunks must be a positive int (frames per chunk) or 'auto', got {chunks!r} "
            f"({type(chunks).__name__})"
        )
    if chunks < 1:
        raise ValueError(f"chunks must be at least 1 frame per chunk, got {chunks}")
    return int(chunks)


def _check_channel(channel):
    if channel is None:
        return None
    if isinstance(channel, str):
        if channel.lower() in ("grey", "gray"):
            return "grey"
        raise ValueError(
            f"channel must be None, an int or 'grey'/'gray', got {channel!r}"
        )
    if isinstance(channel, bool) or not isinstance(channel, numbers.Integral):
        raise TypeError(
            f"channel must be None, an int or 'grey'/'gray', got {channel!r} "
            f"({type(channel).__name__})"
        )
    return int(channel)


def _describe_labels(labels):
    n = len(labels)
    return f"({n} frame{'s' if n != 1 else ''}: {labels[0]}..{labels[-1]})"


def _resolve_frames(frames, labels):
    """Positions (int64 array, strictly increasing) of the selected frames in ``labels``.

    ``labels`` are the source's frame numbers, strictly increasing int64.
    """
    n = len(labels)
    first, last = int(labels[0]), int(labels[-1])
    end = last + 1
    if frames is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(frames, slice):
        step = 1 if frames.step is None else frames.step
        for name, v in (("start", frames.start), ("stop", frames.stop), ("step", step)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
                raise TypeError(f"frames slice {name} must be an int, got {v!r}")
        if step <= 0:
            raise ValueError(f"frames slice step must be positive, got {step}")
        start = first if frames.start is None else int(frames.start)
        stop = end if frames.stop is None else int(frames.stop)
        if start < 0:
            start += end
        if stop < 0:
            stop += end
        shown = f"{'' if frames.start is None else frames.start}:" + (
            "" if frames.stop is None else str(frames.stop)
        )
        if frames.step is not None:
            shown += f":{frames.step}"
        if start < first or start > last or stop > end:
            raise IndexError(f"frames {shown} outside the video {_describe_labels(labels)}")
        if stop <= start:
            raise ValueError(f"frames {shown} selects no frames {_describe_labels(labels)}")
        lo = np.searchsorted(labels, start, side="left")
        hi = np.searchsorted(labels, stop, side="left")
        positions = np.arange(lo, hi, dtype=np.int64)
        positions = positions[(labels[positions] - start) % step == 0]
        return positions
    if isinstance(frames, (numbers.Integral, str, bytes)):
        raise TypeError(
            f"frames must be None, a slice, a range or a sequence of frame numbers, got "
            f"{frames!r}; for a single frame use [{frames!r}]"
        )
    wanted = np.asarray(list(frames) if isinstance(frames, range) else frames)
    if wanted.ndim != 1:
        raise TypeError(
            f"frames must be a 1-D sequence of frame numbers, got shape {wanted.shape}"
        )
    if wanted.size == 0:
        raise ValueError("frames is empty: select at least one frame")
    if wanted.dtype == bool or not np.issubdtype(wanted.dtype, np.integer):
        raise TypeError(f"frames must hold integer frame numbers, got dtype {wanted.dtype}")
    wanted = wanted.astype(np.int64)
    wanted = np.where(wanted < 0, wanted + end, wanted)
    pos = np.searchsorted(labels, wanted)
    inside = (pos < n) & (labels[np.minimum(pos, n - 1)] == wanted)
    if not inside.all():
        bad = wanted[~inside]
        shown = ", ".join(str(int(b)) for b in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise IndexError(
            f"frames [{shown}] outside the video {_describe_labels(labels)}"
        )
    if np.any(np.diff(wanted) <= 0):
        raise ValueError(
            "frames must be strictly increasing (no repeats); sort them first, e.g. "
            "sorted(set(frames))"
        )
    return pos.astype(np.int64)


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------


def _natural_key(path):
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", str(path))]


def _is_zarr_dir(path):
    return path.is_dir() and (
        path.suffix.lower() == ".zarr"
        or (path / "zarr.json").exists()
        or (path / ".zarray").exists()
        or (path / ".zgroup").exists()
    )


def _open_source(source):
    import xarray as xr

    if isinstance(source, xr.DataArray):
        return _ArraySource.from_dataarray(source)
    if _is_dask_array(source):
        return _ArraySource(source, description="dask array")
    if isinstance(source, np.ndarray):
        return _ArraySource(source, description="numpy array")
    if _is_zarr_array(source):
        return _ZarrSource(source)
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if isinstance(source, str) and any(ch in text for ch in "*?["):
            if not Path(text).exists():
                paths = sorted(_glob.glob(text, recursive=True), key=_natural_key)
                paths = [p for p in paths if Path(p).is_file()]
                if not paths:
                    raise FileNotFoundError(f"no files match the pattern {text!r}")
                return _ImageSequenceSource(paths, description=text)
        path = Path(text)
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {text!r}")
        if _is_zarr_dir(path):
            return _ZarrSource(str(path))
        if path.is_dir():
            return _ImageSequenceSource.from_directory(path)
        suffix = path.suffix.lower()
        if suffix in MOVIE_EXTENSIONS:
            return _MovieSource(text)
        if suffix in TIFF_EXTENSIONS:
            return _TiffSource(text)
        if suffix in IMAGE_EXTENSIONS:
            return _ImageSequenceSource([text], description=text)
        raise VideoError(
            f"{text}: unknown file type {path.suffix!r}; supported sources: {_SUPPORTED}"
        )
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("empty list of image files: give at least one path")
        paths = []
        for p in source:
            if not isinstance(p, (str, os.PathLike)):
                raise TypeError(
                    f"an image sequence must be a list of paths, got an item {p!r} "
                    f"({type(p).__name__})"
                )
            if not Path(p).is_file():
                raise FileNotFoundError(f"no such file: {os.fspath(p)!r}")
            paths.append(os.fspath(p))
        paths.sort(key=_natural_key)
        if len(paths) == 1:
            desc = paths[0]
        else:
            desc = f"{len(paths)} files: {paths[0]} ... {paths[-1]}"
        return _ImageSequenceSource(paths, description=desc)
    raise TypeError(
        f"cannot open a {type(source).__name__} as a video; supported sources: {_SUPPORTED}"
    )


def _is_dask_array(x):
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(x, da.Array)


def _is_zarr_array(x):
    try:
        import zarr
    except ImportError:  # pragma: no cover - zarr is a dependency
        return False
    return isinstance(x, zarr.Array)


def _frame_layout(shape, what):
    """(n_frames, frame_shape) for an array-like of ``shape``."""
    if any(isinstance(s, float) and np.isnan(s) for s in shape):
        raise VideoError(
            f"{what}: has unknown chunk sizes (shape {shape}); call "
            "compute_chunk_sizes() on it first"
        )
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2:
        return 1, shape
    if len(shape) in (3, 4):
        return shape[0], shape[1:]
    raise VideoError(
        f"{what}: cannot read an array of shape {shape} as a video; expected "
        "(frame, y, x), (frame, y, x, channel) or a single (y, x) image"
    )


class _Source:
    """What every source provides to build the DataArray."""

    labels: np.ndarray  # frame numbers of the source, int64, strictly increasing
    frame_shape: tuple  # (y, x) or (y, x, channel)
    dtype: np.dtype
    attrs: dict

    def to_dataarray(self, positions, chunks, channel):  # pragma: no cover - abstract
        raise NotImplementedError


def _output_frame(frame_shape, dtype, channel, what):
    """Frame shape and dtype after applying ``channel``; validates ``channel``."""
    colour = len(frame_shape) == 3
    if channel is None:
        return frame_shape, dtype
    if not colour:
        if channel in (0, "grey"):
            return frame_shape, dtype
        raise ValueError(
            f"{what} is greyscale (no channel axis): channel must be None, 0 or 'grey', "
            f"got {channel!r}"
        )
    n_channels = frame_shape[2]
    if channel == "grey":
        if n_channels not in (3, 4):
            raise ValueError(
                f"{what} has {n_channels} channels; channel='grey' needs RGB or RGBA (3 "
                "or 4 channels): pick one channel with channel=<int> instead"
            )
        return frame_shape[:2], np.dtype(np.float64)
    if not -n_channels <= channel < n_channels:
        raise ValueError(
            f"channel {channel} does not exist: {what} has {n_channels} channels "
            f"(0..{n_channels - 1})"
        )
    return frame_shape[:2], dtype


def _apply_channel_block(block, channel, colour):
    """Apply a validated ``channel`` to ``block`` shaped (k, y, x) or (k, y, x, c)."""
    if channel is None or not colour:
        return block
    if channel == "grey":
        r, g, b = GREY_WEIGHTS
        return (
            block[..., 0].astype(np.float64) * r
            + block[..., 1].astype(np.float64) * g
            + block[..., 2].astype(np.float64) * b
        )
    return block[..., channel]


def _dims(out_frame_shape):
    return ("frame", "y", "x", "channel")[: 1 + len(out_frame_shape)]


def _build_attrs(base, channel):
    attrs = {k: v for k, v in base.items() if v is not None}
    if channel is not None:
        attrs["channel"] = channel
    return attrs


class _ArraySource(_Source):
    """numpy / dask arrays and xarray DataArrays: plain dask operations, no readers."""

    def __init__(self, array, description, labels=None, attrs=None):
        n, frame_shape = _frame_layout(array.shape, description)
        if array.ndim == 2:
            array = array[None]
        self.array = array
        self.description = description
        self.frame_shape = frame_shape
        self.dtype = np.dtype(array.dtype)
        if n == 0:
            raise VideoError(f"{description}: has no frames")
        self.labels = np.arange(n, dtype=np.int64) if labels is None else labels
        base = {
            "source": description,
            "original_shape": tuple(int(s) for s in array.shape),
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
        }
        if attrs:
            base.update(attrs)  # an earlier open_video's provenance wins
        self.attrs = base

    @classmethod
    def from_dataarray(cls, arr):
        dims = set(arr.dims)
        required = {"frame", "y", "x"}
        if not required <= dims or not dims <= required | {"channel"}:
            raise VideoError(
                f"an xarray DataArray source must have dims ('frame', 'y', 'x') and "
                f"optionally 'channel', got {arr.dims}"
            )
        order = [d for d in ("frame", "y", "x", "channel") if d in dims]
        arr = arr.transpose(*order)
        if "frame" in arr.coords:
            labels = np.asarray(arr["frame"].values)
            if not np.issubdtype(labels.dtype, np.integer):
                raise VideoError(
                    f"the DataArray's frame coordinate must hold integer frame numbers, "
                    f"got dtype {labels.dtype}"
                )
            labels = labels.astype(np.int64)
            if labels.size > 1 and np.any(np.diff(labels) <= 0):
                raise VideoError(
                    "the DataArray's frame coordinate must be strictly increasing"
                )
        else:
            labels = None
        attrs = dict(arr.attrs)
        desc = attrs.get("source", "xarray DataArray")
        return cls(arr.data, description=desc, labels=labels, attrs=attrs)

    def to_dataarray(self, positions, chunks, channel):
        import dask.array as da
        import xarray as xr

        out_shape, out_dtype = _output_frame(
            self.frame_shape, self.dtype, channel, self.description
        )
        if chunks == "auto":
            chunks = _auto_frames(AUTO_FRAMES, out_shape, out_dtype)
        data = self.array
        if not isinstance(data, da.Array):
            data = da.from_array(data, chunks=(chunks,) + (-1,) * len(self.frame_shape))
        n = data.shape[0]
        if not (len(positions) == n and positions[0] == 0 and positions[-1] == n - 1):
            if np.all(np.diff(positions) == 1):
                data = data[int(positions[0]) : int(positions[-1]) + 1]
            else:
                data = data[positions]
        data = data.rechunk((chunks,) + (-1,) * len(self.frame_shape))
        data = _apply_channel_block(data, channel, len(self.frame_shape) == 3)
        if data.dtype != out_dtype:  # pragma: no cover - defensive
            data = data.astype(out_dtype)
        attrs = _build_attrs(self.attrs, channel)
        return xr.DataArray(
            data,
            dims=_dims(out_shape),
            coords={"frame": ("frame", self.labels[positions].astype(np.int64))},
            name="video",
            attrs=attrs,
        )


# ---------------------------------------------------------------------------------------
# File-backed sources: a graph of chunk tasks, one reader per task
# ---------------------------------------------------------------------------------------


class _ChunkRequest:
    """Everything one chunk task needs: small and picklable, no pixel data, no handles.

    A plain class (not a tuple, list or dataclass) so dask treats it as an opaque
    argument.
    """

    __slots__ = ("reader", "spec", "arg", "n", "frame_shape", "dtype", "channel", "labels")

    def __init__(self, reader, spec, arg, n, frame_shape, dtype, channel, labels):
        self.reader = reader  # module-level generator function
        self.spec = spec  # per-source constants (path, pixel format, ...)
        self.arg = arg  # per-chunk description of the frames to read
        self.n = n  # frames in the chunk
        self.frame_shape = frame_shape  # source frame shape
        self.dtype = dtype  # source dtype (str)
        self.channel = channel
        self.labels = labels  # absolute frame numbers: (first, step, n) or int64 array

    def __getstate__(self):
        return {s: getattr(self, s) for s in self.__slots__}

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)

    def label(self, i):
        """Absolute frame number (``frame`` coordinate) of the chunk's frame ``i``."""
        labels = self.labels
        if isinstance(labels, tuple):
            return int(labels[0] + int(i) * labels[1])
        return int(labels[int(i)])

    def __repr__(self):
        return (
            f"<chunk of {self.n} frames ({self.label(0)}..{self.label(self.n - 1)}) via "
            f"{self.reader.__name__}>"
        )


def _compact_labels(labels):
    """``(first, step, n)`` for evenly spaced frame numbers, else an int64 array."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    step = int(labels[1] - labels[0]) if n > 1 else 1
    if n == 1 or (step > 0 and np.all(np.diff(labels) == step)):
        return (int(labels[0]), step, n)
    return labels.copy()


class _Unreadable:
    """Yielded by a reader instead of a block: these frames cannot be decoded.

    The reader yields ``(index, _Unreadable(exc))`` (``index`` a slice of chunk
    indices) and goes on with the frames after them; frames of ``index`` that it did
    yield before stay as they are (see :func:`_read_chunk`).
    """

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def _reraise_fatal(exc):
    # MemoryError (av.error.MemoryError is one too) is a problem of this process, not of
    # the file: never reported as undecodable frames. KeyboardInterrupt and SystemExit
    # are not Exceptions and are never caught.
    if isinstance(exc, MemoryError):
        raise exc


def _decode_error(request, i, exc):
    """The VideoDecodeError for frame ``i`` of the chunk (raise it ``from exc``)."""
    return VideoDecodeError(
        _frame_path(request, i),
        request.label(i),
        (request.label(0), request.label(request.n - 1)),
        f"{type(exc).__name__}: {exc}",
    )


def _read_chunk(request):
    """Dask task: read one chunk of frames, apply the channel, return a numpy array.

    Raises
    ------
    VideoDecodeError
        Frames of the chunk cannot be read or decoded (not inside
        :func:`skip_undecodable`, where those frames are zeros and are recorded as
        skipped instead).
    """
    _count_chunk_read()
    frame_shape = tuple(request.frame_shape)
    colour = len(frame_shape) == 3
    dtype = np.dtype(request.dtype)
    out_shape, out_dtype = _output_frame(frame_shape, dtype, request.channel, "source")
    out = np.empty((request.n,) + tuple(out_shape), dtype=out_dtype)
    filled = np.zeros(request.n, dtype=bool)
    skipped = _SKIPPED.get()
    lost = {}  # skip mode: chunk index -> reason
    frames = request.reader(request.spec, request.arg)
    try:
        for index, block in frames:
            if type(block) is _Unreadable:
                failed = np.flatnonzero(~filled[index]) + (index.start or 0)
                if failed.size:
                    if skipped is None:
                        raise _decode_error(request, failed[0], block.exc) from block.exc
                    _skip(out, filled, failed, block.exc, lost)
                continue
            block = np.asarray(block)
            if block.shape[1:] != frame_shape:
                raise VideoError(
                    f"frame has shape {block.shape[1:]}, expected {frame_shape} (all "
                    "frames must have the same shape)"
                )
            out[index] = _apply_channel_block(block, request.channel, colour)
            filled[index] = True
    except VideoDecodeError:
        raise
    except Exception as exc:
        _reraise_fatal(exc)
        frames.close()
        _recover(request, out, filled, exc, skipped, lost)
    finally:
        frames.close()
    if not filled.all():  # pragma: no cover - readers yield every frame or a failure
        exc = VideoError("the reader returned no data for this frame")
        failed = np.flatnonzero(~filled)
        if skipped is None:
            raise _decode_error(request, failed[0], exc)
        _skip(out, filled, failed, exc, lost)
    if lost:
        _record_skipped(skipped, {request.label(i): r for i, r in lost.items()})
    return out


def _skip(out, filled, failed, exc, lost):
    out[failed] = 0
    filled[failed] = True
    reason = f"{type(exc).__name__}: {exc}"
    for i in failed:
        lost[int(i)] = reason


def _recover(request, out, filled, exc, skipped, lost):
    """After a chunk read failed with ``exc``: read its missing frames one at a time.

    Readers whose ``arg`` is a tuple with one entry per frame (TIFF, images, Zarr) are
    retried frame by frame: a frame that fails alone raises VideoDecodeError (raise
    mode) or is skipped; the others are kept. For other readers (movies, which handle
    their decoding errors themselves) all missing frames failed with ``exc``.
    """
    missing = np.flatnonzero(~filled)
    if request.reader not in _PER_FRAME_READERS:
        if skipped is None:
            raise _decode_error(request, missing[0], exc) from exc
        _skip(out, filled, missing, exc, lost)
        return
    frame_shape = tuple(request.frame_shape)
    colour = len(frame_shape) == 3
    for i in missing:
        i = int(i)
        try:
            one = out[i : i + 1]
            got = False
            for index, block in request.reader(request.spec, request.arg[i : i + 1]):
                if type(block) is _Unreadable:  # pragma: no cover - not these readers
                    raise block.exc
                block = np.asarray(block)
                if block.shape != (1,) + frame_shape:
                    raise VideoError(
                        f"frame has shape {block.shape[1:]}, expected {frame_shape} (all "
                        "frames must have the same shape)"
                    )
                one[index] = _apply_channel_block(block, request.channel, colour)
                got = True
            if not got:  # pragma: no cover - defensive
                raise VideoError("the reader returned no data for this frame")
            filled[i] = True
        except Exception as frame_exc:
            _reraise_fatal(frame_exc)
            if skipped is None:
                raise _decode_error(request, i, frame_exc) from frame_exc
            _skip(out, filled, np.array([i]), frame_exc, lost)


def _record_skipped(skipped, reasons):
    with _SKIPPED_LOCK:
        skipped.reasons.update(reasons)
        skipped[:] = sorted(set(skipped).union(reasons))


def _spec_path(spec):
    if isinstance(spec, tuple) and spec:
        if isinstance(spec[0], str):
            return spec[0]
        if _is_zarr_array(spec[0]):
            return _describe_zarr(spec[0])
    return str(spec)


def _frame_path(request, i):
    """The file frame ``i`` of the chunk is read from (for messages)."""
    if request.reader is _read_images:
        return request.arg[int(i)]
    return _spec_path(request.spec)


class _FileSource(_Source):
    """Base for sources read by chunk tasks."""

    reader = None  # generator function(spec, arg) -> yields (index, block)
    path = ""

    def spec(self):
        raise NotImplementedError  # pragma: no cover

    def chunk_args(self, positions):
        """Per-chunk reader arguments for a group of source positions."""
        raise NotImplementedError  # pragma: no cover

    def token_parts(self):
        try:
            st = os.stat(self.path)
            return (self.path, st.st_mtime_ns, st.st_size)
        except (OSError, TypeError):
            return (repr(self.path),)

    def chunk_groups(self, positions, chunks, out_shape, out_dtype):
        """The source positions of each chunk, for an int ``chunks`` or ``"auto"``."""
        if chunks == "auto":
            chunks = _auto_frames(AUTO_FRAMES, out_shape, out_dtype)
        return _fixed_groups(positions, chunks)

    def to_dataarray(self, positions, chunks, channel):
        import dask.array as da
        import xarray as xr
        from dask.base import tokenize
        from dask.highlevelgraph import HighLevelGraph

        out_shape, out_dtype = _output_frame(self.frame_shape, self.dtype, channel, self.path)
        spec = self.spec()
        groups = self.chunk_groups(positions, chunks, out_shape, out_dtype)
        name = "open_video-" + tokenize(
            type(self).__name__, self.token_parts(), positions, chunks, channel
        )
        ndim = 1 + len(out_shape)
        dsk = {}
        for i, group in enumerate(groups):
            request = _ChunkRequest(
                type(self).reader,
                spec,
                self.chunk_args(group),
                len(group),
                tuple(self.frame_shape),
                str(self.dtype),
                channel,
                _compact_labels(self.labels[group]),
            )
            dsk[(name, i) + (0,) * (ndim - 1)] = (_read_chunk, request)
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
        data = da.Array(
            graph,
            name,
            chunks=(tuple(len(g) for g in groups),) + tuple((s,) for s in out_shape),
            dtype=out_dtype,
            meta=np.empty((0,) * ndim, dtype=out_dtype),
        )
        return xr.DataArray(
            data,
            dims=_dims(out_shape),
            coords={"frame": ("frame", self.labels[positions].astype(np.int64))},
            name="video",
            attrs=_build_attrs(self.attrs, channel),
        )


def _runs(positions):
    """Split sorted positions into (start, stop, offset) runs of consecutive values."""
    positions = np.asarray(positions)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(positions)]])
    return [(int(positions[a]), int(positions[b - 1]) + 1, int(a)) for a, b in zip(starts, stops)]


# --- TIFF ------------------------------------------------------------------------------


def _tiff_layout(series, path):
    """Frame axis, frame count and frame shape of a tifffile series."""
    shape = tuple(int(s) for s in series.shape)
    axes = series.axes
    colour = axes.endswith("S") and len(shape) >= 3
    nframe_dims = 3 if colour else 2
    if len(shape) < nframe_dims:
        raise VideoError(f"{path}: cannot read TIFF series of shape {shape} ({axes}) as a video")
    frame_shape = shape[len(shape) - nframe_dims :]
    leading = shape[: len(shape) - nframe_dims]
    big = [i for i, s in enumerate(leading) if s > 1]
    if len(big) > 1:
        raise VideoError(
            f"{path}: TIFF series has shape {shape} with axes {axes!r}: more than one axis "
            "besides y, x (and samples); open_video reads one frame axis. Load it with "
            "tifffile, pick the frames you want and pass the array instead"
        )
    frame_axis = big[0] if big else None
    n = leading[frame_axis] if big else 1
    return frame_axis, len(leading), n, frame_shape


def _read_tiff(spec, arg):
    import tifffile

    path, use_pages, frame_axis, n_leading, frame_shape = spec
    positions = list(arg)
    shape = (len(positions),) + tuple(frame_shape)
    with tifffile.TiffFile(path) as tf:
        if use_pages:
            # one page per frame: read just the pages of this chunk
            yield slice(None), np.reshape(tf.asarray(key=positions, series=0), shape)
            return
        import zarr

        store = tf.series[0].aszarr()
        try:
            z = zarr.open_array(store, mode="r")
            index = [0] * n_leading + [slice(None)] * len(frame_shape)
            if frame_axis is not None:
                index[frame_axis] = positions
            block = z.oindex[tuple(index)]
        finally:
            store.close()
        yield slice(None), np.reshape(block, shape)


class _TiffSource(_FileSource):
    reader = staticmethod(_read_tiff)

    def __init__(self, path):
        import tifffile

        self.path = path
        try:
            with tifffile.TiffFile(path) as tf:
                if not tf.series:
                    raise VideoError(f"{path}: TIFF file holds no images")
                series = tf.series[0]
                frame_axis, n_leading, n, frame_shape = _tiff_layout(series, path)
                self.use_pages = len(series.pages) == n
                dtype = np.dtype(series.dtype)
                shape = tuple(int(s) for s in series.shape)
                fps = None
                meta = tf.imagej_metadata or {}
                if meta.get("fps"):
                    fps = float(meta["fps"])
                elif meta.get("finterval"):
                    fps = 1.0 / float(meta["finterval"])
        except VideoError:
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, ...
            raise VideoError(
                f"{path}: cannot read as a TIFF ({type(exc).__name__}: {exc}); supported "
                f"sources: {_SUPPORTED}"
            ) from exc
        if n == 0:
            raise VideoError(f"{path}: TIFF has no frames")
        self.frame_axis, self.n_leading = frame_axis, n_leading
        self.frame_shape = tuple(frame_shape)
        self.dtype = dtype
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": str(path),
            "fps": fps,
            "original_shape": shape,
            "original_dtype": str(dtype),
            "n_frames": int(n),
        }

    def spec(self):
        return (self.path, self.use_pages, self.frame_axis, self.n_leading, self.frame_shape)

    def chunk_args(self, positions):
        return tuple(int(p) for p in positions)


# --- image sequences -------------------------------------------------------------------


def _image_signature(path):
    """Cheap header-only (shape-ish, mode-ish) signature of one image file."""
    if Path(path).suffix.lower() in TIFF_EXTENSIONS:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            page = tf.pages[0]
            return (tuple(int(s) for s in page.shape), str(page.dtype), len(tf.pages))
    from PIL import Image

    with Image.open(path) as im:
        return ((im.size[1], im.size[0]), im.mode, getattr(im, "n_frames", 1))


def _read_image(path):
    suffix = Path(path).suffix.lower()
    if suffix in TIFF_EXTENSIONS:
        import tifffile

        return tifffile.imread(path)
    import imageio.v3 as iio

    return iio.imread(path)


def _read_images(spec, arg):
    # errors (a missing file, a truncated PNG, ...) propagate as they are: _read_chunk
    # turns them into VideoDecodeError naming the image file and the frame
    first, frame_shape, dtype = spec
    for i, path in enumerate(arg):
        image = np.asarray(_read_image(path))
        if image.shape != tuple(frame_shape) or str(image.dtype) != dtype:
            raise VideoError(
                f"image sequence frames differ: {path} is {image.shape} {image.dtype} but "
                f"{first} is {tuple(frame_shape)} {dtype}; all frames must have the same "
                "shape and dtype"
            )
        yield i, image[None]


class _ImageSequenceSource(_FileSource):
    reader = staticmethod(_read_images)

    def __init__(self, paths, description):
        self.paths = list(paths)
        self.path = description
        for p in self.paths:
            if Path(p).suffix.lower() not in IMAGE_EXTENSIONS:
                raise VideoError(
                    f"{p}: not a supported image file for an image sequence (expected "
                    f"{', '.join(IMAGE_EXTENSIONS)}); supported sources: {_SUPPORTED}"
                )
        try:
            signatures = [_image_signature(p) for p in self.paths]
        except Exception as exc:
            raise VideoError(f"cannot read image header ({type(exc).__name__}: {exc})") from exc
        first = signatures[0]
        for p, sig in zip(self.paths, signatures):
            if sig[2] != 1:
                raise VideoError(
                    f"{p}: holds {sig[2]} images; an image sequence needs one image per "
                    "file (open a multi-page TIFF directly)"
                )
            if sig[:2] != first[:2]:
                raise VideoError(
                    f"image sequence frames differ: {self.paths[0]} is {first[0]} "
                    f"({first[1]}) but {p} is {sig[0]} ({sig[1]}); all frames must have "
                    "the same shape and mode"
                )
        try:
            image = np.asarray(_read_image(self.paths[0]))
        except Exception as exc:
            raise VideoError(
                f"{self.paths[0]}: cannot read image ({type(exc).__name__}: {exc})"
            ) from exc
        if image.ndim not in (2, 3):
            raise VideoError(f"{self.paths[0]}: image of shape {image.shape} is not 2-D")
        self.frame_shape = tuple(int(s) for s in image.shape)
        self.dtype = image.dtype
        n = len(self.paths)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": description,
            "original_shape": (n,) + self.frame_shape,
            "original_dtype": str(self.dtype),
            "n_frames": n,
        }

    @classmethod
    def from_directory(cls, path):
        files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
        images = [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not images:
            raise FileNotFoundError(
                f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in directory {str(path)!r}"
            )
        same = {".tiff": ".tif", ".jpeg": ".jpg"}
        kinds = sorted({same.get(p.suffix.lower(), p.suffix.lower()) for p in images})
        if len(kinds) > 1:
            raise VideoError(
                f"directory {str(path)!r} mixes image types ({', '.join(kinds)}); pass a "
                f"glob such as {str(path / ('*' + kinds[0]))!r}"
            )
        paths = sorted((str(p) for p in images), key=_natural_key)
        return cls(paths, description=str(path))

    def token_parts(self):
        parts = []
        for p in self.paths:
            st = os.stat(p)
            parts.append((p, st.st_mtime_ns, st.st_size))
        return tuple(parts)

    def spec(self):
        return (self.paths[0], self.frame_shape, str(self.dtype))

    def chunk_args(self, positions):
        return tuple(self.paths[int(p)] for p in positions)


# --- Zarr ------------------------------------------------------------------------------


def _describe_zarr(arr):
    return f"zarr array {arr.store}" + (f" {arr.path}" if arr.path else "")


def _read_zarr(spec, arg):
    import zarr

    target, ndim = spec
    arr = zarr.open_array(target, mode="r") if isinstance(target, str) else target
    for a, b, offset in _runs(arg):
        block = arr[a:b]
        if ndim == 2:
            block = block[None]
        yield slice(offset, offset + (b - a)), block


#: Readers whose per-chunk ``arg`` is a tuple with one entry per frame, so that
#: ``arg[i:i + 1]`` reads frame ``i`` alone: a failed chunk read is retried frame by
#: frame (see _recover). Movies are not here: they recover from errors themselves.
_PER_FRAME_READERS = (_read_tiff, _read_images, _read_zarr)


class _ZarrSource(_FileSource):
    reader = staticmethod(_read_zarr)

    def __init__(self, target):
        import zarr

        if isinstance(target, str):
            self.path = target
            try:
                node = zarr.open(target, mode="r")
            except Exception as exc:
                raise VideoError(
                    f"{target}: cannot open as Zarr ({type(exc).__name__}: {exc})"
                ) from exc
            if not isinstance(node, zarr.Array):
                names = sorted(name for name, _ in node.arrays())
                raise VideoError(
                    f"{target} is a Zarr group, not an array; open one of its arrays, "
                    f"e.g. {target + '/' + names[0] if names else target + '/<array>'!r} "
                    f"(arrays: {', '.join(names) or 'none'})"
                )
            arr = node
            self.target = target
        else:
            arr = target
            self.target = target
            self.path = _describe_zarr(arr)
        n, frame_shape = _frame_layout(arr.shape, self.path)
        if n == 0:
            raise VideoError(f"{self.path}: has no frames")
        self.ndim = arr.ndim
        self.frame_shape = tuple(frame_shape)
        self.dtype = np.dtype(arr.dtype)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": self.path,
            "original_shape": tuple(int(s) for s in arr.shape),
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
        }
        fps = arr.attrs.get("fps") if hasattr(arr, "attrs") else None
        if isinstance(fps, numbers.Real) and not isinstance(fps, bool):
            self.attrs["fps"] = float(fps)

    def token_parts(self):
        if isinstance(self.target, str):
            return super().token_parts()
        return (self.path, id(self.target))

    def spec(self):
        return (self.target, self.ndim)

    def chunk_args(self, positions):
        return tuple(int(p) for p in positions)


# --- Movies ----------------------------------------------------------------------------


def _open_container(path):
    import av

    try:
        return av.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path!r}") from None
    except Exception as exc:
        raise VideoError(
            f"{path}: cannot open as a movie ({type(exc).__name__}: {exc}); supported "
            f"sources: {_SUPPORTED}"
        ) from exc


def _ndarray_format(video_format):
    """PyAV ``to_ndarray`` format for a stream pixel format: grey or RGB, 8 or 16 bit."""
    name = video_format.name if video_format is not None else "yuv420p"
    try:
        bits = max(c.bits for c in video_format.components)
    except Exception:  # pragma: no cover - unusual formats
        bits = 8
    grey = name.startswith(("gray", "ya", "mono"))
    if grey:
        return "gray" if bits <= 8 else "gray16le"
    return "rgb24" if bits <= 8 else "rgb48le"


class _MovieToc:
    """A movie's table of contents, built once on the client.

    ``mode == "pts"``: frame ``i`` is the frame with the ``i``-th smallest presentation
    timestamp (``frame_pts[i]``). ``mode == "count"``: frame ``i`` is the ``i``-th
    frame out of the decoder, counted from a keyframe whose position is its index in
    decode order (used when timestamps are missing, repeated or not in presentation
    order).
    """

    def __init__(self, packets, mode):
        self.mode = mode
        pts = [p[0] for p in packets]
        if mode == "pts":
            order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
            self.frame_pts = np.asarray(pts, dtype=np.int64)[order]
            position_of_packet = np.empty(len(packets), dtype=np.int64)
            position_of_packet[order] = np.arange(len(packets))
        else:
            self.frame_pts = None
            position_of_packet = np.arange(len(packets), dtype=np.int64)
        key = [i for i, p in enumerate(packets) if p[2]]
        kf_pos = position_of_packet[key] if key else np.empty(0, np.int64)
        order = np.argsort(kf_pos, kind="stable")
        self.kf_positions = kf_pos[order]
        self.kf_pts = [packets[key[i]][0] for i in order]
        self.kf_dts = [packets[key[i]][1] for i in order]
        self.first_packet_is_key = bool(packets[0][2])
        self.n = len(packets)

    def segments(self, positions):
        """Split a chunk's sorted positions into decode segments, one seek each.

        Returns a tuple of ``(seek_info, keys, positions, resume)``: ``seek_info`` is
        ``None`` (decode from the start of the file) or ``(kf_position, kf_pts,
        kf_dts)`` of the keyframe at or before the segment's first frame; ``keys``
        identify the frames to keep (presentation timestamps in pts mode, positions in
        count mode) and ``positions`` are their frame numbers (for messages). A new
        segment, i.e. a new seek, starts only where a keyframe lies beyond the frames
        already decoded. ``resume`` holds the ``seek_info`` of the keyframes after the
        segment's first frame up to its last one, where decoding can start again after
        an error (see :func:`skip_undecodable`); a normal read never uses them.
        """
        positions = np.asarray(positions, dtype=np.int64)
        j = np.searchsorted(self.kf_positions, positions, side="right") - 1
        kf_pos = np.where(j >= 0, self.kf_positions[np.maximum(j, 0)], -1)
        new = np.ones(len(positions), dtype=bool)
        new[1:] = kf_pos[1:] > positions[:-1] + 1
        starts = np.flatnonzero(new)
        stops = np.append(starts[1:], len(positions))
        keys = self.frame_pts[positions] if self.mode == "pts" else positions
        # keyframes strictly after each segment's first frame, up to its last frame
        inner_lo = np.searchsorted(self.kf_positions, positions[starts], side="right")
        inner_hi = np.searchsorted(self.kf_positions, positions[stops - 1], side="right")
        return tuple(
            (
                self._seek_info(int(j[a])),
                tuple(int(k) for k in keys[a:b]),
                tuple(int(p) for p in positions[a:b]),
                tuple(self._seek_info(int(r)) for r in range(lo, hi)),
            )
            for a, b, lo, hi in zip(starts, stops, inner_lo, inner_hi)
        )

    def gop_groups(self, positions, size, longest):
        """Chunks of ``positions`` (sorted) that start at keyframes where possible.

        Runs of positions sharing a keyframe (a group of pictures) are gathered into
        chunks of about ``size`` frames (a run is never split to fit: a chunk holding
        one run of up to ``longest`` frames is fine); a run longer than ``longest`` is
        split into near-equal pieces of at most ``longest`` frames. A short last run
        (under ``size // 8`` frames after the last keyframe) joins the chunk before it
        rather than making a chunk of its own.
        """
        positions = np.asarray(positions, dtype=np.int64)
        gop = np.searchsorted(self.kf_positions, positions, side="right")
        starts = np.flatnonzero(np.diff(gop, prepend=-1))
        stops = np.append(starts[1:], len(positions))
        groups, current = [], []
        for a, b in zip(starts, stops):
            run = positions[a:b].tolist()
            last_and_short = b == len(positions) and len(run) < size // 8
            if len(current) + len(run) <= size or (current and last_and_short):
                current.extend(run)
                continue
            if current:
                groups.append(np.asarray(current, dtype=np.int64))
            if len(run) <= longest:
                current = run
                continue
            pieces = np.array_split(np.asarray(run, dtype=np.int64), -(-len(run) // longest))
            groups.extend(pieces[:-1])
            current = pieces[-1].tolist()
        if current:
            groups.append(np.asarray(current, dtype=np.int64))
        return groups

    def _seek_info(self, j):
        if j < 0:
            return None
        pos = int(self.kf_positions[j])
        if pos == 0 and j == 0 and self.first_packet_is_key:
            return None  # the file starts here: no seek needed
        return (pos, self.kf_pts[j], self.kf_dts[j])


def _probe_order(path, stream_index, expected_pts):
    """Decode the first frames; True when their pts are the sorted packet pts."""
    container = _open_container(path)
    try:
        stream = container.streams.video[stream_index]
        got = []
        try:
            for frame in container.decode(stream):
                got.append(frame.pts)
                if len(got) >= len(expected_pts):
                    break
        except Exception as exc:  # damaged early: judge by the frames decoded before it
            _reraise_fatal(exc)
            return bool(got) and got == list(expected_pts)[: len(got)]
    finally:
        container.close()
    return got == list(expected_pts)


def _movie_frames(spec, arg):
    """Reader: yield (index, frame[None]) for one chunk of a movie (see _MovieToc).

    ``arg`` is the chunk's tuple of segments from :meth:`_MovieToc.segments`. One
    container is opened for the chunk and reused for all its segments.

    When decoding fails in a segment, yields ``(slice(a, b), _Unreadable(exc))`` for
    the wanted frames from the failure to the next keyframe of the segment (frames of
    that slice yielded before stay valid) and goes on by seeking to that keyframe;
    :func:`_read_chunk` raises at the first such failure outside skip mode, which
    closes this generator.
    """
    path, stream_index, mode, fmt = spec
    reader = _MovieReader(path, stream_index, mode, fmt)
    offset = 0
    try:
        for seek_info, keys, positions, resume in arg:
            start, info = 0, seek_info
            while start < len(keys):
                try:
                    for i, image in reader.segment(info, keys[start:], positions[start:]):
                        yield offset + start + i, image[None]
                    break
                except _SegmentFailed as failure:
                    k = start + failure.k
                    if k >= len(keys):  # pragma: no cover - failures name a wanted frame
                        break
                    # decoding restarts at the first keyframe after the failing frame:
                    # the frames before it may be predicted from the broken data
                    info = next((r for r in resume if r[0] > positions[k]), None)
                    stop = len(keys) if info is None else bisect.bisect_left(positions, info[0])
                    reader.close()  # a fresh decoder for what follows
                    yield slice(offset + k, offset + stop), _Unreadable(failure.exc)
                    start = stop
            offset += len(keys)
    finally:
        reader.close()


class _Retry(Exception):
    """A seek landed somewhere unusable, or a frame did not come: try a safer way."""

    def __init__(self, message, ended=False):
        super().__init__(message)
        self.ended = ended  # the stream ended before the wanted frame


class _SegmentFailed(Exception):
    """Frames ``k``, ``k + 1``, ... of a segment cannot be decoded, because of ``exc``."""

    def __init__(self, k, exc):
        super().__init__(k, exc)
        self.k, self.exc = k, exc


class _MovieReader:
    """Decodes segments of one movie file (lives inside one chunk task)."""

    def __init__(self, path, stream_index, mode, fmt):
        self.path, self.stream_index, self.mode, self.fmt = path, stream_index, mode, fmt
        self.container = None
        self.fresh = False  # container opened and not read from yet
        self.ended = None  # error of a decode from the start that hit the end of the file

    def close(self):
        if self.container is not None:
            self.container.close()
            self.container = None

    def _reopen(self):
        self.close()
        self.container = _open_container(self.path)
        self.fresh = True

    def segment(self, seek_info, keys, positions):
        """Yield (i, ndarray) for the segment's frames, ``i`` indexing ``keys``.

        Tries, in turn: seeking to the keyframe's pts, to its dts, and decoding from the
        start of the file. A frame may be yielded again by a later attempt (the caller
        overwrites by index).

        Raises
        ------
        _SegmentFailed
            With the index of the first frame not decoded: the decoder, the demuxer or a
            seek raised (not retried: the data is damaged), the file cannot be opened,
            or every attempt failed to deliver the frames (``exc`` is then a VideoError
            saying why). Frames yielded before stay valid.
        """
        if self.ended is not None:
            # decoding from the start already reached the end of the file before an
            # earlier (smaller) frame of this chunk: later frames cannot come either
            raise _SegmentFailed(0, self.ended)
        if seek_info is None:
            attempts = ["start"]
        elif seek_info[2] is not None:
            attempts = ["pts", "dts", "start"]
        else:
            attempts = ["pts", "start"]
        error = None
        done = 0  # frames 0..done-1 were yielded
        for how in attempts:
            try:
                if self.container is None or (how == "start" and not self.fresh):
                    self._reopen()
                for i, image in self._decode(seek_info, keys, positions, how):
                    yield i, image
                    done = max(done, i + 1)
                return
            except _Retry as exc:
                error = exc
            except _SegmentFailed:
                raise
            except Exception as exc:  # opening the file failed (deleted, replaced...)
                _reraise_fatal(exc)
                raise _SegmentFailed(done, exc) from exc
        failure = VideoError(str(error))
        if error.ended and how == "start":
            self.ended = failure
        raise _SegmentFailed(done, failure) from error

    def _decode(self, seek_info, keys, positions, how):
        container = self.container
        stream = container.streams.video[self.stream_index]
        self.fresh = False
        mode, fmt = self.mode, self.fmt
        k = 0  # index of the next wanted frame
        last_pts = None
        sending = None  # the packet being decoded
        try:
            if how != "start":
                kf_pos, kf_pts, kf_dts = seek_info
                ts = kf_pts if how == "pts" else kf_dts
                container.seek(ts, stream=stream, backward=True, any_frame=False)
            packets = container.demux(stream)
            first = next((packet for packet in packets if packet.size), None)
            if first is None:
                raise _Retry(
                    f"no data for frame {positions[0]} (file truncated or changed since "
                    "open_video?)"
                )
            if how != "start":
                if mode == "pts":
                    # any keyframe at or before the wanted one will do: pts identify frames
                    if not first.is_keyframe or first.pts is None or first.pts > kf_pts:
                        raise _Retry(f"seeking missed the keyframe of frame {positions[0]}")
                elif not first.is_keyframe or first.pts != kf_pts or (
                    first.dts is not None and first.dts != kf_dts
                ):
                    # counting frames needs exactly the keyframe whose position is known
                    raise _Retry(f"seeking missed the keyframe at frame {kf_pos}")
            codec = stream.codec_context
            start_count = 0 if how == "start" else seek_info[0]
            count = start_count  # count mode: position of the next decoded frame
            for packet in itertools.chain([first], packets):
                if mode == "pts":
                    # A non-reference frame that is not wanted is needed neither for
                    # output nor as a reference: let the decoder skip it (about half the
                    # pre-roll of H.264 with B-frames). Frames are matched by pts, so
                    # this is safe.
                    skip = packet.pts is not None and packet.pts < keys[k]
                    codec.skip_frame = "NONREF" if skip else "DEFAULT"
                sending = packet
                decoded = stream.decode(packet)
                sending = None
                for frame in decoded:
                    if mode == "pts":
                        p = frame.pts
                        if p is None or (last_pts is not None and p <= last_pts):
                            raise _Retry(
                                "decoded frames have missing or non-increasing "
                                "timestamps; cannot identify frames"
                            )
                        last_pts = p
                        if p < keys[k]:
                            continue
                        if p > keys[k]:
                            raise _Retry(
                                f"frame {positions[k]} (timestamp {keys[k]}) was not decoded"
                            )
                    else:
                        if how != "start" and count == start_count and frame.pts != kf_pts:
                            raise _Retry(f"decoding did not start at frame {kf_pos}")
                        current = count
                        count += 1
                        if current < keys[k]:
                            continue
                    yield k, frame.to_ndarray(format=fmt)
                    k += 1
                    if k == len(keys):
                        return
        except _Retry:
            raise
        except Exception as exc:  # FFmpeg refused a packet, the demuxer or seek failed
            _reraise_fatal(exc)
            if mode == "pts":
                yield from self._drain(stream, keys, k, last_pts, sending)
            raise _SegmentFailed(k, exc) from exc
        raise _Retry(
            f"the video ended before frame {positions[k]} could be decoded (file "
            "truncated, corrupt or changed since open_video?)",
            ended=True,
        )

    def _drain(self, stream, keys, k, last_pts, broken):
        """After an error (pts mode): the wanted frames the decoder finished before it.

        Flushing the decoder returns the frames it had decoded from the packets before
        the failing one and held back for reordering (e.g. the P-frame that B-frames
        sent later are predicted from). Those depend only on packets that decoded
        without error, so they are exact; they are kept when their timestamp is wanted,
        except the frame of the broken packet itself (it may have been half decoded)
        and any frame FFmpeg flags as corrupt.
        """
        wanted = {key: i for i, key in enumerate(keys[k:], start=k)}
        broken_pts = None if broken is None else broken.pts
        try:
            stream.codec_context.skip_frame = "DEFAULT"
            for frame in stream.decode(None):
                p = frame.pts
                if p is None or (last_pts is not None and p <= last_pts):
                    return  # cannot identify frames any more
                last_pts = p
                i = wanted.get(p)
                if i is not None and p != broken_pts and not frame.is_corrupt:
                    yield i, frame.to_ndarray(format=self.fmt)
        except Exception as exc:  # the decoder may fail again: keep what came
            _reraise_fatal(exc)


class _MovieSource(_FileSource):
    reader = staticmethod(_movie_frames)

    def __init__(self, path):
        self.path = path
        container = _open_container(path)
        try:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream; supported sources: {_SUPPORTED}")
            stream = container.streams.video[0]
            self.stream_index = 0
            rate = stream.average_rate or stream.guessed_rate
            fps = float(rate) if rate else None
            fmt = _ndarray_format(stream.codec_context.format)
            packets = []
            try:
                for packet in container.demux(stream):
                    if packet.size:
                        packets.append((packet.pts, packet.dts, bool(packet.is_keyframe)))
            except Exception as exc:
                raise VideoError(
                    f"{path}: cannot read the movie's packets ({type(exc).__name__}: {exc})"
                ) from exc
        finally:
            container.close()
        if not packets:
            raise VideoError(f"{path}: the video stream holds no frames")
        pts = [p[0] for p in packets]
        mode = "pts"
        if any(p is None for p in pts) or len(set(pts)) != len(pts):
            mode = "count"
        else:
            probe = sorted(pts)[: _MOVIE_PROBE_FRAMES]
            if not _probe_order(path, 0, probe):
                mode = "count"
        self.toc = _MovieToc(packets, mode)
        self.fmt = fmt
        # decode one frame through the chunk reader itself: checks the file decodes and
        # gives the exact frame shape
        frames = _movie_frames(self._spec(), self.toc.segments([0]))
        try:
            first = next(frames)[1]
        finally:
            frames.close()
        if type(first) is _Unreadable:
            exc = first.exc
            raise VideoError(
                f"{path}: cannot decode frame 0, the first frame ({type(exc).__name__}: "
                f"{exc}); the file is damaged at its start or not a movie PyAV can decode"
            ) from exc
        first = first[0]
        self.frame_shape = tuple(int(s) for s in first.shape)
        self.dtype = first.dtype
        n = self.toc.n
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": str(path),
            "fps": fps,
            "original_shape": (n,) + self.frame_shape,
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
        }

    def _spec(self):
        return (self.path, self.stream_index, self.toc.mode, self.fmt)

    def spec(self):
        return self._spec()

    def chunk_args(self, positions):
        return self.toc.segments(positions)

    def chunk_groups(self, positions, chunks, out_shape, out_dtype):
        if chunks != "auto":
            return _fixed_groups(positions, chunks)
        return self.toc.gop_groups(positions, _auto_frames(AUTO_FRAMES, out_shape, out_dtype),
                                   _auto_frames(AUTO_MOVIE_FRAMES, out_shape, out_dtype))
