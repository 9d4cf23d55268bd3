"""SQL feature store through SQLAlchemy Core: SQLite, PostgreSQL, MySQL/MariaDB.

A store is a database URL (``sqlite:///features.db``, ``postgresql+psycopg://user:pw@host/db``,
``mysql+pymysql://user:pw@host/db``) plus a table name; one database holds any number of
result sets (``table="bulk_water/features"``). Each result set is a view and two ordinary
tables that any SQL tool reads, plus one row in a registry table shared by all result
sets::

    daskloc_stores                      registry: one row per daskloc table name
        name       VARCHAR(255) PK      daskloc table name ("features", "bulk_water/features")
        sql_table  VARCHAR(64) UNIQUE   SQL name of its features ("bulk_water__features")
        metadata   TEXT                 the metadata document, JSON (LONGTEXT on MySQL)

    <sql_table>                         VIEW: the features as trackpy gives them, exactly
        y, x, mass, size, ecc,          its columns (the job's, daskloc.schema) and frame:
        signal, raw_mass, ep, frame     SELECT ... FROM <sql_table>_rows
                                        ORDER BY frame, feature

    <sql_table>_rows                    the rows behind it, one per feature
        y, x, mass, size, ecc,          the job's feature columns (2-D frames: these;
        signal, raw_mass, ep            3-D: z first; per-axis diameter: size_z, size_y,
                                        size_x, ep_z, ...): DOUBLE PRECISION (DOUBLE on
                                        MySQL/SQLite); NULL where daskloc has NaN
        frame      BIGINT NOT NULL      absolute frame number
        feature    INTEGER NOT NULL     0, 1, ... within the frame, in the locator's order
        PRIMARY KEY (frame, feature)    the frame index (clustered: SQLite WITHOUT ROWID,
                                        InnoDB)

    <sql_table>_chunks                  progress: one row per complete chunk
        start      BIGINT PK            first frame of the chunk
        stop       BIGINT NOT NULL      one past its last frame
        n_rows     BIGINT NOT NULL      number of features in it
        chunk_id   VARCHAR(32)          the chunk's identity (daskloc.metadata)
        skipped    TEXT                 JSON list of frames left out (on_error="skip")

    daskloc_leases                      the writers' leases: one row per table written now
        name       VARCHAR(255) PK      daskloc table name
        token      VARCHAR(64)          the holder's token
        holder     TEXT                 JSON: host, pid, started, heartbeat

The feature columns of ``<sql_table>_rows`` (and its view) are the job's, as its
metadata lists them (``"columns"``): they depend on the video's dims and the locate
parameters, and are fixed when the first metadata document is written (``prepare``
creates the registry row and the chunks table only). Another job's columns need the
table cleared (``overwrite=True``) first.

A chunk's rows and its row in ``<sql_table>_chunks`` commit in one transaction, so the
features never hold part of a chunk, and a writer killed mid-chunk leaves nothing.
Plain tools read the view as trackpy's table (columns ``y ... ep, frame``)::

    pd.read_sql_table("features", engine)
    pd.read_sql("SELECT * FROM features WHERE frame BETWEEN 100 AND 149", engine)

A ``WHERE`` on ``frame`` uses the data table's primary key through the view (checked
with EXPLAIN on SQLite, PostgreSQL and MariaDB). SQLite, PostgreSQL and MariaDB return
the view's rows in its order (frame, then the locator's order) when the query has no
ORDER BY of its own, but SQL does not promise it: write ``ORDER BY frame`` when the
order matters (the order within a frame is then the database's). daskloc itself reads
``<sql_table>_rows``, ordered by ``frame, feature``.

Stores created by earlier daskloc versions (before the view) have their rows, with
``feature``, in the table ``<sql_table>`` and no ``<sql_table>_rows``: they are read and
resumed in that layout; clearing or overwriting one creates the view. The layout is told by whether
``<sql_table>`` is a view or a table. The three names of a result set are reserved
together: another daskloc table whose SQL name would be one of them gets a hashed name.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import os
import random
import re
import threading
import time

import numpy as np
import pandas as pd

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql as _mysql
except ImportError as _exc:  # the [sql] extra: SQLStore.__init__ says what to install
    sa = _mysql = None
    _SQLALCHEMY_MISSING = _exc

from daskloc._extras import EXTRAS, missing_extra, require
from daskloc.metadata import ChunkMark, MetadataError, validate_metadata
from daskloc.schema import feature_columns
from daskloc.stores._lease import CasLeaseOps
from daskloc.stores.base import FeatureStore, check_chunk_features, write_error

__all__ = ["SQLStore", "sql_table_name"]

#: Registry table: daskloc table name -> SQL table name and metadata JSON.
REGISTRY_TABLE = "daskloc_stores"
#: daskloc table name (and SQL table) used when ``table`` is None.
DEFAULT_TABLE = "features"
#: Suffix of the progress table of a feature table.
CHUNKS_SUFFIX = "_chunks"
#: Suffix of the data table behind the ``<sql_table>`` view (the rows, ``feature`` column
#: and primary key); stores created before the view have their rows in ``<sql_table>``.
ROWS_SUFFIX = "_rows"
#: The feature columns of a features table whose metadata lists none (all DOUBLE,
#: nullable), in table order: the schema's 2-D columns (daskloc.schema). A table made
#: from a metadata document has the document's columns (the job's: z, per-axis ...).
FLOAT_COLUMNS = feature_columns()
#: Columns of the data table that are not feature columns.
_ROW_KEYS = ("frame", "feature")
#: Stand-in for +/-infinity on MySQL/MariaDB, which store neither NaN nor infinities.
MYSQL_INF = np.finfo(np.float64).max

_MAX_NAME = 255  # registry name column
_MAX_SQL_NAME = 50  # leaves room for "_chunks", "_rows" within PostgreSQL's 63, MySQL's 64
_MAX_RUNS = 32  # frame runs put in one WHERE clause; beyond, one range + filtering
_MAX_IN = 1000  # frames put in one IN (...); beyond, filtering after the range read
_RETRIES = 6

#: The writers' leases (see daskloc.stores._lease), one row per table being written.
LEASE_TABLE = "daskloc_leases"

if sa is not None:
    _registry_md = sa.MetaData()
    _registry = sa.Table(
        REGISTRY_TABLE,
        _registry_md,
        sa.Column("name", sa.String(_MAX_NAME), primary_key=True),
        sa.Column("sql_table", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "metadata",
            sa.Text().with_variant(_mysql.LONGTEXT(), "mysql", "mariadb"),
            key="meta",
            nullable=True,
        ),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",  # table names are case-sensitive, as everywhere else
    )
    _lease_md = sa.MetaData()
    _leases = sa.Table(
        LEASE_TABLE,
        _lease_md,
        sa.Column("name", sa.String(_MAX_NAME), primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def _float_columns(columns):
    """The feature columns of a data table for a metadata document's ``columns`` (a dict
    of names to dtypes, ``frame`` included) in their order; :data:`FLOAT_COLUMNS` when
    it lists none."""
    names = tuple(c for c in (columns or ()) if c not in _ROW_KEYS)
    return names or FLOAT_COLUMNS


def _schema(sql_table, columns=FLOAT_COLUMNS, ids=True, legacy=False):
    """The data table and the chunks table (SQLAlchemy Core) of one SQL name.

    The data table is ``<sql_table>_rows`` (behind the view ``<sql_table>``), or, for a
    store created before the view (``legacy=True``), ``<sql_table>`` itself; its feature
    columns are ``columns`` (DOUBLE, in this order) and ``frame``, ``feature``.
    ``ids=False``: the chunks table as written before chunk identities (no
    ``chunk_id`` and ``skipped`` columns)."""
    md = sa.MetaData()
    features = sa.Table(
        sql_table if legacy else sql_table + ROWS_SUFFIX,
        md,
        *[sa.Column(c, sa.Double()) for c in columns],
        sa.Column("frame", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("feature", sa.Integer(), nullable=False, autoincrement=False),
        sa.PrimaryKeyConstraint("frame", "feature"),
        sqlite_with_rowid=False,
    )
    chunks = sa.Table(
        sql_table + CHUNKS_SUFFIX,
        md,
        sa.Column("start", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("stop", sa.BigInteger(), nullable=False),
        sa.Column("n_rows", sa.BigInteger(), nullable=False),
        *([sa.Column("chunk_id", sa.String(32), nullable=True),
           sa.Column("skipped", sa.Text(), nullable=True)] if ids else []),
    )
    return features, chunks


def _names_of(sql_table):
    """Every SQL name a store of this SQL name may use (view or legacy table, data
    table, chunks table)."""
    return (sql_table, sql_table + ROWS_SUFFIX, sql_table + CHUNKS_SUFFIX)


def _create_view_ddl(dialect, sql_table, features):
    """``CREATE VIEW <sql_table> AS SELECT <feature columns>, frame FROM <data table>
    ORDER BY frame, feature``: trackpy's columns and ``frame``, in the data table's order.

    Only identifiers daskloc made (:func:`sql_table_name`, its fixed column names) go in,
    each quoted by the dialect (the SELECT is compiled by SQLAlchemy; it binds nothing).
    ``CREATE VIEW`` is spelled out rather than ``sqlalchemy.schema.CreateView``, which
    SQLAlchemy 2.0 does not have."""
    floats = [c for c in features.c if c.name not in _ROW_KEYS]
    select = (sa.select(*floats, features.c.frame)
              .order_by(features.c.frame, features.c.feature))
    compiled = select.compile(dialect=dialect)
    if compiled.params:
        raise AssertionError("the view's SELECT binds no values")
    return f"CREATE VIEW {dialect.identifier_preparer.quote(sql_table)} AS {compiled}"


def _short_hash(text):
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]


def sql_table_name(table):
    """The SQL table name a daskloc table name maps to (before collision handling).

    Parameters
    ----------
    table : str
        A daskloc table name, e.g. ``"bulk_water/features"``.

    Returns
    -------
    str
        Lower case, ``/`` as ``__``, other characters than letters, digits and ``_`` as
        ``_``, prefixed with ``t_`` if it would start with a digit, and shortened with a
        hash when longer than 50 characters, with ``_t`` appended to an SQL reserved word
        (``"values"`` -> ``"values_t"``): ``"bulk_water__features"``. Usable unquoted in
        PostgreSQL, MySQL and SQLite.
    """
    s = table.lower().replace("/", "__")
    s = re.sub(r"[^a-z0-9_]", "_", s)
    if not s or s[0].isdigit():
        s = "t_" + s
    if len(s) > _MAX_SQL_NAME:
        s = s[: _MAX_SQL_NAME - 9] + "_" + _short_hash(table)
    if s in _reserved_words():
        s += "_t"
    return s


_RESERVED = None


def _reserved_words():
    """SQL words reserved by SQLite, PostgreSQL or MySQL (names that need quoting)."""
    global _RESERVED
    if _RESERVED is None:
        from sqlalchemy.dialects import postgresql, sqlite

        words = set()
        for dialect in (sqlite.dialect(), postgresql.dialect(), _mysql.dialect()):
            words |= {w.lower() for w in dialect.identifier_preparer.reserved_words}
        _RESERVED = frozenset(words)
    return _RESERVED


# ----------------------------------------------------------------- engines (one per process)

_ENGINES = {}
_ENGINES_LOCK = threading.Lock()


def _sqlite_connect_events(engine, lock_timeout):
    ms = int(lock_timeout * 1000)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, record):
        # pysqlite's own transaction handling is off; the "begin" listener emits BEGIN,
        # so reads get a snapshot and writes take the write lock up front (IMMEDIATE):
        # a deferred transaction upgrading to a writer could fail with SQLITE_BUSY
        # without waiting.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {ms}")
            cur.execute("PRAGMA schema_version").fetchall()  # "file is not a database" now
        finally:
            cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(conn.get_execution_options().get("daskloc_begin", "BEGIN"))


def _pymysql_bounded_handshake(engine, connect_timeout):
    """pymysql bounds the TCP connect by ``connect_timeout`` but waits for the server's
    greeting with ``read_timeout`` (default: forever): bound the whole login, then restore
    the timeouts the URL asked for (none by default) for queries."""

    @sa.event.listens_for(engine, "do_connect")
    def _do_connect(dialect, record, cargs, cparams):
        read = cparams.pop("read_timeout", None)
        write = cparams.pop("write_timeout", None)
        conn = dialect.loaded_dbapi.connect(
            *cargs, **cparams, read_timeout=connect_timeout, write_timeout=connect_timeout
        )
        if hasattr(conn, "_read_timeout") and hasattr(conn, "_write_timeout"):
            conn._read_timeout = read
            conn._write_timeout = write
        return conn


def _create_engine(url, connect_timeout, lock_timeout):
    u = sa.make_url(url)
    backend, driver = u.get_backend_name(), u.get_driver_name()
    query = set(u.query)
    args = {}
    kw = {}
    if backend == "sqlite":
        args = {"timeout": float(lock_timeout), "check_same_thread": False}
    elif backend == "postgresql":
        kw["pool_pre_ping"] = True
        if driver in ("psycopg", "psycopg2") and "connect_timeout" not in query:
            # libpq counts whole seconds and at least 2
            args["connect_timeout"] = max(2, math.ceil(connect_timeout))
        if driver in ("psycopg", "psycopg2"):
            if "application_name" not in query:
                args["application_name"] = "daskloc"
            if "options" not in query:
                args["options"] = f"-c lock_timeout={int(lock_timeout * 1000)}"
    elif backend in ("mysql", "mariadb"):
        kw["pool_pre_ping"] = True
        kw["pool_recycle"] = 3600
        # No gap locks: concurrent appends of neighbouring chunks do not deadlock.
        kw["isolation_level"] = "READ COMMITTED"
        if "connect_timeout" not in query:
            args["connect_timeout"] = max(1, math.ceil(connect_timeout))
        if driver == "pymysql" and "init_command" not in query:
            t = max(1, math.ceil(lock_timeout))
            args["init_command"] = (
                f"SET SESSION lock_wait_timeout = {t}, innodb_lock_wait_timeout = {t}"
            )
    # Threads beyond the pool's connections queue for one as long as for a lock.
    kw["pool_timeout"] = max(30.0, float(lock_timeout))
    if driver in EXTRAS:  # psycopg, pymysql: the [postgresql] and [mysql] extras
        require(driver)
    engine = sa.create_engine(u, connect_args=args, **kw)
    if backend == "sqlite":
        _sqlite_connect_events(engine, lock_timeout)
    elif backend in ("mysql", "mariadb") and driver == "pymysql" and "read_timeout" not in query:
        _pymysql_bounded_handshake(engine, connect_timeout)
    return engine


def _shared_engine(url, connect_timeout, lock_timeout):
    key = (os.getpid(), url, connect_timeout, lock_timeout)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            # Engines inherited through fork belong to the parent: drop, never close.
            for k in [k for k in _ENGINES if k[0] != os.getpid()]:
                _ENGINES.pop(k).dispose(close=False)
            engine = _ENGINES[key] = _create_engine(url, connect_timeout, lock_timeout)
    return engine


@atexit.register
def _dispose_engines():
    """Close this process's connections at exit (SQLite then folds its WAL file back)."""
    with _ENGINES_LOCK:
        for key in list(_ENGINES):
            engine = _ENGINES.pop(key)
            if key[0] == os.getpid():
                engine.dispose()


# ----------------------------------------------------------------- driver errors


def _driver_error(exc):
    return getattr(exc, "orig", None) or exc


def _error_codes(exc):
    """The SQLSTATE and the driver's error number of a DBAPI error (those present)."""
    orig = _driver_error(exc)
    codes = set()
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if sqlstate:
        codes.add(sqlstate)
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        codes.add(args[0])
    return codes


def _is_missing_table(exc):
    """The statement failed because a table does not exist (yet, or any more)."""
    if _error_codes(exc) & {"42P01", 1146}:
        return True
    return "no such table" in str(_driver_error(exc)).lower()


def _is_transient(exc):
    """Worth retrying the whole transaction: lost a race with another writer."""
    if isinstance(exc, sa.exc.IntegrityError):
        return True  # two writers inserted the same chunk (or registry row) at once
    codes = _error_codes(exc)
    if codes & {"40P01", "40001", 1213}:  # deadlock, serialization failure
        return True
    if codes & {"42P07", 1050}:  # two processes created the same table at once
        return True
    text = str(_driver_error(exc)).lower()
    return "database is locked" in text or "database table is locked" in text


# ----------------------------------------------------------------- the store


class SQLStore(FeatureStore):
    """Features in an SQL database (SQLite, PostgreSQL, MySQL/MariaDB) via SQLAlchemy Core.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///features.db`` (relative paths are made absolute),
        ``postgresql+psycopg://user:password@host:port/database``,
        ``mysql+pymysql://user:password@host:port/database``. Without a driver,
        ``postgresql://`` uses psycopg and ``mysql://``/``mariadb://`` use pymysql.
    table : str, optional
        daskloc table name (default ``"features"``); ``"bulk_water/features"`` is stored
        in the SQL table ``bulk_water__features`` (see :func:`sql_table_name`).
    storage_options : None
        Not used (object-storage options); must be None.
    connect_timeout : float, default 10
        Seconds to wait for a database server to accept a login (TCP connect and
        handshake); a server that does not answer gives :class:`ConnectionError`.
    lock_timeout : float, default 60
        Seconds a statement waits for a lock held by another connection before failing:
        SQLite's busy timeout, PostgreSQL's ``lock_timeout``, MySQL's
        ``innodb_lock_wait_timeout`` and ``lock_wait_timeout``.

    Raises
    ------
    ValueError
        A URL SQLAlchemy cannot parse, an in-memory SQLite database (each connection
        would see its own empty database), ``storage_options``, or a table name longer
        than 255 characters.

    Notes
    -----
    **Schema.** ``daskloc_stores (name PK, sql_table UNIQUE, metadata TEXT)`` maps daskloc
    table names to SQL names and holds each one's metadata as JSON (never pickle;
    LONGTEXT on MySQL). A result set is the view ``<sql_table>`` of exactly trackpy's
    columns and ``frame`` (``y, x, mass, size, ecc, signal, raw_mass, ep, frame``), over
    the table ``<sql_table>_rows (y ... ep DOUBLE; frame BIGINT; feature INTEGER; PRIMARY
    KEY (frame, feature))``, where ``feature`` numbers the features of a frame in the
    locator's order, and ``<sql_table>_chunks (start BIGINT PK, stop BIGINT, n_rows
    BIGINT, chunk_id, skipped)``. The primary key is the frame index: ``WHERE frame >= 100
    AND frame < 150`` (or ``BETWEEN``) on the view reads only those rows.
    ``SELECT *`` and ``pd.read_sql_table`` on ``<sql_table>`` return trackpy's columns and
    ``frame``, in frame order on SQLite, PostgreSQL and MariaDB (``ORDER BY frame`` to be
    sure). Stores created before the view keep their rows, with ``feature``, in the
    table ``<sql_table>`` until cleared or overwritten. On MySQL ``signal`` is a reserved
    word: write it `` `signal` `` in hand-written SQL. On MySQL/MariaDB the view runs
    with its creator's rights (``SQL SECURITY DEFINER``, the default).

    **NaN and infinities.** NaN (e.g. ``ep`` where it is undefined) is stored as NULL on
    every database (SQLite and MySQL cannot store NaN; NULL also keeps ``AVG(ep)``
    meaningful in PostgreSQL) and read back as NaN. MySQL/MariaDB cannot store
    infinities either: there ``+/-inf`` are stored as ``+/-1.7976931348623157e308``
    (the largest double) and read back as infinities.

    **Transactions.** :meth:`append_chunk` runs in one transaction: delete any rows and
    progress row of that frame range (a chunk written again replaces the old one),
    insert the rows (PostgreSQL: binary ``COPY``; others: one ``executemany``), insert
    the progress row, commit. A reader therefore sees all of a chunk or nothing, and a
    writer killed mid-chunk leaves nothing (the database rolls the transaction back).
    Reads also only return rows inside the frame ranges of ``<sql_table>_chunks``.
    Transactions that lose a race with another writer (deadlock, duplicate key from a
    chunk written twice at once, SQLite busy) are retried.

    **Concurrency.** Any number of processes may append at once
    (``concurrent_writers`` is True for every dialect) and read while others write:

    - PostgreSQL and MySQL/MariaDB take concurrent transactions; MySQL sessions use
      READ COMMITTED, so appends of neighbouring frame ranges take no gap locks and
      do not deadlock.
    - SQLite runs in WAL mode: readers never block the writer nor wait for it. Writers
      take the database's single write lock at the start of their transaction
      (``BEGIN IMMEDIATE``) and wait for it up to ``lock_timeout``; a chunk's transaction
      lasts milliseconds, so Dask workers in several processes on one machine just
      queue. WAL needs every process on the same machine: keep an SQLite store on a
      local disk and use PostgreSQL or MariaDB for workers on several hosts.
      (A single writer on the client, ``concurrent_writers = False``, would not make
      several hosts safe, since their Dask workers also read the file when
      :func:`daskloc.batch` returns its result; it would only ship every chunk's
      features to the client and give SQLite other replace semantics than the
      servers.)

    Stores pickle to their URL (with password: a worker must log in), table and
    options; each process creates its own Engine on first use, shared by the stores of
    that process with the same URL. :attr:`url` and ``repr`` mask the password.
    """

    backend = "sql"
    #: Use the drivers' bulk paths (psycopg COPY and binary reads, pysqlite/pymysql
    #: executemany); False runs plain SQLAlchemy Core statements (any driver).
    fast_paths = True
    format_name = "SQL"
    url_schemes = ("sqlite", "postgresql", "postgres", "mysql", "mariadb")
    url_description = "an SQLAlchemy URL"
    url_examples = ("sqlite:///features.db", "postgresql+psycopg://...", "mysql+pymysql://...")
    lists_tables = True
    concurrent_writers = True
    ordered_appends = False
    live_reads = True

    def __init__(self, url, *, table=None, storage_options=None, connect_timeout=10,
                 lock_timeout=60):
        if storage_options:
            raise ValueError(
                "storage_options are for object storage (s3://...); an SQL store takes "
                "everything from its URL"
            )
        if sa is None:
            raise missing_extra("sqlalchemy", _SQLALCHEMY_MISSING)
        url = os.fspath(url)
        try:
            u = sa.make_url(url)
        except sa.exc.ArgumentError as e:
            raise ValueError(f"not a database URL: {e}") from None
        backend, _, driver = u.drivername.partition("+")
        if backend == "postgres":
            backend = "postgresql"  # the name SQLAlchemy dropped in 1.4
        if not driver and backend == "postgresql":
            driver = "psycopg"  # not psycopg2, SQLAlchemy's default
        elif not driver and backend in ("mysql", "mariadb"):
            driver = "pymysql"  # not mysqlclient, SQLAlchemy's default
        u = u.set(drivername=f"{backend}+{driver}" if driver else backend)
        self.database_file = None
        if backend == "sqlite":
            db = u.database
            if not db or db == ":memory:" or "mode=memory" in db:
                raise ValueError(
                    f"an in-memory SQLite database ({url!r}) cannot hold a feature store: "
                    "every connection and worker would see its own empty database; use a "
                    "file, e.g. sqlite:///features.db"
                )
            uri = str(u.query.get("uri", "")).lower() in ("true", "1")
            if uri:
                path = db[len("file:"):] if db.startswith("file:") else db
                self.database_file = os.path.abspath(path.split("?", 1)[0])
            else:
                self.database_file = os.path.abspath(os.path.expanduser(db))
                u = u.set(database=self.database_file)
        super().__init__(u.render_as_string(hide_password=False), table=table)
        if self.table is not None and len(self.table) > _MAX_NAME:
            raise ValueError(f"table name is longer than {_MAX_NAME} characters: {self.table!r}")
        #: str: ``"sqlite"``, ``"postgresql"``, ``"mysql"`` or ``"mariadb"``.
        self.dialect = backend
        self.connect_timeout = float(connect_timeout)
        self.lock_timeout = float(lock_timeout)

    # -- naming ----------------------------------------------------------------
    @property
    def name(self):
        """str: The daskloc table name (``"features"`` when ``table`` is None)."""
        return self.table if self.table is not None else DEFAULT_TABLE

    @property
    def store_path(self):
        """str: The SQLite file, or the database URL (password included)."""
        return self.database_file or self.path

    @property
    def masked_url(self):
        """str: The database URL with the password replaced by ``***``."""
        return sa.make_url(self.path).render_as_string(hide_password=True)

    @property
    def url(self):
        """str: The masked database URL, with ``#table`` when a table was named."""
        return self.masked_url if self.table is None else f"{self.masked_url}#{self.table}"

    def __repr__(self):
        table = "" if self.table is None else f", table={self.table!r}"
        return f"{type(self).__name__}({self.masked_url!r}{table})"

    def _mysql(self):
        return self.dialect in ("mysql", "mariadb")

    # -- connections -----------------------------------------------------------
    def _engine(self):
        engine = self.__dict__.get("_live_engine")
        if engine is None:
            engine = _shared_engine(self.path, self.connect_timeout, self.lock_timeout)
            self._live_engine = engine
        return engine

    def engine(self):
        """The SQLAlchemy Engine of this process for the store's database.

        Returns
        -------
        sqlalchemy.engine.Engine
            For plain SQL: ``pd.read_sql("SELECT * FROM features", store.engine())``.
        """
        return self._engine()

    def close(self):
        """Release this process's connections to the database (re-opened when needed)."""
        engine = self.__dict__.pop("_live_engine", None)
        for name in [k for k in self.__dict__ if k.startswith("_live_")]:
            del self.__dict__[name]
        if engine is not None:
            with _ENGINES_LOCK:
                for key in [k for k, v in _ENGINES.items() if v is engine]:
                    del _ENGINES[key]
            engine.dispose()

    def _file_missing(self):
        """SQLite: the database file does not exist (readers must not create it)."""
        return self.database_file is not None and not os.path.exists(self.database_file)

    @contextlib.contextmanager
    def _connect(self, write=False):
        """A connection; ``write`` transactions take SQLite's write lock when they begin."""
        engine = self._engine()
        try:
            conn = engine.connect()
        except Exception as exc:  # noqa: BLE001 - DBAPI errors of any driver
            raise self._connection_error(exc) from exc
        try:
            if write and self.dialect == "sqlite":
                if not self.__dict__.get("_live_wal"):
                    self._sqlite_wal(conn)
                    self._live_wal = True
                conn.execution_options(daskloc_begin="BEGIN IMMEDIATE")
            yield conn
        finally:
            conn.close()

    def _scrub(self, text):
        password = sa.make_url(self.path).password
        if password and len(str(password)) >= 3:
            text = text.replace(str(password), "***")
        return text

    def _connection_error(self, exc):
        """Turn a failed login/open into an error naming the masked URL and the fix."""
        orig = _driver_error(exc)
        msg = self._scrub(" ".join(str(orig).split()))
        low = msg.lower()
        where = self.masked_url
        if self.dialect == "sqlite":
            if "not a database" in low or "encrypted" in low:
                return ValueError(
                    f"{self.database_file} is not an SQLite database ({msg}); point the "
                    "sqlite:/// URL to another file"
                )
            if "readonly" in low or "permission" in low or "unable to open" in low:
                return PermissionError(
                    f"cannot open the SQLite database {self.database_file} ({msg}); check "
                    "that its directory exists and is writable, or choose another path"
                )
            return OSError(f"cannot open the SQLite database {self.database_file}: {msg}")
        u = sa.make_url(self.path)
        server = f"{u.host or 'localhost'}:{u.port or 'default port'}"
        if any(s in low for s in ("password authentication failed", "access denied",
                                  "authentication failed", "no password supplied",
                                  "pg_hba.conf")) or ("role" in low and "does not exist" in low):
            return PermissionError(
                f"cannot log in to {where}: {msg}; check the user name and password in the "
                "URL and that this user may connect to that database"
            )
        if ("database" in low and "does not exist" in low) or "unknown database" in low:
            return ConnectionError(
                f"the database server at {server} has no database {u.database!r} "
                f"({where}): {msg}; create it (CREATE DATABASE {u.database}) or fix the URL"
            )
        if "timeout" in low or "timed out" in low:
            return ConnectionError(
                f"no answer from the database server at {server} within "
                f"{self.connect_timeout:g} s ({where}): {msg}; check the host and port, that "
                "the server is running, and that no firewall drops the connection "
                "(connect_timeout= waits longer)"
            )
        return ConnectionError(
            f"cannot connect to the database server at {server} ({where}): {msg}; check "
            "that the server is running and listening there and that the URL is right"
        )

    def _retrying(self, work):
        """Run ``work()`` (one whole transaction), retrying lost races with other writers."""
        for attempt in range(_RETRIES):
            try:
                return work()
            except sa.exc.DBAPIError as exc:
                if attempt == _RETRIES - 1 or not _is_transient(exc):
                    raise
            time.sleep(0.02 * 2**attempt * (0.5 + random.random()))
        raise AssertionError("unreachable")

    # -- names and schema --------------------------------------------------------
    def _lookup(self, conn):
        """The SQL table of this store from the registry, or None if not registered."""
        cached = self.__dict__.get("_live_sql_table")
        if cached is not None:
            return cached
        try:
            sql_table = conn.execute(
                sa.select(_registry.c.sql_table).where(_registry.c.name == self.name)
            ).scalar()
        except sa.exc.DBAPIError as exc:
            if _is_missing_table(exc):
                return None
            raise
        if sql_table is not None:
            self._live_sql_table = sql_table
        return sql_table

    def _forget(self):
        self.__dict__.pop("_live_sql_table", None)
        self.__dict__.pop("_live_has_ids", None)
        self.__dict__.pop("_live_legacy", None)
        self.__dict__.pop("_live_columns", None)

    @staticmethod
    def _existing_names(conn):
        """Lower-case names of the database's tables and views."""
        insp = sa.inspect(conn)
        return {t.lower() for t in insp.get_table_names() + insp.get_view_names()}

    def _claimed(self, conn, others_only=False):
        """The SQL names the registered stores may use (``others_only``: all but this
        one's), with the registry and lease tables."""
        stmt = sa.select(_registry.c.sql_table)
        if others_only:
            stmt = stmt.where(_registry.c.name != self.name)
        claimed = {REGISTRY_TABLE, LEASE_TABLE}
        for t in conn.execute(stmt).scalars():
            claimed.update(_names_of(t))
        return claimed

    def _layout(self, conn, sql_table):
        """``"view"``: ``<sql_table>`` is the view over ``<sql_table>_rows``; ``"table"``:
        a store created before the view, its rows in ``<sql_table>``; None: neither
        exists (not created yet, or being created or dropped: the view's layout)."""
        insp = sa.inspect(conn)
        if sql_table in {v.lower() for v in insp.get_view_names()}:
            return "view"
        if insp.has_table(sql_table):
            return "table"
        return None

    def _is_legacy(self, conn, sql_table):
        """Whether this store keeps its rows in ``<sql_table>`` (created before the view);
        a store keeps the layout it was created with."""
        cached = self.__dict__.get("_live_legacy")
        if cached is not None:
            return cached
        layout = self._layout(conn, sql_table)
        if layout is not None:
            self._live_legacy = layout == "table"
        return layout == "table"

    def _table_columns(self, conn, sql_table):
        """The feature columns of this store's data table (its order), or None if it
        has none yet (registered by ``prepare``, no metadata written); looked up once."""
        cached = self.__dict__.get("_live_columns")
        if cached is not None:
            return cached
        legacy = self._is_legacy(conn, sql_table)
        name = sql_table if legacy else sql_table + ROWS_SUFFIX
        try:
            found = sa.inspect(conn).get_columns(name)
        except sa.exc.NoSuchTableError:
            return None
        if not found:  # some dialects give [] for a missing table
            return None
        self._live_columns = tuple(c["name"] for c in found if c["name"] not in _ROW_KEYS)
        return self._live_columns

    def _tables(self, conn, ids=True):
        """This store's (data table, chunks table), or None if it is not registered."""
        sql_table = self._lookup(conn)
        if sql_table is None:
            return None
        return _schema(sql_table, self._table_columns(conn, sql_table) or (), ids=ids,
                       legacy=self._is_legacy(conn, sql_table))

    def _choose_sql_table(self, conn):
        """A free SQL name for this store; ValueError if a foreign table holds it."""
        existing = self._existing_names(conn)
        ours_all = self._claimed(conn)
        base = sql_table_name(self.name)
        for candidate in (base, f"{base[:_MAX_SQL_NAME - 9]}_{_short_hash(self.name)}"):
            names = _names_of(candidate)
            foreign = [n for n in names if n in existing and n not in ours_all]
            if foreign:
                raise ValueError(
                    f"the database {self.masked_url} already has a table {foreign[0]!r} "
                    f"that daskloc did not create; daskloc table {self.name!r} would use "
                    "that name: choose another table name (table=..., CLI: --out "
                    "URL#name); nothing was written"
                )
            if not any(n in ours_all for n in names):
                return candidate
        raise ValueError(
            f"no free SQL table name for daskloc table {self.name!r} in {self.masked_url} "
            f"({base!r} is taken); choose another table name"
        )

    def _ensure_schema(self, conn, columns=None):
        """Create the registry, claim this store's SQL name, create its tables and view.

        Runs inside the caller's (write) transaction; returns the SQL table name. A store
        created before the view keeps its layout (rows in ``<sql_table>``, no view);
        otherwise the chunks table, and with ``columns`` (the feature columns, from the
        metadata) the data table then the view, are created, each only if missing: on
        MySQL, where every DDL statement commits, a reader sees the view only once its
        data table exists, and a writer racing this one either finds them or fails with
        "already exists" and retries (:meth:`_retrying`). Without ``columns`` (``prepare``,
        before the job's metadata) the data table waits for them.
        """
        _registry.create(conn, checkfirst=True)
        sql_table = conn.execute(
            sa.select(_registry.c.sql_table).where(_registry.c.name == self.name)
        ).scalar()
        if sql_table is None:
            sql_table = self._choose_sql_table(conn)
            conn.execute(_registry.insert().values(name=self.name, sql_table=sql_table,
                                                   meta=None))
        else:  # a write: proves the database takes this user's writes
            conn.execute(_registry.update().where(_registry.c.name == self.name)
                         .values(sql_table=sql_table))
        self.__dict__.pop("_live_legacy", None)
        self.__dict__.pop("_live_columns", None)
        layout = self._layout(conn, sql_table)
        features, chunks = _schema(sql_table, tuple(columns or ()), legacy=layout == "table")
        chunks.create(conn, checkfirst=True)
        if columns is None or layout is not None:
            self._live_sql_table = sql_table
            self._live_legacy = layout == "table"
            return sql_table
        if features.name in self._claimed(conn, others_only=True):
            # registered before the view, its tables dropped since (an interrupted
            # clear): another store's legacy table has the name of our data table
            raise ValueError(
                f"{self.masked_url}: daskloc table {self.name!r} has no tables left and "
                f"its data table {features.name!r} would be another daskloc table's; "
                "clear it (overwrite=True, CLI: --overwrite) or choose another table "
                "name; nothing was written")
        features.create(conn, checkfirst=True)
        conn.exec_driver_sql(_create_view_ddl(conn.dialect, sql_table, features))
        self._live_sql_table = sql_table
        self._live_legacy = False
        return sql_table

    def _table_for_write(self, columns):
        """The SQL table name, creating the store's tables if it is not registered yet
        or has no data table yet (then with the feature ``columns``).

        Looked up in its own short transaction: a failed statement (no registry yet)
        would abort the caller's transaction on PostgreSQL.
        """
        with self._connect() as conn:
            sql_table = self._lookup(conn)
            if sql_table is not None and self._table_columns(conn, sql_table) is not None:
                return sql_table

        def work():
            with self._connect(write=True) as conn:
                with conn.begin():
                    return self._ensure_schema(conn, tuple(columns))

        return self._retrying(work)

    @property
    def sql_table(self):
        """str or None: The SQL name plain tools read (None if not created yet): the view
        of trackpy's columns and ``frame`` (a table with also ``feature`` in stores
        created before the view)."""
        if self._file_missing():
            return None
        with self._connect() as conn:
            return self._lookup(conn)

    @property
    def data_table(self):
        """str or None: The SQL name of the table holding the rows (with ``feature`` and
        the primary key): ``<sql_table>_rows``, or ``<sql_table>`` in stores created
        before the view; None if not created yet."""
        if self._file_missing():
            return None
        with self._connect() as conn:
            tables = self._tables(conn)
        return None if tables is None else tables[0].name

    # -- lifecycle ---------------------------------------------------------------
    def exists(self):
        """True if this daskloc table has metadata in the database.

        Raises
        ------
        ConnectionError, PermissionError
            The database server cannot be reached or refuses the login.
        """
        return self.read_metadata() is not None

    def location_exists(self):
        """True if the database exists: SQLite: the file; servers: a login succeeds.

        Raises
        ------
        ConnectionError, PermissionError
            The database server cannot be reached or refuses the login.
        """
        if self.database_file is not None:
            return os.path.exists(self.database_file)
        with self._connect() as conn:
            conn.exec_driver_sql("SELECT 1").scalar()
        return True

    def list_tables(self):
        """daskloc tables of the database: the registry's names that have metadata.

        Returns
        -------
        list of str
            Sorted daskloc table names (``"video=a"``, ``"bulk_water/features"``), not
            SQL names; the default table (``"features"``, ``table=None``) is not listed.

        Raises
        ------
        ConnectionError, PermissionError
            The database server cannot be reached or refuses the login.
        """
        if self._file_missing():
            return []
        with self._connect() as conn:
            try:
                names = conn.execute(
                    sa.select(_registry.c.name).where(_registry.c.meta.is_not(None))
                ).scalars().all()
            except sa.exc.DBAPIError as exc:
                if _is_missing_table(exc):
                    return []
                raise
        return sorted(n for n in names if n != DEFAULT_TABLE)

    def _prepare_sqlite_file(self):
        path = self.database_file
        if os.path.isdir(path):
            raise IsADirectoryError(
                f"cannot write the SQLite database {path}: it is a directory; point the "
                "sqlite:/// URL to a file (e.g. sqlite:///features.db)"
            )
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, "rb") as f:
                head = f.read(16)
            if head != b"SQLite format 3\x00":
                raise ValueError(
                    f"{path} exists and is not an SQLite database; refusing to write into "
                    "it: point the sqlite:/// URL to another file"
                )
        parent = os.path.dirname(path)
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError as e:
            raise write_error(
                e,
                f"cannot create the directory {parent} for the SQLite database {path} "
                f"({e.strerror}); choose a writable path",
            ) from e

    def prepare(self):
        """Create the tables if needed and check that the database takes writes.

        Raises
        ------
        ConnectionError
            The server cannot be reached within ``connect_timeout`` or has no such
            database (the message has the URL, password masked, and the fix).
        PermissionError
            Wrong user/password, no right to create tables or write, a read-only SQLite
            file or directory.
        ValueError
            An SQLite path that is not an SQLite database, or the SQL table name this
            store maps to belongs to a table daskloc did not create (nothing is
            written).
        """
        if self.database_file is not None:
            self._prepare_sqlite_file()

        def work():
            with self._connect(write=True) as conn:
                with conn.begin():
                    self._ensure_schema(conn)

        try:
            self._retrying(work)
        except sa.exc.DBAPIError as exc:
            raise self._write_error(exc) from exc

    def _sqlite_wal(self, conn):
        """Switch the database to WAL mode (persistent; outside any transaction)."""
        raw = conn.connection.dbapi_connection
        mode = raw.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            raw.execute("PRAGMA journal_mode = WAL").fetchall()

    def _write_error(self, exc):
        msg = self._scrub(" ".join(str(_driver_error(exc)).split()))
        low = msg.lower()
        if any(s in low for s in ("permission denied", "command denied", "readonly",
                                  "read-only", "read only")):
            where = self.database_file or self.masked_url
            return PermissionError(
                f"cannot write the feature store {self.name!r} in {where}: {msg}; use a "
                "user with rights to create tables and write (or a writable file), or "
                "choose another database"
            )
        return exc

    def clear(self):
        """Drop this store's tables and registry row; other tables are never touched.

        Raises
        ------
        ValueError
            No daskloc store of this name exists but a table daskloc did not create has
            its SQL name: nothing is removed.
        """
        sql_table = self._clear_target()
        if sql_table is None:
            return
        self._drop(sql_table)

    def _clear_target(self):
        """The SQL table :meth:`clear` drops, or None; raises for a foreign table."""
        if self._file_missing():
            return None
        self._forget()
        with self._connect() as conn:
            sql_table = self._lookup(conn)
        if sql_table is None:
            with self._connect() as conn:
                existing = self._existing_names(conn)
                ours = set()
                if REGISTRY_TABLE in existing:
                    ours = set(conn.execute(sa.select(_registry.c.sql_table)).scalars())
            base = sql_table_name(self.name)
            if base in existing and base not in ours:
                raise ValueError(
                    f"{self.masked_url} has a table {base!r} but no daskloc store "
                    f"{self.name!r}: it is not daskloc's, so nothing was removed"
                )
            return None
        return sql_table

    def check_clear(self):
        self._clear_target()

    def _lease_ops(self):
        return _SQLLeaseOps(self)

    def _drop(self, sql_table):
        """Drop the view, the chunks and data tables of this store, then its registry row.

        Only names of this store: a data table ``<sql_table>_rows`` that is another
        daskloc table's (registered before the view) is left alone. The view goes
        before the data table (PostgreSQL refuses to drop a table a view reads; on
        MySQL, where each DDL statement commits, a reader never sees a view over
        nothing).
        """

        def work():
            with self._connect(write=True) as conn:
                _, chunks = _schema(sql_table)
                with conn.begin():
                    # Progress and metadata first (one DML transaction everywhere), so an
                    # interrupted clear on MySQL (where DDL commits at once) leaves no
                    # store claiming old rows.
                    if sa.inspect(conn).has_table(chunks.name):
                        conn.execute(chunks.delete())
                    conn.execute(_registry.update().where(_registry.c.name == self.name)
                                 .values(meta=None))
                with conn.begin():
                    layout = self._layout(conn, sql_table)
                    features, chunks = _schema(sql_table, legacy=layout == "table")
                    if layout == "view":
                        quote = conn.dialect.identifier_preparer.quote
                        conn.exec_driver_sql(f"DROP VIEW {quote(sql_table)}")
                    chunks.drop(conn, checkfirst=True)
                    if layout == "table" or features.name not in self._claimed(
                            conn, others_only=True):
                        features.drop(conn, checkfirst=True)
                    conn.execute(_registry.delete().where(_registry.c.name == self.name))

        try:
            self._retrying(work)
        finally:
            self._forget()

    def remove_temporary(self):
        """Nothing to do: a transaction that did not commit leaves nothing behind."""

    # -- metadata ----------------------------------------------------------------
    def write_metadata(self, metadata):
        """Store the metadata document (JSON text in ``daskloc_stores.metadata``).

        Parameters
        ----------
        metadata : dict
            JSON-able values only (NaN and infinities are refused).

        Raises
        ------
        ValueError
            A value JSON cannot represent.
        """
        text = json.dumps(metadata, allow_nan=False)
        columns = _float_columns(metadata.get("columns"))
        self._table_for_write(columns)

        def work():
            with self._connect(write=True) as conn:
                with conn.begin():
                    done = conn.execute(_registry.update().where(_registry.c.name == self.name)
                                        .values(meta=text))
                    if done.rowcount == 0:  # cleared by another process meanwhile
                        self._forget()
                        self._ensure_schema(conn, columns)
                        conn.execute(_registry.update().where(_registry.c.name == self.name)
                                     .values(meta=text))
                if self.dialect == "sqlite":
                    # Fold the WAL into the database file (without waiting for readers),
                    # so a copy of the .db file alone holds what was written so far.
                    conn.connection.dbapi_connection.execute(
                        "PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        self._retrying(work)

    def read_metadata(self):
        """Return the metadata document, or None if there is none.

        Raises
        ------
        ValueError
            The stored text is not daskloc metadata JSON.
        ConnectionError, PermissionError
            The database server cannot be reached or refuses the login.
        """
        if self._file_missing():
            return None
        with self._connect() as conn:
            try:
                text = conn.execute(
                    sa.select(_registry.c.meta).where(_registry.c.name == self.name)
                ).scalar()
            except sa.exc.DBAPIError as exc:
                if _is_missing_table(exc):
                    return None
                raise
        if text is None:
            return None
        try:
            meta = json.loads(text)
        except (json.JSONDecodeError, TypeError) as e:
            raise MetadataError(
                f"{self.url}: the store's metadata is damaged: {REGISTRY_TABLE}.metadata "
                f"is not valid JSON ({e}); if the store is yours, run the job again with "
                "overwrite=True (CLI: --overwrite) to locate it anew") from None
        return validate_metadata(meta, f"{self.url} ({REGISTRY_TABLE}.metadata)")

    # -- chunks ------------------------------------------------------------------
    def _rows(self, start, stop, features, table_columns):
        """One chunk's features (checked by check_chunk_features: int64 frames in the
        chunk, sorted): validate the columns against the data table's; return (column
        names, row tuples)."""
        unknown = [c for c in features.columns if c != "frame" and c not in table_columns]
        if unknown:
            raise ValueError(
                f"{self.url} holds the feature columns {', '.join(table_columns)} and "
                f"frame; chunk [{start}, {stop}) has also {unknown} (another job's "
                "columns: other dims or per-axis parameters); clear the store "
                "(overwrite=True, CLI: --overwrite) to store other columns"
            )
        frame = np.asarray(features["frame"], dtype=np.int64)
        cols = [c for c in table_columns if c in features.columns]
        lists = []
        for c in cols:
            try:
                a = np.asarray(features[c], dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(f"column {c!r} is not numeric: {e}") from None
            if self._mysql():
                a = np.where(np.isposinf(a), MYSQL_INF, np.where(np.isneginf(a), -MYSQL_INF, a))
            values = a.tolist()
            for i in np.flatnonzero(np.isnan(a)).tolist():
                values[i] = None
            lists.append(values)
        n = frame.size
        if n:
            firsts = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]])
            feature = np.arange(n) - np.repeat(firsts, np.diff(np.r_[firsts, n]))
        else:
            feature = np.empty(0, dtype=np.int64)
        lists += [frame.tolist(), feature.tolist()]
        return cols + ["frame", "feature"], list(zip(*lists))

    def _insert(self, conn, features, names, rows):
        """Insert rows into the features table inside the caller's transaction."""
        if not rows:
            return
        driver = conn.dialect.driver
        quote = conn.dialect.identifier_preparer.quote
        table = quote(features.name)
        cols = ", ".join(quote(c) for c in names)
        if not self.fast_paths:
            conn.execute(features.insert(), [dict(zip(names, r)) for r in rows])
        elif self.dialect == "postgresql" and driver == "psycopg":
            types = ["float8"] * (len(names) - 2) + ["int8", "int4"]
            sql = f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)"
            dbapi_error = conn.dialect.loaded_dbapi.Error
            try:
                with conn.connection.driver_connection.cursor() as cur:
                    with cur.copy(sql) as copy:
                        copy.set_types(types)
                        for row in rows:
                            copy.write_row(row)
            except dbapi_error as exc:  # as SQLAlchemy wraps errors (IntegrityError, ...)
                raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error) from exc
        elif (self.dialect == "sqlite" and driver == "pysqlite") or driver == "pymysql":
            mark = "?" if self.dialect == "sqlite" else "%s"
            sql = f"INSERT INTO {table} ({cols}) VALUES ({', '.join([mark] * len(names))})"
            conn.exec_driver_sql(sql, rows)  # executemany (pymysql: multi-row INSERTs)
        else:
            conn.execute(features.insert(), [dict(zip(names, r)) for r in rows])

    def append_chunk(self, start, stop, features, chunk_id=None, skipped=()):
        """Store the features of frames ``[start, stop)`` in one transaction.

        Parameters
        ----------
        start, stop : int
            Frame range of the chunk (``stop`` exclusive).
        features : pandas.DataFrame
            Columns among the table's feature columns (the metadata's: ``y, x, mass,
            size, ecc, signal, raw_mass, ep`` for a 2-D job; numeric) and an integer
            ``frame`` column with values in ``[start, stop)``; may be empty.
        chunk_id : str, optional
            The chunk's identity (default: from the store's metadata), stored in the
            progress row.
        skipped : sequence of int, optional
            Frames left out (``on_error="skip"``), stored in the progress row.

        Raises
        ------
        ValueError
            Frames outside ``[start, stop)``, no ``frame`` column, non-numeric or unknown
            columns (checked before anything is written).

        Notes
        -----
        Rows already stored in ``[start, stop)`` (and the progress rows of chunks
        overlapping it, with their rows) are deleted in the same transaction: appending
        a chunk again replaces it atomically. Within a frame, rows keep their order
        (column ``feature`` of ``<sql_table>_rows``).
        """
        start, stop, features = check_chunk_features(start, stop, features)
        skipped = sorted(int(f) for f in skipped)
        chunk_id = self._chunk_id_for(start, stop, chunk_id, skipped)

        sql_table = self._table_for_write([c for c in features.columns if c != "frame"])
        with self._connect() as conn:
            table_columns = self._table_columns(conn, sql_table)
        names, rows = self._rows(start, stop, features, table_columns)
        feats, chunks = _schema(sql_table, table_columns,
                                legacy=self.__dict__.get("_live_legacy", False))
        if not self._has_ids():
            raise ValueError(
                f"{self.url} was written by an older daskloc (chunks without identities): "
                "it can be read but not appended to; run the job again with overwrite=True "
                "(CLI: --overwrite)")

        def work():
            with self._connect(write=True) as conn:
                with conn.begin():
                    old = conn.execute(
                        sa.select(chunks.c.start, chunks.c.stop)
                        .where(chunks.c.start < stop, chunks.c.stop > start)
                    ).all()
                    lo = min([start] + [a for a, _ in old])
                    hi = max([stop] + [b for _, b in old])
                    conn.execute(feats.delete().where(feats.c.frame >= lo, feats.c.frame < hi))
                    if old:
                        conn.execute(chunks.delete().where(chunks.c.start < stop,
                                                           chunks.c.stop > start))
                    self._insert(conn, feats, names, rows)
                    conn.execute(chunks.insert().values(start=start, stop=stop,
                                                        n_rows=len(rows), chunk_id=chunk_id,
                                                        skipped=json.dumps(skipped)))

        self._retrying(work)

    def _has_ids(self, conn=None):
        """Whether the progress table has the chunk_id column (written since identities)."""
        cached = self.__dict__.get("_live_has_ids")
        if cached is not None:
            return cached
        if conn is None:
            with self._connect() as c:
                return self._has_ids(c)
        sql_table = self._lookup(conn)
        if sql_table is None:
            return True
        try:
            names = {c["name"].lower() for c in
                     sa.inspect(conn).get_columns(sql_table + CHUNKS_SUFFIX)}
        except sa.exc.NoSuchTableError:
            return True
        self._live_has_ids = "chunk_id" in names
        return self._live_has_ids

    def chunk_ids(self, chunks=None):
        """As :meth:`FeatureStore.chunk_ids`, from the progress rows."""
        if self._file_missing():
            return {}
        with self._connect() as conn:
            marks = self._marks(conn, ids=True) or []
        wanted = None if chunks is None else {(int(a), int(b)) for a, b in chunks}
        out = {}
        for a, b, n, cid, skipped in marks:
            c = (int(a), int(b))
            if wanted is not None and c not in wanted:
                continue
            try:
                frames = tuple(int(f) for f in json.loads(skipped)) if skipped else ()
            except (ValueError, TypeError):
                frames = None
            out[c] = ChunkMark(cid, frames, int(n))
        return out

    def _marks(self, conn, lo=None, hi=None, ids=False):
        """Progress rows ``(start, stop, n_rows)`` sorted by start, optionally those
        meeting ``[lo, hi)``; None if the store's tables do not exist. ``ids``: also
        ``chunk_id`` and ``skipped`` (None for stores written before identities)."""
        sql_table = self._lookup(conn)
        if sql_table is None:
            return None
        with_ids = ids and self._has_ids(conn)
        _, chunks = _schema(sql_table, ids=with_ids)
        cols = [chunks.c.start, chunks.c.stop, chunks.c.n_rows]
        if with_ids:
            cols += [chunks.c.chunk_id, chunks.c.skipped]
        stmt = sa.select(*cols).order_by(chunks.c.start)
        if lo is not None:
            stmt = stmt.where(chunks.c.start < hi, chunks.c.stop > lo)
        pad = (None, None) if ids and not with_ids else ()
        try:
            return [tuple(r) + pad for r in conn.execute(stmt)]
        except sa.exc.DBAPIError as exc:
            if _is_missing_table(exc):
                self._forget()
                return None
            raise

    def complete_chunks(self):
        """Frame ranges of the complete chunks (rows of ``<sql_table>_chunks``).

        Returns
        -------
        list of tuple of int
            ``(start, stop)`` sorted by start.
        """
        if self._file_missing():
            return []
        with self._connect() as conn:
            marks = self._marks(conn) or []
        return [(int(a), int(b)) for a, b, _ in marks]

    def n_rows(self, chunks=None):
        """Number of features in ``chunks`` (default: all complete chunks).

        Parameters
        ----------
        chunks : iterable of (int, int), optional

        Returns
        -------
        int
        """
        if self._file_missing():
            return 0
        with self._connect() as conn:
            marks = self._marks(conn) or []
        if chunks is None:
            return int(sum(n for _, _, n in marks))
        wanted = {(int(a), int(b)) for a, b in chunks}
        return int(sum(n for a, b, n in marks if (a, b) in wanted))

    # -- reading -----------------------------------------------------------------
    def _fetch(self, conn, stmt):
        """All rows of a SELECT as tuples (psycopg: binary protocol, twice as fast)."""
        if self.fast_paths and self.dialect == "postgresql" and conn.dialect.driver == "psycopg":
            # Only integers are bound here (frame numbers): inlining them is safe.
            sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
            dbapi_error = conn.dialect.loaded_dbapi.Error
            try:
                with conn.connection.driver_connection.cursor(binary=True) as cur:
                    cur.execute(sql)
                    return cur.fetchall()
            except dbapi_error as exc:
                raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error) from exc
        return [tuple(r) for r in conn.execute(stmt)]

    def _read_selection(self, lo, hi, wanted, columns, chunks):
        try:
            return self._read_selection_once(lo, hi, wanted, columns, chunks)
        except sa.exc.DBAPIError:
            if not (self.__dict__.get("_live_legacy") or "_live_columns" in self.__dict__):
                raise
            # Rows in <sql_table> when last looked: since overwritten (by another
            # process) in the view's layout, where <sql_table> has no feature column;
            # or the columns looked up are gone (overwritten by a job of other columns).
            self._forget()
            return self._read_selection_once(lo, hi, wanted, columns, chunks)

    def _read_selection_once(self, lo, hi, wanted, columns, chunks):
        if self._file_missing():
            return None
        keep = {(int(a), int(b)) for a, b in chunks}
        with self._connect() as conn:
            marks = [m for m in self._marks(conn, lo, hi) or []
                     if (int(m[0]), int(m[1])) in keep]
            if not marks:
                return None
            # Contiguous frame runs covered by complete chunks, clipped to [lo, hi).
            runs = []
            for a, b, _ in marks:
                a, b = max(int(a), lo), min(int(b), hi)
                if runs and runs[-1][1] == a:
                    runs[-1][1] = b
                elif a < b:
                    runs.append([a, b])
            if not runs:
                return None
            feats, _ = self._tables(conn)
            if any(c not in feats.c for c in columns if c != "frame"):
                # looked up before another process overwrote the table with other columns
                self.__dict__.pop("_live_columns", None)
                feats, _ = self._tables(conn)
            floats = [c for c in columns if c != "frame" and c in feats.c]
            frame = feats.c.frame
            if len(runs) <= _MAX_RUNS:
                cond = sa.or_(*[sa.and_(frame >= a, frame < b) for a, b in runs])
            else:
                cond = sa.and_(frame >= runs[0][0], frame < runs[-1][1])
            filter_after = len(runs) > _MAX_RUNS
            if wanted is not None:
                if len(wanted) <= _MAX_IN:
                    cond = sa.and_(cond, frame.in_([int(v) for v in wanted]))
                else:
                    filter_after = True
            stmt = (sa.select(*[feats.c[c] for c in floats], frame)
                    .where(cond).order_by(frame, feats.c.feature))
            rows = self._fetch(conn, stmt)
        if not rows:
            return None
        n = len(rows)
        frames = np.fromiter((r[-1] for r in rows), dtype=np.int64, count=n)
        values = np.array(rows, dtype=np.float64)  # None -> NaN
        if self._mysql():
            values[values == MYSQL_INF] = np.inf
            values[values == -MYSQL_INF] = -np.inf
        data = {c: values[:, i] for i, c in enumerate(floats)}
        data["frame"] = frames
        df = pd.DataFrame({c: data[c] for c in columns if c in data})
        if filter_after:
            starts = np.array([a for a, _ in runs])
            stops = np.array([b for _, b in runs])
            i = np.searchsorted(starts, frames, side="right") - 1
            keep = (i >= 0) & (frames < stops[np.clip(i, 0, None)])
            if wanted is not None:
                keep &= np.isin(frames, wanted)
            df = df[keep].reset_index(drop=True)
        return df


class _SQLLeaseOps(CasLeaseOps):
    """A writer's lease as a row of ``daskloc_leases`` (see daskloc.stores._lease):
    created by INSERT (the primary key refuses a second one), replaced only by
    ``UPDATE ... WHERE token = <the token judged stale>``."""

    def __init__(self, store):
        self.store = store

    def _write(self, fn):
        def work():
            with self.store._connect(write=True) as conn:
                with conn.begin():
                    return fn(conn)
        return self.store._retrying(work)

    def create(self, data):
        def fn(conn):
            _leases.create(conn, checkfirst=True)
            exists = conn.execute(sa.select(_leases.c.token)
                                  .where(_leases.c.name == self.store.name)).first()
            if exists is not None:
                return False
            doc = json.loads(data)
            conn.execute(_leases.insert().values(name=self.store.name, token=doc["token"],
                                                 holder=data.decode("utf-8").strip()))
            return True
        return self._write(fn)

    def read(self):
        if self.store._file_missing():
            return None, None
        with self.store._connect() as conn:
            try:
                row = conn.execute(sa.select(_leases.c.token, _leases.c.holder)
                                   .where(_leases.c.name == self.store.name)).first()
            except sa.exc.DBAPIError as exc:
                if _is_missing_table(exc):
                    return None, None
                raise
        if row is None:
            return None, None
        return row[1].encode("utf-8"), (row[0], row[1])

    def replace(self, version, data):
        doc = json.loads(data)
        token, holder = version

        def fn(conn):  # compare-and-swap on the whole document: a heartbeat changes it
            done = conn.execute(_leases.update().where(
                _leases.c.name == self.store.name, _leases.c.token == token,
                _leases.c.holder == holder,
            ).values(token=doc["token"], holder=data.decode("utf-8").strip()))
            return done.rowcount == 1
        return self._write(fn)

    def release(self, token):
        def fn(conn):
            conn.execute(_leases.delete().where(_leases.c.name == self.store.name,
                                                _leases.c.token == token))
        self._write(fn)
