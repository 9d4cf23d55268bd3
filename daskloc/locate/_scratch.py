"""Per-thread working arrays of the kernel, reused from frame to frame.

A frame's band-passed image, its scaled copy and the background counts are as large
as the frame (a 2048 x 2048 frame's float64 band pass is 32 MiB). Allocated afresh for
each frame, such arrays come from the operating system each time (glibc serves large
requests with ``mmap``) and every page faults on its first write: measured on a
2048 x 2048 uint16 frame, that cost more than the band pass's arithmetic. The kernel
takes them from here instead: one array per name and thread, reused while the shape
and dtype stay the same. Only the kernel's own intermediates live here; nothing it
returns is one of them.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def scratch(name, shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype``, this thread's for ``name``.

    Parameters
    ----------
    name : str
        Which intermediate (one array per name and thread).
    shape : tuple of int
    dtype : numpy dtype

    Returns
    -------
    numpy.ndarray
        The same array as the last call with this name on this thread when the shape
        and dtype match (its old values still in it), else a new one that replaces it.
        Valid until the next call with the same name on the same thread.
    """
    arrays = getattr(_local, "arrays", None)
    if arrays is None:
        arrays = _local.arrays = {}
    shape = tuple(int(n) for n in shape)
    dtype = np.dtype(dtype)
    array = arrays.get(name)
    if array is None or array.shape != shape or array.dtype != dtype:
        arrays[name] = None  # free the old one before taking the new
        array = arrays[name] = np.empty(shape, dtype)
    return array
