"""Real services for store tests: where to reach them, and what to do when they are absent.

``.ci/services.sh`` starts PostgreSQL, MariaDB and an S3-compatible server (moto) on
loopback and exports their addresses. Without them a test that needs one is skipped
with the reason, unless ``DASKLOC_REQUIRE_SERVICES=1`` (CI sets it): then it fails.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests._markers import require_marker


def _missing(variable, what):
    reason = f"{what} not available: set {variable} (.ci/services.sh starts one and sets it)"
    if os.environ.get("DASKLOC_REQUIRE_SERVICES") == "1":
        pytest.fail(reason + "; DASKLOC_REQUIRE_SERVICES=1 makes this an error", pytrace=False)
    pytest.skip(reason)


def service_env(variable, what):
    """The value of ``variable``; skip (or fail under DASKLOC_REQUIRE_SERVICES=1) if unset.

    The calling test must be marked ``services`` (tests/_markers.py).
    """
    require_marker("services", what)
    value = os.environ.get(variable)
    if not value:
        _missing(variable, what)
    return value


def postgres_url():
    """SQLAlchemy URL of the test PostgreSQL database."""
    return service_env("DASKLOC_TEST_POSTGRES_URL", "PostgreSQL server")


def mysql_url():
    """SQLAlchemy URL of the test MariaDB/MySQL database."""
    return service_env("DASKLOC_TEST_MYSQL_URL", "MariaDB/MySQL server")


def s3_storage_options():
    """fsspec options for the test S3-compatible server."""
    endpoint = service_env("DASKLOC_TEST_S3_ENDPOINT", "S3-compatible server")
    return {
        "endpoint_url": endpoint,
        "key": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "secret": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    }


def s3_bucket():
    """Create a fresh bucket on the test S3 server and return its name."""
    import s3fs

    options = s3_storage_options()
    fs = s3fs.S3FileSystem(key=options["key"], secret=options["secret"],
                           client_kwargs={"endpoint_url": options["endpoint_url"]})
    name = f"daskloc-test-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return name


def unique_table(prefix="t"):
    """A table name no other test uses (shared database servers)."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"
