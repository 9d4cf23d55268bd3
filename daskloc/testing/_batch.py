"""Videos for tests of whole jobs, and :func:`daskloc.batch` run in a separate process
(to kill it, or to read beside it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import dask.array as da
import numpy as np
import xarray as xr

__all__ = ["as_video", "kill_when", "start_batch_process", "start_link_process", "watch_run"]

_BATCH_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, dask.array as da, xarray as xr
    from daskloc.pipeline import batch

    npy, store, delay, chunks, params = sys.argv[1:6]
    store_kwargs = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
    hold = int(sys.argv[7]) if len(sys.argv) > 7 else None
    arr = np.load(npy)
    delay = float(delay)

    def slow(block, block_info=None):
        time.sleep(delay)
        if hold is not None and block_info[None]["chunk-location"][0] >= hold:
            time.sleep(600)  # held until the test kills the process
        return block

    data = da.from_array(arr, chunks=(int(chunks),) + (-1,) * (arr.ndim - 1)).map_blocks(
        slow, dtype=arr.dtype, meta=np.empty((0,) * arr.ndim, arr.dtype))
    dims = ("frame", "z", "y", "x") if arr.ndim == 4 else ("frame", "y", "x")
    video = xr.DataArray(data, dims=dims,
                         coords={"frame": np.arange(len(arr), dtype=np.int64)})
    params = json.loads(params)
    batch(video, params.pop("diameter"), store=store, do_not_return=True, **store_kwargs, **params)
    """
)


def start_batch_process(tmp_path, arr, store, *, delay, chunks, diameter, params,
                        store_kwargs=None, hold=None):
    """Start ``batch`` on ``arr`` in a new Python process; each chunk read sleeps ``delay`` s.

    Parameters
    ----------
    tmp_path : str or os.PathLike
        A folder for the video (``.npy``) and the script.
    arr : numpy.ndarray, shape (n, y, x) or (n, z, y, x)
        The video (2-D frames or 3-D volumes); frames are numbered from 0.
    store : str or os.PathLike
        Where ``batch`` writes.
    delay : float
        Seconds each chunk's read sleeps (so another process can act meanwhile).
    chunks : int
        Frames per chunk.
    diameter : int or list of int
    params : dict
        Other locate parameters (JSON-able; per-axis values as lists).
    store_kwargs : dict, optional
        JSON-able keywords of the store (e.g. ``table``, ``storage_options``).
    hold : int, optional
        Chunks from this index on are held (their read sleeps 10 minutes): the job
        stores at most ``hold`` chunks however slowly a test polls it, so a test that
        kills it mid-job does not race it to the end.

    Returns
    -------
    subprocess.Popen
        With ``stdout`` and ``stderr`` piped.
    """
    npy = os.path.join(tmp_path, "video.npy")
    np.save(npy, arr)
    script = os.path.join(tmp_path, "run_batch.py")
    with open(script, "w") as f:
        f.write(_BATCH_SCRIPT)
    p = dict(params, diameter=diameter)
    return subprocess.Popen(
        [sys.executable, script, npy, os.fspath(store), str(delay), str(chunks), json.dumps(p),
         json.dumps(store_kwargs or {}), *([] if hold is None else [str(int(hold))])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def as_video(arr, chunks=4, first_frame=0, attrs=None):
    """Wrap an array (or an array-like with shape, dtype and slicing) as a video DataArray.

    Parameters
    ----------
    arr : numpy.ndarray or array-like, shape (n, y, x) or (n, z, y, x)
    chunks : int
        Frames per dask chunk.
    first_frame : int
        Absolute number of the first frame (the ``frame`` coordinate counts from it).
    attrs : dict, optional

    Returns
    -------
    xarray.DataArray
        dims ``("frame", "y", "x")`` (``("frame", "z", "y", "x")`` for a 4-D array),
        dask-backed, chunked along frame only.
    """
    n, ndim = arr.shape[0], len(arr.shape)
    data = da.from_array(arr, chunks=(chunks,) + (-1,) * (ndim - 1),
                         meta=np.empty((0,) * ndim, arr.dtype))
    return xr.DataArray(
        data,
        dims=("frame", "z", "y", "x") if ndim == 4 else ("frame", "y", "x"),
        coords={"frame": np.arange(first_frame, first_frame + n, dtype=np.int64)},
        attrs=dict(attrs or {}),
    )


_LINK_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import importlib
    api = importlib.import_module("daskloc.link._api")  # daskloc.link is the function

    store, delay, kwargs = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
    link_task = api.link_task

    def slow(*args):
        time.sleep(delay)
        return link_task(*args)

    api.link_task = slow  # each segment's link takes delay seconds longer
    api.link(store, client="local-threads", **kwargs)
    """
)


def start_link_process(tmp_path, store, *, delay, link_kwargs):
    """Start :func:`daskloc.link` on ``store`` in a new Python process (in that process,
    one segment after the other); each segment's link sleeps ``delay`` s first.

    Parameters
    ----------
    tmp_path : str or os.PathLike
        A folder for the script.
    store : str
    delay : float
    link_kwargs : dict
        JSON-able keywords of :func:`daskloc.link` (``search_range`` included).

    Returns
    -------
    subprocess.Popen
        With ``stdout`` and ``stderr`` piped.
    """
    script = os.path.join(tmp_path, "run_link.py")
    with open(script, "w") as f:
        f.write(_LINK_SCRIPT)
    return subprocess.Popen(
        [sys.executable, script, os.fspath(store), str(delay), json.dumps(link_kwargs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_when(proc, predicate, timeout=120.0, interval=0.05):
    """SIGKILL a batch process as soon as ``predicate()`` holds (a writer mid-job).

    Parameters
    ----------
    proc : subprocess.Popen
        From :func:`start_batch_process`.
    predicate : callable
        Polled every ``interval`` seconds; an exception counts as False (the store is
        not created yet, or busy).
    timeout : float
        Seconds to wait, in all.

    Raises
    ------
    AssertionError
        The process ended before the predicate held (with its stderr), or it did not
        hold within ``timeout``.
    """
    import signal
    import time

    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if predicate():
                    break
            except Exception:  # noqa: BLE001 - not created yet, or busy
                pass
            time.sleep(interval)
        assert proc.poll() is None, proc.communicate()[1].decode()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def watch_run(proc, observe, timeout=120.0, interval=0.05):
    """Call ``observe()`` again and again while a batch process runs, then wait for it.

    The loop of every test that reads a store while another process writes it.

    Parameters
    ----------
    proc : subprocess.Popen
        From :func:`start_batch_process` (or any process writing the store).
    observe : callable
        Called every ``interval`` seconds while ``proc`` runs. It asserts what a reader
        must see and returns a label of what it saw (e.g. ``"seen"``, ``"refused"``), or
        None when there was nothing to look at yet; its exceptions fail the test.
    timeout : float
        Seconds to watch, in all (the process is killed after that).

    Returns
    -------
    collections.Counter
        How many times ``observe`` returned each label.

    Raises
    ------
    AssertionError
        The process ended with a non-zero exit status (its stderr is the message).
    """
    import collections
    import time

    counts = collections.Counter()
    try:
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            label = observe()
            if label is not None:
                counts[label] += 1
            time.sleep(interval)
        _, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err.decode()
    return counts
