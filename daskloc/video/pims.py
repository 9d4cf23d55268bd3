"""pims readers: any ``pims.FramesSequence`` (``pims.open(...)``, ``pims.ImageSequence``,
``pims.TiffStack``, the PyAV readers, ``Cine``, ``NorpixSeq`` ...), reopened by every
chunk task from the reader's class and the file it was opened from.

pims readers hold open files and decoders and cannot be pickled, so the task graph
never holds one: :class:`PimsSource` records, on the client, the reader's class (module
and qualified name), the path it was opened from and the constructor arguments it can
recover from the reader, and each chunk task opens its own reader from those and reads
its frames by index. pims is imported only when the object given to ``open_video`` is
already a pims object (pims is in ``sys.modules``): opening a path never imports it.
"""

from __future__ import annotations

import collections
import glob as _glob
import importlib
import inspect
import os
import sys
import threading

import numpy as np

from daskloc._utils import is_glob
from daskloc.video._base import MAX_CHANNELS, Source, VideoError
from daskloc.video._calibration import calibration_attrs

__all__ = ["PimsSource"]

#: Attributes in which pims readers keep the path they were opened from, in the order
#: they are tried (``TiffStack``, ``Cine``, ``NorpixSeq``, ``SpeStack``: ``_filename``;
#: the PyAV readers: ``file``; ``ImageIOReader``, ``Bioformats``, ``MoviePyReader``:
#: ``filename``; ``ImageSequenceND``, a zipped ``ImageSequence``: ``pathname``).
PATH_ATTRIBUTES = ("filename", "_filename", "file", "_file", "pathname", "_pathname",
                   "path", "_path")

_FIX = ("pass the file path to open_video instead (daskloc reads movies, TIFF, image "
        "sequences and Zarr itself), or load the frames with np.asarray(reader) and pass "
        "the array")


class _Items(tuple):
    """A dict's items frozen into a (hashable) tuple, for a spec."""

    __slots__ = ()


class _Seq(tuple):
    """A list frozen into a (hashable) tuple, for a spec."""

    __slots__ = ()


_SIMPLE = (type(None), bool, int, float, str, bytes)


def _freeze(value):
    """``value`` as a hashable, picklable spec entry, or raise TypeError if it is not plain
    data (None, bool, numbers, str, and lists, tuples and dicts of them)."""
    if isinstance(value, _SIMPLE):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return _Items((_freeze(k), _freeze(v)) for k, v in value.items())
    if isinstance(value, list):
        return _Seq(_freeze(v) for v in value)
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    raise TypeError(type(value).__name__)


def _thaw(value):
    """The value :func:`_freeze` froze (dicts and lists again)."""
    if isinstance(value, _Items):
        return {_thaw(k): _thaw(v) for k, v in value}
    if isinstance(value, _Seq):
        return [_thaw(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_thaw(v) for v in value)
    return value


def _pims_classes():
    """``(FramesSequence, FramesSequenceND, ImageSequence)`` of an imported pims, or None."""
    if sys.modules.get("pims") is None:
        return None
    from pims.base_frames import FramesSequence, FramesSequenceND
    from pims.image_sequence import ImageSequence

    return FramesSequence, FramesSequenceND, ImageSequence


def _slicerator_classes():
    module = sys.modules.get("slicerator")
    if module is None:
        return ()
    return tuple(c for c in (getattr(module, "Slicerator", None),
                             getattr(module, "Pipeline", None)) if isinstance(c, type))


def _root(source):
    """The object at the bottom of a chain of pims slices and pipelines, and whether a
    pipeline (``pims.as_grey``, ``@pims.pipeline`` functions) is on the way."""
    sliced = _slicerator_classes()
    piped = False
    seen = 0
    while sliced and isinstance(source, sliced) and seen < 100:
        seen += 1
        if hasattr(source, "_ancestors"):  # a Pipeline
            piped = True
            ancestors = source._ancestors
            source = ancestors[0] if ancestors else None
        else:
            source = getattr(source, "_ancestor", None)
    return source, piped


def _path_of(reader):
    """The path (str) of the file or folder ``reader`` was opened from, or None."""
    for name in PATH_ATTRIBUTES:
        try:
            value = getattr(reader, name, None)
        except Exception:  # noqa: BLE001 - a property that fails: not a path
            continue
        if isinstance(value, (str, os.PathLike)):
            text = os.fspath(value)
            if isinstance(text, str) and os.path.exists(text):
                return os.path.abspath(text)
            if isinstance(text, str) and is_glob(text) and _glob.glob(text):
                return text  # ImageSequenceND's pattern
    return None


def _import_class(module, qualname):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _constructor_kwargs(cls, reader):
    """The keyword arguments of ``cls(path, ...)`` that can be read back from ``reader``.

    For each parameter after the first (the path), the value of the reader's attribute of
    the same name, or of that name with a leading underscore (``PyAVReaderIndexed``'s
    ``toc`` in ``_toc``, ``format``; ``SpeStack``'s ``_char_encoding``; ``Bioformats``'s
    ``_series`` and ``read_mode``), when it is plain data; a ``**kwargs`` parameter gets
    the reader's ``kwargs`` dict when it has one. Anything else keeps its default.
    """
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    except (TypeError, ValueError):
        return {}
    kwargs = {}
    for i, p in enumerate(params):
        if i == 0 and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue  # the path
        if p.kind is p.VAR_KEYWORD:
            extra = reader.__dict__.get("kwargs")
            if isinstance(extra, dict) and all(isinstance(k, str) for k in extra):
                for k, v in extra.items():
                    try:
                        kwargs[k] = _freeze(v)
                    except TypeError:
                        pass
            continue
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        for attr in (p.name, "_" + p.name):
            if attr in reader.__dict__:
                try:
                    kwargs[p.name] = _freeze(reader.__dict__[attr])
                except TypeError:
                    pass
                break
    if type(reader).__name__ == "PyAVReaderTimed":
        # cache_size and stream_index are not kept under their names
        cache = reader.__dict__.get("_cache")
        if isinstance(cache, list) and cache:
            kwargs["cache_size"] = len(cache)
        try:
            videos = list(reader._container.streams.video)
            kwargs["stream_index"] = videos.index(reader._stream)
        except Exception:  # noqa: BLE001 - an unusual reader: keep the default
            pass
    return kwargs


def _nd_state(reader, nd_class):
    """``(bundle_axes, iter_axes, default_coords)`` of a ``FramesSequenceND``, else None."""
    if not isinstance(reader, nd_class):
        return None
    return (tuple(reader.bundle_axes), tuple(reader.iter_axes),
            _freeze({str(k): int(v) for k, v in dict(reader.default_coords).items()}))


#: The pims letter of a bundled axis -> the video's axis name.
_ND_AXES = {"z": "z", "y": "y", "x": "x", "c": "channel"}


def _frame_dims(frame_shape, nd_state, what):
    """The names of the axes of one frame of the reader."""
    if nd_state is not None:
        bundle = nd_state[0]
        names = tuple(_ND_AXES.get(a) for a in bundle)
        order = ("z", "y", "x", "channel")
        if (None in names or "y" not in names or "x" not in names
                or list(names) != [d for d in order if d in names]
                or len(names) != len(frame_shape)):
            raise VideoError(
                f"{what}: frames bundle the axes {''.join(bundle)!r} (shape {frame_shape}); "
                "open_video reads frames with the axes z, y, x and c (channel) in that "
                "order: set reader.bundle_axes (e.g. 'yx', 'yxc' or 'zyx') and "
                "reader.iter_axes = 't' first"
            )
        return names
    if len(frame_shape) == 2:
        return ("y", "x")
    if len(frame_shape) == 3 and frame_shape[-1] <= MAX_CHANNELS:
        return ("y", "x", "channel")
    raise VideoError(
        f"{what}: frames of shape {frame_shape} are not (y, x) or (y, x, channel) with at "
        f"most {MAX_CHANNELS} channels; " + _FIX + " with open_video(..., dims=...)"
    )


# --- one open reader per process and thread ------------------------------------------

#: Readers kept open per thread (the most recently used are kept).
CACHE_SIZE = 2

_LOCAL = threading.local()


def _cache():
    cache = getattr(_LOCAL, "readers", None)
    if cache is None or getattr(_LOCAL, "pid", None) != os.getpid():
        cache = _LOCAL.readers = collections.OrderedDict()  # a forked child starts empty
        _LOCAL.pid = os.getpid()
    return cache


def _close(reader):
    try:
        reader.close()
    except Exception:  # noqa: BLE001, S110 - closing is best effort
        pass


def _open(spec, path=None):
    """A new reader of ``spec`` (for ``path`` in file mode)."""
    _, module, qualname, spec_path, kwargs, nd_state = spec[:6]
    cls = _import_class(module, qualname)
    reader = cls(path if path is not None else spec_path, **_thaw(kwargs))
    if nd_state is not None:
        bundle, iter_axes, coords = nd_state
        reader.iter_axes = list(iter_axes)
        reader.bundle_axes = list(bundle)
        reader.default_coords = _thaw(coords)
    return reader


def _reader(spec):
    """The open reader of ``spec`` for this thread (opened on first use)."""
    cache = _cache()
    key = spec[:6]
    reader = cache.pop(key, None)
    if reader is None:
        reader = _open(spec)
    cache[key] = reader
    while len(cache) > CACHE_SIZE:
        _close(cache.popitem(last=False)[1])
    return reader


def _forget(spec):
    reader = _cache().pop(spec[:6], None)
    if reader is not None:
        _close(reader)


def clear_cache():
    """Close the readers this thread keeps open (see :class:`PimsSource`, Notes)."""
    cache = _cache()
    while cache:
        _close(cache.popitem()[1])


def _check_frame(frame, frame_shape, dtype, where):
    if frame.shape != tuple(frame_shape) or str(frame.dtype) != dtype:
        raise VideoError(
            f"{where}: the pims reader returned a frame of shape {frame.shape} and dtype "
            f"{frame.dtype}, expected {tuple(frame_shape)} {dtype} (its frame_shape and "
            "pixel_type)"
        )


def _stat(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class PimsSource(Source):
    """A pims reader (any ``pims.FramesSequence``), reopened in every chunk task.

    Parameters
    ----------
    source : pims.FramesSequence or a slice of one
        A reader such as ``pims.open("stack.tif")``, ``pims.ImageSequence("dir/*.png")``,
        ``pims.TiffStack(path)``, ``pims.PyAVReaderIndexed(path)``,
        ``pims.PyAVReaderTimed(path)``, ``pims.Cine(path)``, ``pims.NorpixSeq(path)``;
        or a slice of one (``reader[10:50]``, ``reader[::2]``, ``reader[[1, 5, 9]]``)
        whose frames are in increasing order.

    Raises
    ------
    VideoError
        The reader cannot be reopened in a task: no path to reopen it from (a reader of
        an in-memory array, of a file object, ``pims.ImageReader``), a class defined
        inside a function, a constructor that fails when given the path, or a reopened
        reader whose length, frame shape or first frame differ from the reader's; a
        pims pipeline (``pims.as_grey(reader)``, ``@pims.pipeline`` functions); a slice
        whose frames are not in increasing order, or an empty one; frames whose shape
        or dtype differ from the reader's ``frame_shape`` and ``pixel_type``; frames
        that are not ``(y, x)`` or ``(y, x, channel)`` (or, for a ``FramesSequenceND``,
        bundled axes other than ``z``, ``y``, ``x``, ``c`` in that order). Each message
        names the reader class and says what to pass instead.

    Notes
    -----
    **What travels in the graph.** The reader itself cannot be pickled (PyAV
    containers, open files). On the client the source records the reader's class
    (``__module__`` and ``__qualname__``), the path it was opened from (the first of
    the attributes :data:`PATH_ATTRIBUTES` that names an existing file or folder), the
    constructor arguments it can read back from the reader (for each parameter of the
    constructor after the path, the reader's attribute of that name or ``_name``,
    when it is plain data, e.g. ``PyAVReaderIndexed``'s table of contents ``toc``, so
    that a task does not decode the whole movie again to rebuild it) and, for a
    ``pims.FramesSequenceND``, its ``bundle_axes``, ``iter_axes`` and
    ``default_coords``. It then reopens the reader once from those and checks that it
    has the same length and frame shape and the same first frame as the reader given;
    otherwise it refuses (VideoError) rather than let tasks read other frames.

    A chunk task reopens the reader from the class and path and reads its frames with
    ``reader[i]``, each checked against ``frame_shape`` and ``pixel_type``. Each
    process and thread keeps the last :data:`CACHE_SIZE` readers it opened (keyed by
    that description), so later chunks of the same video skip the constructor (which
    for a TIFF parses the page table, for a PyAV reader opens the container). A task
    that finds the file changed (modification time or size) since ``open_video``
    fails with :class:`~daskloc.video.VideoDecodeError`.

    A ``pims.ImageSequence`` is reopened differently: its list of files (in pims's
    order) is cut per chunk, and each task opens an ``ImageSequence`` of just its
    chunk's files, so a task carries only its own paths and an error names the image
    file.

    **Slices.** A slice of a reader (``reader[10:50]``, a pims ``Slicerator``) is read
    from the sliced reader, and the ``frame`` coordinate holds the reader's frame
    numbers (10..49), as pims's ``Frame.frame_no`` and ``open_video(path,
    frames=slice(10, 50))`` number them; ``n_frames`` and ``original_shape`` are those
    of the whole reader. A pipeline (``pims.as_grey(reader)``) is refused: its function
    would have to run in the workers; open the reader itself and use ``channel="grey"``
    (``pims.as_grey``'s weights) or ``channel=0``.

    **Frames.** Shape and dtype are the reader's ``frame_shape`` and ``pixel_type``
    (checked against its first frame). ``(y, x, 3)`` or ``(y, x, 4)`` frames (PyAV
    readers, colour images) have a trailing ``channel`` axis, as for every colour
    source. ``attrs``: ``source`` (the path), ``reader`` (the class name), ``fps``
    when the reader has a ``frame_rate`` (``PyAVReaderTimed``, ``Cine``), with
    ``fps_source``; ``original_shape``, ``original_dtype``, ``n_frames``.

    ``PyAVReaderTimed`` numbers frames by timestamp and estimates its length from the
    duration, and ``PyAVReaderIndexed`` counts decoded frames; the frames are exactly
    what the pims reader gives for each index, including its way of filling frames it
    cannot find. For exact, faster movie reads pass the movie's path to
    ``open_video``.
    """

    name = "pims"
    summary = "pims readers (pims.open(...), pims.ImageSequence, pims.PyAVReaderIndexed, ...)"
    # asked after every other source: no other claims a pims object, and a plugin that
    # reads some pims readers better (priority 50) comes first
    priority = 95
    per_frame = True

    @classmethod
    def can_open(cls, source):
        """True for a pims reader (a ``pims.FramesSequence``), a slice or pipeline of one.

        Never imports pims: when pims is not imported, nothing is a pims reader.
        """
        classes = _pims_classes()
        if classes is None:
            return False
        if isinstance(source, classes[0]):
            return True
        sliced = _slicerator_classes()
        if not sliced or not isinstance(source, sliced):
            return False
        root, _ = _root(source)
        if isinstance(root, classes[0]):
            return True
        # a slice restored from a pickle holds the frames themselves (pims.Frame): claim
        # it to say why it cannot be read
        return isinstance(root, list)

    @classmethod
    def role(cls, item):
        """``"video"`` for a pims reader, else None."""
        return "video" if cls.can_open(item) else None

    def __init__(self, source):
        frames_sequence, nd_class, image_sequence = _pims_classes()
        reader, piped = _root(source)
        kind = type(reader).__name__ if reader is not None else type(source).__name__
        if piped:
            raise VideoError(
                f"a pims pipeline over a {kind} (pims.as_grey, a @pims.pipeline function) "
                "runs a function daskloc cannot rerun in its tasks: open the reader itself "
                "and pick a channel with open_video(reader, channel='grey') (pims.as_grey's "
                "weights) or channel=0, or process the DataArray open_video returns"
            )
        if not isinstance(reader, frames_sequence):
            raise VideoError(
                f"a slice of {type(source).__name__} holding frames in memory (a pickled "
                f"pims slice: a list of pims.Frame) has no file to reopen: {_FIX}"
            )
        cls = type(reader)
        what = f"pims.{cls.__name__}" if cls.__module__.startswith("pims") else cls.__name__
        self.reader_name = cls.__name__
        n_reader = len(reader)
        if reader is source:
            positions = np.arange(n_reader, dtype=np.int64)
        else:
            positions = np.asarray(list(source.indices), dtype=np.int64)
            if positions.size == 0:
                raise VideoError(f"the slice of the {what} reader selects no frames")
            if np.any(np.diff(positions) <= 0):
                raise VideoError(
                    f"the slice of the {what} reader has its frames out of order (reversed "
                    "or repeated); open_video reads frames in increasing order: open the "
                    "reader itself and select with open_video(reader, frames=...)"
                )
            if positions[0] < 0 or positions[-1] >= n_reader:
                raise VideoError(f"the slice of the {what} reader is outside its "
                                 f"{n_reader} frames")

        module, qualname = cls.__module__, cls.__qualname__
        try:
            resolved = _import_class(module, qualname)
        except Exception:  # noqa: BLE001 - any failure to find it again
            resolved = None
        if resolved is not cls:
            raise VideoError(
                f"the pims reader class {module}.{qualname} cannot be imported by name "
                "(defined inside a function or replaced), so the tasks cannot reopen it: "
                "define it at module level, or " + _FIX
            )

        files = None
        if (isinstance(reader, image_sequence) and not isinstance(reader, nd_class)
                and not getattr(reader, "_is_zipfile", False)):
            files = tuple(os.path.abspath(os.fspath(p)) for p in reader._filepaths)
            missing = [p for p in files if not os.path.isfile(p)]
            if missing:
                raise VideoError(f"{what}: image file {missing[0]!r} not found: {_FIX}")
            path = None
            kwargs = {k: _freeze(v) for k, v in getattr(reader, "kwargs", {}).items()}
            described = getattr(reader, "pathname", None) or os.path.dirname(files[0])
            self.path = str(described)
        else:
            path = _path_of(reader)
            if path is None:
                raise VideoError(
                    f"cannot reopen the {what} reader in daskloc's tasks (pims readers "
                    "cannot be pickled, so each task reopens the reader from its class and "
                    f"the file it was opened from): it records no file path (one of "
                    f"{', '.join(PATH_ATTRIBUTES)}): it reads an in-memory array, a file "
                    f"object, or keeps no name; {_FIX}"
                )
            kwargs = _constructor_kwargs(cls, reader)
            self.path = path
        nd_state = _nd_state(reader, nd_class)

        frame_shape = tuple(int(s) for s in reader.frame_shape)
        dtype = np.dtype(reader.pixel_type)
        first = np.asarray(reader[int(positions[0])])
        if first.shape != frame_shape or first.dtype != dtype:
            raise VideoError(
                f"{what} reader of {self.path}: its frame_shape and pixel_type say "
                f"{frame_shape} {dtype} but frame {int(positions[0])} is {first.shape} "
                f"{first.dtype}; {_FIX}"
            )
        self.frame_dims = _frame_dims(frame_shape, nd_state, f"{what} reader of {self.path}")
        self.frame_shape = frame_shape
        self.dtype = dtype
        self.labels = positions
        self.files = files
        stat = None if path is None or not os.path.isfile(path) else _stat(path)
        self._spec = ("files" if files is not None else "reader", module, qualname, path,
                      _Items(kwargs.items()), nd_state, stat, frame_shape, str(dtype))
        self._check_reopen(reader, positions, first, what)

        try:
            rate = reader.frame_rate
            rate = rate() if callable(rate) else rate
            fps = float(rate)
        except Exception:  # noqa: BLE001 - no frame rate (or a broken one): not recorded
            fps = None
        attrs = {
            "source": self.path,
            "reader": cls.__name__,
            "original_shape": (n_reader,) + frame_shape,
            "original_dtype": str(dtype),
            "n_frames": int(n_reader),
        }
        attrs.update(calibration_attrs(fps=fps, source={"fps": f"{cls.__name__}.frame_rate"}))
        self.attrs = attrs

    def _check_reopen(self, reader, positions, first, what):
        """Reopen the reader as a task will; refuse if it gives another video."""
        spec = self._spec
        i = int(positions[0])
        how = (f"{spec[2]}({self.files[i]!r})" if self.files is not None
               else f"{spec[2]}({spec[3]!r}, **{_thaw(spec[4])!r})")
        if len(how) > 300:
            how = how[:300] + "...)"
        try:
            if self.files is not None:
                again = _open(spec, [self.files[i]])
                try:
                    got, n = np.asarray(again[0]), len(reader._filepaths)
                finally:
                    _close(again)
            else:
                again = _reader(spec)
                got, n = np.asarray(again[i]), len(again)
        except Exception as exc:
            _forget(spec)
            raise VideoError(
                f"cannot reopen the {what} reader in daskloc's tasks: {how} raised "
                f"{type(exc).__name__}: {exc}; {_FIX}"
            ) from exc
        if (n != len(reader) or tuple(np.shape(got)) != self.frame_shape
                or not np.array_equal(got, first)):
            _forget(spec)
            raise VideoError(
                f"cannot reopen the {what} reader in daskloc's tasks: {how} gives "
                f"{n} frames and a frame {i} of shape {np.shape(got)} different from the "
                f"reader's ({len(reader)} frames, {self.frame_shape}): it was opened with "
                f"arguments daskloc cannot read back; {_FIX}"
            )

    def token_parts(self):
        """The reader's class, path (or files) with their mtime and size, arguments and
        frame numbers."""
        files = self.files if self.files is not None else (self.path,)
        stats = tuple((p, _stat(p)) for p in files)
        return (self._spec[:6], stats, self.labels.tobytes())

    def spec(self):
        """``(mode, module, qualname, path, kwargs, nd_state, stat, frame_shape, dtype)``.

        ``mode`` is ``"reader"`` (reopen ``qualname(path, **kwargs)`` and read by index)
        or ``"files"`` (an ``ImageSequence`` of each chunk's files); ``stat`` is the
        file's ``(mtime_ns, size)`` at ``open_video``, or None.
        """
        return self._spec

    def chunk_args(self, positions):
        """The chunk's frame indices in the reader (or, for an image sequence, its
        image files), a tuple."""
        indices = self.labels[positions]
        if self.files is not None:
            return tuple(self.files[int(i)] for i in indices)
        return tuple(int(i) for i in indices)

    @classmethod
    def frame_path(cls, spec, arg, i):
        """The image file of frame ``i`` (image sequences), else the reader's path."""
        if spec[0] == "files":
            return arg[int(i)]
        return str(spec[3])

    @staticmethod
    def read(spec, arg):
        """Reopen (or reuse) the reader and read the chunk's frames by index."""
        mode, _, qualname, path, _, _, stat, frame_shape, dtype = spec
        if mode == "files":
            reader = _open(spec, list(arg))
            try:
                for i in range(len(arg)):
                    frame = np.asarray(reader[i])
                    _check_frame(frame, frame_shape, dtype, arg[i])
                    yield i, frame[None]
            finally:
                _close(reader)
            return
        if stat is not None and _stat(path) != stat:
            _forget(spec)
            raise VideoError(f"{path} changed since open_video (modification time or size)")
        reader = _reader(spec)
        try:
            for i, index in enumerate(arg):
                frame = np.asarray(reader[index])
                _check_frame(frame, frame_shape, dtype, f"{qualname} of {path}, frame {index}")
                yield i, frame[None]
        except GeneratorExit:
            raise
        except BaseException:
            _forget(spec)  # its state may be broken: the retry opens a new one
            raise
