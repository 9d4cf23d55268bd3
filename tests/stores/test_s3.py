"""Parquet and Zarr stores on object storage (S3 through fsspec), against the moto server.

Needs DASKLOC_TEST_S3_ENDPOINT (``.ci/services.sh`` starts moto and sets it; without it
these tests skip, or fail under DASKLOC_REQUIRE_SERVICES=1). Every test uses a fresh
bucket. The conformance suite runs the interface on ``parquet-s3`` and ``zarr-s3`` too;
here: whole batches, resume, store_info, row-group and chunk pruning on S3, tables,
foreign data, and reading the stores with pandas / xarray / zarr alone.
"""

from __future__ import annotations

import io
import warnings

import dask
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
import zarr
from zarr.storage import FsspecStore

from daskloc.locate import locate_stack
from daskloc.pipeline import batch
from daskloc.schema import feature_columns
from daskloc.stores import ParquetStore, open_store, read_features, store_info
from daskloc.stores.zarr import ZarrStore
from tests.conftest import DIAMETER, PARAMS, CountingArray, as_video, make_spots
from tests.stores import _services
from tests.stores._suite import DasklocStoreTests

pytestmark = pytest.mark.services  # the S3-compatible server

FIRST = 100
COLUMNS = list(feature_columns())  # the schema (daskloc.schema)


@pytest.fixture(scope="module")
def video_and_ref():
    arr = make_spots(n_frames=24, seed=11, black=range(12, 16))
    ref = locate_stack(arr, DIAMETER, frame_numbers=np.arange(FIRST, FIRST + 24), **PARAMS)
    return arr, ref


@pytest.fixture
def s3():
    """``(storage_options, bucket, filesystem)`` for a fresh bucket on the test server."""
    import s3fs

    options = _services.s3_storage_options()
    bucket = _services.s3_bucket()
    fs = s3fs.S3FileSystem(endpoint_url=options["endpoint_url"], key=options["key"],
                           secret=options["secret"], skip_instance_cache=True)
    return options, bucket, fs


def expect(ref, frames):
    return ref[ref.frame.isin(list(frames))].reset_index(drop=True)


def keys(fs, prefix):
    """Object keys under a prefix, relative to it, listed afresh."""
    fs.invalidate_cache()
    return sorted(k[len(prefix) + 1:] for k in fs.find(prefix))


def video(arr, counting=False, **kw):
    return as_video(CountingArray(arr, **kw) if counting else arr, chunks=4, first_frame=FIRST)


# ----------------------------------------------------------------- Parquet


def test_parquet_batch_read_resume_and_info(s3, video_and_ref):
    options, bucket, fs = s3
    arr, ref = video_and_ref
    url = f"s3://{bucket}/runs/features.parquet"
    out = batch(video(arr), DIAMETER, store=url, storage_options=options, **PARAMS)
    parts = [f"part-{a:09d}-{a + 4:09d}.parquet" for a in range(100, 124, 4)]
    assert keys(fs, f"{bucket}/runs/features.parquet") == sorted(["_daskloc.parquet"] + parts)
    pd.testing.assert_frame_equal(out.compute().reset_index(), ref[["frame"] + COLUMNS])

    for frames, wanted in [(None, range(100, 124)), (slice(105, 111), range(105, 111)),
                           (range(100, 124, 5), range(100, 124, 5)), ([123, 101], [101, 123])]:
        got = read_features(url, frames, storage_options=options)
        pd.testing.assert_frame_equal(got, expect(ref, wanted))

    info = store_info(url, storage_options=options)
    assert info["backend"] == "parquet" and info["path"] == url
    assert info["complete"] and info["chunks_complete"] == 6 and info["n_features"] == len(ref)

    # plain pandas, no daskloc: the prefix is an ordinary Parquet dataset
    plain = pd.read_parquet(url, storage_options=options)
    plain = plain.sort_values("frame", kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(plain, ref)

    # resume: two chunks lost; only they are computed again
    for name in (parts[1], parts[4]):
        fs.rm_file(f"{bucket}/runs/features.parquet/{name}")
    info = store_info(url, storage_options=options)
    assert not info["complete"] and info["chunks_complete"] == 4
    assert info["frames_complete"] == 16
    counting = CountingArray(arr)
    batch(as_video(counting, chunks=4, first_frame=FIRST), DIAMETER, store=url,
          storage_options=options, do_not_return=True, **PARAMS)
    assert sorted(counting.reads) == [4, 16]
    pd.testing.assert_frame_equal(read_features(url, storage_options=options), ref)
    assert not [k for k in keys(fs, f"{bucket}/runs") if "/." in "/" + k]  # no temp objects


def _frames_table(frames, per_frame=10):
    f = np.repeat(np.asarray(frames, dtype=np.int64), per_frame)
    cols = {c: np.arange(f.size, dtype=np.float64) + 1000 * f for c in COLUMNS}
    cols["frame"] = f
    return pd.DataFrame(cols)


def _metadata(frames):
    from daskloc.locate import normalize_params
    from daskloc.stores import encode_frames

    return {"format": "daskloc-features", "format_version": 2,
            "params": normalize_params(DIAMETER),
            "source": {"frames": encode_frames(frames)},
            "columns": {c: "float64" for c in COLUMNS} | {"frame": "int64"}}


def _corrupt_row_group(data, index):
    """The bytes of a Parquet file with every page of one row group overwritten."""
    md = pq.read_metadata(io.BytesIO(data))
    rg = md.row_group(index)
    out = bytearray(data)
    for j in range(rg.num_columns):
        col = rg.column(j)
        start = col.data_page_offset
        if col.has_dictionary_page and col.dictionary_page_offset:
            start = min(start, col.dictionary_page_offset)
        out[start:start + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    return bytes(out)


def test_parquet_row_groups_are_pruned_on_s3(s3):
    """Footers are read from S3 and only the row groups holding the frames are fetched:
    a corrupt row group breaks only reads of its own frames."""
    options, bucket, fs = s3
    url = f"s3://{bucket}/rg.parquet"
    st = ParquetStore(url, storage_options=options, row_group_rows=20)  # 2 frames a group
    st.prepare()
    st.write_metadata(_metadata(range(0, 16)))
    for a in (0, 8):
        st.append_chunk(a, a + 8, _frames_table(range(a, a + 8)))
    path = st.part_path(0, 8)
    assert path == f"{url}/part-000000000-000000008.parquet"
    assert st.plan(2, 5) == [(path, [1, 2])]
    assert st.plan(0, 16, np.array([1, 9])) == [(path, [0]), (st.part_path(8, 16), [0])]
    key = f"{bucket}/rg.parquet/part-000000000-000000008.parquet"
    fs.pipe_file(key, _corrupt_row_group(fs.cat_file(key), 0))  # frames 0 and 1
    expected = pd.concat([_frames_table(range(0, 8)), _frames_table(range(8, 16))])
    got = read_features(url, slice(2, 12), storage_options=options)
    pd.testing.assert_frame_equal(got,
                                  expected[expected.frame.between(2, 11)].reset_index(drop=True))
    with pytest.raises(OSError):
        read_features(url, [1], storage_options=options)
    assert st.n_rows() == 160


def test_parquet_tables_foreign_objects_and_missing_buckets(s3, video_and_ref):
    options, bucket, fs = s3
    arr, ref = video_and_ref
    url = f"s3://{bucket}/many.parquet"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_features(url, storage_options=options)
    st = open_store(url, "a", table="bulk_water/features", storage_options=options)
    assert not st.location_exists() and not st.exists() and st.complete_chunks() == []
    batch(video(arr), DIAMETER, store=url, table="bulk_water/features",
          storage_options=options, do_not_return=True, **PARAMS)
    assert st.location_exists() and st.exists()
    assert "bulk_water/features/_daskloc.parquet" in keys(fs, f"{bucket}/many.parquet")
    pd.testing.assert_frame_equal(
        read_features(f"{url}#bulk_water/features", storage_options=options), ref)
    with pytest.raises(ValueError, match="holds 1 named table and none at its root: "
                                         "bulk_water/features; name one"):
        read_features(url, storage_options=options)  # the root holds no table: listed

    # foreign objects: a store prefix without metadata is refused; so is clearing a store
    # holding objects daskloc did not write (nothing is removed)
    fs.pipe_file(f"{bucket}/other.parquet/notes.txt", b"mine")
    with pytest.raises(ValueError, match="not a daskloc store"):
        open_store(f"s3://{bucket}/other.parquet", "a", storage_options=options).prepare()
    with pytest.raises(ValueError, match="not a daskloc store"):
        open_store(f"s3://{bucket}/other.parquet", "a", storage_options=options).clear()
    fs.pipe_file(f"{bucket}/many.parquet/bulk_water/features/README.txt", b"mine")
    before = keys(fs, f"{bucket}/many.parquet")
    with pytest.raises(ValueError, match="README.txt"):
        st.clear()
    assert keys(fs, f"{bucket}/many.parquet") == before and st.exists()
    fs.rm_file(f"{bucket}/many.parquet/bulk_water/features/README.txt")
    st.clear()
    assert keys(fs, f"{bucket}/many.parquet") == []
    assert not st.exists() and st.complete_chunks() == []

    fs.pipe_file(f"{bucket}/object.parquet", b"x")
    with pytest.raises(NotADirectoryError, match="an object exists"):
        open_store(f"s3://{bucket}/object.parquet", "a", storage_options=options).prepare()
    missing = f"s3://no-such-bucket-{bucket}/f.parquet"
    with pytest.raises(OSError, match="bucket exists") as e:
        open_store(missing, "a", storage_options=options).prepare()
    assert "Errno None" not in str(e.value)
    with pytest.raises(FileNotFoundError):
        read_features(missing, storage_options=options)


# ----------------------------------------------------------------- Zarr


class S3KeyLog:
    """Records every key zarr GETs through an FsspecStore in this process."""

    def __init__(self, monkeypatch):
        self.keys = []
        original = FsspecStore.get
        log = self

        async def get(self, key, prototype=None, byte_range=None):
            log.keys.append(key)
            return await original(self, key, prototype, byte_range)

        monkeypatch.setattr(FsspecStore, "get", get)

    def chunks(self):
        return sorted(k for k in self.keys if "/c/" in k)


def test_zarr_batch_read_resume_info_and_plain_readers(s3, video_and_ref, monkeypatch):
    options, bucket, fs = s3
    arr, ref = video_and_ref
    url = f"s3://{bucket}/features.zarr"

    def fail_on_chunk_2(first):
        if first == 8:
            raise RuntimeError("reader broke")

    store = ZarrStore(url, storage_options=options, chunk_rows=16)
    with dask.config.set(scheduler="synchronous"):  # chunks 0 and 1 are done when 2 fails
        with pytest.raises(RuntimeError, match="reader broke"):
            batch(video(arr, counting=True, on_read=fail_on_chunk_2), DIAMETER, store=store,
                  **PARAMS)
    assert open_store(url, storage_options=options).complete_chunks() == [(100, 104), (104, 108)]
    info = store_info(url, storage_options=options)
    assert not info["complete"] and info["frames_complete"] == 8
    counting = CountingArray(arr)
    batch(as_video(counting, chunks=4, first_frame=FIRST), DIAMETER, store=url,
          storage_options=options, do_not_return=True, **PARAMS)
    assert sorted(counting.reads) == [8, 12, 16, 20]  # only the missing chunks
    info = store_info(url, storage_options=options)
    assert info["backend"] == "zarr" and info["complete"] and info["n_features"] == len(ref)

    for frames, wanted in [(None, range(100, 124)), (slice(105, 111), range(105, 111)),
                           (range(100, 124, 5), range(100, 124, 5)), ([123, 101], [101, 123])]:
        got = read_features(url, frames, storage_options=options)
        pd.testing.assert_frame_equal(got, expect(ref, wanted))

    # a frame range GETs the watermark, the chunk table (each chunk's identity is checked),
    # its index entries and its rows' chunks only
    frame = zarr.open_array(f"{url}/frame", mode="r", storage_options=options)[:]
    log = S3KeyLog(monkeypatch)
    pd.testing.assert_frame_equal(read_features(url, slice(120, 122), storage_options=options),
                                  expect(ref, [120, 121]))
    r0, r1 = np.searchsorted(frame, [120, 122])
    want = {"_daskloc/watermark/c/0", "_daskloc/chunk_ranges/c/0/0",
            "_daskloc/frame_offsets/c/1"}
    want |= {f"{c}/c/{i}" for c in COLUMNS + ["frame"] for i in range(r0 // 16, (r1 - 1) // 16 + 1)}
    assert set(log.chunks()) == want and len(log.chunks()) == len(want)

    # plain xarray and zarr, no daskloc: the job ended, so default arguments, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(url, storage_options=options)
        df = ds.to_dataframe()[COLUMNS + ["frame"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(df, ref)
    assert set(ds.dims) == {"feature"} and ds.attrs["daskloc"]["format"]
    g = zarr.open_group(url, mode="r", storage_options=options)
    n_chunks, n_rows, origin, stop, _ = (int(v) for v in g["_daskloc/watermark"][:])
    assert (n_chunks, n_rows, origin, stop) == (6, len(ref), 100, 124)
    o = g["_daskloc/frame_offsets"]
    rows = slice(int(o[110 - origin]), int(o[112 - origin]))
    np.testing.assert_array_equal(g["x"][rows], expect(ref, [110, 111]).x.to_numpy())


def test_zarr_on_s3_ignores_and_cuts_rows_beyond_the_watermark(s3, video_and_ref):
    options, bucket, fs = s3
    arr, ref = video_and_ref
    url = f"s3://{bucket}/w.zarr"
    store = ZarrStore(url, table="bulk_water/features", storage_options=options, chunk_rows=16)
    batch(video(arr), DIAMETER, store=store, do_not_return=True, **PARAMS)
    with warnings.catch_warnings():  # the job ended: consolidated metadata at the root
        warnings.simplefilter("error")
        sub = xr.open_zarr(url, group="bulk_water/features", storage_options=options)
        df = sub.to_dataframe()[COLUMNS + ["frame"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(df, ref)
    store.remove_temporary()  # what a writer does first: no consolidated metadata left
    g = zarr.open_group(url, path="bulk_water/features", mode="r+", storage_options=options)
    n = len(ref)
    for c in COLUMNS + ["frame"]:  # what a writer killed mid-append leaves
        g[c].resize((n + 7,))
        g[c][n:] = 5
    st = open_store(url, table="bulk_water/features", storage_options=options)
    pd.testing.assert_frame_equal(st.read(), ref)
    assert st.n_rows() == n
    st.remove_temporary()
    g = zarr.open_group(url, path="bulk_water/features", mode="r", storage_options=options)
    assert all(g[c].shape == (n,) for c in COLUMNS + ["frame"])
    ds = xr.open_zarr(url, group="bulk_water/features", storage_options=options,
                      consolidated=False)
    assert ds.sizes["feature"] == n

    # A corrupt chunk object outside a range is never fetched for it.
    fs.pipe_file(f"{bucket}/w.zarr/bulk_water/features/y/c/0", b"garbage")
    late = range(120, 124)
    pd.testing.assert_frame_equal(st.read(late), expect(ref, late))
    with pytest.raises(Exception):  # noqa: B017 - whatever the codec raises
        st.read(slice(100, 101))
    st.clear()
    assert not st.exists() and st.complete_chunks() == []
    assert not [k for k in keys(fs, f"{bucket}/w.zarr") if k.startswith("bulk_water/features/")
                and k != "bulk_water/features/zarr.json"]


def test_zarr_on_a_missing_bucket(s3):
    options, bucket, _ = s3
    url = f"s3://no-such-bucket-{bucket}/f.zarr"
    st = open_store(url, "a", storage_options=options)
    assert not st.exists() and not st.location_exists() and st.complete_chunks() == []
    with pytest.raises(FileNotFoundError, match="bucket exists") as e:
        st.prepare()
    assert "Errno None" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_features(url, storage_options=options)


# ----------------------------------------------------------------- the conformance suite


class TestParquetS3Store(DasklocStoreTests):
    """The package's store conformance suite on Parquet on the S3 test server."""

    backend = "parquet-s3"
    store_class = ParquetStore
    capabilities = {"supports_remote": True, "lists_tables": True, "concurrent_writers": True,
                    "ordered_appends": False, "live_reads": True}


class TestZarrS3Store(DasklocStoreTests):
    """The package's store conformance suite on Zarr on the S3 test server."""

    backend = "zarr-s3"
    store_class = ZarrStore
    capabilities = {"supports_remote": True, "lists_tables": True, "concurrent_writers": False,
                    "ordered_appends": True, "live_reads": True}
