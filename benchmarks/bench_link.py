"""Linking a store: daskloc.link on 2 workers against trackpy.link, its memory, the whole job.

Three figures (issue 15):

- **speed**: a generated feature store (Parquet; random walks with drift and 2 %
  blinking, see ``daskloc.synthetic.random_walks``; default 4,000 frames x 250
  particles, 10^6 features). trackpy: ``trackpy.link(daskloc.read_features(store), 4,
  memory=3)``, the read included, as a user would. daskloc: ``daskloc.link(store, 4,
  memory=3, client=...)`` on a local cluster of 2 worker processes started beforehand.
  Both warmed first on a small store (imports, numba compilation of trackpy's subnet
  linker in every process). Bar: wall-time ratio <= 0.6. The two results are checked
  equal (particle numbers in birth order).
- **memory**: peak RSS of the whole process tree (the client process and its 2 worker
  processes) of ``daskloc.link`` in a fresh interpreter, on stores of N and 10 N
  features (default 10^6 and 10^7: 10 x the frames). Bar: within 10 %.
- **whole job** on 5 copies of the bulk-water movie (2,400 frames):
  ``daskloc locate c0.mov ... c4.mov --workers 2`` then
  ``daskloc link ...`` (its default: this store is small enough to link in the
  command's own process) as commands, against a script running
  ``trackpy.batch(frames, 11, minmass=20, invert=True, processes=2)`` then
  ``trackpy.link(features, 5, memory=3)`` for each copy (reported).

    python benchmarks/bench_link.py [--frames 4000] [--particles 250] [--scale 10]
                                    [--copies 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DATA = HERE.parents[1] / "shared" / "data" / "bulk-water.mov"
SEARCH_RANGE, MEMORY = 4.0, 3
BAR_SPEED, BAR_MEMORY = 0.6, 1.10

LINK_SCRIPT = textwrap.dedent(
    f"""
    import sys, time
    import daskloc

    if __name__ == "__main__":
        store, workers = sys.argv[1], int(sys.argv[2])
        with daskloc.make_client("local", workers=workers) as client:
            start = time.perf_counter()
            info = daskloc.link(store, {SEARCH_RANGE!r}, memory={MEMORY!r}, client=client)
            print(time.perf_counter() - start, info["n_features"])
    """
)

TRACKPY_JOB = textwrap.dedent(
    """
    import multiprocessing, sys, warnings
    import pims, trackpy

    @pims.pipeline
    def channel0(frame):
        return frame[..., 0]

    if __name__ == "__main__":
        multiprocessing.set_start_method("spawn")
        warnings.filterwarnings("ignore")
        trackpy.quiet()
        for movie in sys.argv[1:]:
            frames = [f for f in channel0(pims.open(movie))]
            features = trackpy.batch(frames, 11, minmass=20, invert=True, processes=2)
            trackpy.link(features, 5, memory=3)
    """
)


def make_store(path, n_frames, n_particles, seed=1):
    """A Parquet feature store of random walks (chunks of 64 frames), as batch writes it."""
    from daskloc.stores import open_store
    from daskloc.synthetic import random_walks
    from daskloc.testing.stores import write_features

    side = int((n_particles * 640) ** 0.5)  # about the density of the bulk-water movie
    df = random_walks(n_frames, n_particles, shape=(side, side), step=1.0,
                      drift=(0.2, 0.1), blink=0.02, seed=seed)
    write_features(open_store(str(path), "a"), df, 64)
    return len(df)


def speed(folder, n_frames, n_particles):
    import numpy as np
    import trackpy

    import daskloc
    from daskloc.testing.stores import birth_numbers

    trackpy.quiet()
    warm, store = folder / "warm.parquet", folder / "speed.parquet"
    make_store(warm, 200, n_particles, seed=2)
    n = make_store(store, n_frames, n_particles)
    trackpy.link(daskloc.read_features(warm), SEARCH_RANGE, memory=MEMORY)  # compile
    start = time.perf_counter()
    ref = trackpy.link(daskloc.read_features(store), SEARCH_RANGE, memory=MEMORY)
    trackpy_s = time.perf_counter() - start
    with daskloc.make_client("local", workers=2) as client:
        daskloc.link(warm, SEARCH_RANGE, memory=MEMORY, client=client, segments=2)
        start = time.perf_counter()
        info = daskloc.link(store, SEARCH_RANGE, memory=MEMORY, client=client)
        daskloc_s = time.perf_counter() - start
    got = daskloc.read_features(store, trajectories=True)
    equal = bool(np.array_equal(got["particle"].to_numpy(), birth_numbers(ref)))
    return {"features": n, "frames": n_frames, "trackpy_s": trackpy_s,
            "daskloc_s": daskloc_s, "ratio": daskloc_s / trackpy_s, "equal": equal,
            "segments": info["segments"], "relinked": info["relinked"]}


def peak_rss(store, folder, workers=2):
    """(peak RSS MiB of the process tree, link seconds) of daskloc.link in a fresh
    interpreter."""
    from _rss import TreeSampler

    script = folder / "link_run.py"
    script.write_text(LINK_SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(store), str(workers)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    out, err = proc.communicate()
    sampler.stop()
    if proc.returncode:
        raise RuntimeError(f"link run failed:\n{err[-2000:]}")
    seconds, _ = out.split()[-2:]  # the last line: seconds and features
    return sampler.peak_total / 2**20, float(seconds)


def memory(folder, n_frames, n_particles, scale):
    small, large = folder / "small.parquet", folder / "large.parquet"
    n_small = make_store(small, n_frames, n_particles, seed=3)
    n_large = make_store(large, n_frames * scale, n_particles, seed=4)
    rss_small, s_small = peak_rss(small, folder)
    rss_large, s_large = peak_rss(large, folder)
    return {"small": {"features": n_small, "peak_mib": rss_small, "link_s": s_small},
            "large": {"features": n_large, "peak_mib": rss_large, "link_s": s_large},
            "ratio": rss_large / rss_small}


def whole_job(folder, movie, copies):
    from bench_end_to_end import _bin, make_copies, time_command

    movies = make_copies(movie, copies, folder)
    out = folder / "movie.parquet"
    daskloc = _bin("daskloc")
    locate = [daskloc, "locate", *movies, "--diameter", "11", "--minmass", "20",
              "--invert", "--channel", "0", "--workers", "2", "--out", str(out)]
    link = [daskloc, "link", str(out), "--search-range", "5", "--memory", "3"]
    warm = locate[:2] + [movies[0]] + locate[2 + len(movies):-1] + [str(folder / "warm.pq")]
    time_command(warm)  # numba's caches
    daskloc_s = time_command(locate) + time_command(link)
    script = folder / "trackpy_job.py"
    script.write_text(TRACKPY_JOB)
    trackpy_s = time_command([sys.executable, str(script), *movies])
    return {"copies": copies, "daskloc_s": daskloc_s, "trackpy_s": trackpy_s,
            "ratio": daskloc_s / trackpy_s}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4000)
    parser.add_argument("--particles", type=int, default=250)
    parser.add_argument("--scale", type=int, default=10)
    parser.add_argument("--movie", type=Path, default=DATA)
    parser.add_argument("--copies", type=int, default=5,
                        help="copies of the movie in the whole job (one store, 5 videos)")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        figures = {"speed": speed(tmp, args.frames, args.particles),
                   "memory": memory(tmp, args.frames, args.particles, args.scale),
                   "whole_job": whole_job(tmp, args.movie, args.copies)}
    if args.json:
        print(json.dumps(figures))
        return figures
    s, m, w = figures["speed"], figures["memory"], figures["whole_job"]
    print(f"speed: {s['features']:,} features, daskloc.link (2 workers) {s['daskloc_s']:.1f} s "
          f"vs trackpy.link {s['trackpy_s']:.1f} s: {s['ratio']:.3f} (bar <= {BAR_SPEED}); "
          f"equal: {s['equal']}")
    print(f"memory: {m['large']['features']:,} vs {m['small']['features']:,} features: peak "
          f"{m['large']['peak_mib']:.0f} vs {m['small']['peak_mib']:.0f} MiB, "
          f"{m['ratio']:.3f} (bar <= {BAR_MEMORY})")
    print(f"whole job, {w['copies']} copies of the movie: daskloc locate + link "
          f"{w['daskloc_s']:.1f} s vs trackpy.batch + link "
          f"{w['trackpy_s']:.1f} s: {w['ratio']:.3f}")
    return figures


if __name__ == "__main__":
    main()
