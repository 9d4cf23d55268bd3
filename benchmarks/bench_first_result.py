"""Time to first result: the wall time of a whole small ``daskloc locate`` command.

What a newcomer waits for: ``daskloc locate bulk-water.mov --frames 0:1`` (one frame)
and ``--frames 0:60``, each a fresh process (imports, video probe, cluster start, the
job, the summary), with warm caches: median of ``--repeat`` runs after one warm-up run.
The first-run figure runs the one-frame command with an empty numba cache
(``NUMBA_CACHE_DIR`` set to a new folder): what the first job after installing costs,
compiling the kernel for the movie's uint8 frames. The next figure runs it again with
``--channel grey`` (float64 frames) on that same cache: the first job with another
dtype compiles that dtype's kernel once; a third run shows it loaded from the cache.
Reference: ``python -c "import daskloc.cli"`` in the same run (the interpreter and
import floor).

    python benchmarks/bench_first_result.py [--repeat R] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench_end_to_end import time_command as wall

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "bulk-water.mov"
ARGS = ["--diameter", "11", "--minmass", "20", "--invert"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--movie", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        def locate(frames, env=None, channel="0"):
            store = os.path.join(tmp, f"f{time.monotonic_ns()}.parquet")
            return wall([sys.executable, "-m", "daskloc", "locate", str(args.movie), *ARGS,
                         "--channel", channel, "--frames", frames, "--out", store], env=env)

        cold_env = dict(os.environ, NUMBA_CACHE_DIR=os.path.join(tmp, "numba-cache"))
        out["first_run_one_frame_s"] = locate("0:1", cold_env)
        out["first_run_grey_one_frame_s"] = locate("0:1", cold_env, channel="grey")
        out["second_run_grey_one_frame_s"] = locate("0:1", cold_env, channel="grey")
        out["import_s"] = statistics.median(
            wall([sys.executable, "-c", "import daskloc.cli"]) for _ in range(args.repeat))
        for name, frames in (("one_frame", "0:1"), ("sixty_frames", "0:60")):
            locate(frames)  # warm-up: caches, page cache
            out[f"{name}_s"] = statistics.median(locate(frames) for _ in range(args.repeat))
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k}: {v:.2f}")
    return out


if __name__ == "__main__":
    main()
