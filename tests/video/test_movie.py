"""Movies read through PyAV: the MovieSource reader."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import daskloc.video.movie as movie_module
from daskloc.testing.readers import ReaderTests
from daskloc.video import VideoError, open_video
from daskloc.video.movie import MovieSource
from tests.video._helpers import (
    N_MOVIE,
    encode,
    frame_hash,
    keyframes,
    sequential,
    sync,
)

av = pytest.importorskip("av")


class TestLosslessMovieReader(ReaderTests):
    """The shared reader suite on a lossless (FFV1) greyscale Matroska movie."""

    source_class = MovieSource

    def make_recording(self, tmp_path, frames):
        try:
            av.codec.Codec("ffv1", "w")
        except Exception:
            pytest.skip("PyAV has no ffv1 encoder")
        path = tmp_path / "recording.mkv"
        container = av.open(str(path), "w")
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "gray"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        return str(path)


def test_movie_dims_coords_attrs_chunks(movie):
    v = open_video(movie)
    assert isinstance(v, xr.DataArray)
    assert v.dims == ("frame", "y", "x", "channel")
    assert v.shape == (N_MOVIE, 424, 640, 3)
    assert v.dtype == np.uint8
    assert isinstance(v.data, da.Array)
    # chunks="auto": whole groups of pictures (keyframes 0, 238, 478; the 2 frames after
    # the last keyframe join the chunk before them) of at most 128 MiB: RGB frames are
    # 814 KB, so each group is split in two.
    assert keyframes(movie) == [0, 238, 478]
    assert v.data.chunks == ((119, 119, 120, 122), (424,), (640,), (3,))
    assert open_video(movie, channel=0).data.chunks[0] == (238, 242)
    assert v["frame"].dtype == np.int64
    np.testing.assert_array_equal(v["frame"].values, np.arange(N_MOVIE))
    assert v.attrs["source"] == movie
    assert v.attrs["fps"] == pytest.approx(24000 / 1001)
    assert tuple(v.attrs["original_shape"]) == (N_MOVIE, 424, 640, 3)
    assert v.attrs["original_dtype"] == "uint8"
    assert v.attrs["n_frames"] == N_MOVIE
    assert None not in v.attrs.values()
    assert set(v.coords) == {"frame"}


@pytest.mark.slow
def test_auto_chunks_start_at_keyframes_and_respect_the_bytes_cap(tmp_path, movie):
    # 300 frames with a keyframe every 12: chunks of whole groups of pictures, as many
    # groups as fit in 64 frames.
    path = tmp_path / "gop12.mkv"
    encode(path, n=300, keyint=12)
    keys = keyframes(path)
    assert keys == list(range(0, 300, 12))
    v = open_video(str(path))
    starts = np.cumsum((0,) + v.data.chunks[0][:-1])
    assert set(starts) <= set(keys)
    assert v.data.chunks[0] == (60,) * 5  # 5 whole groups of 12 each
    np.testing.assert_array_equal(sync(v.data), sequential(path))
    # A frame selection is grouped the same way, by the keyframe before each frame.
    v = open_video(str(path), frames=slice(5, 40))
    assert v.data.chunks[0] == (35,)
    # float64 grey frames of bulk-water are 2.2 MB: at most 128 MiB of them per chunk,
    # so the 238-frame group of pictures is split evenly.
    grey = open_video(movie, channel="grey")
    frame_bytes = 424 * 640 * 8
    assert max(grey.data.chunks[0]) * frame_bytes <= 128 * 2**20 * 1.125
    assert grey.data.chunks[0][:4] == (60, 60, 59, 59)  # 238 frames in 4 pieces
    # One group of 600 frames (a single keyframe): split into pieces of <= 256 frames.
    single = tmp_path / "gop600.mkv"
    encode(single, n=600, keyint=600, bframes=0)
    assert keyframes(single) == [0]
    assert open_video(str(single)).data.chunks[0] == (200, 200, 200)
    # Every frame a keyframe (MJPEG): chunks of 64, as for other sources.
    intra = tmp_path / "intra.avi"
    encode(intra, n=150, codec="mjpeg", keyint=1)
    assert keyframes(intra) == list(range(150))
    assert open_video(str(intra)).data.chunks[0] == (64, 64, 22)
    # Sources other than movies: 64 frames.
    assert open_video(np.zeros((130, 4, 4), np.uint8)).data.chunks[0] == (64, 64, 2)
    with pytest.raises(TypeError, match="auto"):
        open_video(movie, chunks="big")


@pytest.mark.parametrize("chunks", [7, 32])
def test_movie_channel0_matches_png_sequence(movie, pngs, chunks):
    # chunks of 7 start in the middle of the first GOP (keyframes at 0, 238, 478)
    v = open_video(movie, chunks=chunks, channel=0, frames=slice(0, 100))
    got = sync(v.data)
    np.testing.assert_array_equal(got, pngs[..., 0])


@pytest.mark.slow
@pytest.mark.parametrize("chunks", [64, 45, "auto"])
def test_movie_chunks_match_sequential_decode(movie, movie_reference, chunks):
    hashes, _ = movie_reference
    v = open_video(movie, chunks=chunks)
    got = [frame_hash(f) for f in sync(v.data)]
    assert got == hashes


def test_movie_frame_selection_slice(movie, movie_reference):
    hashes, _ = movie_reference
    v = open_video(movie, chunks=4, frames=slice(230, 300, 3))
    expected = list(range(230, 300, 3))
    assert v["frame"].values.tolist() == expected
    assert v.data.chunks[0] == (4,) * 6
    assert [frame_hash(f) for f in sync(v.data)] == [hashes[i] for i in expected]


def test_movie_frame_selection_list_and_negative(movie, movie_reference):
    hashes, _ = movie_reference
    wanted = [0, 5, 237, 238, 239, 400, 477, 478, 479]
    v = open_video(movie, chunks=3, frames=wanted)
    assert v["frame"].values.tolist() == wanted
    assert [frame_hash(f) for f in sync(v.data)] == [hashes[i] for i in wanted]

    tail = open_video(movie, frames=slice(-10, None))
    assert tail["frame"].values.tolist() == list(range(470, 480))
    assert [frame_hash(f) for f in sync(tail.data)] == hashes[470:]

    r = open_video(movie, channel=0, frames=range(100, 110, 2))
    assert r["frame"].values.tolist() == [100, 102, 104, 106, 108]
    assert r.attrs["n_frames"] == N_MOVIE


def test_movie_chunk_seeks_to_keyframe_once(movie, monkeypatch):
    """A chunk after the second keyframe seeks to it, once, instead of decoding from 0."""
    calls = []
    original = movie_module.MovieReader._decode

    def spy(self, seek_info, keys, positions, how):
        calls.append((seek_info, how, len(keys)))
        return original(self, seek_info, keys, positions, how)

    monkeypatch.setattr(movie_module.MovieReader, "_decode", spy)
    v = open_video(movie, chunks=64, channel=0)
    calls.clear()
    sync(v.data[320:384])  # exactly chunk 5: frames 320..383
    assert len(calls) == 1
    seek_info, how, n = calls[0]
    assert how == "pts" and seek_info[0] == 238 and n == 64

    # scattered frames in one chunk: a keyframe lies between them -> a second seek
    scattered = open_video(movie, chunks=10, channel=0, frames=[3, 300])
    calls.clear()
    sync(scattered.data)
    assert [(c[0] and c[0][0], c[2]) for c in calls] == [(None, 1), (238, 1)]


def test_movie_chunk_converts_frames_with_one_reformatter(movie, movie_reference,
                                                          monkeypatch):
    """The frames of a chunk go through one swscale context, on one thread: PyAV's
    ``frame.to_ndarray(format=...)`` makes a new one for every frame, and its default
    ``threads=0`` starts a thread per core for each (the cost of reading a movie chunk
    was 40 % higher). The pixels are PyAV's own (``movie_reference``: sequential
    ``to_ndarray``)."""
    from av.video import reformatter

    made, threads = [], []
    real = reformatter.VideoReformatter  # a final type: wrapped, not subclassed

    class Counting:
        def __init__(self):
            made.append(self)
            self.inner = real()

        def reformat(self, frame, *args, **kwargs):
            threads.append(kwargs.get("threads"))
            return self.inner.reformat(frame, *args, **kwargs)

    _, red = movie_reference
    v = open_video(movie, chunks=40, channel=0)
    monkeypatch.setattr(reformatter, "VideoReformatter", Counting)
    got = sync(v.data[240:280])  # exactly chunk 6
    np.testing.assert_array_equal(got, red[240:280])
    assert len(made) == 1 and threads == [1] * 40, (len(made), threads)


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("b.mp4", {}),
        ("b.mov", {}),
        ("b.mkv", {}),
        ("open.mkv", {"extra": ":open-gop=1"}),
        ("b.avi", {}),  # H.264 + B-frames in AVI: packet timestamps are not presentation order
        ("mpeg4.avi", {"codec": "mpeg4"}),  # a pts seek overshoots: must be detected
        ("mjpeg.avi", {"codec": "mjpeg"}),
    ],
)
def test_synthetic_movies_chunks_matchsequential(tmp_path, name, kwargs):
    path = tmp_path / name
    encode(path, **kwargs)
    reference = sequential(path)
    assert len(reference) == 60
    assert len({frame_hash(f) for f in reference}) == 60  # every frame distinct
    for chunks in (5, 12, 60, "auto"):
        v = open_video(str(path), chunks=chunks)
        assert v.sizes["frame"] == 60
        np.testing.assert_array_equal(sync(v.data), reference, err_msg=f"chunks={chunks}")
    wanted = [1, 2, 13, 26, 27, 50, 59]
    v = open_video(str(path), chunks=3, frames=wanted)
    np.testing.assert_array_equal(sync(v.data), reference[wanted])


@pytest.mark.parametrize("pix_fmt, dtype", [("gray", np.uint8), ("gray16le", np.uint16)])
def test_lossless_grey_movie_roundtrip(tmp_path, pix_fmt, dtype):
    """A greyscale movie stays 2-D per frame, keeps its bit depth and decodes exactly."""
    try:
        av.codec.Codec("ffv1", "w")
    except Exception:
        pytest.skip("PyAV has no ffv1 encoder")
    high = np.iinfo(dtype).max
    frames = np.random.default_rng(0).integers(0, high, (7, 8, 16)).astype(dtype)
    path = tmp_path / f"grey_{pix_fmt}.mkv"
    container = av.open(str(path), "w")
    stream = container.add_stream("ffv1", rate=10)
    stream.width, stream.height, stream.pix_fmt = 16, 8, pix_fmt
    for f in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(f, format=pix_fmt)):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    v = open_video(str(path), chunks=3)
    assert v.dims == ("frame", "y", "x") and v.dtype == dtype
    assert v.attrs["fps"] == 10.0 and v.attrs["original_shape"] == (7, 8, 16)
    np.testing.assert_array_equal(sync(v.data), frames)
    g = open_video(str(path), channel="grey", frames=[2, 6])
    assert g.dtype == dtype
    np.testing.assert_array_equal(sync(g.data), frames[[2, 6]])


@pytest.mark.slow
def test_movie_channel_int_and_grey(movie, movie_reference):
    _, red = movie_reference
    v = open_video(movie, channel=0, frames=slice(250, 260))
    assert v.dims == ("frame", "y", "x")
    assert v.dtype == np.uint8
    assert v.attrs["channel"] == 0
    np.testing.assert_array_equal(sync(v.data), red[250:260])

    rgb = sync(open_video(movie, frames=slice(250, 260)).data).astype(np.float64)
    expected = 0.2125 * rgb[..., 0] + 0.7154 * rgb[..., 1] + 0.0721 * rgb[..., 2]
    for spelling in ("grey", "gray", "GREY"):
        g = open_video(movie, channel=spelling, frames=slice(250, 260))
        assert g.dims == ("frame", "y", "x")
        assert g.dtype == np.float64
        assert g.attrs["channel"] == "grey"
        np.testing.assert_allclose(sync(g.data), expected, rtol=0, atol=1e-9)
    # The grey of trackpy users' usual pipeline, pims.as_grey, frame by frame.
    import pims

    grey = sync(open_video(movie, channel="grey", frames=slice(250, 260)).data)
    for i in range(len(rgb)):
        np.testing.assert_allclose(grey[i], pims.as_grey(rgb[i].astype(np.uint8)),
                                   rtol=1e-12, atol=1e-9)

    neg = open_video(movie, channel=-1, frames=[0])
    blue = sync(open_video(movie, frames=[0]).data)[0, ..., 2]
    np.testing.assert_array_equal(sync(neg.data)[0], blue)


def test_truncated_movies(tmp_path, movie):
    # a QuickTime file whose index (moov) is at the end: unreadable, a clear error
    data = open(movie, "rb").read()
    cut = tmp_path / "cut.mov"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mov"):
        open_video(str(cut))

    # a Matroska file cut short: the frames that are there are read
    full = tmp_path / "full.mkv"
    encode(full, n=60)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    reference = sequential(cut)
    v = open_video(str(cut), chunks=7)
    assert 20 < v.sizes["frame"] < 60
    assert v.sizes["frame"] == len(reference)
    np.testing.assert_array_equal(sync(v.data), reference)

    # a file that shrinks after open_video: the chunk task names the file and the frame
    v = open_video(str(full), chunks=20)
    full.write_bytes(data[: len(data) // 2])
    np.testing.assert_array_equal(sync(v.data[:20]), sequential(full)[:20])
    with pytest.raises(VideoError, match="full.mkv"):
        sync(v.data[40:])
