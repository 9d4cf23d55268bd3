"""Time daskloc.locate_frame against trackpy.locate(engine="numba") on real frames.

Both run interleaved on the same frames of ../shared/data/bulk-water.mov (channel 0,
diameter=11, minmass=20, invert=True), after a warm-up, in one process. Prints the
median time per frame of each and the median of the per-frame ratios.

    python benchmarks/bench_locate.py [--frames N] [--repeat R] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bulk-water.mov"
PARAMS = dict(diameter=11, minmass=20, invert=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60, help="frames to time (default 60)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per frame and engine")
    parser.add_argument("--movie", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)

    import trackpy
    from scipy.spatial import cKDTree

    from daskloc import open_video
    from daskloc.locate import locate_frame

    warnings.filterwarnings("ignore", module="trackpy")
    frames = open_video(args.movie, channel=0, frames=slice(0, args.frames)).values
    # Warm up both (numba compilation, caches).
    for f in frames[:2]:
        locate_frame(f, **PARAMS)
        trackpy.locate(f, engine="numba", **PARAMS)

    ours, theirs, ratios = [], [], []
    n_theirs = n_matched = 0
    for f in frames:
        t_ours, t_theirs = [], []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            got = locate_frame(f, **PARAMS)
            t1 = time.perf_counter()
            want = trackpy.locate(f, engine="numba", **PARAMS)
            t2 = time.perf_counter()
            t_ours.append(t1 - t0)
            t_theirs.append(t2 - t1)
        # accuracy on the same frames: trackpy's features with one of ours within 0.01 px
        if len(want):
            dist, _ = cKDTree(got[["y", "x"]].to_numpy()).query(want[["y", "x"]].to_numpy())
            n_matched += int((dist <= 0.01).sum())
        n_theirs += len(want)
        ours.append(min(t_ours))
        theirs.append(min(t_theirs))
        ratios.append(ours[-1] / theirs[-1])
    figures = {
        "frames": len(frames),
        "daskloc_ms": 1e3 * statistics.median(ours),
        "trackpy_ms": 1e3 * statistics.median(theirs),
        "ratio": statistics.median(ratios),
        "matched": n_matched / max(n_theirs, 1),
    }
    if args.json:
        print(json.dumps(figures))
        return figures["ratio"]
    print(f"frames: {len(frames)} of {args.movie.name}, shape {frames.shape[1:]}, {frames.dtype}")
    print(f"daskloc.locate_frame        median {1e3 * statistics.median(ours):7.2f} ms/frame")
    print(f"trackpy.locate(numba)       median {1e3 * statistics.median(theirs):7.2f} ms/frame")
    print(f"ratio daskloc/trackpy       median {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    print(f"trackpy features matched within 0.01 px: {n_matched}/{n_theirs} "
          f"({100 * figures['matched']:.3f} %)")
    return statistics.median(ratios)


if __name__ == "__main__":
    main()
