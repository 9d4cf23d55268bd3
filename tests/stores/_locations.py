"""Where the tests put a store of each backend daskloc ships (one factory per backend).

The conformance suite (:class:`daskloc.testing.stores.StoreTests`, run by each backend's
test module through :class:`tests.stores._suite.DasklocStoreTests`) and the hostile
catalogue (``tests/test_hostile.py``, through the ``location`` fixture here) take their
locations from :data:`LOCATIONS`.
"""

from __future__ import annotations

import pytest

from daskloc.testing.stores import StoreLocation
from tests.stores import _services

Location = StoreLocation  # the name the tests used before the suite moved to the package


def _s3(suffix):
    def make(tmp_path, name):
        url = f"s3://{_services.s3_bucket()}/{name}.{suffix}"
        return {"url": url, "kwargs": {"storage_options": _services.s3_storage_options()}}
    return make


#: ``{backend label: (tmp_path, name) -> {"url": ..., "kwargs": ...}}``.
LOCATIONS = {
    "parquet": lambda tmp_path, name: {"url": str(tmp_path / f"{name}.parquet")},
    "zarr": lambda tmp_path, name: {"url": str(tmp_path / f"{name}.zarr")},
    "hdf5": lambda tmp_path, name: {"url": str(tmp_path / f"{name}.h5")},
    "sqlite": lambda tmp_path, name: {"url": f"sqlite:///{tmp_path / name}.db"},
    "postgresql": lambda tmp_path, name: {
        "url": _services.postgres_url(), "kwargs": {"table": _services.unique_table(name)}},
    "mariadb": lambda tmp_path, name: {
        "url": _services.mysql_url(), "kwargs": {"table": _services.unique_table(name)}},
    "parquet-s3": _s3("parquet"),
    "zarr-s3": _s3("zarr"),
}
BACKENDS = list(LOCATIONS)
#: Backends on servers other tests share: what a test wrote there is removed after it.
SHARED = {"postgresql", "mariadb"}


def make_location(backend, tmp_path, name="features"):
    """A :class:`~daskloc.testing.stores.StoreLocation` of ``backend`` (no store yet)."""
    spec = LOCATIONS[backend](tmp_path, name)
    return StoreLocation(backend, spec["url"], spec.get("kwargs", {}))


def cleanup(location):
    """Clear what a test left on a shared server."""
    if location.backend in SHARED:
        st = location.open()
        st.clear()
        st.close()


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    """A location of each backend in turn (parametrised; ``indirect=True`` picks some)."""
    loc = make_location(request.param, tmp_path)
    yield loc
    cleanup(loc)
