"""Chunk buffers whose memory is used again once nothing holds the chunk any more.

A chunk of a large recording is big (16 frames of 2048 x 2048 uint16: 128 MiB). A new
array that size is new memory from the operating system: C's ``malloc`` maps blocks over
32 MiB afresh each time and unmaps them when they are freed, so the first write to each
of its 32,768 pages is a page fault and a page cleared by the kernel. Measured on a
cached 2048 x 2048 uint16 OME-TIFF in one thread, reading 16-page chunks into new
arrays ran at about 1,100 frames/s and into reused memory at about 1,800 (tifffile
reading page by page into one reused 8 MiB array: 2,300-2,800). Readers that fill a
chunk therefore take its array from :func:`chunk_buffer`.

The memory of a chunk buffer is handed out again only when no array refers to it any
more: the array's ``base`` is a small holder object exporting the memory (a
:mod:`ctypes` array over it), every view of the array keeps that holder alive, and the
memory returns to the pool when the holder is collected (:class:`weakref.finalize`).
A chunk kept by dask, by a user or inside another array therefore never changes.

The pool keeps at most :data:`KEEP_BYTES` of free memory (the largest chunks a few
threads read at once), so the process's memory grows by at most that much.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import numpy as np

__all__ = ["KEEP_BYTES", "chunk_buffer", "pooled_bytes"]

#: Free chunk memory kept for later chunks, at most, in bytes (the rest is freed).
KEEP_BYTES = 512 * 2**20
#: Arrays smaller than this are plain ``numpy.empty``: malloc already reuses their memory.
MIN_BYTES = 4 * 2**20

# Reentrant: the cyclic garbage collector may run a finalizer (_give_back) in the
# middle of a locked section of this thread (any allocation can start a collection),
# which must not wait for the lock its own thread holds.
_lock = threading.RLock()
_free: dict[int, list[np.ndarray]] = {}  # size in bytes -> free raw uint8 arrays
_free_bytes = 0


def chunk_buffer(shape, dtype):
    """A new writable C-ordered array for a chunk, on memory used before if possible.

    Parameters
    ----------
    shape : tuple of int
        The array's shape (e.g. ``(frames, y, x)`` in pixels).
    dtype : numpy.dtype or str
        Its dtype (no object dtype).

    Returns
    -------
    numpy.ndarray
        Shape ``shape``, dtype ``dtype``, uninitialised like :func:`numpy.empty`. Its
        memory is nobody else's while the array or any view of it exists.

    Raises
    ------
    TypeError
        ``dtype`` is an object dtype (its memory holds references, not pixels).

    Examples
    --------
    >>> a = chunk_buffer((16, 512, 512), "uint16")
    >>> a.shape, a.dtype.name, a.flags.writeable
    ((16, 512, 512), 'uint16', True)
    """
    dtype = np.dtype(dtype)
    if dtype.hasobject:
        raise TypeError(f"a chunk buffer holds pixels, not Python objects (dtype {dtype})")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    raw = _take(nbytes)
    holder = (ctypes.c_char * nbytes).from_buffer(raw)  # keeps raw alive
    weakref.finalize(holder, _give_back, raw)
    return np.frombuffer(holder, dtype=dtype).reshape(shape)


def pooled_bytes():
    """Bytes of free chunk memory the pool holds now (int); for tests and benchmarks."""
    with _lock:
        return _free_bytes


def _take(nbytes):
    global _free_bytes
    with _lock:
        free = _free.get(nbytes)
        if free:
            _free_bytes -= nbytes
            return free.pop()
    return np.empty(nbytes, dtype=np.uint8)


def _give_back(raw):
    global _free_bytes
    nbytes = raw.nbytes
    with _lock:
        if _free_bytes + nbytes > KEEP_BYTES:
            # make room for the newest size: a job reads chunks of one size at a time
            for size in [s for s in _free if s != nbytes]:
                _free_bytes -= size * len(_free.pop(size))
        if _free_bytes + nbytes <= KEEP_BYTES:
            _free.setdefault(nbytes, []).append(raw)
            _free_bytes += nbytes
