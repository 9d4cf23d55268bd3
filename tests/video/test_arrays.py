"""In-memory arrays (numpy, dask, xarray): the ArraySource reader."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from daskloc.testing.readers import ReaderTests
from daskloc.video import VideoError, open_video
from daskloc.video.arrays import ArraySource
from tests.video._helpers import N_MOVIE, sync


def test_numpy_input():
    stack = np.random.default_rng(0).integers(0, 255, (10, 4, 5, 3), dtype=np.uint8)
    v = open_video(stack, chunks=4, frames=slice(2, 9))
    assert v.dims == ("frame", "y", "x", "channel")
    assert v["frame"].values.tolist() == list(range(2, 9))
    assert v.data.chunks == ((4, 3), (4,), (5,), (3,))
    assert v.attrs == {
        "source": "numpy array",
        "original_shape": (10, 4, 5, 3),
        "original_dtype": "uint8",
        "n_frames": 10,
    }
    np.testing.assert_array_equal(sync(v.data), stack[2:9])
    sel = open_video(stack, chunks=2, channel=1, frames=[0, 3, 9])
    np.testing.assert_array_equal(sync(sel.data), stack[[0, 3, 9], ..., 1])
    single = open_video(stack[0, ..., 0])
    assert single.shape == (1, 4, 5) and single["frame"].values.tolist() == [0]
    with pytest.raises(VideoError, match="shape"):
        open_video(np.zeros((2, 2, 2, 2, 2)))


@pytest.mark.parametrize("kind", ["numpy", "dask"])
def test_a_4d_array_with_a_long_last_axis_is_never_read_as_channels(kind):
    # A (T, Z, Y, X) stack was read as (frame, y, x, channel) with 320 "channels"
    # and gave no features without a word.
    stack = np.zeros((3, 5, 64, 320), dtype=np.uint16)
    source = stack if kind == "numpy" else da.from_array(stack, chunks=(1, 5, 64, 320))
    with pytest.raises(VideoError, match=r"last axis has 320 entries.*"
                       r"dims=\('frame', 'z', 'y', 'x'\)"):
        open_video(source)
    assert open_video(stack[:, 0]).dims == ("frame", "y", "x")  # one plane, as it says
    rgba = open_video(np.zeros((3, 8, 8, 4), dtype=np.uint8), channel=3)
    assert rgba.dims == ("frame", "y", "x")
    named = xr.DataArray(np.zeros((3, 8, 8, 6)), dims=("frame", "y", "x", "channel"))
    assert open_video(named, channel=5).sizes == {"frame": 3, "y": 8, "x": 8}


class TestNumpyReader(ReaderTests):
    """The shared reader suite on a numpy array."""

    source_class = ArraySource

    def make_recording(self, tmp_path, frames):
        return frames.copy()


class TestDaskReader(ReaderTests):
    """The shared reader suite on a dask array with chunks unlike the requested ones."""

    source_class = ArraySource

    def make_recording(self, tmp_path, frames):
        return da.from_array(frames, chunks=(5, 7, 16))


class TestDataArrayReader(ReaderTests):
    """The shared reader suite on an xarray DataArray with dims in another order."""

    source_class = ArraySource
    frame_shape = (12, 16, 3)

    def make_recording(self, tmp_path, frames):
        arr = xr.DataArray(frames, dims=("frame", "y", "x", "channel"))
        return arr.transpose("y", "channel", "frame", "x")


def test_dask_input():
    stack = np.arange(12 * 3 * 4, dtype=np.float32).reshape(12, 3, 4)
    darr = da.from_array(stack, chunks=(5, 3, 2))
    v = open_video(darr, chunks=3, frames=[1, 2, 3, 7, 11])
    assert v.attrs["source"] == "dask array"
    assert v.data.chunks == ((3, 2), (3,), (4,))
    np.testing.assert_array_equal(sync(v.data), stack[[1, 2, 3, 7, 11]])


def test_dataarray_input_reselects_with_absolute_frames(movie):
    base = open_video(movie, channel=0, frames=slice(100, 200))
    again = open_video(base, chunks=16, frames=slice(150, 160))
    assert again["frame"].values.tolist() == list(range(150, 160))
    assert again.data.chunks[0] == (10,)
    assert again.attrs["source"] == movie
    assert again.attrs["n_frames"] == N_MOVIE
    assert again.attrs["channel"] == 0
    np.testing.assert_array_equal(sync(again.data), sync(base.sel(frame=slice(150, 159)).data))
    with pytest.raises(IndexError, match="100 frames: 100..199"):
        open_video(base, frames=slice(0, 10))

    plain = xr.DataArray(np.zeros((3, 4, 5), np.uint8), dims=("frame", "y", "x"))
    v = open_video(plain, chunks=2)
    assert v["frame"].values.tolist() == [0, 1, 2] and v.attrs["source"] == "xarray DataArray"
    transposed = xr.DataArray(np.zeros((4, 5, 3), np.uint8), dims=("y", "x", "frame"))
    assert open_video(transposed).dims == ("frame", "y", "x")
    with pytest.raises(VideoError, match="dims"):
        open_video(xr.DataArray(np.zeros((3, 4)), dims=("t", "y")))


def test_channel_on_grey_source():
    stack = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    for ch in (0, "grey"):
        v = open_video(stack, channel=ch)
        assert v.dims == ("frame", "y", "x") and v.dtype == np.uint16
        np.testing.assert_array_equal(sync(v.data), stack)
    with pytest.raises(ValueError, match="greyscale"):
        open_video(stack, channel=1)
