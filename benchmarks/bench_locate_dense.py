"""Time daskloc.locate_frame against trackpy.locate(engine="numba") on large dense frames.

The frames are made here (seeded, the same every run): 2048 x 2048 uint16, a camera
offset of 1000 with Gaussian read noise (sigma 40), and Gaussian spots (sigma 1.4 px,
peak 800-3000 counts) on a jittered lattice of 11 px, 34,596 spots a frame, about
34,000 of which trackpy finds with ``diameter=7, minmass=1000``. Both run interleaved
on the same frames after a warm-up, in one process; printed are the median time per
frame of each, the median of the per-frame ratios, and the accuracy figures of issue
17's bar: trackpy's features with one of daskloc's within 0.01 px, daskloc's features
with none of trackpy's within 0.01 px (extra), and the largest relative difference of
``mass``, ``size`` and ``ecc`` over the matched pairs.

    python benchmarks/bench_locate_dense.py [--frames 3] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np

SHAPE = (2048, 2048)
SPACING = 11.0
PARAMS = dict(diameter=7, minmass=1000)


def dense_frame(seed, shape=SHAPE, sigma=1.4):
    """One frame: spots on a jittered lattice over a noisy camera offset (uint16)."""
    rng = np.random.default_rng(seed)
    image = rng.normal(1000.0, 40.0, shape)
    grid = np.arange(8, shape[0] - 8, SPACING)
    centres = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    centres = centres + rng.uniform(-1.5, 1.5, centres.shape)
    amplitude = rng.uniform(800.0, 3000.0, len(centres))
    yy, xx = np.mgrid[-5:6, -5:6]
    for (y, x), a in zip(centres, amplitude):
        iy, ix = int(y), int(x)
        image[iy - 5 : iy + 6, ix - 5 : ix + 6] += a * np.exp(
            -((yy - (y - iy)) ** 2 + (xx - (x - ix)) ** 2) / (2 * sigma**2))
    return np.clip(image, 0, 65535).astype(np.uint16)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3, help="frames to time (default 3)")
    parser.add_argument("--repeat", type=int, default=3, help="timings per frame and engine")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)

    import trackpy
    from scipy.spatial import cKDTree

    from daskloc.locate import locate_frame

    warnings.filterwarnings("ignore", module="trackpy")
    frames = [dense_frame(seed) for seed in range(args.frames)]
    locate_frame(frames[0], **PARAMS)  # compile, warm caches
    trackpy.locate(frames[0], engine="numba", **PARAMS)

    ours, theirs, ratios = [], [], []
    n_theirs = n_ours = n_matched = n_extra = 0
    worst = {"mass": 0.0, "size": 0.0, "ecc": 0.0}
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
        ours.append(min(t_ours))
        theirs.append(min(t_theirs))
        ratios.append(ours[-1] / theirs[-1])
        g = got[["y", "x"]].to_numpy()
        w = want[["y", "x"]].to_numpy()
        dist, index = cKDTree(g).query(w)
        close = dist <= 0.01
        n_matched += int(close.sum())
        n_theirs += len(w)
        n_ours += len(g)
        back, _ = cKDTree(w).query(g)
        n_extra += int((back > 0.01).sum())
        for column in worst:
            a = got[column].to_numpy()[index[close]]
            b = want[column].to_numpy()[close]
            rel = np.abs(a - b) / np.maximum(np.abs(b), 1e-12)
            worst[column] = max(worst[column], float(np.nanmax(rel)) if len(rel) else 0.0)
    figures = {
        "frames": len(frames),
        "features": n_theirs / len(frames),
        "daskloc_ms": 1e3 * statistics.median(ours),
        "trackpy_ms": 1e3 * statistics.median(theirs),
        "ratio": statistics.median(ratios),
        "matched": n_matched / max(n_theirs, 1),
        "extra": n_extra / max(n_ours, 1),
        "characterisation": max(worst.values()),
    }
    if args.json:
        print(json.dumps(figures))
        return figures["ratio"]
    print(f"frames: {len(frames)} generated, shape {SHAPE}, uint16, "
          f"{figures['features']:.0f} trackpy features a frame")
    print(f"daskloc.locate_frame        median {figures['daskloc_ms']:7.1f} ms/frame")
    print(f"trackpy.locate(numba)       median {figures['trackpy_ms']:7.1f} ms/frame")
    print(f"ratio daskloc/trackpy       median {figures['ratio']:.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    print(f"trackpy features matched within 0.01 px: {n_matched}/{n_theirs} "
          f"({100 * figures['matched']:.3f} %), extra {100 * figures['extra']:.3f} %")
    print("largest relative difference, matched features: "
          + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()))
    return figures["ratio"]


if __name__ == "__main__":
    main()
