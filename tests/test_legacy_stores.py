"""Stores written by daskloc 0.1 (before chunks carried their job's identity) still open.

The files in ``tests/data/legacy-0.1/`` were written by daskloc 0.1.0 (commit 07c4384,
the last release without chunk identities) from ``make_spots(n_frames=12, shape=(64,
64), n_particles=4, seed=7)`` in chunks of 4 frames with ``PARAMS``. They are read
exactly as before, reported as unverified, exported, and refused for resuming (their
chunks cannot be checked to be the job's) until ``overwrite=True``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import daskloc
from daskloc.locate import locate_stack
from daskloc.pipeline import batch
from daskloc.stores import StoreMismatchError, read_features, store_info
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots

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
