"""Throughput of daskloc.batch against the chunk size (frames per chunk = per task).

Locates copies of ../shared/data/bulk-water.mov (channel 0, diameter=11, minmass=20,
invert=True) as several videos in one job into a Parquet store, on 2 local workers,
once per chunk size; cluster start-up is not timed (one cluster for the sweep, a
warm-up job first). Prints frames/s per chunk size and where it peaks.

Two forces meet: every chunk of a movie starts decoding at the keyframe before its
first frame (bulk-water.mov has one every 238 frames), so small chunks pay that
pre-roll again and again, plus a task's and a file's fixed costs; big chunks leave
workers idle at the end of a job (fewer tasks than workers can share evenly) and hold
more frames in memory per task.

``auto`` is ``open_video``'s default (movies: whole groups of pictures of at most 256
frames: 238 + 242 frames here).

    python benchmarks/bench_chunks.py [--copies 5] [--sizes 16,32,64,128,256,512,auto] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "bulk-water.mov"


def sweep(movie, copies, sizes, workers=2, repeat=1):
    """{chunk size: frames/s} of ``batch`` over ``copies`` copies of ``movie``."""
    import daskloc

    rates = {}
    with (tempfile.TemporaryDirectory() as tmp,
          daskloc.make_client("local", workers=workers) as client):
        tmp = Path(tmp)
        warm = daskloc.open_video(movie, channel=0, frames=slice(0, 64))
        daskloc.batch(warm, 11, store=tmp / "warm.parquet", minmass=20, invert=True,
                      client=client, do_not_return=True)
        for size in sizes:
            best = None
            for r in range(repeat):
                videos = {f"c{i}": daskloc.open_video(movie, channel=0, chunks=size)
                          for i in range(copies)}
                n = sum(v.sizes["frame"] for v in videos.values())
                start = time.perf_counter()
                daskloc.batch(videos, 11, store=tmp / f"c{size}-{r}.parquet", minmass=20,
                              invert=True, client=client, do_not_return=True)
                seconds = time.perf_counter() - start
                best = seconds if best is None else min(best, seconds)
            rates[size] = n / best
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--sizes", default="16,32,64,128,256,512,auto")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (best kept)")
    parser.add_argument("--movie", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)
    sizes = [s if s == "auto" else int(s) for s in args.sizes.split(",")]
    rates = sweep(args.movie, args.copies, sizes, repeat=args.repeat)
    best = max(rates, key=rates.get)
    if args.json:
        print(json.dumps({"rates": {str(k): v for k, v in rates.items()}, "best": best}))
        return rates
    print(f"{args.copies} copies of {args.movie.name}, 2 workers")
    print(f"{'chunk frames':>12s} {'frames/s':>9s}")
    for size, rate in rates.items():
        mark = "  <- peak" if size == best else ""
        print(f"{size!s:>12} {rate:9.1f}{mark}")
    return rates


if __name__ == "__main__":
    main()
