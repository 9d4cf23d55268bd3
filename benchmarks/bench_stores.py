"""Compare the feature-store backends on the bulk-water features: write, size, read.

Locates ../shared/data/bulk-water.mov once (480 frames, channel 0, diameter=11,
minmass=20, invert=True, 64-frame chunks), then for each backend appends the same chunks
through the store interface, as ``daskloc.batch`` does (open, prepare, metadata, one
``append_chunk`` per chunk in frame order, final metadata), and prints:

- write time per frame (ms; the locate time is not included);
- size on disk (local backends: the files; PostgreSQL: ``pg_total_relation_size`` of the
  store's tables; MariaDB: data + index length from ``information_schema``);
- the time to read a 1 % frame range (frames 240..244 of 480) and the whole table with
  ``daskloc.read_features`` (median of --repeat, each opening the store afresh), and their
  ratio.

PostgreSQL and MariaDB are measured when DASKLOC_TEST_POSTGRES_URL / DASKLOC_TEST_MYSQL_URL
are set (their tables are removed afterwards). A backend whose module is not there yet,
or whose server is not configured, is listed as "not available (reason)".

    python benchmarks/bench_stores.py [--frames N] [--repeat R] [--backends parquet,zarr]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "bulk-water.mov"
PARAMS = dict(minmass=20, invert=True)
DIAMETER = 11
BACKENDS = ["parquet", "zarr", "hdf5", "sqlite", "postgresql", "mariadb"]


def locate_once(movie, n_frames, chunk_frames, workdir):
    """Locate the movie into a Parquet store; return its chunks (in memory) and metadata."""
    import daskloc
    from daskloc.stores import open_store

    path = Path(workdir) / "located.parquet"
    video = daskloc.open_video(movie, channel=0, frames=slice(0, n_frames), chunks=chunk_frames)
    t0 = time.perf_counter()
    daskloc.batch(video, DIAMETER, store=path, do_not_return=True, **PARAMS)
    seconds = time.perf_counter() - t0
    st = open_store(path)
    chunks = [(a, b, st.read(slice(a, b))) for a, b in st.complete_chunks()]
    return chunks, st.metadata(), seconds


def location(backend, workdir):
    """``(url, table)`` for a backend, or raise LookupError(reason) if unavailable."""
    module = {"zarr": "zarr", "hdf5": "hdf5", "sqlite": "sql", "postgresql": "sql",
              "mariadb": "sql"}.get(backend)
    if module and not (ROOT / "daskloc" / "stores" / f"{module}.py").exists():
        raise LookupError(f"daskloc/stores/{module}.py does not exist yet")
    table = f"bench_{uuid.uuid4().hex[:10]}"
    if backend == "parquet":
        return str(Path(workdir) / "bench.parquet"), None
    if backend == "zarr":
        return str(Path(workdir) / "bench.zarr"), None
    if backend == "hdf5":
        return str(Path(workdir) / "bench.h5"), None
    if backend == "sqlite":
        return f"sqlite:///{Path(workdir) / 'bench.db'}", None
    variable = {"postgresql": "DASKLOC_TEST_POSTGRES_URL",
                "mariadb": "DASKLOC_TEST_MYSQL_URL"}[backend]
    url = os.environ.get(variable)
    if not url:
        raise LookupError(f"{variable} not set")
    return url, table


def disk_bytes(path):
    """Bytes of a file, or of every file under a directory."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def local_size(url):
    if url.startswith("sqlite:///"):
        db = url[len("sqlite:///"):]
        return sum(disk_bytes(db + s) for s in ("", "-wal", "-journal") if os.path.exists(db + s))
    return disk_bytes(url)


def server_size(backend, url, table):
    """Bytes the server reports for the store's two SQL tables (the data and chunks
    tables; not the view), or None if unknown."""
    import sqlalchemy as sa

    from daskloc.stores import open_store

    st = open_store(url, "r", table=table)
    view = getattr(st, "sql_table", None)
    rows = getattr(st, "data_table", None) or view  # the view holds no bytes
    st.close()
    if not view:
        return None
    tables = [rows, view + "_chunks"]
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if backend == "postgresql":
                size = sa.text("SELECT pg_total_relation_size(CAST(:t AS regclass))")
                return sum(conn.execute(size, {"t": f'"{t}"'}).scalar() for t in tables)
            for t in tables:  # InnoDB statistics are refreshed lazily
                conn.execute(sa.text(f"ANALYZE TABLE `{t}`")).all()
            rows = conn.execute(sa.text(
                "SELECT table_name, data_length + index_length FROM information_schema.tables "
                "WHERE table_schema = DATABASE()")).all()
            return sum(int(n) for name, n in rows if name in tables)
    finally:
        engine.dispose()


def write(url, table, chunks, meta):
    """Append every chunk through the store interface, as batch does; seconds."""
    from daskloc.metadata import chunk_id
    from daskloc.stores import open_store

    meta = meta.copy()  # a JobMetadata
    meta.complete_chunks, meta.n_features, meta.finished = [], 0, False
    identity = meta.identity
    t0 = time.perf_counter()
    st = open_store(url, "a", table=table)
    st.prepare()
    st.write_metadata(meta.to_json())
    done, n = [], 0
    for a, b, df in chunks:
        st.append_chunk(a, b, df, chunk_id=chunk_id(identity, a, b))
        done.append([a, b])
        n += len(df)
    meta.complete_chunks, meta.n_features, meta.finished = done, n, True
    st.write_metadata(meta.to_json())
    st.close()
    return time.perf_counter() - t0


def time_read(url, table, frames, repeat):
    from daskloc.stores import read_features

    times, rows = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        df = read_features(url, frames, table=table)
        times.append(time.perf_counter() - t0)
        rows = len(df)
    return statistics.median(times), rows


def bench(backend, chunks, meta, workdir, args, reference):
    url, table = location(backend, workdir)
    server = backend in ("postgresql", "mariadb")
    try:
        seconds = write(url, table, chunks, meta)
        size = server_size(backend, url, table) if server else local_size(url)
        part, n_part = time_read(url, table, args.range, args.repeat)
        whole, n_whole = time_read(url, table, None, args.repeat)
        if (n_part, n_whole) != reference:
            raise AssertionError(f"read {n_part}/{n_whole} rows, expected {reference}")
    finally:
        if server:
            from daskloc.stores import open_store

            st = open_store(url, "a", table=table)
            st.clear()
            st.close()
    return seconds, size, part, whole


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--movie", type=Path, default=DATA)
    parser.add_argument("--frames", type=int, default=480, help="frames to locate (default 480)")
    parser.add_argument("--chunk-frames", type=int, default=64, help="frames per chunk (64)")
    parser.add_argument("--repeat", type=int, default=5, help="timings per read (median)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated, from {','.join(BACKENDS)}")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where local stores go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    n = args.frames
    width = max(1, round(n / 100))
    args.range = slice(n // 2, n // 2 + width)

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {BACKENDS}")

    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="bench-stores-") as workdir:
        chunks, meta, locate_s = locate_once(args.movie, n, args.chunk_frames, workdir)
        import pandas as pd

        features = pd.concat([df for _, _, df in chunks], ignore_index=True)
        in_range = int(((features.frame >= args.range.start)
                        & (features.frame < args.range.stop)).sum())
        reference = (in_range, len(features))
        print(f"{args.movie.name}: {n} frames located in {locate_s:.1f} s -> "
              f"{len(features)} features "
              f"in {len(chunks)} chunks of <= {args.chunk_frames} frames")
        print(f"read 1%: frames {args.range.start}..{args.range.stop - 1} ({in_range} rows); "
              f"reads are medians of {args.repeat}, each opening the store\n")
        header = (f"{'backend':<11} {'write ms/frame':>14} {'size MiB':>9} {'B/feature':>9} "
                  f"{'read 1% ms':>10} {'read all ms':>11} {'all/1%':>7}")
        print(header)
        print("-" * len(header))
        for backend in backends:
            try:
                seconds, size, part, whole = bench(backend, chunks, meta, workdir, args, reference)
            except LookupError as e:
                print(f"{backend:<11} not available ({e})")
                continue
            except Exception as e:  # noqa: BLE001 - report and go on with the others
                print(f"{backend:<11} failed: {type(e).__name__}: {e}".splitlines()[0][:160])
                continue
            size_text = "n/a" if size is None else f"{size / 2**20:9.2f}"
            per_feature = "n/a" if size is None else f"{size / len(features):9.1f}"
            print(f"{backend:<11} {1e3 * seconds / n:14.3f} {size_text:>9} {per_feature:>9} "
                  f"{1e3 * part:10.2f} {1e3 * whole:11.1f} {whole / part:7.1f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
