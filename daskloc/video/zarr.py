"""Zarr arrays: a ``zarr.Array``, or a path to one (ending in ``.zarr``, or a directory
holding Zarr metadata), shape ``(frame, y, x[, channel])``, or any layout named with
``dims=`` (e.g. ``(frame, z, y, x)``)."""

from __future__ import annotations

import itertools
import numbers
import os
import sys
import time
from pathlib import Path

import numpy as np

from daskloc._utils import is_glob
from daskloc.video._base import Source, VideoError, array_layout, fingerprint_tree, is_path
from daskloc.video._calibration import calibration_attrs
from daskloc.video._chunks import runs
from daskloc.video._follow import Growing, Growth

__all__ = ["GrowingZarr", "ZARR_SETTLE", "ZARR_UNWRITTEN_AFTER", "ZarrSource"]

#: Seconds a followed array's earlier row of chunks (several frames each) must have
#: been followed by later frames before its frames count: see :class:`GrowingZarr`.
ZARR_SETTLE = 1.0

#: Seconds after which a followed array's frame counts though no stored object holds it
#: (a chunk equal to the fill value is not written): see :class:`GrowingZarr`.
ZARR_UNWRITTEN_AFTER = 5.0


def _is_zarr_array(x):
    # A zarr.Array exists only once zarr is imported: checking sys.modules spares every
    # other source (a movie, a path) the import of zarr (0.2-0.4 s).
    zarr = sys.modules.get("zarr")
    return zarr is not None and isinstance(x, zarr.Array)


def _is_zarr_dir(path):
    return path.is_dir() and (
        path.suffix.lower() == ".zarr"
        or (path / "zarr.json").exists()
        or (path / ".zarray").exists()
        or (path / ".zgroup").exists()
    )


def _describe_zarr(arr):
    return f"zarr array {arr.store}" + (f" {arr.path}" if arr.path else "")


class GrowingZarr(Growing):
    """A Zarr array whose frame axis grows while it is recorded.

    Each scan opens the array again and reads its shape. A writer that appends a frame
    resizes the array (writes its metadata) and then writes the frame's chunks, so a
    frame inside the shape may not be written yet, and reading it would give the fill
    value. A frame counts once every stored object holding it (its chunks, or its shards)
    exists (zarr writes each object whole) and holds it:

    - in the last row of objects along the frame axis, which each append rewrites while
      it has room, the objects were written after the metadata that shows the frame;
    - in an earlier row, its objects hold one frame each, or the shape has shown later
      frames for :data:`ZARR_SETTLE` seconds (a writer that resizes by several frames
      at once writes them within that time).

    Objects that never appear (a chunk equal to the fill value is not written by default)
    count once the shape has shown later frames, or no new frame, for
    :data:`ZARR_UNWRITTEN_AFTER` seconds. Arrays with one frame per chunk, as acquisition
    writers make them, need no waiting but for a fill-valued frame. This assumes the
    writer appends frames in order, as ``zarr.Array.append`` and acquisition software do.
    Zarr has no end marker: a followed Zarr array ends by ``idle`` seconds without a new
    frame, a number of frames, or an interruption.

    Parameters
    ----------
    source : str or path-like
        The array's directory (a local one: its objects' times are read).
    dims : sequence of str, optional
        As for :class:`ZarrSource`; it must include ``"frame"``.
    """

    reader = "zarr"

    def __init__(self, source, dims=None):
        super().__init__(source)
        self.dims = dims
        self._complete = 0
        self._plane = None
        self._shape = (None, 0.0)  # (frames in the shape, monotonic time first seen)
        self._closed = {}  # chunk row -> monotonic time later frames were first seen

    def _meta_mtime(self):
        for name in ("zarr.json", ".zarray"):
            try:
                return os.stat(os.path.join(self.path, name)).st_mtime_ns
            except OSError:
                continue
        return None

    def _row_written(self, arr, axis, row, after):
        """Whether every object of chunk ``row`` (frame axis) exists, written after
        ``after`` (ns; None: any time)."""
        grid = arr.shards or arr.chunks
        ranges = [range(-(-n // g)) for n, g in zip(arr.shape, grid)]
        ranges[axis] = [row]
        for coords in itertools.product(*ranges):
            key = arr.metadata.encode_chunk_key(coords)
            try:
                mtime = os.stat(os.path.join(self.path, *key.split("/"))).st_mtime_ns
            except OSError:
                return False
            if after is not None and mtime <= after:
                return False
        return True

    def scan(self):
        """Count the frames whose chunks are written (see the class's description)."""
        import zarr

        meta_mtime = self._meta_mtime()
        try:
            arr = zarr.open_array(self.path, mode="r")
        except Exception as exc:  # noqa: BLE001 - its metadata being written: next scan
            if self._complete:
                return Growth(self._complete)
            raise VideoError(f"{self.path}: cannot open as a Zarr array "
                             f"({type(exc).__name__}: {exc})") from exc
        layout = array_layout(arr.shape, self.path, self.dims)
        if not layout.has_frame:
            raise VideoError(f"{self.path}: the Zarr array has no frame axis to follow "
                             "(give dims= naming it)")
        plane = (tuple(layout.frame_shape), str(arr.dtype))
        if self._plane is not None and plane != self._plane:
            raise VideoError(f"{self.path}: the array's frames are now {plane}, they were "
                             f"{self._plane}: not the recording followed")
        self._plane = plane
        n = int(layout.n)
        if n < self._complete:
            raise VideoError(f"{self.path}: the array shrank to {n} frames, {self._complete} "
                             "were located; a recording only grows")
        if meta_mtime is None or self._meta_mtime() != meta_mtime:
            return Growth(self._complete)  # resized while read: which shape is unsure
        now = time.monotonic()
        if n != self._shape[0]:
            self._shape = (n, now)
        axis = layout.order[0]
        step = (arr.shards or arr.chunks)[axis]
        while self._complete < n:
            row = self._complete // step
            end = (row + 1) * step
            if end < n:  # later frames are in the shape: the writer is done with this row
                since = self._closed.setdefault(row, now)
                done = self._row_written(arr, axis, row, None) and (
                    step == 1 or now - since >= ZARR_SETTLE)
                last = end
            else:  # the last row: rewritten by each append while it has room
                since = self._shape[1]
                done, last = self._row_written(arr, axis, row, meta_mtime), n
            if not (done or now - since >= ZARR_UNWRITTEN_AFTER):
                break
            self._complete = last
            self._closed.pop(row, None)
        return Growth(self._complete)

    def source(self, n_frames):
        src = ZarrSource(self.path, dims=self.dims)
        src.attrs["n_frames"] = int(n_frames)
        return src


class ZarrSource(Source):
    """A Zarr array of frames (Zarr format 2 or 3).

    Parameters
    ----------
    source : zarr.Array, str or path-like
        The array, or the path of its directory.
    dims : sequence of str, optional
        The names of the array's axes, in its order (see
        :func:`daskloc.video.open_video`), e.g. ``("frame", "z", "y", "x")``. Without
        it the array is ``(y, x)``, ``(frame, y, x)`` or ``(frame, y, x, channel)``
        with at most 4 channels. A chunk task reads only its frames (a slice along the
        frame axis, wherever it is) and puts the axes in ``open_video``'s order.

    Raises
    ------
    VideoError
        The path cannot be opened as Zarr, is a group (the message lists its arrays),
        or the array has an unsupported shape (without ``dims``) or no frames.
    ValueError, TypeError
        Invalid ``dims``.

    Notes
    -----
    ``attrs["fps"]`` comes from the array's ``fps`` attribute when it is a number.
    """

    name = "zarr"
    suffixes = (".zarr",)
    summary = "Zarr arrays (a path ending in .zarr or a zarr.Array)"
    priority = 20
    per_frame = True
    takes_dims = True
    growing = GrowingZarr

    @classmethod
    def can_open(cls, source):
        """True for a ``zarr.Array`` or a directory that is a Zarr store."""
        if _is_zarr_array(source):
            return True
        if not is_path(source) or is_glob(source):
            return False
        return _is_zarr_dir(Path(os.fspath(source)))

    def __init__(self, source, dims=None):
        import zarr

        if is_path(source):
            target = os.fspath(source)
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
            arr = source
            self.target = source
            self.path = _describe_zarr(arr)
        layout = array_layout(arr.shape, self.path, dims)
        n = layout.n
        if n == 0:
            raise VideoError(f"{self.path}: has no frames")
        self.ndim = arr.ndim
        # the frame axis's position in the array (None: one frame) and the
        # permutation of the other axes into open_video's order
        self.frame_axis = layout.order[0] if layout.has_frame else None
        # frames per storage chunk: auto chunks begin and end on them
        chunks = getattr(arr, "chunks", None)
        self.storage_frames = (int(chunks[self.frame_axis])
                               if self.frame_axis is not None and chunks else None)
        self.order = layout.order
        self.frame_shape = tuple(layout.frame_shape)
        self.frame_dims = layout.frame_dims
        self.dtype = np.dtype(arr.dtype)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": self.path,
            "original_shape": tuple(int(s) for s in arr.shape),
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
            "storage_frames": self.storage_frames,
        }
        fps = arr.attrs.get("fps") if hasattr(arr, "attrs") else None
        if isinstance(fps, numbers.Real) and not isinstance(fps, bool):
            self.attrs.update(calibration_attrs(fps=fps, source={"fps": "Zarr attribute 'fps'"}))

    def token_parts(self):
        """The path's mtime and size, or the identity of an in-memory ``zarr.Array``."""
        if isinstance(self.target, str):
            return super().token_parts()
        return (self.path, id(self.target))

    def fingerprint(self):
        """Size and newest mtime of every file of a Zarr directory (its chunks and
        metadata); None for an in-memory ``zarr.Array`` or another store."""
        if isinstance(self.target, str) and os.path.isdir(self.target):
            return fingerprint_tree(self.target)
        return super().fingerprint() if isinstance(self.target, str) else None

    def spec(self):
        """``(path or zarr.Array, ndim, frame_axis, order)``."""
        return (self.target, self.ndim, self.frame_axis, self.order)

    def chunk_args(self, positions):
        """The chunk's frame positions, a tuple of int."""
        return tuple(int(p) for p in positions)

    @classmethod
    def frame_path(cls, spec, arg, i):
        """The store's path, or a description of a ``zarr.Array``."""
        if _is_zarr_array(spec[0]):
            return _describe_zarr(spec[0])
        return super().frame_path(spec, arg, i)

    @staticmethod
    def read(spec, arg):
        """Read runs of consecutive frames of the array."""
        import zarr

        target, ndim, frame_axis, order = spec
        arr = zarr.open_array(target, mode="r") if isinstance(target, str) else target
        identity = tuple(range(ndim))
        for a, b, offset in runs(arg):
            if frame_axis is None:  # one frame: the whole array
                block = np.asarray(arr[...])
                block = block.transpose(order)[None]
            else:
                index = [slice(None)] * ndim
                index[frame_axis] = slice(a, b)
                block = arr[tuple(index)]
                if order != identity:
                    block = np.ascontiguousarray(np.asarray(block).transpose(order))
            yield slice(offset, offset + (b - a)), block
