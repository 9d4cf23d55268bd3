"""Shared fixtures: a real local Dask cluster, small synthetic videos, counting readers,
and a helper that runs :func:`daskloc.batch` in a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import dask.array as da
import numpy as np
import pytest
import xarray as xr

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


def as_video(arr, chunks=4, first_frame=0, attrs=None):
    """Wrap an array (or :class:`CountingArray`) as a daskloc video DataArray.

    Parameters
    ----------
    arr : numpy.ndarray or CountingArray, shape (n, y, x)
    chunks : int
        Frames per dask chunk.
    first_frame : int
        Absolute number of the first frame (the ``frame`` coordinate counts from it).
    attrs : dict, optional

    Returns
    -------
    xarray.DataArray
        dims ``("frame", "y", "x")``, dask-backed, chunked along frame only.
    """
    n = arr.shape[0]
    data = da.from_array(arr, chunks=(chunks, -1, -1), meta=np.empty((0, 0, 0), arr.dtype))
    return xr.DataArray(
        data,
        dims=("frame", "y", "x"),
        coords={"frame": np.arange(first_frame, first_frame + n, dtype=np.int64)},
        attrs=dict(attrs or {}),
    )


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
        dashboard_address=":0",
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

_BATCH_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, dask.array as da, xarray as xr
    from daskloc.pipeline import batch

    npy, store, delay, chunks, params = sys.argv[1:6]
    store_kwargs = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    arr = np.load(npy)
    delay = float(delay)

    def slow(block):
        time.sleep(delay)
        return block

    data = da.from_array(arr, chunks=(int(chunks), -1, -1)).map_blocks(
        slow, dtype=arr.dtype, meta=np.empty((0, 0, 0), arr.dtype))
    video = xr.DataArray(data, dims=("frame", "y", "x"),
                         coords={"frame": np.arange(len(arr), dtype=np.int64)})
    params = json.loads(params)
    batch(video, params.pop("diameter"), store=store, do_not_return=True, **store_kwargs, **params)
    """
)


def start_batch_process(tmp_path, arr, store, *, delay, chunks, diameter=DIAMETER, params=None,
                        store_kwargs=None):
    """Start ``batch`` on ``arr`` in a new Python process; each chunk read sleeps ``delay`` s.

    ``store_kwargs`` (JSON-able, e.g. ``table`` and ``storage_options``) go to ``batch``.

    Returns
    -------
    subprocess.Popen
    """
    import json

    npy = os.path.join(tmp_path, "video.npy")
    np.save(npy, arr)
    script = os.path.join(tmp_path, "run_batch.py")
    with open(script, "w") as f:
        f.write(_BATCH_SCRIPT)
    p = dict(PARAMS if params is None else params, diameter=diameter)
    return subprocess.Popen(
        [sys.executable, script, npy, os.fspath(store), str(delay), str(chunks), json.dumps(p),
         json.dumps(store_kwargs or {})],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


# ----------------------------------------------------------------- markers (tests/_markers.py)

def pytest_collection_modifyitems(config, items):
    """A test parametrised with a backend on a server is marked ``services``."""
    from tests._markers import needs_service

    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and any(needs_service(v) for v in callspec.params.values()):
            item.add_marker(pytest.mark.services)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before the test's fixtures are set up: require_marker checks this item's markers.
    from tests import _markers

    _markers.current_item = item


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    from tests import _markers

    _markers.current_item = None
