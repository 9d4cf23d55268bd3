"""Faults, caused for real: a worker process killed mid-job, the client killed with SIGKILL
at random points, a disk that fills up and a store that stops being writable mid-job, and
a scheduler address that does not answer.

Nothing is mocked: the worker dies by ``os.kill(pid, SIGKILL)`` in a real
``distributed.LocalCluster``; the client is a real ``batch`` process killed by SIGKILL;
the full disk is a small tmpfs (``mount -t tmpfs``, root only) filled with a ballast file;
the unwritable store is made immutable with ``chattr +i`` (which stops root too) in the
middle of a run. Every test ends with a rerun whose store equals an uninterrupted run row
for row: nothing lost, nothing twice.
"""

from __future__ import annotations

import errno
import functools
import gc
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pandas as pd
import pytest

from daskloc.locate import locate_stack
from daskloc.pipeline import batch
from daskloc.stores import open_store, read_features, store_info
from tests.conftest import (
    DIAMETER,
    PARAMS,
    CountingArray,
    as_video,
    make_spots,
    start_batch_process,
)

#: Generous bound for anything that should take a few seconds on an idle machine.
PATIENCE = 120


def location(backend, directory, name="features"):
    """A store location of ``backend`` in ``directory`` (a path or an SQLite URL)."""
    if backend == "parquet":
        return str(directory / f"{name}.parquet")
    if backend == "zarr":
        return str(directory / f"{name}.zarr")
    if backend == "sqlite":
        return f"sqlite:///{directory / name}.db"
    raise AssertionError(backend)


def store_dir(loc):
    """The directory or file a store location occupies on disk."""
    return loc[len("sqlite:///"):] if loc.startswith("sqlite:///") else loc


def rows_of_chunks(reference, chunks):
    """The rows of ``reference`` whose frame lies in one of ``chunks`` (in frame order)."""
    frame = reference["frame"].to_numpy()
    keep = np.zeros(len(frame), dtype=bool)
    for a, b in chunks:
        keep |= (frame >= a) & (frame < b)
    return reference[keep].reset_index(drop=True)


def assert_store_holds_exactly(loc, reference, chunks=None):
    """The store opens, and holds the reference rows of its complete chunks, each once.

    ``chunks``: the complete chunks it must have (default: whatever it reports)."""
    done = open_store(loc, "r").complete_chunks()
    if chunks is not None:
        assert done == sorted(chunks)
    info = store_info(loc)
    assert info["chunks_complete"] == len(done)
    got = read_features(loc)
    want = rows_of_chunks(reference, done)
    assert info["n_features"] == len(want)
    pd.testing.assert_frame_equal(got, want)
    return done


def wait_until(condition, what, timeout=PATIENCE, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# ----------------------------------------------------------------- a worker killed mid-job


@pytest.fixture(scope="module")
def fault_cluster():
    """A LocalCluster of its own (2 worker processes x 1 thread, restarted by nannies):
    killing its workers must not disturb other test modules' cluster."""
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address="127.0.0.1:0", silence_logs=50) as cl:
        yield cl


@pytest.fixture
def fault_client(fault_cluster):
    import distributed

    with distributed.Client(fault_cluster, set_as_default=False) as c:
        worker_pids(c, 2)
        yield c


def worker_pids(client, n, without=None):
    """The PIDs of the cluster's workers once there are ``n`` and none is ``without``
    (asked of the workers themselves, through the scheduler)."""
    def pids():
        try:
            found = set(client.run(os.getpid, on_error="ignore").values())
        except Exception:  # noqa: BLE001 - a worker that just died
            return None
        return found if len(found) >= n and without not in found else None

    return wait_until(pids, f"{n} live workers", interval=0.2)


def _log_and_sleep(log, delay, first):
    """CountingArray's on_read on a worker: note 'pid first-frame time', then sleep."""
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {first} {time.time():.6f}\n".encode())
    finally:
        os.close(fd)
    time.sleep(delay)


def read_log(log):
    """The reads logged by :func:`_log_and_sleep`: list of (pid, first frame, time)."""
    try:
        with open(log) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    return [(int(p), int(a), float(t)) for p, a, t in (ln.split() for ln in lines if ln)]


@pytest.fixture(scope="module")
def worker_video():
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=6, seed=11)
    return arr, locate_stack(arr, DIAMETER, **PARAMS)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["parquet", "zarr", "sqlite"])
def test_a_worker_killed_mid_job_changes_nothing(backend, fault_client, worker_video, tmp_path):
    """SIGKILL a worker process while it reads a chunk: the chunk is computed again on a
    live worker, the nanny starts a new worker, and the store equals an uninterrupted run
    (parallel worker-side writes for Parquet and SQLite, client-side appends for Zarr)."""
    arr, reference = worker_video
    delay = 0.3  # each chunk read sleeps this long: a worker is nearly always mid-read
    log = str(tmp_path / "reads.log")
    video = as_video(CountingArray(arr, on_read=functools.partial(_log_and_sleep, log, delay)),
                     chunks=2)
    loc = location(backend, tmp_path)
    pids = worker_pids(fault_client, 2)
    progress = []
    killed = {}

    def fresh_read():
        """A read that has just started (its worker sleeps for `delay` more seconds)."""
        now = time.time()
        fresh = [r for r in read_log(log) if r[0] in pids and now - r[2] < delay / 3]
        return fresh[-1] if fresh else None

    def kill_a_reading_worker():  # in a thread: the client must keep submitting meanwhile
        wait_until(lambda: len(progress) >= 3 or stop.is_set(), "3 chunks")
        read = wait_until(lambda: fresh_read() or stop.is_set(), "a worker starting a read",
                          interval=0.005)
        if read is True:  # the job ended first
            return
        pid, first, _ = read
        os.kill(pid, signal.SIGKILL)
        killed.update(pid=pid, first=first, at=time.time())

    stop = threading.Event()
    killer = threading.Thread(target=kill_a_reading_worker, daemon=True)
    killer.start()
    try:
        batch(video, DIAMETER, store=loc, client=fault_client, do_not_return=True,
              progress=lambda done, total, n: progress.append(done), **PARAMS)
    finally:
        stop.set()
        killer.join(PATIENCE)

    assert killed, "the job ended before a worker could be killed"
    # The kill landed mid-chunk: that chunk was read again, by another process, afterwards.
    again = [r for r in read_log(log) if r[1] == killed["first"] and r[2] > killed["at"]]
    assert again and all(pid != killed["pid"] for pid, _, _ in again), read_log(log)
    # Nothing lost, nothing twice.
    assert_store_holds_exactly(loc, reference, chunks=[(a, a + 2) for a in range(0, 40, 2)])
    assert store_info(loc)["complete"]
    pd.testing.assert_frame_equal(read_features(loc), reference)
    # The nanny replaced the dead worker.
    worker_pids(fault_client, 2, without=killed["pid"])


# ----------------------------------------------------------------- the client killed


def _kill_repeatedly(loc, directory, arr, reference, rng, kills, total, delay):
    """Start ``batch`` processes on ``loc`` one after another and SIGKILL each at a
    random point: during start-up (a random 1..3 s after the start), or a random time
    after a random number (1..3) of new complete chunks. After every kill the store
    opens, holds exactly the reference rows of its complete chunks, and has lost none.

    Returns the number of complete chunks after each kill (None: no store yet)."""
    def complete():
        try:
            return open_store(loc, "r").complete_chunks()
        except Exception:  # noqa: BLE001 - not created yet, no metadata yet
            return []

    before, history = [], []
    for _ in range(kills):
        new_chunks = int(rng.integers(0, 4))  # 0: kill during start-up
        jitter = float(rng.uniform(0.0, delay))
        startup = float(rng.uniform(1.0, 3.0))
        proc = start_batch_process(directory, arr, loc, delay=delay, chunks=2)
        try:
            if new_chunks == 0:
                time.sleep(startup)  # imports, opening the store, resuming, first reads
            else:
                # the lambda is called only within this iteration: it sees this proc
                wait_until(lambda: proc.poll() is not None  # noqa: B023
                           or len(complete()) >= min(len(before) + new_chunks, total),  # noqa: B023
                           f"{new_chunks} new chunks in {loc}", interval=0.01)
                time.sleep(jitter)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=PATIENCE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        finished = proc.returncode == 0  # it completed before the kill
        assert finished or proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        if not os.path.exists(store_dir(loc)) or not open_store(loc).exists():
            assert before == [], f"{loc}: a store that had chunks disappeared"
            history.append(None)
            continue
        done = assert_store_holds_exactly(loc, reference)
        assert set(before) <= set(done), f"{loc}: complete chunks lost: {set(before) - set(done)}"
        history.append(len(done) if not finished else f"finished ({len(done)})")
        before = done
    return history


@pytest.mark.slow
def test_client_killed_at_random_points_then_rerun(tmp_path):
    """For Parquet, Zarr and SQLite (at the same time, each its own sequence): four
    batch processes in a row, each killed with SIGKILL at a random point (fixed seeds).
    After every kill the store opens and holds exactly its complete chunks, and nothing
    complete is ever lost; a final rerun completes it equal to an uninterrupted run."""
    from concurrent.futures import ThreadPoolExecutor

    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=6, seed=5)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    # chunks of 2 frames, 0.5 s each: a writer needs ~5 s, so the kills (1-3 new chunks
    # after start-up, three pollers in this process) land mid-job even on a loaded machine
    total = 20
    backends = ["parquet", "zarr", "sqlite"]
    locs = {}
    for i, backend in enumerate(backends):
        directory = tmp_path / backend
        directory.mkdir()
        locs[backend] = (location(backend, directory), directory, np.random.default_rng(i + 1))
    with ThreadPoolExecutor(len(backends)) as pool:
        runs = {b: pool.submit(_kill_repeatedly, loc, directory, arr, reference, rng,
                               kills=4, total=total, delay=0.5)
                for b, (loc, directory, rng) in locs.items()}
        histories = {b: f.result() for b, f in runs.items()}
    for backend, history in histories.items():
        mid_run = [n for n in history if isinstance(n, int) and 0 < n < total]
        assert len(mid_run) >= 2, f"{backend}: too few kills landed mid-job: {history}"

    for backend, (loc, _, _) in locs.items():
        batch(as_video(arr, chunks=2), DIAMETER, store=loc, do_not_return=True, **PARAMS)
        assert store_info(loc)["complete"]
        pd.testing.assert_frame_equal(read_features(loc), reference)
        if backend == "parquet":  # the rerun discarded what killed writers left
            assert not [n for n in os.listdir(loc) if n.startswith(".")]


# ----------------------------------------------------------------- disk full, not writable


def _mount_tmpfs(path, size):
    path.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {e}")


def _umount(path):
    gc.collect()
    if subprocess.run(["umount", str(path)], capture_output=True).returncode:
        # Still open (SQLite connections stay cached per process): detach it now; the
        # kernel frees it when the last file closes.
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path):
    """A real 8 MiB filesystem (tmpfs) mounted for this test."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "8m")
    try:
        yield disk
    finally:
        _umount(disk)


def _deleted_but_open(directory):
    """Files under ``directory`` that this process holds open although deleted."""
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(directory) and target.endswith(" (deleted)"):
            out.append(target)
    return out


def _free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.fixture(scope="module")
def dense_video():
    """60 frames of 192 x 192 with ~60 features each (a 64 x 64 pattern tiled 3 x 3): a
    store of a few hundred KiB, in 20 chunks of 3 frames."""
    small = make_spots(n_frames=60, shape=(64, 64), n_particles=12, seed=17)
    arr = np.ascontiguousarray(np.tile(small, (1, 3, 3)))
    return arr, locate_stack(arr, DIAMETER, **PARAMS)


def _check_write_error(err, loc, *phrases):
    msg = str(err)
    assert store_dir(loc) in msg, msg
    for phrase in phrases:
        assert phrase in msg, msg
    assert "--out" in msg and "rerun" in msg, msg


def _assert_nothing_half_written(loc, backend, done, temporary_ok=False):
    """No partial chunk is visible (Parquet: nor, unless ``temporary_ok``, any temporary
    file: a failed write removes its own)."""
    if backend != "parquet":
        return
    names = sorted(os.listdir(loc))
    parts = [n for n in names if n.startswith("part-")]
    assert len(parts) == len(done)
    if not temporary_ok:
        assert not [n for n in names if n.startswith(".")], names
    # A plain Parquet reader sees exactly the complete chunks too.
    assert len(pd.read_parquet(loc)) == len(read_features(loc))


@pytest.mark.parametrize("backend,where", [("parquet", "local"), ("parquet", "cluster"),
                                           ("zarr", "local"), ("sqlite", "local")])
@pytest.mark.slow
def test_disk_full_mid_job(backend, where, small_disk, dense_video, request):
    """The disk fills up after some chunks: a clear error naming the store and the fix;
    the store opens and holds exactly its complete chunks; after freeing space a rerun
    completes it equal to an uninterrupted run."""
    client = request.getfixturevalue("fault_client") if where == "cluster" else None
    arr, reference = dense_video
    video = as_video(arr, chunks=3)

    def target(name):
        loc = location(backend, small_disk, name)
        if backend == "zarr":  # small zarr chunks: a short video grows the store file by
            return loc, open_store(loc, "a", chunk_rows=256)  # file, as a long one does
        return loc, loc

    # How much room does the whole store take on this filesystem?
    free0 = _free(small_disk)
    ref_loc, ref_store = target("uninterrupted")
    batch(video, DIAMETER, store=ref_store, do_not_return=True, **PARAMS)
    uninterrupted = read_features(ref_loc)
    pd.testing.assert_frame_equal(uninterrupted, reference)
    size = free0 - _free(small_disk)
    assert size > 100_000, f"store of {size} bytes: too small to fill a disk gradually"
    # Leave room for about half of it (the uninterrupted store stays, to compare with).
    ballast = small_disk / "ballast"
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(0, _free(small_disk) - size // 2))
    assert _free(small_disk) < size

    loc, store = target("features")
    with pytest.raises(OSError) as e:
        batch(video, DIAMETER, store=store, client=client, do_not_return=True, **PARAMS)
    assert e.value.errno == errno.ENOSPC, repr(e.value)
    _check_write_error(e.value, loc, "No space left on device")
    # No process keeps a failed write's deleted temporary file open (holding its space).
    assert _deleted_but_open(str(small_disk)) == []
    if client is not None:
        assert all(v == [] for v in client.run(_deleted_but_open, str(small_disk)).values())

    done = assert_store_holds_exactly(loc, reference)
    assert 0 < len(done) < 20, f"{len(done)} chunks were written: the disk filled too early or late"
    assert not store_info(loc)["complete"]
    _assert_nothing_half_written(loc, backend, done)

    ballast.unlink()  # free the space; the same call resumes and completes the job
    progress = []
    batch(video, DIAMETER, store=store, client=client, do_not_return=True,
          progress=lambda d, t, n: progress.append(d), **PARAMS)
    assert progress[0] == len(done)
    assert store_info(loc)["complete"]
    pd.testing.assert_frame_equal(read_features(loc), uninterrupted)
    _assert_nothing_half_written(loc, backend, open_store(loc).complete_chunks())


def _chattr(flag, path):
    return subprocess.run(["chattr", "-R", flag, str(path)], capture_output=True, timeout=60)


@pytest.fixture
def immutable_ok(tmp_path):
    """Skip unless ``chattr +i`` works here (root, a filesystem with the flag)."""
    probe = tmp_path / "probe"
    probe.write_text("x")
    try:
        ok = shutil.which("chattr") and _chattr("+i", probe).returncode == 0
    finally:
        if shutil.which("chattr"):
            _chattr("-i", probe)
    if not ok:
        pytest.skip("chattr +i is not available here (needs root and ext4/xfs/btrfs)")
    cleanup = []
    yield cleanup
    for path in cleanup:  # never leave immutable files behind: tmp_path could not be removed
        _chattr("-i", path)


@pytest.mark.parametrize("backend,where", [("parquet", "local"), ("parquet", "cluster"),
                                           ("zarr", "local")])
@pytest.mark.slow
def test_store_made_unwritable_mid_job(backend, where, immutable_ok, dense_video, tmp_path,
                                       request):
    """Mid-job the store becomes immutable (chattr -R +i: even root may not write): a
    clear permission error naming the store; the store still opens; once writable again
    a rerun completes it equal to an uninterrupted run."""
    client = request.getfixturevalue("fault_client") if where == "cluster" else None
    arr, reference = dense_video
    video = as_video(arr, chunks=3)
    loc = location(backend, tmp_path)
    immutable_ok.append(loc)

    def lock_after_three(done, total, n):
        if done == 3:
            assert _chattr("+i", loc).returncode == 0

    with pytest.raises(PermissionError) as e:
        batch(video, DIAMETER, store=loc, client=client, do_not_return=True,
              progress=lock_after_three, **PARAMS)
    _check_write_error(e.value, loc, "Operation not permitted")

    done = assert_store_holds_exactly(loc, reference)
    assert 3 <= len(done) < 20
    # A write cut off between creating its temporary file and renaming it could not
    # remove it either (the directory refuses every change); readers never see it.
    _assert_nothing_half_written(loc, backend, done, temporary_ok=True)
    assert _chattr("-i", loc).returncode == 0
    batch(video, DIAMETER, store=loc, client=client, do_not_return=True, **PARAMS)
    assert store_info(loc)["complete"]
    pd.testing.assert_frame_equal(read_features(loc), reference)
    _assert_nothing_half_written(loc, backend, open_store(loc).complete_chunks())


# ----------------------------------------------------------------- a scheduler that does not answer

_CONNECT_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from daskloc.cluster import connect
    print("ready", flush=True)
    start = time.monotonic()
    try:
        connect(scheduler=sys.argv[1], timeout=float(sys.argv[2]))
    except OSError as e:
        print(f"{time.monotonic() - start:.2f} OSError {e}", flush=True)
    else:
        print(f"{time.monotonic() - start:.2f} connected", flush=True)
    """
)


def _connect_in_subprocess(address, timeout, bound):
    """Run ``daskloc.cluster.connect(scheduler=address, timeout=timeout)`` in a fresh
    process. Returns (seconds, outcome), or None if it had not returned ``bound`` seconds
    after the imports (the process is then killed)."""
    proc = subprocess.Popen([sys.executable, "-c", _CONNECT_SCRIPT, address, str(timeout)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready, _, _ = select.select([proc.stdout], [], [], PATIENCE)  # imports
        assert ready and proc.stdout.readline().strip() == "ready", proc.stderr.read()
        ready, _, _ = select.select([proc.stdout], [], [], bound)
        if not ready:
            return None
        line = proc.stdout.readline().strip()
        assert line, proc.stderr.read()
        seconds, outcome = line.split(" ", 1)
        return float(seconds), outcome
    finally:
        proc.kill()
        proc.communicate()


@pytest.mark.slow
def test_scheduler_that_accepts_but_never_answers_fails_in_bounded_time():
    """A port that accepts TCP connections but never speaks (a hung scheduler, another
    service, an SSH tunnel whose far end is gone) gives a clear error within about the
    timeout. (A port where nothing listens is covered by tests/test_cli.py.)"""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)  # the kernel completes handshakes; nobody ever reads or writes
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
        result = _connect_in_subprocess(address, timeout=2, bound=10)
    assert result is not None, f"connect(scheduler={address!r}, timeout=2) hung"
    seconds, outcome = result
    assert outcome.startswith("OSError") and address in outcome, outcome
    assert seconds < 10
