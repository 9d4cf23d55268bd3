"""Latency of following a recording: from a frame written to its features in the store.

A writer process (``python -m daskloc.testing.acquire``) writes PNG frames into a folder
at ``--fps`` (default 20), each file in two halves 30 % of a frame period apart, and
logs when each frame is complete. ``daskloc.batch(folder, ..., follow=True)`` runs on a
local cluster of 2 workers started beforehand (warmed), at the default chunking for
followed sources (16 frames), while this process polls the store every 50 ms and notes
when each chunk's frames first appear (``read_features``' chunks, via
``daskloc.job_progress``). Latency of frame N = the time its chunk appears minus the
time frame N was complete. Bar (issue 16): max <= chunk duration (16 / fps) + 2 s.

    python benchmarks/bench_follow.py [--frames 400] [--fps 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import daskloc
    from daskloc.cluster import make_client
    from daskloc.stores import open_store
    from daskloc.video._follow import FOLLOW_CHUNK_FRAMES

    tmp = tempfile.mkdtemp(prefix="bench-follow-")
    folder, store, log = (os.path.join(tmp, n) for n in ("rec", "f.parquet", "writer.log"))
    with make_client("local", workers=2) as client:
        warm = os.path.join(tmp, "warm")
        subprocess.run([sys.executable, "-m", "daskloc.testing.acquire", warm, "--frames", "20",
                        "--fps", "1000", "--tear", "0"], check=True)
        daskloc.batch(warm, 9, store=os.path.join(tmp, "warm.parquet"), client=client,
                      minmass=100, do_not_return=True)
        appeared = {}
        stop = threading.Event()

        def poll():
            while not stop.is_set():
                try:
                    st = open_store(store, "r")
                    meta = st.metadata()
                    if meta is not None:
                        now = time.time()
                        for a, b in st.chunk_report(meta)["valid"]:
                            for f in range(a, b):
                                appeared.setdefault(f, now)
                except (FileNotFoundError, ValueError, OSError):
                    pass
                time.sleep(0.05)

        os.makedirs(folder)
        writer = subprocess.Popen([sys.executable, "-m", "daskloc.testing.acquire", folder,
                                   "--frames", str(args.frames), "--fps", str(args.fps),
                                   "--log", log])
        watcher = threading.Thread(target=poll, daemon=True)
        watcher.start()
        daskloc.batch(folder, 9, store=store, follow=True, idle=3, client=client,
                      minmass=100, do_not_return=True)
        writer.wait()
        time.sleep(0.2)
        stop.set()
        watcher.join()
    written = {}
    with open(log) as fh:
        for line in fh:
            i, t = line.split()
            written[int(i)] = float(t)
    # the last, shorter chunk waits for the idle end by design: leave it out
    full = (args.frames // FOLLOW_CHUNK_FRAMES) * FOLLOW_CHUNK_FRAMES
    lat = np.array([appeared[f] - written[f] for f in range(full)])
    bar = FOLLOW_CHUNK_FRAMES / args.fps + 2.0
    figures = {"frames": args.frames, "fps": args.fps, "chunk_frames": FOLLOW_CHUNK_FRAMES,
               "median_s": float(np.median(lat)), "max_s": float(lat.max()), "bar_s": bar}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"follow latency, {args.frames} PNG frames at {args.fps:g} frames/s, chunks of "
          f"{FOLLOW_CHUNK_FRAMES}: median {figures['median_s']:.2f} s, max "
          f"{figures['max_s']:.2f} s (bar: max <= {bar:.1f} s) "
          + ("PASS" if figures["max_s"] <= bar else "FAIL"))


if __name__ == "__main__":
    main()
