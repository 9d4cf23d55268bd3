"""open_video itself: arguments, errors, the graph, whichever the reader."""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest

from daskloc.testing.readers import count_chunk_reads
from daskloc.video import VideoError, open_video
from tests._data import data_path
from tests.video._helpers import sync


def test_chunks_argument(movie):
    v = open_video(movie, chunks=100, channel=0)
    assert v.data.chunks[0] == (100, 100, 100, 100, 80)
    assert v.data.chunks[1:] == ((424,), (640,))
    with pytest.raises(ValueError, match="chunks"):
        open_video(movie, chunks=0)
    with pytest.raises(TypeError, match="chunks"):
        open_video(movie, chunks=2.5)


def test_attrs_are_netcdf_friendly(movie):
    for v in (open_video(movie, channel="grey"), open_video(np.zeros((2, 3, 4), np.uint8))):
        for key, value in v.attrs.items():
            assert isinstance(value, (str, int, float, tuple)), key
            if isinstance(value, tuple):
                assert all(isinstance(x, int) for x in value), key


def test_channel_errors(movie):
    with pytest.raises(ValueError, match="3 channels"):
        open_video(movie, channel=3)
    with pytest.raises(ValueError, match="channel"):
        open_video(movie, channel="blue")
    with pytest.raises(TypeError, match="channel"):
        open_video(movie, channel=1.0)
    rgba2 = np.zeros((2, 4, 4, 2), np.uint8)
    with pytest.raises(ValueError, match="RGB or RGBA"):
        open_video(rgba2, channel="grey")


def test_frames_out_of_range_names_the_valid_range(movie):
    message = r"frames 400:600 outside the video \(480 frames: 0\.\.479\)"
    with pytest.raises(IndexError, match=message):
        open_video(movie, frames=slice(400, 600))
    with pytest.raises(IndexError, match="480 frames: 0..479"):
        open_video(movie, frames=[10, 480])
    with pytest.raises(IndexError, match="480 frames"):
        open_video(movie, frames=slice(500, None))
    with pytest.raises(IndexError, match="480 frames"):
        open_video(movie, frames=[-481])


def test_frames_malformed(movie):
    with pytest.raises(ValueError, match="strictly increasing"):
        open_video(movie, frames=[5, 3])
    with pytest.raises(ValueError, match="strictly increasing"):
        open_video(movie, frames=[3, 3])
    with pytest.raises(ValueError, match="no frames"):
        open_video(movie, frames=slice(10, 10))
    with pytest.raises(ValueError, match="empty"):
        open_video(movie, frames=[])
    with pytest.raises(ValueError, match="step"):
        open_video(movie, frames=slice(10, 0, -1))
    with pytest.raises(TypeError, match=r"\[5\]"):
        open_video(movie, frames=5)
    with pytest.raises(TypeError, match="integer"):
        open_video(movie, frames=[1.5, 2.5])


def test_graph_pickles_small_without_pixel_data(movie):
    v = open_video(movie)
    graph = v.data.__dask_graph__()
    blob = pickle.dumps(graph)
    assert len(blob) < 100_000
    for task in dict(graph).values():
        for arg in getattr(task, "args", ()) or ():
            assert not isinstance(arg, np.ndarray)
    cloudpickle = pytest.importorskip("cloudpickle")
    restored = cloudpickle.loads(cloudpickle.dumps(v.data[250:260, :8, :8]))
    np.testing.assert_array_equal(sync(restored), sync(v.data[250:260, :8, :8]))

    pngs = open_video(str(data_path("bulk_water_png") / "*.png"))
    assert len(pickle.dumps(pngs.data.__dask_graph__())) < 100_000


@pytest.mark.slow
def test_chunks_read_in_other_processes(movie, movie_reference):
    _, red = movie_reference
    v = open_video(movie, chunks=8, channel=0, frames=slice(236, 252))
    got = v.data.compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(got, red[236:252])


@pytest.mark.slow
def test_chunk_read_counter(movie):
    with count_chunk_reads() as reads:
        v = open_video(movie, chunks=64, channel=0)
        tiff = open_video(str(data_path("stuck.tif")), chunks=2)
    before = reads.count
    sync(v.isel(frame=slice(70, 100)).data)
    assert reads.count - before == 1
    before = reads.count
    sync(v.sel(frame=slice(100, 200)).data)  # frames 64..127, 128..191, 192..255
    assert reads.count - before == 3
    before = reads.count
    sync(v.data)
    assert reads.count - before == 8
    before = reads.count
    sync(tiff.data)
    assert reads.count - before == 3


def test_missing_file_names_the_path(tmp_path):
    for name in ("nope.mov", "nope.tif", "nope.png", "nope.zarr"):
        with pytest.raises(FileNotFoundError, match=name):
            open_video(str(tmp_path / name))


def test_corrupt_or_unknown_files(tmp_path):
    bad = tmp_path / "garbage.mov"
    bad.write_bytes(b"this is not a movie" * 100)
    with pytest.raises(VideoError, match="garbage.mov.*supported") as info:
        open_video(str(bad))
    assert isinstance(info.value, ValueError)

    bad_tif = tmp_path / "garbage.tif"
    bad_tif.write_bytes(b"not a tiff" * 10)
    with pytest.raises(VideoError, match="garbage.tif"):
        open_video(str(bad_tif))

    unknown = tmp_path / "data.xyz"
    unknown.write_bytes(b"\0" * 10)
    with pytest.raises(VideoError, match=r"data\.xyz.*\.mov"):
        open_video(str(unknown))

    with pytest.raises(TypeError, match="dict"):
        open_video({"a": 1})


def test_dask_config_default_scheduler_works(movie, movie_reference):
    _, red = movie_reference
    with dask.config.set(scheduler="threads"):
        got = open_video(movie, chunks=16, channel=0, frames=slice(200, 280)).data.compute()
    np.testing.assert_array_equal(got, red[200:280])
