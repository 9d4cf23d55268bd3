"""NaN pixels through the pipeline: batch warns once per job, on the client, with the total.

The chunk tasks count the NaN/infinite pixels they fill (the kernel's per-call warning
suppressed: a worker's warning never reaches the client); the client adds the counts
of the chunk summaries up and warns once after the last chunk. The stored features
must equal locate_stack on the frames with those pixels filled by fill_masked.
"""

from __future__ import annotations

import warnings

import dask
import numpy as np
import pandas as pd
import pytest

from daskloc.correct import fill_masked
from daskloc.locate import locate_stack
from daskloc.pipeline import batch, locate
from daskloc.stores import read_features
from tests.conftest import DIAMETER, as_video, make_spots

#: make_spots parameters for frames scaled to 0..1.
FLOAT_PARAMS = {"minmass": 100 / 255}


@pytest.fixture(scope="module")
def float_spots():
    """24 float64 frames (0..1) of spots, frames 8..11 black."""
    return make_spots(black=range(8, 12)).astype(np.float64) / 255.0


def with_nans(frames):
    """NaN/inf pixels in four of the six 4-frame chunks; returns (frames, n_pixels, n_frames)."""
    out = frames.copy()
    ref = locate_stack(frames, DIAMETER, **FLOAT_PARAMS)
    spot = ref[ref.frame == 1].iloc[0]
    out[1, int(round(spot.y)), int(round(spot.x))] = np.nan  # on a feature
    out[2, 0, 0] = np.nan  # a corner
    out[5, 40:43, 50:53] = np.nan  # a block
    out[9, 10, 95] = np.inf  # a black frame, at the edge
    out[14] = np.nan  # a whole frame: no features
    out[21, 60, 20] = -np.inf
    return out, 1 + 1 + 9 + 1 + out[14].size + 1, 6


def filled_reference(frames):
    fixed = frames.copy()
    for i, f in enumerate(frames):
        bad = ~np.isfinite(f)
        if bad.all():
            fixed[i] = 0.0  # a black frame: no features either
        elif bad.any():
            fixed[i] = fill_masked(f, bad)
    return locate_stack(fixed, DIAMETER, **FLOAT_PARAMS)


def nan_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)
            and "NaN or infinite" in str(w.message)]


def run_recording(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, nan_warnings(record)


def test_batch_on_a_cluster_warns_once_with_the_total(float_spots, tmp_path, client):
    frames, n_pixels, n_frames = with_nans(float_spots)
    store = tmp_path / "f.parquet"
    _, warned = run_recording(batch, as_video(frames, chunks=4), DIAMETER, store=store,
                              client=client, do_not_return=True, **FLOAT_PARAMS)
    assert len(warned) == 1, warned
    assert warned[0].startswith(
        f"daskloc.batch: {n_pixels} NaN or infinite pixels in {n_frames} frames were "
        "treated as masked pixels")
    assert "Per video" not in warned[0]
    ref = filled_reference(frames)
    assert (ref.frame == 14).sum() == 0 and (ref.frame == 1).sum() > 0
    pd.testing.assert_frame_equal(read_features(store), ref)
    # a resumed, complete job computes nothing and has nothing to say
    _, warned = run_recording(batch, as_video(frames, chunks=4), DIAMETER, store=store,
                              client=client, do_not_return=True, **FLOAT_PARAMS)
    assert warned == []


def test_batch_without_nans_does_not_warn(float_spots, tmp_path):
    store = tmp_path / "f.parquet"
    _, warned = run_recording(batch, as_video(float_spots, chunks=8), DIAMETER, store=store,
                              do_not_return=True, **FLOAT_PARAMS)
    assert warned == []
    pd.testing.assert_frame_equal(read_features(store), locate_stack(float_spots, DIAMETER,
                                                                     **FLOAT_PARAMS))


def test_batch_of_several_videos_warns_once_per_job_naming_each(float_spots, tmp_path):
    a, n_a, f_a = with_nans(float_spots)
    b = float_spots[:8].copy()
    b[3, 7, 7] = np.nan
    store = tmp_path / "f.parquet"
    videos = {"a": as_video(a, chunks=4), "b": as_video(b, chunks=4),
              "c": as_video(float_spots[:4], chunks=4)}
    _, warned = run_recording(batch, videos, DIAMETER, store=store, do_not_return=True,
                              **FLOAT_PARAMS)
    assert len(warned) == 1, warned
    assert warned[0].startswith(f"daskloc.batch: {n_a + 1} NaN or infinite pixels in "
                                f"{f_a + 1} frames")
    assert warned[0].endswith(f"Per video: a: {n_a} pixels in {f_a} frames; "
                              "b: 1 pixel in 1 frame.")
    pd.testing.assert_frame_equal(read_features(store, video="a"), filled_reference(a))
    pd.testing.assert_frame_equal(read_features(store, video="b"), filled_reference(b))


def test_lazy_locate_fills_and_warns_per_partition_computed(float_spots):
    frames, n_pixels, _ = with_nans(float_spots)
    ddf = locate(as_video(frames, chunks=4), DIAMETER, **FLOAT_PARAMS)
    with dask.config.set(scheduler="synchronous"):
        got, warned = run_recording(ddf.compute)
    # chunks 0, 1, 2 and 3, 5 hold NaN/inf pixels (chunk 4, frames 16..19, none)
    assert len(warned) == 5, warned
    assert any(w.startswith("daskloc.locate, frames 0..3: 2 NaN or infinite pixels in 2 frames")
               for w in warned)
    assert sum(int(w.split(": ")[1].split()[0]) for w in warned) == n_pixels
    ref = filled_reference(frames)
    pd.testing.assert_frame_equal(got, ref.set_index("frame")[got.columns.tolist()])


@pytest.mark.slow
def test_cli_prints_the_warning_once_on_stderr(float_spots, tmp_path):
    import subprocess
    import sys

    import tifffile

    frames, n_pixels, n_frames = with_nans(float_spots.astype(np.float32))
    tifffile.imwrite(tmp_path / "nan.tif", frames)
    out = tmp_path / "f.parquet"
    result = subprocess.run(
        [sys.executable, "-m", "daskloc", "locate", tmp_path / "nan.tif", "--diameter",
         str(DIAMETER), "--minmass", str(FLOAT_PARAMS["minmass"]), "--chunk-frames", "4",
         "--workers", "1", "--out", out],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("NaN or infinite") == 1, result.stderr
    assert (f"daskloc.batch: {n_pixels} NaN or infinite pixels in {n_frames} frames"
            in result.stderr)
    pd.testing.assert_frame_equal(read_features(out), filled_reference(frames))
