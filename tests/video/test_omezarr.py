"""OME-Zarr (OME-NGFF 0.4 and 0.5): the OmeZarrSource reader, on files written by the
``ome-zarr`` package's own writer (and a bioformats2raw container laid out as
bioformats2raw writes one), compared with what ome-zarr's own reader returns."""

from __future__ import annotations

import os
import pickle
import warnings

import numpy as np
import pytest

from daskloc.testing.readers import ReaderTests
from daskloc.video import (
    Calibration,
    VideoDecodeError,
    VideoError,
    open_video,
    skip_undecodable,
    source_for,
)
from daskloc.video import positions as video_positions
from daskloc.video.omezarr import OmeZarrSource
from daskloc.video.zarr import ZarrSource
from tests.video._helpers import sync

zarr = pytest.importorskip("zarr")
ome_writer = pytest.importorskip("ome_zarr.writer")
ome_format = pytest.importorskip("ome_zarr.format")
from ome_zarr.io import parse_url  # noqa: E402 - after the importorskip
from ome_zarr.reader import Reader  # noqa: E402

FORMATS = {"0.4": ome_format.FormatV04, "0.5": ome_format.FormatV05}


def write(path, data, axes, fmt="0.4", levels=1, scale=None, units=None, chunks=None):
    """Write ``data`` with ``ome_zarr.writer.write_image``: ``levels`` resolution levels
    (each halving y and x), one Zarr chunk per plane unless ``chunks``."""
    if chunks is None:
        chunks = tuple(1 if a in "tcz" else s for a, s in zip(axes, data.shape))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ome-zarr's own deprecation notices
        ome_writer.write_image(data, str(path), axes=list(axes), fmt=FORMATS[fmt](),
                               scale_factors=[2 ** i for i in range(1, levels)],
                               scale=scale, axes_units=units,
                               storage_options={"chunks": chunks})
    return str(path)


def reference(path, level=0):
    """What ome-zarr's own reader returns for ``level`` of the image at ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nodes = list(Reader(parse_url(str(path)))())
    return np.asarray(nodes[0].data[level])


def frames_of(data, axes):
    """``data`` (axes in NGFF order) in open_video's order: frame, z, y, x, channel."""
    order = [axes.index(a) for a in "tzyxc" if a in axes]
    out = data.transpose(order)
    return out if "t" in axes else out[None]


# ---------------------------------------------------------------------------------------
# The shared reader suite
# ---------------------------------------------------------------------------------------


class TestOmeZarrReader(ReaderTests):
    """The shared reader suite on a ``tyx`` OME-NGFF 0.4 image (Zarr v2)."""

    source_class = OmeZarrSource
    fmt = "0.4"

    def make_recording(self, tmp_path, frames):
        if frames.ndim == 4:  # (t, y, x, c) -> NGFF's (t, c, y, x)
            return write(tmp_path / "recording.ome.zarr", frames.transpose(0, 3, 1, 2),
                         "tcyx", self.fmt)
        return write(tmp_path / "recording.ome.zarr", frames, "tyx", self.fmt)

    def make_foreign(self, tmp_path):
        path = tmp_path / "plain.zarr"  # a plain Zarr array: the Zarr source's
        zarr.create_array(str(path), shape=(2, 3, 4), dtype="uint8")[:] = 1
        return str(path)


class TestOmeZarrV05Reader(TestOmeZarrReader):
    """The same on OME-NGFF 0.5 (Zarr v3), 16-bit."""

    fmt = "0.5"
    dtype = np.uint16


class TestOmeZarrChannelReader(TestOmeZarrReader):
    """The same with three channels (``c``, moved last)."""

    frame_shape = (12, 16, 3)

    def test_shape_dtype_dims_attrs(self, recording, frames):
        # the source's shape is NGFF's (t, c, y, x), not the video's (frame, y, x, channel)
        v = open_video(recording)
        assert v.dims == ("frame", "y", "x", "channel") and v.shape == frames.shape
        assert v.attrs["original_shape"] == (7, 3, 12, 16)
        assert v.attrs["n_frames"] == 7 and None not in v.attrs.values()


# ---------------------------------------------------------------------------------------
# Axes, channel, level: equal to ome-zarr's own reader
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
@pytest.mark.parametrize("axes, shape, dims", [
    ("tczyx", (5, 2, 3, 10, 12), ("frame", "z", "y", "x", "channel")),
    ("tzyx", (5, 3, 10, 12), ("frame", "z", "y", "x")),
    ("zyx", (3, 10, 12), ("frame", "z", "y", "x")),
    ("yx", (10, 12), ("frame", "y", "x")),
])
def test_axes_as_ome_zarr_reads_them(tmp_path, fmt, axes, shape, dims):
    data = np.random.default_rng(1).integers(0, 65535, shape, dtype=np.uint16)
    path = write(tmp_path / "image.ome.zarr", data, axes, fmt)
    assert source_for(path) is OmeZarrSource
    v = open_video(path, chunks=2)
    assert v.dims == dims
    expected = frames_of(reference(path), axes)
    np.testing.assert_array_equal(expected, frames_of(data, axes))
    assert v.shape == expected.shape and v.dtype == np.uint16
    assert v.attrs["original_shape"] == shape and v.attrs["n_frames"] == expected.shape[0]
    np.testing.assert_array_equal(sync(v.data), expected)
    last = len(expected) - 1
    np.testing.assert_array_equal(sync(open_video(path, frames=sorted({0, last})).data),
                                  expected[sorted({0, last})])


@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
def test_channel_and_level(tmp_path, fmt):
    data = np.random.default_rng(2).integers(0, 250, (4, 3, 2, 16, 20), dtype=np.uint8)
    path = write(tmp_path / "image.ome.zarr", data, "tczyx", fmt, levels=2)
    second = open_video(path, channel=1)
    assert second.dims == ("frame", "z", "y", "x") and second.attrs["channel"] == 1
    np.testing.assert_array_equal(sync(second.data), reference(path)[:, 1])

    low = open_video(path, level=1, chunks=3)
    small = reference(path, level=1)
    assert small.shape == (4, 3, 2, 8, 10)  # ome-zarr's pyramid: y and x halved
    assert low.shape == (4, 2, 8, 10, 3)
    assert low.attrs["original_shape"] == small.shape
    np.testing.assert_array_equal(sync(low.data), frames_of(small, "tczyx"))
    np.testing.assert_array_equal(sync(open_video(path, level=1, channel=2).data),
                                  small[:, 2])

    with pytest.raises(VideoError, match=r"no resolution level 2: it has 2 \(levels 0: "):
        open_video(path, level=2)
    with pytest.raises(TypeError, match="level must be an int"):
        open_video(path, level="1")


def test_singleton_c_and_z_are_dropped(tmp_path):
    data = np.arange(3 * 1 * 1 * 6 * 7, dtype=np.uint16).reshape(3, 1, 1, 6, 7)
    path = write(tmp_path / "flat.ome.zarr", data, "tczyx")
    v = open_video(path)
    assert v.dims == ("frame", "y", "x")
    np.testing.assert_array_equal(sync(v.data), data[:, 0, 0])


# ---------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
def test_calibration_from_the_level_scale_and_units(tmp_path, fmt):
    data = np.zeros((3, 4, 16, 20), np.uint8)
    path = write(tmp_path / "cal.ome.zarr", data, "tzyx", fmt, levels=2,
                 scale={"t": 50.0, "z": 0.5, "y": 160.0, "x": 160.0},
                 units={"t": "millisecond", "z": "micrometer", "y": "nanometer",
                        "x": "nanometer"})
    v = open_video(path)
    assert sizes(v) == pytest.approx({"z": 0.5, "y": 0.16, "x": 0.16})
    assert v.attrs["fps"] == pytest.approx(20.0)  # 50 ms per frame
    field = v.attrs["pixel_size_source"]
    assert "OME-NGFF multiscales coordinateTransformations scale" in field
    assert "coordinateTransformations" in v.attrs["fps_source"]
    low = open_video(path, level=1)  # y and x halved: twice the µm per pixel
    assert sizes(low) == pytest.approx({"z": 0.5, "y": 0.32, "x": 0.32})
    assert low.attrs["fps"] == pytest.approx(20.0)


def sizes(video):
    """µm per pixel along each calibrated axis, from the video's attrs."""
    return Calibration.from_attrs(video.attrs).pixel_size


def test_no_units_no_calibration_and_a_global_scale(tmp_path):
    data = np.zeros((2, 6, 8), np.uint8)
    path = write(tmp_path / "plain.ome.zarr", data, "tyx")  # ome-zarr writes scale 1.0
    assert not {"pixel_size_y", "pixel_size_x", "fps", "pixel_size_source",
                "fps_source"} & set(open_video(path).attrs)

    path = write(tmp_path / "global.ome.zarr", data, "tyx", scale={"y": 0.2, "x": 0.25},
                 units={"y": "micrometer", "x": "micrometer"})
    group = zarr.open_group(path, mode="r+")
    attrs = group.attrs.asdict()
    attrs["multiscales"][0]["coordinateTransformations"] = [
        {"type": "scale", "scale": [2.0, 2.0, 2.0]}]  # NGFF's multiscale-level transform
    group.attrs.put(attrs)
    v = open_video(path)
    assert sizes(v) == pytest.approx({"y": 0.4, "x": 0.5})
    assert "fps" not in v.attrs  # t has no unit


# ---------------------------------------------------------------------------------------
# bioformats2raw containers: one position per image
# ---------------------------------------------------------------------------------------


OME_XML = """<?xml version="1.0" encoding="UTF-8"?>
<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">
{images}
</OME>"""


def write_bioformats2raw(path, images, names, fmt="0.4"):
    """A container as bioformats2raw lays it out: ``bioformats2raw.layout`` on the root,
    one OME-Zarr image per series in ``0/``, ``1/``, ... (written by ome-zarr), the
    series list in ``OME/`` and the OME-XML in ``OME/METADATA.ome.xml``."""
    zarr_format = 3 if fmt == "0.5" else 2
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)
    ome = root.create_group("OME")
    series = [str(i) for i in range(len(images))]
    if zarr_format == 3:
        root.attrs["ome"] = {"version": "0.5", "bioformats2raw.layout": 3}
        ome.attrs["ome"] = {"version": "0.5", "series": series}
    else:
        root.attrs["bioformats2raw.layout"] = 3
        ome.attrs["series"] = series
    for i, data in enumerate(images):
        group = root.create_group(str(i))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ome_writer.write_image(data, group, axes=["t", "y", "x"], fmt=FORMATS[fmt](),
                                   scale_factors=[],
                                   storage_options={"chunks": (1,) + data.shape[1:]})
    xml = "\n".join(f'  <Image ID="Image:{i}" Name="{n}"/>' for i, n in enumerate(names))
    (path / "OME" / "METADATA.ome.xml").write_text(OME_XML.format(images=xml))
    return str(path)


def particles(seed, n_frames=4):
    from daskloc.synthetic import make_video

    video, _ = make_video(n_frames=n_frames, shape=(48, 64), n_particles=5, seed=seed)
    return np.asarray(video, dtype=np.uint8)


@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
def test_bioformats2raw_positions(tmp_path, fmt):
    images = [particles(1), particles(2), particles(3, n_frames=3)]
    path = write_bioformats2raw(tmp_path / "stage.zarr", images, ["Pos0", "Pos1", "Pos2"],
                                fmt)
    assert source_for(path) is OmeZarrSource
    assert OmeZarrSource.positions_of(path) == ["Pos0", "Pos1", "Pos2"]
    assert [p.name for p in video_positions(path)] == ["Pos0", "Pos1", "Pos2"]
    for index, (name, data) in enumerate(zip(["Pos0", "Pos1", "Pos2"], images)):
        for position in (index, name):
            v = open_video(path, position=position, chunks=2)
            assert v.attrs["position"] == name and v.attrs["position_index"] == index
            np.testing.assert_array_equal(sync(v.data), data)
            np.testing.assert_array_equal(data, reference(os.path.join(path, str(index))))
    with pytest.raises(VideoError, match="holds 3 positions"):
        open_video(path)
    with pytest.raises(VideoError, match="no position named 'Pos9'"):
        open_video(path, position="Pos9")
    with pytest.raises(VideoError, match="holds no position 3"):
        open_video(path, position=3)


def test_bioformats2raw_names_without_ome_xml(tmp_path):
    path = write_bioformats2raw(tmp_path / "stage.zarr", [particles(1), particles(2)],
                                ["same", "same"])  # repeated names: series<i>
    assert OmeZarrSource.positions_of(path) == ["series0", "series1"]
    os.remove(os.path.join(path, "OME", "METADATA.ome.xml"))
    assert OmeZarrSource.positions_of(path) == ["series0", "series1"]


def test_batch_locates_each_position_as_its_own_video(tmp_path):
    import dask
    import pandas as pd

    import daskloc
    from daskloc import locate_stack

    images = [particles(4), particles(5)]
    path = write_bioformats2raw(tmp_path / "stage.ome.zarr", images, ["A", "B"])
    store = str(tmp_path / "features.parquet")
    with dask.config.set(scheduler="synchronous"):
        daskloc.batch(path, 9, store=store, do_not_return=True, open_options={"chunks": 2})
    every = daskloc.read_features(store)
    assert list(every["video"].cat.categories) == ["stage-A", "stage-B"]
    for name, data in zip(["stage-A", "stage-B"], images):
        expected = locate_stack(data, 9)
        assert len(expected) > 0
        pd.testing.assert_frame_equal(daskloc.read_features(store, video=name), expected)


# ---------------------------------------------------------------------------------------
# What is not an OME-Zarr image, errors
# ---------------------------------------------------------------------------------------


def test_plain_zarr_is_still_the_zarr_source(tmp_path):
    stack = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    plain = tmp_path / "plain.zarr"
    zarr.create_array(str(plain), shape=stack.shape, dtype=stack.dtype)[:] = stack
    assert source_for(str(plain)) is ZarrSource and not OmeZarrSource.can_open(str(plain))
    np.testing.assert_array_equal(sync(open_video(str(plain)).data), stack)

    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("frames", shape=(2, 3, 4), dtype="uint8")
    assert source_for(str(tmp_path / "group.zarr")) is ZarrSource  # not NGFF: not ours
    with pytest.raises(VideoError, match="group, not an array"):
        open_video(str(tmp_path / "group.zarr"))
    with pytest.raises(VideoError, match="without OME-NGFF metadata"):
        OmeZarrSource(str(tmp_path / "group.zarr"))
    assert not OmeZarrSource.can_open(str(tmp_path / "missing.zarr"))
    assert not OmeZarrSource.can_open(str(tmp_path / "*.zarr"))


def test_a_plate_is_refused_with_a_way_out(tmp_path):
    group = zarr.open_group(str(tmp_path / "plate.zarr"), mode="w")
    group.attrs["plate"] = {"rows": [{"name": "A"}], "columns": [{"name": "1"}],
                            "wells": [{"path": "A/1", "rowIndex": 0, "columnIndex": 0}]}
    with pytest.raises(VideoError, match=r"HCS plate.*plate.zarr/A/1/0"):
        open_video(str(tmp_path / "plate.zarr"))


def test_an_axis_it_does_not_know_and_position_on_one_image(tmp_path):
    data = np.zeros((3, 6, 7), np.uint8)
    path = write(tmp_path / "one.ome.zarr", data, "tyx")
    assert OmeZarrSource.positions_of(path) is None
    open_video(path, position=0)
    with pytest.raises(VideoError, match="holds no position 1"):
        open_video(path, position=1)
    group = zarr.open_group(path, mode="r+")
    attrs = group.attrs.asdict()
    attrs["multiscales"][0]["axes"][0] = {"name": "angle", "type": "space"}
    group.attrs.put(attrs)
    with pytest.raises(VideoError, match="axis 'angle'.*3 entries"):
        open_video(path)


def chunk_files(path):
    """``{relative path: absolute path}`` of the chunk files of level 0 (``s0``)."""
    root = os.path.join(path, "s0")
    found = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f not in ("zarr.json", ".zarray", ".zattrs"):
                full = os.path.join(d, f)
                found[os.path.relpath(full, root)] = full
    return found


def first_frame_of(relative, fmt):
    parts = relative.split(os.sep)
    return int(parts[1] if fmt == "0.5" else parts[0])  # v3 keys start with c/


@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
def test_a_corrupt_chunk_is_a_decode_error(tmp_path, fmt):
    data = np.random.default_rng(3).integers(0, 60000, (6, 16, 20)).astype(np.uint16)
    path = write(tmp_path / "broken.ome.zarr", data, "tyx", fmt, chunks=(2, 16, 20))
    files = chunk_files(path)
    assert len(files) == 3
    broken = next(f for rel, f in files.items() if first_frame_of(rel, fmt) == 1)
    with open(broken, "r+b") as f:  # the chunk of frames 2 and 3
        f.write(np.random.default_rng(4).integers(0, 256, 64, dtype=np.uint8).tobytes())
    v = open_video(path, chunks=6)
    with pytest.raises(VideoDecodeError) as info:
        sync(v.data)
    assert (info.value.path, info.value.frame, info.value.chunk) == (path, 2, (0, 5))
    with skip_undecodable() as skipped:
        block = sync(v.data)
    assert skipped == [2, 3]
    np.testing.assert_array_equal(block[[0, 1, 4, 5]], data[[0, 1, 4, 5]])
    assert not block[2:4].any()


# ---------------------------------------------------------------------------------------
# Laziness: a chunk task reads only its frames' chunks
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
def test_a_chunk_task_reads_only_its_chunks(tmp_path, fmt, monkeypatch):
    data = np.random.default_rng(5).integers(0, 250, (6, 2, 8, 10), dtype=np.uint8)
    path = write(tmp_path / "lazy.ome.zarr", data, "tcyx", fmt, levels=2)
    v = open_video(path, chunks=2)
    graph = v.data.__dask_graph__()
    assert len(pickle.dumps(graph)) < 20_000

    from zarr.storage import LocalStore

    keys = []
    plain_get = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        keys.append(key)
        return await plain_get(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    block = sync(v.data.blocks[1])  # frames 2 and 3
    np.testing.assert_array_equal(block, data[2:4].transpose(0, 2, 3, 1))
    chunk_keys = {k for k in keys if not k.endswith(("zarr.json", ".zarray", ".zattrs",
                                                     ".zgroup"))}
    sep = "/"
    expected = {sep.join((["c"] if fmt == "0.5" else []) + [str(t), str(c), "0", "0"])
                for t in (2, 3) for c in (0, 1)}
    assert {k.split("/", 1)[1] for k in chunk_keys} == expected  # s0/<chunk>: its 4 only
    assert all(k.startswith("s0/") for k in chunk_keys)  # nothing of level 1

    # and with every other frame's chunk files destroyed, the chunk still computes
    monkeypatch.undo()
    for rel, full in chunk_files(path).items():
        if first_frame_of(rel, fmt) not in (2, 3):
            with open(full, "wb") as f:
                f.write(b"garbage")
    np.testing.assert_array_equal(sync(open_video(path, chunks=2).data.blocks[1]), block)


# ---------------------------------------------------------------------------------------
# On S3
# ---------------------------------------------------------------------------------------


@pytest.mark.services
@pytest.mark.parametrize("fmt", ["0.4", "0.5"])
def test_an_ome_zarr_on_s3(tmp_path, fmt, monkeypatch):
    from tests.stores._services import s3_bucket, s3_storage_options

    options = s3_storage_options()
    bucket = s3_bucket()
    fsspec = pytest.importorskip("fsspec")
    s3fs = pytest.importorskip("s3fs")
    # how a user points fsspec at an S3 endpoint (or FSSPEC_S3_ENDPOINT_URL/KEY/SECRET)
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(options))
    data = np.random.default_rng(6).integers(0, 65535, (5, 2, 12, 14), dtype=np.uint16)
    local = write(tmp_path / "remote.ome.zarr", data, "tzyx", fmt, levels=2,
                  scale={"t": 0.1, "y": 0.5, "x": 0.5},
                  units={"t": "second", "y": "micrometer", "x": "micrometer"})
    stage = write_bioformats2raw(tmp_path / "stage.zarr", [particles(1), particles(2)],
                                 ["P1", "P2"], fmt)
    fs = s3fs.S3FileSystem(**options)
    fs.put(local, f"{bucket}/remote.ome.zarr", recursive=True)
    fs.put(stage, f"{bucket}/stage.zarr", recursive=True)

    url = f"s3://{bucket}/remote.ome.zarr"
    assert source_for(url) is OmeZarrSource
    v = open_video(url, chunks=2)
    assert v.dims == ("frame", "z", "y", "x") and v.attrs["source"] == url
    np.testing.assert_array_equal(sync(v.data), reference(local))
    assert sizes(v) == pytest.approx({"y": 0.5, "x": 0.5})
    assert v.attrs["fps"] == pytest.approx(10.0)
    np.testing.assert_array_equal(sync(open_video(url, level=1).data),
                                  reference(local, level=1))

    stage_url = f"s3://{bucket}/stage.zarr"
    assert OmeZarrSource.positions_of(stage_url) == ["P1", "P2"]
    np.testing.assert_array_equal(sync(open_video(stage_url, position="P2").data),
                                  particles(2))
    assert OmeZarrSource.stem(stage_url) == "stage"
    with pytest.raises(FileNotFoundError, match="nothing.zarr"):
        open_video(f"s3://{bucket}/nothing.zarr")


def test_a_changed_container_is_a_changed_source(tmp_path):
    # A store of an OME-Zarr refuses to resume once the image's chunks were rewritten
    # (same shape, dtype and frame count: only the files' fingerprint tells them apart).
    import zarr

    from daskloc import StoreMismatchError, batch

    path = write(tmp_path / "img.ome.zarr", particles(0), "tyx")
    store = tmp_path / "f.parquet"
    batch(path, 5, store=store, minmass=20, do_not_return=True)
    opened = open_video(path)
    before = opened.attrs
    batch(path, 5, store=store, minmass=20, do_not_return=True)  # unchanged: resumes
    level0 = next(d for d in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, d)))
    arr = zarr.open_array(os.path.join(path, level0), mode="r+")
    arr[1] = particles(1)[1]
    after = open_video(path).attrs
    assert (after["file_size"], after["file_mtime_ns"]) != (
        before["file_size"], before["file_mtime_ns"])
    with pytest.raises(StoreMismatchError, match="source file_"):
        batch(path, 5, store=store, minmass=20, do_not_return=True)
    # and the dask keys differ: nothing computed from the old data is taken for new
    assert open_video(path).data.name != opened.data.name


def test_cli_level_for_locate_and_pixel_stats(tmp_path):
    # --level picks the resolution level for locate and pixel-stats, as level= does
    # for open_video: what lands in the store is the features of that level.
    import subprocess
    import sys

    import xarray as xr

    from daskloc import locate_stack, read_features, store_info

    data = np.concatenate([particles(s, n_frames=2) for s in (0, 1)])  # (4, 48, 64)
    data = np.repeat(np.repeat(data, 2, axis=1), 2, axis=2)  # (4, 96, 128); level 1: 48 x 64
    path = write(tmp_path / "img.ome.zarr", data, "tyx", levels=2)

    def run(*args):
        return subprocess.run([sys.executable, "-m", "daskloc", *map(str, args)],
                              capture_output=True, text=True, timeout=300)

    store = tmp_path / "l1.parquet"
    done = run("locate", path, "--level", 1, "--diameter", 5, "--minmass", 20, "--out", store)
    assert done.returncode == 0, done.stderr
    assert store_info(store)["source"]["shape"] == [4, 48, 64]
    level1 = reference(path, level=1)
    ref = locate_stack(level1, 5, minmass=20)
    np.testing.assert_array_equal(read_features(store)[["y", "x"]].to_numpy(),
                                  ref[["y", "x"]].to_numpy())
    stats = tmp_path / "l1-stats.zarr"
    done = run("pixel-stats", path, "--level", 1, "--out", stats)
    assert done.returncode == 0, done.stderr
    mean = xr.open_zarr(stats)["mean"]
    assert mean.shape == (48, 64)
    np.testing.assert_allclose(mean.values, level1.mean(axis=0))
    bad = run("locate", path, "--level", 5, "--diameter", 5, "--out", tmp_path / "x.parquet")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "level" in bad.stderr
