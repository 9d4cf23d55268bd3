"""daskloc.pipeline: locate (lazy dask DataFrame) and batch (streamed, resumable store)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from daskloc.locate import feature_columns, locate_stack
from daskloc.pipeline import IN_FLIGHT_PER_THREAD, StoreMismatchError, batch, locate
from daskloc.stores import read_features, store_info
from tests.conftest import (
    DIAMETER,
    PARAMS,
    CountingArray,
    as_video,
    make_spots,
    parquet_doc,
    start_batch_process,
)

COLS = list(feature_columns(True))


def reference(arr, first_frame=0, **params):
    """locate_stack on the whole array: the oracle for the pipeline."""
    p = dict(PARAMS, **params)
    frames = np.arange(first_frame, first_frame + len(arr))
    return locate_stack(arr, DIAMETER, frame_numbers=frames, **p)


def part_files(store):
    return sorted(n for n in os.listdir(store) if n.startswith("part-"))


# ----------------------------------------------------------------- locate


def test_locate_partitions_divisions_and_schema(spots):
    ddf = locate(as_video(spots, chunks=4), DIAMETER, **PARAMS)
    assert ddf.npartitions == 6
    assert ddf.known_divisions
    assert ddf.divisions == (0, 4, 8, 12, 16, 20, 23)
    assert list(ddf.columns) == COLS
    assert ddf.index.name == "frame"
    for i in range(ddf.npartitions):
        part = ddf.get_partition(i).compute()
        assert list(part.columns) == COLS
        assert (part.dtypes == np.float64).all()
        assert part.index.name == "frame" and part.index.dtype == np.int64
        if i == 2:  # frames 8..11 are black
            assert len(part) == 0
        else:
            assert len(part) > 0
            assert part.index.min() >= ddf.divisions[i]
            assert part.index.max() < ddf.divisions[i + 1] or i == ddf.npartitions - 1


def test_locate_equals_locate_stack(spots):
    got = locate(as_video(spots, chunks=5), DIAMETER, **PARAMS).compute()
    ref = reference(spots)
    expected = ref.set_index("frame")[COLS]
    pd.testing.assert_frame_equal(got, expected)


def test_locate_absolute_frame_numbers_and_characterize_false(spots):
    ddf = locate(as_video(spots[:12], chunks=4, first_frame=100), DIAMETER,
                 characterize=False, **PARAMS)
    assert ddf.divisions == (100, 104, 108, 111)
    assert list(ddf.columns) == ["y", "x", "mass"]
    got = ddf.loc[102].compute()
    ref = reference(spots[:12], first_frame=100, characterize=False)
    expected = ref[ref.frame == 102].set_index("frame")[["y", "x", "mass"]]
    pd.testing.assert_frame_equal(got, expected)
    # an empty (black) partition keeps the schema too
    empty = ddf.get_partition(2).compute()
    assert len(empty) == 0 and list(empty.dtypes) == [np.float64] * 3


def test_loc_reads_only_the_chunks_needed(spots):
    counting = CountingArray(spots)
    ddf = locate(as_video(counting, chunks=4), DIAMETER, **PARAMS)
    assert counting.reads == []  # building the graph reads nothing
    with dask.config.set(scheduler="synchronous"):
        got = ddf.loc[5:6].compute()
        assert counting.reads == [4]
        assert sorted(set(got.index)) == [5, 6]
        counting.reads.clear()
        ddf.loc[7:13].compute()
        assert sorted(counting.reads) == [4, 8, 12]
        counting.reads.clear()
        ddf.compute()
        assert sorted(counting.reads) == [0, 4, 8, 12, 16, 20]


@pytest.mark.slow
@pytest.mark.data
def test_real_movie_loc_decodes_only_the_chunks_needed():
    from daskloc.testing.readers import count_chunk_reads
    from daskloc.video import open_video
    from tests._data import data_path

    with count_chunk_reads() as reads:
        movie = open_video(data_path("bulk-water.mov"), channel=0, chunks=64)
    ddf = locate(movie, 11, minmass=20, invert=True)
    assert ddf.npartitions == 8 and ddf.divisions == (0, 64, 128, 192, 256, 320, 384, 448, 479)
    with dask.config.set(scheduler="synchronous"):
        before = reads.count
        got = ddf.loc[100:150].compute()
        assert reads.count - before == 2  # chunks [64, 128) and [128, 192)
    assert sorted(set(got.index)) == list(range(100, 151))
    frame = movie.sel(frame=120).values
    expected = locate_stack(frame[None], 11, frame_numbers=[120], minmass=20, invert=True)
    np.testing.assert_array_equal(got.loc[120, COLS].to_numpy(), expected[COLS].to_numpy())


def test_locate_bad_diameter_raises_before_any_graph(spots):
    counting = CountingArray(spots)
    video = as_video(counting, chunks=4)
    for bad in (8, -3, 0):
        with pytest.raises(ValueError, match="diameter"):
            locate(video, bad)
    assert counting.reads == []


def test_locate_refuses_colour_video(tmp_path):
    arr = np.zeros((4, 16, 16, 3), np.uint8)
    video = xr.DataArray(arr, dims=("frame", "y", "x", "channel"))
    with pytest.raises(ValueError, match=r"channel=.*grey"):
        locate(video, DIAMETER)
    with pytest.raises(ValueError, match=r"channel=.*grey"):
        batch(video, DIAMETER, store=tmp_path / "never-created.parquet")
    assert not (tmp_path / "never-created.parquet").exists()


def test_locate_numpy_backed_and_spatially_chunked(spots):
    numpy_video = xr.DataArray(spots, dims=("frame", "y", "x"))
    ddf = locate(numpy_video, DIAMETER, **PARAMS)
    assert ddf.npartitions == 1  # 24 frames < 64 per chunk
    tiled = as_video(spots, chunks=6)
    tiled = tiled.copy(data=tiled.data.rechunk((6, 48, 48)))
    ddf2 = locate(tiled, DIAMETER, **PARAMS)
    assert ddf2.npartitions == 4
    expected = reference(spots).set_index("frame")[COLS]
    pd.testing.assert_frame_equal(ddf.compute(), expected)
    pd.testing.assert_frame_equal(ddf2.compute(), expected)


# ----------------------------------------------------------------- batch


def test_batch_local_equals_locate_stack(spots, tmp_path):
    store = tmp_path / "f.parquet"
    out = batch(as_video(spots, chunks=4), DIAMETER, store=store, **PARAMS)
    ref = reference(spots)
    pd.testing.assert_frame_equal(read_features(store), ref)
    # the returned dask DataFrame is read lazily from the store, indexed by frame
    assert out.known_divisions and out.divisions == (0, 4, 8, 12, 16, 20, 23)
    pd.testing.assert_frame_equal(out.compute(), ref.set_index("frame")[COLS])
    pd.testing.assert_frame_equal(
        out.loc[9:13].compute(), ref[(ref.frame >= 9) & (ref.frame <= 13)].set_index("frame")[COLS]
    )
    assert part_files(store) == [
        f"part-{a:09d}-{a + 4:09d}.parquet" for a in range(0, 24, 4)
    ]


def test_batch_do_not_return(spots, tmp_path):
    assert batch(as_video(spots, chunks=8), DIAMETER, store=tmp_path / "f.parquet",
                 do_not_return=True, **PARAMS) is None
    assert store_info(tmp_path / "f.parquet")["complete"]


def test_batch_on_local_cluster(spots, tmp_path, client):
    from distributed import get_task_stream

    store = tmp_path / "f.parquet"
    with get_task_stream(client=client) as ts:
        out = batch(as_video(spots, chunks=4), DIAMETER, store=store, client=client, **PARAMS)
    ran = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in ts.data]
    assert sum("_chunk_task" in k for k in ran) == 6  # every chunk ran on the workers
    ref = reference(spots)
    pd.testing.assert_frame_equal(read_features(store), ref)
    pd.testing.assert_frame_equal(out.compute(), ref.set_index("frame")[COLS])


def test_batch_uses_the_default_client(spots, tmp_path, cluster):
    from distributed import Client, get_task_stream

    with Client(cluster) as c, get_task_stream(client=c) as ts:  # becomes the default
        batch(as_video(spots, chunks=6), DIAMETER, store=tmp_path / "f.parquet",
              do_not_return=True, **PARAMS)
    ran = [t["key"] if isinstance(t["key"], str) else t["key"][0] for t in ts.data]
    assert sum("_chunk_task" in k for k in ran) == 4
    pd.testing.assert_frame_equal(read_features(tmp_path / "f.parquet"), reference(spots))


def test_batch_bounds_chunks_in_flight_on_cluster(tmp_path, client):
    """At most 2 x threads chunk tasks exist on the scheduler at any time."""
    arr = make_spots(n_frames=48, shape=(64, 64), n_particles=4, seed=3)
    threads = sum(client.nthreads().values())
    window = IN_FLIGHT_PER_THREAD * threads
    seen = []

    def count_chunk_tasks(dask_scheduler):
        return sum("_chunk_task" in str(k) for k in dask_scheduler.tasks)

    def progress(done, total, n):
        seen.append((done, client.run_on_scheduler(count_chunk_tasks)))

    batch(as_video(arr, chunks=2), DIAMETER, store=tmp_path / "f.parquet", client=client,
          progress=progress, do_not_return=True, **PARAMS)
    assert seen[0][0] == 0 and seen[-1][0] == 24
    # a released task may linger on the scheduler a moment before it is forgotten
    assert max(n for _, n in seen) <= window + 2, seen
    assert max(n for _, n in seen) < 24 - window


def test_batch_streams_parts_while_later_chunks_compute(spots, tmp_path):
    """Part files are on disk while later chunks have not even been read yet."""
    store = tmp_path / "f.parquet"
    counting = CountingArray(spots)
    observed = []

    def progress(done, total, n):
        observed.append((done, total, len(part_files(store)) if store.exists() else 0,
                         len(counting.reads)))

    with dask.config.set(scheduler="synchronous"):  # one thread: a window of 2 chunks
        batch(as_video(counting, chunks=4), DIAMETER, store=store, progress=progress,
              do_not_return=True, **PARAMS)
    assert observed[0] == (0, 6, 0, 0)
    for done, _total, files, reads in observed[1:]:
        assert files >= done  # each finished chunk is already on disk ...
        assert reads <= done + IN_FLIGHT_PER_THREAD  # ... and later chunks are not read yet
    done, total, files, reads = observed[1]
    assert files >= 1 and reads < total


def test_batch_local_memory_bound(tmp_path):
    """Chunks read but not yet written never exceed the window (2 x threads)."""
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=4, seed=5)
    store = tmp_path / "f.parquet"
    gaps = []

    def on_read(first):
        gaps.append(len(counting.reads) - (len(part_files(store)) if store.exists() else 0))

    counting = CountingArray(arr, on_read=on_read)
    with dask.config.set(num_workers=2):
        batch(as_video(counting, chunks=2), DIAMETER, store=store, do_not_return=True, **PARAMS)
    assert len(gaps) == 20
    assert max(gaps) <= 2 * IN_FLIGHT_PER_THREAD


def test_no_partial_part_file_is_ever_visible(spots, tmp_path, monkeypatch):
    """Parquet bytes are written slowly; a watcher only ever sees complete part files."""
    import threading

    import pyarrow as pa
    import pyarrow.parquet as pq

    real_write = pq.write_table

    def slow_write(table, where, **kwargs):
        sink = pa.BufferOutputStream()
        real_write(table, sink, **kwargs)
        data = sink.getvalue().to_pybytes()
        with open(where, "wb") as f:
            f.write(data[: len(data) // 2])
            f.flush()
            time.sleep(0.05)  # the file is half written here
            f.write(data[len(data) // 2 :])

    monkeypatch.setattr(pq, "write_table", slow_write)
    store = tmp_path / "f.parquet"
    stop = threading.Event()
    problems, checked = [], []

    def watch():
        while not stop.is_set():
            if not store.exists():
                continue
            for name in os.listdir(store):
                if name.startswith((".", "_")):
                    continue
                if not name.startswith("part-"):
                    problems.append(f"unexpected visible file {name}")
                    continue
                try:
                    pq.read_table(store / name)
                    checked.append(name)
                except FileNotFoundError:
                    pass
                except Exception as e:  # a partial file
                    problems.append(f"{name}: {e}")

    t = threading.Thread(target=watch)
    t.start()
    try:
        batch(as_video(spots, chunks=2), DIAMETER, store=store, do_not_return=True, **PARAMS)
    finally:
        stop.set()
        t.join()
    assert problems == []
    assert len(set(checked)) >= 6  # the watcher did see part files during the run
    assert not [n for n in os.listdir(store) if n.startswith(".")]


def test_resume_skips_complete_chunks_and_cleans_temp_files(spots, tmp_path):
    store = tmp_path / "f.parquet"
    batch(as_video(spots, chunks=4), DIAMETER, store=store, do_not_return=True, **PARAMS)
    for name in ("part-000000004-000000008.parquet", "part-000000016-000000020.parquet"):
        os.remove(store / name)
    stray = store / ".part-000000004-000000008.parquet.deadbeef.tmp"
    stray.write_bytes(b"PAR1 half a file")
    counting = CountingArray(spots)
    starts = []
    batch(as_video(counting, chunks=4), DIAMETER, store=store, do_not_return=True,
          progress=lambda d, t, n: starts.append((d, t)), **PARAMS)
    assert starts[0] == (4, 6)
    assert sorted(counting.reads) == [4, 16]  # only the missing chunks were computed
    assert not stray.exists()
    pd.testing.assert_frame_equal(read_features(store), reference(spots))
    meta = parquet_doc(store)
    assert meta["finished"] and len(meta["complete_chunks"]) == 6


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path):
    """Kill a batch process with SIGKILL mid-run; resuming gives the uninterrupted table."""
    arr = make_spots(n_frames=60, shape=(64, 64), n_particles=5, seed=7)
    store = tmp_path / "killed.parquet"
    proc = start_batch_process(tmp_path, arr, store, delay=0.15, chunks=2)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if store.exists() and len(part_files(store)) >= 4:
                break
            if proc.poll() is not None:
                pytest.fail(f"batch process ended early: {proc.stderr.read().decode()}")
            time.sleep(0.01)
        else:
            pytest.fail("no part files appeared")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    n_done = len(part_files(store))
    assert 4 <= n_done < 30, "the kill must land mid-run"

    starts = []
    counting = CountingArray(arr)
    batch(as_video(counting, chunks=2), DIAMETER, store=store, do_not_return=True,
          progress=lambda d, t, n: starts.append(d), **PARAMS)
    assert starts[0] == n_done
    assert len(counting.reads) == 30 - n_done
    assert not [n for n in os.listdir(store) if n.startswith(".")]

    uninterrupted = tmp_path / "uninterrupted.parquet"
    batch(as_video(arr, chunks=2), DIAMETER, store=uninterrupted, do_not_return=True, **PARAMS)
    got, want = read_features(store), read_features(uninterrupted)
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got, want)
    pd.testing.assert_frame_equal(got, reference(arr))


# ----------------------------------------------------------------- existing stores


def test_mismatch_is_a_clear_error(spots, tmp_path):
    store = tmp_path / "f.parquet"
    video = as_video(spots, chunks=4)
    batch(video, DIAMETER, store=store, do_not_return=True, minmass=100)
    before = {n: os.stat(store / n).st_mtime_ns for n in os.listdir(store)}
    with pytest.raises(StoreMismatchError) as e:
        batch(video, DIAMETER, store=store, minmass=120)
    msg = str(e.value)
    assert "\n  minmass: 100 -> 120\n" in msg  # one line per field, stored -> asked
    assert "overwrite=True" in msg and "--overwrite" in msg and str(store) in msg
    assert isinstance(e.value, ValueError)
    with pytest.raises(StoreMismatchError, match="chunking"):
        batch(as_video(spots, chunks=6), DIAMETER, store=store, minmass=100)
    with pytest.raises(StoreMismatchError, match="shape"):
        batch(as_video(spots[:, :80], chunks=4), DIAMETER, store=store, minmass=100)
    with pytest.raises(StoreMismatchError, match=r"invert: False -> True"):
        batch(video, DIAMETER, store=store, minmass=100, invert=True)
    after = {n: os.stat(store / n).st_mtime_ns for n in os.listdir(store)}
    assert after == before  # nothing touched


def test_overwrite_replaces_the_store(spots, tmp_path):
    store = tmp_path / "f.parquet"
    batch(as_video(spots, chunks=4), DIAMETER, store=store, do_not_return=True, minmass=100)
    out = batch(as_video(spots, chunks=6), DIAMETER, store=store, overwrite=True, minmass=150)
    assert part_files(store) == [f"part-{a:09d}-{a + 6:09d}.parquet" for a in range(0, 24, 6)]
    ref = reference(spots, minmass=150)
    pd.testing.assert_frame_equal(read_features(store), ref)
    assert len(out.compute()) == len(ref)
    assert store_info(store)["params"]["minmass"] == 150


def test_refuses_a_directory_that_is_not_a_store(spots, tmp_path):
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="not a daskloc store"):
            batch(as_video(spots, chunks=4), DIAMETER, store=foreign, overwrite=overwrite)
    assert os.listdir(foreign) == ["thesis.tex"]


def test_unwritable_path_fails_before_computing(spots, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    counting = CountingArray(spots)
    with pytest.raises(OSError, match="a-file") as e:
        batch(as_video(counting, chunks=4), DIAMETER, store=blocker / "f.parquet", **PARAMS)
    assert "--out" in str(e.value)
    with pytest.raises(OSError, match="a-file"):
        batch(as_video(counting, chunks=4), DIAMETER, store=blocker, **PARAMS)
    assert counting.reads == []


def test_permission_denied_fails_before_computing(spots, tmp_path):
    counting = CountingArray(spots)
    if os.geteuid() == 0:
        # root ignores directory modes; sysfs refuses new entries even to root.
        target = Path("/sys/daskloc-locked/f.parquet")
        with pytest.raises(PermissionError, match="daskloc-locked"):
            batch(as_video(counting, chunks=4), DIAMETER, store=target, **PARAMS)
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(PermissionError, match="locked"):
                batch(as_video(counting, chunks=4), DIAMETER, store=locked / "f.parquet", **PARAMS)
        finally:
            locked.chmod(0o700)
    assert counting.reads == []


def test_bad_params_fail_before_anything_is_written(spots, tmp_path):
    store = tmp_path / "f.parquet"
    with pytest.raises(ValueError, match="diameter"):
        batch(as_video(spots, chunks=4), 10, store=store)
    with pytest.raises(TypeError):
        batch(as_video(spots, chunks=4), DIAMETER, store=store, minmass="lots")
    assert not store.exists()


def _boom_at_frame_8(first):
    if first == 8:
        raise RuntimeError("disk on fire")


@pytest.mark.parametrize("where", ["local", "cluster"])
def test_a_failing_chunk_raises_and_a_rerun_completes(spots, tmp_path, request, where):
    client = request.getfixturevalue("client") if where == "cluster" else None
    store = tmp_path / "f.parquet"
    failing = as_video(CountingArray(spots, on_read=_boom_at_frame_8), chunks=4)
    with pytest.raises(RuntimeError, match="disk on fire"):
        batch(failing, DIAMETER, store=store, client=client, **PARAMS)
    info = store_info(store)
    assert not info["complete"]
    assert (8, 12) not in open_store_chunks(store)
    meta = parquet_doc(store)
    assert meta["finished"] is False
    assert sorted(map(tuple, meta["complete_chunks"])) == open_store_chunks(store)
    batch(as_video(spots, chunks=4), DIAMETER, store=store, client=client, do_not_return=True,
          **PARAMS)
    assert store_info(store)["complete"]
    pd.testing.assert_frame_equal(read_features(store), reference(spots))


def open_store_chunks(store):
    from daskloc.stores import open_store

    return open_store(store).complete_chunks()


# ----------------------------------------------------------------- 3-D volumes

D3 = (5, 7, 7)  # z, y, x: the planes of gaussian_volumes' spots are further apart
P3 = {"minmass": 200}


@pytest.fixture(scope="module")
def volumes():
    from daskloc.testing.stores import gaussian_volumes

    return gaussian_volumes(6, seed=4)


def test_locate_3d_columns_come_from_dims_and_parameters_before_anything_runs(volumes):
    from daskloc.locate import job_columns, normalize_params

    cases = [(D3, {}), (5, {}), (D3, {"characterize": False}), (5, {"noise_size": (1, 1.5, 1.5)})]
    for diameter, extra in cases:
        ddf = locate(as_video(volumes, chunks=2), diameter, **P3, **extra)
        want = job_columns(normalize_params(diameter, **P3, **extra), 3)
        assert tuple(ddf.columns) == want and ddf.known_divisions  # the meta, nothing run
        got = ddf.compute().reset_index()
        ref = locate_stack(volumes, diameter, **P3, **extra)
        pd.testing.assert_frame_equal(got[list(ref.columns)], ref)
    black = np.zeros_like(volumes)  # partitions without features keep the schema
    with pytest.warns(UserWarning, match="gave no features"):
        empty = locate(as_video(black, chunks=3), D3, **P3).compute()
    assert len(empty) == 0 and tuple(empty.columns) == job_columns(normalize_params(D3), 3)
    assert (empty.dtypes == np.float64).all()


def test_per_axis_parameters_that_do_not_fit_the_video_are_refused_first(volumes, tmp_path):
    from daskloc.pipeline import BatchError, check_batch

    frames = as_video(volumes[:, 8])  # one plane of each volume: 2-D frames
    store = tmp_path / "f.parquet"
    for call in (lambda: locate(frames, D3), lambda: batch(frames, D3, store=store),
                 lambda: check_batch(frames, D3, store=store)):
        with pytest.raises(ValueError, match=r"diameter has 3 values .* 2-D .*dims=\("):
            call()
    # equal per-axis values become one number, but 2 values are still not 3 axes
    with pytest.raises(ValueError, match=r"separation has 2 values .*'z', 'y', 'x'"):
        batch(as_video(volumes), 5, separation=(6, 6), store=store)
    assert not store.exists()  # nothing was written
    # with several videos, the one that does not fit fails alone
    with pytest.raises(BatchError, match="frames.*diameter has 3 values") as failed:
        batch({"volumes": as_video(volumes, chunks=3), "frames": frames}, D3, store=store,
              **P3)
    assert failed.value.completed == ["volumes"]
    pd.testing.assert_frame_equal(read_features(store, video="volumes"),
                                  locate_stack(volumes, D3, **P3))


def test_batch_resumes_a_3d_job_and_refuses_other_dims(volumes, tmp_path):
    store = tmp_path / "f.zarr"

    def fail_on(first):
        if first == 4:
            raise RuntimeError("stopped")

    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(RuntimeError, match="stopped"):
            batch(as_video(CountingArray(volumes, on_read=fail_on), chunks=2), D3,
                  store=store, do_not_return=True, **P3)
    counting = CountingArray(volumes)
    batch(as_video(counting, chunks=2), D3, store=store, do_not_return=True, **P3)
    assert sorted(counting.reads) == [4]  # only the chunk that was not done
    pd.testing.assert_frame_equal(read_features(store), locate_stack(volumes, D3, **P3))
    meta = store_info(store)
    assert meta["dims"] == ["frame", "z", "y", "x"] and meta["columns"][0] == "z"
    flat = volumes.reshape(len(volumes), -1, volumes.shape[-1])  # the planes stacked in y
    with pytest.raises(StoreMismatchError, match=r"dims: \('frame', 'z', 'y', 'x'\) \(3-D"):
        batch(as_video(flat, chunks=2), 7, store=store, **P3)


def test_batch_gathers_3d_volumes_without_features_into_one_warning(volumes, tmp_path):
    video = volumes.copy()
    video[[1, 4]] = 0  # black volumes: trackpy warns for each
    with pytest.warns(UserWarning) as seen:
        batch(as_video(video, chunks=2), D3, store=tmp_path / "f.parquet",
              do_not_return=True, **P3)
    texts = [str(w.message) for w in seen if "gave no features" in str(w.message)]
    assert len(texts) == 1  # one summary for the job (the format: test_no_features_summary)
    assert "2 frames gave no features (frames 1, 4)" in texts[0] and "black" in texts[0]


def test_trackpy_links_3d_features_read_from_a_store(volumes, tmp_path):
    trackpy = pytest.importorskip("trackpy")
    store = tmp_path / "f.parquet"
    batch(as_video(volumes, chunks=2), D3, store=store, do_not_return=True, **P3)
    features = read_features(store)
    tracks = trackpy.link(features, 5, pos_columns=["z", "y", "x"])
    ref = trackpy.link(locate_stack(volumes, D3, **P3), 5, pos_columns=["z", "y", "x"])
    pd.testing.assert_frame_equal(tracks.reset_index(drop=True), ref.reset_index(drop=True))
    assert tracks.particle.nunique() < len(tracks)  # spots are followed over frames
    assert tracks.groupby("particle").frame.nunique().max() == len(volumes)
