"""Throughput of daskloc batch on the real movie: 1 vs 2 local workers, and 4 videos
in one job vs the same 4 one after another.

Locates ../shared/data/bulk-water.mov (channel 0, diameter=11, minmass=20, invert=True)
into Parquet stores in a temporary folder. Cluster start-up is not timed; each figure
is frames located per second of wall time.

    python benchmarks/bench_scale.py [--copies 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bulk-water.mov"
PARAMS = dict(minmass=20, invert=True)


def timed_batch(videos, store, client):
    import daskloc

    start = time.perf_counter()
    daskloc.batch(videos, 11, store=store, client=client, do_not_return=True, **PARAMS)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--movie", type=Path, default=DATA)
    args = parser.parse_args(argv)

    import daskloc

    video = daskloc.open_video(args.movie, channel=0)
    n = video.sizes["frame"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for workers in (1, 2):
            with daskloc.make_client("local", workers=workers) as client:
                timed_batch(video.isel(frame=slice(0, 64)), tmp / f"warm{workers}.parquet", client)
                seconds = timed_batch(video, tmp / f"w{workers}.parquet", client)
                rows.append((f"1 video, {workers} worker(s)", n, seconds))
        with daskloc.make_client("local", workers=2) as client:
            movies = [str(args.movie)] * args.copies
            videos = [daskloc.open_video(m, channel=0) for m in movies]
            together = timed_batch(videos, tmp / "together.parquet", client)
            apart = sum(timed_batch(v, tmp / f"apart{i}.parquet", client)
                        for i, v in enumerate(videos))
            rows.append((f"{args.copies} videos in one job, 2 workers", n * args.copies, together))
            rows.append((f"{args.copies} videos one after another, 2 workers", n * args.copies,
                         apart))
    print(f"{'case':45s} {'frames':>7s} {'seconds':>8s} {'frames/s':>9s}")
    for name, frames, seconds in rows:
        print(f"{name:45s} {frames:7d} {seconds:8.2f} {frames / seconds:9.1f}")
    print(f"speed-up 2 vs 1 worker: {rows[0][2] / rows[1][2]:.2f}x; "
          f"one job vs one after another: {rows[3][2] / rows[2][2]:.2f}x")


if __name__ == "__main__":
    main()
