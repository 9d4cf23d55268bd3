"""Z-stacks over time: open_video gives ("frame", "z", "y", "x") for TIFF files with Z
and T axes (tifffile, OME-TIFF, ImageJ hyperstacks) and for arrays named with dims=."""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr

from daskloc.testing.readers import count_chunk_reads
from daskloc.video import (
    AUTO_CHUNK_BYTES,
    VideoDecodeError,
    VideoError,
    grey_video,
    open_video,
    skip_undecodable,
)
from daskloc.video.tiff import TiffSource
from tests.video._helpers import sync

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

T, Z, Y, X = 5, 4, 10, 12


def stacks(n=T, z=Z, y=Y, x=X, dtype=np.uint16, seed=0):
    """Volumes whose every voxel is random: any mix-up of axes or frames shows."""
    return np.random.default_rng(seed).integers(0, 60_000, (n, z, y, x)).astype(dtype)


def write(kind, path, data):
    """A TZYX file written by tifffile the way each kind of user gets one."""
    if kind == "tifffile":
        tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "TZYX"})
    elif kind == "ome":
        tifffile.imwrite(path, data, photometric="minisblack",
                         metadata={"axes": "TZYX", "PhysicalSizeZ": 2.5,
                                   "PhysicalSizeZUnit": "µm"})
    elif kind == "imagej":
        tifffile.imwrite(path, data, imagej=True,
                         metadata={"axes": "TZYX", "spacing": 2.5, "unit": "micron",
                                   "finterval": 0.25})
    return str(path)


SUFFIX = {"tifffile": ".tif", "ome": ".ome.tif", "imagej": ".tif"}


@pytest.mark.parametrize("kind", ["tifffile", "ome", "imagej"])
def test_tzyx_tiff_is_frames_of_volumes(tmp_path, kind):
    data = stacks()
    path = write(kind, tmp_path / f"v{SUFFIX[kind]}", data)
    v = open_video(path, chunks=2)
    assert v.dims == ("frame", "z", "y", "x")
    assert v.shape == (T, Z, Y, X) and v.dtype == np.uint16
    assert v.data.chunks == ((2, 2, 1), (Z,), (Y,), (X,))  # whole volumes per chunk
    assert v["frame"].values.tolist() == list(range(T))
    assert v.attrs["n_frames"] == T and v.attrs["original_shape"] == (T, Z, Y, X)
    np.testing.assert_array_equal(sync(v.data), data)
    sel = open_video(path, chunks=2, frames=[0, 3, 4])
    assert sel["frame"].values.tolist() == [0, 3, 4]
    np.testing.assert_array_equal(sync(sel.data), data[[0, 3, 4]])
    if kind == "tifffile":
        assert "pixel_size_z" not in v.attrs  # nothing recorded: nothing invented
    else:
        z = v.attrs["pixel_size_z"]
        assert z == 2.5 and isinstance(z, float)
        assert v.attrs["pixel_size_source"].startswith(
            "ImageJ" if kind == "imagej" else "OME-XML Pixels PhysicalSize")
    if kind == "imagej":
        assert v.attrs["fps"] == pytest.approx(4.0)


@pytest.mark.parametrize("kind", ["tifffile", "ome", "imagej"])
def test_zyx_tiff_is_one_frame(tmp_path, kind):
    data = stacks(n=1)
    path = tmp_path / f"one{SUFFIX[kind]}"
    if kind == "imagej":
        tifffile.imwrite(path, data[0], imagej=True, metadata={"axes": "ZYX", "spacing": 0.5})
    else:
        tifffile.imwrite(path, data[0], photometric="minisblack", metadata={"axes": "ZYX"})
    v = open_video(str(path))
    assert v.dims == ("frame", "z", "y", "x") and v.shape == (1, Z, Y, X)
    assert v["frame"].values.tolist() == [0]
    np.testing.assert_array_equal(sync(v.data), data)


def test_plain_imagej_stack_stays_frames(tmp_path):
    # ImageJ calls the images of every plain stack "slices" (tifffile's Z), also for a
    # time series (the real stuck.tif, saved by ImageJ 1.46, is one): not a z-stack.
    data = stacks(n=1)[0]
    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX", "hyperstack": False})
    with tifffile.TiffFile(path) as tf:
        assert tf.series[0].axes == "ZYX" and not tf.imagej_metadata["hyperstack"]
    v = open_video(str(path))
    assert v.dims == ("frame", "y", "x") and v.shape == (Z, Y, X)
    np.testing.assert_array_equal(sync(v.data), data)
    # tifffile labels a 3-D ImageJ stack written without axes CYX: frames, as before
    tifffile.imwrite(tmp_path / "cyx.tif", data, imagej=True)
    assert open_video(str(tmp_path / "cyx.tif")).dims == ("frame", "y", "x")


@pytest.mark.parametrize("kind", ["imagej", "ome", "ome-ztc"])
def test_channel_axis_of_a_hyperstack(tmp_path, kind):
    data = np.random.default_rng(3).integers(0, 60_000, (T, Z, 2, Y, X)).astype(np.uint16)
    path = tmp_path / ("c.tif" if kind == "imagej" else "c.ome.tif")
    if kind == "imagej":
        tifffile.imwrite(path, data, imagej=True, metadata={"axes": "TZCYX"})
    elif kind == "ome":
        tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "TZCYX"})
    else:  # Z before T in the file: the frame axis is not the first
        tifffile.imwrite(path, data.transpose(1, 0, 2, 3, 4), photometric="minisblack",
                         metadata={"axes": "ZTCYX"})
    v = open_video(str(path), chunks=3)
    assert v.dims == ("frame", "z", "y", "x", "channel") and v.shape == (T, Z, Y, X, 2)
    np.testing.assert_array_equal(sync(v.data), data.transpose(0, 1, 3, 4, 2))
    one = open_video(str(path), channel=1, frames=slice(1, 4))
    assert one.dims == ("frame", "z", "y", "x") and one.dtype == np.uint16
    np.testing.assert_array_equal(sync(one.data), data[1:4, :, 1])
    with pytest.raises(ValueError, match="channel 2 does not exist.*2 channels"):
        open_video(str(path), channel=2)
    with pytest.raises(ValueError, match="channel='grey' needs RGB"):
        open_video(str(path), channel="grey")
    with pytest.raises(ValueError, match="'channel' dimension"):
        grey_video(v)


def test_unreadable_tiff_layouts_say_why(tmp_path):
    tifffile.imwrite(tmp_path / "tq.tif", np.zeros((2, 3, 4, 5), np.uint8),
                     photometric="minisblack", metadata={"axes": "TQYX"})
    with pytest.raises(VideoError, match="more than one axis.*dims="):
        open_video(str(tmp_path / "tq.tif"))
    with pytest.raises(ValueError, match="dims= is for arrays.*tiff source.*axes"):
        open_video(str(tmp_path / "tq.tif"), dims=("frame", "z", "y", "x"))


def _damage_page(path, page, seed=0):
    """Random bytes over the middle of one page's (zlib-compressed) data."""
    with tifffile.TiffFile(path) as tf:
        offset = tf.pages[page].dataoffsets[0]
        count = tf.pages[page].databytecounts[0]
    raw = bytearray(Path(path).read_bytes())
    start = offset + count // 4
    raw[start : start + count // 2] = np.random.default_rng(seed).integers(
        0, 256, count // 2, np.uint8).tobytes()
    Path(path).write_bytes(bytes(raw))


@pytest.mark.parametrize("pages_per_frame", [Z, 1])
def test_a_chunk_decodes_only_its_frames_pages(tmp_path, pages_per_frame):
    """A damaged page of frame 3 breaks only the chunk holding frame 3: every other
    chunk decodes only its own frames' pages (and is bit-exact)."""
    data = stacks()
    path = str(tmp_path / "z.ome.tif")
    if pages_per_frame == Z:  # OME-TIFF: one page per (t, z) plane
        tifffile.imwrite(path, data, photometric="minisblack", compression="zlib",
                         metadata={"axes": "TZYX"})
        damaged = 3 * Z + 1  # frame 3, plane 1
    else:  # one page per volume (a volumetric tile): the zarr view of the series
        path = str(tmp_path / "z.tif")
        tifffile.imwrite(path, data, tile=(Z, 16, 16), photometric="minisblack",
                         compression="zlib", metadata={"axes": "TZYX"})
        damaged = 3
    with tifffile.TiffFile(path) as tf:
        assert len(tf.pages) == T * pages_per_frame
    _damage_page(path, damaged)
    with count_chunk_reads() as reads:
        v = open_video(path, chunks=2)
    assert v.dims == ("frame", "z", "y", "x")
    np.testing.assert_array_equal(sync(v.data[0:2]), data[0:2])
    np.testing.assert_array_equal(sync(v.data[4:5]), data[4:5])
    with pytest.raises(VideoDecodeError, match="cannot decode frame 3 .*frames 2..3"):
        sync(v.data[2:4])
    with skip_undecodable() as skipped:
        got = sync(v.data)
    assert skipped == [3]
    np.testing.assert_array_equal(got[[0, 1, 2, 4]], data[[0, 1, 2, 4]])
    assert not got[3].any()
    if pages_per_frame == Z:  # the pages each chunk asked for: exactly its frames'
        spec = reads.requests[0].spec
        for request in reads.requests:
            first, n = request.label(0), request.n
            pages = TiffSource.pages(spec, request.arg)
            assert pages.ravel().tolist() == list(range(first * Z, (first + n) * Z))


def test_auto_chunks_count_the_whole_volume(tmp_path):
    # 32 x 256 x 256 uint16 = 4 MiB a volume: 32 volumes fill the 128 MiB cap
    volume = 32 * 256 * 256 * 2
    assert AUTO_CHUNK_BYTES // volume == 32
    lazy = da.zeros((100, 32, 256, 256), dtype=np.uint16, chunks=(10, 32, 256, 256))
    v = open_video(lazy, dims=("frame", "z", "y", "x"))
    assert v.data.chunks[0] == (32, 32, 32, 4)
    assert v.data.chunks[1:] == ((32,), (256,), (256,))
    f64 = open_video(lazy.astype(np.float64), dims=("frame", "z", "y", "x"))
    assert set(f64.data.chunks[0][:-1]) == {8}  # 16 MiB volumes
    # a file source: the same rule (one compressed TIFF of 40 such volumes)
    path = str(tmp_path / "big.ome.tif")
    with tifffile.TiffWriter(path, ome=True) as tw:
        tw.write(np.zeros((40, 32, 256, 256), np.uint16), photometric="minisblack",
                 compression="zlib", metadata={"axes": "TZYX"})
    big = open_video(path)
    assert big.data.chunks[0] == (32, 8)
    # small volumes: 64 frames, as for 2-D sources
    small = open_video(np.zeros((100, 3, 4, 5), np.uint8), dims=("frame", "z", "y", "x"))
    assert small.data.chunks[0] == (64, 36)


ORDERS = [("frame", "z", "y", "x"), ("z", "frame", "y", "x"), ("frame", "y", "x", "z")]


@pytest.mark.parametrize("dims", ORDERS)
@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr", "zarr-path"])
def test_arrays_named_with_dims(tmp_path, kind, dims):
    data = stacks(dtype=np.int16)
    source_order = [("frame", "z", "y", "x").index(d) for d in dims]
    array = data.transpose(source_order)  # the array as the caller holds it
    if kind == "dask":
        array = da.from_array(array, chunks=2)
    elif kind.startswith("zarr"):
        z = zarr.open_array(str(tmp_path / "s.zarr"), mode="w", shape=array.shape,
                            dtype=array.dtype, chunks=(2, 2, 5, 6))
        z[...] = array
        array = z if kind == "zarr" else str(tmp_path / "s.zarr")
    v = open_video(array, dims=dims, chunks=2, frames=slice(1, None))
    assert v.dims == ("frame", "z", "y", "x") and v.dtype == np.int16
    assert v.shape == (T - 1, Z, Y, X)
    assert v.data.chunks == ((2, 2), (Z,), (Y,), (X,))
    assert v["frame"].values.tolist() == [1, 2, 3, 4]
    np.testing.assert_array_equal(sync(v.data), data[1:])


@pytest.mark.parametrize("kind", ["numpy", "zarr"])
def test_one_stack_without_time_is_one_frame(tmp_path, kind):
    data = stacks(n=1)[0]
    array = data
    if kind == "zarr":
        array = zarr.open_array(str(tmp_path / "one.zarr"), mode="w", shape=data.shape,
                                dtype=data.dtype)
        array[...] = data
    v = open_video(array, dims=("z", "y", "x"))
    assert v.dims == ("frame", "z", "y", "x") and v.shape == (1, Z, Y, X)
    np.testing.assert_array_equal(sync(v.data)[0], data)
    yxz = open_video(data.transpose(1, 2, 0), dims=("y", "x", "z"))  # any order
    np.testing.assert_array_equal(sync(yxz.data)[0], data)


def test_a_channel_axis_named_with_dims(tmp_path):
    # (T, C, Y, X): the case that gave 0 features without a word
    data = np.random.default_rng(5).integers(0, 255, (T, 6, Y, X)).astype(np.uint8)
    v = open_video(data, dims=("frame", "channel", "y", "x"))
    assert v.dims == ("frame", "y", "x", "channel") and v.shape == (T, Y, X, 6)
    green = open_video(data, dims=("frame", "channel", "y", "x"), channel=4)
    assert green.dims == ("frame", "y", "x")
    np.testing.assert_array_equal(sync(green.data), data[:, 4])
    five = np.zeros((2, 3, 2, 4, 5), np.uint8)
    five[:, :, 1] = 7
    zc = open_video(five, dims=("frame", "z", "channel", "y", "x"), channel=1)
    assert zc.dims == ("frame", "z", "y", "x")
    assert (sync(zc.data) == 7).all()


def test_4d_without_dims_is_refused_and_says_how(tmp_path):
    stack = np.zeros((3, 5, 64, 320), dtype=np.uint16)
    message = r"last axis has 320 entries.*dims=\('frame', 'z', 'y', 'x'\)"
    with pytest.raises(VideoError, match=message):
        open_video(stack)
    z = zarr.open_array(str(tmp_path / "t.zarr"), mode="w", shape=stack.shape,
                        dtype=stack.dtype)
    with pytest.raises(VideoError, match=message):
        open_video(z)
    with pytest.raises(VideoError, match=r"cannot guess.*dims=\('frame', 'z', 'y', 'x'\)"):
        open_video(np.zeros((2, 3, 2, 4, 5), np.uint8))
    # 4 entries or fewer: colour, as before
    assert open_video(np.zeros((3, 8, 8, 4), np.uint8)).dims == ("frame", "y", "x", "channel")


@pytest.mark.parametrize("dims, error, match", [
    (("frame", "t", "y", "x"), ValueError, "unknown axis name.*'t'.*time is 'frame'"),
    (("frame", "z", "z", "x"), ValueError, "names an axis twice"),
    (("frame", "z", "y", "c"), ValueError, "unknown axis name"),
    (("frame", "z", "y"), ValueError, "must include 'y' and 'x'"),
    (("frame", "y", "x"), ValueError, "names 3 axes but the array has 4"),
    ("fzyx", TypeError, "tuple of axis names"),
    ((0, 1, 2, 3), TypeError, "tuple of axis names"),
])
def test_bad_dims_are_refused(dims, error, match):
    with pytest.raises(error, match=match):
        open_video(np.zeros((2, 3, 4, 5), np.uint8), dims=dims)


def test_dataarrays_with_a_z_dim(tmp_path):
    data = stacks()
    arr = xr.DataArray(data.transpose(2, 0, 3, 1), dims=("y", "frame", "x", "z"),
                       coords={"frame": [10, 11, 12, 13, 14]})
    v = open_video(arr, chunks=2)
    assert v.dims == ("frame", "z", "y", "x")
    assert v["frame"].values.tolist() == [10, 11, 12, 13, 14]
    np.testing.assert_array_equal(sync(v.data), data)
    again = open_video(v, chunks=3, frames=[11, 14])  # an earlier open_video, re-chunked
    assert again.dims == ("frame", "z", "y", "x")
    np.testing.assert_array_equal(sync(again.data), data[[1, 4]])
    assert grey_video(arr).dims == ("frame", "z", "y", "x")
    with pytest.raises(ValueError, match="names its own dims"):
        open_video(arr, dims=("frame", "z", "y", "x"))
    with pytest.raises(VideoError, match="optionally 'z' and 'channel'"):
        open_video(xr.DataArray(data, dims=("frame", "depth", "y", "x")))
