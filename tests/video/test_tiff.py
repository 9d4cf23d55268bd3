"""TIFF files read with tifffile: the TiffSource reader."""

from __future__ import annotations

import numpy as np
import pytest

from daskloc.testing.readers import ReaderTests
from daskloc.video import open_video
from daskloc.video.tiff import TiffSource
from tests._data import data_path
from tests.video._helpers import sync

tifffile = pytest.importorskip("tifffile")


class TestTiffReader(ReaderTests):
    """The shared reader suite on a 16-bit multi-page TIFF."""

    source_class = TiffSource
    dtype = np.uint16

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.tif"
        tifffile.imwrite(path, frames)
        return str(path)


class TestRgbTiffReader(ReaderTests):
    """The shared reader suite on an RGB TIFF (a trailing channel dim)."""

    source_class = TiffSource
    frame_shape = (12, 16, 3)

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.tiff"
        tifffile.imwrite(path, frames, photometric="rgb")
        return str(path)


@pytest.mark.data
def test_multipage_tiff():
    path = data_path("stuck.tif")
    expected = tifffile.imread(path)
    v = open_video(str(path), chunks=2)
    assert v.dims == ("frame", "y", "x")
    assert v.shape == (5, 512, 512) and v.dtype == np.uint16
    assert v.data.chunks[0] == (2, 2, 1)
    assert v.attrs["original_shape"] == (5, 512, 512)
    assert v.attrs["original_dtype"] == "uint16"
    assert v.attrs["n_frames"] == 5
    assert "fps" not in v.attrs
    got = sync(v.data)
    np.testing.assert_array_equal(got, expected)
    assert got.min() == 477 and got.max() == 576
    assert int((got.std(axis=0) == 0).sum()) == 5  # the stuck pixels survive

    sel = open_video(str(path), frames=[1, 4])
    assert sel["frame"].values.tolist() == [1, 4]
    np.testing.assert_array_equal(sync(sel.data), expected[[1, 4]])


def test_tiff_rgb_imagej_fps_and_single_page_stack(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 255, (4, 6, 5, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    v = open_video(str(tmp_path / "rgb.tif"), chunks=3)
    assert v.dims == ("frame", "y", "x", "channel")
    np.testing.assert_array_equal(sync(v.data), rgb)
    blue = open_video(str(tmp_path / "rgb.tif"), channel=2)
    np.testing.assert_array_equal(sync(blue.data), rgb[..., 2])

    stack = np.arange(5 * 8 * 6, dtype=np.uint16).reshape(5, 8, 6)
    metadata = {"axes": "TYX", "finterval": 0.5}
    tifffile.imwrite(tmp_path / "ij.tif", stack, imagej=True, metadata=metadata)
    assert open_video(str(tmp_path / "ij.tif")).attrs["fps"] == pytest.approx(2.0)
    # all frames in one page (tifffile's truncate=True): read through tifffile's zarr view
    tifffile.imwrite(tmp_path / "one_page.tiff", stack, imagej=True, truncate=True)
    v = open_video(str(tmp_path / "one_page.tiff"), chunks=2, frames=[0, 2, 3, 4])
    np.testing.assert_array_equal(sync(v.data), stack[[0, 2, 3, 4]])

    tifffile.imwrite(
        tmp_path / "5d.tif",
        np.zeros((2, 3, 4, 5), np.uint8),
        photometric="minisblack",
        metadata={"axes": "TZYX"},
    )
    # T and Z axes: z-stacks over time (tests/video/test_zstacks.py has the rest)
    assert open_video(str(tmp_path / "5d.tif")).sizes == {"frame": 2, "z": 3, "y": 4, "x": 5}
