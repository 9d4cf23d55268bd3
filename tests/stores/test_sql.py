"""daskloc.stores.sql: the SQL feature store on SQLite, a real PostgreSQL and a real MariaDB.

Server tests use the databases ``.ci/services.sh`` starts (URLs from
``DASKLOC_TEST_POSTGRES_URL`` / ``DASKLOC_TEST_MYSQL_URL``); without them they are skipped,
or fail under ``DASKLOC_REQUIRE_SERVICES=1``. Every server test uses table names no other
test uses and drops what it created.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from daskloc.locate import feature_columns, locate_stack
from daskloc.pipeline import batch
from daskloc.stores import open_store, read_features, store_info
from daskloc.stores.sql import MYSQL_INF, SQLStore, sql_table_name
from daskloc.testing._batch import kill_when, watch_run
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots, start_batch_process
from tests.stores import _services
from tests.stores._suite import DasklocStoreTests

COLUMNS = list(feature_columns(True))
DIALECTS = ["sqlite", "postgresql", "mariadb"]


@dataclasses.dataclass
class DB:
    """One test's database: its URL, a unique prefix for names, and what to clean up."""

    dialect: str
    url: str
    prefix: str
    stores: list = dataclasses.field(default_factory=list)
    plain_tables: list = dataclasses.field(default_factory=list)
    _engine: object = None

    def name(self, name="features"):
        """A daskloc table name unique to this test (plain ``name`` on a private SQLite)."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def store(self, table=None, mode="a", **options):
        st = open_store(self.url, mode, table=table, **options)
        self.stores.append(st)
        return st

    @property
    def engine(self):
        """A plain SQLAlchemy engine, as a user outside daskloc would make one."""
        if self._engine is None:
            self._engine = sa.create_engine(SQLStore(self.url).path)
        return self._engine

    def sql(self, text, **params):
        with self.engine.connect() as conn:
            return conn.execute(sa.text(text), params).all()


@pytest.fixture(params=DIALECTS)
def db(request, tmp_path):
    if request.param == "sqlite":
        d = DB("sqlite", f"sqlite:///{tmp_path / 'features.db'}", "")
    elif request.param == "postgresql":
        d = DB("postgresql", _services.postgres_url(), _services.unique_table("s"))
    else:
        d = DB("mariadb", _services.mysql_url(), _services.unique_table("s"))
    yield d
    for st in d.stores:
        try:
            st.clear()
        except Exception:  # noqa: BLE001 - a test may leave a foreign table on purpose
            pass
        st.close()
    if d._engine is not None:
        with d._engine.begin() as conn:
            for t in d.plain_tables:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {t}"))
        d._engine.dispose()


def fake_features(frames, per_frame, seed=0):
    """Features for some frames; within a frame, rows are in no sorted order."""
    rng = np.random.default_rng(seed)
    frame = np.repeat(np.asarray(frames, dtype=np.int64), np.asarray(per_frame, dtype=np.int64))
    n = len(frame)
    df = pd.DataFrame({c: rng.normal(100, 30, n) for c in COLUMNS})
    df["ep"] = np.where(rng.random(n) < 0.2, np.nan, df["ep"])
    df["frame"] = frame
    return df


def metadata(first, stop, chunks):
    return {
        "format": "daskloc-features",
        "format_version": 2,
        "params": {"diameter": 9, "minmass": 100},
        "source": {"path": "synthetic", "frames": {"start": first, "stop": stop, "step": 1}},
        "chunking": {"chunks": [list(c) for c in chunks]},
        "columns": {**{c: "float64" for c in COLUMNS}, "frame": "int64"},
    }


def new_store(db, name="features", first=0, stop=30, chunks=((0, 10), (10, 20), (20, 30))):
    st = db.store(table=db.name(name))
    st.prepare()
    st.write_metadata(metadata(first, stop, chunks))
    return st


def count_rows(db, st, lo=None, hi=None):
    where = "" if lo is None else f" WHERE frame >= {lo} AND frame < {hi}"
    return db.sql(f"SELECT COUNT(*) FROM {st.sql_table}{where}")[0][0]


# ----------------------------------------------------------------- append, read, replace


def test_append_read_replace(db):
    st = new_store(db)
    parts = {
        (0, 10): fake_features(range(10), [3, 0, 5, 1, 2, 0, 0, 4, 6, 2], seed=1),
        (10, 20): fake_features([], [], seed=2),
        (20, 30): fake_features(range(20, 30), [2] * 10, seed=3),
    }
    for (a, b), df in reversed(parts.items()):  # any order
        st.append_chunk(a, b, df)
    expected = pd.concat(parts.values(), ignore_index=True)
    assert st.complete_chunks() == [(0, 10), (10, 20), (20, 30)]
    assert st.n_rows() == len(expected) and st.n_rows([(20, 30)]) == 20
    reader = db.store(table=db.name(), mode="r")
    pd.testing.assert_frame_equal(reader.read(), expected, check_exact=True)
    want = expected[expected.frame.isin([2, 7, 8, 21])].reset_index(drop=True)
    pd.testing.assert_frame_equal(reader.read([21, 2, 8, 7]), want, check_exact=True)
    pd.testing.assert_frame_equal(reader.read(slice(10, 20)), expected.iloc[:0], check_exact=True)

    # unsorted input is stored sorted by frame, keeping the order within each frame
    shuffled = parts[(0, 10)].sample(frac=1, random_state=0)
    st.append_chunk(0, 10, shuffled)
    pd.testing.assert_frame_equal(
        reader.read(slice(0, 10)),
        shuffled.sort_values("frame", kind="stable").reset_index(drop=True), check_exact=True)

    # appending the same range again replaces it: new rows, new count, nothing twice
    again = fake_features(range(10), [7] * 10, seed=4)
    st.append_chunk(0, 10, again)
    assert st.complete_chunks() == [(0, 10), (10, 20), (20, 30)]
    assert st.n_rows([(0, 10)]) == 70 == count_rows(db, st, 0, 10)
    pd.testing.assert_frame_equal(reader.read(slice(0, 10)), again, check_exact=True)
    st.append_chunk(0, 10, fake_features([], []))
    assert count_rows(db, st, 0, 10) == 0 and st.n_rows() == 20
    marks = db.sql(f"SELECT start, stop, n_rows FROM {st.sql_table}_chunks ORDER BY start")
    assert [tuple(m) for m in marks] == [(0, 10, 0), (10, 20, 0), (20, 30, 20)]


def test_reads_of_many_ranges_and_long_frame_lists(db):
    """Every other chunk complete (> 32 separate runs) and lists of > 1000 frames."""
    chunks = [(a, a + 5) for a in range(0, 500, 5)]
    st = new_store(db, "gappy", stop=500, chunks=chunks)
    parts = {}
    for a, b in chunks[::2]:
        parts[(a, b)] = fake_features(range(a, b), [2] * 5, seed=a)
        st.append_chunk(a, b, parts[(a, b)])
    expected = pd.concat(parts.values(), ignore_index=True)
    pd.testing.assert_frame_equal(st.read(), expected, check_exact=True)
    wanted = list(range(0, 500, 3)) * 8  # 1336 frames, repeated
    want = expected[expected.frame.isin(wanted)].reset_index(drop=True)
    pd.testing.assert_frame_equal(st.read(wanted), want, check_exact=True)
    pd.testing.assert_frame_equal(st.read(range(3, 500, 7)),
                                  expected[expected.frame.isin(range(3, 500, 7))]
                                  .reset_index(drop=True), check_exact=True)


def test_plain_core_statements_give_the_same_table(db, monkeypatch):
    """Without the drivers' bulk paths (other drivers): the same rows, the same reads."""
    st = new_store(db, "core")
    df = fake_features(range(10), [3, 0, 5, 1, 2, 0, 0, 4, 6, 2], seed=8)
    df.loc[0, "x"] = np.inf
    monkeypatch.setattr(SQLStore, "fast_paths", False)
    st.append_chunk(0, 10, df)
    pd.testing.assert_frame_equal(st.read(), df, check_exact=True)
    monkeypatch.setattr(SQLStore, "fast_paths", True)
    pd.testing.assert_frame_equal(st.read(), df, check_exact=True)


def test_input_is_checked_before_anything_is_written(db):
    st = new_store(db)
    good = fake_features(range(3), [2, 2, 2])
    bad = {
        "frames outside": fake_features([12], [1]),
        "no frame": good.drop(columns="frame"),
        "unknown column": good.assign(particle=1),
        "text": good.assign(mass="heavy"),
        "fractional frame": good.assign(frame=good.frame + 0.5),
    }
    for _why, df in bad.items():
        with pytest.raises(ValueError):
            st.append_chunk(0, 10, df)
    assert st.complete_chunks() == [] and count_rows(db, st) == 0


def _fail_after_half(monkeypatch):
    """Make SQLStore._insert write half the rows, then fail (an error mid-insert)."""
    original = SQLStore._insert

    def half_then_fail(self, conn, features, names, rows):
        original(self, conn, features, names, rows[: len(rows) // 2])
        raise RuntimeError("injected failure mid-insert")

    monkeypatch.setattr(SQLStore, "_insert", half_then_fail)


def test_a_failure_mid_insert_leaves_nothing(db, monkeypatch):
    st = new_store(db)
    first = fake_features(range(10), [5] * 10, seed=1)
    st.append_chunk(0, 10, first)
    with monkeypatch.context() as m:
        _fail_after_half(m)
        with pytest.raises(RuntimeError, match="mid-insert"):
            st.append_chunk(10, 20, fake_features(range(10, 20), [5] * 10, seed=2))
        with pytest.raises(RuntimeError, match="mid-insert"):  # a replacement that fails
            st.append_chunk(0, 10, fake_features(range(10), [9] * 10, seed=3))
    assert st.complete_chunks() == [(0, 10)]
    assert count_rows(db, st) == 50  # seen by a plain connection, too
    pd.testing.assert_frame_equal(st.read(), first, check_exact=True)


def test_a_database_error_mid_insert_leaves_nothing(db, monkeypatch):
    """The database itself refuses the last row (duplicate key): the rows before it go too."""
    st = new_store(db)
    original = SQLStore._rows

    def with_a_duplicate_last_row(self, start, stop, features, table_columns):
        names, rows = original(self, start, stop, features, table_columns)
        return names, rows + rows[:1]

    monkeypatch.setattr(SQLStore, "_rows", with_a_duplicate_last_row)
    with pytest.raises(sa.exc.IntegrityError):
        st.append_chunk(0, 10, fake_features(range(10), [50] * 10))
    assert st.complete_chunks() == [] and count_rows(db, st) == 0


# ----------------------------------------------------------------- processes


_WRITER = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd
    from daskloc.stores import open_store
    from daskloc.stores.sql import SQLStore

    url, table, n_chunks = sys.argv[1], sys.argv[2], int(sys.argv[3])
    st = open_store(url, "a", table=table)
    original = SQLStore._insert

    def announced(self, conn, features, names, rows):
        print("inserting", flush=True)  # inside the chunk's transaction
        original(self, conn, features, names, rows)

    SQLStore._insert = announced
    rng = np.random.default_rng(0)
    for i in range(n_chunks):
        frames = np.repeat(np.arange(50 * i, 50 * i + 50), 600)
        df = pd.DataFrame({c: rng.normal(100, 30, len(frames))
                           for c in ["y", "x", "mass", "size", "ecc", "signal", "raw_mass", "ep"]})
        df["frame"] = frames
        st.append_chunk(50 * i, 50 * i + 50, df)
        print("done", i, flush=True)
    """
)


def _assert_consistent(db, st):
    """Every progress row counts exactly the rows of its range; no row lies outside them."""
    marks = db.sql(f"SELECT start, stop, n_rows FROM {st.sql_table}_chunks ORDER BY start")
    for a, b, n in marks:
        assert count_rows(db, st, a, b) == n
    assert count_rows(db, st) == sum(n for _, _, n in marks)
    return [(a, b) for a, b, _ in marks]


@pytest.mark.slow
def test_sigkill_inside_a_chunk_transaction_leaves_nothing(db, tmp_path):
    st = new_store(db, "killed", stop=10**6, chunks=[])
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    proc = subprocess.Popen([sys.executable, str(script), st.path, st.table, "50"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        while True:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            seen.append(line.split()[0])
            if seen.count("inserting") == 3:  # the third chunk's rows are being inserted
                os.kill(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _assert_consistent(db, st) == [(0, 50), (50, 100)]  # the third: nothing
    # the killed transaction holds nothing any more: the chunk can be written at once
    t0 = time.monotonic()
    st.append_chunk(100, 150, fake_features(range(100, 150), [3] * 50))
    assert time.monotonic() - t0 < 30
    assert _assert_consistent(db, st) == [(0, 50), (50, 100), (100, 150)]


@pytest.mark.slow
def test_resume_after_sigkill_of_a_batch(db, tmp_path):
    arr = make_spots(n_frames=32, shape=(64, 64), n_particles=5, seed=31)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    table = db.name("bulk_water/features")
    db.stores.append(db.store(table=table))  # cleaned up at the end
    proc = start_batch_process(tmp_path, arr, db.url, delay=0.05, chunks=4,
                               store_kwargs={"table": table}, hold=3)
    kill_when(proc, lambda: len(db.store(table=table).complete_chunks()) >= 2)
    st = db.store(table=table)
    assert 2 <= len(_assert_consistent(db, st)) < 8
    batch(as_video(arr, chunks=4), DIAMETER, store=db.url, table=table, do_not_return=True,
          **PARAMS)
    pd.testing.assert_frame_equal(read_features(db.url, table=table), reference,
                                  check_exact=True)
    assert _assert_consistent(db, st) == [(a, a + 4) for a in range(0, 32, 4)]


@pytest.mark.slow
def test_another_process_reads_partial_results_with_plain_sql(db, tmp_path):
    """The seed's use case: peek at the early results of a long job, with plain SQL."""
    arr = make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=9)
    reference = locate_stack(arr, DIAMETER, **PARAMS)
    table = db.name("live")
    db.stores.append(db.store(table=table))
    chunks = [(a, a + 2) for a in range(0, 40, 2)]
    proc = start_batch_process(tmp_path, arr, db.url, delay=0.2, chunks=2,
                               store_kwargs={"table": table})

    def observe():
        try:
            # MariaDB refuses even DESCRIBE while the writer's DDL creates the view
            # (error 1684): like a missing table, that is "not created yet"
            sql_table = db.store(table=table).sql_table
            if sql_table is None:
                return None
            rows = pd.read_sql(f"SELECT * FROM {sql_table}", db.engine)  # the view's order
            done = db.sql(f"SELECT start, stop FROM {sql_table}_chunks")
            via_daskloc = read_features(db.url, table=table)
        except (sa.exc.ProgrammingError, sa.exc.OperationalError, ValueError):
            return None  # tables not created yet
        # read in this order: rows (plain SQL), progress rows, rows (daskloc)
        done = {tuple(d) for d in done}
        assert list(rows.columns) == COLUMNS + ["frame"]
        for a, b in chunks:
            want = reference[reference.frame.between(a, b - 1)].reset_index(drop=True)
            for got in (rows, via_daskloc):
                part = got[got.frame.between(a, b - 1)].reset_index(drop=True)
                if len(part):  # a chunk is all there or not at all
                    pd.testing.assert_frame_equal(part, want, check_exact=True)
            if (rows.frame.between(a, b - 1)).any():
                assert (a, b) in done  # rows committed with their progress row
            if (a, b) in done:
                assert via_daskloc.frame.between(a, b - 1).sum() == len(want)
        return "partial" if 0 < len(done) < len(chunks) else None

    partial = watch_run(proc, observe)["partial"]
    assert partial >= 2, "never saw partial results"
    pd.testing.assert_frame_equal(read_features(db.url, table=table), reference,
                                  check_exact=True)


_APPENDER = textwrap.dedent(
    """
    import sys, numpy as np, pandas as pd
    from daskloc.stores import open_store

    url, table, me, n_proc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    st = open_store(url, "a", table=table)
    rng = np.random.default_rng(me)
    cols = ["y", "x", "mass", "size", "ecc", "signal", "raw_mass", "ep"]
    for i in range(me, 24, n_proc):
        frames = np.repeat(np.arange(10 * i, 10 * i + 10), 200)
        df = pd.DataFrame({c: rng.normal(100, 30, len(frames)) for c in cols})
        df["frame"] = frames
        st.append_chunk(10 * i, 10 * i + 10, df)
    # every process also writes chunk [0, 10) once more, all at about the same time
    frames = np.repeat(np.arange(10), 100 + me)
    df = pd.DataFrame({c: rng.normal(100, 30, len(frames)) for c in cols})
    df["frame"] = frames
    st.append_chunk(0, 10, df)
    """
)


@pytest.mark.slow
def test_appends_from_several_processes_at_once(db, tmp_path):
    """Four processes append interleaved chunks and race on rewriting one chunk."""
    st = new_store(db, "many", stop=240, chunks=[(a, a + 10) for a in range(0, 240, 10)])
    script = tmp_path / "appender.py"
    script.write_text(_APPENDER)
    procs = [subprocess.Popen([sys.executable, str(script), st.path, st.table, str(i), "4"],
                              stderr=subprocess.PIPE) for i in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    assert _assert_consistent(db, st) == [(a, a + 10) for a in range(0, 240, 10)]
    assert st.n_rows() == 23 * 2000 + st.n_rows([(0, 10)])
    assert st.n_rows([(0, 10)]) in {1000, 1010, 1020, 1030}  # one writer's version, whole
    got = st.read()
    assert not got.duplicated().any()


# ----------------------------------------------------------------- values


def test_nan_and_infinities_round_trip(db):
    st = new_store(db, "values")
    assert st.sql_table == ("values_t" if db.dialect == "sqlite" else sql_table_name(st.table))
    df = fake_features(range(5), [4] * 5)
    special = [np.nan, np.inf, -np.inf, 5e-324, -0.0, 1e308, -1e-300, 123.456789012345678]
    df.loc[: len(special) - 1, "mass"] = special
    df.loc[3, "y"] = np.nan
    st.append_chunk(0, 10, df)
    got = st.read()
    pd.testing.assert_frame_equal(got, df, check_exact=True)
    assert np.isnan(got.mass[0]) and got.mass[1] == np.inf and got.mass[2] == -np.inf
    # NaN is NULL in the database, for every dialect
    n_null = db.sql(f"SELECT COUNT(*) FROM {st.sql_table} WHERE ep IS NULL")[0][0]
    assert n_null == df.ep.isna().sum() > 0
    assert db.sql(f"SELECT COUNT(*) FROM {st.sql_table} WHERE mass IS NULL")[0][0] == 1
    stored_inf = db.sql(f"SELECT mass FROM {st.data_table} WHERE frame = 0 AND feature = 1")[0][0]
    assert stored_inf == (MYSQL_INF if db.dialect == "mariadb" else np.inf)


@pytest.mark.slow
def test_large_metadata_round_trips(db):
    """Thousands of chunks in the metadata: more than MySQL's 64 KiB TEXT holds."""
    st = db.store(table=db.name("long"))
    st.prepare()
    chunks = [(a, a + 16) for a in range(0, 16 * 20000, 16)]
    meta = metadata(0, 16 * 20000, chunks)
    meta["complete_chunks"] = [list(c) for c in chunks]
    meta["params"]["note"] = "unicode µm ✓"
    st.write_metadata(meta)
    assert len(json.dumps(meta)) > 300_000
    assert db.store(table=db.name("long"), mode="r").read_metadata() == meta
    text = db.sql("SELECT metadata FROM daskloc_stores WHERE name = :n", n=st.table)[0][0]
    assert json.loads(text) == meta  # plain JSON text
    with pytest.raises(ValueError):
        st.write_metadata({**meta, "bad": float("nan")})


# ----------------------------------------------------------------- names and tables


def test_table_names_map_to_plain_sql_names(db):
    st = new_store(db, "bulk_water/features")
    expected = sql_table_name(st.table)
    assert st.sql_table == expected
    assert expected.endswith("bulk_water__features") and "/" not in expected
    tables, views = _tables_and_views(db)
    assert {expected + "_rows", expected + "_chunks", "daskloc_stores"} <= tables
    assert expected in views and expected not in tables and st.data_table == expected + "_rows"
    assert db.sql("SELECT sql_table FROM daskloc_stores WHERE name = :n", n=st.table)[0][0] \
        == expected
    assert db.sql(f"SELECT COUNT(*) FROM {expected}")[0][0] == 0

    # names that map to the same SQL name get distinct tables; long and non-ASCII names work
    a = new_store(db, "Run-1/a")
    b = new_store(db, "run_1/a")
    c = new_store(db, "µm/" + "very_long_name_" * 8)
    assert a.sql_table == sql_table_name(a.table) != b.sql_table
    assert b.sql_table.startswith(a.sql_table[:20]) and len(c.sql_table) <= 50
    for i, st_ in enumerate((a, b, c)):
        st_.append_chunk(0, 10, fake_features(range(10), [i + 1] * 10))
    for i, st_ in enumerate((a, b, c)):
        assert len(db.store(table=st_.table, mode="r").read()) == 10 * (i + 1)

    # a name whose SQL name is another's data or chunks table gets its own names
    rows_twin = new_store(db, "bulk_water/features_rows")
    chunks_twin = new_store(db, "bulk_water/features_rows_chunks")
    used = [_names(x) for x in (st, rows_twin, chunks_twin)]
    assert len(set().union(*used)) == 9
    rows_twin.append_chunk(0, 10, fake_features(range(10), [2] * 10))
    assert len(st.read()) == 0 and len(rows_twin.read()) == 20


def _names(st):
    return {st.sql_table, st.data_table, st.sql_table + "_chunks"}


def _tables_and_views(db):
    insp = sa.inspect(db.engine)
    return set(insp.get_table_names()), set(insp.get_view_names())


def test_a_foreign_table_with_the_same_name_is_never_touched(db):
    name = db.name("mine")
    target = sql_table_name(name)
    db.plain_tables.append(target)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {target} (note VARCHAR(20))"))
        conn.execute(sa.text(f"INSERT INTO {target} VALUES ('keep me')"))
    st = db.store(table=name)
    with pytest.raises(ValueError, match="did not create"):
        st.prepare()
    with pytest.raises(ValueError, match="not daskloc's"):
        st.clear()
    assert not st.exists() and st.complete_chunks() == []
    assert db.sql(f"SELECT note FROM {target}") == [("keep me",)]
    # the name of its data table is taken, too
    other = db.name("mine2")
    taken = sql_table_name(other) + "_rows"
    db.plain_tables.append(taken)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {taken} (note VARCHAR(20))"))
    with pytest.raises(ValueError, match="did not create"):
        db.store(table=other).prepare()
    assert db.sql(f"SELECT COUNT(*) FROM {taken}") == [(0,)]
    assert sql_table_name(other) not in _tables_and_views(db)[1]


def test_clear_drops_only_its_own_tables(db):
    keep = new_store(db, "keep")
    keep.append_chunk(0, 10, fake_features(range(10), [2] * 10))
    gone = new_store(db, "gone")
    gone.append_chunk(0, 10, fake_features(range(10), [3] * 10))
    user = sql_table_name(db.name("gone")) + "_notes"  # looks like ours; is not
    db.plain_tables.append(user)
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"CREATE TABLE {user} (n INTEGER)"))
        conn.execute(sa.text(f"INSERT INTO {user} VALUES (42)"))
    gone_names = _names(gone)
    gone.clear()
    tables, views = _tables_and_views(db)
    assert not gone_names & (tables | views)  # view, data table, chunks table
    assert {keep.data_table, keep.sql_table + "_chunks", user} <= tables
    assert keep.sql_table in views
    assert db.sql("SELECT COUNT(*) FROM daskloc_stores WHERE name = :n", n=gone.table)[0][0] == 0
    assert not gone.exists() and gone.complete_chunks() == [] and gone.read_metadata() is None
    # a name that maps to the SQL name of another daskloc table is not a foreign table
    twin = db.store(table=db.name("KEEP"))
    assert sql_table_name(twin.table) == keep.sql_table
    twin.clear()
    assert len(keep.read()) == 20
    assert db.sql(f"SELECT n FROM {user}") == [(42,)]
    assert len(keep.read()) == 20
    gone.clear()  # nothing left: no error
    db.store(table=db.name("never-created")).clear()
    # the cleared name can be used again
    gone.prepare()
    gone.write_metadata(metadata(0, 30, []))
    assert gone.complete_chunks() == [] and gone.exists()


# ----------------------------------------------------------------- stores made before the view


def _legacy_schema(sql_table):
    """The tables as daskloc wrote them before the view: the rows, with ``feature`` and
    the primary key, in ``<sql_table>`` itself (the old ``_schema``, verbatim)."""
    md = sa.MetaData()
    features = sa.Table(
        sql_table, md,
        *[sa.Column(c, sa.Double()) for c in COLUMNS],
        sa.Column("frame", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("feature", sa.Integer(), nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("frame", "feature"),
        sqlite_with_rowid=False,
    )
    chunks = sa.Table(
        sql_table + "_chunks", md,
        sa.Column("start", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("stop", sa.BigInteger(), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        sa.Column("chunk_id", sa.String(32), nullable=True),
        sa.Column("skipped", sa.Text(), nullable=True),
    )
    return features, chunks


@pytest.mark.slow
def test_a_store_made_before_the_view_reads_resumes_and_keeps_its_layout(db):
    """A result set whose rows are the table ``<sql_table>`` (with ``feature``, no view):
    read, resumed into the same table, and only ``overwrite=True`` makes the view."""
    arr = make_spots(n_frames=24, shape=(64, 64), n_particles=5, seed=13)
    ref = locate_stack(arr, DIAMETER, **PARAMS)
    video = as_video(arr, chunks=4)
    # the job's rows, progress rows and metadata, from a job daskloc runs now ...
    source = db.name("legacy_source")
    batch(video, DIAMETER, store=db.url, table=source, do_not_return=True, **PARAMS)
    src = db.store(table=source)
    rows = db.sql(f"SELECT * FROM {src.data_table} ORDER BY frame, feature")
    marks = db.sql(f"SELECT start, stop, n_rows, chunk_id, skipped FROM {src.sql_table}_chunks"
                   " ORDER BY start")
    meta = db.sql("SELECT metadata FROM daskloc_stores WHERE name = :n", n=source)[0][0]
    src.clear()
    # ... written as the old daskloc did, with plain SQLAlchemy DDL; 3 of 6 chunks done
    table = db.name("legacy")
    sql_table = sql_table_name(table)
    features, chunks = _legacy_schema(sql_table)
    keep = marks[:3]
    with db.engine.begin() as conn:
        features.create(conn)
        chunks.create(conn)
        names = [c.name for c in features.columns]
        conn.execute(features.insert(), [dict(zip(names, r)) for r in rows
                                         if r[names.index("frame")] < keep[-1][1]])
        conn.execute(chunks.insert(), [dict(zip(["start", "stop", "n_rows", "chunk_id",
                                                 "skipped"], m)) for m in keep])
        conn.execute(sa.text("INSERT INTO daskloc_stores (name, sql_table, metadata) "
                             "VALUES (:n, :t, :m)"), {"n": table, "t": sql_table, "m": meta})
    st = db.store(table=table)

    def layout():
        tables, views = _tables_and_views(db)
        if sql_table in views:
            return "view"
        assert sql_table + "_rows" not in tables
        return "table" if sql_table in tables else None

    done = ref[ref.frame < 12].reset_index(drop=True)
    pd.testing.assert_frame_equal(read_features(db.url, table=table), done, check_exact=True)
    assert st.sql_table == st.data_table == sql_table
    assert store_info(db.url, table=table)["verified"]
    batch(video, DIAMETER, store=db.url, table=table, do_not_return=True, **PARAMS)  # resume
    assert layout() == "table"
    pd.testing.assert_frame_equal(read_features(db.url, table=table), ref, check_exact=True)
    plain = pd.read_sql(f"SELECT * FROM {sql_table} ORDER BY frame, feature", db.engine)
    assert list(plain.columns) == COLUMNS + ["frame", "feature"]
    pd.testing.assert_frame_equal(plain.drop(columns="feature"), ref, check_exact=True)
    assert st.complete_chunks() == [(a, a + 4) for a in range(0, 24, 4)]

    batch(video, DIAMETER, store=db.url, table=table, do_not_return=True, overwrite=True,
          **PARAMS)
    assert layout() == "view"
    # a reader that knew the old layout reads the new one
    pd.testing.assert_frame_equal(st.read(), ref, check_exact=True)
    assert st.data_table == sql_table + "_rows"
    fresh = db.store(table=table)
    assert fresh.data_table == sql_table + "_rows"
    pd.testing.assert_frame_equal(pd.read_sql_table(sql_table, db.engine), ref, check_exact=True)
    pd.testing.assert_frame_equal(read_features(db.url, table=table), ref, check_exact=True)
    fresh.clear()
    tables, views = _tables_and_views(db)
    assert not {sql_table, sql_table + "_rows", sql_table + "_chunks"} & (tables | views)


# ----------------------------------------------------------------- plain tools, indexes


def test_plain_pandas_read_sql(db):
    """pandas reads the table as trackpy's: its columns and frame, the same values."""
    import trackpy

    arr = make_spots(n_frames=70, shape=(64, 64), n_particles=5, seed=5)
    table = None if db.dialect == "sqlite" else db.name()
    if table is not None:
        db.stores.append(db.store(table=table))
    batch(as_video(arr, chunks=8, first_frame=90), DIAMETER, store=db.url, table=table,
          do_not_return=True, **PARAMS)
    st = db.store(table=table)
    name = st.sql_table
    assert (name == "features") == (db.dialect == "sqlite")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trackpy's own deprecation warnings
        trackpy_columns = list(trackpy.locate(arr[0], DIAMETER, **PARAMS).columns) + ["frame"]
    assert trackpy_columns == COLUMNS + ["frame"]
    everything = read_features(db.url, table=table)
    engine = sa.create_engine(st.path)  # a user's own engine
    try:
        whole = pd.read_sql_table(name, engine)  # reflects the view
        df = pd.read_sql(f"SELECT * FROM {name} WHERE frame BETWEEN 100 AND 149", engine)
    finally:
        engine.dispose()
    for got in (whole, df):
        assert list(got.columns) == trackpy_columns
        assert got.frame.is_monotonic_increasing  # the view's order (frame, feature)
    pd.testing.assert_frame_equal(whole, everything, check_exact=True)
    want = read_features(db.url, frames=slice(100, 150), table=table)
    assert sorted(want.frame.unique()) == list(range(100, 150))
    pd.testing.assert_frame_equal(df, want, check_exact=True)
    ref = locate_stack(arr, DIAMETER, frame_numbers=np.arange(90, 160), **PARAMS)
    pd.testing.assert_frame_equal(everything, ref, check_exact=True)
    info = store_info(db.url, table=table)
    assert info["complete"] and info["n_features"] == len(ref) and info["backend"] == "sql"


def test_frame_range_reads_use_the_frame_index(db, monkeypatch):
    st = new_store(db, "indexed", stop=400, chunks=[(a, a + 100) for a in range(0, 400, 100)])
    for a in range(0, 400, 100):
        st.append_chunk(a, a + 100, fake_features(range(a, a + 100), [50] * 100, seed=a))
    issued = []
    original = SQLStore._fetch

    def recording(self, conn, stmt):
        issued.append(str(stmt.compile(dialect=conn.dialect,
                                       compile_kwargs={"literal_binds": True})))
        return original(self, conn, stmt)

    monkeypatch.setattr(SQLStore, "_fetch", recording)
    got = st.read(slice(200, 204))
    assert sorted(got.frame.unique()) == [200, 201, 202, 203]
    st.read([201, 203])
    assert len(issued) == 2
    # plain SQL on the view uses the data table's primary key, too
    plain = [f"SELECT * FROM {st.sql_table} WHERE frame BETWEEN 200 AND 203",
             f"SELECT * FROM {st.sql_table} WHERE frame >= 200 AND frame < 204 ORDER BY frame"]
    with db.engine.connect() as conn:
        if db.dialect == "postgresql":
            conn.exec_driver_sql(f"ANALYZE {st.data_table}")
        elif db.dialect == "mariadb":
            conn.exec_driver_sql(f"ANALYZE TABLE {st.data_table}").all()
        for query in issued + plain:
            if db.dialect == "sqlite":
                plan = " ".join(str(r[-1]) for r in
                                conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query))
                assert "SEARCH" in plan and "PRIMARY KEY" in plan, (query, plan)
            elif db.dialect == "postgresql":
                plan = " ".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + query))
                assert "Index" in plan and "Seq Scan" not in plan, (query, plan)
            else:
                row = conn.exec_driver_sql("EXPLAIN " + query).mappings().one()
                assert row["key"] == "PRIMARY" and row["type"] == "range", (query, dict(row))


# ----------------------------------------------------------------- connections and pickling


def test_pickles_without_connections_and_masks_the_password(db):
    st = new_store(db)
    st.read_metadata()
    assert "_live_engine" in st.__dict__
    blob = pickle.dumps(st)
    assert len(blob) < 2000
    remote = pickle.loads(blob)
    assert not any(k.startswith("_live_") for k in remote.__dict__)
    remote.append_chunk(0, 10, fake_features(range(10), [1] * 10))
    # the stores of one process share one Engine per URL
    assert remote.engine() is st.engine() is db.store(table=st.table).engine()
    remote.close()  # disposes it; the others reconnect when needed
    assert len(st.read()) == 10
    password = sa.make_url(st.path).password
    if password:
        assert f":{password}@" not in st.url and ":***@" in st.url
        assert f":{password}@" not in repr(st)
    assert st.url.endswith("#" + st.table)


def _silent_server():
    """A TCP port that accepts connections and never says a word (a hung server)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []

    def accept():
        while True:
            try:
                held.append(srv.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return srv


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("dialect", ["postgresql", "mariadb"])
def test_unreachable_servers_fail_fast_with_the_password_masked(dialect):
    base = sa.make_url(_services.postgres_url() if dialect == "postgresql"
                       else _services.mysql_url())
    secret = "Sup3r-s3cret-pw"
    silent = _silent_server()
    try:
        cases = {
            "closed port": (base.set(port=_closed_port(), password=secret), ConnectionError,
                            "running"),
            "silent server": (base.set(port=silent.getsockname()[1], password=secret),
                              ConnectionError, "no answer"),
            "no such database": (base.set(database="no_such_db_xyz", password=secret),
                                 OSError, "no_such_db_xyz"),
        }
        if dialect == "mariadb":
            cases["wrong password"] = (base.set(password=secret), PermissionError, "password")
        else:  # CI's PostgreSQL trusts loopback logins: refuse a user that does not exist
            cases["unknown user"] = (base.set(username="nobody_xyz", password=secret),
                                     PermissionError, "user name")
        for why, (url, error, hint) in cases.items():
            text = url.render_as_string(hide_password=False)
            st = open_store(text, "a", connect_timeout=2)
            t0 = time.monotonic()
            with pytest.raises(error) as info:
                st.prepare()
            elapsed = time.monotonic() - t0
            message = str(info.value)
            assert elapsed < 8, (why, elapsed)
            assert secret not in message and secret not in repr(st), why
            assert url.render_as_string(hide_password=True) in message, why
            assert hint in message, (why, message)
            # readers get the same clear error, not "no store here"
            with pytest.raises(error):
                open_store(text, "r", connect_timeout=2)
            st.close()
    finally:
        silent.close()


@pytest.mark.services
def test_an_unreachable_server_fails_batch_before_computing(tmp_path):
    url = sa.make_url(_services.postgres_url()).set(port=_closed_port())
    arr = make_spots(n_frames=4, shape=(32, 32), n_particles=2)
    with pytest.raises(ConnectionError, match="cannot connect"):
        batch(as_video(arr), DIAMETER, store=url.render_as_string(hide_password=False),
              **PARAMS)


# ----------------------------------------------------------------- SQLite files


def test_sqlite_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    st = open_store("sqlite:///sub/dir/rel.db", "a")
    assert st.database_file == str(tmp_path / "sub" / "dir" / "rel.db")
    assert st.path == f"sqlite:///{tmp_path}/sub/dir/rel.db"  # workers elsewhere find it
    assert not st.exists() and st.read_metadata() is None and st.complete_chunks() == []
    assert not os.path.exists(st.database_file)  # reading never creates the file
    with pytest.raises(FileNotFoundError):
        open_store("sqlite:///sub/dir/rel.db", "r")
    st.prepare()  # makes the directories
    assert open(st.database_file, "rb").read(16) == b"SQLite format 3\x00"
    with sqlite3.connect(st.database_file) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    st.close()

    with pytest.raises(ValueError, match="in-memory"):
        open_store("sqlite://", "a")
    with pytest.raises(ValueError, match="in-memory"):
        open_store("sqlite:///:memory:", "a")

    (tmp_path / "notes.txt").write_text("not a database")
    other = open_store(f"sqlite:///{tmp_path / 'notes.txt'}", "a")
    with pytest.raises(ValueError, match="not an SQLite database"):
        other.prepare()
    with pytest.raises(ValueError, match="not an SQLite database"):
        other.exists()
    assert (tmp_path / "notes.txt").read_text() == "not a database"
    (tmp_path / "adir.db").mkdir()
    with pytest.raises(IsADirectoryError):
        open_store(f"sqlite:///{tmp_path / 'adir.db'}", "a").prepare()
    ro = open_store(f"sqlite:///file:{tmp_path / 'sub' / 'dir' / 'rel.db'}?mode=ro&uri=true", "a")
    with pytest.raises(PermissionError, match="cannot write"):
        ro.prepare()
    ro.close()


@pytest.mark.slow
def test_sqlite_file_alone_holds_everything_after_a_batch(tmp_path):
    """After the job, copying only the .db file (no -wal) copies every feature."""
    arr = make_spots(n_frames=16, shape=(64, 64), n_particles=5, seed=3)
    url = f"sqlite:///{tmp_path / 'f.db'}"
    proc = start_batch_process(tmp_path, arr, url, delay=0, chunks=4)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    os.makedirs(tmp_path / "copy")
    shutil.copy(tmp_path / "f.db", tmp_path / "copy" / "f.db")
    with sqlite3.connect(tmp_path / "copy" / "f.db") as raw:
        n = raw.execute("SELECT COUNT(*) FROM features").fetchone()[0]
    assert n == len(locate_stack(arr, DIAMETER, **PARAMS)) > 0


def test_urls_without_a_driver_use_the_installed_ones():
    assert SQLStore("postgresql://u:p@h/db").path.startswith("postgresql+psycopg://")
    assert SQLStore("postgres://u:p@h/db").path.startswith("postgresql+psycopg://")
    assert SQLStore("mysql://u:p@h/db").path.startswith("mysql+pymysql://")
    assert SQLStore("mariadb://u:p@h/db").path.startswith("mariadb+pymysql://")
    with pytest.raises(ValueError, match="storage_options"):
        SQLStore("sqlite:///x.db", storage_options={"key": "k"})


# ----------------------------------------------------------------- the conformance suite


class _SQLSuite(DasklocStoreTests):
    store_class = SQLStore
    capabilities = {"supports_remote": False, "lists_tables": True, "concurrent_writers": True,
                    "ordered_appends": False, "live_reads": True}


class TestSQLiteStore(_SQLSuite):
    """The package's store conformance suite on an SQLite file."""

    backend = "sqlite"


class TestPostgreSQLStore(_SQLSuite):
    """The package's store conformance suite on the test PostgreSQL server."""

    backend = "postgresql"


class TestMariaDBStore(_SQLSuite):
    """The package's store conformance suite on the test MariaDB server."""

    backend = "mariadb"
