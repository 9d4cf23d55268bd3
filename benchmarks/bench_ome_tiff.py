"""OME-TIFF: is reading lazy and bounded? Peak memory by file size, read speed vs tifffile.

Writes two OME-TIFFs with tifffile's own writer (``tifffile.TiffWriter(path, ome=True)``,
``axes='TYX'``, physical pixel sizes and time increment in the OME-XML), frame by frame
from a generator (the whole file is never in memory): uint16 frames of 2048 x 2048
(8 MiB each), by default 128 frames (1 GiB, classic TIFF) and 512 frames (4 GiB,
BigTIFF). Each frame is one of 8 base frames (``daskloc.synthetic.make_video``: 400
Brownian Gaussian spots, diameter 7, background 100, peak 1000 above it, read noise 10)
rolled by a shift that grows with the frame number. The files go to a temporary folder
under /tmp, deleted at the end.

1. **Memory.** ``daskloc.batch(path, 7, store=<tmp>/features.parquet, minmass=2000,
   do_not_return=True)`` over each file, as a user calls it: no client, so daskloc's
   default execution (a thread pool of ``dask.config["num_workers"]``, default: CPU
   count, threads in one process). Each run is a fresh interpreter; the parent samples
   the RSS of the child's whole process tree (the child and anything below it) every
   0.05 s and keeps the peak of the sum; the child also reports its own high-water
   mark (``getrusage(RUSAGE_SELF).ru_maxrss``) and its RSS just before ``batch``
   (after imports). Bar: the peak over the large file within 10 % of the peak over
   the small one (ratio <= 1.10).
2. **Read throughput**, on the large file, page cache warm (the file is read once,
   unparsed, before anything is timed; nothing is dropped, so both readers read the
   same cached bytes and the figure is daskloc's overhead over tifffile):
   ``daskloc.open_video(path)`` computed chunk by chunk (``video.data.map_blocks(lambda
   b: b[:, :1, :1].copy())`` with dask's threaded scheduler, 2 threads; open included)
   against tifffile reading every page in order in one thread (``TiffFile(path)``,
   ``page.asarray()`` for each page; open included). Bar: daskloc's frames/s at least
   0.70 of tifffile's (best of the repeats of each; every repeat is reported).

    python benchmarks/bench_ome_tiff.py [--frames-small 128] [--frames-large 512]
                                        [--repeat 2] [--json]
    python benchmarks/bench_ome_tiff.py --run-batch PATH   # inner: one batch, one JSON line
    python benchmarks/bench_ome_tiff.py --run-read PATH    # inner: read timings, one JSON line
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHAPE = (2048, 2048)
DTYPE = "uint16"
N_BASE = 8
N_PARTICLES = 400
DIAMETER = 7
PARAMS = dict(minmass=2000)
PIXEL_UM = 0.108
FRAME_S = 0.01
SAMPLE_SECONDS = 0.05
READ_THREADS = 2
MEMORY_BAR = 1.10
READ_BAR = 0.70
MIB = 2.0**20


# ----------------------------------------------------------------- the files


def base_frames(shape=SHAPE):
    """The 8 base frames (uint16, 400 spots each)."""
    from daskloc.synthetic import make_video

    video, _ = make_video(N_BASE, shape, N_PARTICLES, DIAMETER, brightness=1000, background=100,
                          noise=10.0, dtype=DTYPE, seed=0)
    return video


def frames(bases, n_frames):
    """Frame ``f``: base ``f % 8`` rolled by ``(7 k mod h, 13 k mod w)``, ``k = f // 8``."""
    import numpy as np

    h, w = bases.shape[1:]
    for f in range(n_frames):
        k = f // N_BASE
        yield np.roll(bases[f % N_BASE], ((7 * k) % h, (13 * k) % w), axis=(0, 1))


def write_ome(path, bases, n_frames, bigtiff):
    """Write an OME-TIFF of ``n_frames`` frames, one page at a time; its size in bytes."""
    import tifffile

    h, w = bases.shape[1:]
    metadata = {
        "axes": "TYX",
        "PhysicalSizeX": PIXEL_UM, "PhysicalSizeXUnit": "µm",
        "PhysicalSizeY": PIXEL_UM, "PhysicalSizeYUnit": "µm",
        "TimeIncrement": FRAME_S, "TimeIncrementUnit": "s",
    }
    with tifffile.TiffWriter(path, bigtiff=bigtiff, ome=True) as tw:
        tw.write(frames(bases, n_frames), shape=(n_frames, h, w), dtype=DTYPE,
                 photometric="minisblack", metadata=metadata)
    return os.path.getsize(path)


# ----------------------------------------------------------------- sampling memory


from _rss import TreeSampler  # noqa: E402 - the shared sampler, beside this file


def child(args):
    """Run this file with ``args`` in a fresh interpreter, sampling its tree's RSS;
    (its JSON figures, peak summed RSS in bytes, samples, wall seconds)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid, SAMPLE_SECONDS)
    sampler.start()
    out, err = proc.communicate()
    sampler.stop()
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1]), sampler.peak_total, sampler.samples, wall


# ----------------------------------------------------------------- inner runs


def rss_now():
    import psutil

    return psutil.Process().memory_info().rss


def run_batch(path):
    """One ``daskloc.batch`` over ``path`` (default execution); its figures (dict)."""
    import resource

    import dask

    import daskloc
    import daskloc.pipeline  # noqa: F401 - imported before the baseline RSS is read

    video = daskloc.open_video(path)
    chunks = video.data.chunks[0]
    before = rss_now()
    with tempfile.TemporaryDirectory(prefix="bench-ome-store-", dir=Path(path).parent) as tmp:
        store = Path(tmp) / "features.parquet"
        start = time.perf_counter()
        daskloc.batch(path, DIAMETER, store=store, do_not_return=True, **PARAMS)
        seconds = time.perf_counter() - start
        info = daskloc.store_info(store)
    n = len(video.frame)
    if info["frames_complete"] != n or not info["complete"]:
        raise AssertionError(f"the store holds {info['frames_complete']} of {n} frames")
    self_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    children_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "frames": n,
        "chunks": len(chunks),
        "chunk_frames": int(max(chunks)),
        "threads": int(dask.config.get("num_workers", None) or os.cpu_count()),
        "seconds": seconds,
        "fps": n / seconds,
        "features": info["n_features"],
        "rss_before_mib": before / MIB,
        "ru_maxrss_mib": self_max / MIB,
        "ru_maxrss_children_mib": children_max / MIB,
    }


def warm_page_cache(path, block=64 * 2**20):
    """Read the whole file once, unparsed (its bytes into the page cache); seconds."""
    start = time.perf_counter()
    buf = bytearray(block)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    return time.perf_counter() - start


def read_tifffile(path):
    """tifffile, one thread: every page in order; (frames, seconds)."""
    import tifffile

    start = time.perf_counter()
    n = 0
    with tifffile.TiffFile(path) as tf:
        for page in tf.pages:
            page.asarray()
            n += 1
    return n, time.perf_counter() - start


def read_daskloc(path, threads=READ_THREADS):
    """``open_video`` computed chunk by chunk on ``threads`` threads; (frames, seconds)."""
    import daskloc

    start = time.perf_counter()
    video = daskloc.open_video(path)
    data = video.data
    # a copy, not a view: a view of each chunk would keep every chunk alive to the end
    corner = data.map_blocks(lambda b: b[:, :1, :1].copy(),
                             chunks=(data.chunks[0], (1,), (1,)), dtype=data.dtype)
    out = corner.compute(scheduler="threads", num_workers=threads)
    return len(out), time.perf_counter() - start


def run_read(path, repeat):
    """Warm the page cache, then alternate tifffile and daskloc ``repeat`` times."""
    import daskloc

    # imports, dask's thread pool and the first allocations out of the timings
    daskloc.open_video(path).data[:1].compute(scheduler="threads", num_workers=READ_THREADS)
    warm_s = warm_page_cache(path)
    tiff, dl = [], []
    for _ in range(repeat):
        n_t, s_t = read_tifffile(path)
        n_d, s_d = read_daskloc(path)
        if n_t != n_d:
            raise AssertionError(f"tifffile read {n_t} pages, daskloc {n_d} frames")
        tiff.append(n_t / s_t)
        dl.append(n_d / s_d)
    return {"frames": n_t, "warm_s": warm_s, "tifffile_fps": tiff, "daskloc_fps": dl,
            "threads": READ_THREADS}


# ----------------------------------------------------------------- the benchmark


def measure(n_small, n_large, repeat, keep=False):
    tmp = Path(tempfile.mkdtemp(prefix="bench-ome-tiff-", dir="/tmp"))
    try:
        gen_start = time.perf_counter()
        bases = base_frames()
        files = {}
        for name, n, bigtiff in (("small", n_small, False), ("large", n_large, True)):
            path = tmp / f"{name}.ome.tif"
            start = time.perf_counter()
            size = write_ome(path, bases, n, bigtiff)
            files[name] = {"path": str(path), "frames": n, "bigtiff": bigtiff,
                           "size_mib": size / MIB, "write_s": time.perf_counter() - start}
        del bases
        gen_s = time.perf_counter() - gen_start
        runs = {"small": [], "large": []}
        for _ in range(repeat):  # small, large, small, large: load drifts hit both
            for name in ("small", "large"):
                figures, peak, samples, wall = child(["--run-batch", files[name]["path"]])
                figures.update(peak_tree_mib=peak / MIB, samples=samples, wall_s=wall)
                runs[name].append(figures)
        read, _, _, _ = child(["--run-read", files["large"]["path"], "--repeat", str(repeat)])
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    ratios = [lg["peak_tree_mib"] / sm["peak_tree_mib"]
              for sm, lg in zip(runs["small"], runs["large"], strict=True)]
    worst = ratios.index(max(ratios))  # the pair (runs made one after the other) of the bar
    read_ratio = max(read["daskloc_fps"]) / max(read["tifffile_fps"])
    return {
        "shape": list(SHAPE),
        "dtype": DTYPE,
        "files": {k: {kk: vv for kk, vv in v.items() if kk != "path"} for k, v in files.items()},
        "generate_s": gen_s,
        "small": runs["small"],
        "large": runs["large"],
        "ratio_rss": max(ratios),
        "ratios_rss": ratios,
        "peak_small_mib": runs["small"][worst]["peak_tree_mib"],
        "peak_large_mib": runs["large"][worst]["peak_tree_mib"],
        "read": read,
        "read_ratio": read_ratio,
        "memory_bar": MEMORY_BAR,
        "read_bar": READ_BAR,
        "passed": max(ratios) <= MEMORY_BAR and read_ratio >= READ_BAR,
    }


def report(f):
    h, w = f["shape"]
    fs, fl = f["files"]["small"], f["files"]["large"]
    print(f"OME-TIFF ({h}x{w} {f['dtype']}, TYX, {N_PARTICLES} spots/frame) written by "
          f"tifffile in {f['generate_s']:.0f} s: small {fs['frames']} frames "
          f"{fs['size_mib']:.0f} MiB, large {fl['frames']} frames {fl['size_mib']:.0f} MiB "
          f"(BigTIFF)\n")
    r0 = f["small"][0]
    print(f"memory: daskloc.batch(path, {DIAMETER}, store=parquet, minmass="
          f"{PARAMS['minmass']}, do_not_return=True), no client: {r0['threads']} threads in "
          f"one process, {r0['chunk_frames']}-frame chunks; fresh interpreter per run, RSS of "
          f"its process tree sampled every {SAMPLE_SECONDS} s\n")
    header = (f"{'run':<6} {'frames':>7} {'chunks':>6} {'features':>9} {'batch s':>8} "
              f"{'frames/s':>8} {'RSS before':>10} {'peak tree':>10} {'ru_maxrss':>10} "
              f"{'children':>8}")
    print(header)
    print("-" * len(header))
    for name in ("small", "large"):
        for r in f[name]:
            print(f"{name:<6} {r['frames']:>7} {r['chunks']:>6} {r['features']:>9} "
                  f"{r['seconds']:8.1f} {r['fps']:8.1f} {r['rss_before_mib']:10.0f} "
                  f"{r['peak_tree_mib']:10.0f} {r['ru_maxrss_mib']:10.0f} "
                  f"{r['ru_maxrss_children_mib']:8.0f}")
    print("(MiB)\n")
    ok = f["ratio_rss"] <= MEMORY_BAR
    print(f"peak tree RSS large/small  {', '.join(f'{x:.3f}' for x in f['ratios_rss'])}  "
          f"(worst {f['ratio_rss']:.3f}; bar <= {MEMORY_BAR:.2f}: {'pass' if ok else 'FAIL'})\n")
    rd = f["read"]
    print(f"read, large file ({rd['frames']} frames), page cache warm (file read once "
          f"unparsed first: {rd['warm_s']:.1f} s):")
    print("  tifffile, pages in order, 1 thread  frames/s: "
          + ", ".join(f"{x:.0f}" for x in rd["tifffile_fps"]))
    print(f"  daskloc open_video, chunks, {rd['threads']} threads frames/s: "
          + ", ".join(f"{x:.0f}" for x in rd["daskloc_fps"]))
    ok = f["read_ratio"] >= READ_BAR
    print(f"daskloc/tifffile (best of each)  {f['read_ratio']:.3f}  "
          f"(bar >= {READ_BAR:.2f}: {'pass' if ok else 'FAIL'})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames-small", type=int, default=128, help="frames (8 MiB each)")
    parser.add_argument("--frames-large", type=int, default=512, help="frames (8 MiB each)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each figure")
    parser.add_argument("--keep", action="store_true", help="keep the files (path printed)")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    parser.add_argument("--run-batch", metavar="PATH", help="inner mode: one batch")
    parser.add_argument("--run-read", metavar="PATH", help="inner mode: read timings")
    args = parser.parse_args(argv)
    if args.run_batch:
        print(json.dumps(run_batch(args.run_batch)))
        return None
    if args.run_read:
        print(json.dumps(run_read(args.run_read, args.repeat)))
        return None
    start = time.perf_counter()
    figures = measure(args.frames_small, args.frames_large, args.repeat, args.keep)
    figures["wall_s"] = time.perf_counter() - start
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)
        print(f"wall time {figures['wall_s']:.0f} s")
    return figures


if __name__ == "__main__":
    main()
