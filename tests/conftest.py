"""Shared fixtures: a real local Dask cluster, small synthetic videos, counting readers,
and a helper that runs :func:`daskloc.batch` in a separate process."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from daskloc.testing._batch import as_video  # noqa: F401 - the tests import it from here

#: Locate parameters used with :func:`make_spots` videos.
DIAMETER = 9
PARAMS = {"minmass": 100}


def make_spots(n_frames=24, shape=(96, 96), n_particles=10, diameter=DIAMETER, seed=0,
               black=(), noise=8.0, amplitude=160.0):
    """A deterministic uint8 video of Gaussian spots on a noisy background.

    Parameters
    ----------
    n_frames : int
    shape : (int, int)
        Frame height and width, pixels.
    n_particles : int
        Spots per frame, placed at random sub-pixel positions away from the edges.
    diameter : int
        Spot diameter in pixels (sigma = diameter / 5).
    seed : int
    black : iterable of int
        Frame indices left entirely black (zero): no features there.
    noise, amplitude : float
        Background noise level and spot peak height (grey levels).

    Returns
    -------
    numpy.ndarray, shape (n_frames, *shape), uint8
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    sigma = diameter / 5.0
    out = np.empty((n_frames, h, w), dtype=np.uint8)
    margin = diameter
    for f in range(n_frames):
        img = 20.0 + noise * rng.random((h, w))
        for y, x in zip(rng.uniform(margin, h - margin, n_particles),
                        rng.uniform(margin, w - margin, n_particles)):
            img += amplitude * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))
        out[f] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    for f in black:
        out[f] = 0
    return out


class CountingArray:
    """A numpy array wrapper that records every non-empty read (for ``da.from_array``).

    ``reads`` holds the first frame index of each read; ``on_read`` (optional) is called
    with that index before returning the data.
    """

    def __init__(self, arr, on_read=None):
        self.arr = arr
        self.shape = arr.shape
        self.dtype = arr.dtype
        self.ndim = arr.ndim
        self.reads = []
        self.on_read = on_read
        self._lock = threading.Lock()

    def __getstate__(self):  # picklable for worker processes (counts stay per process)
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __getitem__(self, key):
        out = self.arr[key]
        if out.size:
            first = key[0].start if isinstance(key, tuple) and isinstance(key[0], slice) else key
            first = 0 if first is None else int(first)
            with self._lock:
                self.reads.append(first)
            if self.on_read is not None:
                self.on_read(first)
        return out


@pytest.fixture(scope="session")
def spots():
    """24 frames of 96 x 96 spots; frames 8..11 are black (chunk 2 of 4-frame chunks)."""
    return make_spots(black=range(8, 12))


@pytest.fixture(scope="session")
def cluster():
    """A real ``distributed.LocalCluster``: 2 worker processes x 1 thread."""
    import distributed
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    ) as cl:
        yield cl


@pytest.fixture
def client(cluster):
    """A client of :func:`cluster` that is NOT the default client (pass it explicitly)."""
    import distributed

    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


# ----------------------------------------------------------------- batch in another process


def start_batch_process(tmp_path, arr, store, *, delay, chunks, diameter=DIAMETER, params=None,
                        store_kwargs=None, hold=None):
    """Start ``batch`` on ``arr`` in a new Python process; each chunk read sleeps ``delay`` s.

    :func:`daskloc.testing._batch.start_batch_process` with this suite's parameters
    (``DIAMETER``, ``PARAMS``) as defaults.

    Returns
    -------
    subprocess.Popen
    """
    from daskloc.testing._batch import start_batch_process as start

    return start(tmp_path, arr, store, delay=delay, chunks=chunks, diameter=diameter,
                 params=PARAMS if params is None else params, store_kwargs=store_kwargs,
                 hold=hold)


# ----------------------------------------------------------------- markers (tests/_markers.py)

#: Fixtures that hand a test the real recordings of ../shared/data (tests/video/conftest.py).
DATA_FIXTURES = frozenset({"movie", "movie_reference", "pngs"})


def pytest_collection_modifyitems(config, items):
    """A test parametrised with a backend on a server, or of a test class whose
    ``backend`` is on a server, is marked ``services``; a store
    suite's whole-job test on the real movie (DasklocStoreTests.reference_video) is
    marked ``data`` and ``slow``."""
    from tests._markers import needs_service
    from tests.stores._suite import DasklocStoreTests

    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(needs_service(v) for v in callspec.params.values()):
            item.add_marker(pytest.mark.services)
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)
        cls = getattr(item, "cls", None)
        if needs_service(getattr(cls, "backend", None)):  # a suite subclass on a server
            item.add_marker(pytest.mark.services)
        if (cls is not None and issubclass(cls, DasklocStoreTests)
                and "reference_video" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures are set up: require_marker checks this item's markers.
    from tests import _markers

    _markers.current_item = item


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    from tests import _markers

    _markers.current_item = None


def parquet_doc(store):
    """The job-metadata document of a local Parquet store (or table folder), as a dict,
    read with pyarrow alone: the key-value metadata of its ``_daskloc.parquet``."""
    import json
    from pathlib import Path

    import pyarrow.parquet as pq

    return json.loads(pq.read_schema(Path(store) / "_daskloc.parquet").metadata[b"daskloc"])


def write_parquet_doc(store, doc):
    """Replace a local Parquet store's document as a user editing it would, with pyarrow
    alone (the file keeps its schema; only the document changes)."""
    import json
    from pathlib import Path

    import pyarrow.parquet as pq

    path = Path(store) / "_daskloc.parquet"
    schema = pq.read_schema(path)
    pq.write_table(schema.with_metadata({b"daskloc": json.dumps(doc).encode()}).empty_table(),
                   path)
