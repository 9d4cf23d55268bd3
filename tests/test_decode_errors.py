"""Damaged files: VideoDecodeError at compute time, and skip_undecodable().

Every damaged file here is real: a copy of bulk-water.mov (or a small movie written with
PyAV) with random bytes over the start of one packet, a TIFF written by tifffile with
one page's compressed data overwritten, PNGs written by imageio and then truncated or
deleted, a Zarr array with one chunk file overwritten. Each test first checks, with the
library that wrote the file, that the file is damaged exactly where intended, so it
fails if the damage misses.

Expected frame numbers are derived from the packet tables of the movies (read with PyAV
directly), not from daskloc's reader:

- movies with usable timestamps ("pts" mode): when the decoder refuses packet ``d`` (in
  decode order), exactly the frames whose packets come at or after ``d`` in decode
  order, up to the next keyframe packet, cannot be decoded: the broken frame and the
  frames predicted from it. The frames whose packets came before are decoded exactly.
- frames numbered by counting ("count" mode): the frames a sequential PyAV decode
  outputs before the error are the ones that are kept; from there to the next keyframe
  everything is skipped (counting on after a lost packet could mislabel frames).
"""

from __future__ import annotations

import os
import pickle
import threading

import numpy as np
import pytest

import daskloc.video.movie as movie_module
from daskloc.video import VideoDecodeError, VideoError, open_video, skip_undecodable
from daskloc.video._chunks import ChunkRequest, read_chunk, to_dataarray
from tests._damage import damage_packet, packet_table
from tests.video._helpers import encode  # a small H.264 movie, frames all distinct

try:
    from tests._data import data_path
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from _data import data_path

av = pytest.importorskip("av")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

MOVIE = "bulk-water.mov"
#: Packet of bulk-water.mov (decode order) overwritten in the damaged copy: the P-frame
#: shown as frame 104; the B-frames 101..103 are decoded after it and predicted from it.
P_PACKET = 101
#: Packet of the B-frame shown as frame 99, decoded after the P-frame of frame 100.
B_PACKET = 100


def sync(arr):
    return arr.compute(scheduler="sync")


# ---------------------------------------------------------------------------------------
# Helpers: packet tables, damage, sequential decoding with PyAV
# ---------------------------------------------------------------------------------------


def presentation(table):
    """Frame number (rank of pts) of each packet of ``table``."""
    pts = np.array([p[0] for p in table])
    ranks = np.empty(len(pts), dtype=np.int64)
    ranks[np.argsort(pts, kind="stable")] = np.arange(len(pts))
    return ranks


def next_keyframe_packet(table, index):
    return next((i for i in range(index + 1, len(table)) if table[i][4]), len(table))


def decode_until_error(path, fmt="rgb24"):
    """Sequential PyAV decode: (frames output, (packet index, error) or None)."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packets = (p for p in container.demux(stream) if p.size)
        for i, packet in enumerate(packets):
            try:
                decoded = stream.decode(packet)
            except av.error.FFmpegError as exc:
                return frames, (i, exc)
            frames.extend(f.to_ndarray(format=fmt) for f in decoded)
        frames.extend(f.to_ndarray(format=fmt) for f in stream.decode(None))
    return frames, None


def pts_mode_lost(table, broken):
    """Frames that cannot be decoded when packet ``broken`` is refused (pts mode)."""
    stop = next_keyframe_packet(table, broken)
    return sorted(int(f) for f in presentation(table)[broken:stop])


def as_count_mode(path, chunks, channel=None):
    """open_video of ``path`` with frames numbered by counting (count mode) forced."""
    src = movie_module.MovieSource(str(path))
    packets = [(p[0], p[1], p[4]) for p in packet_table(path)]
    src.toc = movie_module.MovieToc(packets, "count")
    return to_dataarray(src, np.arange(src.toc.n), chunks, channel)


def check_skipped_block(block, clean, skipped, first_label=0):
    """Skipped frames are zeros; every frame not listed is bit-identical to ``clean``."""
    rows = np.asarray(skipped, dtype=np.int64) - first_label
    keep = np.setdiff1d(np.arange(len(block)), rows)
    assert len(keep) + len(rows) == len(block)
    np.testing.assert_array_equal(block[keep], clean[keep])
    assert not block[rows].any()


# ---------------------------------------------------------------------------------------
# bulk-water.mov with a damaged packet
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def movie():
    return str(data_path(MOVIE))


@pytest.fixture(scope="module")
def table(movie):
    return packet_table(movie)


@pytest.fixture(scope="module")
def clean_red(movie):
    """Channel 0 of all frames of the undamaged movie, read by open_video."""
    return sync(open_video(movie, channel=0).data)


@pytest.fixture(scope="module")
def damaged(movie, tmp_path_factory):
    """bulk-water.mov with 8 random bytes over the start of packet P_PACKET."""
    path = tmp_path_factory.mktemp("damaged") / "bulk-water-damaged.mov"
    damage_packet(movie, path, P_PACKET)
    return str(path)


@pytest.fixture(scope="module")
def damaged_b(movie, tmp_path_factory):
    """bulk-water.mov with 8 random bytes over the start of packet B_PACKET."""
    path = tmp_path_factory.mktemp("damaged_b") / "bulk-water-damaged-b.mov"
    damage_packet(movie, path, B_PACKET)
    return str(path)


@pytest.mark.slow
@pytest.mark.data
def test_damaged_copies_fail_exactly_at_the_damaged_packet(movie, table, damaged, damaged_b):
    frames, error = decode_until_error(movie)
    assert error is None and len(frames) == 480
    for path, index in ((damaged, P_PACKET), (damaged_b, B_PACKET)):
        frames, error = decode_until_error(path)
        assert error is not None, f"{path} decodes cleanly: the damage missed"
        assert error[0] == index
        assert isinstance(error[1], av.error.InvalidDataError)
    # what the packets are, as the expectations below rely on it
    shown = presentation(table)
    assert shown[P_PACKET] == 104 and pts_mode_lost(table, P_PACKET) == list(range(101, 238))
    assert shown[B_PACKET] == 99 and shown[B_PACKET - 3] == 100
    assert [i for i, p in enumerate(table) if p[4]] == [0, 238, 478]


@pytest.mark.data
def test_raise_names_the_file_the_first_failing_frame_and_the_chunk(damaged, table):
    first = pts_mode_lost(table, P_PACKET)[0]  # 101: a B-frame predicted from frame 104
    v = open_video(damaged, channel=0)
    assert v.data.chunks[0] == (238, 242)
    for _ in range(2):  # the same on every rerun
        with pytest.raises(VideoDecodeError) as info:
            sync(v.data.blocks[0])
        err = info.value
        assert isinstance(err, VideoError) and isinstance(err, ValueError)
        assert err.path == damaged
        assert err.frame == first == 101
        assert err.chunk == (0, 237)
        assert isinstance(err.__cause__, av.error.InvalidDataError)
        assert err.reason == f"InvalidDataError: {err.__cause__}"
        assert "avcodec_send_packet" in err.reason
        message = str(err)
        assert "\n" not in message
        for fact in (damaged, "frame 101", "0..237", err.reason, "on_error='skip'",
                     "--on-error skip"):
            assert fact in message

    # chunks of 64: the chunk holding the damage, one failing in the pre-roll (decoded
    # from keyframe 0 through the broken packet) and one resuming at keyframe 238
    v64 = open_video(damaged, channel=0, chunks=64)
    for block, frame, chunk in ((1, 101, (64, 127)), (2, 128, (128, 191)),
                                (3, 192, (192, 255))):
        with pytest.raises(VideoDecodeError) as info:
            sync(v64.data.blocks[block])
        assert (info.value.frame, info.value.chunk) == (frame, chunk)
        assert info.value.reason.startswith("InvalidDataError: ")


@pytest.mark.slow
@pytest.mark.data
def test_decode_error_pickles_and_crosses_processes(damaged):
    v = open_video(damaged, channel=0, chunks=64)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[1])
    err = info.value
    cloudpickle = pytest.importorskip("cloudpickle")
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        back = loads(dumps(err))
        assert type(back) is VideoDecodeError
        assert (back.path, back.frame, back.chunk, back.reason) == (
            err.path, err.frame, err.chunk, err.reason)
        assert str(back) == str(err) and back.args == err.args
    # raised in a worker process, sent back by dask
    with pytest.raises(VideoDecodeError) as info:
        v.data.blocks[1].compute(scheduler="processes", num_workers=1)
    assert (info.value.path, info.value.frame, info.value.chunk) == (damaged, 101, (64, 127))
    assert info.value.reason == err.reason


@pytest.mark.slow
@pytest.mark.data
def test_skip_keeps_every_decodable_frame_bit_identical(damaged, table, clean_red):
    lost = pts_mode_lost(table, P_PACKET)
    v = open_video(damaged, channel=0)
    with skip_undecodable() as skipped:
        block = sync(v.data.blocks[0])
    assert skipped == lost == list(range(101, 238))
    assert set(skipped.reasons) == set(lost)
    assert all(r.startswith("InvalidDataError: ") for r in skipped.reasons.values())
    check_skipped_block(block, clean_red[:238], skipped)

    # chunks of 64 over frames 0..255: the chunk with the damage, the pre-roll failure
    # (all of 128..191), and a chunk that resumes at keyframe 238 after skipping 192..237
    v64 = open_video(damaged, channel=0, chunks=64)
    with skip_undecodable() as skipped:
        block = sync(v64.data[:256])
    assert skipped == lost
    check_skipped_block(block, clean_red[:256], skipped)
    np.testing.assert_array_equal(block[238:256], clean_red[238:256])


@pytest.mark.slow
@pytest.mark.data
def test_chunks_without_damage_are_unaffected(damaged, clean_red):
    v = open_video(damaged, channel=0)
    np.testing.assert_array_equal(sync(v.data.blocks[1]), clean_red[238:])
    with skip_undecodable() as skipped:
        np.testing.assert_array_equal(sync(v.data.blocks[1]), clean_red[238:])
    assert skipped == []
    v64 = open_video(damaged, channel=0, chunks=64)
    np.testing.assert_array_equal(sync(v64.data[:64]), clean_red[:64])


@pytest.mark.data
def test_skip_keeps_the_frames_decoded_before_a_broken_b_frame(damaged_b, table, clean_red):
    """Frame 100 (a P-frame) is decoded before the broken B-frame 99 and is kept."""
    lost = pts_mode_lost(table, B_PACKET)
    assert lost[0] == 99 and 100 not in lost and lost[1:] == list(range(101, 238))
    v = open_video(damaged_b, channel=0, chunks=64)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[1])
    assert (info.value.frame, info.value.chunk) == (99, (64, 127))
    with skip_undecodable() as skipped:
        block = sync(v.data[64:128])
    assert skipped == [f for f in lost if f < 128]
    check_skipped_block(block, clean_red[64:128], skipped, first_label=64)
    np.testing.assert_array_equal(block[100 - 64], clean_red[100])


@pytest.mark.data
def test_frame_selection_reports_absolute_frame_numbers(damaged, table, clean_red):
    lost = set(pts_mode_lost(table, P_PACKET))
    wanted = list(range(90, 200, 2))
    v = open_video(damaged, channel=0, chunks=20, frames=slice(90, 200, 2))
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[0])  # frames 90, 92, ..., 128
    assert (info.value.frame, info.value.chunk) == (102, (90, 128))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == [f for f in wanted if f in lost]
    rows = [wanted.index(f) for f in skipped]
    keep = [i for i in range(len(wanted)) if i not in rows]
    np.testing.assert_array_equal(block[keep], clean_red[wanted][keep])
    assert not block[rows].any()


@pytest.mark.slow
@pytest.mark.data
def test_count_mode_keeps_only_frames_counted_before_the_error(damaged, clean_red):
    """Numbering by counting: nothing after the error in its GOP is counted or kept."""
    before, error = decode_until_error(damaged)
    assert error[0] == P_PACKET
    n_ok = len(before)  # frames PyAV output before the refused packet
    assert 95 <= n_ok <= 101
    v = as_count_mode(damaged, chunks="auto", channel=0)
    assert v.data.chunks[0] == (238, 242)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[0])
    assert (info.value.path, info.value.frame, info.value.chunk) == (damaged, n_ok, (0, 237))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == list(range(n_ok, 238))
    check_skipped_block(block, clean_red, skipped)

    v64 = as_count_mode(damaged, chunks=64, channel=0)
    with skip_undecodable() as skipped:
        block = sync(v64.data[:256])
    assert skipped == list(range(n_ok, 238))
    check_skipped_block(block, clean_red[:256], skipped)


# ---------------------------------------------------------------------------------------
# Small movies: resuming at the next keyframe inside a chunk, in both modes
# ---------------------------------------------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize("name, mode", [("b.mkv", "pts"), ("b.mp4", "pts"), ("b.avi", "count")])
def test_skip_resumes_at_the_next_keyframe_in_the_chunk(tmp_path, name, mode):
    clean_path, path = tmp_path / name, tmp_path / f"damaged_{name}"
    encode(clean_path)  # keyframes at 0, 12, 24, 36, 48
    clean, error = decode_until_error(clean_path)
    assert error is None and len(clean) == 60
    clean = np.stack(clean)
    table = packet_table(clean_path)
    keyframes = [i for i, p in enumerate(table) if p[4]]
    assert keyframes == [0, 12, 24, 36, 48]
    broken = 16  # a P-frame in the second group of pictures
    damage_packet(clean_path, path, broken)
    before, error = decode_until_error(path)
    assert error is not None and error[0] == broken, "the damage missed packet 16"
    assert movie_module.MovieSource(str(path)).toc.mode == mode
    if mode == "pts":
        lost = pts_mode_lost(table, broken)
    else:  # H.264 with B-frames in AVI: the timestamps do not give the order
        lost = list(range(len(before), keyframes[2]))
    assert lost and lost[-1] == 23

    v = open_video(str(path), chunks=60)  # one chunk, one decode segment over 5 GOPs
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data)
    assert (info.value.path, info.value.frame, info.value.chunk) == (str(path), lost[0], (0, 59))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == lost
    check_skipped_block(block, clean, skipped)
    np.testing.assert_array_equal(block[24:], clean[24:])  # decoding resumed at frame 24


def test_movie_deleted_after_open(tmp_path):
    path = tmp_path / "gone.mkv"
    encode(path)
    v = open_video(str(path), chunks=20)
    os.remove(path)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[1])
    err = info.value
    assert (err.path, err.frame, err.chunk) == (str(path), 20, (20, 39))
    assert err.reason.startswith("FileNotFoundError: ") and "gone.mkv" in err.reason
    with skip_undecodable() as skipped:
        block = sync(v.data[20:40])
    assert skipped == list(range(20, 40)) and not block.any()
    assert skipped.reasons[25].startswith("FileNotFoundError: ")


def test_movie_shrunk_after_open(tmp_path):
    path = tmp_path / "shrunk.mkv"
    encode(path)
    v = open_video(str(path), chunks=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    left, error = decode_until_error(path)
    assert error is None and 20 < len(left) < 40
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[2])
    assert (info.value.frame, info.value.chunk) == (40, (40, 59))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == list(range(len(left), 60))
    assert "ended" in skipped.reasons[59]
    np.testing.assert_array_equal(block[: len(left)], np.stack(left))
    assert not block[len(left):].any()


# ---------------------------------------------------------------------------------------
# TIFF, image sequences, Zarr: per-frame retry
# ---------------------------------------------------------------------------------------


def test_tiff_with_a_corrupt_page(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60000, (6, 16, 20)).astype(np.uint16)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, frames, compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(path) as tf:
        assert len(tf.pages) == 6
        page = tf.pages[3]
        offset, count = page.dataoffsets[0], sum(page.databytecounts)
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(rng.integers(0, 256, count, dtype=np.uint8).tobytes())
    with pytest.raises(Exception) as own:  # tifffile itself fails on page 3 only
        tifffile.imread(path, key=3)
    for key in (0, 1, 2, 4, 5):
        np.testing.assert_array_equal(tifffile.imread(path, key=key), frames[key])

    v = open_video(str(path), chunks=4)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[0])
    err = info.value
    assert (err.path, err.frame, err.chunk) == (str(path), 3, (0, 3))
    assert type(err.__cause__) is type(own.value)
    assert err.reason == f"{type(own.value).__name__}: {err.__cause__}"
    np.testing.assert_array_equal(sync(v.data.blocks[1]), frames[4:])
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == [3]
    check_skipped_block(block, frames, skipped)

    picked = open_video(str(path), chunks=3, frames=[1, 3, 5])
    with pytest.raises(VideoDecodeError) as info:
        sync(picked.data)
    assert (info.value.frame, info.value.chunk) == (3, (1, 5))
    with skip_undecodable() as skipped:
        block = sync(picked.data)
    assert skipped == [3]
    np.testing.assert_array_equal(block[[0, 2]], frames[[1, 5]])
    assert not block[1].any()


def test_png_sequence_with_a_truncated_and_a_deleted_file(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 16, 20)).astype(np.uint8)
    paths = [tmp_path / f"f{i}.png" for i in range(6)]
    for p, f in zip(paths, frames):
        imageio.imwrite(p, f)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) // 2])  # header intact, image data cut
    with pytest.raises(Exception) as own:
        imageio.imread(paths[2])
    v = open_video(str(tmp_path / "f*.png"), chunks=4)
    os.remove(paths[5])  # after open_video

    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[0])
    err = info.value
    assert (err.path, err.frame, err.chunk) == (str(paths[2]), 2, (0, 3))
    assert err.reason == f"{type(own.value).__name__}: {own.value}"
    assert str(paths[2]) in str(err)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[1])
    err = info.value
    assert (err.path, err.frame, err.chunk) == (str(paths[5]), 5, (4, 5))
    assert err.reason.startswith("FileNotFoundError: ")

    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == [2, 5]
    assert skipped.reasons[5].startswith("FileNotFoundError: ")
    check_skipped_block(block, frames, skipped)


def test_image_replaced_by_one_of_another_shape(tmp_path):
    frames = np.arange(4 * 4 * 5, dtype=np.uint8).reshape(4, 4, 5)
    for i, f in enumerate(frames):
        imageio.imwrite(tmp_path / f"g{i}.png", f)
    v = open_video(str(tmp_path / "g*.png"), chunks=4)
    imageio.imwrite(tmp_path / "g1.png", np.zeros((6, 5), np.uint8))
    with pytest.raises(VideoDecodeError, match="g1.png.*same shape") as info:
        sync(v.data)
    assert info.value.frame == 1
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == [1]
    check_skipped_block(block, frames, skipped)


def test_zarr_with_a_corrupt_chunk(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60000, (6, 16, 20)).astype(np.uint16)
    path = tmp_path / "frames.zarr"
    arr = zarr.create_array(store=str(path), shape=frames.shape, chunks=(2, 16, 20),
                            dtype=frames.dtype)
    arr[:] = frames
    chunk_files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
                   if f != "zarr.json"]
    assert len(chunk_files) == 3
    broken = next(f for f in chunk_files if os.path.relpath(f, path).split(os.sep)[1] == "1")
    with open(broken, "r+b") as f:  # the zarr chunk holding frames 2 and 3
        f.write(rng.integers(0, 256, 64, dtype=np.uint8).tobytes())
    with pytest.raises(Exception) as own:  # whatever the codec raises
        zarr.open_array(str(path), mode="r")[2]
    assert not isinstance(own.value, (IndexError, KeyError))  # a decoding failure
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[4:], frames[4:])

    v = open_video(str(path), chunks=6)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data)
    assert (info.value.path, info.value.frame, info.value.chunk) == (str(path), 2, (0, 5))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == [2, 3]
    check_skipped_block(block, frames, skipped)


# ---------------------------------------------------------------------------------------
# The skip_undecodable context
# ---------------------------------------------------------------------------------------


@pytest.fixture()
def tiff_with_bad_page(tmp_path):
    frames = np.arange(4 * 6 * 8, dtype=np.uint16).reshape(4, 6, 8) + 1
    path = tmp_path / "small.tif"
    tifffile.imwrite(path, frames, compression="zlib", photometric="minisblack")
    with tifffile.TiffFile(path) as tf:
        assert len(tf.pages) == 4
        offset, count = tf.pages[1].dataoffsets[0], tf.pages[1].databytecounts[0]
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(b"\xff" * count)
    return str(path), frames


def test_skip_mode_is_scoped_to_the_block_and_its_context(tiff_with_bad_page):
    path, frames = tiff_with_bad_page
    v = open_video(path, chunks=2)
    with pytest.raises(VideoDecodeError):
        sync(v.data)
    with skip_undecodable() as outer:
        sync(v.data)
        sync(v.data.blocks[0])  # the same frame again: listed once
        with skip_undecodable() as inner:  # the innermost block collects
            sync(v.data.blocks[0])
        # a thread started here does not run in this context: raise mode
        errors = []
        thread = threading.Thread(target=lambda: _compute_into(v.data, errors))
        thread.start()
        thread.join()
        assert len(errors) == 1 and isinstance(errors[0], VideoDecodeError)
        # dask's threaded scheduler runs tasks in a copy of this context: skip mode
        block = v.data.compute(scheduler="threads")
    assert outer == [1] and inner == [1]
    check_skipped_block(block, frames, [1])
    with pytest.raises(VideoDecodeError):  # back to raise mode after the block
        sync(v.data)


def _compute_into(arr, errors):
    try:
        sync(arr)
    except Exception as exc:
        errors.append(exc)


def _raising_reader(spec, arg):
    raise spec("from the reader")
    yield  # pragma: no cover - makes this a generator


@pytest.mark.parametrize("kind", [MemoryError, KeyboardInterrupt])
def test_memory_error_and_interrupts_are_never_wrapped(kind):
    request = ChunkRequest(_raising_reader, kind, (0, 1), 2, (3, 4), "uint8", None,
                                  (0, 1, 2))
    with pytest.raises(kind):
        read_chunk(request)
    with skip_undecodable() as skipped, pytest.raises(kind):
        read_chunk(request)
    assert skipped == []


@pytest.mark.data
def test_clean_reads_are_unchanged_inside_skip_mode(movie, clean_red):
    v = open_video(movie, channel=0, chunks=64, frames=slice(200, 300))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == []
    np.testing.assert_array_equal(block, clean_red[200:300])

