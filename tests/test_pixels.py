"""Per-pixel statistics, stuck and hot pixels, and locating with a mask or a background.

Expected values come from independent computations: numpy's two-pass ``var``/``mean``
on the whole array, tifffile's pixels, planted defects and particles at known places.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from dask.callbacks import Callback

import daskloc
from daskloc.correct import fill_masked, median_background
from daskloc.stores import StoreMismatchError
from tests._data import data_path
from tests.conftest import DIAMETER, PARAMS, CountingArray, as_video, make_spots, parquet_doc

VARS = ("mean", "var", "std", "min", "max")


def numpy_stats(arr):
    """Two-pass statistics with numpy on the whole array (the reference)."""
    a = np.asarray(arr, dtype=np.float64)
    return {"mean": a.mean(0), "var": a.var(0), "std": a.std(0), "min": a.min(0),
            "max": a.max(0)}


# ----------------------------------------------------------------- pixel_stats: numbers


def test_large_mean_matches_numpy_where_the_naive_formula_fails():
    rng = np.random.default_rng(1)
    arr = 1e9 + rng.normal(0.0, 1.0, (300, 6, 7))
    expected = numpy_stats(arr)
    # The naive one-pass formula E[x^2] - E[x]^2 is useless on this data (x^2 ~ 1e18,
    # whose rounding error is ~100): a result close to it would be wrong.
    naive = (arr**2).mean(0) - arr.mean(0) ** 2
    assert np.max(np.abs(naive - expected["var"]) / expected["var"]) > 1.0

    stats = daskloc.pixel_stats(as_video(arr, chunks=7))  # 43 chunks, a deep tree
    assert stats["var"].dims == ("y", "x") and stats["var"].shape == (6, 7)
    for name in VARS:
        assert stats[name].dtype == np.float64
    np.testing.assert_allclose(stats["var"].values, expected["var"], rtol=1e-6)
    np.testing.assert_allclose(stats["std"].values, expected["std"], rtol=1e-6)
    np.testing.assert_allclose(stats["mean"].values, expected["mean"], rtol=1e-14, atol=0)
    np.testing.assert_array_equal(stats["min"].values, expected["min"])
    np.testing.assert_array_equal(stats["max"].values, expected["max"])
    assert np.max(np.abs(stats["var"].values - naive) / expected["var"]) > 1.0
    assert stats.attrs["n_frames"] == 300
    assert stats.attrs["ddof"] == 0


def test_integer_video_population_variance():
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 65535, (50, 9, 11), dtype=np.uint16)
    stats = daskloc.pixel_stats(as_video(arr, chunks=8, first_frame=100))
    expected = numpy_stats(arr)
    for name in ("mean", "var", "std"):
        np.testing.assert_allclose(stats[name].values, expected[name], rtol=1e-12)
    # ddof=0, not the sample variance
    assert not np.allclose(stats["var"].values, arr.astype(float).var(0, ddof=1), rtol=1e-6)
    np.testing.assert_array_equal(stats["min"].values, arr.min(0))
    np.testing.assert_array_equal(stats["max"].values, arr.max(0))
    assert (stats.attrs["first_frame"], stats.attrs["last_frame"]) == (100, 149)
    assert stats.attrs["dtype"] == "uint16"


@pytest.mark.parametrize("chunks", [1, 3, 7, 64])
def test_chunk_size_does_not_matter(chunks):
    rng = np.random.default_rng(3)
    arr = 500.0 + 20.0 * rng.standard_normal((45, 8, 5))
    reference = numpy_stats(arr)
    stats = daskloc.pixel_stats(as_video(arr, chunks=chunks))
    for name in ("mean", "var", "std"):
        np.testing.assert_allclose(stats[name].values, reference[name], rtol=1e-12)
    for name in ("min", "max"):
        np.testing.assert_array_equal(stats[name].values, reference[name])


def test_inputs_numpy_array_and_spatial_chunks():
    rng = np.random.default_rng(4)
    arr = rng.integers(0, 255, (30, 12, 10), dtype=np.uint8)
    expected = numpy_stats(arr)
    from_numpy = daskloc.pixel_stats(arr)
    tiled = xr.DataArray(da.from_array(arr, chunks=(7, 5, 4)), dims=("frame", "y", "x"))
    from_tiles = daskloc.pixel_stats(tiled)
    for stats in (from_numpy, from_tiles):
        np.testing.assert_allclose(stats["var"].values, expected["var"], rtol=1e-12)
        np.testing.assert_array_equal(stats["max"].values, expected["max"])
    with pytest.raises(ValueError, match="channel"):
        daskloc.pixel_stats(xr.DataArray(np.zeros((2, 3, 4, 3)),
                                         dims=("frame", "y", "x", "channel")))


def test_to_zarr_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    arr = rng.integers(0, 4000, (20, 6, 9), dtype=np.uint16)
    stats = daskloc.pixel_stats(as_video(arr, chunks=6))
    stats.to_zarr(tmp_path / "stats.zarr")
    back = xr.open_zarr(tmp_path / "stats.zarr").load()
    xr.testing.assert_identical(back, stats)
    np.testing.assert_allclose(back["var"].values, arr.astype(float).var(0), rtol=1e-12)


# ----------------------------------------------------------------- pixel_stats: memory


class _HeldBlocks(Callback):
    """Peak number of raw (3-D) video blocks held by the synchronous scheduler."""

    def __init__(self):
        super().__init__()
        self.peak = 0

    def _posttask(self, key, result, dsk, state, id):
        held = sum(1 for r in state["cache"].values()
                   if isinstance(r, np.ndarray) and r.ndim == 3)
        self.peak = max(self.peak, held)


def test_streams_every_block_once_without_holding_the_video():
    rng = np.random.default_rng(6)
    arr = rng.integers(0, 255, (96, 16, 24), dtype=np.uint8)
    seen, lock = set(), threading.Lock()

    def once(first):
        with lock:
            if first in seen:
                raise AssertionError(f"block at frame {first} read twice")
            seen.add(first)

    counting = CountingArray(arr, on_read=once)
    video = as_video(counting, chunks=4)  # 24 blocks
    tracker = _HeldBlocks()
    with dask.config.set(scheduler="sync"), tracker:
        stats = daskloc.pixel_stats(video)
    assert sorted(counting.reads) == list(range(0, 96, 4))  # each block once, all blocks
    assert tracker.peak <= 2, tracker.peak  # never the video: a block at a time
    np.testing.assert_allclose(stats["var"].values, arr.astype(float).var(0), rtol=1e-12)


def test_on_a_distributed_cluster(client):
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 255, (40, 10, 12), dtype=np.uint8)
    stats = daskloc.pixel_stats(as_video(arr, chunks=6), client=client)
    np.testing.assert_allclose(stats["var"].values, arr.astype(float).var(0), rtol=1e-12)


# ----------------------------------------------------------------- real data


@pytest.mark.data
def test_stuck_tif_five_stuck_pixels():
    import tifffile

    path = data_path("stuck.tif")
    pixels = tifffile.imread(path)
    assert pixels.shape == (5, 512, 512)
    ys, xs = np.nonzero(np.ptp(pixels, axis=0) == 0)
    assert len(ys) == 5
    stats = daskloc.pixel_stats(str(path))
    stuck = daskloc.stuck_pixels(stats)
    assert list(stuck.columns) == ["y", "x", "value"]
    assert stuck["y"].dtype == np.int64 and stuck["x"].dtype == np.int64
    assert list(zip(stuck["y"], stuck["x"])) == list(zip(ys, xs))
    np.testing.assert_array_equal(stuck["value"].to_numpy(), pixels[0, ys, xs])
    assert (stats["var"].values[ys, xs] == 0).all()
    assert (stats["var"].values > 0).sum() == 512 * 512 - 5
    expected = numpy_stats(pixels)
    for name in ("mean", "var"):
        np.testing.assert_allclose(stats[name].values, expected[name], rtol=1e-12)
    # the pixels of the particles that barely move in these 5 frames are not "hot"
    assert daskloc.hot_pixels(stats).empty


@pytest.mark.data
def test_bulk_water_channel0_matches_numpy():
    video = daskloc.open_video(data_path("bulk-water.mov"), channel=0, chunks=16,
                               frames=slice(0, 64))
    stats = daskloc.pixel_stats(video)
    expected = numpy_stats(video.values)
    for name in ("mean", "var", "std"):
        np.testing.assert_allclose(stats[name].values, expected[name], rtol=1e-12)
    np.testing.assert_array_equal(stats["min"].values, expected["min"])
    assert stats.attrs["source"].endswith("bulk-water.mov")


# ----------------------------------------------------------------- hot pixels

HOT = [(0, 40), (17, 3), (30, 60), (31, 61), (50, 20), (71, 71)]


def hot_video(n_frames=60, seed=10, saturated=False):
    """make_spots frames with HOT pixels 30 grey levels brighter (still noisy, not
    stuck), or ``saturated`` (255 in every frame: hot and stuck)."""
    clean = make_spots(n_frames=n_frames, shape=(72, 72), n_particles=6, seed=seed)
    hot = clean.astype(np.int32)
    for y, x in HOT:
        hot[:, y, x] = 255 if saturated else hot[:, y, x] + 30
    return clean, np.clip(hot, 0, 255).astype(np.uint8)


def test_hot_pixels_found_where_planted_and_none_in_a_clean_video():
    clean, hot = hot_video()
    found = daskloc.hot_pixels(daskloc.pixel_stats(hot))
    assert list(found.columns) == ["y", "x", "mean", "local_median", "score"]
    assert sorted(zip(found["y"], found["x"])) == sorted(HOT)
    mean = hot.astype(float).mean(0)
    np.testing.assert_allclose(found["mean"], mean[found["y"], found["x"]])
    for _, row in found.iterrows():  # the median of the 24 neighbours, computed here
        y, x = int(row.y), int(row.x)
        assert row.local_median == pytest.approx(_neighbour_median(mean, y, x, 2))
    assert (found["score"] > 8).all()
    assert daskloc.hot_pixels(daskloc.pixel_stats(clean)).empty
    assert daskloc.stuck_pixels(daskloc.pixel_stats(hot)).empty


def _neighbour_median(image, y, x, r):
    """Median of the (2r+1)^2 - 1 neighbours, mirrored at the edges (numpy 'reflect')."""
    padded = np.pad(image, r, mode="reflect")
    window = padded[y : y + 2 * r + 1, x : x + 2 * r + 1].ravel().tolist()
    del window[len(window) // 2]
    return float(np.median(window))


def test_a_static_blob_is_not_a_hot_pixel():
    rng = np.random.default_rng(11)
    arr = 100 + rng.integers(0, 8, (40, 40, 40))
    yy, xx = np.mgrid[:40, :40]
    arr = arr + np.rint(60 * np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 2.0)).astype(int)
    stats = daskloc.pixel_stats(arr.astype(np.uint16))
    assert daskloc.hot_pixels(stats).empty
    # without the cluster rule the blob's centre stands out of its neighbourhood
    assert (20, 20) in set(zip(*daskloc.hot_pixels(stats, max_cluster=None)[["y", "x"]]
                               .to_numpy().T.tolist()))


def test_hot_pixels_bad_arguments():
    stats = daskloc.pixel_stats(np.zeros((3, 5, 5), np.uint8))
    with pytest.raises(ValueError, match="odd integer"):
        daskloc.hot_pixels(stats, size=4)
    with pytest.raises(ValueError, match="threshold"):
        daskloc.hot_pixels(stats, threshold=-1)
    with pytest.raises(ValueError, match="mean"):
        daskloc.hot_pixels(stats.drop_vars("mean"))
    with pytest.raises(TypeError, match="Dataset"):
        daskloc.stuck_pixels(np.zeros((5, 5)))


# ----------------------------------------------------------------- mask


def test_fill_masked_is_the_median_of_unmasked_neighbours():
    rng = np.random.default_rng(12)
    frames = rng.integers(0, 1000, (3, 7, 8)).astype(np.float64)
    mask = np.zeros((7, 8), bool)
    mask[0, 0] = True  # corner: 3 neighbours
    mask[3, 3:5] = True  # two adjacent: each has 7 unmasked neighbours
    filled = fill_masked(frames, mask)
    for f in range(3):
        for y, x in zip(*np.nonzero(mask)):
            nbrs = [frames[f, yy, xx] for yy in range(y - 1, y + 2) for xx in range(x - 1, x + 2)
                    if 0 <= yy < 7 and 0 <= xx < 8 and not mask[yy, xx]]
            assert filled[f, y, x] == np.median(nbrs)
    np.testing.assert_array_equal(filled[:, ~mask], frames[:, ~mask])
    # a 3x3 block: its centre has no unmasked neighbour and is filled from the ring
    block = np.zeros((7, 8), bool)
    block[2:5, 2:5] = True
    out = fill_masked(frames[0], block)
    assert np.isfinite(out).all() and out.shape == (7, 8)
    ring = [out[y, x] for y in range(2, 5) for x in range(2, 5) if (y, x) != (3, 3)]
    assert out[3, 3] == np.median(ring)
    # integers: the median of 1, 2, 9, 3, 4, 5, 6, 7 is 4.5, rounded half to even: 4
    centre = np.zeros((3, 3), bool)
    centre[1, 1] = True
    ints = fill_masked(np.array([[1, 2, 9], [3, 100, 4], [5, 6, 7]], np.uint8), centre)
    assert ints.dtype == np.uint8 and ints[1, 1] == 4


def located_near(df, points, radius=2.0):
    return sum(int((np.hypot(df["y"] - y, df["x"] - x) < radius).sum()) for y, x in points)


def test_mask_removes_the_features_of_hot_pixels():
    clean, hot = hot_video(n_frames=24, saturated=True)
    video = as_video(hot, chunks=8)
    plain = daskloc.locate(video, DIAMETER, **PARAMS).compute()
    interior = [(y, x) for y, x in HOT if DIAMETER <= y < 72 - DIAMETER
                and DIAMETER <= x < 72 - DIAMETER]
    assert located_near(plain, interior) >= 24  # hot pixels make features
    stats = daskloc.pixel_stats(video)  # found, not told
    mask = pd.concat([daskloc.stuck_pixels(stats), daskloc.hot_pixels(stats)])
    assert sorted(set(zip(mask["y"], mask["x"]))) == sorted(HOT)
    masked = daskloc.locate(video, DIAMETER, mask=mask, **PARAMS).compute()
    truth = daskloc.locate(as_video(clean, chunks=8), DIAMETER, **PARAMS).compute()
    assert located_near(masked, interior) == located_near(truth, interior)
    assert located_near(masked, interior) <= 2  # only particles passing by


def test_mask_leaves_features_away_from_masked_pixels_alone():
    clean, hot = hot_video(n_frames=24, saturated=True)
    mask = np.zeros(hot.shape[1:], bool)
    for y, x in HOT:
        mask[y, x] = True
    masked = daskloc.locate(as_video(hot, chunks=8), DIAMETER, mask=mask, **PARAMS).compute()
    truth = daskloc.locate(as_video(clean, chunks=8), DIAMETER, **PARAMS).compute()

    def far(df):
        d = np.min([np.hypot(df["y"] - y, df["x"] - x) for y, x in HOT], axis=0)
        return df[d > 2 * DIAMETER]

    a, b = far(truth), far(masked)
    assert len(a) == len(b) > 30
    np.testing.assert_array_equal(a.index, b.index)
    np.testing.assert_allclose(b[["y", "x"]], a[["y", "x"]], atol=0.01)
    # Away from the masked pixels the features are those of the clean video, to the
    # bit in almost every frame. (A filled pixel is the median of its neighbours, not
    # the clean value: that can move a frame's band-pass maximum, which scales the
    # whole frame, and the frame's noise estimate behind ``ep``.)
    cols = ["y", "x", "mass", "size", "ecc", "signal", "raw_mass"]
    same = [f for f in np.unique(a.index)
            if np.array_equal(a.loc[[f], cols].to_numpy(), b.loc[[f], cols].to_numpy())]
    assert len(same) >= 20, same


def test_no_or_empty_mask_is_plain_locate(spots):
    video = as_video(spots, chunks=4)
    plain = daskloc.locate(video, DIAMETER, **PARAMS).compute()
    for mask in (None, np.zeros(spots.shape[1:], bool),
                 pd.DataFrame({"y": np.array([], np.int64), "x": np.array([], np.int64)})):
        got = daskloc.locate(video, DIAMETER, mask=mask, **PARAMS).compute()
        pd.testing.assert_frame_equal(got, plain)


def test_mask_errors_name_both_shapes():
    video = as_video(np.zeros((4, 10, 12), np.uint8))
    with pytest.raises(ValueError, match=r"\(10, 11\).*\(10, 12\)"):
        daskloc.locate(video, DIAMETER, mask=np.zeros((10, 11), bool))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        daskloc.locate(video, DIAMETER, mask=pd.DataFrame({"y": [10], "x": [0]}))
    with pytest.raises(TypeError, match="boolean"):
        daskloc.locate(video, DIAMETER, mask=np.zeros((10, 12), np.float32))
    with pytest.raises(ValueError, match="every pixel"):
        daskloc.locate(video, DIAMETER, mask=np.ones((10, 12), bool))


# ----------------------------------------------------------------- background


def pattern_video(n_frames=40, shape=(128, 128), n_particles=8, n_dust=12, seed=1, dark=False):
    """Moving particles (the truth) over a strong static pattern: a gradient, stripes and
    fixed 'dust' spots as large and bright as the particles. uint8."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    sigma = DIAMETER / 5

    def spot(y, x, a):
        return a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))

    static = 30.0 + 60.0 * xx / w + 25 * np.sin(yy / 9.0)
    dust = rng.uniform(12, np.array(shape) - 12, (n_dust, 2))
    for y, x in dust:
        static += spot(y, x, 90)
    frames, truth = [], []
    for f in range(n_frames):
        img = static + 6 * rng.random(shape)
        for y, x in rng.uniform(12, np.array(shape) - 12, (n_particles, 2)):
            img += spot(y, x, 110)
            truth.append((f, y, x))
        frames.append(img)
    video = np.stack(frames)
    if dark:
        video = 235 - video
    video = np.clip(np.rint(video), 0, 255).astype(np.uint8)
    return video, pd.DataFrame(truth, columns=["frame", "y", "x"]), dust


def recall_precision(found, truth, tol=1.5):
    hits = 0
    for f, g in truth.groupby("frame"):
        ff = found[found["frame"] == f]
        if len(ff):
            d = np.hypot(ff["y"].to_numpy()[:, None] - g["y"].to_numpy()[None],
                         ff["x"].to_numpy()[:, None] - g["x"].to_numpy()[None])
            hits += int((d.min(axis=0) < tol).sum())
    return hits / len(truth), hits / max(1, len(found))


@pytest.mark.parametrize("dark", [False, True], ids=["bright", "dark-inverted"])
def test_background_subtraction_finds_the_particles_not_the_pattern(dark):
    video, truth, dust = pattern_video(dark=dark)
    v = as_video(video, chunks=8)
    kw = dict(minmass=300, invert=dark)
    plain = daskloc.locate(v, DIAMETER, **kw).compute().reset_index()
    recall0, precision0 = recall_precision(plain, truth)
    assert precision0 < 0.6  # the static spots are found in every frame
    assert located_near(plain, dust) >= 0.6 * len(dust) * 40
    for background in ("mean", "median", np.median(video, axis=0)):
        found = daskloc.locate(v, DIAMETER, background=background, **kw).compute().reset_index()
        recall, precision = recall_precision(found, truth)
        assert precision > 0.97, (background, precision)
        assert recall >= recall0 and recall > 0.9, (background, recall)
        assert located_near(found, dust) < 0.05 * len(dust) * 40


@pytest.mark.parametrize("background", ["mean", "median"])
def test_a_dead_nan_pixel_does_not_blank_the_background_subtraction(background):
    # A float camera's dead pixel is NaN in every frame: its mean or median over time is
    # NaN, and mean(B) - B was NaN everywhere, so every corrected frame was NaN and the
    # job found nothing. Now that pixel keeps its NaN (the kernel fills it) and the
    # rest is corrected as before.
    video, truth, _ = pattern_video()
    frames = video.astype(np.float64)
    frames[:, 5, 7] = np.nan
    frames[3, 20, 30] = np.nan  # and one NaN in one frame only
    kw = dict(minmass=300)
    with pytest.warns(UserWarning, match="NaN"):
        found = daskloc.locate(as_video(frames, chunks=8), DIAMETER, background=background,
                               **kw).compute().reset_index()
    recall, precision = recall_precision(found, truth)
    assert precision > 0.97 and recall > 0.9, (recall, precision)
    corrected = daskloc.correct_video(as_video(frames, chunks=8), background=background)
    values = corrected.values
    assert np.isnan(values[:, 5, 7]).all()  # left for the kernel to fill
    assert np.isfinite(values[:, :5]).all() and np.isfinite(values[:, 5, 8]).all()


def test_corrected_frames_equal_an_independent_computation():
    video, _, _ = pattern_video(n_frames=12)
    mask = np.zeros(video.shape[1:], bool)
    mask[5, 7] = True
    b = video.astype(float).mean(0)
    b_filled = b.copy()
    b_filled[5, 7] = np.median([b[y, x] for y in (4, 5, 6) for x in (6, 7, 8) if (y, x) != (5, 7)])
    corrected = daskloc.correct_video(as_video(video, chunks=5), mask=mask, background="mean")
    assert corrected.dtype == np.uint8 and corrected.shape == video.shape
    frames = video.astype(float)
    for f in range(len(frames)):
        frames[f, 5, 7] = np.rint(np.median([frames[f, y, x] for y in (4, 5, 6)
                                             for x in (6, 7, 8) if (y, x) != (5, 7)]))
    expected = np.clip(np.rint(frames - b_filled + b_filled.mean()), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(corrected.values, expected)
    assert corrected.attrs["correction"]["background"] == "mean"


def test_median_background_all_frames_or_every_kth():
    rng = np.random.default_rng(13)
    arr = rng.integers(0, 255, (25, 6, 7), dtype=np.uint8)
    np.testing.assert_array_equal(median_background(as_video(arr, chunks=4)).compute(),
                                  np.median(arr, axis=0))
    sub = median_background(as_video(arr, chunks=4), max_frames=10).compute()
    np.testing.assert_array_equal(sub, np.median(arr[::3], axis=0))  # k = ceil(25/10) = 3


def test_unknown_background_lists_the_options(tmp_path):
    video = as_video(np.zeros((4, 10, 12), np.uint8))
    with pytest.raises(ValueError, match="'mean', 'median'"):
        daskloc.locate(video, DIAMETER, background="average")
    with pytest.raises(ValueError, match="'mean', 'median'"):
        daskloc.batch(video, DIAMETER, store=os.path.join(tmp_path, "f.parquet"),
                      background="average")
    assert not os.listdir(tmp_path)
    with pytest.raises(ValueError, match=r"\(9, 12\).*\(10, 12\)"):
        daskloc.locate(video, DIAMETER, background=np.zeros((9, 12)))


# ----------------------------------------------------------------- batch: identity, resume


def test_batch_records_mask_and_background_and_refuses_others(tmp_path):
    clean, hot = hot_video(n_frames=16)
    video = as_video(hot, chunks=4)
    mask = np.zeros(hot.shape[1:], bool)
    for y, x in HOT:
        mask[y, x] = True
    store = tmp_path / "f.parquet"
    daskloc.batch(video, DIAMETER, store=store, mask=mask, background="median",
                  do_not_return=True, **PARAMS)
    expected = daskloc.locate(video, DIAMETER, mask=mask, background="median",
                              **PARAMS).compute()
    got = daskloc.read_features(store)
    pd.testing.assert_frame_equal(got.set_index("frame"), expected)
    meta = parquet_doc(store)
    assert meta["params"]["background"] == "median"
    assert meta["params"]["mask"].startswith(f"{len(HOT)} pixels sha256:")

    # the same job resumes (nothing to do); another mask, or none, is refused
    daskloc.batch(video, DIAMETER, store=store, mask=mask, background="median",
                  do_not_return=True, **PARAMS)
    other = mask.copy()
    other[1, 1] = True
    with pytest.raises(StoreMismatchError, match="mask: "):
        daskloc.batch(video, DIAMETER, store=store, mask=other, background="median", **PARAMS)
    with pytest.raises(StoreMismatchError, match=r"mask: .* -> None"):
        daskloc.batch(video, DIAMETER, store=store, background="median", **PARAMS)
    with pytest.raises(StoreMismatchError, match=r"background: 'median' -> 'mean'"):
        daskloc.batch(video, DIAMETER, store=store, mask=mask, background="mean", **PARAMS)
    # a DataFrame naming the same pixels is the same mask
    same = pd.DataFrame({"y": [y for y, _ in HOT], "x": [x for _, x in HOT]})
    daskloc.batch(video, DIAMETER, store=store, mask=same, background="median",
                  do_not_return=True, **PARAMS)
    daskloc.batch(video, DIAMETER, store=store, mask=other, overwrite=True,
                  do_not_return=True, **PARAMS)
    assert parquet_doc(store)["params"]["mask"].startswith(
        f"{len(HOT) + 1} pixels")

    # a store without corrections refuses one with, and the reverse
    plain = tmp_path / "plain.parquet"
    daskloc.batch(video, DIAMETER, store=plain, do_not_return=True, **PARAMS)
    assert "mask" not in parquet_doc(plain)["params"]
    with pytest.raises(StoreMismatchError, match=r"background: None -> 'mean'"):
        daskloc.batch(video, DIAMETER, store=plain, background="mean", **PARAMS)


def test_batch_background_mean_on_a_cluster(tmp_path, client):
    video, truth, _ = pattern_video(n_frames=16)
    v = as_video(video, chunks=4)
    store = tmp_path / "f.zarr"
    daskloc.batch(v, DIAMETER, store=store, background="mean", client=client,
                  do_not_return=True, minmass=300)
    expected = daskloc.locate(v, DIAMETER, background="mean", minmass=300).compute()
    pd.testing.assert_frame_equal(daskloc.read_features(store).set_index("frame"), expected)


def test_batch_many_videos_a_mask_of_another_shape_fails_alone(tmp_path):
    clean, hot = hot_video(n_frames=8)
    mask = np.zeros(hot.shape[1:], bool)
    mask[HOT[0]] = True
    videos = {"good": as_video(hot, chunks=4),
              "small": as_video(np.zeros((8, 30, 30), np.uint8), chunks=4)}
    with pytest.raises(daskloc.BatchError, match=r"small.*\(72, 72\).*\(30, 30\)") as info:
        daskloc.batch(videos, DIAMETER, store=tmp_path / "f.parquet", mask=mask, **PARAMS)
    assert info.value.completed == ["good"]


# ----------------------------------------------------------------- CLI


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "daskloc", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.mark.slow
@pytest.mark.data
def test_cli_pixel_stats_on_stuck_tif(tmp_path):
    import tifffile

    path = data_path("stuck.tif")
    pixels = tifffile.imread(path)
    out = tmp_path / "stats.zarr"
    result = run_cli("pixel-stats", path, "--out", out, "--workers", 1)
    assert result.returncode == 0, result.stderr
    ys, xs = np.nonzero(np.ptp(pixels, axis=0) == 0)
    text = result.stdout
    assert "stuck pixels: 5" in text
    for y, x in zip(ys, xs):
        assert f"({y}, {x})" in text
    assert "hot pixels: 0" in text and "5 frames" in text
    assert str(out) in text
    ds = xr.open_zarr(out).load()
    expected = numpy_stats(pixels)
    for name in ("mean", "var", "std"):
        np.testing.assert_allclose(ds[name].values, expected[name], rtol=1e-12)
    np.testing.assert_array_equal(ds["min"].values, pixels.min(0))
    np.testing.assert_array_equal(ds["max"].values, pixels.max(0))
    np.testing.assert_array_equal(ds["stuck"].values, np.ptp(pixels, axis=0) == 0)
    assert not ds["hot"].values.any()
    assert ds.attrs["n_frames"] == 5

    again = run_cli("pixel-stats", path, "--out", out, "--frames", "1:4")
    assert again.returncode == 1 and "already exists" in again.stderr
    assert "Traceback" not in again.stderr


@pytest.mark.slow
def test_cli_locate_with_mask_from_pixel_stats_and_background(tmp_path):
    import tifffile

    clean, hot = hot_video(n_frames=12)
    tif = tmp_path / "hot.tif"
    tifffile.imwrite(tif, hot)
    stats = tmp_path / "stats.zarr"
    assert run_cli("pixel-stats", tif, "--out", stats, "--workers", 1).returncode == 0
    out = tmp_path / "f.parquet"
    result = run_cli("locate", tif, "--diameter", DIAMETER, "--minmass", PARAMS["minmass"],
                     "--mask", stats, "--background", "median", "--chunk-frames", 4,
                     "--workers", 1, "--out", out)
    assert result.returncode == 0, result.stderr
    mask = daskloc.hot_pixels(daskloc.pixel_stats(str(tif)))
    expected = daskloc.locate(daskloc.open_video(str(tif), chunks=4), DIAMETER, mask=mask,
                              background="median", **PARAMS).compute()
    pd.testing.assert_frame_equal(daskloc.read_features(out).set_index("frame"), expected)
    info = run_cli("info", out)
    assert f"mask={len(HOT)} pixels sha256:" in info.stdout and "background=median" in info.stdout

    bad = run_cli("locate", tif, "--diameter", DIAMETER, "--background", "average",
                  "--out", tmp_path / "g.parquet")
    assert bad.returncode == 1 and "'mean', 'median'" in bad.stderr
    assert "Traceback" not in bad.stderr
    np.save(tmp_path / "small.npy", np.zeros((3, 3), bool))
    bad = run_cli("locate", tif, "--diameter", DIAMETER, "--mask", tmp_path / "small.npy",
                  "--out", tmp_path / "g.parquet")
    assert bad.returncode == 1 and "(3, 3)" in bad.stderr and "(72, 72)" in bad.stderr
