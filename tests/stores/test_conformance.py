"""One conformance suite for every feature-store backend (as zarr-python's store tests).

Each test runs against Parquet, Zarr and HDF5 files, SQLite, a real PostgreSQL and a
real MariaDB server, and Parquet and Zarr on an S3-compatible server. It checks the
interface of :class:`daskloc.stores.FeatureStore` directly (append, complete chunks,
read by frames, metadata, tables, clear, pickling), then the whole job through
:func:`daskloc.batch`: the same features in every backend on the real movie, resume
after SIGKILL, reading while a batch writes, and refusing other parameters.
"""

from __future__ import annotations

import dataclasses
import pickle
import signal
import time

import numpy as np
import pandas as pd
import pytest

from daskloc.locate import feature_columns, locate_stack
from daskloc.pipeline import batch
from daskloc.stores import StoreBusyError, StoreMismatchError, open_store, read_features, store_info
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots, start_batch_process
from tests.stores import _services

COLUMNS = list(feature_columns(True))
BACKENDS = ["parquet", "zarr", "hdf5", "sqlite", "postgresql", "mariadb", "parquet-s3", "zarr-s3"]


@dataclasses.dataclass
class Location:
    """Where one test's store lives, and the keywords every call needs to reach it."""

    backend: str
    url: str
    kwargs: dict

    def open(self, mode="a", **extra):
        return open_store(self.url, mode, **{**self.kwargs, **extra})

    @property
    def batch_kwargs(self):
        return dict(self.kwargs)


def make_location(backend, tmp_path, name="features"):
    if backend == "parquet":
        return Location(backend, str(tmp_path / f"{name}.parquet"), {})
    if backend == "zarr":
        return Location(backend, str(tmp_path / f"{name}.zarr"), {})
    if backend == "hdf5":
        return Location(backend, str(tmp_path / f"{name}.h5"), {})
    if backend == "sqlite":
        return Location(backend, f"sqlite:///{tmp_path / name}.db", {})
    if backend == "postgresql":
        return Location(backend, _services.postgres_url(), {"table": _services.unique_table(name)})
    if backend == "mariadb":
        return Location(backend, _services.mysql_url(), {"table": _services.unique_table(name)})
    if backend in ("parquet-s3", "zarr-s3"):
        options = _services.s3_storage_options()
        suffix = backend.split("-")[0]
        url = f"s3://{_services.s3_bucket()}/{name}.{suffix}"
        return Location(backend, url, {"storage_options": options})
    raise AssertionError(backend)


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    loc = make_location(request.param, tmp_path)
    yield loc
    if request.param in ("postgresql", "mariadb"):  # shared servers: leave nothing behind
        st = loc.open()
        st.clear()
        st.close()


def fake_features(frames, per_frame, seed=0):
    """A feature table (inputs for the store, not outputs of daskloc) for some frames."""
    rng = np.random.default_rng(seed)
    counts = np.asarray(per_frame, dtype=np.int64)
    frame = np.repeat(np.asarray(frames, dtype=np.int64), counts)
    n = len(frame)
    df = pd.DataFrame({c: rng.normal(100, 30, n) for c in COLUMNS})
    df["ep"] = np.where(rng.random(n) < 0.2, np.nan, df["ep"])  # NaN must survive
    df["frame"] = frame
    return df


def source_metadata(first, stop, chunks):
    """A minimal metadata document describing frames first..stop-1 cut in ``chunks``."""
    return {
        "format": "daskloc-features",
        "format_version": 2,
        "params": {"diameter": 9, "minmass": 100, "note": "unicode µm ✓",
                   "nested": {"a": [1, 2.5, None]}},
        "source": {"path": "synthetic", "frames": {"start": first, "stop": stop, "step": 1}},
        "chunking": {"chunks": [list(c) for c in chunks]},
        "columns": {**{c: "float64" for c in COLUMNS}, "frame": "int64"},
    }


CHUNKS = [(0, 10), (10, 20), (20, 30)]


@pytest.fixture
def filled(location):
    """A store holding three chunks; chunk [10, 20) has no features at all."""
    st = location.open()
    st.prepare()
    st.write_metadata(source_metadata(0, 30, CHUNKS))
    parts = {
        (0, 10): fake_features(range(0, 10), [3, 0, 5, 1, 2, 0, 0, 4, 6, 2], seed=1),
        (10, 20): fake_features([], [], seed=2),
        (20, 30): fake_features(range(20, 30), [2] * 10, seed=3),
    }
    for (a, b), df in parts.items():
        st.append_chunk(a, b, df)
    expected = pd.concat(parts.values(), ignore_index=True)
    return st, expected


# ----------------------------------------------------------------- the interface


def test_a_new_location_is_not_a_store(location):
    st = location.open()
    assert not st.exists()
    assert st.read_metadata() is None
    assert st.complete_chunks() == []
    with pytest.raises((FileNotFoundError, ValueError)):
        location.open("r")


def test_metadata_round_trips_as_json(location):
    st = location.open()
    st.prepare()
    meta = source_metadata(0, 30, CHUNKS)
    st.write_metadata(meta)
    assert st.exists()
    assert location.open("r").read_metadata() == meta
    meta["params"]["minmass"] = 200
    st.write_metadata(meta)
    assert location.open("r").read_metadata()["params"]["minmass"] == 200


def test_chunks_round_trip(filled, location):
    st, expected = filled
    assert st.complete_chunks() == CHUNKS
    assert st.n_rows() == len(expected)
    got = location.open("r").read()
    pd.testing.assert_frame_equal(got, expected)
    assert list(got.columns) == COLUMNS + ["frame"]
    assert (got[COLUMNS].dtypes == np.float64).all() and got.frame.dtype == np.int64


@pytest.mark.parametrize(
    "frames,wanted",
    [
        (slice(5, 15), range(5, 15)),
        (slice(None, 3), range(0, 3)),
        (range(8, 22), range(8, 22)),
        ([2, 7, 20, 29], [2, 7, 20, 29]),
        (slice(0, 30, 4), range(0, 30, 4)),
        (12, [12]),
    ],
)
def test_read_frame_selections(filled, frames, wanted):
    st, expected = filled
    got = st.read(frames)
    want = expected[expected.frame.isin(list(wanted))].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)


def test_read_of_frames_without_features_keeps_the_schema(filled):
    st, expected = filled
    got = st.read(slice(10, 20))
    assert len(got) == 0
    assert list(got.columns) == list(expected.columns)
    assert (got.dtypes == expected.dtypes).all()


def test_read_outside_the_source_is_an_error(filled):
    st, _ = filled
    with pytest.raises(ValueError, match="0..29"):
        st.read(slice(25, 40))


def test_chunks_out_of_order(location):
    st = location.open()
    st.prepare()
    st.write_metadata(source_metadata(0, 30, CHUNKS))
    late = fake_features(range(20, 30), [1] * 10, seed=4)
    early = fake_features(range(0, 10), [2] * 10, seed=5)
    st.append_chunk(20, 30, late)
    if st.ordered_appends:
        # A format that appends in frame order only must refuse, not corrupt the table.
        with pytest.raises(ValueError, match="order"):
            st.append_chunk(0, 10, early)
        assert st.complete_chunks() == [(20, 30)]
        pd.testing.assert_frame_equal(st.read(), late)
        return
    st.append_chunk(0, 10, early)
    assert st.complete_chunks() == [(0, 10), (20, 30)]
    pd.testing.assert_frame_equal(st.read(), pd.concat([early, late], ignore_index=True))


def test_appending_a_chunk_again_replaces_it(location):
    st = location.open()
    st.prepare()
    st.write_metadata(source_metadata(0, 30, CHUNKS))
    first = fake_features(range(0, 10), [2] * 10, seed=6)
    second = fake_features(range(0, 10), [3] * 10, seed=7)
    st.append_chunk(0, 10, first)
    if not st.concurrent_writers:
        # Single-writer formats are appended by one client that never repeats a chunk;
        # a repeat must be refused, never duplicated.
        with pytest.raises(ValueError):
            st.append_chunk(0, 10, second)
        pd.testing.assert_frame_equal(st.read(), first)
        return
    st.append_chunk(0, 10, second)  # a retried Dask task writes its chunk again
    assert st.complete_chunks() == [(0, 10)]
    pd.testing.assert_frame_equal(st.read(), second)


def test_append_checks_frames_belong_to_the_chunk(location):
    st = location.open()
    st.prepare()
    st.write_metadata(source_metadata(0, 30, CHUNKS))
    with pytest.raises(ValueError):
        st.append_chunk(0, 10, fake_features([12], [1]))
    assert st.complete_chunks() == []


def test_a_pickled_store_writes_where_the_original_reads(location):
    st = location.open()
    st.prepare()
    st.write_metadata(source_metadata(0, 30, CHUNKS))
    st.read_metadata()  # may open handles: they must not travel
    blob = pickle.dumps(st)
    assert len(blob) < 10_000
    remote = pickle.loads(blob)
    part = fake_features(range(0, 10), [1] * 10, seed=8)
    remote.append_chunk(0, 10, part)
    remote.close()
    pd.testing.assert_frame_equal(st.read(), part)


def test_tables_in_one_store_are_independent(location):
    base = location.kwargs.get("table")
    name_a = f"{base}_a/features" if base else "run_a/features"
    name_b = f"{base}_b/features" if base else "run_b/features"
    a = location.open(table=name_a)
    b = location.open(table=name_b)
    for st, seed in ((a, 1), (b, 2)):
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        st.append_chunk(0, 10, fake_features(range(10), [seed] * 10, seed=seed))
    try:
        assert len(location.open("r", table=name_a).read()) == 10
        assert len(location.open("r", table=name_b).read()) == 20
        a.clear()
        assert not a.exists() and a.complete_chunks() == []
        assert len(location.open("r", table=name_b).read()) == 20
    finally:
        a.clear()
        b.clear()


def test_clear_removes_the_store(filled, location):
    st, _ = filled
    st.clear()
    assert not st.exists()
    assert st.complete_chunks() == []
    with pytest.raises((FileNotFoundError, ValueError)):
        location.open("r")


# ----------------------------------------------------------------- the whole job


@pytest.fixture(scope="module")
def bulk_water_reference():
    from daskloc.video import open_video
    from tests._data import data_path

    video = open_video(data_path("bulk-water.mov"), channel=0, chunks=64)
    reference = locate_stack(video.values, 11, frame_numbers=video.frame.values,
                             minmass=20, invert=True)
    return video, reference


@pytest.mark.data
def test_bulk_water_lands_identically_in_every_backend(location, bulk_water_reference, client):
    video, reference = bulk_water_reference
    batch(video, 11, minmass=20, invert=True, store=location.url, client=client,
          do_not_return=True, **location.batch_kwargs)
    got = read_features(location.url, **location.kwargs)
    key = ["frame", "y", "x"]
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        reference.sort_values(key).reset_index(drop=True),
    )
    part = read_features(location.url, frames=slice(100, 150), **location.kwargs)
    assert sorted(part.frame.unique()) == list(range(100, 150))
    want = reference[reference.frame.between(100, 149)]
    pd.testing.assert_frame_equal(
        part.sort_values(key).reset_index(drop=True), want.sort_values(key).reset_index(drop=True)
    )
    info = store_info(location.url, **location.kwargs)
    assert info["complete"] and info["n_features"] == len(reference)
    assert info["frames_complete"] == 480


def test_resume_after_sigkill(location, tmp_path):
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=21)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    proc = start_batch_process(tmp_path, arr, location.url, delay=0.25, chunks=4,
                               store_kwargs=location.batch_kwargs)
    try:
        deadline = time.monotonic() + 120
        done = []
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                done = location.open().complete_chunks()
            except Exception:  # not created yet, or busy
                done = []
            if len(done) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()[1].decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert 2 <= len(location.open().complete_chunks()) < 10
    batch(as_video(arr, chunks=4), DIAMETER, store=location.url, do_not_return=True,
          **location.batch_kwargs, **PARAMS)
    got = read_features(location.url, **location.kwargs)
    pd.testing.assert_frame_equal(got, reference)  # nothing lost, nothing twice


def test_reading_while_a_batch_writes(location, tmp_path):
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=9)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    chunks = [(a, a + 2) for a in range(0, 40, 2)]
    proc = start_batch_process(tmp_path, arr, location.url, delay=0.2, chunks=2,
                               store_kwargs=location.batch_kwargs)
    observations = refusals = 0
    try:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                reader = location.open("r")
                before = set(reader.complete_chunks())
                got = reader.read()
                after = set(reader.complete_chunks())
                reader.close()
            except StoreBusyError as exc:
                assert not location.open().live_reads
                assert "Parquet" in str(exc) or "wait" in str(exc)  # says what to do instead
                refusals += 1
                time.sleep(0.05)
                continue
            except (FileNotFoundError, ValueError):
                time.sleep(0.02)  # not created yet
                continue
            if not before or len(after) == len(chunks):
                continue
            observations += 1
            for a, b in chunks:
                rows = got[got.frame.between(a, b - 1)].reset_index(drop=True)
                want = reference[reference.frame.between(a, b - 1)].reset_index(drop=True)
                if (a, b) in before:
                    pd.testing.assert_frame_equal(rows, want)
                elif (a, b) not in after:
                    assert len(rows) == 0
                elif len(rows):  # finished during the read: all or nothing
                    pd.testing.assert_frame_equal(rows, want)
            time.sleep(0.05)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    if location.open().live_reads:
        assert observations >= 2, "the reader never overlapped the run"
    else:
        assert refusals + observations >= 2
    pd.testing.assert_frame_equal(read_features(location.url, **location.kwargs), reference)


def test_other_parameters_are_refused_until_overwrite(location):
    arr = make_spots(n_frames=8, shape=(64, 64), n_particles=4, seed=2)
    video = as_video(arr, chunks=4)
    batch(video, DIAMETER, store=location.url, do_not_return=True, **location.batch_kwargs,
          **PARAMS)
    first = read_features(location.url, **location.kwargs)
    with pytest.raises(StoreMismatchError, match="minmass"):
        batch(video, DIAMETER, store=location.url, minmass=300, **location.batch_kwargs)
    pd.testing.assert_frame_equal(read_features(location.url, **location.kwargs), first)
    batch(video, DIAMETER, store=location.url, minmass=300, overwrite=True, do_not_return=True,
          **location.batch_kwargs)
    again = read_features(location.url, **location.kwargs)
    assert (again.mass > 300).all() and len(again) <= len(first)
