"""daskloc.stores.zarr: the ragged Zarr table, its index and watermark, and plain readers.

The backend-agnostic behaviour (append, chunks, metadata, tables, pickling, resume and
live reads through daskloc) is the package's conformance suite
(daskloc.testing.stores.StoreTests, run by TestZarrStore at the end); here: the layout, what a frame
range read touches, stepped selections, the watermark protocol (rows beyond it ignored,
cut off, readers in another process), SIGKILL in the middle of an append, and reading
the store with plain xarray / zarr.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import dask
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import zarr
from zarr.storage import LocalStore

from daskloc.locate import locate_stack
from daskloc.pipeline import batch
from daskloc.schema import feature_columns
from daskloc.stores import open_store, read_features, store_info
from daskloc.stores.zarr import ZarrStore
from daskloc.testing._batch import watch_run
from tests.conftest import DIAMETER, PARAMS, CountingArray, as_video, make_spots
from tests.stores._suite import DasklocStoreTests

FIRST = 100  # absolute number of the first frame of the test videos
COLUMNS = list(feature_columns())  # the schema (daskloc.schema)
IDX = "_daskloc"  # the sub-group of a table's group holding its index arrays
OFFSETS, RANGES, WM = f"{IDX}/frame_offsets", f"{IDX}/chunk_ranges", f"{IDX}/watermark"


@pytest.fixture(scope="module")
def video_and_ref():
    arr = make_spots(n_frames=24, seed=11, black=range(12, 16))
    ref = locate_stack(arr, DIAMETER, frame_numbers=np.arange(FIRST, FIRST + 24), **PARAMS)
    return arr, ref


@pytest.fixture
def full_store(video_and_ref, tmp_path):
    """Frames 100..123 in 4-frame chunks; 16-row zarr chunks so a table spans many."""
    arr, _ = video_and_ref
    path = tmp_path / "f.zarr"
    batch(as_video(arr, chunks=4, first_frame=FIRST), DIAMETER,
          store=ZarrStore(path, chunk_rows=16), do_not_return=True, **PARAMS)
    return path


def expect(ref, frames):
    return ref[ref.frame.isin(list(frames))].reset_index(drop=True)


def watermark(path, group=""):
    return dict(zip(("n_chunks", "n_rows", "frame_origin", "frame_stop", "generation"),
                    (int(v) for v in zarr.open_array(os.path.join(path, group, WM),
                                                     mode="r")[:])))


def stored_length(path, name, group=""):
    """Length of an array as its zarr.json says now (what a writer has resized it to)."""
    with open(os.path.join(path, group, name, "zarr.json")) as f:
        return json.load(f)["shape"][0]


# ----------------------------------------------------------------- layout


def test_layout_codecs_index_and_json_metadata(full_store, video_and_ref):
    _, ref = video_and_ref
    g = zarr.open_group(full_store, mode="r", use_consolidated=False)
    # The table's group holds the columns only; the index is in the sub-group _daskloc.
    assert set(g.array_keys()) == set(COLUMNS) | {"frame"}
    assert set(g.group_keys()) == {IDX}
    assert set(g[IDX].array_keys()) == {"frame_offsets", "chunk_ranges", "watermark"}
    assert g[IDX].attrs["daskloc_role"] == "bookkeeping"
    for name in ("frame_offsets", "chunk_ranges", "watermark"):
        assert g[IDX][name].attrs["daskloc_role"] == name
    n = len(ref)
    for name in COLUMNS + ["frame"]:
        a = g[name]
        assert a.shape == (n,) and a.chunks == (16,)
        assert a.metadata.dimension_names == ("feature",)
        assert a.dtype == (np.int64 if name == "frame" else np.float64)
        (codec,) = a.compressors
        assert (codec.cname.value, codec.clevel) == ("zstd", 5)
        assert codec.shuffle.value == ("bitshuffle" if name == "frame" else "shuffle")
        assert a.attrs["daskloc_role"] == "column"
    assert g["y"].attrs["units"] == "pixel"

    mark = watermark(full_store)
    assert mark["n_chunks"] == 6 and mark["n_rows"] == n
    assert (mark["frame_origin"], mark["frame_stop"]) == (100, 124)
    offsets = g[OFFSETS][:]
    assert g[OFFSETS].metadata.dimension_names == ("frame_edge",)
    frame = g["frame"][:]
    # entry k is the first row of frame 100 + k; the last entry is the end of the table
    np.testing.assert_array_equal(offsets, np.searchsorted(frame, np.arange(100, 125)))
    ranges = g[RANGES][:]
    assert [tuple(r[:2]) for r in ranges] == [(a, a + 4) for a in range(100, 124, 4)]
    np.testing.assert_array_equal(ranges[:, 2], offsets[ranges[:, 0] - 100])
    np.testing.assert_array_equal(ranges[:, 3], offsets[ranges[:, 1] - 100])

    # The metadata is the group's JSON document: no pickle anywhere.
    with open(full_store / "zarr.json") as f:
        doc = json.load(f)
    assert doc["zarr_format"] == 3 and doc["node_type"] == "group"
    assert doc["attributes"]["daskloc"] == open_store(full_store).read_metadata()
    assert doc["attributes"]["daskloc"]["params"]["minmass"] == PARAMS["minmass"]
    # ... with the finished job's consolidated metadata (for plain xarray), shapes as
    # committed
    meta = doc["consolidated_metadata"]["metadata"]
    assert meta["y"]["shape"] == [n] and meta[WM]["shape"] == [5]
    assert meta[OFFSETS]["shape"] == [25] and meta[RANGES]["shape"] == [6, 6]
    assert not [p for p in full_store.rglob("*") if p.name.endswith((".partial", ".pkl"))]


def test_metadata_must_be_json(tmp_path):
    st = ZarrStore(tmp_path / "m.zarr")
    st.prepare()
    with pytest.raises(ValueError, match="JSON"):
        st.write_metadata({"format": "daskloc-features", "x": float("nan")})
    with pytest.raises(ValueError, match="JSON"):
        st.write_metadata({"format": "daskloc-features", "x": object()})
    assert st.read_metadata() is None
    zarr.open_group(tmp_path / "m.zarr", mode="r+").attrs["daskloc"] = {"format": "other"}
    with pytest.raises(ValueError, match="not daskloc feature-store metadata"):
        st.read_metadata()
    with pytest.raises(ValueError, match="local path"):
        ZarrStore(tmp_path / "x.zarr", storage_options={"anon": True})


# ----------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "frames, wanted",
    [
        (None, range(100, 124)),
        (slice(105, 111), range(105, 111)),
        (range(100, 124, 3), range(100, 124, 3)),
        ([117, 101, 117, 103], [101, 103, 117]),
        (110, [110]),
        (slice(None, 104), range(100, 104)),
        (slice(120, None), range(120, 124)),
    ],
)
def test_read_selections(full_store, video_and_ref, frames, wanted):
    _, ref = video_and_ref
    got = read_features(full_store, frames)
    assert isinstance(got.index, pd.RangeIndex)
    assert list(got.dtypes) == [np.float64] * 8 + [np.int64]
    pd.testing.assert_frame_equal(got, expect(ref, wanted))


class KeyLog:
    """Records every key zarr reads from a LocalStore in this process."""

    def __init__(self, monkeypatch):
        self.keys = []
        original = LocalStore.get
        log = self

        async def get(self, key, prototype=None, byte_range=None):
            log.keys.append(key)
            return await original(self, key, prototype, byte_range)

        monkeypatch.setattr(LocalStore, "get", get)

    def chunks(self):
        """The chunk keys read (``name/c/i``), metadata documents left out."""
        return sorted(k for k in self.keys if "/c/" in k)


def chunk_keys(names, first, last, size):
    return sorted(f"{n}/c/{i}" for n in names for i in range(first // size, last // size + 1))


def test_a_frame_range_reads_only_the_chunks_holding_it(full_store, video_and_ref, monkeypatch):
    """Counting the keys zarr reads: the watermark, the index entries, the rows' chunks."""
    _, ref = video_and_ref
    frame = zarr.open_array(full_store / "frame", mode="r")[:]
    log = KeyLog(monkeypatch)
    got = read_features(full_store, slice(117, 119))
    pd.testing.assert_frame_equal(got, expect(ref, [117, 118]))
    r0, r1 = np.searchsorted(frame, [117, 119])
    assert r1 - r0 > 0 and len(frame) > 4 * 16  # the table spans many 16-row chunks
    # the watermark, the chunk table (each chunk's identity is checked), the index entries
    want = [f"{WM}/c/0", f"{RANGES}/c/0/0"] + chunk_keys([OFFSETS], 17, 19, 16)
    want += chunk_keys(COLUMNS + ["frame"], r0, r1 - 1, 16)
    assert log.chunks() == sorted(want)
    # metadata documents: the group (daskloc metadata) and each array opened, once each
    docs = [k for k in log.keys if k.endswith("zarr.json")]
    assert set(docs) == {"zarr.json"} | {f"{n}/zarr.json" for n in COLUMNS + [
        "frame", OFFSETS, RANGES, WM]}

    # Two far-apart frames: only the chunks around each one.
    log.keys.clear()
    got = read_features(full_store, [101, 122])
    pd.testing.assert_frame_equal(got, expect(ref, [101, 122]))
    a0, a1 = np.searchsorted(frame, [101, 102])
    b0, b1 = np.searchsorted(frame, [122, 123])
    want = [f"{WM}/c/0", f"{RANGES}/c/0/0", f"{OFFSETS}/c/0", f"{OFFSETS}/c/1"]
    want += sorted(set(chunk_keys(COLUMNS + ["frame"], a0, a1 - 1, 16))
                   | set(chunk_keys(COLUMNS + ["frame"], b0, b1 - 1, 16)))
    assert log.chunks() == sorted(want)
    assert not set(log.chunks()) & set(chunk_keys(["y"], a1 + 16, b0 - 16, 16))

    # Frames that hold no rows (the black frames 112..115) read index entries only.
    log.keys.clear()
    assert len(read_features(full_store, slice(112, 116))) == 0
    assert log.chunks() == sorted([f"{WM}/c/0", f"{RANGES}/c/0/0"]
                                  + chunk_keys([OFFSETS], 12, 16, 16))


@pytest.mark.slow
def test_one_store_object_read_from_many_threads(full_store, video_and_ref):
    """Handles are opened lazily and shared: first reads racing in threads are safe (as
    when the Dask DataFrame batch returns is computed with the threaded scheduler)."""
    _, ref = video_and_ref
    for _ in range(5):
        st = open_store(full_store)
        with ThreadPoolExecutor(8) as pool:
            parts = list(pool.map(lambda a, st=st: st.read(slice(a, a + 4)), range(100, 124, 4)))
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), ref)


def test_a_corrupt_chunk_breaks_only_reads_of_its_rows(full_store, video_and_ref):
    _, ref = video_and_ref
    frame = zarr.open_array(full_store / "frame", mode="r")[:]
    (full_store / "y" / "c" / "0").write_bytes(b"not blosc at all")  # rows 0..15
    last_bad = int(frame[15])
    later = range(last_bad + 1, 124)
    pd.testing.assert_frame_equal(read_features(full_store, later), expect(ref, later))
    with pytest.raises(Exception):  # noqa: B017 - whatever the codec raises
        read_features(full_store, slice(100, 101))


def test_stepped_selection_gaps_and_resume(tmp_path):
    """frames 0, 3, 6, ...: chunks hold non-contiguous frames; gaps between chunks."""
    arr = make_spots(n_frames=24, shape=(64, 64), n_particles=4, seed=4)
    frames = np.arange(0, 72, 3)
    ref = locate_stack(arr, DIAMETER, frame_numbers=frames, **PARAMS)
    path = tmp_path / "stepped.zarr"

    def video(a):
        return as_video(a, chunks=8).assign_coords(frame=frames)

    def fail_on_chunk_1(first):
        if first == 8:
            raise RuntimeError("reader broke")

    with dask.config.set(scheduler="synchronous"):  # chunk 0 is done when chunk 1 fails
        with pytest.raises(RuntimeError, match="reader broke"):
            batch(video(CountingArray(arr, on_read=fail_on_chunk_1)), DIAMETER, store=path,
                  **PARAMS)
    st = open_store(path)
    assert st.complete_chunks() == [(0, 22)]  # 0, 3, ..., 21
    pd.testing.assert_frame_equal(st.read(), expect(ref, frames[:8]))

    counting = CountingArray(arr)
    out = batch(video(counting), DIAMETER, store=path, **PARAMS)
    assert sorted(counting.reads) == [8, 16]  # only the two missing chunks
    assert st.complete_chunks() == [(0, 22), (24, 46), (48, 70)]
    assert out.divisions == (0, 24, 48, 69)
    mark = watermark(path)
    assert (mark["frame_origin"], mark["frame_stop"]) == (0, 70)
    offsets = zarr.open_array(path / OFFSETS, mode="r")[:]
    assert len(offsets) == 71  # every integer frame 0..69 has an entry, and the end
    assert offsets[22] == offsets[23] == offsets[24]  # 22, 23: between chunks, no rows
    assert offsets[4] == offsets[5] == offsets[6]  # 4, 5: not selected, no rows
    pd.testing.assert_frame_equal(read_features(path), ref)
    pd.testing.assert_frame_equal(read_features(path, slice(4, 20)), expect(ref, range(6, 20, 3)))
    pd.testing.assert_frame_equal(read_features(path, [5, 7, 22, 23]), expect(ref, []))
    pd.testing.assert_frame_equal(read_features(path, range(0, 70, 6)),
                                  expect(ref, range(0, 70, 6)))
    info = store_info(path)
    assert info["complete"] and info["frames_complete"] == 24 and info["n_features"] == len(ref)


# ----------------------------------------------------------------- the watermark


def _write_beyond_watermark(path):
    """Leave what a writer killed mid-append leaves: rows, index entries and a chunk range
    past the watermark (arrays already resized), and zarr's temporary files. (A writer
    removes the consolidated metadata before its first append: so does this.)"""
    g = zarr.open_group(path, mode="r+", use_consolidated=False)
    g.update_attributes({})  # its zarr.json written again, without consolidated metadata
    assert "consolidated_metadata" not in json.loads((path / "zarr.json").read_text())
    mark = watermark(path)
    extra = 5
    for name in COLUMNS + ["frame"]:
        a = g[name]
        a.resize((mark["n_rows"] + extra,))
        a[mark["n_rows"]:] = np.full(extra, 7, dtype=a.dtype)
    o = g[OFFSETS]
    n = o.shape[0]
    o.resize((n + 3,))
    o[n:] = mark["n_rows"] + extra
    c = g[RANGES]
    n = c.shape[0]
    c.resize((n + 1, c.shape[1]))
    c[n] = [mark["frame_stop"], mark["frame_stop"] + 3, mark["n_rows"], mark["n_rows"] + extra,
            1, 2]
    (path / "zarr.0123abcd.partial").write_text("{")
    (path / "y" / "c" / "1.0123abcd.partial").write_bytes(b"half")
    return mark


def test_rows_beyond_the_watermark_are_ignored_then_cut_off(full_store, video_and_ref):
    _, ref = video_and_ref
    st = open_store(full_store)
    chunks = st.complete_chunks()
    mark = _write_beyond_watermark(full_store)
    assert stored_length(full_store, "y") == mark["n_rows"] + 5
    pd.testing.assert_frame_equal(read_features(full_store), ref)
    assert st.complete_chunks() == chunks and st.n_rows() == len(ref)
    pd.testing.assert_frame_equal(read_features(full_store, slice(120, 124)),
                                  expect(ref, range(120, 124)))

    st.remove_temporary()  # what batch does on resume
    for name in COLUMNS + ["frame"]:
        assert stored_length(full_store, name) == mark["n_rows"]
    assert stored_length(full_store, OFFSETS) == 25
    assert stored_length(full_store, RANGES) == 6
    assert not list(full_store.rglob("*.partial"))
    ds = xr.open_zarr(full_store, consolidated=False)  # consistent again for plain readers
    assert ds.sizes["feature"] == len(ref)


def test_the_next_append_cuts_off_what_a_killed_writer_left(tmp_path):
    st = ZarrStore(tmp_path / "a.zarr", chunk_rows=8)
    st.prepare()
    meta = {"format": "daskloc-features", "format_version": 2,
            "source": {"frames": {"start": 0, "stop": 30}},
            "columns": {"y": "float64", "frame": "int64"}}
    st.write_metadata(meta)

    def part(frames, per_frame):
        f = np.repeat(np.asarray(frames, dtype=np.int64), per_frame)
        return pd.DataFrame({"y": f * 10.0 + np.arange(f.size), "frame": f})

    st.append_chunk(0, 10, part(range(10), 3))
    g = zarr.open_group(tmp_path / "a.zarr", mode="r+")
    g["y"].resize((50,))
    g["y"][30:] = -1.0
    g["frame"].resize((50,))
    g["frame"][30:] = 99
    st.append_chunk(10, 20, part([12, 15], 2))  # killed writer's rows: overwritten
    assert zarr.open_array(tmp_path / "a.zarr" / "y", mode="r").shape == (34,)
    want = pd.concat([part(range(10), 3), part([12, 15], 2)], ignore_index=True)
    pd.testing.assert_frame_equal(st.read(), want)
    assert st.complete_chunks() == [(0, 10), (10, 20)]


def test_appends_write_whole_chunks_without_reading_them_back(tmp_path, monkeypatch):
    """The writer keeps the partly filled last chunk of every array: an append writes from
    that chunk's first row and zarr never GETs a chunk to merge into it. A new writer
    (after a restart) reads those rows once."""
    path = tmp_path / "t.zarr"
    st = ZarrStore(path, chunk_rows=8)
    st.prepare()
    st.write_metadata({"format": "daskloc-features", "format_version": 2,
                       "source": {"frames": {"start": 0, "stop": 30}},
                       "columns": {"y": "float64", "frame": "int64"}})

    def part(frames, per_frame):
        f = np.repeat(np.asarray(frames, dtype=np.int64), per_frame)
        return pd.DataFrame({"y": f * 10.0 + np.arange(f.size), "frame": f})

    parts = [part(range(0, 10), 3), part([10, 11, 12, 13, 14, 15, 19], 1), part([21, 25], 4)]
    st.append_chunk(0, 10, parts[0])  # 30 rows: chunk 3 (rows 24..31) partly filled
    log = KeyLog(monkeypatch)
    st.append_chunk(10, 20, parts[1])  # 37 rows
    assert log.chunks() == [f"{WM}/c/0"]  # the commit record only
    log.keys.clear()
    again = ZarrStore(path, chunk_rows=8)  # a new writer: no copy of the tails yet
    again.append_chunk(20, 30, parts[2])
    assert log.chunks() == sorted([f"{WM}/c/0", "y/c/4", "frame/c/4",
                                   f"{OFFSETS}/c/2", f"{RANGES}/c/0/0"])
    pd.testing.assert_frame_equal(again.read(), pd.concat(parts, ignore_index=True))
    offsets = zarr.open_array(path / OFFSETS, mode="r")[:]
    np.testing.assert_array_equal(offsets, np.searchsorted(again.read().frame, np.arange(31)))


_SLOW_COMMIT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, dask.array as da, xarray as xr, zarr
    from daskloc.pipeline import batch

    npy, store, chunks, commit_delay, params = sys.argv[1:6]
    commit_delay = float(commit_delay)
    # Widen the window between an append's data and its watermark, where a kill or a
    # reader would find rows beyond the watermark.
    _setitem = zarr.Array.__setitem__

    def slow_commit(self, key, value):
        if self.path.endswith("watermark"):
            time.sleep(commit_delay)
        _setitem(self, key, value)

    zarr.Array.__setitem__ = slow_commit
    arr = np.load(npy)
    data = da.from_array(arr, chunks=(int(chunks), -1, -1))
    video = xr.DataArray(data, dims=("frame", "y", "x"),
                         coords={"frame": np.arange(len(arr), dtype=np.int64)})
    params = json.loads(params)
    batch(video, params.pop("diameter"), store=store, do_not_return=True, **params)
    """
)


def start_slow_commit_batch(tmp_path, arr, store, *, chunks, commit_delay):
    npy = tmp_path / "video.npy"
    np.save(npy, arr)
    script = tmp_path / "slow_commit_batch.py"
    script.write_text(_SLOW_COMMIT_SCRIPT)
    params = dict(PARAMS, diameter=DIAMETER)
    return subprocess.Popen(
        [sys.executable, str(script), str(npy), str(store), str(chunks), str(commit_delay),
         json.dumps(params)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def uncommitted_rows(path):
    """Rows the columns hold beyond the watermark right now (None: no layout yet)."""
    try:
        mark = watermark(path)
        return stored_length(path, "y") - mark["n_rows"], mark
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return None, None


@pytest.mark.slow
def test_sigkill_in_the_middle_of_an_append_then_resume(tmp_path):
    """Kill the writer after an append wrote its rows but before its watermark."""
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=7)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    store = tmp_path / "killed.zarr"
    proc = start_slow_commit_batch(tmp_path, arr, store, chunks=2, commit_delay=0.5)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            extra, mark = uncommitted_rows(store)
            if extra and mark["n_chunks"] >= 3:
                break
            if proc.poll() is not None:
                pytest.fail(f"batch ended before the kill: {proc.stderr.read().decode()}")
            time.sleep(0.01)
        else:
            pytest.fail("never saw an append in progress")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    extra, mark = uncommitted_rows(store)
    assert extra > 0, "the kill must land between an append's rows and its watermark"
    n_done = mark["n_chunks"]
    assert 3 <= n_done < 20
    done = open_store(store).complete_chunks()
    assert done == [(a, a + 2) for a in range(0, 2 * n_done, 2)]
    pd.testing.assert_frame_equal(read_features(store), expect(reference, range(2 * n_done)))

    counting = CountingArray(arr)
    starts = []
    batch(as_video(counting, chunks=2), DIAMETER, store=store, do_not_return=True,
          progress=lambda d, t, n: starts.append(d), **PARAMS)
    assert starts[0] == n_done and len(counting.reads) == 20 - n_done
    uninterrupted = tmp_path / "uninterrupted.zarr"
    batch(as_video(arr, chunks=2), DIAMETER, store=uninterrupted, do_not_return=True, **PARAMS)
    got, want = read_features(store), read_features(uninterrupted)
    pd.testing.assert_frame_equal(got, want)  # row for row
    pd.testing.assert_frame_equal(got, reference)
    for name in COLUMNS + ["frame"]:  # nothing of the killed append is left
        assert stored_length(store, name) == len(reference)
        np.testing.assert_array_equal(zarr.open_array(store / name, mode="r")[:],
                                      zarr.open_array(uninterrupted / name, mode="r")[:])
    assert not list(store.rglob("*.partial"))


@pytest.mark.slow
def test_readers_in_another_process_trust_only_the_watermark(tmp_path):
    """While a slow-committing writer runs, plain zarr readers following the watermark and
    daskloc readers see exactly the complete chunks, though rows beyond it exist."""
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=9)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    store = tmp_path / "live.zarr"
    proc = start_slow_commit_batch(tmp_path, arr, store, chunks=2, commit_delay=0.15)

    def observe():
        extra, mark = uncommitted_rows(store)
        if mark is None or not mark["n_chunks"]:
            return None
        # The documented protocol, with zarr only: watermark first, then rows below it.
        g = zarr.open_group(store, mode="r", use_consolidated=False)
        n_chunks, n_rows, origin, stop, _ = (int(v) for v in g[WM][:])
        frame = g["frame"][:n_rows]
        x = g["x"][:n_rows]
        want = reference[reference.frame < stop]
        np.testing.assert_array_equal(frame, want.frame.to_numpy())
        np.testing.assert_array_equal(x, want.x.to_numpy())
        offsets = g[OFFSETS][: stop - origin + 1]
        assert offsets[-1] == n_rows
        # And through daskloc: a prefix of whole chunks, at least those complete before.
        st = open_store(store)
        before = st.complete_chunks()
        got = st.read()
        after = st.complete_chunks()
        bounds = [b for _, b in after if b >= before[-1][1]]
        b = next((b for b in bounds if len(got) == int((reference.frame < b).sum())), None)
        assert b is not None, f"read {len(got)} rows: not a prefix of whole chunks"
        pd.testing.assert_frame_equal(got, expect(reference, range(b)))
        return "uncommitted" if extra else "committed"

    seen = watch_run(proc, observe, interval=0.02)
    plain = daskloc_reads = seen["uncommitted"] + seen["committed"]
    saw_uncommitted = seen["uncommitted"]
    assert plain >= 3 and daskloc_reads >= 3, "the readers never overlapped the run"
    assert saw_uncommitted >= 1, "never observed rows beyond the watermark"
    pd.testing.assert_frame_equal(read_features(store), reference)


# ----------------------------------------------------------------- plain readers


def test_plain_xarray_and_zarr_read_the_store(full_store, video_and_ref):
    """Default arguments, no warning: the table's group holds its columns only (the
    index is in a sub-group) and has consolidated metadata once the job is done."""
    _, ref = video_and_ref
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(full_store)
        df = ds.to_dataframe()
    assert set(ds.data_vars) == set(COLUMNS) | {"frame"} and set(ds.dims) == {"feature"}
    for name in COLUMNS + ["frame"]:
        assert ds[name].dims == ("feature",)
        np.testing.assert_array_equal(ds[name].values, ref[name].to_numpy())
    assert ds.frame.dtype == np.int64  # no fill-value masking of frame numbers
    assert ds.attrs["daskloc"]["params"]["minmass"] == PARAMS["minmass"]
    assert df.index.name == "feature"
    pd.testing.assert_frame_equal(df[list(ref.columns)].reset_index(drop=True), ref)
    pd.testing.assert_frame_equal(df[list(ref.columns)].reset_index(drop=True),
                                  read_features(full_store))

    # the index with xarray: the sub-group
    idx = xr.open_zarr(full_store, group=IDX)
    assert idx.frame_offsets.dims == ("frame_edge",)
    assert idx.watermark.dims == ("watermark_field",)

    # frames 105..110 with zarr alone: one slice of every column
    g = zarr.open_group(full_store, mode="r")
    _, n_rows, origin, _, _ = g[WM][:]
    o = g[OFFSETS]
    rows = slice(int(o[105 - origin]), int(o[111 - origin]))
    part = pd.DataFrame({c: g[c][rows] for c in COLUMNS + ["frame"]})
    pd.testing.assert_frame_equal(part, expect(ref, range(105, 111)))


def test_the_module_docstring_examples_run(full_store, video_and_ref):
    """The "Reading without daskloc" examples of daskloc.stores.zarr, as written."""
    import daskloc.stores.zarr as module

    _, ref = video_and_ref
    doc = module.__doc__
    code = doc[doc.index("Reading without daskloc::"):].split("::", 1)[1]
    code = textwrap.dedent(code.split("\n\n", 2)[1])
    scope = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        exec(code.replace('"features.zarr"', repr(str(full_store))), scope)  # noqa: S102
    df = scope["df"]  # xarray orders the variables by name
    pd.testing.assert_frame_equal(df[list(ref.columns)].reset_index(drop=True), ref)
    np.testing.assert_array_equal(scope["y"], expect(ref, range(105, 111)).y.to_numpy())


@pytest.mark.slow
def test_tables_are_groups_xarray_opens(video_and_ref, tmp_path):
    arr, ref = video_and_ref
    path = tmp_path / "many.zarr"
    video = as_video(arr, chunks=4, first_frame=FIRST)
    batch(video, DIAMETER, store=path, do_not_return=True, **PARAMS)  # root group
    batch(video, DIAMETER, store=path, table="bulk_water/features", do_not_return=True,
          minmass=1160)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sub = xr.open_zarr(path, group="bulk_water/features")
        df = sub.to_dataframe()
    strict = read_features(path, table="bulk_water/features")
    assert 0 < len(strict) < len(ref) and (strict.mass > 1160).all()
    np.testing.assert_array_equal(sub.mass.values, strict.mass.to_numpy())
    pd.testing.assert_frame_equal(df[list(strict.columns)].reset_index(drop=True), strict)
    assert (path / "bulk_water" / "features" / IDX / "watermark" / "zarr.json").exists()
    # The consolidated metadata is the root's, and covers every table of the store.
    meta = json.loads((path / "zarr.json").read_text())["consolidated_metadata"]["metadata"]
    assert meta["bulk_water/features/y"]["shape"] == [len(strict)]
    assert meta["y"]["shape"] == [len(ref)]
    assert "bulk_water" in zarr.open_group(path, mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xr.open_zarr(path).sizes["feature"] == len(ref)
    assert open_store(path).list_tables() == ["bulk_water/features"]

    open_store(path).clear()  # the root table goes; the sub-group table stays
    assert not open_store(path, "a").exists()
    assert set(zarr.open_group(path, mode="r").group_keys()) == {"bulk_water"}
    assert not (path / IDX).exists()
    pd.testing.assert_frame_equal(read_features(path, table="bulk_water/features"), strict)
    batch(video, DIAMETER, store=path, do_not_return=True, **PARAMS)  # the root again
    pd.testing.assert_frame_equal(read_features(path), ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert xr.open_zarr(path).sizes["feature"] == len(ref)
        assert xr.open_zarr(path, group="bulk_water/features").sizes["feature"] == len(strict)


def test_a_table_may_not_be_named_like_the_index_group(tmp_path):
    for name in ("_daskloc", "runs/_daskloc", "_DaskLoc/features"):
        with pytest.raises(ValueError, match="reserved"):
            ZarrStore(tmp_path / "r.zarr", table=name)


def test_consolidated_metadata_is_removed_before_a_resumed_job_writes(tmp_path,
                                                                      monkeypatch):
    """A resumed job removes the consolidated metadata before its first append (a plain
    reader meanwhile reads the arrays' own documents, never stale consolidated shapes)
    and writes it again, as committed, when it ends."""
    arr = make_spots(n_frames=12, shape=(64, 64), n_particles=4, seed=3)
    ref = locate_stack(arr, DIAMETER, **PARAMS)
    path = tmp_path / "resumed.zarr"

    def fail_on(first):
        if first == 8:
            raise RuntimeError("reader broke")

    with dask.config.set(scheduler="synchronous"):
        with pytest.raises(RuntimeError, match="reader broke"):
            batch(as_video(CountingArray(arr, on_read=fail_on), chunks=4), DIAMETER,
                  store=path, **PARAMS)
    n_done = watermark(path)["n_rows"]
    assert 0 < n_done < len(ref)

    def consolidated():
        doc = json.loads((path / "zarr.json").read_text())
        meta = doc.get("consolidated_metadata")
        return None if meta is None else meta["metadata"]["y"]["shape"][0]

    assert consolidated() == n_done  # the failed job was finished too, as committed
    seen = []
    original = ZarrStore.append_chunk

    def spy(self, *args, **kwargs):
        seen.append(consolidated())  # what a plain reader would find during the append
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # no consolidated metadata: xarray warns
            seen.append(xr.open_zarr(path).sizes["feature"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ZarrStore, "append_chunk", spy)
    with dask.config.set(scheduler="synchronous"):
        batch(as_video(arr, chunks=4), DIAMETER, store=path, do_not_return=True, **PARAMS)
    monkeypatch.undo()
    assert seen == [None, n_done]  # removed before the append, nothing stale meanwhile
    assert consolidated() == len(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pd.testing.assert_frame_equal(
            xr.open_zarr(path).to_dataframe()[list(ref.columns)].reset_index(drop=True), ref)
    pd.testing.assert_frame_equal(read_features(path), ref)


# ----------------------------------------------------------------- refusing foreign data


def test_foreign_locations_are_refused_and_kept(tmp_path):
    a_file = tmp_path / "file.zarr"
    a_file.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        ZarrStore(a_file).prepare()
    with pytest.raises(NotADirectoryError):
        ZarrStore(a_file).clear()

    plain_dir = tmp_path / "plain.zarr"
    plain_dir.mkdir()
    (plain_dir / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a Zarr store"):
        ZarrStore(plain_dir).prepare()

    v2 = tmp_path / "v2.zarr"
    zarr.open_group(v2, mode="w", zarr_format=2)
    with pytest.raises(ValueError, match="format 2"):
        ZarrStore(v2).prepare()

    other = tmp_path / "other.zarr"
    g = zarr.open_group(other, mode="w")
    g.create_array("images", shape=(4, 4), dtype="uint8")
    for op in (ZarrStore(other).prepare, ZarrStore(other).clear):
        with pytest.raises(ValueError, match="not a daskloc store"):
            op()
    assert "images" in zarr.open_group(other, mode="r")
    with pytest.raises(ValueError, match="is a Zarr array"):
        ZarrStore(other, table="images/features").prepare()
    st = ZarrStore(other, table="runs/features")  # a new group beside the foreign array
    st.prepare()
    assert set(zarr.open_group(other, mode="r").keys()) == {"images", "runs"}

    for path in (a_file, plain_dir, v2, other):
        with pytest.raises(ValueError, match="not a daskloc feature store"):
            read_features(path)
    assert (plain_dir / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------- the conformance suite


class TestZarrStore(DasklocStoreTests):
    """The package's store conformance suite on a local Zarr store."""

    backend = "zarr"
    store_class = ZarrStore
    capabilities = {"supports_remote": True, "lists_tables": True, "concurrent_writers": False,
                    "ordered_appends": True, "live_reads": True}
