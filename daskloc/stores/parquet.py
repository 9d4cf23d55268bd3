"""Parquet feature store: a directory with one Parquet file per frame chunk plus JSON metadata.

Layout::

    features.parquet/
        _daskloc.parquet                          metadata: a Parquet file of no rows
                                                  with the table's schema, the JSON
                                                  document in its key-value metadata
        part-000000000-000000064.parquet          frames [0, 64)
        part-000000064-000000128.parquet          frames [64, 128)
        .part-000000128-000000192.parquet.<id>.tmp   a chunk being written (ignored)
        .daskloc-lease                            the writer's lease (while a job runs)

Each part file is written under a dot-prefixed temporary name and renamed with
:func:`os.replace` once complete, so a part file exists only when complete and readers
(this module, ``pyarrow.dataset``, ``dask.dataframe.read_parquet``) never see a partial
file. The file names carry the frame range, so readers choose files without opening
them; inside a file, rows are sorted by frame and row-group statistics on ``frame`` let
readers skip row groups. Part files hold the feature columns (float64) and ``frame``
(int64), compressed with zstd; the directory is an ordinary Parquet dataset that
``pyarrow.dataset.dataset(path)``, ``pandas.read_parquet(path)``, ``polars.read_parquet(path)``
or duckdb's ``read_parquet('path/*.parquet')`` opens (pyarrow skips the ``_``-prefixed
metadata file, polars and duckdb read its no rows; a JSON file beside the parts made
polars refuse the directory, and stores written so before, ``_daskloc.json``, are read,
resumed and moved to the new file by their next write). Each part's
key-value metadata holds ``daskloc_chunk``: JSON ``{"id": <chunk identity>, "start":
..., "stop": ..., "skipped": [...]}`` (see :mod:`daskloc.metadata`), written with
the rows in the same atomic file; daskloc reads a part only if that identity is the one
its metadata gives.

The same layout works on object storage (``s3://bucket/features.parquet``, through fsspec
with ``storage_options``). There an object PUT is atomic (the object appears whole or not
at all), so each part and the metadata are uploaded straight to their final keys (no
temporary object, no rename); ``pandas.read_parquet("s3://...", storage_options=...)``
reads the dataset as it does locally.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import posixpath
import re
import uuid

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from daskloc.metadata import ChunkMark, ChunkVerifier, MetadataError, validate_metadata
from daskloc.stores._fs import fsspec_options, fsync
from daskloc.stores._lease import LockFileOps, ObjectLeaseOps
from daskloc.stores.base import FeatureStore, check_chunk_features, chunk_may_hold, write_error

__all__ = ["ParquetStore"]

#: The metadata document. The leading underscore makes ``pyarrow.dataset``,
#: ``pandas.read_parquet`` and ``dask.dataframe.read_parquet`` skip it, so the directory
#: stays a plain Parquet dataset for them.
METADATA_NAME = "_daskloc.parquet"
#: The metadata document of stores written before 0.2 (JSON), read and replaced.
LEGACY_METADATA_NAME = "_daskloc.json"
#: Key of the document in the metadata file's key-value metadata.
METADATA_KEY = b"daskloc"
_METADATA_NAMES = (METADATA_NAME, LEGACY_METADATA_NAME)
_PART = re.compile(r"^part-(\d{9,})-(\d{9,})\.parquet$")
_TEMP_PREFIXES = (".part-", "._daskloc.parquet.", "._daskloc.json.", ".write-test-")
#: The writer's lease (see :mod:`daskloc.stores._lease`); a dot file, so Parquet readers
#: skip it.
LEASE_NAME = ".daskloc-lease"
#: Key of the chunk's identity in each part file's key-value metadata.
CHUNK_KEY = b"daskloc_chunk"
#: Column types a part file may hold (anything else is not a daskloc chunk).
_NUMERIC = ("double", "float", "int64", "int32")


def part_name(start, stop):
    """File name of the part holding frames ``[start, stop)``."""
    return f"part-{int(start):09d}-{int(stop):09d}.parquet"


class ParquetStore(FeatureStore):
    """Features as a Parquet dataset directory, one zstd file per chunk of frames.

    Parameters
    ----------
    path : str or os.PathLike
        The dataset directory (conventionally ending in ``.parquet``), or its URL on
        object storage (``s3://bucket/features.parquet``).
    table : str, optional
        Sub-folder holding this result set (``"bulk_water/features"`` is the dataset
        ``features.parquet/bulk_water/features/``).
    storage_options : dict, optional
        fsspec options for a URL (e.g. ``{"endpoint_url": ..., "key": ..., "secret":
        ...}`` for S3). Not accepted for local paths. For ``s3://`` the store adds
        ``max_concurrency=1`` unless given (s3fs would otherwise send a HEAD before every
        GET of a whole object).
    row_group_rows : int, optional
        Maximum rows per Parquet row group (default 65536); smaller groups let frame
        range reads skip more data at some cost in file size.
    compression : str, optional
        Parquet codec, default ``"zstd"``.

    Raises
    ------
    ValueError
        ``storage_options`` given for a local path.

    Notes
    -----
    Locally, writes are atomic per file (temporary dot-file, fsync, :func:`os.replace`);
    on object storage each part is one PUT to its final key, which is atomic there. So
    any number of workers may append different chunks at the same time, and readers in
    other processes may read while chunks are being written. Two batches never write
    the same table at once: each holds its lease (``.daskloc-lease``, an ``flock``ed
    file locally, an object written with ``If-None-Match`` on S3) and a second batch is
    refused before it touches anything.

    Every file operation goes through an fsspec filesystem (``LocalFileSystem`` for
    local paths); only the write of a part or of the metadata differs (temporary file,
    fsync and rename locally; direct upload remotely). Listings on object storage are
    never served from fsspec's directory cache, so chunks written by other processes
    are seen at once.
    """

    backend = "parquet"
    format_name = "Parquet"
    suffixes = (".parquet", ".parq", ".pq")
    fallback = True
    supports_remote = True
    lists_tables = True
    concurrent_writers = True
    ordered_appends = False
    live_reads = True

    def __init__(self, path, *, table=None, storage_options=None, row_group_rows=65536,
                 compression="zstd"):
        super().__init__(path, table=table)
        #: True for a URL (object storage through fsspec), False for a local directory.
        self.remote = "://" in self.path
        if storage_options and not self.remote:
            raise ValueError(
                f"storage_options apply to object-storage URLs (s3://...), not to the local "
                f"path {self.path!r}"
            )
        self.storage_options = dict(storage_options or {})
        #: The store's location: the dataset directory, or the folder of all tables.
        self.root = self.path.rstrip("/") if self.remote else self.path
        if self.table is not None:
            self.path = self._join(self.root, *self.table.split("/"))
        elif self.remote:
            self.path = self.root
        self.row_group_rows = int(row_group_rows)
        self.compression = compression

    @property
    def store_path(self):
        return self.root

    @property
    def url(self):
        return self.root if self.table is None else f"{self.root}#{self.table}"

    # -- file system -------------------------------------------------------------
    @property
    def fs(self):
        """fsspec.AbstractFileSystem: the filesystem holding the store (cached, not pickled)."""
        fs = self.__dict__.get("_live_fs")
        if fs is None:
            if self.remote:
                fs, _ = fsspec.core.url_to_fs(
                    self.path, **fsspec_options(self.path, self.storage_options))
            else:
                from fsspec.implementations.local import LocalFileSystem

                fs = LocalFileSystem()
            self._live_fs = fs
        return fs

    def _join(self, *parts):
        return posixpath.join(*parts) if self.remote else os.path.join(*parts)

    def _fs_path(self, path):
        """A path or URL as the filesystem's methods take it (no protocol)."""
        return self.fs._strip_protocol(path) if self.remote else path

    def _fresh(self, path):
        """``path`` for the filesystem, with any cached listing of it dropped."""
        p = self._fs_path(path)
        self.fs.invalidate_cache(p)
        return p

    def _listdir(self, path=None):
        """Names in the store directory (fresh, never from a listing cache).

        Raises
        ------
        FileNotFoundError
            Nothing exists at the path.
        """
        p = self._fresh(self.path if path is None else path).rstrip("/")
        entries = self.fs.ls(p, detail=False, refresh=True)
        return [posixpath.basename(e.rstrip("/")) for e in entries if e.rstrip("/") != p]

    def _is_dir(self, path):
        return self.fs.isdir(self._fresh(path))

    def _is_file(self, path):
        return self.fs.isfile(self._fresh(path))

    def _remove(self, path):
        """Delete one file; a file already gone is fine."""
        try:
            self.fs.rm_file(self._fs_path(path))
        except FileNotFoundError:
            pass

    @contextlib.contextmanager
    def _source(self, path):
        """What pyarrow reads ``path`` from: the path itself locally, an unbuffered file
        remotely (each read is one ranged GET, so footers and chosen row groups are all
        that is fetched)."""
        if not self.remote:
            yield path
            return
        with self.fs.open(self._fs_path(path), "rb", cache_type="none") as f:
            yield f

    def location_exists(self):
        return self.fs.exists(self._fresh(self.path))

    def list_tables(self):
        """Tables of the store: the folders below the root that hold ``_daskloc.parquet``
        (or a legacy ``_daskloc.json``).

        Returns
        -------
        list of str
            Sorted ``/``-joined folder paths relative to the root (``"video=a"``,
            ``"bulk_water/features"``); folders whose names start with ``.`` or ``_``
            are not searched. The root's own table (``table=None``) is not listed.
        """
        out, todo = [], [(self.root, "")]
        while todo:
            path, rel = todo.pop()
            try:
                entries = self.fs.ls(self._fresh(path).rstrip("/"), detail=True, refresh=True)
            except (FileNotFoundError, NotADirectoryError):
                continue
            for e in entries:
                name = posixpath.basename(e["name"].rstrip("/"))
                if rel and e.get("type") == "file" and name in _METADATA_NAMES:
                    if rel not in out:
                        out.append(rel)
                elif e.get("type") == "directory" and not name.startswith((".", "_")):
                    todo.append((self._join(path, name), f"{rel}/{name}" if rel else name))
        return sorted(out)

    # -- lifecycle ---------------------------------------------------------------
    @property
    def metadata_path(self):
        """str: Path of the metadata file (``_daskloc.parquet``)."""
        return self._join(self.path, METADATA_NAME)

    @property
    def legacy_metadata_path(self):
        """str: Path of the JSON metadata document of stores written before 0.2."""
        return self._join(self.path, LEGACY_METADATA_NAME)

    def exists(self):
        return self._is_file(self.metadata_path) or self._is_file(self.legacy_metadata_path)

    def _recognised(self, name):
        return (name in (*_METADATA_NAMES, LEASE_NAME) or bool(_PART.match(name))
                or name.startswith(_TEMP_PREFIXES))

    def _lease_ops(self):

        path = self._join(self.path, LEASE_NAME)
        if self.remote:
            return ObjectLeaseOps(self.fs, self._fs_path(path))
        return LockFileOps(path)

    def prepare(self):
        path = self.path
        if self.remote:
            return self._prepare_remote()
        if os.path.exists(path) and not os.path.isdir(path):
            raise NotADirectoryError(
                f"cannot write the feature store at {path}: it exists and is a file, not a "
                "store directory; choose another output path (CLI: --out)"
            )
        if os.path.isdir(path) and not self.exists():
            self._refuse_foreign(self._listdir())
        probe = os.path.join(path, f".write-test-{uuid.uuid4().hex}")
        try:
            os.makedirs(path, exist_ok=True)
            with open(probe, "wb") as f:
                f.write(b"daskloc")
            os.remove(probe)
        except OSError as e:
            raise write_error(
                e,
                f"cannot write the feature store at {path} ({e.strerror}); choose a "
                "writable output path (CLI: --out) or fix the directory's permissions",
            ) from e

    def _refuse_foreign(self, names):
        others = [n for n in names if not self._recognised(n)]
        if others:
            raise ValueError(
                f"{self.path} is a non-empty directory that is not a daskloc store (no "
                f"{METADATA_NAME}; it holds e.g. {sorted(others)[:3]}); refusing to "
                "write into it: choose another output path (CLI: --out)"
            )

    def _prepare_remote(self):
        if self._is_file(self.path):
            raise NotADirectoryError(
                f"cannot write the feature store at {self.path}: an object exists at that "
                "key, not a store prefix; choose another output URL (CLI: --out)"
            )
        if not self.exists():
            try:
                names = self._listdir()
            except FileNotFoundError:
                names = []
            self._refuse_foreign(names)
        probe = self._fs_path(self._join(self.path, f".write-test-{uuid.uuid4().hex}"))
        try:
            self.fs.pipe_file(probe, b"daskloc")
            self.fs.rm_file(probe)
        except OSError as e:
            raise write_error(
                e,
                f"cannot write the feature store at {self.path} ({e.strerror or e}); check "
                "that the bucket exists and that the credentials in storage_options may "
                "write there",
            ) from e

    def _clear_plan(self):
        """The files :meth:`clear` removes (metadata first); raises if others are there."""
        if not self._is_dir(self.path):
            if self._is_file(self.path):
                raise NotADirectoryError(
                    f"{self.path} is a file, not a daskloc store; not removing it"
                )
            return []
        entries = self.fs.ls(self._fresh(self.path).rstrip("/"), detail=True, refresh=True)
        files = [posixpath.basename(e["name"].rstrip("/")) for e in entries
                 if e.get("type") != "directory"]
        foreign = sorted(n for n in files if not self._recognised(n))
        if foreign:
            shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
            kind = "a daskloc store that also holds" if self.exists() else \
                "not a daskloc store: it holds"
            raise ValueError(
                f"{self.path} is {kind} files daskloc did not write ({shown}); refusing to "
                "clear it, nothing was removed: move those files out of the store, or "
                "choose another output path (CLI: --out), then run again"
            )
        ours = [n for n in files if n != LEASE_NAME]  # the lease is its holder's to remove
        return sorted(ours, key=lambda n: n not in _METADATA_NAMES)

    def check_clear(self):
        self._clear_plan()

    def clear(self):
        # Metadata first: an interrupted clear leaves no store claiming stale parts.
        # Sub-folders (other tables of the store) are never touched.
        for name in self._clear_plan():
            self._remove(self._join(self.path, name))

    def remove_temporary(self):
        if not self._is_dir(self.path):
            return
        for name in self._listdir():
            if name.startswith(_TEMP_PREFIXES):
                self._remove(self._join(self.path, name))

    # -- metadata ----------------------------------------------------------------
    def write_metadata(self, metadata):
        # A Parquet file of no rows with the table's schema (so tools that read every
        # .parquet file of the folder read the features), the document in its footer.
        # One top-level key per line, values compact: readable and small for long lists.
        items = [
            f" {json.dumps(str(k))}: {json.dumps(v, allow_nan=False, separators=(', ', ': '))}"
            for k, v in metadata.items()
        ]
        text = "{\n" + ",\n".join(items) + "\n}\n"
        columns = metadata.get("columns") if isinstance(metadata.get("columns"), dict) else {}
        schema = pa.schema([pa.field(c, pa.from_numpy_dtype(np.dtype(d)))
                            for c, d in columns.items()])
        if not columns:  # a document without columns (an export of an old store)
            schema = self._parts_schema() or schema
        table = schema.with_metadata({METADATA_KEY: text.encode("utf-8")}).empty_table()
        self._write_file(table, self.metadata_path, METADATA_NAME, {})
        if self._is_file(self.legacy_metadata_path):  # moved to the new file: drop the old
            self._remove(self.legacy_metadata_path)

    def read_metadata(self):
        raw = self._cat(self.metadata_path)
        if raw is None:
            meta = self._read_legacy_metadata()
            if meta is not None:
                return meta
            # moved meanwhile (a resumed job replacing the JSON file)? read the new one
            raw = self._cat(self.metadata_path)
            if raw is None:
                return None
        try:
            kv = pq.read_schema(pa.BufferReader(raw)).metadata or {}
            text = kv[METADATA_KEY]
        except (pa.ArrowException, OSError, KeyError) as e:
            what = ("is empty" if not raw.strip() else
                    f"is not a Parquet file holding daskloc's metadata ({e})")
            raise self._damaged(self.metadata_path, what) from None
        return self._parse_metadata(text, self.metadata_path, METADATA_NAME)

    def _parts_schema(self):
        """The schema of the first part file (without its key-value metadata), or None."""
        chunks = self.complete_chunks()
        if not chunks:
            return None
        try:
            with self._source(self.part_path(*chunks[0])) as src:
                return pq.read_schema(src).remove_metadata()
        except (OSError, pa.ArrowException):
            return None

    def _cat(self, path):
        """The bytes of ``path``, or None if there is no such file."""
        try:
            return self.fs.cat_file(self._fs_path(path))
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def _read_legacy_metadata(self):
        raw = self._cat(self.legacy_metadata_path)
        if raw is None:
            return None
        return self._parse_metadata(raw, self.legacy_metadata_path, LEGACY_METADATA_NAME)

    def _parse_metadata(self, raw, path, name):
        try:
            meta = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            what = "is empty" if not raw.strip() else f"is not valid UTF-8 JSON ({e})"
            raise self._damaged(path, what) from None
        return validate_metadata(meta, f"{self.url} ({name})")

    def _damaged(self, path, what):
        return MetadataError(
            f"{self.url}: the store's metadata is damaged: {path} {what}; if the store is "
            "yours, run the job again with overwrite=True (CLI: --overwrite) to locate it "
            "anew, or restore that file from a copy"
        )

    # -- chunks ------------------------------------------------------------------
    def part_path(self, start, stop):
        """Path of the file holding frames ``[start, stop)`` (it may not exist)."""
        return self._join(self.path, part_name(start, stop))

    def append_chunk(self, start, stop, features, chunk_id=None, skipped=()):
        start, stop, features = check_chunk_features(start, stop, features)
        skipped = sorted(int(f) for f in skipped)
        chunk_id = self._chunk_id_for(start, stop, chunk_id, skipped)
        fields = [
            pa.field(c, pa.int64() if c == "frame" else pa.from_numpy_dtype(features[c].dtype))
            for c in features.columns
        ]
        mark = {"id": chunk_id, "start": start, "stop": stop, "skipped": skipped}
        table = pa.Table.from_pandas(
            features, schema=pa.schema(fields), preserve_index=False
        ).replace_schema_metadata({CHUNK_KEY: json.dumps(mark).encode("ascii")})
        # Dictionary encoding for the integer columns only (frame, particle: few values,
        # repeated). Measurements are floats that hardly repeat: arrow builds a
        # dictionary for each such column and falls back to plain once it fills, which
        # cost two thirds of the write. One bulk-water chunk (145,169 rows, zstd): 186 ms
        # and 8.4 MB with every column tried, 63 ms and 6.9 MB with this.
        repeated = [c for c in features.columns
                    if not np.issubdtype(features[c].dtype, np.floating)]
        options = dict(compression=self.compression, row_group_size=max(1, self.row_group_rows),
                       write_statistics=True, use_dictionary=repeated)
        self._write_file(table, self.part_path(start, stop), part_name(start, stop), options)

    def _write_file(self, table, final, name, options):
        """Write a Parquet file whole or not at all: one PUT on object storage; locally a
        dot-prefixed temporary file, synced, then renamed over ``final``."""
        if self.remote:  # one PUT to the final key: the object appears whole or not at all
            buf = io.BytesIO()
            pq.write_table(table, buf, **options)
            self.fs.pipe_file(self._fs_path(final), buf.getvalue())
            return
        tmp = os.path.join(self.path, f".{name}.{uuid.uuid4().hex}.tmp")
        try:
            pq.write_table(table, tmp, **options)
            fsync(tmp)
            os.replace(tmp, final)
        except BaseException as exc:
            # pyarrow's writer, still referenced by the tracebacks' frames, can keep the
            # file open (its flush failed on a full disk); dropping the frames' locals
            # closes it now, so the removed file gives its space back at once.
            import traceback

            error = exc
            while error is not None:
                traceback.clear_frames(error.__traceback__)
                error = error.__context__
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise

    def complete_chunks(self):
        try:
            names = self._listdir()
        except (FileNotFoundError, NotADirectoryError):
            return []
        out = []
        for name in names:
            m = _PART.match(name)
            if m:
                out.append((int(m.group(1)), int(m.group(2))))
        return sorted(out)

    def _footer(self, start, stop):
        """The part's footer (pyarrow FileMetaData), or None if the file is gone."""
        try:
            with self._source(self.part_path(start, stop)) as src:
                return pq.read_metadata(src)
        except FileNotFoundError:  # removed by a concurrent clear
            return None
        except pa.ArrowInvalid as exc:  # not Parquet (or cut short); I/O errors go up
            return _BadFooter(exc)

    def chunk_ids(self, chunks=None):
        chunks = self.complete_chunks() if chunks is None else chunks
        out = {}
        for start, stop in chunks:
            md = self._footer(start, stop)
            if md is not None:
                out[(int(start), int(stop))] = _mark(md)
        return out

    def n_rows(self, chunks=None):
        if chunks is None:
            chunks = self.complete_chunks()
        total = 0
        for start, stop in chunks:
            md = self._footer(start, stop)
            if md is not None and not isinstance(md, _BadFooter):
                total += md.num_rows
        return total

    # -- reading -----------------------------------------------------------------
    def _plan(self, lo, hi, wanted=None, chunks=None, verifier=None):
        """Which files and row groups a read of a frame selection touches.

        Files are chosen by the frame range in their names (no file is opened for
        that), then by the chunk identity in their footer (``verifier``); row groups
        by the ``frame`` min/max statistics in each chosen file's footer.

        Parameters
        ----------
        lo, hi : int
            The selection lies in frames ``[lo, hi)``.
        wanted : numpy.ndarray of int64, optional
            Exact sorted frames; None means every frame in ``[lo, hi)``.
        chunks : list of (int, int), optional
            The chunks to consider (default: every complete chunk).
        verifier : daskloc.metadata.ChunkVerifier, optional
            Files whose chunk identity it does not accept are left out (default: the
            store's metadata decides).

        Returns
        -------
        list of (str, list of int)
            ``(file path, row-group indices)`` in frame order; files whose row groups
            all miss the selection are left out.
        """
        if verifier is None:
            meta = self.read_metadata()
            if not meta:
                return []
            verifier = ChunkVerifier(meta)
        out = []
        for start, stop in (self.complete_chunks() if chunks is None else chunks):
            if not chunk_may_hold(start, stop, lo, hi, wanted):
                continue
            path = self.part_path(start, stop)
            md = self._footer(start, stop)
            if md is None:
                continue  # removed by a concurrent clear
            if isinstance(md, _BadFooter):  # damaged or not Parquet: never silently left out
                raise md.exc
            if not verifier.accepts((start, stop), _mark(md)):
                continue
            icol = md.schema.to_arrow_schema().get_field_index("frame")
            groups = []
            for i in range(md.num_row_groups):
                rg = md.row_group(i)
                if rg.num_rows == 0:
                    continue
                st = rg.column(icol).statistics
                if st is None or not st.has_min_max:
                    groups.append(i)
                elif chunk_may_hold(int(st.min), int(st.max) + 1, lo, hi, wanted):
                    groups.append(i)
            if groups:
                out.append((path, groups, md))
        return out

    def plan(self, lo, hi, wanted=None, chunks=None, verifier=None):
        """As :meth:`_plan` (see there), without the footers."""
        return [(path, groups) for path, groups, _ in self._plan(lo, hi, wanted, chunks,
                                                                 verifier)]

    def _read_chunks(self, lo, hi, wanted, columns, meta, chunks=None):
        # Identities are checked in the footers plan() reads anyway: no second read.
        some = None if chunks is None else [c for c in self.complete_chunks() if c in chunks]
        return self._read_plan(self._plan(lo, hi, wanted, some, ChunkVerifier(meta)),
                               lo, hi, wanted, columns)

    def _read_selection(self, lo, hi, wanted, columns, chunks):
        verifier = _AcceptAll()
        return self._read_plan(self._plan(lo, hi, wanted, chunks, verifier), lo, hi, wanted,
                               columns)

    def _read_plan(self, plan, lo, hi, wanted, columns):
        parts = []
        for path, groups, md in plan:
            try:
                with self._source(path) as src:
                    pf = pq.ParquetFile(src, pre_buffer=True, metadata=md)
                    names = [c for c in columns if c in pf.schema_arrow.names]
                    _check_types(path, pf.schema_arrow, names)
                    table = pf.read_row_groups(groups, columns=names)
            except FileNotFoundError:
                continue
            frame = table.column("frame")
            if wanted is None:
                mask = pc.and_(pc.greater_equal(frame, lo), pc.less(frame, hi))
            else:
                mask = pc.is_in(frame, value_set=pa.array(wanted, type=pa.int64()))
            table = table.filter(mask)
            # Plain numpy columns: pandas' metadata in the file is never interpreted.
            parts.append({c: table.column(c).to_numpy() for c in names})
        if not parts:
            return None
        df = pd.DataFrame({c: np.concatenate([p[c] for p in parts]).astype(dt, copy=False)
                           for c, dt in columns.items() if c in parts[0]})
        f = df["frame"].to_numpy()
        if f.size > 1 and not np.all(f[1:] >= f[:-1]):
            df = df.sort_values("frame", kind="stable")
        return df.reset_index(drop=True)


class _AcceptAll:
    """A verifier for chunks that were verified already."""

    @staticmethod
    def accepts(chunk, mark):
        return True


class _BadFooter:
    """A part file whose footer cannot be read (not Parquet, or cut short)."""

    def __init__(self, exc):
        self.exc = exc


def _mark(md):
    """The ChunkMark of a part file from its footer (FileMetaData or _BadFooter)."""
    if isinstance(md, _BadFooter):
        return ChunkMark()
    kv = md.metadata or {}
    raw = kv.get(CHUNK_KEY)
    if raw is None:
        return ChunkMark(n_rows=md.num_rows)
    try:
        doc = json.loads(raw.decode("ascii"))
        skipped = tuple(int(f) for f in doc.get("skipped") or ())
        return ChunkMark(str(doc["id"]), skipped, md.num_rows)
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        return ChunkMark(n_rows=md.num_rows)


def _check_types(path, schema, names):
    for c in names:
        t = schema.field(c).type
        if str(t) not in _NUMERIC:
            raise MetadataError(
                f"{path}: column {c!r} has type {t}, not a number: this file is not a "
                "daskloc chunk (remove it from the store, or run the job again with "
                "overwrite=True)"
            )
