"""The HDF5 store: what plain pandas sees, layout, SIGKILL and repair, concurrent access.

The conformance suite (daskloc.testing.stores, run by TestHDF5Store at the end) checks
the interface; these tests check what
is particular to HDF5: the file is an ordinary pandas/PyTables table file, a kill in the
middle of a write is repaired or reported (never silently wrong), and what a second
process gets while a batch writes.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tables

from daskloc.locate import feature_columns, locate_stack
from daskloc.pipeline import batch
from daskloc.stores import StoreBusyError, open_store, read_features, store_info
from daskloc.stores.hdf5 import DamagedStoreError, HDF5Store
from daskloc.testing._batch import watch_run
from tests.conftest import (
    DIAMETER,
    PARAMS,
    CountingArray,
    as_video,
    make_spots,
    start_batch_process,
)
from tests.stores._suite import DasklocStoreTests

COLUMNS = list(feature_columns(True))
KEY = "bulk_water/features"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fake_features(frames, per_frame, seed=0):
    rng = np.random.default_rng(seed)
    frame = np.repeat(np.asarray(frames, dtype=np.int64), per_frame)
    df = pd.DataFrame({c: rng.normal(100, 30, len(frame)) for c in COLUMNS})
    df["frame"] = frame
    return df


def metadata(stop, chunk):
    return {
        "format": "daskloc-features",
        "format_version": 2,
        "params": {"diameter": 9},
        "source": {"path": "synthetic", "frames": {"start": 0, "stop": stop, "step": 1}},
        "chunking": {"chunks": [[a, min(a + chunk, stop)] for a in range(0, stop, chunk)]},
        "columns": {**{c: "float64" for c in COLUMNS}, "frame": "int64"},
    }


def filled_store(path, n_chunks=6, chunk=10, per_frame=7, table=None):
    st = HDF5Store(path, table=table)
    st.prepare()
    st.write_metadata(metadata(n_chunks * chunk * 2, chunk))
    parts = []
    for a in range(0, n_chunks * chunk, chunk):
        part = fake_features(range(a, a + chunk), per_frame, seed=a)
        st.append_chunk(a, a + chunk, part)
        parts.append(part)
    return st, pd.concat(parts, ignore_index=True)


def mark_writer_killed(st):
    """What a writer killed with the file open leaves in the lock file."""
    with open(st.lock_path, "w") as f:
        json.dump({"/" + st.key: "writing pid=999999 host=elsewhere"}, f)


@pytest.fixture(scope="module")
def located(tmp_path_factory):
    """A batch written to an HDF5 file under a nested key, and its reference table."""
    tmp = tmp_path_factory.mktemp("located")
    arr = make_spots(n_frames=32, shape=(80, 80), n_particles=8, seed=5, black=range(8, 12))
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    path = tmp / "features.h5"
    batch(as_video(arr, chunks=4), DIAMETER, store=path, table=KEY, do_not_return=True,
          **PARAMS)
    return path, reference


# ----------------------------------------------------------------- what pandas sees


def test_pandas_reads_frame_ranges_with_where(located):
    path, reference = located
    got = pd.read_hdf(path, KEY, where="frame >= 5 & frame < 9")
    want = reference[reference.frame.between(5, 8)]
    pd.testing.assert_frame_equal(got[list(want.columns)].reset_index(drop=True),
                                  want.reset_index(drop=True))
    # The whole table, as trackpy users load it: sorted by frame, a unique index.
    everything = pd.read_hdf(path, KEY)
    assert list(everything.columns) == COLUMNS + ["frame"]
    assert everything.index.is_unique and everything["frame"].is_monotonic_increasing
    pd.testing.assert_frame_equal(everything.reset_index(drop=True), reference)
    # An HDFStore select, as in the mr/trackpy tutorial.
    with pd.HDFStore(path, "r") as hs:
        assert hs.keys() == ["/" + KEY]
        assert len(hs.select(KEY, "frame < 3")) == (reference.frame < 3).sum()


def test_frame_is_an_indexed_data_column_and_compression_is_blosc(located):
    path, _ = located
    with pd.HDFStore(path, "r") as hs:
        storer = hs.get_storer(KEY)
        table = storer.table
        assert "frame" in table.colindexes
        assert set(storer.data_columns) == set(COLUMNS + ["frame"])
        assert table.will_query_use_indexing("(frame >= 5) & (frame < 9)") == frozenset({"frame"})
        assert table.filters.complib == "blosc:zstd" and table.filters.complevel == 5
        assert table.filters.fletcher32  # torn chunks are detected, not read as garbage
        assert table.description._v_types["frame"] == "int64"


def test_nested_key_layout_and_metadata_is_json_not_pickle(located):
    path, reference = located
    st = open_store(path, table=KEY)
    meta = st.read_metadata()
    with h5py.File(path, "r") as f:
        group = f[KEY]
        assert {"table", "_i_table", "daskloc_metadata", "daskloc_chunks"} <= set(group)
        raw = group["daskloc_metadata"][()]
        assert raw.dtype == np.uint8
        assert json.loads(raw.tobytes().decode("utf-8")) == meta
        chunks = group["daskloc_chunks"][()]
        assert chunks.dtype.names == ("start", "stop", "row_start", "row_stop",
                                      "frames_start", "frames_stop", "id_hi", "id_lo")
        assert (chunks["id_hi"] != 0).all()  # every chunk carries its identity
        assert [tuple(c) for c in chunks[["start", "stop"]].tolist()] == [
            (a, a + 4) for a in range(0, 32, 4)]
        assert chunks["row_stop"][-1] == len(reference)
        assert chunks["frames_start"][2] == chunks["frames_stop"][2]  # black frames 8..11
        frames = group["daskloc_frames"][()]
        sizes = reference.groupby("frame").size()
        np.testing.assert_array_equal(frames["frame"], sizes.index)
        np.testing.assert_array_equal(frames["row_stop"] - frames["row_start"], sizes)
        np.testing.assert_array_equal(frames["row_start"][1:], frames["row_stop"][:-1])
        # Our nodes' attributes are PyTables' plain strings and numbers: no pickles.
        for name in ("daskloc_metadata", "daskloc_metadata_backup", "daskloc_chunks",
                     "daskloc_frames"):
            if name not in group:
                continue
            for key, value in group[name].attrs.items():
                assert not isinstance(value, np.void), key
                if isinstance(value, bytes):
                    assert not value.startswith((b"\x80", b"(", b"c__", b"N.")), (name, key)
    assert meta["format"] == "daskloc-features" and meta["store"]["backend"] == "hdf5"
    assert meta["finished"] is True and meta["n_features"] == len(reference)


def test_daskloc_reads_use_exact_row_ranges(located):
    path, reference = located
    st = open_store(path, table=KEY)
    rows = reference.groupby("frame").size().reindex(range(32), fill_value=0)
    offsets = np.concatenate([[0], np.cumsum(rows.to_numpy())])
    with st._session() as hs:
        # One frame inside a chunk: bisection finds exactly its rows.
        assert st.plan(hs, 6, 7) == [(offsets[6], offsets[7])]
        # A range over several chunks: one contiguous read.
        assert st.plan(hs, 3, 21) == [(offsets[3], offsets[21])]
        # Black frames 8..11 hold no rows: nothing to read.
        assert st.plan(hs, 8, 12) == []
        assert st.plan(hs, 0, 32, np.array([1, 30])) == [
            (offsets[1], offsets[2]), (offsets[30], offsets[31])]
    for frames in (slice(6, 7), slice(3, 21), [1, 30], range(0, 32, 5)):
        want = reference[reference.frame.isin(list(np.arange(32)[frames]
                                                     if isinstance(frames, slice)
                                                     else frames))]
        pd.testing.assert_frame_equal(st.read(frames), want.reset_index(drop=True))


def test_an_empty_first_chunk_still_makes_a_pandas_table(tmp_path):
    path = tmp_path / "empty.h5"
    st = HDF5Store(path)
    st.prepare()
    st.write_metadata(metadata(20, 10))
    st.append_chunk(0, 10, fake_features([], []))
    got = pd.read_hdf(path, "features")
    assert len(got) == 0 and list(got.columns) == COLUMNS + ["frame"]
    assert st.complete_chunks() == [(0, 10)] and st.n_rows() == 0
    st.append_chunk(10, 20, fake_features([12, 15], 3))
    assert len(pd.read_hdf(path, "features", where="frame == 12")) == 3


def test_batch_result_reads_from_threads(tmp_path):
    """PyTables is not thread-safe: the lazy result of batch reads chunks from a pool."""
    arr = make_spots(n_frames=24, shape=(64, 64), n_particles=5, seed=3)
    out = batch(as_video(arr, chunks=3), DIAMETER, store=tmp_path / "t.h5", **PARAMS)
    got = out.compute(scheduler="threads", num_workers=4)
    want = locate_stack(arr, DIAMETER, **PARAMS)
    pd.testing.assert_frame_equal(got.reset_index(), want[["frame"] + COLUMNS])


# ----------------------------------------------------------------- other keys, clear


def test_other_keys_are_left_alone_and_clear_removes_only_ours(tmp_path):
    path = tmp_path / "shared.h5"
    user = pd.DataFrame({"a": np.arange(5.0)})
    user.to_hdf(path, key="user/data", format="table")
    user.to_hdf(path, key="features", format="fixed")  # someone's key at our default
    with pytest.raises(ValueError, match="not a daskloc feature store"):
        HDF5Store(path).prepare()
    with pytest.raises(ValueError, match="refusing to remove"):
        HDF5Store(path).clear()
    st, expected = filled_store(path, table="run1/features")
    pd.testing.assert_frame_equal(st.read(), expected)
    st.clear()
    assert not st.exists() and st.complete_chunks() == []
    with h5py.File(path, "r") as f:
        assert "run1" not in f  # the group made for the nested key went too
    pd.testing.assert_frame_equal(pd.read_hdf(path, "user/data"), user)
    pd.testing.assert_frame_equal(pd.read_hdf(path, "features"), user)
    # With nothing else left, clear deletes the file (HDF5 never gives back the space).
    alone = tmp_path / "alone.h5"
    st, _ = filled_store(alone)
    st.clear()
    assert not alone.exists() and not os.path.exists(st.lock_path)


def test_a_file_that_is_not_hdf5_is_never_touched(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("my notes")
    st = HDF5Store(path)
    with pytest.raises(ValueError, match="not an HDF5 file"):
        st.prepare()
    with pytest.raises(ValueError, match="not an HDF5 file"):
        st.clear()
    assert not st.exists() and st.location_exists()
    with pytest.raises(ValueError, match="not a daskloc feature store"):
        read_features(path)
    assert path.read_text() == "my notes"
    (tmp_path / "dir.h5").mkdir()
    with pytest.raises(IsADirectoryError):
        HDF5Store(tmp_path / "dir.h5").prepare()
    empty = tmp_path / "empty.h5"
    empty.touch()
    filled_store(empty, n_chunks=1)  # an empty file holds nothing to lose
    with pytest.raises(FileNotFoundError):
        read_features(tmp_path / "missing.h5")
    with pytest.raises(FileNotFoundError):  # the file exists, the key does not
        read_features(empty, table="other")


def test_unwritable_location_fails_before_computing(tmp_path):
    arr = make_spots(n_frames=8)
    counting = CountingArray(arr)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="a-file") as err:
        batch(as_video(counting), DIAMETER, store=blocker / "f.h5", **PARAMS)
    assert "--out" in str(err.value)
    if os.geteuid() == 0:  # root ignores modes; sysfs refuses new entries even to root
        target = Path("/sys/daskloc-locked/f.h5")
        with pytest.raises(PermissionError, match="daskloc-locked"):
            batch(as_video(counting), DIAMETER, store=target, **PARAMS)
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(PermissionError, match="locked"):
                batch(as_video(counting), DIAMETER, store=locked / "f.h5", **PARAMS)
        finally:
            locked.chmod(0o700)
    assert counting.reads == []


def test_pickled_store_holds_no_handle(tmp_path):
    st, expected = filled_store(tmp_path / "p.h5", n_chunks=2)
    st.read()
    state = st.__getstate__()
    assert not [k for k in state if k.startswith("_live_")]
    assert all(isinstance(v, (str, int, float, bool, type(None))) for v in state.values())
    clone = pickle.loads(pickle.dumps(st))
    pd.testing.assert_frame_equal(clone.read(), expected)


# ----------------------------------------------------------------- kills and repair


def test_rows_without_a_chunk_record_are_invisible_then_removed(tmp_path):
    """A writer killed between its two flushes leaves rows no chunk owns."""
    path = tmp_path / "k.h5"
    st, expected = filled_store(path, n_chunks=3)
    stray = fake_features(range(30, 40), 5, seed=99)
    stray.index = pd.RangeIndex(len(expected), len(expected) + len(stray))
    with pd.HDFStore(path, "a") as hs:  # what the killed writer got to write
        hs.append("features", stray[COLUMNS + ["frame"]], format="table", data_columns=True,
                  index=False)
    assert len(pd.read_hdf(path, "features")) == len(expected) + len(stray)  # pandas sees them
    pd.testing.assert_frame_equal(st.read(), expected)  # daskloc does not
    pd.testing.assert_frame_equal(st.read(slice(25, 40)),
                                  expected[expected.frame >= 25].reset_index(drop=True))
    st.remove_temporary()
    assert len(pd.read_hdf(path, "features")) == len(expected)
    assert len(pd.read_hdf(path, "features", where="frame >= 30")) == 0  # index rebuilt
    st.append_chunk(30, 40, stray)
    pd.testing.assert_frame_equal(st.read(slice(30, 40)), stray.reset_index(drop=True))


def _tear_last_table_chunk(path, key="features"):
    """Overwrite bytes in the middle of the table's last HDF5 chunk, as a write cut short
    by a kill leaves it."""
    with h5py.File(path, "r") as f:
        dset = f[key + "/table"]
        info = dset.id.get_chunk_info(dset.id.get_num_chunks() - 1)
        first_row = info.chunk_offset[0]
    with open(path, "r+b") as f:
        f.seek(info.byte_offset + info.size // 2)
        f.write(b"\0" * 64)
    return first_row


@pytest.mark.slow
def test_a_torn_last_chunk_is_reported_then_repaired(tmp_path):
    path = tmp_path / "torn.h5"
    # 16 chunks of 10 frames x 7 rows: the table's HDF5 chunks hold 819 rows.
    st, expected = filled_store(path, n_chunks=16)
    first_torn_row = _tear_last_table_chunk(path)
    assert 0 < first_torn_row < len(expected)
    mark_writer_killed(st)
    with pytest.raises(DamagedStoreError, match="run the same job again"):
        st.read()
    intact = expected.iloc[:first_torn_row]
    last_intact_frame = int(intact.frame.iloc[-1]) // 10 * 10  # whole chunks only
    pd.testing.assert_frame_equal(st.read(slice(0, last_intact_frame)),
                                  expected[expected.frame < last_intact_frame])
    st.remove_temporary()  # what a resumed batch does first
    kept = st.complete_chunks()
    assert kept == [(a, a + 10) for a in range(0, last_intact_frame, 10)]
    assert not os.path.exists(st.lock_path)  # no key noted: no lock file left
    want = expected[expected.frame < last_intact_frame]
    pd.testing.assert_frame_equal(st.read(), want)
    pd.testing.assert_frame_equal(pd.read_hdf(path, "features").reset_index(drop=True), want)
    with pd.HDFStore(path, "r") as hs:
        assert "frame" in hs.get_storer("features").table.colindexes
    for a in range(last_intact_frame, 160, 10):  # the lost chunks are written again
        st.append_chunk(a, a + 10, fake_features(range(a, a + 10), 7, seed=a))
    pd.testing.assert_frame_equal(st.read(), expected)
    got = pd.read_hdf(path, "features", where="frame >= 150 & frame < 152")
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  expected[expected.frame.between(150, 151)].reset_index(drop=True))


def test_jobs_writing_other_keys_of_the_file_leave_a_killed_writers_note(tmp_path):
    """Two result sets in one file take turns; a writer killed on one key is repaired
    when that key is written again, whatever was written to the other key meanwhile."""
    path = tmp_path / "two.h5"
    a, expected_a = filled_store(path, n_chunks=3, table="a/features")
    b, expected_b = filled_store(path, n_chunks=2, table="b/features")
    stray = fake_features(range(30, 40), 5, seed=5)
    stray.index = pd.RangeIndex(len(expected_a), len(expected_a) + len(stray))
    with pd.HDFStore(path, "a") as hs:  # a's writer died after writing rows
        hs.append("a/features", stray[COLUMNS + ["frame"]], format="table",
                  data_columns=True, index=False)
    mark_writer_killed(a)
    b.append_chunk(20, 30, fake_features(range(20, 30), 7, seed=20))
    assert "/a/features" in json.loads(open(a.lock_path).read())  # still noted
    pd.testing.assert_frame_equal(a.read(), expected_a)
    a.remove_temporary()
    assert not os.path.exists(a.lock_path)  # the note repaired: nothing left
    assert len(pd.read_hdf(path, "a/features")) == len(expected_a)
    assert len(pd.read_hdf(path, "b/features")) == len(expected_b) + 70


def test_a_torn_metadata_write_falls_back_to_the_previous_version(tmp_path):
    path = tmp_path / "m.h5"
    st, _ = filled_store(path, n_chunks=1)
    first = st.read_metadata()
    second = dict(first, note="second")
    st.write_metadata(second)
    with h5py.File(path, "r+") as f:  # a rewrite cut short: half old, half garbage
        node = f["features/daskloc_metadata"]
        node[len(node) // 2:] = 0
    assert st.read_metadata() == first
    mark_writer_killed(st)
    st.remove_temporary()
    with h5py.File(path, "r") as f:
        assert json.loads(f["features/daskloc_metadata"][()].tobytes()) == first


def test_a_damaged_table_header_is_a_clear_error(tmp_path):
    """A kill can tear HDF5's own structures (here: the table's object header); that is
    reported with the way out, and clear (overwrite=True) still works."""
    path = tmp_path / "h.h5"
    st, _ = filled_store(path, n_chunks=2)
    with h5py.File(path, "r") as f:
        header = h5py.h5o.get_info(f["features/table"].id).addr
    with open(path, "r+b") as f:
        # A version-1 object header: 16 bytes, then messages (type, size, flags, data).
        f.seek(header)
        version, _, n_messages = struct.unpack("<BBH", f.read(4))
        assert version == 1
        at = header + 16
        for _ in range(n_messages):
            f.seek(at)
            kind, size = struct.unpack("<HH", f.read(4))
            if kind == 3:  # the datatype: the table's compound type
                f.seek(at + 8)
                f.write(b"\xff" * size)
                break
            at += 8 + size
        else:
            raise AssertionError("no datatype message")
    mark_writer_killed(st)
    with pytest.raises(DamagedStoreError, match="overwrite=True"):
        st.read()
    with pytest.raises(DamagedStoreError, match="overwrite=True"):
        st.remove_temporary()
    st.clear()  # what overwrite=True does first
    assert not path.exists()
    filled_store(path, n_chunks=1)


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, pandas as pd
    from daskloc.stores.hdf5 import HDF5Store
    sys.path.insert(0, sys.argv[2])
    from tests.stores.test_hdf5 import fake_features, metadata

    st = HDF5Store(sys.argv[1], table="run/features")
    st.prepare()
    if st.read_metadata() is None:
        st.write_metadata(metadata(100000, 10))
    st.remove_temporary()
    done = st.complete_chunks()
    print("ready", flush=True)
    for a in range(done[-1][1] if done else 0, 100000, 10):
        st.append_chunk(a, a + 10, fake_features(range(a, a + 10), 300, seed=a))
        st.write_metadata(dict(metadata(100000, 10), done=a + 10))
    """
)


@pytest.mark.slow
def test_sigkill_at_random_points_while_writing(tmp_path):
    """A writer appending as fast as it can (so the kill lands inside HDF5 writes) is
    killed at random moments; every time, the file opens, reads return only whole
    chunks or raise DamagedStoreError, and resuming repairs it and goes on."""
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    path = tmp_path / "killed.h5"
    st = HDF5Store(path, table="run/features")
    rng = random.Random(1)
    outcomes = []
    for _ in range(8):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(path), ROOT],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        try:
            assert proc.stdout.readline() == b"ready\n", proc.stderr.read().decode()
            time.sleep(rng.uniform(0.05, 0.6))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        try:
            chunks = st.complete_chunks()
            assert chunks == [(a, a + 10) for a in range(0, 10 * len(chunks), 10)]
            try:
                got = st.read()
            except DamagedStoreError as exc:
                assert "run the same job again" in str(exc)
                outcomes.append("torn, reported")
            else:
                want = pd.concat([fake_features(range(a, b), 300, seed=a) for a, b in chunks]
                                 + [fake_features([], 300)], ignore_index=True)
                pd.testing.assert_frame_equal(got, want)
                outcomes.append("intact")
            st.remove_temporary()
        except DamagedStoreError as exc:  # HDF5's own structures torn: reported, not hidden
            assert "overwrite=True" in str(exc)
            outcomes.append("unrepairable")
            st.clear()
            continue
        chunks = st.complete_chunks()
        want = pd.concat([fake_features(range(a, b), 300, seed=a) for a, b in chunks]
                         + [fake_features([], 300)], ignore_index=True)
        pd.testing.assert_frame_equal(st.read(), want)
        assert len(pd.read_hdf(path, "run/features")) == len(want)
    assert outcomes.count("unrepairable") <= 1, outcomes  # about 1 kill in 400 in our runs
    chunks = st.complete_chunks()
    assert len(chunks) > 0


@pytest.mark.slow
def test_batch_resumes_after_repeated_sigkills(tmp_path):
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=13)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    path = tmp_path / "resumed.h5"
    rng = random.Random(7)
    for _ in range(3):
        proc = start_batch_process(tmp_path, arr, path, delay=0.1, chunks=2,
                                   store_kwargs={"table": KEY})
        time.sleep(rng.uniform(1.5, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    batch(as_video(arr, chunks=2), DIAMETER, store=path, table=KEY, do_not_return=True,
          **PARAMS)
    pd.testing.assert_frame_equal(read_features(path, table=KEY), reference)
    pd.testing.assert_frame_equal(pd.read_hdf(path, KEY).reset_index(drop=True), reference)
    assert store_info(path, table=KEY)["complete"]


# ----------------------------------------------------------------- other processes


_HOLD = textwrap.dedent(
    """
    import sys, time
    import pandas as pd
    hs = pd.HDFStore(sys.argv[1], mode=sys.argv[2])
    print("open", flush=True)
    time.sleep(float(sys.argv[3]))
    hs.close()
    """
)


def hold_open(tmp_path, path, mode, seconds):
    """Another program (plain pandas) keeping the file open."""
    script = tmp_path / "hold.py"
    script.write_text(_HOLD)
    proc = subprocess.Popen([sys.executable, str(script), str(path), mode, str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"open\n", proc.stderr.read().decode()
    return proc


@pytest.mark.slow
def test_a_plain_reader_holding_the_file_makes_the_writer_wait(tmp_path):
    path = tmp_path / "held.h5"
    st, expected = filled_store(path, n_chunks=2)
    proc = hold_open(tmp_path, path, "r", 1.0)
    try:
        started = time.monotonic()
        st.append_chunk(20, 30, fake_features(range(20, 30), 7, seed=20))  # waits, then writes
        assert time.monotonic() - started > 0.5
    finally:
        proc.wait()
    assert st.complete_chunks()[-1] == (20, 30)
    impatient = HDF5Store(path, lock_timeout=0.3)
    proc = hold_open(tmp_path, path, "r", 5.0)
    try:
        with pytest.raises(StoreBusyError) as err:
            impatient.append_chunk(30, 40, fake_features(range(30, 40), 7, seed=30))
    finally:
        proc.kill()
        proc.wait()
    message = str(err.value)
    assert "HDFStore.close()" in message and "Parquet" in message
    assert impatient.complete_chunks()[-1] == (20, 30)


def test_a_reader_facing_a_foreign_writer_is_told_why_and_what_instead(tmp_path):
    path = tmp_path / "foreign.h5"
    st, _ = filled_store(path, n_chunks=1)
    proc = hold_open(tmp_path, path, "a", 5.0)  # e.g. a trackpy/pandas writer
    try:
        with pytest.raises(StoreBusyError) as err:
            HDF5Store(path, lock_timeout=0.3).read()
    finally:
        proc.kill()
        proc.wait()
    message = str(err.value)
    assert "open for writing" in message
    assert "HDF5 lets no process open a file while another writes it" in message
    assert "Parquet, Zarr or SQL" in message


@pytest.mark.slow
def test_plain_pandas_reads_while_a_batch_writes(tmp_path):
    """Between chunks plain pandas opens the file and sees whole chunks, sorted; during
    a chunk's write it gets HDF5's lock error (it does not know daskloc's lock)."""
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=9)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    per_chunk = reference.groupby(reference.frame // 2).size()
    path = tmp_path / "live.h5"
    proc = start_batch_process(tmp_path, arr, path, delay=0.2, chunks=2,
                               store_kwargs={"table": KEY})
    refusals = []

    def observe():
        try:
            got = pd.read_hdf(path, KEY).reset_index(drop=True)
        except (KeyError, FileNotFoundError, OSError):
            return None  # no table yet
        except (tables.HDF5ExtError, ValueError) as exc:
            # HDF5's own lock refusal, or the table not created yet; the exact
            # wording varies with where in the writer's update the open lands.
            refusals.append(str(exc))
            return "refused"
        if not len(got):
            return None
        last = int(got.frame.iloc[-1]) // 2
        assert len(got) == per_chunk.loc[:last].sum()  # whole chunks only
        pd.testing.assert_frame_equal(got, reference.iloc[: len(got)].reset_index(drop=True))
        return "seen"

    counts = watch_run(proc, observe, interval=0.02)
    seen, refused, last_refusal = counts["seen"], counts["refused"], refusals[-1:]
    assert seen >= 2, (seen, refused, last_refusal)
    pd.testing.assert_frame_equal(pd.read_hdf(path, KEY).reset_index(drop=True), reference)


# ----------------------------------------------------------------- the conformance suite


class TestHDF5Store(DasklocStoreTests):
    """The package's store conformance suite on an HDF5 file."""

    backend = "hdf5"
    store_class = HDF5Store
    capabilities = {"supports_remote": False, "lists_tables": True, "concurrent_writers": False,
                    "ordered_appends": True, "live_reads": True}
