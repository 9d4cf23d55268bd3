"""Small helpers shared by the readers, the stores, the pipeline and the CLI, defined once.

Imports nothing of daskloc (the stores and the video readers use it too).
"""

from __future__ import annotations

import os
import re

__all__ = ["has_glob_chars", "is_glob", "natural_key"]


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
