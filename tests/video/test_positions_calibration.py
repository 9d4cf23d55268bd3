"""Microscopy TIFFs as their writers make them: OME-TIFF positions (series), ImageJ
hyperstacks, calibration into attrs, the store's metadata, ``daskloc.calibration``,
``probe`` and the CLI. Files are written by tifffile, the formats' own writer."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import numpy as np
import pandas as pd
import pytest
import tifffile

import daskloc
from daskloc import locate_stack, open_video
from daskloc.pipeline import batch
from daskloc.stores import StoreMismatchError, read_features, store_info
from daskloc.video import Calibration, Position, VideoError, positions, probe
from tests.conftest import make_spots
from tests.video._helpers import sync

DIAMETER = 7
PARAMS = {"minmass": 100}
N_POS, T, Y, X = 3, 6, 64, 80


def series_data(k, n=T):
    """Bright spots on a dark background, different for each position (uint8)."""
    return make_spots(n_frames=n, shape=(Y, X), n_particles=6, diameter=DIAMETER, seed=10 + k)


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """An OME-TIFF of three positions (series) with per-position calibration: what
    Micro-Manager and most vendors' OME export write."""
    path = tmp_path_factory.mktemp("plate") / "plate.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as w:
        for k in range(N_POS):
            w.write(series_data(k, T - k), photometric="minisblack", metadata={
                "axes": "TYX", "Name": f"Pos{k}",
                "PhysicalSizeX": 160 + 10 * k, "PhysicalSizeXUnit": "nm",
                "PhysicalSizeY": 160 + 10 * k, "PhysicalSizeYUnit": "nm",
                "TimeIncrement": 50, "TimeIncrementUnit": "ms"})
    return str(path)


def test_positions_are_listed_and_required(plate):
    found = positions(plate)
    assert [(p.index, p.name) for p in found] == [(0, "Pos0"), (1, "Pos1"), (2, "Pos2")]
    with pytest.raises(VideoError, match=r"holds 3 positions .*'Pos0'.*position="):
        open_video(plate)
    with pytest.raises(VideoError, match="no position 3"):
        open_video(plate, position=3)
    with pytest.raises(VideoError, match="no position named 'Pos9'"):
        open_video(plate, position="Pos9")
    assert positions(str(plate).replace("plate.ome", "nothing")) is None


@pytest.mark.parametrize("k", range(N_POS))
def test_each_position_reads_its_series_exactly(plate, k):
    by_index = open_video(plate, position=k, chunks=2)
    by_name = open_video(plate, position=f"Pos{k}", chunks=2)
    as_item = open_video(Position(plate, k))
    expected = tifffile.imread(plate, series=k)
    assert expected.shape == (T - k, Y, X)
    for v in (by_index, by_name, as_item):
        np.testing.assert_array_equal(sync(v.data), expected)
        assert v.attrs["position"] == f"Pos{k}" and v.attrs["position_index"] == k
    # calibration as written, converted from nm and ms, with the fields named
    assert by_index.attrs["pixel_size_y"] == pytest.approx(0.16 + 0.01 * k)
    assert by_index.attrs["pixel_size_x"] == pytest.approx(0.16 + 0.01 * k)
    assert "pixel_size_z" not in by_index.attrs
    assert by_index.attrs["fps"] == pytest.approx(20.0)
    assert by_index.attrs["pixel_size_source"] == "OME-XML Pixels PhysicalSizeX/Y"
    assert by_index.attrs["fps_source"] == "OME-XML Pixels TimeIncrement"


def test_positions_computed_together_keep_their_own_pixels(plate):
    """Two positions of one file are different data: their chunks' Dask keys differ
    (they once shared the file's key, and the second came out as the first)."""
    import dask

    a, b = (open_video(plate, position=k).data for k in (1, 2))
    assert a.name != b.name
    got_a, got_b = dask.compute(a, b, scheduler="sync")
    np.testing.assert_array_equal(got_a, tifffile.imread(plate, series=1))
    np.testing.assert_array_equal(got_b, tifffile.imread(plate, series=2))


def test_calibration_attrs_keep_the_video_netcdf_friendly(plate):
    attrs = open_video(plate, position=0).attrs
    assert {"pixel_size_x", "pixel_size_y", "fps", "pixel_size_source", "fps_source"} <= set(
        attrs)
    for key, value in attrs.items():  # what netCDF attributes can hold
        assert isinstance(value, (str, int, float, tuple)), key


def test_a_multi_position_file_is_a_many_video_job(plate, tmp_path):
    store = tmp_path / "plate.parquet"
    out = batch(plate, DIAMETER, store=store, **PARAMS)
    names = ["plate-Pos0", "plate-Pos1", "plate-Pos2"]
    assert list(out) == names
    info = store_info(store)
    for k, name in enumerate(names):
        frames = tifffile.imread(plate, series=k)
        expected = locate_stack(frames, DIAMETER, **PARAMS)
        got = read_features(store, video=name)
        assert len(expected) > 0
        pd.testing.assert_frame_equal(got, expected.reset_index(drop=True),
                                      check_dtype=False)
        src = info["videos"][name]["source"]
        assert (src["position"], src["position_index"]) == (f"Pos{k}", k)
        assert src["calibration"]["pixel_size_um"]["x"] == pytest.approx(0.16 + 0.01 * k)
        cal = daskloc.calibration(store, video=name)
        assert tuple(cal) == (pytest.approx(0.16 + 0.01 * k), pytest.approx(20.0))
    # the positions differ in calibration: the whole store has none to give
    with pytest.raises(ValueError, match="different calibrations.*video=NAME"):
        daskloc.calibration(store)
    # a rerun resumes every position (nothing to do), with the same names
    again = batch(plate, DIAMETER, store=store, **PARAMS)
    assert list(again) == names


def test_a_job_of_one_position_refuses_another(plate, tmp_path):
    store = tmp_path / "one.parquet"
    batch(Position(plate, 1), DIAMETER, store=store, **PARAMS)
    with pytest.raises(StoreMismatchError, match="position_index"):
        batch(Position(plate, 2), DIAMETER, store=store, **PARAMS)


def test_calibration_is_what_trackpy_emsd_takes(plate, tmp_path):
    trackpy = pytest.importorskip("trackpy")
    store = tmp_path / "one.parquet"
    batch(Position(plate, 0), DIAMETER, store=store, **PARAMS)
    mpp, fps = daskloc.calibration(store)
    assert (mpp, fps) == (pytest.approx(0.16), pytest.approx(20.0))
    # a random walk of 3 particles over 50 frames, in pixels and frames
    rng = np.random.default_rng(0)
    steps = rng.normal(0, 1.5, (3, 50, 2)).cumsum(axis=1)
    traj = pd.DataFrame({"particle": np.repeat(np.arange(3), 50),
                         "frame": np.tile(np.arange(50), 3),
                         "y": steps[..., 0].ravel(), "x": steps[..., 1].ravel()})
    got = trackpy.emsd(traj, mpp, fps, max_lagtime=10)
    want = trackpy.emsd(traj, 0.16, 20.0, max_lagtime=10)
    pd.testing.assert_series_equal(got, want)
    # 3-D columns with a coarser z: one size per column, as trackpy multiplies them
    traj["z"] = traj["x"][::-1].to_numpy()
    cal = Calibration({"z": 0.5, "y": 0.16, "x": 0.16}, fps=20.0)
    cols = ["z", "y", "x"]
    got = trackpy.emsd(traj, cal.mpp_for(cols), cal.fps, max_lagtime=10, pos_columns=cols)
    scaled = traj.assign(z=traj.z * 0.5, y=traj.y * 0.16, x=traj.x * 0.16)
    want = trackpy.emsd(scaled, 1.0, 20.0, max_lagtime=10, pos_columns=cols)
    pd.testing.assert_series_equal(got, want)


def test_anisotropic_volume_mpp_per_column():
    cal = Calibration({"z": 0.5, "y": 0.1, "x": 0.1}, fps=2.0)
    assert cal.mpp == 0.1  # for trackpy's default pos_columns, x and y
    np.testing.assert_array_equal(Calibration({"y": 0.2, "x": 0.1}).mpp, [0.1, 0.2])
    np.testing.assert_array_equal(cal.mpp_for(["z", "y", "x"]), [0.5, 0.1, 0.1])
    assert cal.mpp_for(["y", "x"]) == 0.1 and cal.z_step == 0.5
    assert Calibration.from_json(cal.to_json()) == cal
    assert not Calibration() and Calibration().mpp is None and Calibration().fps is None
    # unpacking for trackpy says what is missing, not trackpy's "float * NoneType"
    with pytest.raises(ValueError, match="no fps.*give trackpy your own values"):
        mpp, fps = Calibration({"y": 0.1, "x": 0.1})
    assert Calibration({"x": 0.1}).describe() == "0.1 µm per pixel along x"


@pytest.mark.parametrize("unit, value, expected", [
    ("msec", 50, 0.05), ("sec", 2, 2.0), ("usec", 5, 5e-6), ("\\u00B5sec", 5, 5e-6),
    ("min", 1, 60.0)])
def test_imagej_time_units(unit, value, expected):
    from daskloc.video._calibration import to_seconds

    assert to_seconds(value, unit) == pytest.approx(expected)


# --- ImageJ hyperstacks and plain TIFFs -------------------------------------------------


def test_imagej_hyperstack_tzcyx(tmp_path):
    """ImageJ's own layout: TZCYX with resolution in µm, spacing and finterval."""
    rng = np.random.default_rng(3)
    data = rng.integers(0, 4000, (4, 5, 2, 24, 32), dtype=np.uint16)
    path = tmp_path / "hyper.tif"
    tifffile.imwrite(path, data, imagej=True, resolution=(1 / 0.2, 1 / 0.25),
                     metadata={"axes": "TZCYX", "spacing": 0.8, "unit": "micron",
                               "finterval": 0.5})
    v = open_video(str(path), chunks=3)
    assert v.dims == ("frame", "z", "y", "x", "channel")
    np.testing.assert_array_equal(sync(v.data), np.moveaxis(data, 2, -1))
    one = open_video(str(path), channel=1)
    assert one.dims == ("frame", "z", "y", "x")
    np.testing.assert_array_equal(sync(one.data), data[:, :, 1])
    assert Calibration.from_attrs(v.attrs).pixel_size == {
        "z": pytest.approx(0.8), "y": pytest.approx(0.25), "x": pytest.approx(0.2)}
    assert v.attrs["fps"] == pytest.approx(2.0)
    assert v.attrs["pixel_size_source"] == "ImageJ resolution and unit and spacing"
    assert v.attrs["fps_source"] == "ImageJ finterval"


@pytest.mark.parametrize("unit, expected", [
    ("CENTIMETER", 0.2e4), ("MICROMETER", 0.2), ("INCH", None), ("NONE", None)])
def test_resolution_tags_count_only_in_lengths_of_the_lab(tmp_path, unit, expected):
    path = tmp_path / "r.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint8), resolution=(5, 5),
                     resolutionunit=unit, photometric="minisblack")
    attrs = open_video(str(path)).attrs
    if expected is None:
        assert "pixel_size_x" not in attrs  # a printing resolution is not a calibration
    else:
        assert attrs["pixel_size_x"] == pytest.approx(expected)


def test_imagej_pixel_unit_is_uncalibrated(tmp_path):
    path = tmp_path / "u.tif"
    tifffile.imwrite(path, np.zeros((3, 8, 8), np.uint8), imagej=True, resolution=(1, 1),
                     metadata={"unit": "pixel"})
    assert "pixel_size_x" not in open_video(str(path)).attrs


@pytest.mark.parametrize("kind", ["ome", "imagej", "plain"])
@pytest.mark.parametrize("keep", [0.33, 0.9])
def test_a_truncated_tiff_is_refused_not_read_short(plate, tmp_path, kind, keep):
    """A TIFF cut short (a copy interrupted, a disk full while recording): tifffile
    reads the pages before the cut and logs the rest; open_video refuses the file
    instead of giving fewer frames without a word."""
    src = tmp_path / "whole.tif"
    frames = series_data(0, 40)
    if kind == "ome":
        src = plate
    elif kind == "imagej":
        tifffile.imwrite(src, frames, imagej=True)
    else:
        tifffile.imwrite(src, frames, photometric="minisblack")
    data = open(src, "rb").read()
    bad = tmp_path / "cut.tif"
    bad.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(VideoError, match="cut.tif: the TIFF is truncated, damaged or incomplete"):
        open_video(str(bad), position=0 if kind == "ome" else None)


# --- probe -----------------------------------------------------------------------------


def test_probe_reports_what_a_job_would_use(plate):
    info = probe(plate)
    assert [p["name"] for p in info["positions"]] == ["Pos0", "Pos1", "Pos2"]
    assert [p["shape"] for p in info["positions"]] == [[T - k, Y, X] for k in range(N_POS)]
    assert info["position"] == "Pos0" and info["dims"] == ["frame", "y", "x"]
    assert info["calibration"]["pixel_size_um"] == {"y": pytest.approx(0.16),
                                                    "x": pytest.approx(0.16)}
    v = open_video(plate, position=0)
    assert info["chunks"]["sizes"] == list(v.data.chunks[0])
    assert info["memory_per_chunk"]["frames_bytes"] == max(v.data.chunks[0]) * Y * X
    small = probe(plate, position="Pos2", chunks=2)
    assert small["chunks"] == {"n_chunks": 2, "max_frames": 2, "sizes": [2, 2]}
    json.dumps(info)  # JSON-ready, as --json prints it


def run(*args):
    return subprocess.run([sys.executable, "-m", "daskloc", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_cli_probe_locate_position_and_info(plate, tmp_path):
    out = run("probe", plate)
    assert out.returncode == 0, out.stderr
    assert "positions:   3" in out.stdout and "1: Pos1" in out.stdout
    assert "0.16 x 0.16 µm per pixel (y, x)" in out.stdout
    assert "20 frames/s" in out.stdout
    bad = run("probe", plate, "--position", "Pos7")
    assert bad.returncode != 0 and "no position named 'Pos7'" in bad.stderr
    assert "Traceback" not in bad.stderr
    store = tmp_path / "p1.parquet"
    done = run("locate", plate, "--position", "Pos1", "--diameter", DIAMETER,
               "--minmass", 100, "--out", store)
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(
        read_features(store)[["y", "x"]].to_numpy(),
        locate_stack(tifffile.imread(plate, series=1), DIAMETER, **PARAMS)[["y", "x"]])
    shown = run("info", store)
    assert "(position 1: Pos1)" in shown.stdout
    assert "calibration: 0.17 x 0.17 µm per pixel (y, x)" in shown.stdout


def test_ome_tiff_tczyx_positions_channel_and_z(tmp_path):
    """Two positions of TCZYX (Micro-Manager's order of writing): a channel picked, z
    kept as the volume's axis, calibration per axis."""
    rng = np.random.default_rng(5)
    data = [rng.integers(0, 60000, (3, 2, 4, 16, 20), dtype=np.uint16) for _ in range(2)]
    path = tmp_path / "tczyx.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as w:
        for k, d in enumerate(data):
            w.write(d, photometric="minisblack", metadata={
                "axes": "TCZYX", "Name": f"FOV{k}", "PhysicalSizeX": 0.1,
                "PhysicalSizeY": 0.1, "PhysicalSizeZ": 0.3, "PhysicalSizeZUnit": "µm"})
    v = open_video(str(path), position="FOV1", channel=1, chunks=2)
    assert v.dims == ("frame", "z", "y", "x") and v.data.chunks[0] == (2, 1)
    np.testing.assert_array_equal(sync(v.data), data[1][:, 1])
    assert Calibration.from_attrs(v.attrs).pixel_size == {
        "z": pytest.approx(0.3), "y": pytest.approx(0.1), "x": pytest.approx(0.1)}
    assert "fps" not in v.attrs  # no TimeIncrement written: none invented
    both = open_video(str(path), position=0)
    assert both.dims == ("frame", "z", "y", "x", "channel")
    np.testing.assert_array_equal(sync(both.data), np.moveaxis(data[0], 1, -1))


def _ome_xml(image_xml, uid=None):
    uid = uid or f"urn:uuid:{uuid.uuid4()}"
    return ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org'
            f'/Schemas/OME/2016-06" UUID="{uid}">{image_xml}</OME>')


def test_planes_the_ome_xml_lists_but_no_file_holds_are_refused_not_zeroed(tmp_path):
    """An acquisition stopped early (SizeT larger than the pages written) and a
    multi-file Micro-Manager set whose second file was not copied: tifffile fills the
    missing planes with zeros and only logs it; open_video refuses the file."""
    frames = series_data(0, 6)
    pixels = ('<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="80" '
              'SizeY="64" SizeZ="1" SizeC="1" SizeT="{t}"><Channel ID="Channel:0:0" '
              'SamplesPerPixel="1"/>{data}</Pixels>')
    stopped = tmp_path / "stopped.ome.tif"
    xml = _ome_xml('<Image ID="Image:0" Name="Pos0">' + pixels.format(
        t=10, data='<TiffData IFD="0" PlaneCount="6"/>') + "</Image>")
    tifffile.imwrite(stopped, frames, description=xml.encode(), metadata=None,
                     photometric="minisblack")
    with pytest.raises(VideoError, match="stopped.ome.tif: the TIFF is truncated, damaged or "
                                         "incomplete.*missing 4 frames"):
        open_video(str(stopped))
    main, other = tmp_path / "MMStack_Pos0.ome.tif", "MMStack_Pos0_1.ome.tif"
    ua, ub = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    data = (f'<TiffData FirstT="0" IFD="0" PlaneCount="3"><UUID FileName="{main.name}">{ua}'
            f'</UUID></TiffData><TiffData FirstT="3" IFD="0" PlaneCount="3"><UUID '
            f'FileName="{other}">{ub}</UUID></TiffData>')
    xml = _ome_xml('<Image ID="Image:0" Name="Pos0">' + pixels.format(t=6, data=data)
                   + "</Image>", uid=ua)
    tifffile.imwrite(main, frames[:3], description=xml.encode(), metadata=None,
                     photometric="minisblack")
    # the second file is not there (not copied yet)
    with pytest.raises(VideoError, match=r"MMStack_Pos0.ome.tif: the TIFF is truncated.*"
                                         r"failed to read 'MMStack_Pos0_1.ome.tif'"):
        open_video(str(main))
    tifffile.imwrite(tmp_path / other, frames[3:], photometric="minisblack", metadata=None,
                     description=_ome_xml(f'<BinaryOnly MetadataFile="{main.name}" '
                                          f'UUID="{ua}"/>', uid=ub).encode())
    whole = open_video(str(main))  # the set complete: all six frames, as written
    np.testing.assert_array_equal(sync(whole.data), frames)


def test_repeated_position_names_never_take_a_real_name(tmp_path):
    path = tmp_path / "coll.ome.tif"
    with tifffile.TiffWriter(path, ome=True) as w:
        for k, name in enumerate(["A", "A", "series1"]):
            w.write(series_data(k, 3), photometric="minisblack",
                    metadata={"axes": "TYX", "Name": name})
    names = [p.name for p in positions(str(path))]
    assert names == ["series0", "series1-2", "series1"] and len(set(names)) == 3
    v = open_video(str(path), position="series1")  # the image really named so
    assert v.attrs["position_index"] == 2
    np.testing.assert_array_equal(sync(v.data), tifffile.imread(path, series=2))


def test_frame_interval_from_plane_delta_t(tmp_path):
    # Micro-Manager writes each plane's DeltaT (ms since the start) and no
    # TimeIncrement: the interval is the median step between time points of the first
    # z plane and channel; a frame rate is not made up where there is no DeltaT.
    data = np.zeros((4, 2, 8, 8), np.uint16)  # T, C, Y, X
    times_ms = [0.0, 50.0, 100.0, 151.0]
    planes = {"TheT": [t for t in range(4) for _ in range(2)],
              "TheC": [c for _ in range(4) for c in range(2)],
              "DeltaT": [times_ms[t] + 3.0 * c for t in range(4) for c in range(2)],
              "DeltaTUnit": ["ms"] * 8}
    path = tmp_path / "mm.ome.tif"
    tifffile.imwrite(path, data, ome=True, photometric="minisblack",
                     metadata={"axes": "TCYX", "Plane": planes})
    video = open_video(path, channel=1)
    assert video.attrs["fps"] == pytest.approx(1 / 0.050)
    assert video.attrs["fps_source"] == "OME-XML Plane DeltaT (median interval)"
    plain = tmp_path / "plain.ome.tif"
    tifffile.imwrite(plain, data, ome=True, photometric="minisblack",
                     metadata={"axes": "TCYX"})
    assert "fps" not in open_video(plain, channel=1).attrs
