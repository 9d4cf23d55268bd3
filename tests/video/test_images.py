"""Image sequences: the ImageSequenceSource reader."""

from __future__ import annotations

import numpy as np
import pytest

from daskloc.testing.readers import ReaderTests
from daskloc.video import VideoError, open_video
from daskloc.video.images import ImageSequenceSource
from tests._data import data_path
from tests.video._helpers import sync

imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")


class TestPngSequenceReader(ReaderTests):
    """The shared reader suite on a folder of PNG files."""

    source_class = ImageSequenceSource

    def make_recording(self, tmp_path, frames):
        for i, frame in enumerate(frames):
            imageio.imwrite(tmp_path / f"frame_{i}.png", frame)
        return str(tmp_path)


class TestTiffFilesGlobReader(ReaderTests):
    """The shared reader suite on a glob of single-page 16-bit TIFF files."""

    source_class = ImageSequenceSource
    dtype = np.uint16

    def make_recording(self, tmp_path, frames):
        for i, frame in enumerate(frames):
            tifffile.imwrite(tmp_path / f"t{i}.tif", frame)
        return str(tmp_path / "t*.tif")


@pytest.mark.slow
def test_png_sequence_from_glob(pngs):
    folder = data_path("bulk_water_png")
    pattern = str(folder / "bulk_water_*.png")
    v = open_video(pattern, chunks=16)
    assert v.dims == ("frame", "y", "x", "channel")
    assert v.shape == (100, 424, 640, 4) and v.dtype == np.uint8
    assert v.data.chunks[0] == (16,) * 6 + (4,)
    assert v.attrs["source"] == pattern
    assert v.attrs["original_shape"] == (100, 424, 640, 4)
    assert v.attrs["n_frames"] == 100
    np.testing.assert_array_equal(sync(v.data), pngs)


@pytest.mark.data
def test_image_sequence_directory_list_and_identical_pairs():
    folder = data_path("image_sequence")
    files = sorted(folder.glob("*.png"))
    assert len(files) == 5
    expected = np.stack([imageio.imread(p) for p in files])

    from_dir = open_video(str(folder), chunks=2)
    assert from_dir.dims == ("frame", "y", "x")
    assert from_dir.shape == (5, 424, 640) and from_dir.dtype == np.uint8
    assert from_dir.attrs["source"] == str(folder)
    got = sync(from_dir.data)
    np.testing.assert_array_equal(got, expected)
    # files 1-2-3 and 4-5 are byte-identical pairs: frames map to files in order
    assert (got[0] == got[1]).all() and (got[1] == got[2]).all() and (got[3] == got[4]).all()
    assert not (got[2] == got[3]).all()

    shuffled = [files[i] for i in (3, 0, 4, 2, 1)]
    from_list = open_video(shuffled, frames=slice(1, 5))
    assert from_list["frame"].values.tolist() == [1, 2, 3, 4]
    np.testing.assert_array_equal(sync(from_list.data), expected[1:])


def test_image_sequence_natural_sort(tmp_path):
    for i in (1, 2, 10, 11, 20):
        imageio.imwrite(tmp_path / f"img{i}.png", np.full((4, 5), i, np.uint8))
    v = open_video(str(tmp_path / "img*.png"))
    assert sync(v.data)[:, 0, 0].tolist() == [1, 2, 10, 11, 20]
    v = open_video(tmp_path)  # a Path to a directory
    assert sync(v.data)[:, 0, 0].tolist() == [1, 2, 10, 11, 20]


def test_image_sequence_tiff_files(tmp_path):
    frames = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    for i, f in enumerate(frames):
        tifffile.imwrite(tmp_path / f"t_{i}.tif", f)
    v = open_video(str(tmp_path / "t_*.tif"))
    np.testing.assert_array_equal(sync(v.data), frames)


def test_image_sequence_file_changed_after_open(tmp_path):
    for i in range(4):
        imageio.imwrite(tmp_path / f"f{i}.png", np.full((4, 5), i, np.uint8))
    v = open_video(str(tmp_path / "f*.png"), chunks=2)
    imageio.imwrite(tmp_path / "f3.png", np.zeros((6, 5), np.uint8))
    np.testing.assert_array_equal(sync(v.data[:2])[:, 0, 0], [0, 1])
    with pytest.raises(VideoError, match="f3.png"):
        sync(v.data[2:])


def test_image_sequence_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing_here"):
        open_video(str(tmp_path / "nothing_here_*.png"))
    imageio.imwrite(tmp_path / "a1.png", np.zeros((4, 5), np.uint8))
    imageio.imwrite(tmp_path / "a2.png", np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match="a2.png"):
        open_video(str(tmp_path / "a*.png"))
    imageio.imwrite(tmp_path / "b1.png", np.zeros((4, 5), np.uint8))
    imageio.imwrite(tmp_path / "b2.png", np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="same shape"):
        open_video(str(tmp_path / "b*.png"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        open_video(str(empty))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        open_video([tmp_path / "a1.png", tmp_path / "missing.png"])
    with pytest.raises(ValueError, match="empty list"):
        open_video([])


def test_grey_on_rgba_png_sequence_ignores_alpha(pngs):
    folder = data_path("bulk_water_png")
    v = open_video(str(folder / "*.png"), channel="grey", frames=slice(0, 3))
    rgb = pngs[:3, ..., :3].astype(np.float64)
    np.testing.assert_allclose(sync(v.data), rgb @ np.array([0.2125, 0.7154, 0.0721]), atol=1e-9)
