"""Zarr arrays: the ZarrSource reader."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest

from daskloc.testing.readers import ReaderTests
from daskloc.video import VideoError, open_video
from daskloc.video.zarr import ZarrSource
from tests.video._helpers import sync

zarr = pytest.importorskip("zarr")


class TestZarrReader(ReaderTests):
    """The shared reader suite on a Zarr array stored in a ``.zarr`` directory."""

    source_class = ZarrSource
    dtype = np.uint16

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.zarr"
        z = zarr.create_array(str(path), shape=frames.shape, chunks=(2,) + frames.shape[1:],
                              dtype=frames.dtype)
        z[:] = frames
        return str(path)


class TestZarrArrayReader(TestZarrReader):
    """The same, given the ``zarr.Array`` itself."""

    def make_recording(self, tmp_path, frames):
        return zarr.open_array(super().make_recording(tmp_path, frames), mode="r")


def test_zarr_path_and_array(tmp_path):
    stack = np.random.default_rng(0).integers(0, 65535, (9, 6, 7), dtype=np.uint16)
    path = tmp_path / "frames.zarr"
    z = zarr.create_array(str(path), shape=stack.shape, chunks=(2, 6, 7), dtype=stack.dtype)
    z[:] = stack
    z.attrs["fps"] = 12.5
    for source in (str(path), path, z):
        v = open_video(source, chunks=4, frames=[0, 1, 2, 5, 8])
        assert v.dims == ("frame", "y", "x")
        assert v.data.chunks[0] == (4, 1)
        assert v.attrs["fps"] == 12.5
        assert v.attrs["original_shape"] == (9, 6, 7)
        np.testing.assert_array_equal(sync(v.data), stack[[0, 1, 2, 5, 8]])
    assert len(pickle.dumps(open_video(str(path)).data.__dask_graph__())) < 20_000

    group = zarr.open_group(str(tmp_path / "group.zarr"), mode="w")
    group.create_array("frames", shape=(2, 3, 4), dtype="uint8")
    with pytest.raises(VideoError, match="group.*frames"):
        open_video(str(tmp_path / "group.zarr"))


def test_a_2d_zarr_array_is_one_frame(tmp_path):
    # It used to read its first row as the frame and fail with "frame has shape (1, 7)".
    image = np.arange(42, dtype=np.uint8).reshape(6, 7)
    z = zarr.open_array(str(tmp_path / "one.zarr"), mode="w", shape=image.shape,
                        dtype=image.dtype)
    z[...] = image
    v = open_video(z)
    assert v.dims == ("frame", "y", "x") and v.shape == (1, 6, 7)
    np.testing.assert_array_equal(v.data.compute(scheduler="sync")[0], image)


def test_a_rewritten_zarr_or_image_is_a_changed_source(tmp_path):
    # Directory and multi-file sources record the size and newest mtime of their files:
    # a store of one refuses to resume once a chunk or an image was rewritten.
    import imageio.v3 as iio
    import zarr

    from daskloc import StoreMismatchError, batch
    from daskloc.synthetic import make_video

    frames = np.asarray(make_video(n_frames=4, shape=(48, 64), n_particles=5, seed=0)[0],
                        dtype=np.uint8)
    z = tmp_path / "v.zarr"
    zarr.create_array(str(z), data=frames, chunks=(1, 48, 64))
    folder = tmp_path / "pngs"
    folder.mkdir()
    for i, f in enumerate(frames):
        iio.imwrite(folder / f"f{i:03d}.png", f)
    for source, rewrite in (
        (str(z), lambda: zarr.open_array(str(z), mode="r+").__setitem__(2, frames[0])),
        (str(folder), lambda: iio.imwrite(folder / "f002.png", frames[0])),
    ):
        store = tmp_path / (os.path.basename(source) + ".parquet")
        batch(source, 5, store=store, minmass=20, do_not_return=True)
        batch(source, 5, store=store, minmass=20, do_not_return=True)  # resumes
        rewrite()
        with pytest.raises(StoreMismatchError, match="source file_"):
            batch(source, 5, store=store, minmass=20, do_not_return=True)


def test_auto_chunks_begin_and_end_on_storage_chunks(tmp_path):
    # A storage chunk decoded by two tasks costs its decoding twice and its memory in
    # both: auto chunks are whole storage chunks, and probe counts a storage chunk a
    # task decodes beyond its own frames.
    import zarr

    from daskloc import probe

    frames = np.zeros((100, 32, 32), np.uint16)
    z10 = tmp_path / "c10.zarr"
    zarr.create_array(str(z10), data=frames, chunks=(10, 32, 32))
    video = open_video(str(z10))
    assert video.attrs["storage_frames"] == 10
    assert video.data.chunks[0] == (60, 40)  # 64 frames by default: 6 storage chunks
    big = tmp_path / "c100.zarr"
    zarr.create_array(str(big), data=np.zeros((100, 1024, 1024), np.uint16),
                      chunks=(100, 256, 256))
    whole = open_video(str(big))  # 200 MiB storage chunk <= 256 MiB: one task
    assert whole.data.chunks[0] == (100,)
    assert probe(str(big))["memory_per_chunk"]["decode_bytes"] == 0
    huge = tmp_path / "c300.zarr"
    zarr.create_array(str(huge), shape=(300, 1024, 1024), dtype=np.uint16,
                      chunks=(300, 1024, 1024))
    parts = open_video(str(huge))  # 600 MiB storage chunk: split, each decodes it
    assert parts.data.chunks[0] == (60,) * 5  # equal parts of at most 64 frames
    mem = probe(str(huge))["memory_per_chunk"]
    assert mem["decode_bytes"] == 300 * 1024 * 1024 * 2
    assert mem["total_bytes"] > mem["decode_bytes"] + mem["frames_bytes"]
