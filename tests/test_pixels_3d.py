"""Per-voxel statistics and corrections of videos of z-stacks (frame, z, y, x): a (y, x)
mask applies to every plane, a (z, y, x) mask voxel by voxel, the background is per
voxel, pixel_stats reduces over frames per voxel. Every expectation is computed here
directly with numpy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import daskloc
from daskloc._pixel_runner import with_defects
from daskloc.correct import (
    apply_fill_plans,
    as_mask,
    correct_video,
    fill_plans,
    subtract_background,
)
from daskloc.video import open_video

N, Z, Y, X = 9, 3, 8, 10
DIMS = ("frame", "z", "y", "x")


def volumes(dtype=np.uint16, seed=0):
    """Random volumes, each plane on a very different level (so a fill taken from the
    wrong plane shows)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 100, (N, Z, Y, X)).astype(np.float64)
    data += (np.arange(Z) * 1000.0)[None, :, None, None]
    return data.astype(dtype)


def video(data, chunks=4):
    return open_video(data, dims=DIMS, chunks=chunks)


def neighbour_median(plane, y, x, bad):
    """The median of the unmasked 3 x 3 neighbours of (y, x) in one plane, by hand."""
    values = [plane[j, i] for j in range(y - 1, y + 2) for i in range(x - 1, x + 2)
              if 0 <= j < plane.shape[0] and 0 <= i < plane.shape[1] and (j, i) != (y, x)
              and not bad[j, i]]
    return np.median(np.asarray(values, dtype=np.float64))


@pytest.mark.parametrize("chunks", [1, 4, 9])
def test_pixel_stats_per_voxel_match_numpy(chunks):
    data = volumes(np.float64) * 1.5 + 1e6  # a large mean: the naive formula would fail
    stats = daskloc.pixel_stats(video(data, chunks))
    assert stats["mean"].dims == ("z", "y", "x") and stats["mean"].shape == (Z, Y, X)
    assert stats["z"].values.tolist() == list(range(Z))
    np.testing.assert_allclose(stats["mean"].values, data.mean(0), rtol=1e-14)
    np.testing.assert_allclose(stats["var"].values, data.var(0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"].values, data.std(0), rtol=1e-9)
    np.testing.assert_array_equal(stats["min"].values, data.min(0))
    np.testing.assert_array_equal(stats["max"].values, data.max(0))
    assert stats.attrs["n_frames"] == N
    assert stats.attrs["first_frame"] == 0 and stats.attrs["last_frame"] == N - 1


def test_stuck_and_hot_voxels_name_their_plane():
    data = volumes()
    data[:, 1, 2, 3] = 555  # stuck in plane 1 only
    data[:, 2, 5, 6] += 900  # hot in plane 2 only
    stats = daskloc.pixel_stats(video(data))
    stuck = daskloc.stuck_pixels(stats)
    assert list(stuck.columns) == ["z", "y", "x", "value"]
    assert stuck[["z", "y", "x"]].values.tolist() == [[1, 2, 3]]
    assert stuck["value"].tolist() == [555.0]
    hot = daskloc.hot_pixels(stats)
    assert list(hot.columns) == ["z", "y", "x", "mean", "local_median", "score"]
    assert hot[["z", "y", "x"]].values.tolist() == [[2, 5, 6]]
    assert hot["mean"].iloc[0] == pytest.approx(data[:, 2, 5, 6].mean())
    # each plane is searched as an image of its own: as hot_pixels on that plane alone
    plane = daskloc.pixel_stats(data[:, 2])
    alone = daskloc.hot_pixels(plane)
    assert alone[["y", "x"]].values.tolist() == [[5, 6]]
    assert hot["score"].iloc[0] == pytest.approx(alone["score"].iloc[0], rel=1e-12)
    # what daskloc pixel-stats writes: per-voxel flags, read back as a (z, y, x) mask
    ds, _, _ = with_defects(stats, hot_threshold=8.0)
    assert ds["stuck"].dims == ("z", "y", "x") and ds["hot"].dims == ("z", "y", "x")
    mask = as_mask(ds, (Z, Y, X))
    assert mask.shape == (Z, Y, X)
    assert np.argwhere(mask).tolist() == [[1, 2, 3], [2, 5, 6]]
    assert np.array_equal(as_mask(stats, (Z, Y, X)), mask)  # found now, same defects


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_a_yx_mask_fills_every_plane_from_that_plane(dtype):
    data = volumes(dtype)
    bad = np.zeros((Y, X), bool)
    bad[[0, 3, 3, 7], [0, 4, 5, 9]] = True  # a corner, two neighbours, an edge
    got = correct_video(video(data), mask=bad).data.compute(scheduler="sync")
    assert got.shape == data.shape and got.dtype == data.dtype
    expected = data.copy()
    for f in range(N):
        for z in range(Z):
            for y, x in np.argwhere(bad):
                m = neighbour_median(data[f, z], y, x, bad)
                expected[f, z, y, x] = np.rint(m) if np.issubdtype(dtype, np.integer) else m
    np.testing.assert_array_equal(got, expected)
    # the plane's own level: nothing leaked in from the planes above or below
    for z in range(Z):
        assert (got[:, z][:, bad] >= 1000 * z).all() and (got[:, z][:, bad] < 1000 * z + 100).all()
    # as the public numpy functions do it
    np.testing.assert_array_equal(apply_fill_plans(data, fill_plans(bad)), expected)


def test_a_zyx_mask_is_per_voxel():
    data = volumes()
    bad = np.zeros((Z, Y, X), bool)
    bad[1, 4, 4] = True
    got = correct_video(video(data), mask=bad).data.compute(scheduler="sync")
    expected = data.copy()
    for f in range(N):
        expected[f, 1, 4, 4] = np.rint(neighbour_median(data[f, 1], 4, 4, bad[1]))
    np.testing.assert_array_equal(got, expected)  # planes 0 and 2 untouched
    # the same voxel as a DataFrame row with a z column; without z: every plane
    rows = pd.DataFrame({"z": [1], "y": [4], "x": [4]})
    assert np.array_equal(as_mask(rows, (Z, Y, X)), bad)
    every = as_mask(rows[["y", "x"]], (Z, Y, X))
    assert every.shape == (Y, X) and np.argwhere(every).tolist() == [[4, 4]]
    with pytest.raises(ValueError, match="'z' column but the video's frames are 2-D"):
        as_mask(rows, (Y, X))
    full = np.zeros((Z, Y, X), bool)
    full[2] = True
    with pytest.raises(ValueError, match="every pixel of z plane 2"):
        correct_video(video(data), mask=full)
    with pytest.raises(ValueError, match=r"z-stacks of shape \(3, 8, 10\).*per voxel.*\(8, 10\)"):
        correct_video(video(data), mask=np.zeros((Y, X + 1), bool))


def test_mask_identity_in_the_metadata():
    data = volumes()
    bad = np.zeros((Y, X), bool)
    bad[2, 2] = True
    assert correct_video(video(data), mask=bad).attrs["correction"]["mask"].startswith(
        "1 pixels sha256:")
    per_voxel = np.zeros((Z, Y, X), bool)
    per_voxel[0, 2, 2] = True
    one = correct_video(video(data), mask=per_voxel).attrs["correction"]["mask"]
    per_voxel[0, 2, 2], per_voxel[1, 2, 2] = False, True  # another plane: another job
    other = correct_video(video(data), mask=per_voxel).attrs["correction"]["mask"]
    assert one.startswith("1 voxels sha256:") and one != other


@pytest.mark.parametrize("dtype", [np.uint16, np.float64])
def test_background_array_per_voxel(dtype):
    data = volumes(dtype)
    background = np.random.default_rng(7).uniform(0, 50, (Z, Y, X))
    background += (np.arange(Z) * 1000.0)[:, None, None]
    got = correct_video(video(data), background=background).data.compute(scheduler="sync")
    values = data.astype(np.float64) + (background.mean() - background)  # frame - B + mean(B)
    if np.issubdtype(dtype, np.integer):
        values = np.clip(np.rint(values), 0, np.iinfo(dtype).max)
    np.testing.assert_array_equal(got, values.astype(dtype))
    np.testing.assert_array_equal(subtract_background(data, background), values.astype(dtype))
    np.testing.assert_array_equal(subtract_background(data[0], background), values[0].astype(dtype))
    with pytest.raises(ValueError, match=r"z-stacks of shape \(3, 8, 10\).*one value per voxel"):
        correct_video(video(data), background=background[0])


@pytest.mark.parametrize("kind", ["mean", "median"])
def test_background_from_the_video_per_voxel(kind):
    data = volumes(np.float64)
    got = correct_video(video(data), background=kind).data.compute(scheduler="sync")
    bg = data.mean(0) if kind == "mean" else np.median(data, axis=0)
    np.testing.assert_allclose(got, data - bg + bg.mean(), rtol=1e-12, atol=1e-9)


def test_median_background_tiles_z_stacks(monkeypatch):
    # a small tile budget: the median is computed in several space tiles, same result
    import daskloc.correct as correct

    data = volumes(np.float64)
    monkeypatch.setattr(correct, "_MEDIAN_TILE_BYTES", N * 8 * X * 3)  # 3 rows a tile
    lazy = correct.median_background(video(data))
    assert lazy.shape == (Z, Y, X) and lazy.chunks[0] == (1,) * Z
    assert len(lazy.chunks[1]) > 1
    np.testing.assert_array_equal(lazy.compute(), np.median(data, axis=0))


def test_locate_inputs_keep_2d_corrections_unchanged():
    # the 2-D path is what it was: a (y, x) mask on (frame, y, x) frames
    data = volumes()[:, 0]
    bad = np.zeros((Y, X), bool)
    bad[3, 3] = True
    got = correct_video(data, mask=bad).data.compute(scheduler="sync")
    assert got.shape == (N, Y, X)
    expected = data.copy()
    for f in range(N):
        expected[f, 3, 3] = np.rint(neighbour_median(data[f], 3, 3, bad))
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(ValueError, match=r"have shape \(8, 10\) \(y, x\)"):
        correct_video(data, mask=np.zeros((Z, Y, X), bool))
