"""In-memory sources: numpy and dask arrays and xarray DataArrays.

No reader: the DataArray is built with plain dask operations on the array itself
(slicing, rechunking, the channel choice), so an array opened by an earlier
:func:`~daskloc.video.open_video` keeps reading through its original chunk tasks.
"""

from __future__ import annotations

import numpy as np

from daskloc.video._base import (
    AUTO_FRAMES,
    VIDEO_DIMS,
    Source,
    VideoError,
    array_layout,
    auto_frames,
)
from daskloc.video._chunks import apply_channel_block, build_attrs, dims, output_frame

__all__ = ["ArraySource"]


def _is_dask_array(x):
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover - dask is a dependency
        return False
    return isinstance(x, da.Array)


def _is_dataarray(x):
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return False
    return isinstance(x, xr.DataArray)


class ArraySource(Source):
    """numpy / dask arrays and xarray DataArrays, shape ``(frame, [z,] y, x[, channel])``.

    Parameters
    ----------
    source : numpy.ndarray, dask.array.Array or xarray.DataArray
        Without ``dims``, a 2-D array is one frame, a 3-D array ``(frame, y, x)`` and a
        4-D array ``(frame, y, x, channel)`` with at most 4 channels (anything else needs
        ``dims``). A DataArray needs dims ``frame``, ``y``, ``x`` and optionally ``z``
        and ``channel``, in any order; its integer ``frame`` coordinate, if any, gives
        the frame numbers and its attrs (an earlier ``open_video``'s provenance) are
        kept.
    dims : sequence of str, optional
        For a numpy or dask array: the names of its axes, in its order, from
        ``"frame", "z", "y", "x", "channel"`` (``y`` and ``x`` required; without
        ``frame`` the array is one frame), e.g. ``("frame", "z", "y", "x")``. The array
        is transposed (lazily) to that order. For a DataArray, its own dims (giving
        other ones is an error).

    Raises
    ------
    VideoError
        An unsupported shape or dims, unknown dask chunk sizes, no frames, a
        non-integer or non-increasing ``frame`` coordinate.
    ValueError, TypeError
        Invalid ``dims``.
    """

    name = "arrays"
    summary = "numpy and dask arrays and xarray DataArrays"
    priority = 10
    takes_dims = True

    @classmethod
    def can_open(cls, source):
        """True for a numpy array, a dask array or an xarray DataArray."""
        return isinstance(source, np.ndarray) or _is_dask_array(source) or _is_dataarray(source)

    def __init__(self, source, dims=None):
        if _is_dataarray(source):
            if dims is not None and tuple(dims) != tuple(source.dims):
                raise ValueError(
                    f"dims={tuple(dims)!r} given for an xarray DataArray, which names its "
                    f"own dims {source.dims}: rename them instead, e.g. "
                    "array.rename({'t': 'frame'})"
                )
            self._from_dataarray(source)
        elif _is_dask_array(source):
            self._setup(source, "dask array", dims=dims)
        else:
            self._setup(source, "numpy array", dims=dims)

    def _setup(self, array, description, labels=None, attrs=None, channel_named=False,
               dims=None):
        original_shape = tuple(int(s) for s in array.shape)
        layout = array_layout(array.shape, description, dims, channel_named)
        n = layout.n
        if layout.order != tuple(range(len(layout.order))):
            array = array.transpose(layout.order)
        if not layout.has_frame:
            array = array[None]
        self.array = array
        self.description = self.path = description
        self.frame_shape = layout.frame_shape
        self.frame_dims = layout.frame_dims
        self.dtype = np.dtype(array.dtype)
        if n == 0:
            raise VideoError(f"{description}: has no frames")
        self.labels = np.arange(n, dtype=np.int64) if labels is None else labels
        base = {
            "source": description,
            "original_shape": original_shape,
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
        }
        if attrs:
            base.update(attrs)  # an earlier open_video's provenance wins
        self.attrs = base

    def _from_dataarray(self, arr):
        dim_set = set(arr.dims)
        required = {"frame", "y", "x"}
        if not required <= dim_set or not dim_set <= set(VIDEO_DIMS):
            raise VideoError(
                f"an xarray DataArray source must have dims ('frame', 'y', 'x') and "
                f"optionally 'z' and 'channel', got {arr.dims}"
            )
        order = [d for d in VIDEO_DIMS if d in dim_set]
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
        attrs.setdefault("original_shape", tuple(int(s) for s in arr.shape))
        self._setup(arr.data, desc, labels=labels, attrs=attrs, dims=tuple(order))

    def dataarray(self, positions, chunks, channel):
        """Slice, rechunk and apply the channel with dask operations (no chunk reads)."""
        import dask.array as da
        import xarray as xr

        out_shape, out_dtype = output_frame(
            self.frame_shape, self.dtype, channel, self.description, self.frame_dims
        )
        if chunks == "auto":
            chunks = auto_frames(AUTO_FRAMES, out_shape, out_dtype)
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
        data = apply_channel_block(data, channel, self.frame_dims[-1] == "channel")
        if data.dtype != out_dtype:  # pragma: no cover - defensive
            data = data.astype(out_dtype)
        return xr.DataArray(
            data,
            dims=dims(out_shape, self.frame_dims),
            coords={"frame": ("frame", self.labels[positions].astype(np.int64))},
            name="video",
            attrs=build_attrs(self.attrs, channel),
        )
