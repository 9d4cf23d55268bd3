"""NaN and infinite pixels of float frames are filled as masked pixels, counted, warned about.

The oracle is the same frames with those pixels filled by ``fill_masked`` (the fill
``mask=`` uses): daskloc on the NaN frames must give exactly daskloc's features on the
filled frames, and trackpy.locate on the filled frames must agree with them.
"""

import ast
import re
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree

import daskloc.correct
from daskloc.locate import locate_frame, locate_stack, locate_stack_counted, normalize_params
from daskloc.locate._locate import _locate
from daskloc.locate.fill import fill_masked
from tests.locate._oracle import assert_same_features, trackpy_locate
from tests.locate.test_against_trackpy import movie_channel0

#: bulk-water parameters for frames scaled to 0..1 (minmass 20 of 255).
P = dict(diameter=11, minmass=20 / 255, invert=True)


@pytest.fixture(scope="module")
def frames():
    """5 real bulk-water frames (channel 0) as float64 on 0..1."""
    return movie_channel0(5).astype(np.float64) / 255.0


@pytest.fixture(scope="module")
def clean(frames):
    """daskloc's features of the frames without NaN."""
    return locate_stack(frames, **P)


def nan_warnings(record):
    return [w for w in record if issubclass(w.category, UserWarning)
            and "NaN or infinite" in str(w.message)]


def locate_recording(func, *args, **kwargs):
    """``func(*args, **kwargs)`` and the NaN warnings it raised (all shown, none hidden)."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, nan_warnings(record)


def filled(stack):
    """The oracle's frames: every non-finite pixel filled by fill_masked, frame by frame."""
    return np.stack([fill_masked(f, ~np.isfinite(f)) for f in stack])


def feature_pixel(features, frame, k):
    row = features[features.frame == frame].iloc[k]
    return int(round(row.y)), int(round(row.x))


def assert_trackpy_agrees(ours, oracle_frames):
    for i, image in enumerate(oracle_frames):
        assert_same_features(ours[ours.frame == i].drop(columns="frame"),
                             trackpy_locate(image, **P))


@pytest.mark.data  # frames: the real movie
def test_one_nan_pixel_per_frame_on_a_feature_and_elsewhere(frames, clean):
    stack = frames.copy()
    spots = []
    for i in range(len(stack)):
        # frames 0..2: on the centre pixel of a feature; 3..4: on the background
        y, x = feature_pixel(clean, i, 40 * (i + 1)) if i < 3 else (5 + 50 * i, 600 - 7 * i)
        stack[i, y, x] = np.nan
        spots.append((y, x))
    # the problem being fixed: without the fill one NaN pixel wrecks the frame
    raw = _locate(stack[0], normalize_params(**P))
    assert len(raw) < 0.8 * (clean.frame == 0).sum() or np.isnan(raw[:, 7]).all()

    got, warned = locate_recording(locate_stack, stack, **P)
    assert len(warned) == 1
    assert re.search(r"5 NaN or infinite pixels in 5 frames were treated as masked pixels",
                     str(warned[0].message))
    assert "mask" in str(warned[0].message) and "To avoid" in str(warned[0].message)
    oracle = filled(stack)
    pd.testing.assert_frame_equal(got, locate_stack(oracle, **P))
    assert_trackpy_agrees(got, oracle)
    # ep stays finite wherever it is finite without the NaN pixel (nearest feature)
    for i in range(len(stack)):
        before, after = clean[clean.frame == i], got[got.frame == i]
        assert abs(len(after) - len(before)) <= 2
        dist, idx = cKDTree(after[["y", "x"]].to_numpy()).query(before[["y", "x"]].to_numpy())
        ok = (dist < 0.5) & np.isfinite(before.ep.to_numpy())
        assert ok.sum() >= 0.99 * np.isfinite(before.ep).sum()
        assert np.isfinite(after.ep.to_numpy()[idx[ok]]).all()
    # the feature under the NaN pixel is still found
    for i, (y, x) in enumerate(spots[:3]):
        after = got[got.frame == i]
        assert np.hypot(after.y - y, after.x - x).min() < 1.0


@pytest.mark.data  # frames: the real movie
def test_blocks_edges_and_infinities(frames, clean):
    stack = frames[:3].copy()
    y, x = feature_pixel(clean, 0, 100)
    stack[0, y - 2 : y + 2, x - 2 : x + 2] = np.nan  # a 4 x 4 block on a feature
    stack[0, 0, :] = np.nan  # the whole top row
    stack[0, -1, -1] = np.nan  # a corner
    stack[1, 100:140, -3:] = np.nan  # a strip at the right edge
    stack[1, 300, 200] = np.inf
    stack[2, 10:13, 0] = -np.inf  # the left edge
    stack[2, 200:210, 300:310] = np.nan  # a 10 x 10 block, filled from its edges in
    n_bad = 16 + 640 + 1 + 40 * 3 + 1 + 3 + 100
    got, warned = locate_recording(locate_stack, stack, **P)
    assert len(warned) == 1
    assert f"{n_bad} NaN or infinite pixels in 3 frames" in str(warned[0].message)
    oracle = filled(stack)
    assert np.isfinite(oracle).all()
    pd.testing.assert_frame_equal(got, locate_stack(oracle, **P))
    assert_trackpy_agrees(got, oracle)
    assert np.isfinite(got.ep).sum() >= np.isfinite(clean[clean.frame < 3].ep).sum() - 3
    # the fill is that of mask=: the block's centre is the median of filled neighbours
    block = np.zeros(stack.shape[1:], bool)
    block[200:210, 300:310] = True
    np.testing.assert_array_equal(oracle[2, 200:210, 300:310],
                                  fill_masked(frames[2], block)[200:210, 300:310])


@pytest.mark.data  # frames: the real movie
def test_an_all_nan_frame_gives_no_features(frames):
    stack = frames[:3].copy()
    stack[1] = np.nan
    stack[2, 50, 60] = np.nan
    got, warned = locate_recording(locate_stack, stack, frame_numbers=[10, 11, 12], **P)
    assert len(warned) == 1
    assert f"{stack[1].size + 1} NaN or infinite pixels in 2 frames" in str(warned[0].message)
    assert (got.frame == 11).sum() == 0
    want = pd.concat([locate_stack(frames[:1], frame_numbers=[10], **P),
                      locate_stack(filled(stack[2:]), frame_numbers=[12], **P)],
                     ignore_index=True)
    pd.testing.assert_frame_equal(got, want)
    # on its own: an empty table of the usual float64 columns, and one warning
    one, warned = locate_recording(locate_frame, stack[1], **P)
    assert len(one) == 0 and list(one.columns) == list(got.columns.drop("frame"))
    assert (one.dtypes == np.float64).all()
    assert len(warned) == 1
    assert f"{stack[1].size} NaN or infinite pixels in 1 frame were" in str(warned[0].message)
    # the same for a frame of infinities
    _, warned = locate_recording(locate_frame, np.full((64, 64), -np.inf), **P)
    assert len(warned) == 1 and "4096 NaN or infinite pixels" in str(warned[0].message)


@pytest.mark.data  # frames: the real movie
def test_locate_frame_and_float32(frames):
    image = frames[4].astype(np.float32)
    image[123, 456] = np.nan
    got, warned = locate_recording(locate_frame, image, **P)
    assert len(warned) == 1
    assert "1 NaN or infinite pixel in 1 frame was treated" in str(warned[0].message)
    oracle = fill_masked(image, np.isnan(image))
    assert oracle.dtype == np.float32
    pd.testing.assert_frame_equal(got, locate_frame(oracle, **P))
    assert_same_features(got, trackpy_locate(oracle, **P))


@pytest.mark.data  # frames: the real movie
def test_counted_returns_the_counts_and_does_not_warn(frames):
    stack = frames[:2].copy()
    stack[0, 1:3, 1:4] = np.nan
    (got, n_pixels, n_frames, empty), warned = locate_recording(locate_stack_counted, stack, **P)
    assert warned == []
    assert (n_pixels, n_frames) == (6, 1)
    assert empty == {}  # every frame of the movie has features
    pd.testing.assert_frame_equal(got, locate_stack(filled(stack), **P))
    (_, n_pixels, n_frames, empty), _ = locate_recording(locate_stack_counted, frames[:2], **P)
    assert (n_pixels, n_frames) == (0, 0)


@pytest.mark.data  # frames: the real movie
def test_integer_frames_are_not_scanned_and_float_frames_once(frames, monkeypatch):
    """The check costs nothing for integer frames and one isfinite pass per float frame."""
    seen = []
    real = np.isfinite

    def spy(a, *args, **kwargs):
        if np.shape(a) == frames.shape[1:]:
            seen.append(np.asarray(a).dtype)
        return real(a, *args, **kwargs)

    monkeypatch.setattr(np, "isfinite", spy)
    ints = (frames[:2] * 255).round().astype(np.uint8)
    _, warned = locate_recording(locate_stack, ints, diameter=11, minmass=20, invert=True)
    assert seen == [] and warned == []
    _, warned = locate_recording(locate_stack, frames[:2], **P)
    assert seen == [np.dtype(np.float64)] * 2 and warned == []


def test_one_fill_in_one_place():
    """correct.py re-exports the kernel's fill; the kernel imports nothing outside itself
    (in particular not daskloc.correct, which imports dask) but the feature schema, as
    the import-linter contract in pyproject.toml says."""
    from daskloc.locate import fill

    assert daskloc.correct.fill_masked is fill.fill_masked
    assert daskloc.correct.apply_fill is fill.apply_fill
    assert daskloc.correct.fill_plan is fill.fill_plan
    allowed = {"numpy", "numba", "scipy", "pandas"} | set(sys.stdlib_module_names)
    for path in Path(fill.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert (name.split(".")[0] in allowed or name.startswith("daskloc.locate")
                        or name == "daskloc.schema"), \
                    f"{path.name} imports {name}"


def test_fill_masked_fills_every_plane_of_a_stack_of_volumes():
    # (n, z, y, x) frames with a (y, x) mask: every plane from its own neighbours (it
    # once filled plane 0 only, indexing the flattened z * y * x volume by y * x).
    from daskloc.locate.fill import fill_masked

    rng = np.random.default_rng(0)
    volumes = rng.integers(0, 200, size=(2, 3, 6, 7)).astype(np.uint8)
    mask = np.zeros((6, 7), bool)
    mask[2, 3] = mask[0, 0] = True
    got = fill_masked(volumes, mask)
    for n in range(2):
        for z in range(3):
            np.testing.assert_array_equal(got[n, z], fill_masked(volumes[n, z], mask))
            plane = volumes[n, z].astype(float)
            assert got[n, z, 2, 3] == np.rint(np.median(
                [plane[y, x] for y in (1, 2, 3) for x in (2, 3, 4) if (y, x) != (2, 3)]))
