"""File-system helpers shared by the file-based store backends (Parquet, Zarr)."""

from __future__ import annotations

import os

from daskloc._extras import require


def fsspec_options(url, storage_options):
    """The fsspec options a store opens ``url`` with: the user's ``storage_options``, and
    for S3 ``max_concurrency=1`` unless given. s3fs otherwise sends a HEAD before every
    whole-object GET (to decide on a split download), doubling the requests for the
    small objects stores read."""
    options = dict(storage_options or {})
    if url.split("://", 1)[0].lower() in ("s3", "s3a"):
        require("s3fs")  # the [s3] extra
        options.setdefault("max_concurrency", 1)
    return options


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
