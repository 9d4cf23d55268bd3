"""3-D (z, y, x) and anisotropic locate, compared live with trackpy on the same images."""

import warnings

import numpy as np
import pytest

from daskloc import locate_frame
from daskloc.locate import job_columns, locate_stack, normalize_params
from tests.locate._oracle import assert_same_features, trackpy_locate


def _spots(shape, positions, sigma, amplitude=150.0, background=20.0):
    """Gaussian spots of per-axis ``sigma`` at sub-pixel ``positions`` (float64)."""
    image = np.full(shape, background, dtype=np.float64)
    sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(shape),))
    for p in positions:
        box = tuple(slice(max(int(c - 4 * s), 0), min(int(c + 4 * s) + 2, n))
                    for c, s, n in zip(p, sigma, shape))
        grids = np.ogrid[box]
        image[box] += amplitude * np.exp(
            -sum(((g - c) / s) ** 2 for g, c, s in zip(grids, p, sigma)) / 2)
    return image


def _uint8(image):
    return np.clip(image, 0, 255).astype(np.uint8)


def _noisy_field(shape, n, sigma, seed, noise=10.0, amplitude=150.0):
    rng = np.random.default_rng(seed)
    positions = rng.uniform(3, np.array(shape) - 3, size=(n, len(shape)))
    image = _spots(shape, positions, sigma, amplitude=amplitude)
    return _uint8(image + rng.normal(0, noise, shape))


def _columns(frame):
    return list(frame.columns)


CASES = {
    # name: (shape, n, sigma, diameter, params)
    "3-D isotropic": ((24, 96, 96), 60, 2.0, 9, {}),
    "3-D anisotropic": ((24, 96, 96), 60, (1.2, 2.2, 2.2), (5, 11, 11), {}),
    "3-D anisotropic, per-axis separation and smoothing": (
        (24, 96, 96), 60, (1.2, 2.2, 2.2), (5, 11, 11),
        {"separation": (4, 9, 9), "smoothing_size": (7, 13, 13), "noise_size": (0.8, 1, 1)}),
    "3-D no characterisation": ((24, 96, 96), 60, (1.2, 2.2, 2.2), (5, 11, 11),
                                {"characterize": False}),
    "3-D minmass, topn": ((24, 96, 96), 80, 2.0, 9, {"minmass": 800, "topn": 20}),
    "3-D anisotropic, minmass": ((24, 96, 96), 80, (1.2, 2.2, 2.2), (5, 11, 11),
                                 {"minmass": 900}),
    "3-D percentile, threshold, max_iterations": ((24, 96, 96), 60, 2.0, 9,
                                                  {"percentile": 40, "threshold": 3,
                                                   "max_iterations": 3}),
    "2-D anisotropic": ((160, 160), 80, (1.5, 2.5), (7, 13), {}),
    "2-D per-axis noise_size only": ((160, 160), 80, 2.0, 9, {"noise_size": (1, 1.5)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_dense_noisy_fields_match_trackpy(name):
    shape, n, sigma, diameter, params = CASES[name]
    image = _noisy_field(shape, n, sigma, seed=len(name))
    theirs = trackpy_locate(image, diameter, **params)
    ours = locate_frame(image, diameter, **params)
    pos = list(ours.columns[:image.ndim])
    # trackpy 0.7 appends all-NaN rows and gives ep_z.. ep_x to the wrong rows when minmass
    # drops features of an anisotropic image (its per-axis ep frame is concatenated on a
    # fresh index): that row is no feature, and those ep are not comparable.
    shifted = theirs[pos].isna().any(axis=1).any()
    theirs = theirs.dropna(subset=pos)
    assert len(theirs) >= (20 if "topn" in params else 25)
    assert _columns(ours) == _columns(theirs)
    assert (ours.dtypes == np.float64).all()
    assert_same_features(ours, theirs)
    assert not ours.isna()[pos + ["mass"]].any().any()
    # ep: trackpy's own values where they are meaningful (positive)
    for col in [c for c in theirs.columns if c.startswith("ep") and not shifted]:
        t = theirs.sort_values(pos)[col].to_numpy()
        o = ours.sort_values(pos)[col].to_numpy()
        good = t > 0
        np.testing.assert_allclose(o[good], t[good], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["uint16", "float64", "float32"])
def test_3d_other_dtypes_match_trackpy(dtype):
    image = _noisy_field((20, 80, 80), 40, (1.2, 2.2, 2.2), seed=3)
    if dtype == "uint16":
        image = image.astype(np.uint16) * 200
    else:
        image = (image / 255.0).astype(dtype)
    theirs = trackpy_locate(image, (5, 11, 11))
    ours = locate_frame(image, (5, 11, 11))
    assert len(theirs) >= 20
    assert_same_features(ours, theirs)


def test_3d_invert_matches_trackpy():
    image = 255 - _noisy_field((20, 80, 80), 40, 2.0, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = trackpy_locate(image, 9, invert=True)
    assert len(theirs) >= 25
    assert_same_features(locate_frame(image, 9, invert=True), theirs)


@pytest.mark.parametrize("sigma,diameter", [(2.0, 11), ((1.2, 2.2, 2.2), (7, 11, 11))])
def test_single_3d_spots_at_known_subpixel_positions(sigma, diameter):
    rng = np.random.default_rng(7)
    shape = (24, 48, 48)
    for _ in range(12):
        truth = rng.uniform([9, 16, 16], [15, 32, 32])
        image = _uint8(_spots(shape, [truth], sigma, background=0))
        ours = locate_frame(image, diameter)
        assert len(ours) == 1
        found = ours[["z", "y", "x"]].to_numpy()[0]
        # Crocker-Grier centroids carry a small pixel-locking bias; 0.15 px is ample.
        np.testing.assert_allclose(found, truth, atol=0.15)
        assert_same_features(ours, trackpy_locate(image, diameter))


def test_peaks_near_every_face_of_the_volume():
    shape = (20, 60, 60)
    positions = [(2.2, 30, 30), (17.6, 30, 30), (10, 2.7, 30), (10, 57.4, 30),
                 (10, 30, 3.1), (10, 30, 56.8), (3.5, 4.2, 5.6), (10.3, 30.6, 30.2)]
    image = _uint8(_spots(shape, positions, (1.2, 2, 2)))
    for diameter, params in [((5, 9, 9), {}), ((3, 7, 7), {"separation": (2, 4, 4)}),
                             ((5, 9, 9), {"smoothing_size": (9, 15, 15)})]:
        ours = locate_frame(image, diameter, **params)
        theirs = trackpy_locate(image, diameter, **params)
        assert len(theirs) >= 1
        assert_same_features(ours, theirs)


def test_black_volume_gives_the_schema_and_trackpys_warning():
    image = np.zeros((16, 64, 64), np.uint8)
    with pytest.warns(UserWarning, match="Image is completely black."):
        out = locate_frame(image, (5, 9, 9))
    assert len(out) == 0
    assert _columns(out) == list(job_columns(normalize_params((5, 9, 9)), 3))
    assert (out.dtypes == np.float64).all()


def test_trackpy_warnings_for_frames_without_features():
    flat = np.full((16, 48, 48), 9, np.uint8)  # band pass is zero: black
    with pytest.warns(UserWarning, match="Image is completely black."):
        assert len(locate_frame(flat, 9)) == 0
    edge = _uint8(_spots((16, 48, 48), [(1.0, 24, 24)], 2.0, background=0))
    with pytest.warns(UserWarning, match="All local maxima were in the margins."):
        assert len(locate_frame(edge, 9)) == 0
    spot = _uint8(_spots((16, 48, 48), [(8, 24, 24)], 2.0, background=0))
    with pytest.warns(UserWarning, match="No maxima survived mass- and size-based filtering."):
        assert len(locate_frame(spot, 9, minmass=1e9)) == 0
    # the same words in 2-D (trackpy's), from the 2-D kernel
    edge_2d = _uint8(_spots((48, 48), [(1.0, 24)], 2.0, background=0))
    with pytest.warns(UserWarning, match="All local maxima were in the margins."):
        assert len(locate_frame(edge_2d, 9)) == 0
    with pytest.warns(UserWarning, match="Image is completely black."):
        assert len(locate_frame(flat[0], 9)) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(locate_frame(spot, 9)) == 1  # nothing to say


def test_locate_stack_gathers_the_warnings_into_one_summary():
    stack = np.stack([_uint8(_spots((12, 40, 40), [(6, 20, 20)], 2.0, background=0)),
                      np.zeros((12, 40, 40), np.uint8),
                      _uint8(_spots((12, 40, 40), [(6.3, 18, 21)], 2.0, background=0)),
                      np.zeros((12, 40, 40), np.uint8)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = locate_stack(stack, 9, frame_numbers=[10, 11, 12, 13])
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert "2 of 4 frames gave no features (frames 11, 13)" in messages[0]
    assert "Image is completely black. (2)" in messages[0]
    assert out.frame.tolist() == [10, 12]
    assert _columns(out) == ["z", "y", "x", "mass", "size", "ecc", "signal", "raw_mass", "ep",
                             "frame"]
    np.testing.assert_allclose(out[["z", "y", "x"]].to_numpy(), [[6, 20, 20], [6.3, 18, 21]],
                               atol=0.15)


def test_locate_stack_of_volumes_equals_each_volume_alone():
    stack = np.stack([_noisy_field((12, 48, 48), 15, (1.2, 2, 2), seed=s) for s in range(3)])
    out = locate_stack(stack, (5, 9, 9), frame_numbers=[4, 5, 6])
    for k in range(3):
        alone = locate_frame(stack[k], (5, 9, 9))
        got = out[out.frame == 4 + k].drop(columns="frame").reset_index(drop=True)
        assert len(alone) > 5
        assert got.equals(alone)


def test_anisotropic_trackpy_link_hand_off():
    trackpy = pytest.importorskip("trackpy")
    start = np.array([[6, 15, 15], [9, 15, 40], [7, 30, 25], [10, 44, 14], [8, 42, 42],
                      [6.5, 28, 45]], dtype=np.float64)
    frames = np.stack([_uint8(_spots((16, 60, 60), start + 0.3 * t, (1.2, 2, 2)))
                       for t in range(5)])
    features = locate_stack(frames, (5, 9, 9))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linked = trackpy.link(features, 3, pos_columns=["z", "y", "x"])
    assert linked.particle.nunique() == 6
    assert (linked.groupby("particle").size() == 5).all()


def test_errors_name_the_problem():
    volume = np.zeros((8, 32, 32), np.uint8)
    with pytest.raises(ValueError, match="diameter has 3 values .* images are 2-D"):
        locate_frame(volume[0], (5, 9, 9))
    with pytest.raises(ValueError, match="diameter has 2 values .* images are 3-D"):
        locate_frame(volume, (5, 9))
    with pytest.raises(ValueError, match="diameter has 2 values .* images are 3-D"):
        locate_frame(volume, (9, 9))  # trackpy refuses it too, though it is isotropic
    with pytest.raises(ValueError, match="separation has 3 values .* images are 2-D"):
        locate_stack(volume, 9, separation=(6, 10, 10))  # (n, y, x): 2-D frames
    with pytest.raises(ValueError, match="got 4; round up to 5"):
        locate_frame(volume, (5, 9.0, 4))
    with pytest.raises(ValueError, match="maxsize cannot be used with a per-axis diameter"):
        locate_frame(volume, (5, 9, 9), maxsize=3)
    with pytest.raises(ValueError, match="looks like a colour frame"):
        locate_frame(np.zeros((32, 32, 3), np.uint8), 9)
    with pytest.raises(ValueError, match="separation has 2 values .* images are 3-D"):
        locate_frame(volume, (5, 9, 9), separation=(4, 8))
    with pytest.raises(ValueError, match="disagree in their number of axes"):
        normalize_params((5, 9, 9), separation=(4, 8))  # no image yet: among themselves
    with pytest.raises(ValueError, match="larger than noise_size"):
        locate_frame(volume, (5, 9, 9), noise_size=(5, 1, 1))
    with pytest.raises(ValueError, match=r"\(n_frames, z, y, x\)"):
        locate_stack(np.zeros((2, 2, 8, 32, 32)), 9)


def test_isotropic_tuples_are_one_number_and_keep_the_2d_kernel():
    p = normalize_params((9, 9))
    assert p["diameter"] == 9 and p["separation"] == 10 and p["smoothing_size"] == 9
    image = _noisy_field((128, 128), 40, 2.0, seed=9)
    assert locate_frame(image, (9, 9)).equals(locate_frame(image, 9))


def test_per_axis_ep_stays_with_its_feature_after_minmass():
    # trackpy 0.7 misassigns ep_z.. ep_x once minmass drops features of an anisotropic
    # image; its unfiltered run, filtered afterwards, has them right: daskloc equals that.
    image = _noisy_field((24, 96, 96), 80, (1.2, 2.2, 2.2), seed=21)
    everything = trackpy_locate(image, (5, 11, 11))
    minmass = float(np.percentile(everything.mass, 40))
    expected = everything[everything.mass > minmass].reset_index(drop=True)
    ours = locate_frame(image, (5, 11, 11), minmass=minmass)
    filtered_by_trackpy = trackpy_locate(image, (5, 11, 11), minmass=minmass)
    assert filtered_by_trackpy[["z", "y", "x"]].isna().any(axis=1).any()  # the defect
    assert len(ours) == len(expected) > 25
    assert_same_features(ours, expected)
    good = expected.ep_x.to_numpy() > 0
    for col in ("ep_z", "ep_y", "ep_x"):
        np.testing.assert_allclose(ours[col].to_numpy()[good], expected[col].to_numpy()[good],
                                   rtol=1e-6)


def test_no_low_pass_along_z_matches_trackpy():
    image = _noisy_field((20, 80, 80), 40, (1.2, 2.2, 2.2), seed=12)
    theirs = trackpy_locate(image, (5, 11, 11), noise_size=(0, 1, 1))
    ours = locate_frame(image, (5, 11, 11), noise_size=(0, 1, 1))
    assert len(theirs) >= 20
    assert_same_features(ours, theirs)
    assert (ours.ep_z == 0).all()


def test_float32_without_preprocess_scales_as_trackpy():
    # trackpy scales a float32 image in float32 arithmetic (max 0.7, not 1)
    image = (_noisy_field((16, 64, 64), 30, 2.0, seed=13) / 255.0 * 0.7).astype(np.float32)
    for img, d in ((image, 9), (image[8], 9)):
        theirs = trackpy_locate(img, d, preprocess=False, minmass=1)
        assert len(theirs) >= 5
        assert_same_features(locate_frame(img, d, preprocess=False, minmass=1), theirs)


def test_64_bit_integer_images_keep_their_brightest_feature():
    # 2**63 / peak * peak does not fit an int64: the peak pixel once wrapped to the most
    # negative value, moving the brightest feature (trackpy has the same overflow). The
    # clip is in the scaling every kernel path shares: checked there for 2-D and 3-D and
    # both 64-bit dtypes, and end to end once (each dtype and ndim compiles the kernels
    # again: a minute of the suite for the other three).
    from daskloc.locate.preprocess import scale_to_integer

    for shape in ((7, 9), (3, 7, 9)):
        image = np.random.default_rng(3).random(shape) * 0.5
        image.flat[5] = 1.0  # the peak: scale * peak rounds to 2**63, which wraps
        for dtype in (np.int64, np.uint64):
            _, scaled = scale_to_integer(image, dtype)
            assert scaled.dtype == dtype
            assert scaled.flat[5] == scaled.max() > 0  # the peak stays the brightest
            assert scaled.min() >= 0
    frame = _noisy_field((96, 96), 20, 2.0, seed=14, noise=3.0)
    want = locate_frame(frame.astype(np.int32), 9)
    got = locate_frame(frame.astype(np.int64), 9)
    np.testing.assert_allclose(got[["y", "x"]].to_numpy(), want[["y", "x"]].to_numpy(),
                               atol=1e-6)


def test_a_single_plane_stack_is_refused_saying_what_to_do():
    with pytest.raises(ValueError, match=r"has one plane: locate it as a 2-D frame \(image\[0\]"):
        locate_frame(np.zeros((1, 40, 40), np.uint8), 9)
