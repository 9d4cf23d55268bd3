"""The test markers (registered in pyproject.toml) and the check that keeps them true.

- ``services``: needs a server or tool that ``.ci/run`` installs and starts (PostgreSQL,
  MariaDB, the S3 server, SLURM, Octave); skipped without it unless
  ``DASKLOC_REQUIRE_SERVICES=1``.
- ``data``: needs the recordings in ``../shared/data``; skipped without them unless
  ``DASKLOC_REQUIRE_DATA=1``.
- ``slow``: takes more than about 10 s on two cores.

``make test-fast`` runs ``-m "not slow and not services"``. A test parametrised with a
backend on a server (a parameter value in :data:`SERVICE_BACKENDS`) is marked ``services``
by ``tests/conftest.py``; every other test carries its markers itself (a decorator or the
module's ``pytestmark``). The helpers that reach a service or the data
(``tests._data.data_dir``/``data_path``, ``tests.stores._services``, ``require_slurm``,
``octave``) call :func:`require_marker`, which fails a test that lacks the marker, so a
marker cannot silently go missing and ``-m "not ..."`` selects what it says.
"""

from __future__ import annotations

import pytest

#: Backend parameter values that need a server (PostgreSQL, MariaDB, the S3 server).
SERVICE_BACKENDS = frozenset({"postgresql", "mariadb", "parquet-s3", "zarr-s3"})

#: The test being set up or run (set by tests/conftest.py); None outside tests.
current_item = None


def needs_service(value):
    """Whether a parameter value names a backend on a server (also inside a tuple)."""
    if isinstance(value, str):
        return value in SERVICE_BACKENDS
    if isinstance(value, (tuple, list)):
        return any(needs_service(v) for v in value)
    return False


def require_marker(name, what):
    """Fail the current test unless it is marked ``name`` (it needs ``what``)."""
    item = current_item
    if item is not None and item.get_closest_marker(name) is None:
        pytest.fail(f"{item.nodeid} needs {what} but is not marked {name!r}: add "
                    f"@pytest.mark.{name} (or the module's pytestmark) so that "
                    f"-m 'not {name}' leaves it out", pytrace=False)
