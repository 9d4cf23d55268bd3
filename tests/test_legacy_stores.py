"""Stores written by daskloc 0.1 (before chunks carried their job's identity) still open.

The files in ``tests/data/legacy-0.1/`` were written by daskloc 0.1.0 (commit 07c4384,
the last release without chunk identities) from ``make_spots(n_frames=12, shape=(64,
64), n_particles=4, seed=7)`` in chunks of 4 frames with ``PARAMS``. They are read
exactly as before, reported as unverified, exported, and refused for resuming (their
chunks cannot be checked to be the job's) until ``overwrite=True``.

Zarr tables written before the index moved to the sub-group ``_daskloc`` (the index
arrays beside the columns) read and resume in that layout; ``overwrite=True`` moves it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dask
import pandas as pd
import pytest
import xarray as xr

import daskloc
from daskloc.locate import locate_stack
from daskloc.pipeline import batch
from daskloc.stores import StoreMismatchError, read_features, store_info
from tests.conftest import DIAMETER, PARAMS, CountingArray, as_video, make_spots

LEGACY = Path(__file__).parent / "data" / "legacy-0.1"
STORES = ["features.parquet", "features.zarr", "features.h5", "features.db"]


@pytest.fixture(scope="module")
def arr():
    return make_spots(n_frames=12, shape=(64, 64), n_particles=4, seed=7)


@pytest.fixture(params=STORES)
def legacy(request, tmp_path):
    """A copy of one legacy store (tests write next to and into it)."""
    src = LEGACY / request.param
    dst = tmp_path / request.param
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return f"sqlite:///{dst}" if request.param.endswith(".db") else str(dst)


@pytest.mark.slow
def test_a_store_of_daskloc_0_1_reads_as_before(legacy, arr, tmp_path):
    ref = locate_stack(arr, DIAMETER, **PARAMS)
    pd.testing.assert_frame_equal(read_features(legacy), ref)
    pd.testing.assert_frame_equal(read_features(legacy, frames=slice(4, 8)),
                                  ref[(ref.frame >= 4) & (ref.frame < 8)].reset_index(drop=True))
    info = store_info(legacy)
    assert info["complete"] and info["n_features"] == len(ref)
    assert info["verified"] is False and info["ignored_chunks"] == []
    out = subprocess.run([sys.executable, "-m", "daskloc", "info", legacy], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "written by daskloc < 0.2" in out.stdout
    result = daskloc.export(legacy, tmp_path / "o.csv")
    assert result["n_features"] == len(ref)


def test_a_store_of_daskloc_0_1_is_not_resumed_until_overwrite(legacy, arr):
    video = as_video(arr, chunks=4)
    with pytest.raises(StoreMismatchError, match="before chunks carried their job's identity"):
        batch(video, DIAMETER, store=legacy, do_not_return=True, **PARAMS)
    pd.testing.assert_frame_equal(read_features(legacy), locate_stack(arr, DIAMETER, **PARAMS))
    batch(video, DIAMETER, store=legacy, do_not_return=True, overwrite=True, **PARAMS)
    info = store_info(legacy)
    assert info["verified"] and info["complete"]
    pd.testing.assert_frame_equal(read_features(legacy), locate_stack(arr, DIAMETER, **PARAMS))


# ----------------------------------------------------------------- Zarr: the flat layout


def _flatten_zarr(path):
    """Put a Zarr table back into the layout written before the index moved: the index
    arrays beside the columns in the table's group, no sub-group, no consolidated
    metadata (what every Zarr store of daskloc looked like until then)."""
    for name in ("frame_offsets", "chunk_ranges", "watermark"):
        os.replace(path / "_daskloc" / name, path / name)
    shutil.rmtree(path / "_daskloc")
    doc = json.loads((path / "zarr.json").read_text())
    doc.pop("consolidated_metadata", None)
    (path / "zarr.json").write_text(json.dumps(doc))


def test_a_zarr_table_with_its_index_beside_the_columns_reads_and_resumes(arr, tmp_path):
    """A table of the flat layout reads as before and a resumed job keeps that layout
    (the watermark's place says which one a table has); overwrite=True re-creates it with
    the index in the sub-group."""
    ref = locate_stack(arr, DIAMETER, **PARAMS)
    path = tmp_path / "flat.zarr"

    def fail_on(first):
        if first == 8:
            raise RuntimeError("reader broke")

    with dask.config.set(scheduler="synchronous"):  # chunks 0 and 1 land, then it fails
        with pytest.raises(RuntimeError, match="reader broke"):
            batch(as_video(CountingArray(arr, on_read=fail_on), chunks=4), DIAMETER,
                  store=str(path), do_not_return=True, **PARAMS)
    _flatten_zarr(path)
    part = ref[ref.frame < 8].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_features(path), part)
    pd.testing.assert_frame_equal(read_features(path, frames=slice(4, 8)),
                                  ref[(ref.frame >= 4) & (ref.frame < 8)].reset_index(drop=True))
    assert store_info(path)["verified"] is True

    counting = CountingArray(arr)
    batch(as_video(counting, chunks=4), DIAMETER, store=str(path), do_not_return=True,
          **PARAMS)
    assert sorted(counting.reads) == [8]  # resumed: only the missing chunk
    assert (path / "watermark" / "zarr.json").exists() and not (path / "_daskloc").exists()
    pd.testing.assert_frame_equal(read_features(path), ref)
    info = store_info(path)
    assert info["complete"] and info["verified"]
    ds = xr.open_zarr(path)  # consolidated when the job ended; the index is in the group
    assert {"watermark", "frame_offsets"} <= set(ds.data_vars)
    df = ds[list(ref.columns)].to_dataframe().reset_index(drop=True)
    pd.testing.assert_frame_equal(df, ref)

    batch(as_video(arr, chunks=4), DIAMETER, store=str(path), do_not_return=True,
          overwrite=True, **PARAMS)
    assert (path / "_daskloc" / "watermark" / "zarr.json").exists()
    assert not (path / "watermark").exists()
    pd.testing.assert_frame_equal(read_features(path), ref)
    pd.testing.assert_frame_equal(
        xr.open_zarr(path).to_dataframe()[list(ref.columns)].reset_index(drop=True), ref)


# ----------------------------------------------------------------- before dims were recorded

PRE_3D = Path(__file__).parent / "data" / "pre-3d"


@pytest.mark.parametrize("name", STORES)
def test_a_2d_store_written_before_dims_were_recorded_resumes(name, arr, tmp_path):
    """The stores in ``tests/data/pre-3d/`` were written by daskloc 51477cc (before 3-D
    videos; ``make_stores.py`` there), two of three chunks done. The 2-D job keeps its
    identity now that the metadata records dims and columns, so the same job resumes:
    only the missing chunk is located, and the table is the uninterrupted one."""
    src, dst = PRE_3D / name, tmp_path / name
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    url = f"sqlite:///{dst}" if name.endswith(".db") else str(dst)
    before = daskloc.stores.open_store(url, "r").read_metadata()
    assert "dims" not in before  # written before dims existed
    ref = locate_stack(arr, DIAMETER, **PARAMS)
    info = store_info(url)
    assert info["chunks_complete"] == 2 and not info["complete"]
    assert info["dims"] == ["frame", "y", "x"]  # a document without dims is 2-D

    counting = CountingArray(arr)
    batch(as_video(counting, chunks=4), DIAMETER, store=url, do_not_return=True, **PARAMS)
    assert sorted(counting.reads) == [8]  # resumed: only the missing chunk
    pd.testing.assert_frame_equal(read_features(url), ref)
    after = daskloc.stores.open_store(url, "r").read_metadata()
    assert after["job"] == before["job"]  # the same identity
    assert after["dims"] == ["frame", "y", "x"] and list(after["columns"]) == list(ref.columns)
    assert store_info(url)["complete"]
