"""Each stage of daskloc's kernel against trackpy's own stage function, live.

test_against_trackpy.py compares whole ``locate`` results; here every stage of the
Crocker-Grier pipeline is fed the *same* input in both libraries -- trackpy's output of
the stage before -- so a failure names the stage that broke:

invert -> band pass (boxcar background, Gaussian low pass, the two fused) -> scaling to
integers -> percentile threshold -> local maxima -> centre-of-mass refinement and
characterisation -> removal of close features -> background noise -> static error ``ep``.

Each stage runs on frames with Gaussian spots at known sub-pixel positions (numpy,
seeded; uint8, uint16 and float 0..1) and on one frame of the real bulk-water movie
(marked ``data``). The pipeline parameters follow ``trackpy.locate`` (margin, separation,
threshold defaults), see :func:`_trackpy_upstream`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from daskloc.locate.maxima import close_to_drop, local_maxima, percentile_threshold
from daskloc.locate.preprocess import bandpass, gaussian_weights, invert, scale_to_integer
from daskloc.locate.refine import refine
from daskloc.locate.uncertainty import background_noise, static_error
from tests._data import data_path

tp_pre = pytest.importorskip("trackpy.preprocessing")
tp_find = pytest.importorskip("trackpy.find")
tp_masks = pytest.importorskip("trackpy.masks")
tp_refine = pytest.importorskip("trackpy.refine")
tp_unc = pytest.importorskip("trackpy.uncertainty")

#: daskloc's refine() columns, and the names trackpy's refine_com gives them.
REFINE_COLUMNS = ("y", "x", "mass", "raw_mass", "size", "ecc", "signal")
CHARACTERISATION = ("mass", "size", "ecc", "signal", "raw_mass")


def _quiet(fn, *args, **kwargs):
    # trackpy warns on black images, no maxima, all maxima in the margin.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# --------------------------------------------------------------------------- inputs

def synthetic_frame(dtype, seed=7, shape=(192, 256), spacing=21, sigma=1.8):
    """Gaussian spots on a jittered grid at known sub-pixel positions, plus noise.

    Returns the frame (uint8/uint16 counts, or float on 0..1) and the true ``(y, x)``.
    The grid keeps spots about ``spacing`` apart (no overlaps), and two spots are put
    5 px apart so that the close-feature stage has a pair to judge.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    gy, gx = np.mgrid[spacing : h - spacing + 1 : spacing, spacing : w - spacing + 1 : spacing]
    truth = np.stack([gy.ravel(), gx.ravel()], axis=1).astype(float)
    truth += rng.uniform(-0.5, 0.5, truth.shape)
    truth = np.vstack([truth, [[truth[0, 0], truth[0, 1] + 5.0]]])
    amplitude = rng.uniform(0.3, 0.7, len(truth))
    yy, xx = np.mgrid[:h, :w]
    img = 0.1 + 0.015 * rng.standard_normal(shape)
    for (y, x), a in zip(truth, amplitude):
        img += a * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
    img = np.clip(img, 0.0, 1.0)
    if np.issubdtype(np.dtype(dtype), np.integer):
        top = np.iinfo(dtype).max
        img = np.round(img * top).astype(dtype)
    return img, truth


def bulk_water_frame():
    """Channel 0 of the first frame of the real bulk-water movie (dark particles)."""
    import av

    with av.open(str(data_path("bulk-water.mov"))) as container:
        frame = next(container.decode(video=0))
        return np.ascontiguousarray(frame.to_ndarray(format="rgb24")[..., 0])


@dataclass
class Case:
    """One frame, the locate parameters, and trackpy's output of every stage."""

    image: np.ndarray  # as given (before inversion)
    truth: np.ndarray | None  # true positions (synthetic frames)
    diameter: int
    invert: bool
    noise_size: float = 1.0
    percentile: float = 64.0

    @property
    def radius(self):
        return self.diameter // 2

    @property
    def separation(self):  # trackpy.locate's default
        return self.diameter + 1

    @property
    def smoothing_size(self):  # trackpy.locate's default
        return self.diameter

    @property
    def is_float(self):
        return not np.issubdtype(self.image.dtype, np.integer)

    @property
    def threshold(self):  # trackpy.locate's default
        return 1 / 255.0 if self.is_float else 1

    @property
    def margin(self):  # trackpy.locate's margin
        return max(self.radius, self.separation // 2 - 1, self.smoothing_size // 2)


def _trackpy_upstream(case):
    """Run trackpy's stages in the order (and with the arguments) trackpy.locate does."""
    raw = tp_pre.invert_image(case.image) if case.invert else case.image
    bp = tp_pre.bandpass(raw, case.noise_size, case.smoothing_size, case.threshold)
    scale, scaled = tp_pre.convert_to_int(bp, np.uint8 if case.is_float else raw.dtype)
    coords = _quiet(tp_find.grey_dilation, scaled, case.separation, case.percentile,
                    case.margin, precise=False)
    refined = tp_refine.refine_com(raw, scaled, case.radius, coords, engine="numba")
    return dict(raw=raw, bp=bp, scale=scale, scaled=scaled, coords=coords, refined=refined)


CASES = [
    "synthetic-uint8",
    "synthetic-uint16",
    "synthetic-float64",
    pytest.param("bulk-water", marks=pytest.mark.data),
]


@pytest.fixture(scope="module", params=CASES)
def case(request):
    if request.param == "bulk-water":
        c = Case(bulk_water_frame(), None, diameter=11, invert=True)
    else:
        image, truth = synthetic_frame(np.dtype(request.param.split("-")[1]))
        c = Case(image, truth, diameter=9, invert=False)
    c.tp = _trackpy_upstream(c)
    assert len(c.tp["coords"]) > 20, "the frame should give trackpy plenty of peaks"
    return c


# --------------------------------------------------------------------------- band pass

def test_invert_matches_invert_image(case):
    ours = invert(case.image)
    theirs = tp_pre.invert_image(case.image)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.3, 2.0, 3.7])
def test_gaussian_weights_match_gaussian_kernel(sigma):
    # The 1-D kernel of the low pass (trackpy.masks.gaussian_kernel, truncate=4).
    ours = gaussian_weights(sigma)
    theirs = tp_masks.gaussian_kernel(sigma, 4)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-15, atol=0)


@pytest.mark.parametrize("extra", [0, 2, 10])
def test_boxcar_background_matches_boxcar(case, extra):
    # daskloc fuses the boxcar into its band pass; with no low pass (noise_size=0 in
    # both) and no clipping (threshold=-inf) the band pass is raw - boxcar(raw), the
    # nearest boundary to trackpy.preprocessing.boxcar. The boxcar runs in the frame's
    # dtype (integer frames truncate after each axis), so compare to the bit.
    raw = case.tp["raw"]
    size = case.smoothing_size + extra
    ours = bandpass(raw, 0, size, -np.inf)
    theirs = raw.astype(np.float64) - tp_pre.boxcar(raw, size)
    assert ours.dtype == np.float64
    np.testing.assert_array_equal(ours, theirs)
    # The same through trackpy's own bandpass (lshort=0 skips its low pass).
    np.testing.assert_array_equal(ours, tp_pre.bandpass(raw, 0, size, -np.inf))


@pytest.mark.parametrize("sigma", [0.7, 1.0, 1.5])
def test_gaussian_lowpass_matches_lowpass(case, sigma):
    # Likewise the low pass alone: smoothing_size=1 makes daskloc's background the frame
    # itself, so its band pass is lowpass(raw) - raw. (trackpy's bandpass refuses
    # llong <= lshort, so its lowpass is called directly.)
    raw = case.tp["raw"]
    ours = bandpass(raw, sigma, 1, -np.inf)
    theirs = tp_pre.lowpass(raw, sigma, 4) - raw
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ours, theirs)  # documented: bit-identical


def test_bandpass_matches_bandpass(case):
    raw = case.tp["raw"]
    ours = bandpass(raw, case.noise_size, case.smoothing_size, case.threshold)
    theirs = case.tp["bp"]
    assert ours.dtype == theirs.dtype == np.float64
    assert np.count_nonzero(theirs) > 0.05 * theirs.size
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(ours, theirs)  # documented: bit-identical


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("shape", [(5, 7), (1, 9), (9, 1), (3, 3), (2, 200), (64, 33)])
def test_bandpass_small_and_thin_frames(dtype, shape):
    # uint8/uint16 frames take a fused one-pass band pass; frames smaller than the
    # boxcar or the Gaussian (every row and column clamped or zero-padded), bright
    # saturated ones and negative thresholds must still match trackpy to the bit.
    rng = np.random.default_rng(sum(shape))
    top = np.iinfo(dtype).max
    for size, sigma, threshold in [(3, 0.5, 1), (5, 1.0, -5), (11, 1.0, 0), (31, 2.5, 30),
                                   (7, 1.0, 1)]:
        raw = rng.integers(0, top, shape, endpoint=True).astype(dtype)
        if size == 7:
            raw[:] = top
        ours = bandpass(raw, sigma, size, threshold)
        theirs = tp_pre.bandpass(raw, sigma, size, threshold)
        np.testing.assert_array_equal(ours, theirs)


def test_scale_to_integer_matches_convert_to_int(case):
    bp = case.tp["bp"]
    target = np.uint8 if case.is_float else case.tp["raw"].dtype
    scale, scaled = scale_to_integer(bp, target)
    assert scaled.dtype == case.tp["scaled"].dtype == np.dtype(target)
    assert scale == case.tp["scale"]
    np.testing.assert_array_equal(scaled, case.tp["scaled"])
    # With the peak passed in, as _locate does (it comes out of the fused band pass).
    scale2, scaled2 = scale_to_integer(bp, target, peak=bp.max())
    assert scale2 == scale
    np.testing.assert_array_equal(scaled2, scaled)


# --------------------------------------------------------------------------- maxima

def test_percentile_threshold_matches(case):
    scaled = case.tp["scaled"]
    for pct in (0, 10, 50, case.percentile, 90, 99.5, 100):
        ours = percentile_threshold(scaled, pct)
        theirs = tp_find.percentile_threshold(scaled, pct)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0, err_msg=f"{pct=}")


@pytest.mark.parametrize("seed", range(6))
def test_percentile_threshold_small_images(seed):
    # Few pixels, few levels: the percentile falls between two different ranks, so the
    # interpolation (numpy's default method) matters; trackpy calls numpy.percentile.
    rng = np.random.default_rng(seed)
    dtype = (np.uint8, np.uint16, np.int32)[seed % 3]
    image = rng.integers(0, 40, size=(5 + seed, 7)).astype(dtype)
    for pct in (0, 12.5, 33, 50, 64, 81.7, 100):
        ours = percentile_threshold(image, pct)
        theirs = tp_find.percentile_threshold(image, pct)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0, err_msg=f"{pct=}")


def test_local_maxima_match_grey_dilation(case):
    # trackpy.locate calls grey_dilation(precise=False) with its margin; daskloc's
    # local_maxima also takes the mask radius (<= margin here, so no effect).
    ours = local_maxima(case.tp["scaled"], case.separation, case.percentile, case.margin,
                        case.radius)
    theirs = case.tp["coords"]
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)  # same peaks, both in raster order


@pytest.mark.parametrize("separation", [3, 6, 7, 10.5])
@pytest.mark.parametrize("margin", [0, 1, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_local_maxima_plateaus_and_even_windows(separation, margin, dtype):
    # Coarse random integers: many plateaus (equal neighbouring maxima, all reported by
    # trackpy's image == dilation), many peaks at the edges, and window sides odd and
    # even (separation 6 -> side 8: the alignment of scipy's grey_dilation matters).
    rng = np.random.default_rng(int(separation * 10) + margin)
    image = rng.integers(0, 6, size=(61, 83)).astype(dtype)
    image[20:23, 30:34] = 9  # a flat-topped feature
    theirs = _quiet(tp_find.grey_dilation, image, separation, 50, margin, precise=False)
    ours = local_maxima(image, separation, 50, margin)
    assert len(theirs) > 5
    np.testing.assert_array_equal(ours, np.asarray(theirs, dtype=ours.dtype).reshape(-1, 2))


# --------------------------------------------------------------------------- refine

def _as_daskloc_columns(refined_df):
    return refined_df[list(REFINE_COLUMNS)].to_numpy(dtype=np.float64)


def _assert_refined_equal(ours, theirs):
    """Positions within 0.01 px, characterisation within 0.1 % relative."""
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours[:, :2], theirs[:, :2], rtol=0, atol=0.01)
    for col in CHARACTERISATION:
        i = REFINE_COLUMNS.index(col)
        np.testing.assert_allclose(ours[:, i], theirs[:, i], rtol=1e-3, atol=0, err_msg=col)


def test_refine_matches_refine_com(case):
    raw, scaled, coords = case.tp["raw"], case.tp["scaled"], case.tp["coords"]
    ours = refine(raw, scaled, case.radius, coords)
    theirs = _as_daskloc_columns(case.tp["refined"])
    _assert_refined_equal(ours, theirs)
    if case.truth is not None:
        # The input is what it claims to be: every lone spot found near its true
        # position (the planted pair, truth[0] and truth[-1], blends into one peak).
        lone = case.truth[1:-1]
        d = np.hypot(*(ours[:, None, :2] - lone[None]).transpose(2, 0, 1))
        assert (d.min(axis=0) < 0.25).all()


def test_refine_walks_the_mask(case):
    # Start every peak 2 px off (clipped to keep the mask inside the frame) so that the
    # mask has to move -- the iterative part of refine_com -- and with few iterations,
    # so that the cut-off is exercised too.
    raw, scaled, coords = case.tp["raw"], case.tp["scaled"], case.tp["coords"]
    ny, nx = scaled.shape
    r = case.radius
    start = coords + np.array([2, -2])
    start[:, 0] = np.clip(start[:, 0], r, ny - r - 1)
    start[:, 1] = np.clip(start[:, 1], r, nx - r - 1)
    for iterations in (1, 2, 10):
        ours = refine(raw, scaled, r, start, max_iterations=iterations)
        theirs = _as_daskloc_columns(tp_refine.refine_com(
            raw, scaled, r, start, max_iterations=iterations, engine="numba"))
        _assert_refined_equal(ours, theirs)


def test_refine_without_characterisation(case):
    raw, scaled, coords = case.tp["raw"], case.tp["scaled"], case.tp["coords"]
    ours = refine(raw, scaled, case.radius, coords, characterize=False)
    theirs = tp_refine.refine_com(raw, scaled, case.radius, coords, engine="numba",
                                  characterize=False)
    np.testing.assert_allclose(ours[:, :2], theirs[["y", "x"]].to_numpy(), rtol=0, atol=0.01)
    np.testing.assert_allclose(ours[:, 2], theirs["mass"].to_numpy(), rtol=1e-3)
    assert np.isnan(ours[:, 4:]).all()


# --------------------------------------------------------------------------- close pairs

def test_close_to_drop_matches_where_close(case):
    refined = case.tp["refined"]
    pos = refined[["y", "x"]].to_numpy()
    mass = refined["mass"].to_numpy()
    theirs = np.asarray(tp_find.where_close(refined[["y", "x"]], case.separation, mass),
                        dtype=np.intp)
    np.testing.assert_array_equal(close_to_drop(pos, case.separation, mass), theirs)
    if case.truth is not None:
        assert len(theirs) >= 1  # the planted close pair


@pytest.mark.parametrize("seed", range(4))
def test_close_to_drop_random_points_and_ties(seed):
    # Dense random points (many pairs and chains) with coarse masses (many ties, which
    # both break on y + x).
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 60, size=(300, 2))
    pos[:20] = np.round(pos[:20])  # some exact distances
    mass = rng.integers(0, 5, size=300).astype(float)
    # Exact duplicates (what two pixels of one flat peak refine to): equal mass and
    # equal y + x, so only the index order decides which one goes.
    pos[280:] = pos[:20]
    mass[280:] = mass[:20]
    sep = 4.0 + seed
    theirs = np.asarray(tp_find.where_close(pos, sep, mass), dtype=np.intp)
    assert len(theirs) > 10
    np.testing.assert_array_equal(close_to_drop(pos, sep, mass), theirs)


# --------------------------------------------------------------------------- ep

def test_background_noise_matches_measure_noise(case):
    ours = background_noise(case.tp["scaled"], case.tp["raw"], case.radius)
    theirs = tp_unc.measure_noise(case.tp["scaled"], case.tp["raw"], case.radius)
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)


@pytest.mark.parametrize("dtype", ["int8", "int16"])
def test_background_noise_of_signed_frames_matches_measure_noise(case, dtype):
    # Signed 8/16-bit frames are summed as unsigned with the sign bit flipped and the
    # shift taken off the exact sums: values below zero give trackpy's noise still.
    info = np.iinfo(dtype)
    raw = case.tp["raw"].astype(np.float64)
    span = max(float(raw.max() - raw.min()), 1.0)
    signed = np.round((raw - raw.min()) / span * (int(info.max) - int(info.min))
                      + int(info.min)).astype(dtype)
    assert signed.min() < 0 < signed.max()
    ours = background_noise(case.tp["scaled"], signed, case.radius)
    theirs = tp_unc.measure_noise(case.tp["scaled"], signed, case.radius)
    assert np.isfinite(theirs).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12 * int(info.max))


def test_static_error_matches_static_error(case):
    # trackpy.locate calls _static_error with the background-corrected raw mass; its
    # public static_error does the same from a ``mass`` column (negatives -> NaN).
    # Both get trackpy's noise estimate and trackpy's refined raw_mass.
    raw_mass = case.tp["refined"]["raw_mass"].to_numpy(dtype=np.float64)
    black, noise = tp_unc.measure_noise(case.tp["scaled"], case.tp["raw"], case.radius)
    ours = static_error(raw_mass, black, noise, case.radius, case.noise_size)
    n_px = tp_masks.N_binary_mask((case.radius, case.radius), 2)
    features = pd.DataFrame({"mass": raw_mass - n_px * black})
    theirs = tp_unc.static_error(features, noise, case.diameter, case.noise_size).to_numpy()
    # Also as trackpy.locate computes it (the private function, before any NaN rule).
    located = tp_unc._static_error(raw_mass - n_px * black, noise, (case.radius,) * 2,
                                   (case.noise_size,) * 2)
    positive = located > 0
    assert positive.sum() > 10
    np.testing.assert_allclose(ours[positive], located[positive], rtol=1e-3, atol=0)
    # daskloc returns NaN where trackpy.locate gives a meaningless ep <= 0 (documented).
    assert np.isnan(ours[~positive]).all()
    np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=0, equal_nan=True)
