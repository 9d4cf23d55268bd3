"""In-memory sources: numpy and dask arrays and xarray DataArrays.

No reader: the DataArray is built with plain dask operations on the array itself
(slicing, rechunking, the channel choice), so an array opened by an earlier
:func:`~daskloc.video.open_video` keeps reading through its original chunk tasks.
"""

from __future__ import annotations

import numpy as np

from daskloc.video._base import (
    AUTO_FRAMES,
    Source,
    VideoError,
    auto_frames,
    frame_layout,
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
    """numpy / dask arrays and xarray DataArrays, shape ``(frame, y, x[, channel])``.

    Parameters
    ----------
    source : numpy.ndarray, dask.array.Array or xarray.DataArray
        A 2-D array is one frame. A DataArray needs dims ``frame``, ``y``, ``x`` (and
        optionally ``channel``), in any order; its integer ``frame`` coordinate, if
        any, gives the frame numbers and its attrs (an earlier ``open_video``'s
        provenance) are kept.

    Raises
    ------
    VideoError
        An unsupported shape or dims, unknown dask chunk sizes, no frames, a
        non-integer or non-increasing ``frame`` coordinate.
    """

    name = "arrays"
    summary = "numpy and dask arrays and xarray DataArrays"
    priority = 10

    @classmethod
    def can_open(cls, source):
        """True for a numpy array, a dask array or an xarray DataArray."""
        return isinstance(source, np.ndarray) or _is_dask_array(source) or _is_dataarray(source)

    def __init__(self, source):
        if _is_dataarray(source):
            self._from_dataarray(source)
        elif _is_dask_array(source):
            self._setup(source, "dask array")
        else:
            self._setup(source, "numpy array")

    def _setup(self, array, description, labels=None, attrs=None, channel_named=False):
        n, frame_shape = frame_layout(array.shape, description, channel_named)
        if array.ndim == 2:
            array = array[None]
        self.array = array
        self.description = self.path = description
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

    def _from_dataarray(self, arr):
        dim_set = set(arr.dims)
        required = {"frame", "y", "x"}
        if not required <= dim_set or not dim_set <= required | {"channel"}:
            raise VideoError(
                f"an xarray DataArray source must have dims ('frame', 'y', 'x') and "
                f"optionally 'channel', got {arr.dims}"
            )
        order = [d for d in ("frame", "y", "x", "channel") if d in dim_set]
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
        self._setup(arr.data, desc, labels=labels, attrs=attrs,
                    channel_named="channel" in dim_set)

    def dataarray(self, positions, chunks, channel):
        """Slice, rechunk and apply the channel with dask operations (no chunk reads)."""
        import dask.array as da
        import xarray as xr

        out_shape, out_dtype = output_frame(
            self.frame_shape, self.dtype, channel, self.description
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
        data = apply_channel_block(data, channel, len(self.frame_shape) == 3)
        if data.dtype != out_dtype:  # pragma: no cover - defensive
            data = data.astype(out_dtype)
        return xr.DataArray(
            data,
            dims=dims(out_shape),
            coords={"frame": ("frame", self.labels[positions].astype(np.int64))},
            name="video",
            attrs=build_attrs(self.attrs, channel),
        )
