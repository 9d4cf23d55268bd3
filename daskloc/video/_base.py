"""The interface every video source implements, and the errors all sources share.

A *source* is one kind of thing :func:`daskloc.video.open_video` can read: a movie file,
a multi-page TIFF, an image sequence, a Zarr array, an in-memory array, or a
third-party format registered through the ``daskloc.readers`` entry point group (see
:mod:`daskloc.video`). A source is a subclass of :class:`Source`; it says what it can
open (:meth:`Source.can_open`), learns the frame layout once on the client when it is
constructed, and reads one chunk of frames inside a Dask task (:meth:`Source.read`).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from pathlib import Path

import numpy as np

from daskloc._utils import is_glob

__all__ = ["Position", "SkippedFrames", "Source", "UnsupportedSourceError",
           "VideoDecodeError", "VideoError", "pick_position", "skip_undecodable"]


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


def skipping():
    """The :class:`SkippedFrames` of the innermost active :func:`skip_undecodable`, or None."""
    return _SKIPPED.get()


def record_skipped(skipped, reasons):
    """Merge ``{frame number: reason}`` into ``skipped`` (thread-safe)."""
    with _SKIPPED_LOCK:
        skipped.reasons.update(reasons)
        skipped[:] = sorted(set(skipped).union(reasons))


class UnsupportedSourceError(VideoError):
    """A source was chosen for a file that turns out not to be of its format.

    Raised by a :class:`Source` constructor (for instance a ``.mov`` file that FFmpeg
    cannot open); :func:`daskloc.video.open_video` adds the list of supported sources
    to the message. A ``VideoError``, hence a ``ValueError``.
    """


class Unreadable:
    """Yielded by :meth:`Source.read` instead of a block: these frames cannot be decoded.

    The reader yields ``(index, Unreadable(exc))`` (``index`` a slice of chunk
    indices) and goes on with the frames after them; frames of ``index`` that it did
    yield before stay as they are.

    Parameters
    ----------
    exc : Exception
        Why the frames cannot be read.
    """

    __slots__ = ("exc",)

    def __init__(self, exc):
        self.exc = exc


def reraise_fatal(exc):
    """Raise ``exc`` again if it is a problem of this process, never of the file.

    ``MemoryError`` (``av.error.MemoryError`` is one too) is never reported as
    undecodable frames. ``KeyboardInterrupt`` and ``SystemExit`` are not ``Exception``
    and are never caught in the first place.
    """
    if isinstance(exc, MemoryError):
        raise exc


def is_path(source):
    """Whether ``source`` is a ``str`` or path-like (what file sources accept)."""
    return isinstance(source, (str, os.PathLike))


class Source:
    """One kind of video: how to recognise it, its frame layout, how to read a chunk.

    Subclass it to add a reader (and register the class through the
    ``daskloc.readers`` entry point group, see :mod:`daskloc.video`). The constructor
    takes what was given to :func:`daskloc.video.open_video` (a path, an array ...),
    does the client-side discovery (frame count, frame shape, dtype; one pass over the
    file at most) and sets the four attributes below. Chunk reads then happen in Dask
    tasks through :meth:`read`, which must be a ``staticmethod`` generator that needs
    nothing but its two picklable arguments.

    Attributes
    ----------
    name : str
        Class attribute: short name of the source (``"movie"``, ``"tiff"`` ...).
    suffixes : tuple of str
        Class attribute: lower-case file suffixes the source reads (``(".tif",
        ".tiff")``); the default :meth:`can_open` claims existing files with one.
    summary : str
        Class attribute: what it reads, for "supported sources: ..." messages.
    priority : int
        Class attribute: sources are asked in increasing priority (ties in
        registration order). Built-in sources use 10-40 and the image sequence, which
        takes any directory, glob or list, 90; plugins default to 50.
    per_frame : bool
        Class attribute: the per-chunk argument from :meth:`chunk_args` is a tuple with
        one entry per frame, so ``arg[i:i + 1]`` reads frame ``i`` alone; a failed
        chunk read is then retried frame by frame and only the failing frames are
        reported or skipped.
    labels : numpy.ndarray of int64, shape (n_frames,)
        Frame numbers of the source, strictly increasing (usually ``0..n - 1``).
    frame_shape : tuple of int
        ``(y, x)`` or ``(y, x, channel)``, in pixels; for a source with a z axis
        ``(z, y, x)`` or ``(z, y, x, channel)`` (planes, pixels), in the order of
        :attr:`frame_dims`.
    frame_dims : tuple of str or None
        The names of the axes of :attr:`frame_shape`, in order: ``("y", "x")``,
        ``("y", "x", "channel")``, ``("z", "y", "x")`` or ``("z", "y", "x",
        "channel")``. None (the class default) means ``("y", "x")`` or ``("y", "x",
        "channel")`` by the length of :attr:`frame_shape`, so a 2-D reader need not
        set it; a reader with a z axis must.
    takes_dims : bool
        Class attribute: the constructor takes a ``dims`` keyword (the names of the
        source's axes, given by the caller of :func:`daskloc.video.open_video` as
        ``dims=``). False (the default): ``open_video(..., dims=...)`` on this source is
        an error.
    fresh_blocks : bool
        Class attribute: every array :meth:`read` yields is new, held by nothing else
        (not a view of the caller's array, of a cache or of a memory map), so a block
        of the whole chunk (index ``slice(None)``) in the output dtype is used as the
        chunk without a copy. False (the default): blocks are copied into the chunk.
    open_options : tuple of str
        Class attribute: the keyword arguments of :func:`daskloc.video.open_video` the
        constructor takes besides the source: ``"position"`` (a file holding several
        positions: OME-TIFF series, CZI scenes; see :meth:`positions_of`), ``"level"``
        (a resolution level of a multiscale image). Empty (the default): giving one
        is an error naming the source.
    growing : type or None
        Class attribute: the :class:`~daskloc.video._follow.Growing` subclass that
        watches a recording of this kind while it is written (``daskloc.batch(...,
        follow=True)``); None (the default): the source is read only once finished.
    dtype : numpy.dtype
        Pixel dtype of a read frame.
    attrs : dict
        ``source`` (str), ``original_shape`` (tuple of int), ``original_dtype`` (str),
        ``n_frames`` (int) and, when known, the calibration
        (:func:`~daskloc.video._calibration.calibration_attrs`: ``pixel_size_z`` ..
        ``pixel_size_x``, ``fps``, ``pixel_size_source``, ``fps_source``) and, for
        one position of several, ``position`` (its name) and ``position_index``; a
        value None is dropped.
    path : str
        What the source was opened from, for messages and tokens.
    """

    name = "source"
    suffixes: tuple = ()
    summary = ""
    priority = 50
    per_frame = False
    takes_dims = False
    fresh_blocks = False
    open_options: tuple = ()
    frame_dims = None
    growing = None

    labels: np.ndarray
    frame_shape: tuple
    dtype: np.dtype
    attrs: dict
    path = ""

    @classmethod
    def can_open(cls, source):
        """Whether this source reads ``source`` (a cheap test: no decoding).

        The default claims an existing file (not a directory) whose suffix,
        lower-cased, is in :attr:`suffixes`.

        Parameters
        ----------
        source : object
            What was given to :func:`daskloc.video.open_video`.

        Returns
        -------
        bool
        """
        if not is_path(source) or is_glob(source):
            return False
        path = Path(os.fspath(source))
        return path.suffix.lower() in cls.suffixes and path.is_file()

    @classmethod
    def role(cls, item):
        """What ``item`` is for this source, when a list of things is given to ``batch``.

        Parameters
        ----------
        item : object
            One item of the list (a path, an array ...). It may not exist.

        Returns
        -------
        {"video", "frame", "unknown"} or None
            ``"video"``: a whole video of this source; ``"frame"``: one frame of an
            image sequence; ``"unknown"``: of this source's kind but unreadable; None:
            not this source's. The default is ``"video"`` when :meth:`can_open` says so
            or ``item`` is a path with one of :attr:`suffixes`, else None.
        """
        if cls.can_open(item):
            return "video"
        if is_path(item) and not is_glob(item):
            path = Path(os.fspath(item))
            if path.suffix.lower() in cls.suffixes and not path.is_dir():
                return "video"
        return None

    @classmethod
    def positions_of(cls, source):
        """The names of the positions in ``source``, when it holds several.

        A position is one recording of a multi-position file (an OME-TIFF series, a
        CZI scene, a stage position): :func:`daskloc.batch` locates each as its own
        video. Sources that can hold several have ``"position"`` in
        :attr:`open_options` and override this.

        Parameters
        ----------
        source : object
            What was given to :func:`daskloc.video.open_video`.

        Returns
        -------
        list of str or None
            One name per position, in the file's order; None for a source of one
            recording (the default).
        """
        return None

    @classmethod
    def stem(cls, path):
        """The name of the video at ``path`` without its format's suffix.

        Parameters
        ----------
        path : str or path-like

        Returns
        -------
        str
            The file's stem, or the directory's name (its stem when the directory's
            suffix is one of :attr:`suffixes`, e.g. ``frames.zarr``).
        """
        path = Path(os.fspath(path).rstrip("/" + os.sep) or os.fspath(path))
        if path.is_dir() and path.suffix.lower() not in cls.suffixes:
            return path.name
        return path.stem

    # --- reading --------------------------------------------------------------------

    def spec(self):
        """Constants every chunk read needs (small and picklable: a path, a format ...)."""
        raise NotImplementedError

    def chunk_args(self, positions):
        """The picklable argument of :meth:`read` for one chunk.

        Parameters
        ----------
        positions : numpy.ndarray of int64
            Sorted positions (indices into :attr:`labels`) of the chunk's frames.

        Returns
        -------
        object
            With :attr:`per_frame`, a tuple with one entry per position.
        """
        raise NotImplementedError

    @staticmethod
    def read(spec, arg):
        """Read one chunk (runs in a Dask task, maybe in another process).

        Parameters
        ----------
        spec : object
            :meth:`spec` of the source.
        arg : object
            :meth:`chunk_args` of the chunk.

        Yields
        ------
        (int or slice, numpy.ndarray or Unreadable)
            Indices into the chunk (0-based) and their frames, shape ``(k,) +
            frame_shape`` and the source dtype; or :class:`Unreadable` for frames that
            cannot be decoded. Raising is fine too: the chunk's frames are then read
            again one at a time (:attr:`per_frame`) or all reported as failed.
        """
        raise NotImplementedError

    @classmethod
    def frame_path(cls, spec, arg, i):
        """The file frame ``i`` of a chunk is read from, for error messages.

        Parameters
        ----------
        spec, arg : object
            As given to :meth:`read`.
        i : int
            Index of the frame in the chunk.

        Returns
        -------
        str
            By default the first item of ``spec`` when it is a str.
        """
        if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
            return spec[0]
        return str(spec)

    def token_parts(self):
        """What identifies the data read (for Dask keys): the path and
        :meth:`fingerprint` (or the directory's mtime and size) by default."""
        found = fingerprint_of(self)
        if found is not None:
            return (self.path, found["file_size"], found["file_mtime_ns"])
        try:
            st = os.stat(self.path)
            return (self.path, st.st_mtime_ns, st.st_size)
        except (OSError, TypeError, ValueError):
            return (repr(self.path),)

    def fingerprint(self):
        """What changes when the source's data change: ``{"file_size": bytes,
        "file_mtime_ns": int}``, the total size and newest modification time (ns since
        the epoch) of the files read, or None when there are none (an array).

        Recorded in the attrs of :func:`~daskloc.video.open_video` and in a store's
        metadata, where they are part of the job's identity: a store of a source whose
        files changed refuses to resume instead of keeping features of the old data. By
        default the stat of ``path`` when it is one file; sources made of several files
        or a directory (Zarr, OME-Zarr, image sequences, multi-file OME-TIFF) override
        it with :func:`fingerprint_files` or :func:`fingerprint_tree`.
        """
        try:
            if os.path.isfile(self.path):
                return fingerprint_files([self.path])
        except (TypeError, ValueError):
            pass
        return None

    def chunk_groups(self, positions, chunks, out_shape, out_dtype):
        """The positions of each chunk, for an int ``chunks`` or ``"auto"``.

        Parameters
        ----------
        positions : numpy.ndarray of int64
            Sorted positions of the selected frames.
        chunks : int or "auto"
            Frames per chunk.
        out_shape : tuple of int
            Shape of one output frame (after the channel choice).
        out_dtype : numpy.dtype
            Dtype of the output frames.

        Returns
        -------
        list of numpy.ndarray of int64
            By default chunks of ``chunks`` frames, or for ``"auto"``
            :data:`daskloc.video.AUTO_FRAMES` (fewer for big frames); for ``"auto"``
            on a source with ``storage_frames`` (frames per storage chunk of a Zarr
            array), chunks that begin and end on storage chunks
            (:func:`storage_groups`), so no storage chunk is decoded by two tasks.
        """
        if chunks == "auto":
            size = auto_frames(AUTO_FRAMES, out_shape, out_dtype)
            storage = getattr(self, "storage_frames", None)
            if storage:
                return storage_groups(positions, size, storage, out_shape, out_dtype)
            chunks = size
        return fixed_groups(positions, chunks)

    def dataarray(self, positions, chunks, channel):
        """Build the DataArray without chunk reads, or None (the default) to use them.

        In-memory sources override it to slice their array with plain dask operations.
        """
        return


# --- auto-chunking (shared by the sources and open_video) -----------------------------

#: ``chunks="auto"``: longest group of pictures of a movie kept whole in one chunk.
AUTO_MOVIE_FRAMES = 256
#: ``chunks="auto"``: frames per chunk of other sources; for movies, the size up to
#: which short groups of pictures are gathered.
AUTO_FRAMES = 64
#: ``chunks="auto"``: most bytes of output frames per chunk (dask's default chunk size).
AUTO_CHUNK_BYTES = 128 * 2**20


def fingerprint_of(source):
    """``source.fingerprint()``, taken once per opened source (a tree walk for Zarr)."""
    if "_fingerprint" not in vars(source):
        source._fingerprint = source.fingerprint()
    return source._fingerprint


def fingerprint_files(paths):
    """``{"file_size", "file_mtime_ns"}`` of the files ``paths``: their total size in
    bytes and the newest modification time (ns since the epoch).

    Raises
    ------
    OSError
        A file cannot be stat-ed (removed since the source was opened).
    """
    size = newest = 0
    for path in paths:
        st = os.stat(path)
        size += st.st_size
        newest = max(newest, st.st_mtime_ns)
    return {"file_size": int(size), "file_mtime_ns": int(newest)}


def fingerprint_tree(location, fs=None):
    """:func:`fingerprint_files` of every file under a directory, local or remote.

    Parameters
    ----------
    location : str
        A local directory, or a path on ``fs``.
    fs : fsspec.AbstractFileSystem, optional
        The filesystem of a URL (``s3://``): sizes and ``LastModified`` (or ``mtime``)
        from one listing, no data read.

    Returns
    -------
    dict or None
        None for a remote listing with no files.
    """
    if fs is None:
        paths = [os.path.join(root, name) for root, _, names in os.walk(location)
                 for name in names]
        return fingerprint_files(sorted(paths))
    size = newest = 0
    listing = fs.find(location, detail=True)
    if not listing:
        return None
    for info in listing.values():
        size += int(info.get("size") or 0)
        when = info.get("LastModified", info.get("mtime"))
        if hasattr(when, "timestamp"):
            when = when.timestamp()
        if isinstance(when, (int, float)):
            newest = max(newest, int(when * 1e9))
    return {"file_size": int(size), "file_mtime_ns": int(newest)}


def auto_frames(cap, out_shape, out_dtype):
    """Frames per chunk for ``chunks="auto"``: ``cap``, fewer if that exceeds the bytes cap."""
    frame_bytes = int(np.prod(out_shape, dtype=np.int64)) * np.dtype(out_dtype).itemsize
    return int(max(1, min(cap, AUTO_CHUNK_BYTES // max(frame_bytes, 1))))


def storage_groups(positions, size, storage, out_shape, out_dtype):
    """``positions`` cut on the boundaries of storage chunks of ``storage`` frames.

    Each group is a whole number of storage chunks, as many as fit in ``size`` frames
    (at least one); a storage chunk of more than :data:`AUTO_CHUNK_BYTES` x 2 of output
    frames is split in equal parts instead (each task then decodes the storage chunk
    for its part: bounded memory before decoding once).
    """
    storage = int(storage)
    frame_bytes = int(np.prod(out_shape, dtype=np.int64)) * np.dtype(out_dtype).itemsize
    if size >= storage:
        key = positions // ((size // storage) * storage)
    elif storage * frame_bytes <= 2 * AUTO_CHUNK_BYTES:
        key = positions // storage
    else:
        parts = -(-storage // size)
        part = -(-storage // parts)
        key = (positions // storage) * parts + (positions % storage) // part
    if len(positions) == 0:
        return []
    cuts = np.flatnonzero(np.diff(key)) + 1
    return list(np.split(positions, cuts))


def fixed_groups(positions, size):
    """``positions`` cut into consecutive pieces of ``size`` (the last may be shorter)."""
    return [positions[i : i + size] for i in range(0, len(positions), size)]


#: Most entries a trailing axis of a 4-D array may have to be read as colour channels
#: (grey, grey + alpha, RGB, RGBA); a longer one is another axis, never guessed.
MAX_CHANNELS = 4


#: The names of a video's axes, in the order :func:`daskloc.video.open_video` gives them
#: (those present): time, depth, rows, columns, colour.
VIDEO_DIMS = ("frame", "z", "y", "x", "channel")

_DIMS_EXAMPLE = ("dims=('frame', 'z', 'y', 'x') for a time series of z-stacks, "
                 "dims=('z', 'y', 'x') for one z-stack, or dims=('frame', 'channel', 'y', "
                 "'x') for several channels (then pick one with channel=)")


def frame_dims_of(source):
    """The names of the axes of ``source.frame_shape`` (see :attr:`Source.frame_dims`).

    Parameters
    ----------
    source : Source
        An opened source (or anything with ``frame_shape`` and maybe ``frame_dims``).

    Returns
    -------
    tuple of str
        ``source.frame_dims`` when set, else ``("y", "x")`` or ``("y", "x",
        "channel")`` by the length of ``frame_shape``.
    """
    dims = getattr(source, "frame_dims", None)
    if dims is not None:
        return tuple(dims)
    return ("y", "x", "channel")[: len(source.frame_shape)]


def check_dims(dims, ndim, what):
    """Validate the ``dims=`` a caller gave for an array of ``ndim`` axes.

    Parameters
    ----------
    dims : sequence of str
        One name per axis of the array, in the array's order, from
        :data:`VIDEO_DIMS`; ``"y"`` and ``"x"`` are required, the others optional
        (without ``"frame"`` the array is one frame).
    ndim : int
        Number of axes of the array.
    what : str
        The array, for messages.

    Returns
    -------
    tuple of str

    Raises
    ------
    TypeError
        ``dims`` is not a sequence of str.
    ValueError
        Unknown or repeated names, no ``y`` or ``x``, or not one name per axis.
    """
    if isinstance(dims, str) or not all(isinstance(d, str) for d in _iterable(dims)):
        raise TypeError(
            f"dims must be a tuple of axis names such as ('frame', 'z', 'y', 'x'), got "
            f"{dims!r}"
        )
    dims = tuple(dims)
    unknown = [d for d in dims if d not in VIDEO_DIMS]
    if unknown:
        raise ValueError(
            f"dims {dims}: unknown axis name(s) {', '.join(map(repr, unknown))}; the names "
            f"are {', '.join(map(repr, VIDEO_DIMS))} (time is 'frame')"
        )
    if len(set(dims)) != len(dims):
        raise ValueError(f"dims {dims} names an axis twice")
    if "y" not in dims or "x" not in dims:
        raise ValueError(f"dims {dims} must include 'y' and 'x' (the image rows and columns)")
    if len(dims) != ndim:
        raise ValueError(
            f"{what}: dims {dims} names {len(dims)} axes but the array has {ndim} "
            "(give one name per axis, in the array's order)"
        )
    return dims


def _iterable(x):
    try:
        return list(x)
    except TypeError:
        return [None]


class Layout:
    """How an array's axes map to a video's (from :func:`array_layout`).

    Attributes
    ----------
    n : int
        Number of frames.
    frame_shape : tuple of int
        Shape of one frame, in the order of ``frame_dims``.
    frame_dims : tuple of str
        Names of the frame's axes, in :data:`VIDEO_DIMS` order (``"frame"`` excluded).
    order : tuple of int
        The array's axes in :data:`VIDEO_DIMS` order (``numpy.transpose`` of the array
        by ``order`` gives ``(frame?,) + frame_dims``).
    has_frame : bool
        Whether the array has a frame axis (else it is one frame).
    """

    __slots__ = ("frame_dims", "frame_shape", "has_frame", "n", "order")

    def __init__(self, n, frame_shape, frame_dims, order, has_frame):
        self.n, self.frame_shape, self.frame_dims = n, frame_shape, frame_dims
        self.order, self.has_frame = order, has_frame


def _known_shape(shape, what):
    if any(isinstance(s, float) and np.isnan(s) for s in shape):
        raise VideoError(
            f"{what}: has unknown chunk sizes (shape {shape}); call "
            "compute_chunk_sizes() on it first"
        )
    return tuple(int(s) for s in shape)


def array_layout(shape, what, dims=None, channel_named=False):
    """The :class:`Layout` of an array of ``shape`` with axis names ``dims``.

    Parameters
    ----------
    shape : tuple of int
        The array's shape.
    what : str
        The array, for messages.
    dims : sequence of str, optional
        The array's axis names, in its order (see :func:`check_dims`). Without it the
        layout is guessed only where it cannot be wrong: ``(y, x)`` is one frame,
        ``(frame, y, x)``, and ``(frame, y, x, channel)`` when the last axis has at
        most :data:`MAX_CHANNELS` entries (or ``channel_named``).
    channel_named : bool
        Without ``dims``: the caller named the last axis of a 4-D array ``channel``.

    Returns
    -------
    Layout

    Raises
    ------
    VideoError
        Unknown dask chunk sizes; without ``dims``, a 4-D array whose last axis is too
        long to be colour channels, or an array of another number of axes (the message
        says to pass ``dims=``).
    TypeError, ValueError
        Invalid ``dims`` (:func:`check_dims`).
    """
    shape = _known_shape(shape, what)
    if dims is None:
        if len(shape) == 2:
            return Layout(1, shape, ("y", "x"), (0, 1), False)
        if len(shape) == 4 and shape[3] > MAX_CHANNELS and not channel_named:
            # (T, Z, Y, X) or (T, C, Y, X) read as (frame, y, x, channel) would locate in
            # slices across the image with hundreds of "channels", finding nothing,
            # silently.
            raise VideoError(
                f"{what}: a 4-D array of shape {shape} would be read as (frame, y, x, "
                f"channel), but its last axis has {shape[3]} entries, more than a colour "
                f"channel axis (at most {MAX_CHANNELS}); daskloc does not guess which axis "
                f"is which: name them with open_video(..., dims=...), e.g. "
                f"{_DIMS_EXAMPLE}"
            )
        if len(shape) in (3, 4):
            dims = ("frame", "y", "x", "channel")[: len(shape)]
        else:
            raise VideoError(
                f"{what}: cannot guess the axes of an array of shape {shape}; (y, x), "
                "(frame, y, x) and (frame, y, x, channel) are read as they are, anything "
                f"else needs open_video(..., dims=...), e.g. {_DIMS_EXAMPLE}"
            )
    dims = check_dims(dims, len(shape), what)
    order = tuple(dims.index(d) for d in VIDEO_DIMS if d in dims)
    frame_dims = tuple(d for d in VIDEO_DIMS if d in dims and d != "frame")
    frame_shape = tuple(shape[dims.index(d)] for d in frame_dims)
    has_frame = "frame" in dims
    n = shape[dims.index("frame")] if has_frame else 1
    return Layout(n, frame_shape, frame_dims, order, has_frame)


def frame_layout(shape, what, channel_named=False):
    """(n_frames, frame_shape) for a 2-D layout of an array-like of ``shape``.

    Kept for readers written against the 2-D interface; :func:`array_layout` gives
    the whole layout (with ``dims=`` and a z axis). A 4-D shape is ``(frame, y, x,
    channel)``: unless the caller named that axis (``channel_named``), its last axis
    may have at most :data:`MAX_CHANNELS` entries, else VideoError (another axis is
    never guessed)."""
    layout = array_layout(shape, what, channel_named=channel_named)
    return layout.n, layout.frame_shape


class Position:
    """One position of a multi-position file, as an item :func:`daskloc.batch` and
    :func:`daskloc.video.open_video` take (``open_video(Position(path, 2))`` is
    ``open_video(path, position=2)``).

    Parameters
    ----------
    path : str or path-like
        The file (or a URL, for sources that read them).
    index : int
        The position's index in the file (0-based, the file's order).
    name : str, optional
        Its name (an OME ``Image`` name, a CZI scene name); the video's name in a
        many-video store is the file's stem and this name.

    Examples
    --------
    >>> Position("plate.ome.tif", 1, "Pos1")
    Position('plate.ome.tif', 1, 'Pos1')
    """

    __slots__ = ("index", "name", "path")

    def __init__(self, path, index, name=None):
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f"a position index is an int >= 0, got {index!r}")
        self.path = os.fspath(path) if isinstance(path, os.PathLike) else path
        self.index = int(index)
        self.name = None if name is None else str(name)

    def __repr__(self):
        return f"Position({self.path!r}, {self.index!r}, {self.name!r})"

    def __str__(self):
        name = f" {self.name!r}" if self.name is not None else ""
        return f"{self.path} (position {self.index}{name})"

    def __eq__(self, other):
        return (isinstance(other, Position)
                and (self.path, self.index) == (other.path, other.index))

    def __hash__(self):
        return hash((Position, self.path, self.index))

    def __reduce__(self):
        return (Position, (self.path, self.index, self.name))


def pick_position(names, position, path):
    """The index of the position ``position`` asks for among ``names``.

    Parameters
    ----------
    names : sequence of str
        The file's positions, in order (:meth:`Source.positions_of`).
    position : int, str or None
        An index (0-based), a name, or None (allowed only for a file of one position).
    path : str
        The file, for messages.

    Returns
    -------
    int

    Raises
    ------
    VideoError
        ``position`` is None and the file holds several positions (the message lists
        them and says how to choose, or to give the file to ``batch``, which locates
        each); an index out of range or a name the file does not hold.
    """
    listed = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names[:20]))
    if len(names) > 20:
        listed += f", ... ({len(names)} in all)"
    if position is None:
        if len(names) <= 1:
            return 0
        raise VideoError(
            f"{path} holds {len(names)} positions ({listed}): open one with "
            "open_video(path, position=INDEX or NAME) (CLI: --position), or give the file "
            "to daskloc.batch (CLI: daskloc locate), which locates each position as its "
            "own video"
        )
    if isinstance(position, str):
        if position in names:
            return list(names).index(position)
        raise VideoError(f"{path} holds no position named {position!r}; it holds {listed}")
    if isinstance(position, bool) or not isinstance(position, (int, np.integer)):
        raise TypeError(f"position must be an int index or a name, got {position!r}")
    if not 0 <= int(position) < max(len(names), 1):
        raise VideoError(f"{path} holds no position {position} (positions: {listed})")
    return int(position)
