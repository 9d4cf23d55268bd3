"""daskloc.stores: the Parquet feature store, read_features, store_info, metadata."""

from __future__ import annotations

import json
import os
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import daskloc
from daskloc.locate import locate_stack, normalize_params
from daskloc.pipeline import StoreMismatchError, batch
from daskloc.stores import (
    ParquetStore,
    encode_frames,
    open_store,
    read_features,
    store_info,
)
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots, parquet_doc
from tests.stores._suite import DasklocStoreTests

FIRST = 100  # absolute number of the first frame of the test videos


@pytest.fixture(scope="module")
def video_and_ref():
    arr = make_spots(n_frames=24, seed=11, black=range(12, 16))
    ref = locate_stack(arr, DIAMETER, frame_numbers=np.arange(FIRST, FIRST + 24), **PARAMS)
    return arr, ref


@pytest.fixture
def full_store(video_and_ref, tmp_path):
    arr, _ = video_and_ref
    store = tmp_path / "f.parquet"
    batch(as_video(arr, chunks=4, first_frame=FIRST), DIAMETER, store=store,
          do_not_return=True, **PARAMS)
    return store


def expect(ref, frames):
    return ref[ref.frame.isin(list(frames))].reset_index(drop=True)


# ----------------------------------------------------------------- read_features


@pytest.mark.parametrize(
    "frames, wanted",
    [
        (None, range(100, 124)),
        (slice(105, 111), range(105, 111)),
        (range(105, 111), range(105, 111)),
        (range(100, 124, 3), range(100, 124, 3)),
        (slice(101, 124, 5), range(101, 124, 5)),
        ([117, 101, 117, 103], [101, 103, 117]),
        (np.array([104, 105]), [104, 105]),
        (110, [110]),
        (slice(None, 104), range(100, 104)),
        (slice(120, None), range(120, 124)),
    ],
)
def test_read_features_selections(full_store, video_and_ref, frames, wanted):
    _, ref = video_and_ref
    got = read_features(full_store, frames)
    assert isinstance(got.index, pd.RangeIndex)
    assert list(got.dtypes) == [np.float64] * 8 + [np.int64]
    assert got["frame"].is_monotonic_increasing
    expected = expect(ref, wanted)
    assert len(expected) > 0
    pd.testing.assert_frame_equal(got, expected)


def test_read_outside_the_source_raises(full_store):
    with pytest.raises(ValueError, match=r"0:10.*100\.\.123"):
        read_features(full_store, slice(0, 10))
    with pytest.raises(ValueError, match=r"120:130.*100\.\.123"):
        read_features(full_store, slice(120, 130))
    with pytest.raises(ValueError, match=r"\[99\].*100\.\.123"):
        read_features(full_store, [99, 100])
    with pytest.raises(ValueError, match="non-negative"):
        read_features(full_store, [-1])
    with pytest.raises(ValueError, match="step"):
        read_features(full_store, slice(100, 110, -1))
    with pytest.raises(TypeError):
        read_features(full_store, "100:110")


def test_frames_not_stored_give_an_empty_table_with_the_schema(full_store):
    os.remove(full_store / "part-000000104-000000108.parquet")
    for frames in (slice(104, 108), [105, 106], slice(110, 110), range(112, 116)):
        got = read_features(full_store, frames)  # 112..115 are black: stored, no features
        assert len(got) == 0
        assert list(got.columns) == ["y", "x", "mass", "size", "ecc", "signal", "raw_mass",
                                     "ep", "frame"]
        assert list(got.dtypes) == [np.float64] * 8 + [np.int64]


def test_read_opens_only_the_files_that_can_hold_the_frames(full_store, video_and_ref):
    """A corrupt part file breaks reads of its frames only: other files are never opened."""
    _, ref = video_and_ref
    (full_store / "part-000000108-000000112.parquet").write_bytes(b"not parquet at all")
    pd.testing.assert_frame_equal(read_features(full_store, slice(100, 108)),
                                  expect(ref, range(100, 108)))
    pd.testing.assert_frame_equal(read_features(full_store, [107, 112, 123]),
                                  expect(ref, [107, 112, 123]))
    # a stepped selection whose frames skip the corrupt file's range 108..111
    pd.testing.assert_frame_equal(read_features(full_store, range(100, 124, 12)),
                                  expect(ref, [100, 112]))
    with pytest.raises(pa.ArrowInvalid):
        read_features(full_store, slice(106, 110))
    with pytest.raises(pa.ArrowInvalid):
        read_features(full_store, [111])
    st = open_store(full_store)
    assert [os.path.basename(p) for p, _ in st.plan(103, 105)] == [
        "part-000000100-000000104.parquet", "part-000000104-000000108.parquet"]


def _frames_table(frames, per_frame=10):
    f = np.repeat(np.asarray(frames, dtype=np.int64), per_frame)
    n = f.size
    cols = {c: np.arange(n, dtype=np.float64) + 1000 * f
            for c in ("y", "x", "mass", "size", "ecc", "signal", "raw_mass", "ep")}
    cols["frame"] = f
    return pd.DataFrame(cols)


def _metadata(frames):
    return {
        "format": "daskloc-features",
        "format_version": 2,
        "params": normalize_params(DIAMETER),
        "source": {"frames": encode_frames(frames)},
        "columns": {c: "float64" for c in ("y", "x", "mass", "size", "ecc", "signal",
                                           "raw_mass", "ep")} | {"frame": "int64"},
    }


def _corrupt_row_group(path, index):
    md = pq.read_metadata(path)
    rg = md.row_group(index)
    with open(path, "r+b") as f:
        for j in range(rg.num_columns):
            col = rg.column(j)
            start = col.data_page_offset
            if col.has_dictionary_page and col.dictionary_page_offset:
                start = min(start, col.dictionary_page_offset)
            f.seek(start)
            f.write(b"\xff" * col.total_compressed_size)


def test_read_skips_row_groups_outside_the_frames(tmp_path):
    """Row groups are chosen from their frame statistics: a corrupt row group is not read."""
    st = ParquetStore(tmp_path / "rg.parquet", row_group_rows=20)  # 2 frames per group
    st.prepare()
    st.write_metadata(_metadata(range(0, 16)))
    for a in (0, 8):
        st.append_chunk(a, a + 8, _frames_table(range(a, a + 8)))
    path = st.part_path(0, 8)
    assert pq.read_metadata(path).num_row_groups == 4
    assert st.plan(2, 5) == [(path, [1, 2])]
    assert st.plan(0, 16, np.array([1, 9])) == [(path, [0]), (st.part_path(8, 16), [0])]
    expected = pd.concat([_frames_table(range(0, 8)), _frames_table(range(8, 16))])
    _corrupt_row_group(path, 0)  # frames 0 and 1
    got = read_features(st.path, slice(2, 12))
    pd.testing.assert_frame_equal(got,
                                  expected[expected.frame.between(2, 11)].reset_index(drop=True))
    with pytest.raises(OSError):  # arrow reports the corrupt page as an OSError
        read_features(st.path, [1])


def test_missing_and_foreign_stores(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        read_features(tmp_path / "nowhere.parquet")
    with pytest.raises(FileNotFoundError, match="nowhere.parquet"):
        store_info(tmp_path / "nowhere.parquet")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="not a daskloc feature store"):
        read_features(tmp_path / "plain")
    with pytest.raises(ValueError, match="unknown store location"):
        open_store("ftp://host/f.parquet")
    with pytest.raises(ValueError, match="only Parquet .* and Zarr .* object storage"):
        open_store("s3://bucket/f.h5")
    with pytest.raises(ValueError, match="table name"):
        open_store(tmp_path / "f.parquet", "a", table="bad name!")


def test_the_store_is_a_plain_parquet_dataset(full_store, video_and_ref):
    """pyarrow.dataset and pandas read the directory directly, skipping metadata and temp files."""
    _, ref = video_and_ref
    (full_store / ".part-000000100-000000104.parquet.0123.tmp").write_bytes(b"PAR1 partial")
    via_arrow = ds.dataset(full_store, format="parquet").to_table().to_pandas()
    via_arrow = via_arrow.sort_values("frame", kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(via_arrow, ref)
    pd.testing.assert_frame_equal(read_features(full_store), ref)
    schema = pq.read_schema(full_store / "part-000000100-000000104.parquet")
    assert schema.field("frame").type == pa.int64()
    md = pq.read_metadata(full_store / "part-000000100-000000104.parquet")
    assert md.row_group(0).column(0).compression == "ZSTD"


def test_parts_dictionary_encode_the_frame_column_only(full_store):
    """Measurements (floats that hardly repeat) are stored plain, frame with a
    dictionary: trying a dictionary on every float column cost two thirds of a write."""
    md = pq.read_metadata(full_store / "part-000000100-000000104.parquet")
    names = md.schema.names
    encodings = {names[i]: set(md.row_group(0).column(i).encodings)
                 for i in range(md.num_columns)}
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert encodings["frame"] & dictionary, encodings
    floats = [n for n in names if n != "frame"]
    assert {"x", "y", "mass"} <= set(floats)
    assert all(not encodings[n] & dictionary for n in floats), encodings


# ----------------------------------------------------------------- metadata, info


def test_metadata_json_content(tmp_path):
    arr = make_spots(n_frames=12, shape=(64, 64), n_particles=4, seed=2)
    src = tmp_path / "video.npy"
    np.save(src, arr)
    attrs = {"source": str(src), "fps": 25.0, "n_frames": 30, "original_shape": (30, 64, 64),
             "original_dtype": "uint8"}
    video = as_video(arr, chunks=5, first_frame=10, attrs=attrs)  # frames 10..21 of 30
    store = tmp_path / "f.parquet"
    batch(video, DIAMETER, store=store, do_not_return=True, minmass=80, invert=False)
    meta = parquet_doc(store)  # plain JSON in a plain Parquet footer
    assert meta["format"] == "daskloc-features" and meta["format_version"] == 2
    assert meta["daskloc_version"] == daskloc.__version__
    assert meta["params"] == normalize_params(DIAMETER, minmass=80)
    s = meta["source"]
    st = os.stat(src)
    assert s["path"] == str(src) and s["file_size"] == st.st_size
    assert s["file_mtime_ns"] == st.st_mtime_ns
    assert s["n_frames"] == 30 and s["frames"] == {"start": 10, "stop": 22, "step": 1}
    assert s["shape"] == [12, 64, 64] and s["dtype"] == "uint8" and s["fps"] == 25.0
    assert s["original_shape"] == [30, 64, 64]
    assert meta["chunking"]["chunks"] == [[10, 15], [15, 20], [20, 22]]
    assert meta["complete_chunks"] == [[10, 15], [15, 20], [20, 22]]
    assert meta["finished"] is True
    assert meta["n_features"] == len(read_features(store)) > 0
    assert list(meta["columns"]) == ["y", "x", "mass", "size", "ecc", "signal", "raw_mass",
                                     "ep", "frame"]
    for key in ("created", "updated"):
        assert datetime.fromisoformat(meta[key]).tzinfo is not None
    import dask
    import numpy
    import pyarrow

    assert meta["versions"]["dask"] == dask.__version__
    assert meta["versions"]["pyarrow"] == pyarrow.__version__
    assert meta["versions"]["numpy"] == numpy.__version__

    # the same file, modified: a different source
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(StoreMismatchError, match="file_mtime_ns"):
        batch(video, DIAMETER, store=store, minmass=80)


def test_store_info_while_incomplete(full_store, video_and_ref):
    _, ref = video_and_ref
    info = store_info(full_store)
    assert info["complete"] and info["chunks_complete"] == info["chunks_total"] == 6
    assert info["frames_complete"] == info["frames_total"] == 24
    assert (info["first_frame"], info["last_frame"]) == (100, 123)
    assert info["n_features"] == len(ref)
    assert info["params"]["minmass"] == PARAMS["minmass"]
    os.remove(full_store / "part-000000116-000000120.parquet")
    info = store_info(full_store)
    assert not info["complete"] and info["chunks_complete"] == 5
    assert info["frames_complete"] == 20
    assert info["n_features"] == len(ref[~ref.frame.between(116, 119)])


def test_stepped_frame_selection(tmp_path):
    arr = make_spots(n_frames=12, shape=(64, 64), n_particles=4, seed=4)
    video = as_video(arr, chunks=4)
    video = video.assign_coords(frame=np.arange(0, 24, 2))  # frames 0, 2, ..., 22
    store = tmp_path / "f.parquet"
    out = batch(video, DIAMETER, store=store, **PARAMS)
    ref = locate_stack(arr, DIAMETER, frame_numbers=np.arange(0, 24, 2), **PARAMS)
    assert out.divisions == (0, 8, 16, 22)
    assert store_info(store)["frames_complete"] == 12
    pd.testing.assert_frame_equal(read_features(store, slice(3, 9)), expect(ref, [4, 6, 8]))
    pd.testing.assert_frame_equal(read_features(store, [5, 7]), expect(ref, []))
    pd.testing.assert_frame_equal(out.compute(), ref.set_index("frame")[list(ref.columns[:-1])])


# ----------------------------------------------------------------- the store interface


def test_append_chunk_checks_frames_and_clear_removes_only_ours_or_nothing(tmp_path):
    st = open_store(tmp_path / "s.parquet", "a")
    assert isinstance(st, ParquetStore) and not st.exists()
    st.prepare()
    st.write_metadata(_metadata(range(0, 20)))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        st.append_chunk(0, 4, _frames_table([3, 4]))
    st.append_chunk(4, 8, _frames_table([7, 5]))  # sorted on write
    st.append_chunk(0, 4, _frames_table([]))
    assert st.complete_chunks() == [(0, 4), (4, 8)]
    assert st.n_rows() == 20
    assert list(st.read()["frame"]) == [5] * 10 + [7] * 10
    (tmp_path / "s.parquet" / "README.txt").write_text("mine")
    before = sorted(os.listdir(tmp_path / "s.parquet"))
    with pytest.raises(ValueError, match="README.txt"):  # a file of the user's: refused...
        st.clear()
    assert sorted(os.listdir(tmp_path / "s.parquet")) == before  # ...before anything goes
    (tmp_path / "s.parquet" / "README.txt").unlink()
    (tmp_path / "s.parquet" / "sub").mkdir()  # a folder (another table's place) stays
    st.clear()
    assert os.listdir(tmp_path / "s.parquet") == ["sub"]
    assert st.read_metadata() is None


# ----------------------------------------------------------------- the conformance suite


class TestParquetStore(DasklocStoreTests):
    """The package's store conformance suite on a local Parquet directory."""

    backend = "parquet"
    store_class = ParquetStore
    capabilities = {"supports_remote": True, "lists_tables": True, "concurrent_writers": True,
                    "ordered_appends": False, "live_reads": True}


def test_plain_tools_open_the_store_in_one_obvious_call(tmp_path):
    """pandas, pyarrow, polars and duckdb read the feature table of the store folder;
    polars refused the folder while the metadata was a JSON file beside the parts."""
    import duckdb
    import polars as pl
    import pyarrow.parquet as pq

    arr = make_spots(n_frames=12, shape=(64, 64), n_particles=5, seed=8)
    store = tmp_path / "f.parquet"
    batch(as_video(arr, chunks=4), DIAMETER, store=store, do_not_return=True, **PARAMS)
    want = locate_stack(arr, DIAMETER, **PARAMS)
    assert sorted(os.listdir(store)) == ["_daskloc.parquet", *(
        f"part-{a:09d}-{a + 4:09d}.parquet" for a in (0, 4, 8))]  # nothing else left
    tables = {
        "pandas": pd.read_parquet(store),
        "pyarrow": pq.read_table(store).to_pandas(),
        "polars": pl.read_parquet(store).to_pandas(),
        "duckdb": duckdb.sql(f"SELECT * FROM read_parquet('{store}/*.parquet')").df(),
    }
    for tool, got in tables.items():
        got = got.sort_values(["frame", "y", "x"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(
            got, want.sort_values(["frame", "y", "x"]).reset_index(drop=True),
            check_dtype=tool != "duckdb", obj=tool)


def test_a_store_with_the_json_metadata_of_0_2_resumes_and_moves_to_the_new_file(tmp_path):
    """Stores written before the metadata became ``_daskloc.parquet`` kept it as
    ``_daskloc.json`` (the same document): they read, resume without redoing a chunk,
    and their next write replaces the JSON file."""
    arr = make_spots(n_frames=16, shape=(64, 64), n_particles=5, seed=12)
    store = tmp_path / "f.parquet"
    video = as_video(arr, chunks=4)
    batch(video[:8], DIAMETER, store=store, do_not_return=True, **PARAMS)
    # the layout of then: the document as JSON text, no _daskloc.parquet
    doc = parquet_doc(store)
    (store / "_daskloc.json").write_text(json.dumps(doc))
    (store / "_daskloc.parquet").unlink()
    parts = {n: os.stat(store / n).st_mtime_ns for n in os.listdir(store) if n[:5] == "part-"}
    pd.testing.assert_frame_equal(read_features(store),
                                  locate_stack(arr[:8], DIAMETER, **PARAMS))
    with pytest.raises(StoreMismatchError, match="n_frames"):  # still checked as a job
        batch(video, DIAMETER, store=store, do_not_return=True, **PARAMS)
    batch(video[:8], DIAMETER, store=store, do_not_return=True, **PARAMS)  # resumes
    assert {n: os.stat(store / n).st_mtime_ns for n in parts} == parts  # nothing redone
    assert not (store / "_daskloc.json").exists() and parquet_doc(store)["params"] == doc[
        "params"]
