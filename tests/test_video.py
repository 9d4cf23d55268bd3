"""Tests for daskloc.video.open_video."""

from __future__ import annotations

import hashlib
import pickle

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr

import daskloc.video as video
from daskloc.video import VideoError, open_video

try:
    from tests._data import data_path
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from _data import data_path

av = pytest.importorskip("av")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

MOVIE = "bulk-water.mov"
N_MOVIE = 480


def sync(arr):
    return arr.compute(scheduler="sync")


def frame_hash(frame):
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def movie():
    return str(data_path(MOVIE))


@pytest.fixture(scope="module")
def movie_reference(movie):
    """Sequential PyAV decode of the whole movie: per-frame hashes and channel 0."""
    container = av.open(movie)
    hashes, red = [], []
    for frame in container.decode(container.streams.video[0]):
        rgb = frame.to_ndarray(format="rgb24")
        hashes.append(frame_hash(rgb))
        red.append(rgb[..., 0].copy())
    container.close()
    assert len(hashes) == N_MOVIE
    return hashes, np.stack(red)


@pytest.fixture(scope="module")
def pngs():
    folder = data_path("bulk_water_png")
    paths = sorted(folder.glob("bulk_water_*.png"))
    assert len(paths) == 100
    return np.stack([imageio.imread(p) for p in paths])


def _encode(path, n=60, keyint=12, bframes=2, codec="libx264", extra=""):
    """Write a small synthetic movie whose frames all differ; return nothing."""
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"PyAV has no {codec} encoder")
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    container = av.open(str(path), "w")
    if codec == "libx264":
        params = (
            f"keyint={keyint}:min-keyint={keyint}:bframes={bframes}:b-adapt=0:"
            f"b-pyramid=normal:scenecut=0{extra}"
        )
        stream = container.add_stream(codec, rate=25, options={"x264-params": params, "qp": "10"})
        stream.pix_fmt = "yuv420p"
    else:
        stream = container.add_stream(codec, rate=25)
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = keyint
        if codec == "mpeg4":
            stream.codec_context.max_b_frames = bframes
    stream.width, stream.height = 64, 48
    for i in range(n):
        image = np.roll(base, 3 * i, axis=1)
        image[:8, :8] = (4 * i) % 256
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def _sequential(path):
    container = av.open(str(path))
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    container.close()
    return np.stack(frames)


# ---------------------------------------------------------------------------------------
# The movie: structure
# ---------------------------------------------------------------------------------------


def _keyframes(path):
    """Positions of the keyframes of a movie, by demuxing it with PyAV directly."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [i for i, p in enumerate(p for p in container.demux(stream) if p.size)
                if p.is_keyframe]


@pytest.mark.data
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
    assert _keyframes(movie) == [0, 238, 478]
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


@pytest.mark.data
def test_auto_chunks_start_at_keyframes_and_respect_the_bytes_cap(tmp_path, movie):
    # 300 frames with a keyframe every 12: chunks of whole groups of pictures, as many
    # groups as fit in 64 frames.
    path = tmp_path / "gop12.mkv"
    _encode(path, n=300, keyint=12)
    keys = _keyframes(path)
    assert keys == list(range(0, 300, 12))
    v = open_video(str(path))
    starts = np.cumsum((0,) + v.data.chunks[0][:-1])
    assert set(starts) <= set(keys)
    assert v.data.chunks[0] == (60,) * 5  # 5 whole groups of 12 each
    np.testing.assert_array_equal(sync(v.data), _sequential(path))
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
    _encode(single, n=600, keyint=600, bframes=0)
    assert _keyframes(single) == [0]
    assert open_video(str(single)).data.chunks[0] == (200, 200, 200)
    # Every frame a keyframe (MJPEG): chunks of 64, as for other sources.
    intra = tmp_path / "intra.avi"
    _encode(intra, n=150, codec="mjpeg", keyint=1)
    assert _keyframes(intra) == list(range(150))
    assert open_video(str(intra)).data.chunks[0] == (64, 64, 22)
    # Sources other than movies: 64 frames.
    assert open_video(np.zeros((130, 4, 4), np.uint8)).data.chunks[0] == (64, 64, 2)
    with pytest.raises(TypeError, match="auto"):
        open_video(movie, chunks="big")


@pytest.mark.data
def test_chunks_argument(movie):
    v = open_video(movie, chunks=100, channel=0)
    assert v.data.chunks[0] == (100, 100, 100, 100, 80)
    assert v.data.chunks[1:] == ((424,), (640,))
    with pytest.raises(ValueError, match="chunks"):
        open_video(movie, chunks=0)
    with pytest.raises(TypeError, match="chunks"):
        open_video(movie, chunks=2.5)


# ---------------------------------------------------------------------------------------
# The movie: pixels
# ---------------------------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("chunks", [7, 32])
def test_movie_channel0_matches_png_sequence(movie, pngs, chunks):
    # chunks of 7 start in the middle of the first GOP (keyframes at 0, 238, 478)
    v = open_video(movie, chunks=chunks, channel=0, frames=slice(0, 100))
    got = sync(v.data)
    np.testing.assert_array_equal(got, pngs[..., 0])


@pytest.mark.data
@pytest.mark.parametrize("chunks", [64, 45, "auto"])
def test_movie_chunks_match_sequential_decode(movie, movie_reference, chunks):
    hashes, _ = movie_reference
    v = open_video(movie, chunks=chunks)
    got = [frame_hash(f) for f in sync(v.data)]
    assert got == hashes


@pytest.mark.data
def test_movie_frame_selection_slice(movie, movie_reference):
    hashes, _ = movie_reference
    v = open_video(movie, chunks=4, frames=slice(230, 300, 3))
    expected = list(range(230, 300, 3))
    assert v["frame"].values.tolist() == expected
    assert v.data.chunks[0] == (4,) * 6
    assert [frame_hash(f) for f in sync(v.data)] == [hashes[i] for i in expected]


@pytest.mark.data
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


@pytest.mark.data
def test_movie_chunk_seeks_to_keyframe_once(movie, monkeypatch):
    """A chunk after the second keyframe seeks to it, once, instead of decoding from 0."""
    calls = []
    original = video._MovieReader._decode

    def spy(self, seek_info, keys, positions, how):
        calls.append((seek_info, how, len(keys)))
        return original(self, seek_info, keys, positions, how)

    monkeypatch.setattr(video._MovieReader, "_decode", spy)
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
def test_synthetic_movies_chunks_match_sequential(tmp_path, name, kwargs):
    path = tmp_path / name
    _encode(path, **kwargs)
    reference = _sequential(path)
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


@pytest.mark.data
def test_attrs_are_netcdf_friendly(movie):
    for v in (open_video(movie, channel="grey"), open_video(np.zeros((2, 3, 4), np.uint8))):
        for key, value in v.attrs.items():
            assert isinstance(value, (str, int, float, tuple)), key
            if isinstance(value, tuple):
                assert all(isinstance(x, int) for x in value), key


# ---------------------------------------------------------------------------------------
# Channels
# ---------------------------------------------------------------------------------------


@pytest.mark.data
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


@pytest.mark.data
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


def test_channel_on_grey_source():
    stack = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    for ch in (0, "grey"):
        v = open_video(stack, channel=ch)
        assert v.dims == ("frame", "y", "x") and v.dtype == np.uint16
        np.testing.assert_array_equal(sync(v.data), stack)
    with pytest.raises(ValueError, match="greyscale"):
        open_video(stack, channel=1)


@pytest.mark.data
def test_grey_on_rgba_png_sequence_ignores_alpha(pngs):
    folder = data_path("bulk_water_png")
    v = open_video(str(folder / "*.png"), channel="grey", frames=slice(0, 3))
    rgb = pngs[:3, ..., :3].astype(np.float64)
    np.testing.assert_allclose(sync(v.data), rgb @ np.array([0.2125, 0.7154, 0.0721]), atol=1e-9)


# ---------------------------------------------------------------------------------------
# Frame selection errors
# ---------------------------------------------------------------------------------------


@pytest.mark.data
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


@pytest.mark.data
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


# ---------------------------------------------------------------------------------------
# TIFF
# ---------------------------------------------------------------------------------------


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
    with pytest.raises(VideoError, match="more than one axis"):
        open_video(str(tmp_path / "5d.tif"))


# ---------------------------------------------------------------------------------------
# Image sequences
# ---------------------------------------------------------------------------------------


@pytest.mark.data
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


# ---------------------------------------------------------------------------------------
# In-memory arrays, Zarr, xarray
# ---------------------------------------------------------------------------------------


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


def test_dask_input():
    stack = np.arange(12 * 3 * 4, dtype=np.float32).reshape(12, 3, 4)
    darr = da.from_array(stack, chunks=(5, 3, 2))
    v = open_video(darr, chunks=3, frames=[1, 2, 3, 7, 11])
    assert v.attrs["source"] == "dask array"
    assert v.data.chunks == ((3, 2), (3,), (4,))
    np.testing.assert_array_equal(sync(v.data), stack[[1, 2, 3, 7, 11]])


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


@pytest.mark.data
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


# ---------------------------------------------------------------------------------------
# The graph: picklable, small, no pixel data; chunk reads
# ---------------------------------------------------------------------------------------


@pytest.mark.data
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


@pytest.mark.data
def test_chunks_read_in_other_processes(movie, movie_reference):
    _, red = movie_reference
    v = open_video(movie, chunks=8, channel=0, frames=slice(236, 252))
    got = v.data.compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(got, red[236:252])


@pytest.mark.data
def test_chunk_read_counter(movie):
    v = open_video(movie, chunks=64, channel=0)
    before = video.CHUNK_READS
    sync(v.isel(frame=slice(70, 100)).data)
    assert video.CHUNK_READS - before == 1
    before = video.CHUNK_READS
    sync(v.sel(frame=slice(100, 200)).data)  # frames 64..127, 128..191, 192..255
    assert video.CHUNK_READS - before == 3
    before = video.CHUNK_READS
    sync(v.data)
    assert video.CHUNK_READS - before == 8
    before = video.CHUNK_READS
    sync(open_video(str(data_path("stuck.tif")), chunks=2).data)
    assert video.CHUNK_READS - before == 3


# ---------------------------------------------------------------------------------------
# Errors on bad sources
# ---------------------------------------------------------------------------------------


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


@pytest.mark.data
def test_truncated_movies(tmp_path, movie):
    # a QuickTime file whose index (moov) is at the end: unreadable, a clear error
    data = open(movie, "rb").read()
    cut = tmp_path / "cut.mov"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError, match="cut.mov"):
        open_video(str(cut))

    # a Matroska file cut short: the frames that are there are read
    full = tmp_path / "full.mkv"
    _encode(full, n=60)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 2 // 3])
    reference = _sequential(cut)
    v = open_video(str(cut), chunks=7)
    assert 20 < v.sizes["frame"] < 60
    assert v.sizes["frame"] == len(reference)
    np.testing.assert_array_equal(sync(v.data), reference)

    # a file that shrinks after open_video: the chunk task names the file and the frame
    v = open_video(str(full), chunks=20)
    full.write_bytes(data[: len(data) // 2])
    np.testing.assert_array_equal(sync(v.data[:20]), _sequential(full)[:20])
    with pytest.raises(VideoError, match="full.mkv"):
        sync(v.data[40:])


@pytest.mark.data
def test_dask_config_default_scheduler_works(movie, movie_reference):
    _, red = movie_reference
    with dask.config.set(scheduler="threads"):
        got = open_video(movie, chunks=16, channel=0, frames=slice(200, 280)).data.compute()
    np.testing.assert_array_equal(got, red[200:280])
