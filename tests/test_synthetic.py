"""Tests of daskloc.synthetic: synthetic videos with known particle positions."""

import doctest

import numpy as np
import pandas as pd
import pytest

from daskloc import synthetic
from daskloc.synthetic import make_frame, make_video, spot_sigma, write_video


def _nearest_neighbour(points):
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def _centroid(image, y, x, half_width, background):
    """Background-subtracted intensity-weighted centroid of a square window at (y, x)."""
    cy, cx = int(round(y)), int(round(x))
    sl = (slice(cy - half_width, cy + half_width + 1), slice(cx - half_width, cx + half_width + 1))
    win = image[sl].astype(np.float64) - background
    yy, xx = np.mgrid[sl]
    return (win * yy).sum() / win.sum(), (win * xx).sum() / win.sum()


# ------------------------------------------------------------------ shapes and dtypes


def test_defaults_shapes_and_dtypes():
    video, truth = make_video(n_frames=5)
    assert video.shape == (5, 256, 256)
    assert video.dtype == np.uint8
    assert list(truth.columns) == ["frame", "particle", "y", "x"]
    assert truth.dtypes.to_dict() == {
        "frame": np.dtype("int64"),
        "particle": np.dtype("int64"),
        "y": np.dtype("float64"),
        "x": np.dtype("float64"),
    }
    assert len(truth) == 5 * 40
    assert truth.index.equals(pd.RangeIndex(len(truth)))
    # sorted by frame then particle, every particle in every frame
    assert (truth.frame.to_numpy() == np.repeat(np.arange(5), 40)).all()
    assert (truth.particle.to_numpy() == np.tile(np.arange(40), 5)).all()
    assert truth.attrs["sigma"] == pytest.approx(spot_sigma(9))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64", "int32"])
def test_dtype(dtype):
    video, _ = make_video(n_frames=2, shape=(64, 80), n_particles=3, dtype=dtype)
    assert video.dtype == np.dtype(dtype)
    assert video.shape == (2, 64, 80)
    assert video.min() >= 0


def test_uint8_clips_instead_of_wrapping():
    video, _ = make_video(n_frames=1, shape=(64, 64), n_particles=3, brightness=400, noise=0)
    assert video.max() == 255  # saturated, not wrapped around


def test_empty_cases():
    video, truth = make_video(n_frames=0, shape=(64, 64), n_particles=2)
    assert video.shape == (0, 64, 64) and len(truth) == 0
    video, truth = make_video(n_frames=0, shape=(32, 32), n_particles=0)
    assert video.shape == (0, 32, 32) and len(truth) == 0
    assert truth.dtypes["frame"] == np.int64
    video, truth = make_video(n_frames=3, shape=(32, 32), n_particles=0, noise=0)
    assert len(truth) == 0 and (video == 20).all()
    frame = make_frame((8, 9), np.empty((0, 2)), diameter=3)
    assert frame.shape == (8, 9) and (frame == 20).all()


# ------------------------------------------------------------------------ determinism


def test_same_seed_same_video():
    v1, t1 = make_video(n_frames=4, shape=(64, 64), n_particles=5, seed=7)
    v2, t2 = make_video(n_frames=4, shape=(64, 64), n_particles=5, seed=7)
    np.testing.assert_array_equal(v1, v2)
    pd.testing.assert_frame_equal(t1, t2)


def test_different_seed_different_video():
    v1, t1 = make_video(n_frames=2, shape=(64, 64), n_particles=5, seed=1)
    v2, t2 = make_video(n_frames=2, shape=(64, 64), n_particles=5, seed=2)
    assert not np.array_equal(v1, v2)
    assert not np.allclose(t1[["y", "x"]], t2[["y", "x"]])


def test_noise_level_does_not_change_trajectories():
    _, t1 = make_video(n_frames=10, shape=(64, 64), n_particles=5, noise=0)
    _, t2 = make_video(n_frames=10, shape=(64, 64), n_particles=5, noise=20, shot_noise=True)
    pd.testing.assert_frame_equal(t1, t2)


# ------------------------------------------------------------------------ trajectories


def test_edges_and_initial_separation():
    diameter = 9
    video, truth = make_video(n_frames=300, shape=(100, 120), n_particles=12, diffusion=2.0)
    assert truth.y.min() >= diameter and truth.y.max() <= 100 - 1 - diameter
    assert truth.x.min() >= diameter and truth.x.max() <= 120 - 1 - diameter
    start = truth[truth.frame == 0][["y", "x"]].to_numpy()
    assert _nearest_neighbour(start).min() >= 1.5 * diameter


@pytest.mark.slow
def test_brownian_step_size():
    _, truth = make_video(n_frames=400, shape=(512, 512), n_particles=20, diffusion=0.5)
    steps = truth.sort_values(["particle", "frame"]).groupby("particle")[["y", "x"]].diff().dropna()
    # per-coordinate rms step ~ diffusion (reflections at the walls are rare here)
    assert steps.to_numpy().std() == pytest.approx(0.5, rel=0.05)
    assert abs(steps.to_numpy().mean()) < 0.02


def test_static_particles():
    _, truth = make_video(n_frames=5, shape=(64, 64), n_particles=4, diffusion=0)
    per_particle = truth.groupby("particle")[["y", "x"]].nunique()
    assert (per_particle == 1).all().all()


# --------------------------------------------------------- truth is where the spots are


@pytest.mark.parametrize("invert", [False, True])
def test_truth_at_intensity_centroid(invert):
    diameter = 9
    video, truth = make_video(
        n_frames=100, noise=0, dtype="float64", invert=invert, diameter=diameter
    )
    sigma = truth.attrs["sigma"]
    half = int(round(3.9 * sigma))  # window: ~4 sigma, nearly all of a spot's mass
    checked = 0
    for f in (0, 50, 99):
        tr = truth[truth.frame == f][["y", "x"]].to_numpy()
        image = video[f]
        if invert:  # dark on light: flip so that spots are bright
            image = 220 - image
        nearest = _nearest_neighbour(tr)
        if f == 0:
            assert (nearest >= 1.5 * diameter).all()  # placement guarantee
        # later frames: only particles whose neighbours' tails don't reach the window
        isolated = nearest >= 1.5 * diameter if f == 0 else nearest >= 2.5 * diameter
        for y, x in tr[isolated]:
            cy, cx = _centroid(image, y, x, half, background=0 if invert else 20)
            assert abs(cy - y) < 0.01 and abs(cx - x) < 0.01
            checked += 1
    assert checked >= 70


def test_intensity_maxima_at_truth_pixels():
    video, truth = make_video(n_frames=1, noise=0, dtype="float64")
    for y, x in truth[["y", "x"]].to_numpy():
        cy, cx = int(round(y)), int(round(x))
        window = video[0, cy - 2 : cy + 3, cx - 2 : cx + 3]
        assert np.unravel_index(window.argmax(), window.shape) == (2, 2)


def test_make_frame_spot_mass_and_levels():
    sigma = spot_sigma(9)
    for pos in ([20.0, 20.0], [20.3, 19.7], [20.5, 21.25]):
        frame = make_frame((41, 41), [pos], 9, brightness=100, background=10, dtype="float64")
        assert frame.min() == pytest.approx(10)
        # pixel-integrated Gaussian: mass independent of the sub-pixel offset
        assert (frame - 10).sum() == pytest.approx(2 * np.pi * sigma**2 * 100, rel=1e-6)
        cy, cx = _centroid(frame, *pos, half_width=12, background=10)
        assert cy == pytest.approx(pos[0], abs=1e-6) and cx == pytest.approx(pos[1], abs=1e-6)
        assert frame.max() <= 110


def test_make_frame_inverted_and_per_particle_brightness():
    pos = [[10.0, 10.0], [10.0, 30.0]]
    normal = make_frame((21, 41), pos, 7, brightness=[100, 50], dtype="float64")
    inverted = make_frame((21, 41), pos, 7, brightness=[100, 50], invert=True, dtype="float64")
    np.testing.assert_allclose(inverted, 20 + 100 - (normal - 20))
    assert inverted[0, 0] == pytest.approx(120)
    assert normal[10, 10] - 20 == pytest.approx(2 * (normal[10, 30] - 20))


def test_make_frame_noise():
    clean = make_frame((200, 200), [], 9, dtype="float64")
    noisy = make_frame((200, 200), [], 9, noise=5.0, dtype="float64", seed=3)
    assert (noisy - clean).std() == pytest.approx(5.0, rel=0.03)
    np.testing.assert_array_equal(
        noisy, make_frame((200, 200), [], 9, noise=5.0, dtype="float64", seed=3))
    shot = make_frame((200, 200), [], 9, background=100, shot_noise=True, dtype="float64")
    assert shot.var() == pytest.approx(100, rel=0.05)  # Poisson: variance = mean


def test_spots_partly_outside_are_cut():
    frame = make_frame((20, 20), [[0.0, 0.0], [-50.0, 5.0], [19.5, 19.5]], 9, dtype="float64")
    assert frame.shape == (20, 20)
    assert frame[0, 0] > 100 and frame[19, 19] > 100


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(shape=(15, 100), n_particles=1), "too small"),
        (dict(shape=(64, 64), n_particles=500), "could not place"),
        (dict(dtype="bool"), "dtype"),
        (dict(dtype="complex64"), "dtype"),
        (dict(n_particles=-1), ">= 0"),
        (dict(diameter=0), "diameter"),
        (dict(noise=-1), "noise"),
        (dict(diffusion=-0.1), "diffusion"),
        (dict(brightness=[1, 2]), "brightness"),
        (dict(shape=(64,)), "shape"),
    ],
)
@pytest.mark.slow
def test_make_video_errors(kwargs, match):
    kwargs = {"n_frames": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        make_video(**kwargs)


def test_make_frame_errors():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        make_frame((10, 10), [1.0, 2.0, 3.0], 3)
    with pytest.raises(TypeError, match="noise"):
        make_frame((10, 10), [[1.0, 2.0]], 3, noise="loud")


# -------------------------------------------------------------------------- write_video


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("suffix", [".tif", ".tiff"])
def test_write_tiff_round_trip(tmp_path, dtype, suffix):
    tifffile = pytest.importorskip("tifffile")
    video, _ = make_video(n_frames=6, shape=(48, 64), n_particles=4, dtype=dtype)
    path = write_video(tmp_path / f"v{suffix}", video)
    assert path.exists()
    with tifffile.TiffFile(path) as tif:
        assert len(tif.pages) == 6
        back = tif.asarray()
    assert back.dtype == video.dtype
    np.testing.assert_array_equal(back, video)


def test_write_tiff_single_frame_and_rgb(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    video, _ = make_video(n_frames=1, shape=(32, 32), n_particles=1)
    back = tifffile.imread(write_video(tmp_path / "one.tif", video))
    np.testing.assert_array_equal(back.reshape(video.shape), video)
    rgb = np.stack([video, video // 2, video // 3], axis=-1)
    with tifffile.TiffFile(write_video(tmp_path / "rgb.tif", rgb)) as tif:
        assert len(tif.pages) == 1
        np.testing.assert_array_equal(tif.asarray().reshape(rgb.shape), rgb)


def _decode(path):
    av = pytest.importorskip("av")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return np.stack(frames), rate


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
def test_write_movie_round_trip(tmp_path, suffix):
    video, truth = make_video(n_frames=30, shape=(96, 128), n_particles=6)
    path = write_video(tmp_path / f"v{suffix}", video, fps=24)
    back, rate = _decode(path)
    assert back.shape == (30, 96, 128, 3)
    assert float(rate) == pytest.approx(24)
    grey = back[..., 0].astype(np.float64)
    # H.264 is lossy: pixels close on average (about 1 grey level at the default
    # crf=10), and every spot is still a spot
    assert np.abs(grey - video).mean() < 1.5
    assert np.abs(grey - video).max() < 40
    for (f, y, x) in truth[["frame", "y", "x"]].to_numpy()[::7]:
        assert grey[int(f), int(round(y)), int(round(x))] > 150


def test_write_movie_rgb_and_fractional_fps(tmp_path):
    video, _ = make_video(n_frames=10, shape=(64, 64), n_particles=3, noise=0)
    rgb = np.stack([video, video, video], axis=-1)
    back, rate = _decode(write_video(tmp_path / "v.mp4", rgb, fps=24000 / 1001))
    assert back.shape == rgb.shape
    assert float(rate) == pytest.approx(23.976, abs=1e-3)
    assert np.abs(back.astype(np.float64) - rgb).mean() < 2.0


def test_write_movie_other_pix_fmt_odd_shape(tmp_path):
    video, _ = make_video(n_frames=3, shape=(63, 65), n_particles=1)
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", video)
    back, _ = _decode(write_video(tmp_path / "odd.mp4", video, pix_fmt="yuv444p"))
    assert back.shape == (3, 63, 65, 3)


def test_write_video_errors(tmp_path):
    video, _ = make_video(n_frames=2, shape=(32, 32), n_particles=1)
    with pytest.raises(ValueError, match="extension"):
        write_video(tmp_path / "v.gif", video)
    with pytest.raises(ValueError, match="uint8"):
        write_video(tmp_path / "v.mp4", video.astype(np.uint16))
    with pytest.raises(ValueError, match="shape"):
        write_video(tmp_path / "v.tif", video[0])
    with pytest.raises(ValueError, match="no frames"):
        write_video(tmp_path / "v.mp4", video[:0])
    with pytest.raises(ValueError, match="pix_fmt"):
        write_video(tmp_path / "v.mp4", video, pix_fmt="gray")
    with pytest.raises(ValueError, match="crf"):
        write_video(tmp_path / "v.mp4", video, crf=60)


# ------------------------------------------------------------- a real locator finds them


@pytest.mark.filterwarnings("ignore:The inplace keyword")  # trackpy 0.7 on pandas 3
def test_trackpy_finds_every_particle():
    tp = pytest.importorskip("trackpy")
    video, truth = make_video(n_frames=1)
    features = tp.locate(video[0], 9, minmass=300)
    tr = truth[["y", "x"]].to_numpy()
    found = features[["y", "x"]].to_numpy()
    dist = np.sqrt(((found[:, None, :] - tr[None, :, :]) ** 2).sum(-1))
    assert len(found) == len(tr)
    assert (dist.min(axis=0) < 0.25).all()  # every particle found, nothing spurious
    assert dist.min(axis=0).mean() < 0.06


def test_doctests():
    result = doctest.testmod(synthetic, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
