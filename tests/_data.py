"""Where the real test data lives, and what to do when it is missing.

The recordings are not in the repository: they sit in ``../shared/data`` beside the
project root (see that folder's README). When it is absent a test that needs it is
skipped with the reason, unless the environment sets ``DASKLOC_REQUIRE_DATA=1`` (CI
does), in which case the test fails.

Usage::

    from tests._data import data_path        # or: from _data import data_path

    def test_something():
        movie = data_path("bulk-water.mov")   # skips (or fails) when absent
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:
    from tests._markers import require_marker
except ImportError:  # tests/ is not a package: pytest puts it on sys.path
    from _markers import require_marker

#: ``<project root>/../shared/data``.
DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _missing(what):
    reason = (
        f"real test data not found: {what} (the shared data folder belongs at "
        "../shared/data from the project root)"
    )
    if os.environ.get("DASKLOC_REQUIRE_DATA") == "1":
        pytest.fail(reason + "; DASKLOC_REQUIRE_DATA=1 makes this an error", pytrace=False)
    pytest.skip(reason)


def data_dir() -> Path:
    """The shared data folder; skip (or fail under ``DASKLOC_REQUIRE_DATA=1``) if absent.

    The calling test must be marked ``data`` (tests/_markers.py).
    """
    require_marker("data", f"the real test data in {DATA_DIR}")
    if not DATA_DIR.is_dir():
        _missing(str(DATA_DIR))
    return DATA_DIR


def data_path(name) -> Path:
    """Path of ``name`` inside the shared data folder (a file or a folder).

    Skips the calling test when it is absent, or fails it when the environment sets
    ``DASKLOC_REQUIRE_DATA=1``.
    """
    path = data_dir() / name
    if not path.exists():
        _missing(str(path))
    return path
