"""The hostile-input catalogue: every way a store, a file or a second writer was found to
fool daskloc (issue 10), tried the way it was found, each with the store checked intact
or cleanly refused afterwards.

1. A stranger's store that would run code when read (a pickled object in an HDF5
   attribute or an ObjectAtom array, a pickling Zarr codec, a pickle in Parquet field
   metadata or in the SQL registry): refused, the marker file never appears.
2. A store whose metadata is missing or edited cannot pass old rows off as new ones.
3. ``--overwrite`` checks before it deletes, deletes only daskloc's files, and works on
   damaged metadata; ``daskloc info`` on a damaged store says what and the fix.
4. Lock and lease files that are symbolic links are never followed.
5. The dashboard listens on loopback only.
6. One writer per store: a second is refused naming the first; a SIGKILLed writer's
   lease is taken over.
7. A stray copy of a chunk file is ignored by reads and reported by ``info``.
8. A movie with damaged data: the error names the file and frames, the chunk is
   recorded as failed, the others complete, ``on_error="skip"`` keeps every
   decodable frame and lists the rest.
9. NaN pixels are treated as masked, with one warning per job.
10. A colour movie without ``--channel``: told in CLI words before any cluster starts.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import daskloc
from daskloc.locate import locate_stack
from daskloc.pipeline import UndecodableChunksError, batch
from daskloc.stores import (
    MetadataError,
    StoreInUseError,
    StoreMismatchError,
    UnsafeStoreError,
    open_store,
    read_features,
    store_info,
)
from tests._damage import damage_packet
from tests._data import data_path
from tests.conftest import (
    DIAMETER,
    PARAMS,
    as_video,
    make_spots,
    parquet_doc,
    start_batch_process,
    write_parquet_doc,
)

# ``location``: the conformance suite's fixture (one store of a backend; parametrised
# indirectly here), which leaves nothing behind on the shared servers.
from tests.stores._locations import location, make_location  # noqa: F401

DASKLOC = [sys.executable, "-m", "daskloc"]
BACKENDS = ["parquet", "zarr", "hdf5", "sqlite", "postgresql", "mariadb", "parquet-s3",
            "zarr-s3"]


@pytest.fixture(scope="module")
def video_arr():
    return make_spots(n_frames=24, shape=(80, 80), n_particles=8, seed=11)


def reference(arr, **params):
    return locate_stack(arr, DIAMETER, **(params or PARAMS))


def run_cli(*args, cwd=None, timeout=300):
    """The ``daskloc`` command in a new process (as a user runs it)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([*DASKLOC, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


class _Run:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = (result.exit_code, result.stdout,
                                                     result.stderr)


def info_cli(store):
    """``daskloc info STORE`` run in this process (the command's own code, no start-up)."""
    from click.testing import CliRunner

    from daskloc.cli import main

    return _Run(CliRunner().invoke(main, ["info", str(store)]))


def digest(path):
    """SHA-256 of a file, or of every file under a folder (name and bytes)."""
    path = Path(path)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        h.update(str(p.relative_to(path.parent)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


class Payload:
    """Unpickling this runs ``touch <marker>``: what a hostile file would carry."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# ============================================================ 1. no code from a store

H5_PLACES = ["root-attribute", "group-attribute", "table-attribute", "metadata-attribute",
             "object-array-metadata"]


@pytest.mark.parametrize("place", H5_PLACES)
def test_hdf5_store_carrying_a_pickled_object_is_refused(place, tmp_path, video_arr):
    tables = pytest.importorskip("tables")
    store = tmp_path / "s.h5"
    batch(as_video(video_arr, chunks=8), DIAMETER, store=store, do_not_return=True, **PARAMS)
    marker = tmp_path / "MARKER"
    with tables.open_file(store, "a") as f:
        payload = Payload(marker)
        if place == "root-attribute":
            f.set_node_attr("/", "x", payload)
        elif place == "group-attribute":
            f.set_node_attr("/features", "notes", payload)
        elif place == "table-attribute":
            f.set_node_attr("/features/table", "info", payload)  # replaces pandas' own
        elif place == "metadata-attribute":
            f.set_node_attr("/features/daskloc_metadata", "x", payload)
        else:  # the metadata node itself an array of pickled objects
            f.remove_node("/features/daskloc_metadata")
            arr = f.create_vlarray("/features", "daskloc_metadata", tables.ObjectAtom())
            arr.append(payload)
    assert not marker.exists()  # writing it ran nothing
    before = digest(store)
    attempts = {
        "read_features": lambda: read_features(store),
        "store_info": lambda: store_info(store),
        "export": lambda: daskloc.export(store, tmp_path / "o.csv"),
        "resume": lambda: batch(as_video(video_arr, chunks=8), DIAMETER, store=store,
                                do_not_return=True, **PARAMS),
        "overwrite": lambda: batch(as_video(video_arr, chunks=8), DIAMETER, store=store,
                                   overwrite=True, do_not_return=True, **PARAMS),
    }
    for name, attempt in attempts.items():
        with pytest.raises(UnsafeStoreError, match="pickled Python object|ObjectAtom"):
            attempt()
        assert not marker.exists(), f"{name} ran the payload"
    assert not (tmp_path / "o.csv").exists()
    out = info_cli(store)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "daskloc: error:" in out.stderr and "pickled" in out.stderr
    assert not marker.exists()
    assert digest(store) == before  # refused, untouched


def test_hdf5_plain_pandas_still_reads_a_clean_store_and_pickles_work_outside_daskloc(
        tmp_path, video_arr):
    """The guard is daskloc's only: pandas' own reading and a user's own pickled
    attributes in other files work as before, in the same process."""
    tables = pytest.importorskip("tables")
    store = tmp_path / "s.h5"
    batch(as_video(video_arr, chunks=8), DIAMETER, store=store, do_not_return=True, **PARAMS)
    ref = reference(video_arr)
    pd.testing.assert_frame_equal(read_features(store), ref)
    plain = pd.read_hdf(store, "features")
    assert len(plain) == len(ref)
    mine = tmp_path / "mine.h5"
    with tables.open_file(mine, "w") as f:
        f.set_node_attr("/", "when", pd.Timestamp("2026-12-01"))  # a global: pandas
    with tables.open_file(mine, "r") as f:
        assert f.root._v_attrs.when == pd.Timestamp("2026-12-01")


def test_zarr_array_declaring_a_pickling_codec_is_refused(tmp_path, video_arr):
    store = tmp_path / "s.zarr"
    batch(as_video(video_arr, chunks=8), DIAMETER, store=store, do_not_return=True, **PARAMS)
    marker = tmp_path / "MARKER"
    doc = json.loads((store / "y" / "zarr.json").read_text())
    doc["codecs"].append({"name": "numcodecs.pickle", "configuration": {}})
    (store / "y" / "zarr.json").write_text(json.dumps(doc))
    for chunk in (store / "y" / "c").iterdir():
        chunk.write_bytes(pickle.dumps(Payload(marker)))
    before = digest(store)
    for attempt in (lambda: read_features(store),
                    lambda: daskloc.export(store, tmp_path / "o.csv")):
        with pytest.raises((MetadataError, UnsafeStoreError), match="'y'"):
            attempt()
    assert not marker.exists() and digest(store) == before


def test_parquet_part_with_a_pickled_extension_type_is_refused(tmp_path, video_arr):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    store = tmp_path / "s.parquet"
    batch(as_video(video_arr, chunks=8), DIAMETER, store=store, do_not_return=True, **PARAMS)
    marker = tmp_path / "MARKER"
    part = sorted(store.glob("part-*.parquet"))[0]
    table = pq.read_table(part)
    field = pa.field("y", pa.binary(), metadata={
        b"ARROW:extension:name": b"arrow.py_extension_type",
        b"ARROW:extension:metadata": pickle.dumps(Payload(marker))})
    cols = [pa.array([b"x"] * table.num_rows) if n == "y" else table.column(n)
            for n in table.column_names]
    schema = pa.schema([field if n == "y" else table.schema.field(n) for n in table.column_names],
                       metadata=table.schema.metadata)
    pq.write_table(pa.Table.from_arrays(cols, schema=schema), part)
    with pytest.raises(MetadataError, match="not a number"):
        read_features(store)
    assert not marker.exists()


def test_sql_registry_holding_a_pickle_is_refused(tmp_path, video_arr):
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 's.db'}"
    batch(as_video(video_arr, chunks=8), DIAMETER, store=url, do_not_return=True, **PARAMS)
    marker = tmp_path / "MARKER"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE daskloc_stores SET metadata = :m"),
                     {"m": pickle.dumps(Payload(marker), protocol=0).decode("latin1")})
    engine.dispose()
    with pytest.raises(MetadataError, match="not valid JSON"):
        read_features(url)
    out = info_cli(url)
    assert out.returncode == 1 and "Traceback" not in out.stderr and "overwrite" in out.stderr
    assert not marker.exists()


# ============================================================ 2. missing or edited metadata


def drop_metadata(loc):
    """Remove a store's metadata document the way a user (or a bad copy) would."""
    st = loc.open()
    if loc.backend in ("parquet", "parquet-s3"):
        st.fs.rm_file(st._fs_path(st.metadata_path))
    elif loc.backend in ("zarr", "zarr-s3"):
        import zarr

        g = zarr.open_group(loc.url, mode="r+",
                            storage_options=loc.kwargs.get("storage_options"))
        del g.attrs["daskloc"]
    elif loc.backend == "hdf5":
        import tables

        with tables.open_file(loc.url, "a") as f:
            for name in ("daskloc_metadata", "daskloc_metadata_backup"):
                if f"/features/{name}" in f:
                    f.remove_node(f"/features/{name}")
    else:
        import sqlalchemy as sa

        with st.engine().begin() as conn:
            conn.execute(sa.text("UPDATE daskloc_stores SET metadata = NULL WHERE name = :n"),
                         {"n": st.name})
    st.close()


@pytest.mark.slow
@pytest.mark.parametrize("location", BACKENDS, indirect=True)
def test_missing_or_edited_metadata_never_passes_old_rows_off_as_new(location, video_arr):
    loc = location
    video = as_video(video_arr, chunks=4)
    batch(video, DIAMETER, store=loc.url, do_not_return=True, minmass=100, **loc.kwargs)
    ref100, ref1050 = reference(video_arr, minmass=100), reference(video_arr, minmass=1050)
    assert len(ref1050) < len(ref100)  # the two jobs differ
    marks = loc.open().chunk_ids()

    # The metadata is lost, then a run with other parameters: refused, nothing changes.
    drop_metadata(loc)
    with pytest.raises(MetadataError, match="no metadata"):
        read_features(loc.url, **loc.kwargs)
    with pytest.raises(StoreMismatchError, match="another job.*metadata is missing"):
        batch(video, DIAMETER, store=loc.url, do_not_return=True, minmass=1050, **loc.kwargs)
    assert {c: m.id for c, m in loc.open().chunk_ids().items()} == {
        c: m.id for c, m in marks.items()}
    # The same job again: its own chunks are recognised and kept, the metadata rebuilt.
    progress = []
    batch(video, DIAMETER, store=loc.url, do_not_return=True, minmass=100,
          progress=lambda d, t, n: progress.append(d), **loc.kwargs)
    assert progress[0] == 6
    pd.testing.assert_frame_equal(read_features(loc.url, **loc.kwargs), ref100)

    # The metadata's parameters are edited to the new job's: the chunks' own identities
    # still say minmass=100, so they are not read, and resuming is refused.
    st = loc.open()
    meta = st.read_metadata()
    st.write_metadata(dict(meta, params=dict(meta["params"], minmass=1050.0)))
    assert len(read_features(loc.url, **loc.kwargs)) == 0
    info = store_info(loc.url, **loc.kwargs)
    assert info["metadata_edited"] and info["n_features"] == 0 and not info["complete"]
    assert len(info["ignored_chunks"]) == 6
    assert all("another job" in c["reason"] for c in info["ignored_chunks"])
    with pytest.raises(StoreMismatchError, match="identities disagree"):
        batch(video, DIAMETER, store=loc.url, do_not_return=True, minmass=1050, **loc.kwargs)
    batch(video, DIAMETER, store=loc.url, do_not_return=True, minmass=1050, overwrite=True,
          **loc.kwargs)
    pd.testing.assert_frame_equal(read_features(loc.url, **loc.kwargs), ref1050)
    assert store_info(loc.url, **loc.kwargs)["ignored_chunks"] == []


@pytest.mark.slow
@pytest.mark.data
def test_the_issue_case_parquet_without_metadata_on_the_real_movie(tmp_path, cluster):
    """As found: locate with minmass 20 and 60-frame chunks, delete _daskloc.parquet, rerun
    with minmass 200 (here on 120 frames): refused (exit 1) instead of "done" with the
    minmass=20 rows; with --overwrite the rows are the minmass=200 ones."""
    movie = data_path("bulk-water.mov")
    out = tmp_path / "s.parquet"
    common = [movie, "--frames", "0:120", "--diameter", "11", "--invert", "--channel", "0",
              "--chunk-frames", "60", "--out", out, "--scheduler", cluster.scheduler_address]
    assert run_cli("locate", *common, "--minmass", "20").returncode == 0
    n20 = store_info(out)["n_features"]
    (out / "_daskloc.parquet").unlink()
    before = digest(out)
    again = run_cli("locate", *common, "--minmass", "200")
    assert again.returncode == 1, again.stdout + again.stderr
    assert "another job" in again.stderr and "--overwrite" in again.stderr
    assert digest(out) == before
    assert run_cli("locate", *common, "--minmass", "200", "--overwrite").returncode == 0
    video = daskloc.open_video(movie, channel=0, frames=slice(0, 120))
    expected = locate_stack(video.values, 11, minmass=200, invert=True)
    got = read_features(out)
    assert 0 < len(got) < n20
    pd.testing.assert_frame_equal(got, expected)


# ============================================================ 3. overwrite loses nothing


def test_overwrite_refuses_a_store_holding_the_users_files_before_touching_it(tmp_path,
                                                                             video_arr):
    video = as_video(video_arr, chunks=4)
    store = tmp_path / "s.parquet"
    batch(video, DIAMETER, store=store, do_not_return=True, **PARAMS)
    (store / "README.txt").write_text("my notes")
    before = digest(store)
    with pytest.raises(ValueError, match=r"README\.txt.*nothing was removed"):
        batch(video, DIAMETER, store=store, overwrite=True, do_not_return=True, minmass=1050)
    assert digest(store) == before
    pd.testing.assert_frame_equal(read_features(store), reference(video_arr))
    # moved out: the overwrite runs, and every later run too
    (store / "README.txt").unlink()
    batch(video, DIAMETER, store=store, overwrite=True, do_not_return=True, minmass=1050)
    batch(video, DIAMETER, store=store, do_not_return=True, minmass=1050)
    pd.testing.assert_frame_equal(read_features(store), reference(video_arr, minmass=1050))


def test_many_video_overwrite_clears_no_video_unless_every_video_can_be(tmp_path, video_arr):
    videos = {"a": as_video(video_arr, chunks=4), "b": as_video(video_arr[::-1].copy(), chunks=4)}
    store = tmp_path / "lab.parquet"
    batch(videos, DIAMETER, store=store, do_not_return=True, **PARAMS)
    (store / "video=b" / "notes.txt").write_text("mine")
    before = digest(store)
    with pytest.raises(ValueError, match="notes.txt"):
        batch(videos, DIAMETER, store=store, overwrite=True, do_not_return=True, minmass=1050)
    assert digest(store) == before  # video a was not cleared either


def test_hdf5_overwrite_keeps_the_users_nodes_beside_the_table(tmp_path, video_arr):
    """A user's own array in the table's group (or a nested key) is not daskloc's: an
    overwrite removes daskloc's nodes only, and never the file."""
    tables = pytest.importorskip("tables")
    store = tmp_path / "s.h5"
    video = as_video(video_arr, chunks=4)
    batch(video, DIAMETER, store=store, do_not_return=True, **PARAMS)
    with tables.open_file(store, "a") as f:
        f.create_array("/features", "my_calibration", np.arange(5.0))
        f.set_node_attr("/features", "lab", "cleanroom 2")
    batch(video, DIAMETER, store=store, overwrite=True, do_not_return=True, minmass=1050)
    with tables.open_file(store, "r") as f:
        assert list(f.get_node("/features/my_calibration").read()) == [0, 1, 2, 3, 4]
        assert f.get_node("/features")._v_attrs.lab == "cleanroom 2"
    pd.testing.assert_frame_equal(read_features(store), reference(video_arr, minmass=1050))


def test_metadata_replaced_by_an_older_copy_switches_no_check_off(tmp_path, video_arr):
    """Metadata of daskloc 0.1 (format_version 1) over chunks that carry identities: the
    metadata was replaced, so those chunks are not read."""
    store = tmp_path / "s.parquet"
    batch(as_video(video_arr, chunks=4), DIAMETER, store=store, do_not_return=True, **PARAMS)
    meta = parquet_doc(store)
    meta["format_version"] = 1
    write_parquet_doc(store, meta)
    assert len(read_features(store)) == 0
    info = store_info(store)
    assert len(info["ignored_chunks"]) == 6
    assert all("older copy" in c["reason"] for c in info["ignored_chunks"])


def test_a_stale_skipped_entry_is_dropped_when_the_chunk_decodes(tmp_path, video_arr):
    """The metadata lists skipped frames for a chunk whose append was then lost (a
    crash); the rerun with on_error="skip" decodes the whole chunk: its entry goes, so
    the chunk's identity checks and it is read."""
    store = tmp_path / "s.zarr"
    video = as_video(video_arr, chunks=4)
    batch(video, DIAMETER, store=store, do_not_return=True, on_error="skip", **PARAMS)
    st = open_store(store)
    meta = st.read_metadata()
    st.clear()
    st.write_metadata(dict(meta, skipped=[[0, 4, [1]]], complete_chunks=[]))
    batch(video, DIAMETER, store=store, do_not_return=True, on_error="skip", **PARAMS)
    info = store_info(store)
    assert info["complete"] and info["skipped_frames"] == []
    pd.testing.assert_frame_equal(read_features(store), reference(video_arr))


def damage(loc, how):
    """Damage a store's metadata: garbage bytes, a truncated document, or valid JSON of
    the wrong types (HDF5: both copies)."""
    path = Path(loc.url)
    if loc.backend == "parquet":
        f = path / "_daskloc.parquet"
        if how == "types":
            write_parquet_doc(path, {**parquet_doc(path), "chunking": 5})
        else:
            text = f.read_bytes()
            f.write_bytes({"garbage": b"\xff\xfe\x00garbage",
                           "truncated": text[: len(text) // 2]}[how])
    elif loc.backend == "zarr":
        f = path / "zarr.json"
        text = f.read_bytes()
        doc = json.loads(text)
        doc["attributes"]["daskloc"]["chunking"] = 5
        f.write_bytes({"garbage": b"\xff\xfe\x00garbage", "truncated": text[: len(text) // 2],
                       "types": json.dumps(doc).encode()}[how])
    elif loc.backend == "hdf5":
        import tables

        with tables.open_file(path, "a") as f:
            for name in ("daskloc_metadata", "daskloc_metadata_backup"):
                node = f.get_node(f"/features/{name}")
                raw = node.read().tobytes()
                new = {"garbage": b"\xff\xfe\x00garbage" * 4, "truncated": raw[: len(raw) // 2],
                       "types": json.dumps({**json.loads(raw), "chunking": 5}).encode()}[how]
                node.truncate(0)
                node.append(np.frombuffer(new, np.uint8))
    else:
        import sqlalchemy as sa

        engine = sa.create_engine(loc.url)
        with engine.begin() as conn:
            raw = conn.execute(sa.text("SELECT metadata FROM daskloc_stores")).scalar()
            new = {"garbage": "\x00garbage{", "truncated": raw[: len(raw) // 2],
                   "types": json.dumps({**json.loads(raw), "chunking": 5})}[how]
            conn.execute(sa.text("UPDATE daskloc_stores SET metadata = :m"), {"m": new})
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("how", ["garbage", "truncated", "types"])
@pytest.mark.parametrize("backend", ["parquet", "zarr", "hdf5", "sqlite"])
def test_damaged_metadata_is_explained_and_overwrite_starts_again(backend, how, tmp_path,
                                                                 video_arr):
    loc = make_location(backend, tmp_path)
    video = as_video(video_arr, chunks=4)
    batch(video, DIAMETER, store=loc.url, do_not_return=True, **PARAMS)
    damage(loc, how)
    out = info_cli(loc.url)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    line = out.stderr.strip()
    assert line.count("\n") == 0 and "damaged" in line and "--overwrite" in line
    where = {"parquet": "_daskloc.parquet", "zarr": "zarr.json", "hdf5": "daskloc_metadata",
             "sqlite": "daskloc_stores"}[backend]
    assert where in line or how == "types", line  # the file (or the field) is named
    if how == "types":
        assert "chunking" in line
    with pytest.raises(MetadataError, match="overwrite"):
        batch(video, DIAMETER, store=loc.url, do_not_return=True, **PARAMS)
    batch(video, DIAMETER, store=loc.url, overwrite=True, do_not_return=True, minmass=1050)
    pd.testing.assert_frame_equal(read_features(loc.url), reference(video_arr, minmass=1050))


# ============================================================ 4. no symbolic links followed


@pytest.mark.parametrize("which", ["hdf5-lock", "hdf5-lease", "hdf5-lease-of-a-table",
                                   "parquet-lease", "zarr-lease"])
def test_lock_and_lease_files_that_are_symlinks_are_never_followed(which, tmp_path,
                                                                   video_arr):
    shared = tmp_path / "shared"
    shared.mkdir()
    victim = shared / "colleague.txt"
    victim.write_text("precious results\n")
    if which.startswith("hdf5"):
        store = shared / "f.h5"
        name = {"hdf5-lock": ".f.h5.daskloc-lock", "hdf5-lease": ".f.h5.daskloc-lease",
                "hdf5-lease-of-a-table": ".f.h5.daskloc-lease.movie2"}[which]
        link = shared / name
        if which == "hdf5-lease-of-a-table":
            store = f"{store}#movie2"
    elif which == "parquet-lease":
        store = shared / "f.parquet"
        store.mkdir()
        link = store / ".daskloc-lease"
    else:
        store = shared / "f.zarr"
        link = shared / ".f.zarr.daskloc-lease"
    link.symlink_to(victim)
    with pytest.raises(PermissionError, match="symbolic link"):
        batch(as_video(video_arr, chunks=8), DIAMETER, store=store, do_not_return=True,
              **PARAMS)
    assert victim.read_text() == "precious results\n" and link.is_symlink()


# ============================================================ 5. a private dashboard


def test_the_local_dashboard_listens_on_loopback_only():
    from tests._listening import is_loopback, listening

    with daskloc.make_client("local", workers=1) as client:
        port = int(client.dashboard_link.split(":")[2].split("/")[0])
        addresses = {addr for addr, p, _ in listening() if p == port}
    assert addresses and all(is_loopback(a) for a in addresses), addresses


# ============================================================ 6. one writer per store


def wait_for(predicate, seconds=60, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
@pytest.mark.parametrize("location", BACKENDS, indirect=True)
def test_a_second_writer_is_refused_at_once_naming_the_first(location, video_arr, tmp_path):
    loc = location
    # 6 chunks of 1.5 s: the first writer is still writing when the second one starts
    # (the second needs a few seconds to reach the lease on a loaded machine)
    proc = start_batch_process(tmp_path, video_arr, loc.url, delay=1.5, chunks=4,
                               store_kwargs=loc.kwargs)
    try:
        st = loc.open()
        wait_for(lambda: st.lease_holder() is not None and st.complete_chunks(), 120,
                 "the first writer's lease and chunk")
        holder = st.lease_holder()
        assert holder["pid"] == proc.pid and holder["stale"] is None
        started = time.monotonic()
        with pytest.raises(StoreInUseError, match=f"process {proc.pid} on .*since"):
            batch(as_video(video_arr, chunks=4), DIAMETER, store=loc.url, do_not_return=True,
                  **PARAMS, **loc.kwargs)
        assert time.monotonic() - started < 30  # refused, not waited for
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    pd.testing.assert_frame_equal(read_features(loc.url, **loc.kwargs), reference(video_arr))
    assert store_info(loc.url, **loc.kwargs)["writer"] is None  # released at the end


@pytest.mark.parametrize("location", ["parquet", "hdf5", "zarr", "sqlite", "postgresql",
                                      "parquet-s3"], indirect=True)
@pytest.mark.slow
def test_a_sigkilled_writers_lease_is_taken_over(location, video_arr, tmp_path):
    loc = location
    proc = start_batch_process(tmp_path, video_arr, loc.url, delay=0.4, chunks=4,
                               store_kwargs=loc.kwargs)
    st = loc.open()
    try:
        wait_for(lambda: st.lease_holder() is not None and st.complete_chunks(), 120,
                 "the first writer's lease and chunk")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    holder = st.lease_holder()
    assert holder is not None and holder["pid"] == proc.pid and holder["stale"]
    if loc.backend in ("parquet", "hdf5", "sqlite"):
        shown = info_cli(loc.url).stdout
        assert "left by a writer that is gone" in shown and str(proc.pid) in shown
    batch(as_video(video_arr, chunks=4), DIAMETER, store=loc.url, do_not_return=True,
          **PARAMS, **loc.kwargs)
    pd.testing.assert_frame_equal(read_features(loc.url, **loc.kwargs), reference(video_arr))
    assert st.lease_holder() is None


@pytest.mark.parametrize("location", ["sqlite", "parquet-s3"], indirect=True)
def test_a_lease_from_another_host_is_kept_while_it_beats(location, video_arr):
    """A lease document of a writer on another host: refused while its heartbeat is
    fresh, taken over once it is older than LEASE_TIMEOUT."""
    from daskloc.stores import _lease

    loc = location
    st = loc.open()
    st.prepare()
    ops = st._lease_ops()
    doc = dict(_lease.new_holder("other-token"), host="node-17.elsewhere", pid=4242)
    assert ops.create(_lease.encode(doc))
    video = as_video(video_arr, chunks=8)
    with pytest.raises(StoreInUseError, match="process 4242 on node-17.elsewhere"):
        batch(video, DIAMETER, store=loc.url, do_not_return=True, **PARAMS, **loc.kwargs)
    raw, version = ops.read()
    old = dict(doc, heartbeat_unix=time.time() - _lease.LEASE_TIMEOUT - 5)
    assert ops.replace(version, _lease.encode(old))
    batch(video, DIAMETER, store=loc.url, do_not_return=True, **PARAMS, **loc.kwargs)
    pd.testing.assert_frame_equal(read_features(loc.url, **loc.kwargs), reference(video_arr))


@pytest.mark.slow
def test_a_second_writers_clean_up_never_deletes_the_first_writers_temporary_file(
        tmp_path, video_arr):
    """As found: the second writer's start-up clean-up deleted the first's temporary
    part file and the first died; now the second is refused before any clean-up."""
    store = tmp_path / "s.parquet"
    proc = start_batch_process(tmp_path, video_arr, store, delay=0.4, chunks=4)
    try:
        # the first writer's lease, and a chunk (its start-up clean-up is behind it)
        wait_for(lambda: (store / ".daskloc-lease").exists()
                 and list(store.glob("part-*.parquet")), 120, "the lease and a chunk")
        temp = store / ".part-999999999-999999999.parquet.abc.tmp"  # as a writer's
        temp.write_bytes(b"being written")
        with pytest.raises(StoreInUseError):
            batch(as_video(video_arr, chunks=4), DIAMETER, store=store, do_not_return=True,
                  **PARAMS)
        assert temp.exists()
        temp.unlink()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    pd.testing.assert_frame_equal(read_features(store), reference(video_arr))


# ============================================================ 7. stray chunk files


def test_a_stray_copy_of_a_chunk_file_is_ignored_and_reported(tmp_path, video_arr):
    store = tmp_path / "s.parquet"
    batch(as_video(video_arr, chunks=4), DIAMETER, store=store, do_not_return=True, **PARAMS)
    ref = reference(video_arr)
    shutil.copy(store / "part-000000000-000000004.parquet",
                store / "part-000000000-000000002.parquet")
    pd.testing.assert_frame_equal(read_features(store), ref)
    info = store_info(store)
    assert info["n_features"] == len(ref) and info["complete"]
    assert info["ignored_chunks"] == [{"chunk": [0, 2], "reason": (
        "not one of the job's chunks (its frame range is not in the chunking)")}]
    out = info_cli(store)
    assert out.returncode == 0 and "ignored:    1 chunks" in out.stdout
    # A part of another job under a name of this job's chunking: not read either.
    other = tmp_path / "other.parquet"
    batch(as_video(video_arr, chunks=4), DIAMETER, store=other, do_not_return=True,
          minmass=1050)
    shutil.copy(other / "part-000000004-000000008.parquet",
                store / "part-000000004-000000008.parquet")
    got = read_features(store)
    pd.testing.assert_frame_equal(got, ref[(ref.frame < 4) | (ref.frame >= 8)]
                                  .reset_index(drop=True))
    info = store_info(store)
    assert not info["complete"]
    assert {tuple(c["chunk"]): c["reason"][:26] for c in info["ignored_chunks"]} == {
        (0, 2): "not one of the job's chunk", (4, 8): "written by another job (ot"}
    with pytest.raises(StoreMismatchError, match="another job"):
        batch(as_video(video_arr, chunks=4), DIAMETER, store=store, do_not_return=True,
              **PARAMS)


# ============================================================ 8. damaged video data


@pytest.fixture(scope="module")
def damaged_movie(tmp_path_factory):
    path = tmp_path_factory.mktemp("damaged") / "bulk-water-damaged.mov"
    damage_packet(data_path("bulk-water.mov"), path, 101)
    return path


@pytest.fixture(scope="module")
def clean_features():
    video = daskloc.open_video(data_path("bulk-water.mov"), channel=0, frames=slice(0, 300))
    return locate_stack(video.values, 11, minmass=20, invert=True)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("backend", ["parquet", "zarr"])
def test_a_damaged_movie_names_file_and_frames_and_skip_keeps_the_rest(
        backend, damaged_movie, clean_features, tmp_path):
    loc = make_location(backend, tmp_path)
    # frames 0..299: chunks 0..237 (holding the damage) and 238..299
    video = daskloc.open_video(damaged_movie, channel=0, frames=slice(0, 300))
    assert len(video.chunks[0]) == 2
    with pytest.raises(UndecodableChunksError) as e:
        batch(video, 11, store=loc.url, do_not_return=True, minmass=20, invert=True)
    text = str(e.value)
    assert str(damaged_movie) in text and "frames 0..237" in text and "on_error='skip'" in text
    assert set(e.value.failed) == {(0, 238)}
    info = store_info(loc.url)
    assert [(c["start"], c["stop"]) for c in info["failed_chunks"]] == [(0, 238)]
    assert str(damaged_movie) in info["failed_chunks"][0]["error"]
    if backend == "parquet":  # the other chunk completed
        assert info["chunks_complete"] == 1
        late = clean_features[clean_features.frame >= 238].reset_index(drop=True)
        pd.testing.assert_frame_equal(read_features(loc.url), late)
    else:  # frame-ordered store: the chunk after the failed one waits for a rerun
        assert info["chunks_complete"] == 0 and "frame order" in text
    out = info_cli(loc.url)
    assert "failed:     1 chunks" in out.stdout and "frames [0, 238)" in out.stdout

    # on_error="skip": every frame that decodes is located, the others are listed
    batch(video, 11, store=loc.url, do_not_return=True, minmass=20, invert=True,
          on_error="skip")
    info = store_info(loc.url)
    skipped = info["skipped_frames"]
    assert info["complete"] and info["failed_chunks"] == [] and 101 in skipped
    assert all(0 <= f < 238 for f in skipped) and len(skipped) < 238
    kept = clean_features[~clean_features.frame.isin(skipped)].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_features(loc.url), kept)
    out = info_cli(loc.url)
    assert f"skipped:    {len(skipped)} frames" in out.stdout
    # Resuming without skip would hide nothing silently: refused.
    with pytest.raises(StoreMismatchError, match="on_error='skip'"):
        batch(video, 11, store=loc.url, do_not_return=True, minmass=20, invert=True)


@pytest.mark.slow
@pytest.mark.data
def test_the_cli_on_a_damaged_movie(damaged_movie, tmp_path, cluster):
    out = tmp_path / "s.parquet"
    args = ["locate", damaged_movie, "--frames", "0:300", "--diameter", "11", "--minmass",
            "20", "--invert", "--channel", "0", "--out", out, "--scheduler",
            cluster.scheduler_address]
    first = run_cli(*args)
    assert first.returncode == 1 and "Traceback" not in first.stderr
    assert str(damaged_movie) in first.stderr and "--on-error skip" in first.stderr
    second = run_cli(*args, "--on-error", "skip")
    assert second.returncode == 0, second.stderr
    assert "could not be decoded and were skipped" in second.stdout


# ============================================================ 9. NaN pixels


@pytest.mark.data
def test_one_nan_pixel_per_frame_is_masked_with_one_warning(tmp_path):
    movie = data_path("bulk-water.mov")
    frames = daskloc.open_video(movie, channel=0, frames=slice(0, 16)).values
    floats = frames.astype(np.float64)
    rng = np.random.default_rng(3)
    for f in floats:
        f[rng.integers(20, 400), rng.integers(20, 600)] = np.nan
    from daskloc.correct import fill_masked

    filled = np.stack([fill_masked(f, np.isnan(f)) for f in floats])
    expected = locate_stack(filled, 11, minmass=20 / 255, invert=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batch(as_video(floats, chunks=4), 11, store=tmp_path / "f.parquet", do_not_return=True,
              minmass=20 / 255, invert=True)
    nan_warnings = [w for w in caught if "NaN" in str(w.message)]
    assert len(nan_warnings) == 1 and "16" in str(nan_warnings[0].message)
    got = read_features(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(got, expected)
    assert np.isfinite(got["ep"]).sum() == np.isfinite(expected["ep"]).sum() > 0


# ============================================================ 10. colour video, no --channel


@pytest.mark.slow
@pytest.mark.data
def test_a_colour_movie_without_channel_is_told_in_cli_words_before_any_cluster(tmp_path):
    out = run_cli("locate", data_path("bulk-water.mov"), "--diameter", "11",
                  "--out", tmp_path / "x.parquet", timeout=120)
    assert out.returncode == 1
    assert "--channel 0" in out.stderr and "--channel grey" in out.stderr
    assert "open_video(" not in out.stderr and "dask:" not in out.stderr  # no cluster
    assert not (tmp_path / "x.parquet").exists()


@pytest.mark.slow
@pytest.mark.data
def test_colour_movies_given_together_without_channel_are_refused_before_any_cluster(
        tmp_path):
    for name in ("a.mov", "b.mov"):
        os.symlink(data_path("bulk-water.mov"), tmp_path / name)
    out = run_cli("locate", tmp_path / "a.mov", tmp_path / "b.mov", "--diameter", "11",
                  "--out", tmp_path / "x.parquet", timeout=120)
    assert out.returncode == 1
    assert "a.mov is a colour video (3 channels)" in out.stderr and "--channel 0" in out.stderr
    assert "dask:" not in out.stderr  # refused before any cluster started
    assert not (tmp_path / "x.parquet").exists()
