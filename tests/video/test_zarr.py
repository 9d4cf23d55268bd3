"""Zarr arrays: the ZarrSource reader."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from daskloc.testing.readers import ReaderTests
from daskloc.video import VideoError, open_video
from daskloc.video.zarr import ZarrSource
from tests.video._helpers import sync

zarr = pytest.importorskip("zarr")


class TestZarrReader(ReaderTests):
    """The shared reader suite on a Zarr array stored in a ``.zarr`` directory."""

    source_class = ZarrSource
    dtype = np.uint16

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.zarr"
        z = zarr.create_array(str(path), shape=frames.shape, chunks=(2,) + frames.shape[1:],
                              dtype=frames.dtype)
        z[:] = frames
        return str(path)


class TestZarrArrayReader(TestZarrReader):
    """The same, given the ``zarr.Array`` itself."""

    def make_recording(self, tmp_path, frames):
        return zarr.open_array(super().make_recording(tmp_path, frames), mode="r")


def test_zarr_path_and_array(tmp_path):
    stack = np.random.default_rng(0).integers(0, 65535, (9, 6, 7), dtype=np.uint16)
    path = tmp_path / "frames.zarr"
    z = zarr.create_array(str(path), shape=stack.shape, chunks=(2, 6, 7), dtype=stack.dtype)
    z[:] = stack
    z.attrs["fps"] = 12.5
    for source in (str(path), path, z):
        v = open_video(source, chunks=4, frames=[0, 1, 2, 5, 8])
        assert v.dims == ("frame", "y", "x")
        assert v.data.chunks[0] == (4, 1)
        assert v.attrs["fps"] == 12.5
        assert v.attrs["original_shape"] == (9, 6, 7)
        np.testing.assert_array_equal(sync(v.data), stack[[0, 1, 2, 5, 8]])
    assert len(pickle.dumps(open_video(str(path)).data.__dask_graph__())) < 20_000

    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("frames", shape=(2, 3, 4), dtype="uint8")
    with pytest.raises(VideoError, match="group.*frames"):
        open_video(str(tmp_path / "group.zarr"))


def test_a_2d_zarr_array_is_one_frame(tmp_path):
    # It used to read its first row as the frame and fail with "frame has shape (1, 7)".
    image = np.arange(42, dtype=np.uint8).reshape(6, 7)
    z = zarr.open_array(str(tmp_path / "one.zarr"), mode="w", shape=image.shape,
                        dtype=image.dtype)
    z[...] = image
    v = open_video(z)
    assert v.dims == ("frame", "y", "x") and v.shape == (1, 6, 7)
    np.testing.assert_array_equal(v.data.compute(scheduler="sync")[0], image)
