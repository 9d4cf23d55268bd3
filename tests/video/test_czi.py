"""Zeiss CZI files read with pylibCZIrw: the CziSource reader.

Every file here is written by pylibCZIrw itself (the format's own writer), and the
pixels daskloc gives are compared with what pylibCZIrw reads back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import dask
import numpy as np
import pytest

import daskloc
from daskloc.testing.readers import ReaderTests, count_chunk_reads
from daskloc.video import VideoDecodeError, VideoError, open_video, positions, source_for
from daskloc.video._registry import supported
from daskloc.video.czi import CziSource
from tests.video._helpers import sync

pyczi = pytest.importorskip("pylibCZIrw.czi")


def write_czi(path, scenes, scale=None):
    """Write ``scenes`` (each ``(T, Z, C, Y, X)`` grey or ``(T, Z, C, Y, X, 3)`` BGR)
    into one CZI file with pylibCZIrw, scene ``s`` at x = 1000 s; ``scale``: the
    keywords of ``write_metadata`` (``scale_x`` ... in metres)."""
    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for s, data in enumerate(scenes):
            location = (1000 * s, 0)
            for t in range(data.shape[0]):
                for z in range(data.shape[1]):
                    for c in range(data.shape[2]):
                        plane = {"T": t, "Z": z, "C": c}
                        writer.write(np.ascontiguousarray(data[t, z, c]), plane=plane,
                                     scene=s, location=location)
        writer.write_metadata(**(scale or {}))
    return str(path)


def edit_xml(path, edit):
    """Rewrite the file's XML metadata with ``edit(xml) -> xml`` (pylibCZIrw's editor)."""
    with pyczi.edit_czi(str(path)) as editor:
        xml = edit(editor.read_metadata_xml())
        with editor.edit_session() as builder:
            builder.set_xml(xml)


def pyczi_frame(path, t, n_z, n_c, scene=None):
    """Frame ``t`` as pylibCZIrw reads it: (Z, Y, X, C) stacked from its planes."""
    with pyczi.open_czi(str(path)) as reader:
        planes = [[reader.read(plane={"T": t, "Z": z, "C": c}, scene=scene)[..., 0]
                   for c in range(n_c)] for z in range(n_z)]
    return np.moveaxis(np.asarray(planes), 1, -1)


def data(shape, dtype=np.uint16, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)


# --- the conformance suite -----------------------------------------------------------


class TestCziReader(ReaderTests):
    """The shared reader suite on a 16-bit CZI time series (T, Y, X)."""

    source_class = CziSource
    dtype = np.uint16

    def make_recording(self, tmp_path, frames):
        return write_czi(tmp_path / "recording.czi", [frames[:, None, None]])


class TestRgbCziReader(ReaderTests):
    """The shared reader suite on a Bgr24 CZI: frames come out in RGB order."""

    source_class = CziSource
    frame_shape = (12, 16, 3)

    def make_recording(self, tmp_path, frames):
        # the writer stores the last axis as blue, green, red (Bgr24)
        return write_czi(tmp_path / "recording.czi", [frames[:, None, None, ..., ::-1]])


# --- axes ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_t, n_z, n_c, dims", [
    (4, 1, 1, ("frame", "y", "x")),
    (4, 3, 1, ("frame", "z", "y", "x")),
    (4, 1, 2, ("frame", "y", "x", "channel")),
    (4, 3, 2, ("frame", "z", "y", "x", "channel")),
    (1, 3, 1, ("frame", "z", "y", "x")),      # no T, a Z axis: one 3-D frame
    (1, 1, 1, ("frame", "y", "x")),           # neither: one 2-D frame
    (1, 3, 2, ("frame", "z", "y", "x", "channel")),
])
def test_axes_and_pixels_equal_pylibczirw(tmp_path, n_t, n_z, n_c, dims):
    written = data((n_t, n_z, n_c, 10, 14))
    path = write_czi(tmp_path / "a.czi", [written])
    v = open_video(path, chunks=2)
    assert v.dims == dims
    assert v.shape[0] == n_t and v.dtype == np.uint16
    got = sync(v.data)
    for t in range(n_t):
        expected = pyczi_frame(path, t, n_z, n_c)  # (Z, Y, X, C)
        np.testing.assert_array_equal(expected, np.moveaxis(written[t], 1, -1))
        if n_c == 1:
            expected = expected[..., 0]
        if n_z == 1:
            expected = expected[0]
        np.testing.assert_array_equal(got[t], expected)
    assert v.attrs["n_frames"] == n_t
    assert v.attrs["original_shape"] == tuple(n for n in (n_t, n_z, n_c) if n > 1) + (10, 14)


def test_channel_picks_one(tmp_path):
    written = data((3, 2, 3, 8, 9))
    path = write_czi(tmp_path / "c.czi", [written])
    for c in range(3):
        v = open_video(path, channel=c, chunks=2)
        assert v.dims == ("frame", "z", "y", "x") and v.attrs["channel"] == c
        np.testing.assert_array_equal(sync(v.data), written[:, :, c])
    with pytest.raises(ValueError, match="channel"):
        open_video(path, channel=3)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_grey_pixel_types(tmp_path, dtype):
    written = data((3, 1, 1, 6, 7), dtype)
    path = write_czi(tmp_path / "g.czi", [written])
    v = open_video(path)
    assert v.dtype == dtype
    assert v.attrs["czi_pixel_type"] == {np.uint8: "Gray8", np.uint16: "Gray16",
                                         np.float32: "Gray32Float"}[dtype]
    np.testing.assert_array_equal(sync(v.data), written[:, 0, 0])


@pytest.mark.parametrize("dtype, kind", [(np.uint8, "Bgr24"), (np.uint16, "Bgr48")])
def test_colour_is_rgb(tmp_path, dtype, kind):
    bgr = data((2, 1, 1, 6, 7, 3), dtype)
    path = write_czi(tmp_path / "rgb.czi", [bgr])
    with pyczi.open_czi(path) as reader:
        assert reader.pixel_types == {0: kind}
        as_read = reader.read(plane={"T": 1})
    np.testing.assert_array_equal(as_read, bgr[1, 0, 0])  # pylibCZIrw gives B, G, R
    v = open_video(path)
    assert v.dims == ("frame", "y", "x", "channel") and v.dtype == dtype
    np.testing.assert_array_equal(sync(v.data), bgr[:, 0, 0, ..., ::-1])
    red = open_video(path, channel=0)
    np.testing.assert_array_equal(sync(red.data), bgr[:, 0, 0, ..., 2])


def test_channels_of_different_grey_types_read_as_the_widest(tmp_path):
    path = str(tmp_path / "mixed.czi")
    with pyczi.create_czi(path) as writer:
        writer.write(np.full((4, 5), 200, np.uint8), plane={"C": 0})
        writer.write(np.full((4, 5), 3000, np.uint16), plane={"C": 1})
    v = open_video(path)
    assert v.dtype == np.uint16 and v.dims == ("frame", "y", "x", "channel")
    got = sync(v.data)
    assert (got[..., 0] == 200).all() and (got[..., 1] == 3000).all()


# --- calibration ---------------------------------------------------------------------


def test_calibration_from_scaling_and_t_increment(tmp_path):
    path = write_czi(tmp_path / "cal.czi", [data((3, 2, 1, 6, 7))],
                     scale={"scale_x": 0.2e-6, "scale_y": 0.25e-6, "scale_z": 1.5e-6})
    v = open_video(path)
    assert (v.attrs["pixel_size_z"], v.attrs["pixel_size_y"], v.attrs["pixel_size_x"]) == (
        1.5, 0.25, 0.2)
    assert v.attrs["pixel_size_source"] == "CZI Scaling Distance X/Y/Z"
    assert "fps_source" not in v.attrs
    assert "fps" not in v.attrs  # no interval written: none recorded
    calibration = daskloc.video.Calibration.from_attrs(v.attrs)
    assert calibration.z_step == 1.5

    increment = "<T><Positions><Interval><Increment>0.05</Increment></Interval></Positions></T>"
    edit_xml(path, lambda xml: xml.replace("<Dimensions>", "<Dimensions>" + increment, 1))
    v = open_video(path)
    assert v.attrs["fps"] == pytest.approx(20.0)
    assert v.attrs["fps_source"] == "CZI Dimensions T Positions Interval Increment"
    np.testing.assert_array_equal(sync(v.data)[2], data((3, 2, 1, 6, 7))[2, :, 0])


def test_no_calibration_recorded_when_the_file_has_none(tmp_path):
    v = open_video(write_czi(tmp_path / "plain.czi", [data((2, 1, 1, 6, 7))]))
    assert not {"pixel_size_x", "pixel_size_y", "pixel_size_z", "fps", "pixel_size_source",
                "fps_source"} & set(v.attrs)
    # a 2-D file's Z scaling is not a z step
    v = open_video(write_czi(tmp_path / "xy.czi", [data((2, 1, 1, 6, 7))],
                             scale={"scale_x": 1e-6, "scale_y": 1e-6, "scale_z": 2e-6}))
    assert (v.attrs["pixel_size_y"], v.attrs["pixel_size_x"]) == (1.0, 1.0)
    assert "pixel_size_z" not in v.attrs
    assert v.attrs["pixel_size_source"] == "CZI Scaling Distance X/Y"


# --- scenes: positions ---------------------------------------------------------------


def name_scenes(path, names):
    scenes = "".join(f'<Scene Index="{i}" Name="{n}"/>' for i, n in enumerate(names))
    edit_xml(path, lambda xml: xml.replace(
        "<Dimensions>", f"<Dimensions><S><Scenes>{scenes}</Scenes></S>", 1))


def test_scenes_are_positions(tmp_path):
    a, b = data((3, 1, 1, 8, 10), seed=1), data((3, 1, 1, 6, 7), seed=2)
    path = write_czi(tmp_path / "plate.czi", [a, b])
    assert CziSource.positions_of(path) == ["scene0", "scene1"]
    with pytest.raises(VideoError, match="holds 2 positions"):
        open_video(path)
    one = open_video(path, position=1)
    assert one.shape == (3, 6, 7) and one.attrs["position"] == "scene1"
    assert one.attrs["position_index"] == 1
    np.testing.assert_array_equal(sync(one.data), b[:, 0, 0])
    with pyczi.open_czi(path) as reader:
        np.testing.assert_array_equal(sync(one.data)[2], reader.read(plane={"T": 2},
                                                                     scene=1)[..., 0])
    with pytest.raises(VideoError, match="holds no position 2"):
        open_video(path, position=2)
    with pytest.raises(VideoError, match="no position named 'B2'"):
        open_video(path, position="B2")

    # the scenes of one file are different dask arrays: computed together, each its own
    zero = open_video(path, position=0, chunks=2)
    assert zero.data.name != one.data.name
    got_a, got_b = dask.compute(zero.data, open_video(path, position=1, chunks=2).data,
                                scheduler="sync")
    np.testing.assert_array_equal(got_a, a[:, 0, 0])
    np.testing.assert_array_equal(got_b, b[:, 0, 0])

    name_scenes(path, ["A1", "B2"])
    assert CziSource.positions_of(path) == ["A1", "B2"]
    assert [(p.index, p.name) for p in positions(path)] == [(0, "A1"), (1, "B2")]
    zero = open_video(path, position="A1")
    assert zero.shape == (3, 8, 10) and zero.attrs["position"] == "A1"
    np.testing.assert_array_equal(sync(zero.data), a[:, 0, 0])


def test_a_scene_with_fewer_time_points_has_only_its_own_frames(tmp_path):
    # an acquisition stopped during its last time point: scene 1 lacks T = 5. The
    # file's T range (every scene's) is 6; scene 1 is 5 frames, not 5 and a black one.
    a, b = data((6, 1, 1, 5, 7), seed=3), data((5, 1, 1, 5, 7), seed=4)
    path = write_czi(tmp_path / "stopped.czi", [a, b])
    with pyczi.open_czi(path) as reader:
        assert reader.total_bounding_box_no_pyramid["T"] == (0, 6)
    zero, one = open_video(path, position=0), open_video(path, position=1)
    assert len(zero.frame) == 6 and zero.attrs["n_frames"] == 6
    assert len(one.frame) == 5 and one.attrs["n_frames"] == 5
    np.testing.assert_array_equal(one.frame.values, np.arange(5))
    np.testing.assert_array_equal(sync(one.data), b[:, 0, 0])
    np.testing.assert_array_equal(sync(zero.data), a[:, 0, 0])


def test_a_single_scene_file_has_no_positions(tmp_path):
    path = write_czi(tmp_path / "one.czi", [data((2, 1, 1, 6, 7))])
    assert CziSource.positions_of(path) is None and positions(path) is None
    v = open_video(path, position=0)
    assert "position" not in v.attrs


def spots(n_t, shape, where, seed):
    from daskloc.synthetic import make_frame

    return np.stack([make_frame(shape, [(y + t, x) for y, x in where], 7, noise=2,
                                seed=seed + t) for t in range(n_t)])


def test_batch_locates_each_scene_as_its_own_video(tmp_path):
    a = spots(3, (40, 48), [(12.3, 14.6), (25.5, 33.2)], seed=1)
    b = spots(3, (36, 40), [(18.2, 20.7)], seed=5)
    path = write_czi(tmp_path / "plate.czi", [a[:, None, None], b[:, None, None]])
    name_scenes(path, ["A1", "B2"])
    with dask.config.set(scheduler="synchronous"):
        found = daskloc.batch(path, 7, store=str(tmp_path / "f.parquet"), minmass=200)
    assert list(found) == ["plate-A1", "plate-B2"]
    counts = {name: df.groupby("frame").size().tolist() for name, df in
              ((n, f.compute() if hasattr(f, "compute") else f) for n, f in found.items())}
    assert counts == {"plate-A1": [2, 2, 2], "plate-B2": [1, 1, 1]}


def test_mosaic_tiles_are_composed_into_the_scene(tmp_path):
    left, right = data((2, 6, 7), np.uint8, seed=3), data((2, 6, 5), np.uint8, seed=4)
    path = str(tmp_path / "mosaic.czi")
    with pyczi.create_czi(path) as writer:
        for t in range(2):
            writer.write(left[t], plane={"T": t}, scene=0, location=(100, 40))
            writer.write(right[t], plane={"T": t}, scene=0, location=(107, 40))
    v = open_video(path)
    assert v.shape == (2, 6, 12)
    np.testing.assert_array_equal(sync(v.data), np.concatenate([left, right], axis=2))
    with pyczi.open_czi(path) as reader:
        np.testing.assert_array_equal(sync(v.data)[1], reader.read(plane={"T": 1},
                                                                   scene=0)[..., 0])


# --- laziness ------------------------------------------------------------------------


def test_a_chunk_reads_only_its_planes(tmp_path, monkeypatch):
    written = data((6, 2, 2, 6, 7))
    path = write_czi(tmp_path / "lazy.czi", [written])
    reads = []
    plain = pyczi.CziReader.read

    def counting(self, *args, **kwargs):
        reads.append(dict(kwargs.get("plane") or {}))
        return plain(self, *args, **kwargs)

    monkeypatch.setattr(pyczi.CziReader, "read", counting)
    with count_chunk_reads() as chunks:
        v = open_video(path, chunks=2)
    assert reads == [] and chunks.count == 0  # opening reads no pixels
    block = sync(v.data.blocks[1])  # frames 2, 3
    np.testing.assert_array_equal(block, np.moveaxis(written[2:4], 2, -1))
    assert chunks.count == 1
    assert sorted((p["T"], p["Z"], p["C"]) for p in reads) == [
        (t, z, c) for t in (2, 3) for z in range(2) for c in range(2)]
    reads.clear()
    sync(open_video(path, frames=[5]).data)  # a selected frame: its 4 planes alone
    assert sorted((p["T"], p["Z"], p["C"]) for p in reads) == [
        (5, z, c) for z in range(2) for c in range(2)]


# --- damaged files and the missing extra ---------------------------------------------


def test_a_truncated_file_is_a_clear_error(tmp_path):
    path = write_czi(tmp_path / "t.czi", [data((4, 1, 1, 16, 16))])
    whole = open(path, "rb").read()
    cut = tmp_path / "cut.czi"
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    with pytest.raises(VideoError, match="cannot read as a CZI file.*truncated"):
        open_video(str(cut))
    # truncated after open_video: the chunk read fails at compute time
    v = open_video(path, chunks=2)
    with open(path, "r+b") as f:
        f.truncate(len(whole) // 2)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data.blocks[1])
    assert info.value.path == path and info.value.chunk == (2, 3)


def test_registry_and_foreign_files(tmp_path):
    path = write_czi(tmp_path / "r.czi", [data((2, 1, 1, 6, 7))])
    assert source_for(path) is CziSource
    assert "Zeiss CZI (.czi" in supported()
    fake = tmp_path / "fake.czi"
    fake.write_bytes(b"not a czi file at all" * 10)
    with pytest.raises(VideoError, match="cannot read as a CZI"):
        open_video(str(fake))
    assert CziSource.positions_of(str(fake)) is None


@pytest.mark.slow
def test_without_pylibczirw_the_error_names_the_extra(tmp_path):
    path = write_czi(tmp_path / "x.czi", [data((2, 1, 1, 6, 7))])
    code = textwrap.dedent(f"""
        import sys
        sys.modules["pylibCZIrw"] = None
        import daskloc
        try:
            daskloc.open_video({path!r})
        except ImportError as exc:
            print("ImportError:", exc)
        """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'daskloc[czi]'" in proc.stdout, proc.stdout + proc.stderr
