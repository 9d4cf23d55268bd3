"""Chunk buffers: memory is handed out again only once no array refers to it, and a TIFF
chunk task reads its own pages' IFDs, not the IFD chain before them."""

from __future__ import annotations

import gc
import struct

import numpy as np
import pytest
import tifffile

from daskloc.video import _buffers, open_video
from daskloc.video._buffers import MIN_BYTES, chunk_buffer

SHAPE = (4, 1024, 1024)  # 8 MiB of uint16: over MIN_BYTES, so pooled


def address(a):
    return a.__array_interface__["data"][0]


def test_memory_comes_back_only_when_every_view_is_gone():
    gc.collect()
    a = chunk_buffer(SHAPE, np.uint16)
    where = address(a)
    view = a[2:]  # a user keeps a frame of the chunk
    del a
    gc.collect()
    b = chunk_buffer(SHAPE, np.uint16)
    second = address(b)
    assert not np.shares_memory(b, view) and second != where
    view[...] = 7
    b[...] = 1
    assert (view == 7).all()
    del view, b
    gc.collect()
    c = chunk_buffer(SHAPE, np.uint16)  # both blocks are free again: one comes back
    assert address(c) in (where, second)


def test_a_freed_buffer_is_used_again():
    gc.collect()
    a = chunk_buffer(SHAPE, np.uint16)
    where = address(a)
    del a
    gc.collect()
    assert _buffers.pooled_bytes() >= np.prod(SHAPE) * 2
    b = chunk_buffer(SHAPE, np.uint16)
    assert address(b) == where
    assert b.shape == SHAPE and b.dtype == np.uint16 and b.flags.writeable
    assert b.flags.c_contiguous


def test_the_pool_keeps_at_most_keep_bytes(monkeypatch):
    monkeypatch.setattr(_buffers, "KEEP_BYTES", 3 * 8 * 2**20)
    gc.collect()
    blocks = [chunk_buffer(SHAPE, np.uint16) for _ in range(6)]
    del blocks
    gc.collect()
    assert _buffers.pooled_bytes() <= 3 * 8 * 2**20


def test_small_and_object_arrays():
    small = chunk_buffer((2, 8, 8), np.float32)
    assert small.nbytes < MIN_BYTES and small.base is None  # plain numpy.empty
    with pytest.raises(TypeError, match="pixels"):
        chunk_buffer((2, 2048, 2048), object)


def _next_ifd_field(path, page):
    """File offset of the 'next IFD' pointer of ``page`` (BigTIFF) and its value."""
    with tifffile.TiffFile(path) as tf:
        ifd = tf.pages[page].offset
        with open(path, "rb") as f:
            f.seek(ifd)
            (n_tags,) = struct.unpack("<Q", f.read(8))
            field = ifd + 8 + 20 * n_tags
            f.seek(field)
            (value,) = struct.unpack("<Q", f.read(8))
    return field, value


def test_a_tiff_chunk_reads_its_own_ifds_not_the_chain_before_them(tmp_path):
    frames = np.random.default_rng(0).integers(0, 60000, (12, 32, 48), dtype=np.uint16)
    path = tmp_path / "stack.ome.tif"
    tifffile.imwrite(path, frames, bigtiff=True, ome=True, metadata={"axes": "TYX"})
    video = open_video(path, chunks=4)
    # Break the IFD chain after page 1 once the video is open: a task that walked
    # the chain from the first page would stop at page 2 (tifffile: fewer pages).
    field, _ = _next_ifd_field(path, 1)
    with open(path, "r+b") as f:
        f.seek(field)
        f.write(struct.pack("<Q", 0))
    with tifffile.TiffFile(path) as tf:
        assert len(tf.pages) == 2  # the chain really is broken
    np.testing.assert_array_equal(video.data[4:12].compute(), frames[4:12])


def test_a_finalizer_run_inside_a_locked_section_does_not_wait_for_itself():
    # Any allocation can start the cyclic garbage collector, which runs the finalizer
    # of a collected chunk (giving its memory back) in the middle of whatever this
    # thread was doing: also inside the pool's own locked sections.
    import threading

    def locked_then_collected():
        with _buffers._lock:
            box = {"data": chunk_buffer(SHAPE, np.uint16)}
            box["me"] = box  # a reference cycle: only the collector frees it
            del box
            gc.collect()  # the finalizer runs here, the lock held by this thread
            chunk_buffer(SHAPE, np.uint16)

    worker = threading.Thread(target=locked_then_collected, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the pool's lock deadlocked its own thread"
