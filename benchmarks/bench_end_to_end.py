"""End to end: five copies of the bulk-water movie, daskloc's CLI against trackpy.batch.

Both sides are timed as whole commands in fresh interpreters (imports, cluster or pool
start-up, reading, locating and writing all included):

- daskloc: ``daskloc locate c1.mov ... c5.mov --diameter 11 --minmass 20 --invert
  --channel 0 --workers 2 --out features.parquet`` (one job, one Parquet store);
- trackpy: ``trackpy.batch(frames, 11, minmass=20, invert=True, processes=2,
  output=trackpy.PandasHDFStoreBig(...))`` over each copy in turn, ``frames`` the
  copy opened with ``pims.open`` and channel 0 taken by a ``pims.pipeline``.

Inside a job the decode floor is measured too: frames/s of the same chunked reader
(``daskloc.open_video``) on the same 2 local workers when it only decodes (each chunk
read and dropped), against frames/s of ``daskloc.batch`` on those workers (cluster
start-up not timed in either, and each worker warmed first: a few frames decoded and
one located, so neither side pays a first call's imports or kernel load).

    python benchmarks/bench_end_to_end.py [--copies 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "shared" / "data" / "bulk-water.mov"
#: Issue 17's bars: the whole command's wall time against trackpy.batch's, and the job's
#: frames/s against the decode-only frames/s (run_all reads them from the JSON line).
WALL_BAR = 0.15
DECODE_BAR = 0.5

TRACKPY_SCRIPT = textwrap.dedent(
    """
    import multiprocessing, sys, threading, warnings
    import pims, trackpy

    @pims.pipeline
    def channel0(frame):
        return frame[..., 0]

    class Frames:
        # The frames, each decoded once: trackpy.batch's pool feeder thread iterates
        # them while its loop reads frames[i] again for the frame number. Straight on
        # pims' PyAV reader the two race ("generator already executing", seen here),
        # and serialising them makes each frames[i] seek back and decode again.
        def __init__(self, frames):
            self.frames, self.lock, self.seen = frames, threading.Lock(), {}

        def __len__(self):
            return len(self.frames)

        def __getitem__(self, i):
            with self.lock:
                if i not in self.seen:
                    self.seen[i] = self.frames[i]
                return self.seen[i]

        def __iter__(self):
            return (self[i] for i in range(len(self)))

    if __name__ == "__main__":
        # trackpy.batch's pool forks by default; forking a process in which PyAV has
        # started FFmpeg's threads can deadlock (it did here, on the second copy), so
        # the pool processes are spawned.
        multiprocessing.set_start_method("spawn")
        warnings.filterwarnings("ignore")
        trackpy.quiet()
        out = sys.argv[1]
        for i, movie in enumerate(sys.argv[2:]):
            frames = Frames(channel0(pims.open(movie)))
            with trackpy.PandasHDFStoreBig(f"{out}/copy{i}.h5") as store:
                trackpy.batch(frames, 11, minmass=20, invert=True, processes=2, output=store)
    """
)


def _bin(name):
    """An executable of this interpreter's environment (the CLI of the venv)."""
    return str(Path(sys.executable).with_name(name))


def make_copies(movie, n, folder):
    """``n`` copies of ``movie`` in ``folder`` (hard links when possible), as paths."""
    paths = []
    for i in range(n):
        path = Path(folder) / f"copy{i}{movie.suffix}"
        try:
            os.link(movie, path)
        except OSError:
            path.write_bytes(movie.read_bytes())
        paths.append(str(path))
    return paths


def time_command(cmd, timeout=1800, env=None):
    """Wall seconds of a command; RuntimeError with its stderr if it fails."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{cmd[:3]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def daskloc_command(copies, out, workers=2):
    return [_bin("daskloc"), "locate", *copies, "--diameter", "11", "--minmass", "20",
            "--invert", "--channel", "0", "--workers", str(workers), "--out", str(out)]


def _decode_chunk(block):
    """Frames in a chunk that was read (and is dropped): decoding without locating."""
    return block.shape[0]


def _warm_worker(movie):
    import warnings

    import dask

    import daskloc
    from daskloc.locate import locate_frame

    with dask.config.set(scheduler="synchronous"):  # in this worker, not on the cluster
        frames = daskloc.open_video(movie, channel=0, frames=slice(0, 2)).values
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        locate_frame(frames[0], 11, minmass=20, invert=True)


def in_job_rates(copies, folder, workers=2):
    """(decode-only frames/s, locate frames/s) of the chunked reader on ``workers``
    local workers, cluster start-up excluded."""
    import dask

    import daskloc

    videos = [daskloc.open_video(c, channel=0) for c in copies]
    n_frames = sum(v.sizes["frame"] for v in videos)
    with daskloc.make_client("local", workers=workers) as client:
        # Both sides timed warm: every worker first decodes a few frames (PyAV imported
        # and opened once) and locates one (the kernel loaded from numba's cache,
        # about 0.4 s a process), so the two rates compare steady-state throughput.
        client.run(_warm_worker, str(copies[0]))
        start = time.perf_counter()
        blocks = [b for v in videos for b in v.data.to_delayed(optimize_graph=False).ravel()]
        decoded = sum(dask.compute(*[dask.delayed(_decode_chunk)(b) for b in blocks]))
        decode_s = time.perf_counter() - start
        assert decoded == n_frames, (decoded, n_frames)
        start = time.perf_counter()
        daskloc.batch({f"c{i}": v for i, v in enumerate(videos)}, 11,
                      store=Path(folder) / "in-job.parquet", minmass=20, invert=True,
                      client=client, do_not_return=True)
        locate_s = time.perf_counter() - start
    return n_frames / decode_s, n_frames / locate_s


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5)
    parser.add_argument("--movie", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        copies = make_copies(args.movie, args.copies, tmp)
        # Warm both once (numba's on-disk cache, pims/trackpy imports, the OS file cache)
        # on one copy, so neither side pays one-off compilation in the timed run.
        time_command(daskloc_command(copies[:1], tmp / "warm.parquet"))
        (tmp / "tp-warm").mkdir()
        script = tmp / "trackpy_batch.py"
        script.write_text(TRACKPY_SCRIPT)
        daskloc_s = time_command(daskloc_command(copies, tmp / "features.parquet"))
        (tmp / "tp").mkdir()
        trackpy_s = time_command([sys.executable, str(script), str(tmp / "tp"), *copies])
        decode_fps, locate_fps = in_job_rates(copies, tmp)

    import daskloc
    n_frames = daskloc.open_video(args.movie, channel=0).sizes["frame"] * args.copies
    figures = {
        "frames": n_frames,
        "daskloc_s": daskloc_s,
        "trackpy_s": trackpy_s,
        "wall_ratio": daskloc_s / trackpy_s,
        "decode_fps": decode_fps,
        "locate_fps": locate_fps,
        "decode_fraction": locate_fps / decode_fps,
        "wall_bar": WALL_BAR,
        "decode_bar": DECODE_BAR,
    }
    if args.json:
        print(json.dumps(figures))
        return figures
    print(f"{args.copies} copies, {n_frames} frames, 2 workers / 2 processes")
    print(f"daskloc locate (whole command)     {daskloc_s:8.1f} s  "
          f"{n_frames / daskloc_s:7.1f} frames/s")
    print(f"trackpy.batch  (whole command)     {trackpy_s:8.1f} s  "
          f"{n_frames / trackpy_s:7.1f} frames/s")
    print(f"wall-time ratio daskloc/trackpy    {figures['wall_ratio']:8.3f}  (bar <= {WALL_BAR})")
    print(f"in the job: decode only            {decode_fps:8.1f} frames/s")
    print(f"in the job: locate to Parquet      {locate_fps:8.1f} frames/s")
    print(f"locate / decode-only               {figures['decode_fraction']:8.3f}  "
          f"(bar >= {DECODE_BAR})")
    return figures


if __name__ == "__main__":
    main()
