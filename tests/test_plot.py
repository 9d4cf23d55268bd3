"""Pictures of located features (daskloc.plot and ``daskloc plot``) on the real bulk-water movie.

Each picture is rendered to a PNG and read back: real PNG files of the expected pixel
size, circles where the features are (checked in the pixels), histogram counts equal
to counts computed here with numpy.
"""

import os
import subprocess
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest
from click.testing import CliRunner
from matplotlib.collections import EllipseCollection
from matplotlib.figure import Figure

import daskloc
from daskloc import plot
from daskloc.cli import main
from tests._data import data_path

pytestmark = pytest.mark.data  # every test here plots features of the real movie

PARAMS = {"minmass": 20, "invert": True}
DIAMETER = 11
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def movie():
    return data_path("bulk-water.mov")


@pytest.fixture(scope="module")
def video(movie):
    return daskloc.open_video(movie, channel=0, frames=slice(0, 3), chunks=2)


@pytest.fixture(scope="module")
def frame0(video):
    """Frame 0 as a DataArray (scalar ``frame`` coordinate 0)."""
    return video.sel(frame=0).compute()


@pytest.fixture(scope="module")
def features0(frame0):
    """daskloc's features of frame 0, with a frame column."""
    f = daskloc.locate_frame(frame0.values, DIAMETER, **PARAMS)
    assert len(f) > 400
    return f.assign(frame=np.int64(0))


@pytest.fixture(scope="module")
def store(video, tmp_path_factory):
    """A Parquet store of frames 0..2 written by daskloc.batch (chunks of 2 frames)."""
    path = tmp_path_factory.mktemp("plot") / "features.parquet"
    daskloc.batch(video, DIAMETER, store=str(path), do_not_return=True, **PARAMS)
    return path


def render(fig, path):
    """Save ``fig`` as PNG at its own dpi; return the image read back (float RGBA)."""
    fig.savefig(path, format="png")
    with open(path, "rb") as fh:
        assert fh.read(8) == PNG_MAGIC
    assert os.path.getsize(path) > 1000
    return mpimg.imread(path)


def expected_pixels(figsize, dpi):
    w, h = figsize
    return round(h * dpi), round(w * dpi)


def assert_not_blank(img):
    """A real picture: several distinct colours, not one flat fill."""
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 10


def red_mask(img):
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return (r > 0.6) & (g < 0.35) & (b < 0.35)


def features_collection(ax):
    found = [c for c in ax.collections if isinstance(c, EllipseCollection)
             and c.get_label() == "features"]
    assert len(found) == 1, ax.collections
    return found[0]


# ----------------------------------------------------------------- annotate


def test_annotate_one_circle_per_feature_at_their_positions(frame0, features0, tmp_path):
    fig = Figure(figsize=(8, 6), dpi=60)
    ax = plot.annotate(frame0, features0, ax=fig.add_subplot(), diameter=DIAMETER)
    coll = features_collection(ax)
    offsets = np.asarray(coll.get_offsets())
    assert len(offsets) == len(features0)
    np.testing.assert_array_equal(offsets, features0[["x", "y"]].to_numpy())
    # the image shown is the frame's pixels, pixel (0, 0) at the top left
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), frame0.values)
    assert ax.get_xlim() == (-0.5, 639.5) and ax.get_ylim() == (423.5, -0.5)
    assert "frame 0" in ax.get_title() and str(len(features0)) in ax.get_title()
    img = render(fig, tmp_path / "a.png")
    assert img.shape[:2] == expected_pixels((8, 6), 60)
    assert_not_blank(img)


def test_annotate_circles_land_on_the_features_in_the_pixels(frame0, features0, tmp_path):
    # Axes filling a figure of exactly one PNG pixel per frame pixel: a feature at
    # (x, y) is PNG pixel (row y, column x); its circle is a red ring of radius 5.5.
    h, w = frame0.shape
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    plot.annotate(frame0, features0, ax=ax, diameter=DIAMETER)
    img = render(fig, tmp_path / "pixels.png")
    assert img.shape[:2] == (h, w)
    red = red_mask(img)
    rows, cols = np.nonzero(red)
    assert len(rows) > 10 * len(features0)
    yx = features0[["y", "x"]].to_numpy()
    # every red pixel lies on some circle: at distance ~5.5 px from its feature
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(yx).query(np.column_stack([rows, cols]))
    assert np.all(np.abs(dist - DIAMETER / 2) < 2.0), np.abs(dist - DIAMETER / 2).max()
    # every feature away from the edges has red on its ring, and none at its centre's
    # surroundings (the ring is hollow)
    inner = (yx[:, 0] > 8) & (yx[:, 0] < h - 9) & (yx[:, 1] > 8) & (yx[:, 1] < w - 9)
    yy, xx = np.mgrid[-8:9, -8:9]
    for y, x in yx[inner]:
        cy, cx = int(round(y)), int(round(x))
        patch = red[cy - 8:cy + 9, cx - 8:cx + 9]
        r = np.hypot(yy + cy - y, xx + cx - x)
        assert patch[np.abs(r - DIAMETER / 2) < 1.0].sum() >= 8


def test_annotate_without_features_draws_no_circle(frame0, features0, tmp_path):
    h, w = frame0.shape
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    plot.annotate(frame0.values, features0.iloc[:0], ax=ax, diameter=DIAMETER)
    assert len(features_collection(ax).get_offsets()) == 0
    assert not red_mask(render(fig, tmp_path / "none.png")).any()


def test_annotate_selects_the_images_frame(video, store):
    features = daskloc.read_features(store)
    assert features["frame"].nunique() == 3
    frame1 = video.sel(frame=1)
    fig = Figure()
    ax = plot.annotate(frame1, features, ax=fig.add_subplot())
    mine = features[features["frame"] == 1]
    np.testing.assert_array_equal(features_collection(ax).get_offsets(),
                                  mine[["x", "y"]].to_numpy())
    assert "frame 1" in ax.get_title()
    # a video and the features of one frame: that frame is shown
    fig = Figure()
    ax = plot.annotate(video, mine, ax=fig.add_subplot())
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), frame1.values)
    assert len(features_collection(ax).get_offsets()) == len(mine)


def test_annotate_refuses_ambiguous_or_mismatched_frames(video, store):
    features = daskloc.read_features(store)
    with pytest.raises(ValueError, match="hold 3 frames"):
        plot.annotate(video.sel(frame=0).values, features, ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="video of 3 frames"):
        plot.annotate(video, features, ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="no feature of frame 0"):
        plot.annotate(video.sel(frame=0), features[features.frame == 2], ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="one frame"):
        plot.annotate(np.zeros((2, 4, 5, 6)), features.iloc[:0], ax=Figure().add_subplot())
    with pytest.raises(ValueError, match="3-D stack of 2 planes: choose the plane"):
        plot.annotate(np.zeros((2, 4, 5)), features.iloc[:0], ax=Figure().add_subplot())


def test_annotate_default_axes_with_pyplot(frame0, features0):
    import matplotlib.pyplot as plt

    ax = plot.annotate(frame0, features0)
    try:
        assert len(features_collection(ax).get_offsets()) == len(features0)
        w, h = ax.figure.get_size_inches()
        assert w == 8 and h == pytest.approx(8 * 424 / 640 + 0.4)
    finally:
        plt.close(ax.figure)
    ax = plot.subpx_bias(features0)
    plt.close(ax.figure)
    assert len(ax.figure.axes) == 1 and len(ax.containers) == 2


# ----------------------------------------------------------------- mass, size, sub-pixel


def bar_heights(ax):
    return np.array([p.get_height() for p in ax.patches])


def test_mass_hist_counts_every_feature(features0, tmp_path):
    fig = Figure(figsize=(5, 4), dpi=80)
    ax = plot.mass_hist(features0, ax=fig.add_subplot(), bins=30)
    heights = bar_heights(ax)
    assert len(heights) == 30
    expected, _ = np.histogram(features0["mass"], bins=30)
    np.testing.assert_array_equal(heights, expected)
    assert ax.get_xlabel().startswith("mass")
    img = render(fig, tmp_path / "mass.png")
    assert img.shape[:2] == expected_pixels((5, 4), 80)
    assert_not_blank(img)


def test_mass_size_mass_on_x_size_on_y(features0, tmp_path):
    fig = Figure(figsize=(6, 4), dpi=70)
    ax = plot.mass_size(features0, ax=fig.add_subplot())
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), features0["mass"].to_numpy())
    np.testing.assert_array_equal(line.get_ydata(), features0["size"].to_numpy())
    assert ax.get_xlabel().startswith("mass") and ax.get_ylabel().startswith("size")
    img = render(fig, tmp_path / "size.png")
    assert img.shape[:2] == expected_pixels((6, 4), 70)
    assert_not_blank(img)


def test_subpx_bias_counts_each_feature_once_per_axis(features0, tmp_path):
    fig = Figure(figsize=(8, 3), dpi=50)
    given = fig.add_subplot()
    ax = plot.subpx_bias(features0, ax=given)
    assert ax is given  # one Axes, as the other plots return
    edges = np.linspace(0, 1, 11)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x % 1", "y % 1"]
    for bars, col in zip(ax.containers, ("x", "y"), strict=True):
        heights = np.array([p.get_height() for p in bars])
        assert heights.sum() == len(features0)
        frac = features0[col].to_numpy() - np.floor(features0[col].to_numpy())
        np.testing.assert_array_equal(heights, np.histogram(frac, bins=edges)[0])
    img = render(fig, tmp_path / "subpx.png")
    assert img.shape[:2] == expected_pixels((8, 3), 50)
    assert_not_blank(img)
    with pytest.raises(TypeError, match=r"one Axes.*ax=axes\[0\]"):
        plot.subpx_bias(features0, ax=Figure().subplots(1, 2))


def test_subpx_bias_peaks_at_whole_pixels_when_diameter_is_too_small(frame0):
    # The documented diagnosis: a too-small diameter piles fractions up near 0 and 1.
    small = daskloc.locate_frame(frame0.values, 3, minmass=1, invert=True)
    good = daskloc.locate_frame(frame0.values, DIAMETER, **PARAMS)

    def edge_share(f):  # share of both histograms in the bins 0-0.2 and 0.8-1 (flat: 0.4)
        ax = plot.subpx_bias(f, ax=Figure().add_subplot())
        heights = np.array([[p.get_height() for p in bars] for bars in ax.containers])
        return heights[:, [0, 1, 8, 9]].sum() / heights.sum()

    assert edge_share(small) > 0.55
    assert 0.35 < edge_share(good) < 0.47


@pytest.mark.parametrize("func, missing, hint", [
    (plot.mass_hist, ["mass"], "any locate"),
    (plot.mass_size, ["size"], "characterize=True"),
    (plot.subpx_bias, ["x", "y"], "any locate"),
])
def test_missing_columns_are_named(features0, func, missing, hint):
    with pytest.raises(ValueError, match=hint) as err:
        func(features0.drop(columns=missing), ax=None)
    for col in missing:
        assert repr(col) in str(err.value)


def test_annotate_missing_columns_are_named(frame0, features0):
    with pytest.raises(ValueError, match="'x'.*any locate"):
        plot.annotate(frame0, features0.drop(columns="x"), ax=Figure().add_subplot())
    with pytest.raises(TypeError, match="DataFrame"):
        plot.mass_hist(features0["mass"].to_numpy())


# ----------------------------------------------------------------- importing, headless


@pytest.mark.slow
def test_import_daskloc_does_not_import_matplotlib_and_plot_does_not_pick_a_backend(
        store, tmp_path):
    code = (
        "import sys, daskloc\n"
        "assert 'matplotlib' not in sys.modules\n"
        "import daskloc.plot\n"
        "assert daskloc.plot.annotate\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        f"paths = daskloc.plot.save_plots({str(store)!r}, {str(tmp_path / 'h.png')!r}, frame=0)\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'save_plots used pyplot'\n"
        "print(paths['annotate'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "h.png")
    assert mpimg.imread(tmp_path / "h.png").shape[:2] == (570, 800)


# ----------------------------------------------------------------- the CLI


def cli(*args):
    return CliRunner().invoke(main, ["plot", *map(str, args)])


def test_cli_plot_annotate(store, movie, tmp_path):
    out = tmp_path / "pics" / "annotate.png"
    result = cli(store, "--video", movie, "--frame", 1, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out)
    img = mpimg.imread(out)
    # 8 x (8 * 424 / 640 + 0.4) inches at 100 dpi
    assert img.shape[:2] == (570, 800)
    n = int((daskloc.read_features(store)["frame"] == 1).sum())
    assert red_mask(img).sum() > 10 * n  # the circles


@pytest.mark.slow
def test_cli_plot_all_kinds_default_video_and_dpi(store, tmp_path):
    out = tmp_path / "f0.png"
    result = cli(store, "--frame", 0, "--out", out, "--kind", "all", "--dpi", 50)
    assert result.exit_code == 0, result.output
    names = {k: tmp_path / f"f0-{k}.png" for k in ("annotate", "mass", "size", "subpx")}
    assert result.stdout.split() == [str(p) for p in names.values()]
    assert not out.exists()
    sizes = {"annotate": (285, 400), "mass": (240, 320), "size": (240, 320), "subpx": (200, 320)}
    for kind, path in names.items():
        with open(path, "rb") as fh:
            assert fh.read(8) == PNG_MAGIC
        img = mpimg.imread(path)
        assert img.shape[:2] == sizes[kind], kind
        assert_not_blank(img)


def test_cli_plot_one_kind(store, tmp_path):
    out = tmp_path / "m.png"
    result = cli(store, "--frame", 2, "--out", out, "--kind", "subpx", "--video", "/no/such.mov")
    assert result.exit_code == 0, result.output  # the video is not needed for subpx
    assert mpimg.imread(out).shape[:2] == (400, 640)


def test_cli_plot_errors_are_one_line(store, movie, video, tmp_path):
    out = tmp_path / "x.png"

    def fails(*args, phrase):
        result = cli(*args, "--out", out)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("daskloc: error:"), result.stderr
        assert phrase in lines[0], lines[0]

    fails(store, "--frame", 7, phrase="outside the source video's frames 0..2")
    fails(tmp_path / "missing.parquet", "--frame", 0, phrase="missing.parquet")
    fails(store, "--frame", 0, "--video", tmp_path / "nope.mov", phrase="nope.mov")
    # a frame the store's job skipped (every other frame): inside its range, not located
    sparse = tmp_path / "sparse.parquet"
    daskloc.batch(daskloc.open_video(movie, channel=0, frames=slice(0, 5, 2)), DIAMETER,
                  store=str(sparse), do_not_return=True, **PARAMS)
    fails(sparse, "--frame", 1, phrase="frame 1 is not in the store")
    # a frame in the store but not in the video given
    short = tmp_path / "short.tif"
    import tifffile

    tifffile.imwrite(short, video.sel(frame=0).values[None])
    fails(store, "--frame", 2, "--video", short, phrase="outside the video")
    assert not out.exists()


def test_save_plots_one_kind_returns_its_path(store, movie, tmp_path):
    written = plot.save_plots(store, tmp_path / "s.png", frame=2, video=movie, kind="annotate",
                              channel=0, dpi=40)
    assert list(written) == ["annotate"] and written["annotate"].exists()
    assert mpimg.imread(written["annotate"]).shape[:2] == (228, 320)
    with pytest.raises(ValueError, match="kind must be one of"):
        plot.save_plots(store, tmp_path / "s.png", kind="pie")


def test_a_store_made_from_an_array_asks_for_the_video(tmp_path):
    """The store records "numpy array" as its source: annotate says to give --video
    (it said "no such file or directory: 'numpy array'")."""
    from tests.conftest import DIAMETER, make_spots

    arr = make_spots(n_frames=4, shape=(64, 64), n_particles=5, seed=2)
    store = tmp_path / "f.parquet"
    daskloc.batch(daskloc.open_video(arr, chunks=2), DIAMETER, store=store, do_not_return=True)
    with pytest.raises(FileNotFoundError, match=r"made from 'numpy array'.*--video PATH"):
        plot.save_plots(store, tmp_path / "a.png", frame=1)
    result = CliRunner().invoke(main, ["plot", str(store), "--frame", "1", "--out",
                                       str(tmp_path / "a.png")])
    assert result.exit_code == 1 and "--video PATH" in result.output
    # with the video given, the picture is drawn
    written = plot.save_plots(store, tmp_path / "a.png", frame=1, video=arr)
    assert os.path.getsize(written["annotate"]) > 0


def test_annotate_draws_a_z_plane_of_a_stack_and_its_features():
    import matplotlib.pyplot as plt
    import xarray as xr

    from daskloc.locate import locate_frame
    from daskloc.synthetic import make_frame

    positions = [(4.0, 20.3, 18.6), (5.4, 40.2, 40.7), (12.0, 30.5, 12.2)]
    stack = make_frame((16, 60, 60), positions, (5, 9, 9), noise=2)
    f = locate_frame(stack, (5, 9, 9), minmass=500)
    assert len(f) == 3
    ax = daskloc.plot.annotate(stack, f, diameter=(5, 9, 9), z=4)
    coll = [c for c in ax.collections if c.get_label() == "features"][0]
    # the features within 2.5 planes of z = 4: the first two, not the one at z = 12
    np.testing.assert_allclose(sorted(map(tuple, coll.get_offsets())),
                               sorted((x, y) for _, y, x in positions[:2]), atol=0.1)
    np.testing.assert_array_equal(ax.images[0].get_array(), stack[4])
    assert ax.get_title() == "z = 4: 2 features"
    # a DataArray stack of a video's frame, planes chosen by number
    video = xr.DataArray(stack[None], dims=("frame", "z", "y", "x"),
                         coords={"frame": [7]})
    ax = daskloc.plot.annotate(video.sel(frame=7), f.assign(frame=7), z=12)
    assert ax.get_title() == "frame 7: z = 12: 1 features"
    np.testing.assert_array_equal(ax.images[0].get_array(), stack[12])
    with pytest.raises(ValueError, match="choose the plane to draw"):
        daskloc.plot.annotate(stack, f)
    with pytest.raises(ValueError, match="leave z out"):
        daskloc.plot.annotate(stack[4], f, z=4)
    with pytest.raises(ValueError, match=r"z must be a plane number 0..15"):
        daskloc.plot.annotate(stack, f, z=16)
    plt.close("all")


def test_daskloc_plot_on_a_store_of_volumes(tmp_path):
    import tifffile

    from daskloc.synthetic import make_frame

    positions = [(4.0, 20.3, 18.6), (8.4, 40.2, 40.7), (12.0, 30.5, 12.2)]
    stack = np.stack([make_frame((16, 60, 60), positions, (5, 9, 9), noise=2, seed=t)
                      for t in range(2)])
    tifffile.imwrite(tmp_path / "s.tif", stack, imagej=True, metadata={"axes": "TZYX"})
    store = tmp_path / "f.parquet"
    daskloc.batch(daskloc.open_video(tmp_path / "s.tif"), (5, 9, 9), store=store,
                  minmass=500, do_not_return=True)
    runner = CliRunner()
    result = runner.invoke(main, ["plot", str(store), "-o", str(tmp_path / "p.png"),
                                  "--kind", "all"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.glob("p-*.png")) == [
        "p-annotate.png", "p-mass.png", "p-size.png", "p-subpx.png"]
    # the middle plane by default; z= (--z) chooses another, out of range refused
    written = plot.save_plots(store, tmp_path / "a.png", z=4)
    assert mpimg.imread(written["annotate"]).shape[1] == 800
    result = runner.invoke(main, ["plot", str(store), "-o", str(tmp_path / "q.png"),
                                  "--z", "99"])
    assert result.exit_code != 0 and "z must be a plane number 0..15" in result.output
