"""pims readers given to open_video: the PimsSource reader."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import daskloc
from daskloc.testing.readers import ReaderTests, known_frames
from daskloc.video import VideoDecodeError, VideoError, open_video, source_for
from daskloc.video.pims import PimsSource
from tests._data import data_path
from tests.conftest import make_spots
from tests.video._helpers import MOVIE, sync

pims = pytest.importorskip("pims")
av = pytest.importorskip("av")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")


def pims_frames(reader, indices=None):
    """What pims itself returns for ``indices`` (default: every frame)."""
    indices = range(len(reader)) if indices is None else indices
    return np.stack([np.asarray(reader[int(i)]) for i in indices])


def write_lossless_movie(path, frames):
    """A movie of exactly ``frames`` (RGB): PNG-coded pictures in a QuickTime file."""
    container = av.open(str(path), "w")
    stream = container.add_stream("png", rate=25)
    stream.pix_fmt = "rgb24"
    stream.height, stream.width = frames.shape[1:3]
    for frame in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


# --- the conformance suite -------------------------------------------------------------


class TestPimsTiffStack(ReaderTests):
    """The shared reader suite on ``pims.TiffStack`` of a 16-bit multi-page TIFF."""

    source_class = PimsSource
    dtype = np.uint16

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.tif"
        tifffile.imwrite(path, frames)
        return pims.TiffStack(str(path))


class TestPimsOpenTiff(ReaderTests):
    """The shared reader suite on ``pims.open`` of an 8-bit TIFF."""

    source_class = PimsSource

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.tif"
        tifffile.imwrite(path, frames)
        return pims.open(str(path))


class TestPimsImageSequence(ReaderTests):
    """The shared reader suite on ``pims.ImageSequence`` of RGB PNGs (a channel dim)."""

    source_class = PimsSource
    frame_shape = (12, 16, 3)

    def make_recording(self, tmp_path, frames):
        for i, frame in enumerate(frames):
            imageio.imwrite(tmp_path / f"frame_{i}.png", frame)
        return pims.ImageSequence(str(tmp_path / "*.png"))


class TestPimsPyAVIndexed(ReaderTests):
    """The shared reader suite on ``pims.PyAVReaderIndexed`` of a lossless movie."""

    source_class = PimsSource
    frame_shape = (12, 16, 3)

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.mov"
        write_lossless_movie(path, frames)
        return pims.PyAVReaderIndexed(str(path))


class TestPimsPyAVTimed(TestPimsPyAVIndexed):
    """The shared reader suite on ``pims.PyAVReaderTimed`` of a lossless movie."""

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.mov"
        write_lossless_movie(path, frames)
        reader = pims.PyAVReaderTimed(str(path))
        assert len(reader) == len(frames)
        return reader


# --- frames equal pims's own ---------------------------------------------------------


def test_tiff_stack_frames_attrs_and_channel(tmp_path):
    frames = known_frames(9, (10, 14, 3))
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, frames, photometric="rgb")
    reader = pims.open(str(path))
    v = open_video(reader, chunks=4)
    assert v.dims == ("frame", "y", "x", "channel")
    assert v.attrs["source"] == str(path) and v.attrs["reader"] == type(reader).__name__
    assert v.attrs["n_frames"] == 9 and "fps" not in v.attrs
    np.testing.assert_array_equal(sync(v.data), pims_frames(reader))
    red = open_video(reader, channel=0, frames=[1, 5, 8])
    assert red.dims == ("frame", "y", "x")
    np.testing.assert_array_equal(sync(red.data), frames[[1, 5, 8], ..., 0])
    grey = open_video(reader, channel="grey")
    np.testing.assert_allclose(sync(grey.data), pims_frames(pims.as_grey(reader)))


def test_sliced_reader_keeps_the_readers_frame_numbers(tmp_path):
    frames = known_frames(20)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, frames)
    reader = pims.TiffStack(str(path))
    for sliced, numbers in [(reader[5:15], list(range(5, 15))),
                            (reader[2::3], list(range(2, 20, 3))),
                            (reader[4:18][1::2], list(range(5, 18, 2))),
                            (reader[[1, 7, 19]], [1, 7, 19])]:
        v = open_video(sliced, chunks=3)
        assert v["frame"].values.tolist() == numbers
        assert v.attrs["n_frames"] == 20
        np.testing.assert_array_equal(sync(v.data), pims_frames(sliced, range(len(sliced))))
        np.testing.assert_array_equal(sync(v.data), frames[numbers])
    # frames= selects by those frame numbers
    v = open_video(reader[5:15], frames=slice(8, 11))
    np.testing.assert_array_equal(sync(v.data), frames[8:11])
    with pytest.raises(IndexError):
        open_video(reader[5:15], frames=[2])
    for wrong_order in (reader[::-1], reader[[3, 3, 4]], reader[[6, 2]]):
        with pytest.raises(VideoError, match="out of order"):
            open_video(wrong_order)


@pytest.mark.data
def test_png_sequence_equals_pims():
    folder = data_path("bulk_water_png")
    reader = pims.ImageSequence(str(folder / "bulk_water_*.png"))
    assert len(reader) == 100
    v = open_video(reader, chunks=16)
    assert v.shape == (100, 424, 640, 4) and v.dtype == np.uint8
    assert v.attrs["original_shape"] == (100, 424, 640, 4)
    assert v.attrs["source"] == str(folder / "bulk_water_*.png")
    for block in (0, 3, 6):
        start = 16 * block
        got = sync(v.data.blocks[block])
        assert np.array_equal(got, pims_frames(reader, range(start, start + len(got))))
    sliced = open_video(reader[40:70:3], chunks=4)
    assert sliced["frame"].values.tolist() == list(range(40, 70, 3))
    assert np.array_equal(sync(sliced.data), pims_frames(reader, range(40, 70, 3)))
    # and the same pixels as daskloc's own image-sequence reader
    own = open_video(str(folder / "bulk_water_*.png"), frames=slice(40, 70, 3))
    assert np.array_equal(sync(sliced.data), sync(own.data))


@pytest.mark.data
def test_movie_through_pyav_indexed_equals_pims():
    movie = str(data_path(MOVIE))
    reader = pims.PyAVReaderIndexed(movie)
    v = open_video(reader, chunks=64)
    assert v.shape == (480, 424, 640, 3) and v.attrs["reader"] == "PyAVReaderIndexed"
    fresh = pims.PyAVReaderIndexed(movie, toc=reader.toc)
    for block, start in ((0, 0), (7, 448)):  # the first and the last chunk
        got = sync(v.data.blocks[block])
        assert np.array_equal(got, pims_frames(fresh, range(start, start + len(got))))
        # PyAVReaderIndexed counts decoded frames: exactly daskloc's own movie frames
        assert np.array_equal(got, sync(open_video(movie).data[start : start + len(got)]))


@pytest.mark.data
def test_movie_through_pyav_timed_equals_pims():
    movie = str(data_path(MOVIE))
    reader = pims.open(movie)  # pims prefers PyAVReaderTimed for .mov
    assert type(reader).__name__ == "PyAVReaderTimed"
    v = open_video(reader, chunks=32)
    assert v.attrs["fps"] == pytest.approx(24000 / 1001)
    assert v.attrs["fps_source"] == "PyAVReaderTimed.frame_rate"
    assert v.sizes["frame"] == len(reader)
    # PyAVReaderTimed estimates its length from the duration and may fill frames it
    # cannot find near the end: compare chunks away from it, read in order by a fresh
    # reader as a chunk task reads them
    for block in (0, 5):
        start = 32 * block
        got = sync(v.data.blocks[block])
        fresh = pims.PyAVReaderTimed(movie)
        assert np.array_equal(got, pims_frames(fresh, range(start, start + len(got))))


# --- batch through a pims reader equals batch on the path -----------------------------


def _features(df):
    df = df.compute() if hasattr(df, "compute") else df
    return df.sort_values(["frame", "y", "x"]).reset_index(drop=True)


def test_batch_through_pims_equals_batch_on_the_path(tmp_path):
    import pandas as pd

    path = tmp_path / "spots.tif"
    tifffile.imwrite(path, make_spots(n_frames=12, shape=(64, 64)))
    by_path = daskloc.batch(str(path), 9, store=str(tmp_path / "path.parquet"), minmass=100)
    by_pims = daskloc.batch(pims.open(str(path)), 9, store=str(tmp_path / "pims.parquet"),
                            minmass=100)
    assert len(by_path) > 0
    pd.testing.assert_frame_equal(_features(by_pims), _features(by_path))


@pytest.mark.data
def test_batch_through_pims_on_the_real_pngs(tmp_path):
    import pandas as pd

    folder = data_path("bulk_water_png")
    files = [str(p) for p in sorted(folder.glob("bulk_water_*.png"))[:6]]
    options = {"open_options": {"channel": 0}, "invert": True, "minmass": 20}
    by_path = daskloc.batch(files, 11, store=str(tmp_path / "path.parquet"), **options)
    by_pims = daskloc.batch(pims.ImageSequence(files), 11,
                            store=str(tmp_path / "pims.parquet"), **options)
    assert len(by_path) > 1000
    pd.testing.assert_frame_equal(_features(by_pims), _features(by_path))


# --- the graph pickles; a real cluster reads it ---------------------------------------


def test_graph_pickles_and_computes_on_a_local_cluster(tmp_path, client):
    frames = known_frames(10, (12, 16, 3))
    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, frames[..., 0])
    movie = tmp_path / "movie.mov"
    write_lossless_movie(movie, frames)
    for reader, expected in [(pims.TiffStack(str(tif)), frames[..., 0]),
                             (pims.PyAVReaderIndexed(str(movie)), frames),
                             (pims.PyAVReaderTimed(str(movie)), frames),
                             (pims.PyAVReaderTimed(str(movie))[2:9], frames[2:9])]:
        if not hasattr(reader, "_ancestor"):  # (a slice pickles as the frames it holds)
            with pytest.raises(TypeError):  # what daskloc works around
                pickle.dumps(reader)
        v = open_video(reader, chunks=3)
        graph = v.data.__dask_graph__()
        restored = pickle.loads(pickle.dumps(graph))  # plain pickle, no cloudpickle
        assert set(restored) == set(graph)
        got = client.compute(v.data).result()
        np.testing.assert_array_equal(got, expected)


# --- what cannot be reopened ----------------------------------------------------------


class InMemoryFrames(pims.FramesSequence):
    """A pims reader of an in-memory array (it has no file to reopen)."""

    def __init__(self, array):
        self._array = np.asarray(array)

    def get_frame(self, i):
        return pims.Frame(self._array[i], frame_no=i)

    def __len__(self):
        return len(self._array)

    @property
    def frame_shape(self):
        return self._array.shape[1:]

    @property
    def pixel_type(self):
        return self._array.dtype


class WrongShape(pims.TiffStack_tifffile):
    """A reader of a file whose frame_shape disagrees with its frames."""

    @classmethod
    def class_exts(cls):
        return set()  # pims.open must not choose it for .tif files

    @property
    def frame_shape(self):
        return (3, 3)


def test_readers_that_cannot_be_reopened_are_refused_with_the_fix(tmp_path):
    frames = known_frames(4)
    memory = InMemoryFrames(frames)
    assert source_for(memory) is PimsSource
    with pytest.raises(VideoError, match="InMemoryFrames.*records no file path.*"
                                         "pass the file path to open_video.*np.asarray"):
        open_video(memory)
    with pytest.raises(VideoError, match="InMemoryFrames"):
        open_video(memory[1:3])

    png = tmp_path / "one.png"
    imageio.imwrite(png, frames[0])
    with pytest.raises(VideoError, match="pims.ImageReader.*no file path"):
        open_video(pims.ImageReader(str(png)))  # pims keeps the pixels, not the name

    movie = tmp_path / "movie.mov"
    write_lossless_movie(movie, known_frames(4, (12, 16, 3)))
    with open(movie, "rb") as f:
        with pytest.raises(VideoError, match="PyAVReaderIndexed.*no file path"):
            open_video(pims.PyAVReaderIndexed(f))

    tif = tmp_path / "s.tif"
    tifffile.imwrite(tif, frames, photometric="minisblack")
    reader = pims.TiffStack(str(tif))
    with pytest.raises(VideoError, match="pipeline over a TiffStack.*channel='grey'"):
        open_video(pims.as_grey(reader))
    unpickled = pickle.loads(pickle.dumps(reader[1:3]))  # a slice pickles as its frames
    assert source_for(unpickled) is PimsSource
    with pytest.raises(VideoError, match="pims.Frame.*pass the file path"):
        open_video(unpickled)

    class Local(pims.TiffStack_tifffile):
        @classmethod
        def class_exts(cls):
            return set()

    with pytest.raises(VideoError, match="Local cannot be imported by name"):
        open_video(Local(str(tif)))
    with pytest.raises(VideoError, match="frame_shape and pixel_type say"):
        open_video(WrongShape(str(tif)))


def test_a_file_changed_after_open_video_fails_its_chunks(tmp_path):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, known_frames(6))
    v = open_video(pims.TiffStack(str(path)), chunks=3)
    tifffile.imwrite(path, known_frames(6)[::-1].copy(), description="changed!")
    with pytest.raises(VideoDecodeError, match="changed since open_video"):
        sync(v.data)


def test_opening_a_path_never_imports_pims(tmp_path):
    path = tmp_path / "s.tif"
    tifffile.imwrite(path, known_frames(3), photometric="minisblack")
    (tmp_path / "m.mov").write_bytes(b"not really a movie")
    code = (
        "import sys, daskloc\n"
        "from daskloc.video import classify, source_for, open_video\n"
        f"open_video({str(path)!r}); source_for({str(tmp_path / 'm.mov')!r})\n"
        f"classify({str(tmp_path / 'm.mov')!r}); source_for(object())\n"
        "assert 'pims' not in sys.modules, 'pims was imported'\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
