"""batch(follow=True) / locate --follow: a recording located while a real writer process
writes it (daskloc.testing.acquire: files and TIFF pages written in two halves, so
scans meet half-written frames), against a run on the finished recording."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import daskloc
from daskloc.stores import open_store, store_info
from daskloc.video import VideoError
from daskloc.video._follow import follow_video
from daskloc.video.images import image_complete

PARAMS = {"minmass": 100}


def _writer(out, kind, frames=60, fps=40, tear=0.4):
    proc = subprocess.Popen([sys.executable, "-m", "daskloc.testing.acquire", out, "--kind",
                             kind, "--fps", str(fps), "--frames", str(frames), "--tear",
                             str(tear), "--shape", "96,96"])
    deadline = time.monotonic() + 60
    while not os.path.exists(out):
        assert proc.poll() is None, "the writer process died"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return proc


def _wait_for_chunks(store, job, n=2):
    """Wait until the job running in ``job`` (a process) has stored ``n`` chunks."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline and job.poll() is None
        try:
            if store_info(store)["chunks_complete"] >= n:
                return
        except (FileNotFoundError, ValueError):
            pass
        time.sleep(0.1)


def _table(store):
    return daskloc.read_features(store).reset_index(drop=True)


@pytest.mark.parametrize("kind,name", [("png", "rec"), ("tiff", "rec.tif"), ("zarr", "rec.zarr")])
def test_follow_equals_the_finished_recording(tmp_path, kind, name):
    out = str(tmp_path / name)
    proc = _writer(out, kind)
    daskloc.batch(out, 9, store=str(tmp_path / "live.parquet"), follow=True, idle=2,
                  client="local-threads", do_not_return=True, **PARAMS)
    assert proc.wait(30) == 0
    daskloc.batch(out, 9, store=str(tmp_path / "done.parquet"), do_not_return=True,
                  client="local-threads", **PARAMS)
    live, done = _table(tmp_path / "live.parquet"), _table(tmp_path / "done.parquet")
    assert len(done) > 60 * 5
    pd.testing.assert_frame_equal(live, done)
    info = store_info(tmp_path / "live.parquet")
    assert info["complete"] and info["followed"] and not info["growing"]
    assert info["frames_complete"] == 60
    assert "idle" in info["ended"]
    meta = open_store(str(tmp_path / "live.parquet")).metadata()
    assert all(b - a == 16 for a, b in meta.chunks[:-1])  # the followed default chunks


def test_half_written_files_are_not_counted(tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    import imageio.v3 as iio

    data = iio.imwrite("<bytes>", np.full((32, 32), 7, np.uint8), extension=".png")
    for i in range(3):
        (folder / f"img_{i:03d}.png").write_bytes(data)
    (folder / "img_003.png").write_bytes(data[: len(data) // 2])  # being written
    assert not image_complete(str(folder / "img_003.png"), len(data) // 2)
    grow = follow_video(folder)
    assert grow.scan().n_frames == 0  # seen once: not yet known to be stable
    assert grow.scan().n_frames == 3  # the torn file and what follows it wait
    (folder / "img_004.png").write_bytes(data)
    assert grow.scan().n_frames == 3
    (folder / "img_003.png").write_bytes(data)
    grow.scan()
    assert grow.scan().n_frames == 5
    (folder / "img_001b.png").write_bytes(data)  # sorts before frames already counted
    with pytest.raises(VideoError, match="sorts before"):
        grow.scan()


def test_torn_tiff_page_waits(tmp_path):
    import tifffile

    path = tmp_path / "rec.tif"
    with tifffile.TiffWriter(path) as tw:
        for i in range(4):
            tw.write(np.full((40, 40), i, np.uint16), metadata=None)
    whole = path.read_bytes()
    path.write_bytes(whole[:-100])  # the last page's data are not all there
    grow = follow_video(path)
    assert grow.scan().n_frames == 3
    path.write_bytes(whole)
    assert grow.scan().n_frames == 4
    video = grow.video(4, [np.arange(1, 4)])
    assert video.frame.values.tolist() == [1, 2, 3]
    assert video.data.compute()[:, 0, 0].tolist() == [1, 2, 3]


def test_zarr_frames_count_once_their_chunks_are_written(tmp_path, monkeypatch):
    # A writer resizes the array, then writes the chunk: a frame inside the shape whose
    # chunk is missing, or older than the resize (a chunk of several frames rewritten on
    # each append), would read as the fill value. It waits; a fill-valued chunk, which
    # zarr does not write, counts after ZARR_UNWRITTEN_AFTER seconds.
    import zarr

    from daskloc.video import zarr as zarr_reader

    path = str(tmp_path / "rec.zarr")
    arr = zarr.create_array(path, shape=(0, 8, 8), chunks=(4, 8, 8), dtype="uint16")
    grow = follow_video(path)
    assert grow.scan().n_frames == 0
    arr.append(np.full((1, 8, 8), 1, np.uint16), axis=0)
    assert grow.scan().n_frames == 1
    time.sleep(0.02)
    arr.resize((2, 8, 8))  # the metadata first; the chunk still holds frame 0 only
    assert grow.scan().n_frames == 1
    time.sleep(0.02)
    arr[1] = 2
    assert grow.scan().n_frames == 2
    time.sleep(0.02)
    arr.resize((6, 8, 8))
    assert grow.scan().n_frames == 2  # frames 2-5: no chunk written since
    time.sleep(0.02)
    arr[2:4] = 3
    assert grow.scan().n_frames == 2  # a row of several frames closed just now: settling
    monkeypatch.setattr(zarr_reader, "ZARR_SETTLE", 0.2)
    time.sleep(0.25)
    assert grow.scan().n_frames == 4  # the first row is whole; the second has no object
    arr[4:6] = 0  # the fill value: zarr writes no chunk
    assert grow.scan().n_frames == 4
    monkeypatch.setattr(zarr_reader, "ZARR_UNWRITTEN_AFTER", 0.3)
    time.sleep(0.35)
    assert grow.scan().n_frames == 6
    video = grow.video(6, [np.arange(6)])
    assert video.data.compute()[:, 0, 0].tolist() == [1, 2, 3, 3, 0, 0]


def test_killed_follow_resumes_and_a_finished_one_does_nothing(tmp_path):
    out = str(tmp_path / "rec")
    store = str(tmp_path / "live.parquet")
    proc = _writer(out, "png", frames=120, fps=40)
    code = (f"import daskloc; daskloc.batch({out!r}, 9, store={store!r}, follow=True, idle=30,"
            f" client='local-threads', do_not_return=True, minmass=100)")
    job = subprocess.Popen([sys.executable, "-c", code])
    _wait_for_chunks(store, job)  # kill it once some chunks are stored, mid-recording
    job.send_signal(signal.SIGKILL)
    job.wait()
    killed = store_info(store)
    assert killed["growing"] and not killed["complete"]
    assert proc.wait(30) == 0
    daskloc.batch(out, 9, store=store, follow=True, idle=1.5, client="local-threads",
                  do_not_return=True, **PARAMS)
    daskloc.batch(out, 9, store=str(tmp_path / "done.parquet"), client="local-threads",
                  do_not_return=True, **PARAMS)
    pd.testing.assert_frame_equal(_table(store), _table(tmp_path / "done.parquet"))
    before = open_store(store).metadata()
    files = {f: os.stat(os.path.join(store, f)).st_mtime_ns for f in os.listdir(store)
             if f.startswith("part")}
    assert files
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        daskloc.batch(out, 9, store=store, follow=True, idle=1, client="local-threads",
                      do_not_return=True, **PARAMS)
    assert any("nothing to do" in str(w.message) for w in caught)
    after = open_store(store).metadata()
    assert (after.chunks, after.n_features, after.finished) == (
        before.chunks, before.n_features, True)
    assert {f: os.stat(os.path.join(store, f)).st_mtime_ns for f in files} == files
    # the same store is not taken for a finished recording's job: it says why
    with pytest.raises(daskloc.StoreMismatchError, match="followed"):
        daskloc.batch(out, 9, store=store, client="local-threads", do_not_return=True,
                      **PARAMS)


def test_a_reader_sees_chunks_while_following(tmp_path):
    out = str(tmp_path / "rec")
    store = str(tmp_path / "live.parquet")
    proc = _writer(out, "png", frames=300, fps=30, tear=0.2)
    job = subprocess.Popen([
        sys.executable, "-m", "daskloc", "locate", out, "--follow", "--idle", "2", "-d", "9",
        "--minmass", "100", "--out", store, "--workers", "1"])
    seen, deadline = [], time.monotonic() + 120
    while job.poll() is None and time.monotonic() < deadline:
        try:
            snap = daskloc.job_progress(store)
        except (FileNotFoundError, ValueError):
            time.sleep(0.2)
            continue
        if snap["growing"] and proc.poll() is None:
            seen.append(snap["frames_complete"])
            if snap["chunks_complete"]:  # plain pandas sees what is done
                table = pd.read_parquet(store)
                assert table["frame"].nunique() <= snap["frames_complete"] + 16
        time.sleep(0.3)
    assert job.wait(120) == 0
    # results while the recording was written, growing
    assert seen and min(seen) < 300
    info = store_info(store)
    assert info["complete"] and info["frames_complete"] == 300


def test_follow_refuses_what_cannot_grow(tmp_path):
    movie = tmp_path / "m.npy"
    np.save(movie, np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(TypeError, match="array"):
        daskloc.batch(np.zeros((2, 8, 8), np.uint8), 9, store=str(tmp_path / "a.parquet"),
                      follow=True)
    with pytest.raises(FileNotFoundError, match="follow"):
        daskloc.batch(str(tmp_path / "none"), 9, store=str(tmp_path / "a.parquet"),
                      follow=True)
    with pytest.raises(ValueError, match="first frame, every frame"):
        daskloc.batch(str(tmp_path), 9, store=str(tmp_path / "a.parquet"), follow=True,
                      open_options={"frames": slice(5, 10)})
    with pytest.raises(ValueError, match="whole recording|not whole"):
        daskloc.batch(str(tmp_path), 9, store=str(tmp_path / "a.parquet"), follow=True,
                      background="median")
    with pytest.raises(VideoError, match="no complete frame"):
        daskloc.batch(str(tmp_path), 9, store=str(tmp_path / "a.parquet"), follow=True,
                      idle=0.5)


@pytest.mark.parametrize("store_name", ["live.zarr", "live.h5"])
def test_follow_into_zarr_and_hdf5_stores(tmp_path, store_name):
    out = str(tmp_path / "rec")
    proc = _writer(out, "png", frames=50, fps=60)
    store = str(tmp_path / store_name)
    daskloc.batch(out, 9, store=store, follow=True, idle=1.5, client="local-threads",
                  do_not_return=True, **PARAMS)
    assert proc.wait(30) == 0
    daskloc.batch(out, 9, store=str(tmp_path / "done.parquet"), client="local-threads",
                  do_not_return=True, **PARAMS)
    pd.testing.assert_frame_equal(_table(store), _table(tmp_path / "done.parquet"))
    assert store_info(store)["complete"]


def test_end_marker_frames_limit_and_ctrl_c_end_the_recording(tmp_path):
    import tifffile

    stack = daskloc.synthetic.make_video(40, (96, 96), n_particles=10, seed=3)[0]
    path = tmp_path / "done.tif"
    tifffile.imwrite(path, stack)  # its description announces 40 pages
    start = time.monotonic()
    daskloc.batch(str(path), 9, store=str(tmp_path / "a.parquet"), follow=True, idle=600,
                  client="local-threads", do_not_return=True, **PARAMS)
    assert time.monotonic() - start < 120  # not the idle time: the end marker
    info = store_info(tmp_path / "a.parquet")
    assert info["complete"] and info["frames_complete"] == 40
    assert "end marker" in info["ended"] and "40 pages" in info["ended"]

    folder = str(tmp_path / "rec")
    proc = _writer(folder, "png", frames=40, fps=100)
    assert proc.wait(30) == 0
    daskloc.batch(folder, 9, store=str(tmp_path / "b.parquet"), follow=True, idle=600,
                  client="local-threads", do_not_return=True, open_options={"frames": 21},
                  **PARAMS)
    info = store_info(tmp_path / "b.parquet")
    assert info["frames_complete"] == 21 and info["complete"]
    assert open_store(str(tmp_path / "b.parquet")).metadata().chunks == [(0, 16), (16, 21)]

    store = str(tmp_path / "c.parquet")
    job = subprocess.Popen([sys.executable, "-m", "daskloc", "locate", folder, "--follow",
                            "--idle", "600", "-d", "9", "--minmass", "100", "--out", store,
                            "--workers", "1"])
    _wait_for_chunks(store, job)
    job.send_signal(signal.SIGINT)
    assert job.wait(120) == 0  # the last partial chunk, then a clean exit
    info = store_info(store)
    assert info["complete"] and info["frames_complete"] == 40
    assert "interrupted" in info["ended"]
    from click.testing import CliRunner

    from daskloc.cli import main

    shown = CliRunner().invoke(main, ["watch", store, "--interval", "0.1"])
    assert shown.exit_code == 0, shown.output
    assert "complete" in shown.output and "40 of 40" in shown.output
    assert "per frame" in shown.output and "interrupted" in shown.output
