"""A conformance suite for video readers, and a chunk-read counter.

Subclass :class:`ReaderTests` in a test module (its name must start with ``Test`` for
pytest to collect it), say which :class:`~daskloc.video.Source` class is tested and
how to write a small recording of known frames in its format::

    import numpy as np
    from daskloc.testing.readers import ReaderTests
    from mypackage.reader import MyFormatSource

    class TestMyFormat(ReaderTests):
        source_class = MyFormatSource

        def make_recording(self, tmp_path, frames):
            path = tmp_path / "recording.myf"
            write_my_format(path, frames)      # frames: (n, y, x) uint8
            return str(path)                   # what open_video is given

The shared tests then check that the registry picks the class for the recording and
not for a foreign file, the shape, dtype, dims, frame labels and attrs, that every
chunk's pixels equal the known ones for several chunk sizes and frame selections, and
that the dask graph is lazy (no pixel data, small) and pickles with cloudpickle and
recomputes.
"""

from __future__ import annotations

import contextlib
import pickle
import threading

import numpy as np
import pytest

from daskloc.video import Source, _chunks, open_video, source_for

__all__ = ["ChunkReadCounter", "ReaderTests", "count_chunk_reads"]

_READ_CHUNK = _chunks.read_chunk


def _plain_read_chunk():
    return _READ_CHUNK


class ChunkReadCounter:
    """A chunk-read task that counts its calls and reads through ``read``.

    Parameters
    ----------
    read : callable
        The task it wraps, ``read(request) -> numpy.ndarray``.

    Attributes
    ----------
    count : int
        Chunk reads so far (in this process).
    requests : list
        The :class:`~daskloc.video._chunks.ChunkRequest` of each read, in order.
    """

    def __init__(self, read):
        self.read = read
        self.count = 0
        self.requests = []
        self._lock = threading.Lock()

    def __call__(self, request):
        with self._lock:
            self.count += 1
            self.requests.append(request)
        return self.read(request)

    def __reduce__(self):
        # in another process nothing is counted: the plain task travels
        return (_plain_read_chunk, ())


@contextlib.contextmanager
def count_chunk_reads():
    """Count the chunk reads of the videos opened inside the block.

    The chunk task of every :func:`~daskloc.video.open_video` array built inside the
    block is wrapped (in the spirit of zarr's ``LoggingStore``) and counts each time
    it runs in this process -- during the block and after it, since the wrapper is
    part of the array's graph. In-memory sources (numpy, dask, xarray) have no chunk
    reads of their own; an xarray input built by ``open_video`` counts through its
    original tasks only if those were built inside a block. Use the synchronous or
    threaded scheduler: tasks run in other processes are not counted.

    Yields
    ------
    ChunkReadCounter
        ``counter.count`` is the number of chunk reads so far.

    Examples
    --------
    >>> import numpy as np, tifffile, tempfile, os
    >>> from daskloc.video import open_video
    >>> path = os.path.join(tempfile.mkdtemp(), "s.tif")
    >>> tifffile.imwrite(path, np.zeros((5, 8, 8), np.uint8), photometric="minisblack")
    >>> with count_chunk_reads() as reads:
    ...     video = open_video(path, chunks=2)
    >>> _ = video[:3].compute(scheduler="sync")
    >>> reads.count
    2
    """
    previous = _chunks.read_chunk
    counter = ChunkReadCounter(previous)
    _chunks.read_chunk = counter
    try:
        yield counter
    finally:
        _chunks.read_chunk = previous


def known_frames(n_frames=7, shape=(12, 16), dtype=np.uint8):
    """Frames whose every pixel is known and every frame differs.

    Parameters
    ----------
    n_frames : int
    shape : tuple of int
        ``(y, x)`` or ``(y, x, channel)``, pixels.
    dtype : numpy dtype
        An integer dtype.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_frames,) + shape``: ``(17 * frame + 3 * y + 5 * x + 11 * c) mod
        m``, ``m`` = 251 for 8-bit, else 65521.
    """
    grids = np.indices((n_frames,) + tuple(shape), dtype=np.int64)
    weights = (17, 3, 5, 11)[: grids.shape[0]]
    value = sum(w * g for w, g in zip(weights, grids))
    modulus = 251 if np.dtype(dtype).itemsize == 1 else 65521
    return (value % modulus).astype(dtype)


def _sync(array):
    return np.asarray(array.compute(scheduler="sync"))


class ReaderTests:
    """Shared tests of a video reader; subclass it once per reader.

    Attributes
    ----------
    source_class : type
        The :class:`~daskloc.video.Source` subclass under test (or override the
        ``source_class`` fixture, e.g. to register a plugin first).
    n_frames : int
        Frames in the recording (default 7).
    frame_shape : tuple of int
        ``(y, x)`` or ``(y, x, channel)`` of the recording (default ``(12, 16)``).
    dtype : numpy dtype
        Pixel dtype of the recording (default uint8).

    Notes
    -----
    Hooks to implement or override:

    - :meth:`make_recording` (required): write the frames, return the source.
    - :meth:`make_foreign`: something the reader must not claim (default: a text
      file).
    - :meth:`expected_frames`: the known pixels (default :func:`known_frames`).
    - :meth:`expected_calibration`: the calibration :meth:`make_recording` wrote
      (default None: whatever the reader finds must only be well formed).
    """

    source_class = None
    n_frames = 7
    frame_shape = (12, 16)
    dtype = np.uint8

    # --- hooks ------------------------------------------------------------------------

    def expected_frames(self):
        """The frames of the recording, shape ``(n_frames,) + frame_shape``."""
        return known_frames(self.n_frames, self.frame_shape, self.dtype)

    def expected_calibration(self):
        """``{"pixel_size": {axis: µm}, "fps": float}`` as the recording's metadata
        records them, or None (the default) to check only that the calibration attrs
        are well formed."""
        return None

    def make_recording(self, tmp_path, frames):
        """Write ``frames`` in the reader's format; return what ``open_video`` is given.

        Parameters
        ----------
        tmp_path : pathlib.Path
            A fresh directory.
        frames : numpy.ndarray
            Shape ``(n, y, x)`` or ``(n, y, x, channel)``, :attr:`dtype`.

        Returns
        -------
        object
            A path, an array ... that ``source_class`` opens.
        """
        raise NotImplementedError

    def make_foreign(self, tmp_path):
        """Something this reader must not claim (default: a text file)."""
        path = tmp_path / "foreign.txt"
        path.write_text("not a video\n")
        return str(path)

    # --- fixtures ---------------------------------------------------------------------

    @pytest.fixture
    def source_class_(self):
        """The Source class under test."""
        assert self.source_class is not None, "set source_class or override this fixture"
        return self.source_class

    @pytest.fixture
    def frames(self):
        """The known frames of the recording."""
        return self.expected_frames()

    @pytest.fixture
    def recording(self, tmp_path, frames, source_class_):
        """What ``open_video`` is given: the recording of :meth:`expected_frames`."""
        folder = tmp_path / "recording"
        folder.mkdir()
        return self.make_recording(folder, frames)

    # --- the shared tests -------------------------------------------------------------

    def test_can_open_the_recording_not_a_foreign_file(self, recording, tmp_path,
                                                       source_class_):
        assert source_class_.can_open(recording)
        assert source_for(recording) is source_class_
        foreign = self.make_foreign(tmp_path)
        assert not source_class_.can_open(foreign)

    def test_shape_dtype_dims_attrs(self, recording, frames):
        v = open_video(recording)
        assert v.dims == ("frame", "y", "x", "channel")[: frames.ndim]
        assert v.shape == frames.shape
        assert v.dtype == frames.dtype
        assert v.name == "video"
        assert v.attrs["n_frames"] == len(frames)
        assert tuple(v.attrs["original_shape"]) == frames.shape
        assert v.attrs["original_dtype"] == str(frames.dtype)
        assert isinstance(v.attrs["source"], str)
        assert None not in v.attrs.values()

    def test_calibration_attrs_are_well_formed(self, recording):
        from daskloc.video import Calibration
        from daskloc.video._calibration import (
            FPS_SOURCE_ATTR,
            PIXEL_SIZE_ATTRS,
            PIXEL_SIZE_SOURCE_ATTR,
        )

        attrs = open_video(recording).attrs
        sizes = {a: attrs[k] for a, k in PIXEL_SIZE_ATTRS.items() if k in attrs}
        assert all(isinstance(v, float) and v > 0 for v in sizes.values())
        fps = attrs.get("fps")
        assert fps is None or (isinstance(fps, float) and fps > 0)
        # every value says where it came from, and nothing else does
        assert (PIXEL_SIZE_SOURCE_ATTR in attrs) == bool(sizes)
        assert (FPS_SOURCE_ATTR in attrs) == (fps is not None)
        cal = Calibration.from_attrs(attrs)
        assert (cal.pixel_size, cal.fps) == (sizes, fps)
        expected = self.expected_calibration()
        if expected is not None:
            assert sizes == pytest.approx(expected.get("pixel_size", {}))
            assert fps == pytest.approx(expected.get("fps"))

    def test_positions_each_open(self, recording, source_class_):
        from daskloc.video import Position

        names = source_class_.positions_of(recording)
        if names is None:
            return  # one recording: nothing more to check
        assert "position" in source_class_.open_options
        assert len(names) == len(set(names)) and all(isinstance(n, str) for n in names)
        for i, name in enumerate(names):
            v = open_video(Position(recording, i, name))
            assert v.attrs["position"] == name and v.attrs["position_index"] == i

    def test_frame_labels(self, recording, frames):
        v = open_video(recording)
        assert v["frame"].dtype == np.int64
        np.testing.assert_array_equal(v["frame"].values, np.arange(len(frames)))

    @pytest.mark.parametrize("chunks", [1, 2, 3, "auto", 1000])
    def test_every_chunk_holds_the_known_pixels(self, recording, frames, chunks):
        v = open_video(recording, chunks=chunks)
        sizes = v.data.chunks[0]
        assert sum(sizes) == len(frames)
        if chunks != "auto":
            size = min(int(chunks), len(frames))
            assert sizes[:-1] == (size,) * (len(sizes) - 1) and 0 < sizes[-1] <= size
        assert v.data.chunks[1:] == tuple((s,) for s in frames.shape[1:])
        start = 0
        for i, size in enumerate(sizes):
            block = np.asarray(v.data.blocks[i].compute(scheduler="sync"))
            np.testing.assert_array_equal(block, frames[start : start + size],
                                          err_msg=f"chunk {i}")
            start += size

    def test_frame_selection(self, recording, frames):
        n = len(frames)
        for selection, expected in [
            (slice(1, n, 2), list(range(1, n, 2))),
            ([0, n - 1], [0, n - 1]),
            (slice(-3, None), list(range(n - 3, n))),
            (range(2, n), list(range(2, n))),
        ]:
            v = open_video(recording, chunks=2, frames=selection)
            assert v["frame"].values.tolist() == expected
            np.testing.assert_array_equal(_sync(v.data), frames[expected])
        with pytest.raises(IndexError, match=f"{n} frames"):
            open_video(recording, frames=[n])

    def test_chunk_boundaries_do_not_shift_frames(self, recording, frames):
        whole = _sync(open_video(recording, chunks=len(frames)).data)
        np.testing.assert_array_equal(whole, frames)
        v = open_video(recording, chunks=3)
        # a slice across a chunk boundary reads the same pixels
        np.testing.assert_array_equal(_sync(v.data[2:5]), frames[2:5])
        np.testing.assert_array_equal(_sync(v.isel(frame=[0, 3, 6]).data), frames[[0, 3, 6]])

    def test_graph_is_lazy_and_pickles(self, recording, frames, source_class_):
        cloudpickle = pytest.importorskip("cloudpickle")
        with count_chunk_reads() as reads:
            v = open_video(recording, chunks=2)
        assert reads.count == 0  # opening reads no chunk
        if source_class_.dataarray is Source.dataarray:  # read by chunk tasks
            graph = v.data.__dask_graph__()
            assert len(pickle.dumps(graph)) < 100_000
            for task in dict(graph).values():
                for arg in getattr(task, "args", ()) or ():
                    assert not isinstance(arg, np.ndarray)
            _sync(v.data[:3])
            assert reads.count == 2  # only the chunks needed
        restored = cloudpickle.loads(cloudpickle.dumps(v.data))
        np.testing.assert_array_equal(_sync(restored), frames)
