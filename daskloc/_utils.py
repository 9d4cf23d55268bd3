"""Small helpers shared by the readers, the stores, the pipeline and the CLI, defined once.

Imports nothing of daskloc (the stores and the video readers use it too).
"""

from __future__ import annotations

import atexit
import gc
import os
import re

__all__ = ["has_glob_chars", "is_glob", "natural_key", "skip_final_collections"]


def natural_key(path):
    """Sort key of natural order, case-insensitive: ``img2.png`` before ``img10.png``.

    (``tifffile.natural_sorted`` is case-sensitive; image sequences have always been
    sorted without regard to case.)

    >>> sorted(["img10.png", "IMG2.png", "img1.png"], key=natural_key)
    ['img1.png', 'IMG2.png', 'img10.png']
    """
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", str(path))]


def has_glob_chars(text):
    """Whether ``text`` holds a glob wildcard (``*?[``), whether or not a path has that name."""
    return any(ch in text for ch in "*?[")


def is_glob(source):
    """Whether ``source`` is a ``str`` glob pattern (``*?[``) naming no existing path."""
    return (isinstance(source, str) and has_glob_chars(source)
            and not os.path.exists(source))


def skip_final_collections():
    """Let this process exit without the cyclic garbage collections of its last moments.

    Registers :func:`gc.freeze` to run at exit after every ``atexit`` handler registered
    later (handlers run last registered, first run): the clients, files and stores those
    handlers close are closed first, then every object still alive moves to the
    collector's permanent generation, so the collections the interpreter makes while
    tearing its modules down have nothing to scan. Objects are still freed as their
    reference counts fall; only unreachable cycles are left to the operating system,
    which takes the whole process back anyway. Called by the ``daskloc`` command at start
    and by the worker processes daskloc starts, local and SLURM
    (:mod:`daskloc.pipeline._worker`).

    Measured on the five copies of the bulk-water movie
    (``benchmarks/bench_end_to_end.py``): a worker that has located them took 0.6 s
    to exit (the cluster's close waited for it), 0.07 s with this; the command's own
    exit after the job, 0.5 s and about 0.05 s. A process with numba, pandas and
    distributed imported has some 10**6 objects for each of those collections to walk.
    """
    atexit.register(gc.freeze)
