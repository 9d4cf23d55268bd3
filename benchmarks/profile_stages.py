"""Where the 2-D kernel's time goes: a stage timer around ``daskloc.locate_frame``.

Wraps each stage the 2-D kernel calls (``daskloc.locate._locate``'s names: the band
pass, the integer scaling, the maxima, refinement, the close-pair drop, the background
noise, ``ep``) with a timer, runs ``locate_frame`` on frames of the bulk-water movie
(diameter 11, minmass 20, invert), and prints milliseconds per frame and the share of
the total per stage; what no stage accounts for is the Python around them (parameters,
the table). A profile, not a benchmark: the timers add a few microseconds per call.

    python benchmarks/profile_stages.py [--frames 60] [--repeat 2]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import time
import warnings
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bulk-water.mov"
PARAMS = dict(diameter=11, minmass=20, invert=True)
STAGES = ("invert", "_bandpass_peak", "scale_to_integer", "local_maxima", "refine",
          "close_to_drop", "background_noise", "static_error")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--movie", type=Path, default=DATA)
    args = parser.parse_args(argv)

    from daskloc import open_video
    from daskloc.locate import locate_frame

    warnings.filterwarnings("ignore", category=UserWarning)
    kernel = importlib.import_module("daskloc.locate._locate")
    frames = open_video(args.movie, channel=0, frames=slice(0, args.frames)).values
    for f in frames[:2]:
        locate_frame(f, **PARAMS)  # compiled, caches warm
    spent = collections.defaultdict(float)

    def timed(name, fn):
        def run(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
        return run

    for name in STAGES:
        setattr(kernel, name, timed(name, getattr(kernel, name)))
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for f in frames:
            locate_frame(f, **PARAMS)
    total = time.perf_counter() - t0
    n = args.repeat * len(frames)
    print(f"locate_frame on {len(frames)} frames {frames.shape[1:]} {frames.dtype}, "
          f"{args.repeat} times: {1e3 * total / n:.3f} ms a frame")
    for name, s in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {name:18s} {1e3 * s / n:7.3f} ms  {100 * s / total:4.0f} %")
    rest = total - sum(spent.values())
    print(f"  {'(the rest)':18s} {1e3 * rest / n:7.3f} ms  {100 * rest / total:4.0f} %")


if __name__ == "__main__":
    main()
