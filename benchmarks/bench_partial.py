"""Partial reads of a large store: is reading 1 % of the frames <= 5 % of the cost of all?

Builds a store of 10 million features (default: 10,000 frames x 1,000 features) without
locating anything: plausible random float64 columns ``y, x, mass, size, ecc, signal,
raw_mass, ep`` plus an int64 ``frame``, sorted by frame, appended through the store
interface chunk by chunk as ``daskloc.batch`` does (``open_store(path, "a")``,
``prepare``, the job's metadata, one ``append_chunk(start, stop, features)`` per chunk of
64 frames in frame order, the final metadata), so the layout on disk is the real one.
The same chunks go to a Parquet store and a Zarr store.

Then, per format, ``daskloc.read_features(path, frames=slice(a, a + n // 100))`` (a 1 %
frame range from the middle) against ``daskloc.read_features(path)`` (everything): the
median of --repeat timings each, every read opening the store afresh. Caches are warm:
each read is done once untimed before it is timed, and the files were just written (the
OS page cache holds them), so the figures are decoding and bookkeeping, not disk.
The bar: 1 % / all <= 0.05 for each format.

    python benchmarks/bench_partial.py [--features 10000000] [--frames 10000] [--repeat 5] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

FORMATS = ("parquet", "zarr")
DIAMETER = 9
PARAMS = dict(minmass=500)
SHAPE = (512, 512)
BAR = 0.05


def make_chunk(start, stop, per_frame, seed):
    """Features of frames ``[start, stop)``: ``per_frame`` rows per frame, sorted by frame."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n = (stop - start) * per_frame
    h, w = SHAPE
    mass = rng.lognormal(np.log(1400.0), 0.2, n)
    return pd.DataFrame({
        "y": rng.uniform(4.0, h - 5.0, n),
        "x": rng.uniform(4.0, w - 5.0, n),
        "mass": mass,
        "size": rng.normal(1.9, 0.1, n),
        "ecc": rng.uniform(0.0, 0.3, n),
        "signal": mass / 28.0 + rng.normal(0.0, 2.0, n),
        "raw_mass": mass * 3.5 + rng.normal(0.0, 50.0, n),
        "ep": rng.gamma(4.0, 0.0125, n),
        "frame": np.repeat(np.arange(start, stop, dtype=np.int64), per_frame),
    })


def job_metadata(backend, n_frames, chunks):
    """The job metadata batch writes for such a job (daskloc.metadata.JobMetadata)."""
    import daskloc
    from daskloc.locate import normalize_params
    from daskloc.metadata import JobMetadata, utc_now
    from daskloc.schema import feature_dtypes
    from daskloc.stores.base import encode_frames

    params = normalize_params(DIAMETER, **PARAMS)
    now = utc_now()
    meta = JobMetadata(
        params=params,
        source={
            "path": "synthetic (benchmarks/bench_partial.py)", "file_size": None,
            "file_mtime_ns": None, "n_frames": n_frames,
            "frames": encode_frames(range(n_frames)), "n_selected": n_frames,
            "shape": [n_frames, *SHAPE], "dtype": "uint8", "channel": None, "fps": None,
            "original_shape": None, "original_dtype": None,
        },
        chunking={"chunk_frames": [b - a for a, b in chunks],
                  "chunks": [[a, b] for a, b in chunks]},
        columns=feature_dtypes(params["characterize"]),
        store={"backend": backend}, daskloc_version=daskloc.__version__,
        created=now, updated=now,
    )
    meta.job = meta.identity
    return meta


def build(paths, n_frames, per_frame, chunk_frames):
    """Write the same chunks to every store; ``{format: write seconds}`` (generation not
    included)."""
    from daskloc.metadata import chunk_id, utc_now
    from daskloc.stores import open_store

    chunks = [(a, min(a + chunk_frames, n_frames)) for a in range(0, n_frames, chunk_frames)]
    stores, metas, seconds = {}, {}, {}
    for fmt, path in paths.items():
        st = open_store(path, "a")
        t0 = time.perf_counter()
        st.prepare()
        metas[fmt] = job_metadata(st.backend, n_frames, chunks)
        st.write_metadata(metas[fmt].to_json())
        seconds[fmt] = time.perf_counter() - t0
        stores[fmt] = st
    for i, (a, b) in enumerate(chunks):
        df = make_chunk(a, b, per_frame, seed=i)
        for fmt, st in stores.items():
            t0 = time.perf_counter()
            st.append_chunk(a, b, df, chunk_id=chunk_id(metas[fmt].identity, a, b))
            seconds[fmt] += time.perf_counter() - t0
    for fmt, st in stores.items():
        t0 = time.perf_counter()
        meta = metas[fmt]
        meta.complete_chunks = [[a, b] for a, b in chunks]
        meta.n_features, meta.finished, meta.updated = n_frames * per_frame, True, utc_now()
        st.write_metadata(meta.to_json())
        st.close()
        seconds[fmt] += time.perf_counter() - t0
    return seconds, len(chunks)


def disk_bytes(path):
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def time_read(path, frames, repeat):
    """Median seconds of ``read_features(path, frames)`` after one untimed read; rows."""
    import daskloc

    rows = len(daskloc.read_features(path, frames))  # warm
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        df = daskloc.read_features(path, frames)
        times.append(time.perf_counter() - t0)
        del df
    return statistics.median(times), rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=10_000_000, help="total features")
    parser.add_argument("--frames", type=int, default=10_000,
                        help="frames (features spread evenly)")
    parser.add_argument("--chunk-frames", type=int, default=64, help="frames per chunk (64)")
    parser.add_argument("--repeat", type=int, default=5, help="timings per read (median)")
    parser.add_argument("--formats", default=",".join(FORMATS),
                        help=f"comma-separated, from {','.join(FORMATS)}")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the stores go (default: a temporary folder, removed)")
    parser.add_argument("--json", action="store_true", help="print one JSON line of figures")
    args = parser.parse_args(argv)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        parser.error(f"unknown formats {unknown}; choose from {list(FORMATS)}")
    n_frames = args.frames
    per_frame = max(1, args.features // n_frames)
    n_features = per_frame * n_frames
    width = max(1, round(n_frames / 100))
    a = n_frames // 2
    part = slice(a, a + width)

    figures = {"features": n_features, "frames": n_frames, "per_frame": per_frame,
               "range": [part.start, part.stop], "repeat": args.repeat, "bar": BAR,
               "formats": {}}
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench-partial-") as tmp:
        paths = {fmt: str(Path(tmp) / f"features.{fmt}") for fmt in formats}
        t0 = time.perf_counter()
        write_s, n_chunks = build(paths, n_frames, per_frame, args.chunk_frames)
        build_s = time.perf_counter() - t0
        if not args.json:
            print(f"{n_features:,} features: {n_frames:,} frames x {per_frame:,}, "
                  f"{n_chunks} chunks of <= {args.chunk_frames} frames, built in "
                  f"{build_s:.1f} s")
            print(f"1 %: frames {part.start}..{part.stop - 1} ({width * per_frame:,} rows); "
                  f"medians of {args.repeat} reads, each opening the store afresh, caches "
                  "warm (one untimed read first, files just written)\n")
            header = (f"{'format':<8} {'write s':>8} {'size MiB':>9} {'read 1% ms':>11} "
                      f"{'read all ms':>12} {'1%/all':>7}  bar <= {BAR}")
            print(header)
            print("-" * len(header))
        for fmt, path in paths.items():
            one, rows_one = time_read(path, part, args.repeat)
            whole, rows_all = time_read(path, None, args.repeat)
            if (rows_one, rows_all) != (width * per_frame, n_features):
                raise AssertionError(f"{fmt}: read {rows_one}/{rows_all} rows, expected "
                                     f"{width * per_frame}/{n_features}")
            ratio = one / whole
            size = disk_bytes(path)
            figures["formats"][fmt] = {
                "write_s": write_s[fmt], "size_mib": size / 2**20, "read_part_s": one,
                "read_all_s": whole, "ratio": ratio, "passed": ratio <= BAR,
            }
            if not args.json:
                print(f"{fmt:<8} {write_s[fmt]:8.1f} {size / 2**20:9.1f} {1e3 * one:11.1f} "
                      f"{1e3 * whole:12.1f} {ratio:7.4f}  {'pass' if ratio <= BAR else 'FAIL'}")
                sys.stdout.flush()
    if args.json:
        print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
