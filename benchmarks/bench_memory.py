"""Memory against video length: does ``daskloc.batch`` stay flat on a 4x longer video?

Runs the same ``daskloc.batch`` over a long synthetic video (default 20,000 frames of
512x512 uint8) and a short one (5,000 frames), each in a fresh interpreter with an
embedded local cluster of 2 worker processes (``daskloc.make_client("local",
workers=2)``), writing to a Parquet store in a temporary folder with
``do_not_return=True``. While the batch runs, a thread samples the resident memory
(RSS) of the whole process tree every 0.1 s: the client process (which also runs the
scheduler) plus every process below it (the worker processes). Reported per run: the
peak of the summed RSS, the peak of the largest single worker, the peak of the client
process, and the batch's wall time (cluster start-up not included). The bar: the long
run's peak total within 10 % of the short run's (ratio <= 1.10).

The video is never held whole: it is a dask array whose blocks are made on demand
(``map_blocks`` over a frame-index array). A block's frames are 16 precomputed base
frames (``daskloc.synthetic.make_video``: 150 Brownian Gaussian spots, diameter 9,
read noise 5, made once per worker process) cycled and rolled by a shift that grows
with the frame number, so the spots move from frame to frame; a frame costs a
``numpy.roll`` (~25 us). Before sampling starts every worker locates one frame
(numba caches loaded), so both peaks are steady-state batch memory, not start-up.

    python benchmarks/bench_memory.py [--frames-long 20000] [--frames-short 5000] [--json]
    python benchmarks/bench_memory.py --run N      # one batch of N frames, one JSON line
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

SHAPE = (512, 512)
N_BASE = 16
N_PARTICLES = 150
DIAMETER = 9
PARAMS = dict(minmass=500)
CHUNK_FRAMES = 64
WORKERS = 2
SAMPLE_SECONDS = 0.1
BAR = 1.10


# ----------------------------------------------------------------- the lazy video


@functools.lru_cache(maxsize=4)
def base_frames(shape=SHAPE, n_particles=N_PARTICLES, seed=0):
    """The 16 base frames (uint8), made once per process."""
    from daskloc.synthetic import make_video

    video, _ = make_video(N_BASE, shape, n_particles, DIAMETER, noise=5.0, seed=seed)
    video.setflags(write=False)
    return video


def frames_block(index, shape=SHAPE, n_particles=N_PARTICLES, seed=0):
    """Frames ``index`` (1-D int array) of the synthetic video, shape (n, h, w) uint8.

    Frame ``f`` is base frame ``f % 16`` rolled by ``(7 k mod h, 13 k mod w)`` pixels,
    ``k = f // 16``: periodic, so spots crossing an edge come back on the other side.
    """
    import numpy as np

    bases = base_frames(tuple(shape), n_particles, seed)
    h, w = bases.shape[1:]
    out = np.empty((len(index), h, w), dtype=bases.dtype)
    for i, f in enumerate(np.asarray(index, dtype=np.int64).tolist()):
        k = f // N_BASE
        out[i] = np.roll(bases[f % N_BASE], ((7 * k) % h, (13 * k) % w), axis=(0, 1))
    return out


def lazy_video(n_frames, chunk_frames=CHUNK_FRAMES, shape=SHAPE, n_particles=N_PARTICLES, seed=0):
    """A lazy ``xarray.DataArray`` (frame, y, x) of ``n_frames`` synthetic frames, one dask
    block per ``chunk_frames`` frames, each block made only when a task needs it."""
    import dask.array as da
    import numpy as np
    import xarray as xr

    index = da.arange(n_frames, chunks=chunk_frames, dtype=np.int64)
    h, w = shape
    data = index.map_blocks(
        frames_block, shape=tuple(shape), n_particles=n_particles, seed=seed,
        new_axis=[1, 2], chunks=(index.chunks[0], (h,), (w,)), dtype=np.uint8,
        meta=np.empty((0, 0, 0), dtype=np.uint8),
    )
    return xr.DataArray(
        data, dims=("frame", "y", "x"),
        coords={"frame": np.arange(n_frames, dtype=np.int64)},
        name="synthetic",
        attrs={"source": f"synthetic {n_frames}x{h}x{w} (benchmarks/bench_memory.py)"},
    )


# ----------------------------------------------------------------- sampling memory



# ----------------------------------------------------------------- one run (inner mode)


def _warm_worker():
    """Import the locate kernel and locate one frame (numba's caches loaded)."""
    import daskloc

    daskloc.locate_frame(frames_block([0])[0], DIAMETER, **PARAMS)
    return os.getpid()


def run_one(n_frames):
    """One batch of ``n_frames`` frames on 2 local workers; its figures (dict)."""
    # The worker processes unpickle frames_block by reference to this module.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HERE)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    sys.path.insert(0, str(HERE))
    import bench_memory as mod  # this file as an importable module, not __main__

    import daskloc

    video = mod.lazy_video(n_frames)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        store = Path(tmp) / "features.parquet"
        with daskloc.make_client("local", workers=WORKERS) as client:
            pids = client.run(mod._warm_worker)
            from _rss import TreeSampler  # the shared sampler, beside this file

            sampler = TreeSampler(interval=SAMPLE_SECONDS)
            sampler.start()
            start = time.perf_counter()
            daskloc.batch(video, DIAMETER, store=store, client=client, do_not_return=True,
                          **PARAMS)
            seconds = time.perf_counter() - start
            sampler.stop()
        info = daskloc.store_info(store)
    if info["frames_complete"] != n_frames or not info["complete"]:
        raise AssertionError(f"the store holds {info['frames_complete']} of {n_frames} frames")
    mib = 2.0**20
    return {
        "frames": n_frames,
        "seconds": seconds,
        "fps": n_frames / seconds,
        "features": info["n_features"],
        "peak_total_mib": sampler.peak_total / mib,
        "peak_worker_mib": sampler.peak_worker / mib,
        "peak_client_mib": sampler.peak_client / mib,
        "samples": sampler.samples,
        "workers": len(pids),
    }


def run_subprocess(n_frames):
    """:func:`run_one` in a fresh interpreter; (figures, wall seconds of the process)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--run", str(n_frames)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"--run {n_frames} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-long", type=int, default=20_000)
    parser.add_argument("--frames-short", type=int, default=5_000)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    parser.add_argument("--run", type=int, metavar="N",
                        help="inner mode: one batch of N frames here, print its JSON figures")
    args = parser.parse_args(argv)
    if args.run is not None:
        figures = run_one(args.run)
        print(json.dumps(figures))
        return figures

    start = time.perf_counter()
    short, short_wall = run_subprocess(args.frames_short)
    long, long_wall = run_subprocess(args.frames_long)
    total_s = time.perf_counter() - start
    ratio = long["peak_total_mib"] / short["peak_total_mib"]
    worker_ratio = long["peak_worker_mib"] / short["peak_worker_mib"]
    figures = {
        "short": short,
        "long": long,
        "ratio_total": ratio,
        "ratio_worker": worker_ratio,
        "bar": BAR,
        "passed": ratio <= BAR,
        "wall_s": total_s,
    }
    if args.json:
        print(json.dumps(figures))
        return figures
    h, w = SHAPE
    print(f"daskloc.batch of a lazy synthetic {h}x{w} uint8 video ({N_PARTICLES} spots/frame, "
          f"diameter {DIAMETER}, {CHUNK_FRAMES}-frame chunks) -> Parquet, {WORKERS} local "
          f"workers, one fresh process per run; RSS sampled every {SAMPLE_SECONDS} s\n")
    header = (f"{'run':<6} {'frames':>7} {'features':>10} {'batch s':>8} {'frames/s':>9} "
              f"{'peak total MiB':>14} {'peak worker MiB':>15} {'peak client MiB':>15}")
    print(header)
    print("-" * len(header))
    for name, r in (("short", short), ("long", long)):
        print(f"{name:<6} {r['frames']:>7} {r['features']:>10} {r['seconds']:8.1f} "
              f"{r['fps']:9.1f} {r['peak_total_mib']:14.1f} {r['peak_worker_mib']:15.1f} "
              f"{r['peak_client_mib']:15.1f}")
    print()
    print(f"peak total  long/short   {ratio:6.3f}  (bar <= {BAR:.2f}: "
          f"{'pass' if ratio <= BAR else 'FAIL'})")
    print(f"peak worker long/short   {worker_ratio:6.3f}")
    print(f"wall time {total_s:.0f} s "
          f"(processes: short {short_wall:.0f} s, long {long_wall:.0f} s)")
    return figures


if __name__ == "__main__":
    main()
