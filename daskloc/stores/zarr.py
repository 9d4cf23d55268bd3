"""Zarr feature store: a ragged table of 1-D column arrays, with its index in a sub-group.

Layout (zarr format 3) of one table, at the root group of the store (``table=None``, the
default) or at the sub-group named by ``table`` (``"bulk_water/features"`` is the group
``features.zarr/bulk_water/features``)::

    features.zarr/
        zarr.json          group; attributes {"daskloc": <metadata document (JSON)>},
                           and consolidated metadata once a job has ended
        y/ x/ mass/ size/ ecc/ signal/ raw_mass/ ep/    float64, shape (n_rows,)
        frame/             int64, shape (n_rows,): absolute frame number of each row
        _daskloc/          group: the table's index (attribute daskloc_role "bookkeeping")
            frame_offsets/ int64, shape (frame_stop - frame_origin + 1,)
            chunk_ranges/  int64, shape (n_chunks, 6)
            watermark/     int64, shape (5,), written LAST by every append

The table's group holds only the columns, all along one dimension, so that
``xarray.open_zarr(path).to_dataframe()`` is the feature table; the index arrays have
dimensions of their own and live in the sub-group ``_daskloc`` (a name no table may
have: :func:`daskloc.stores.base.check_table_name`).

- **Columns** are 1-D arrays along the dimension ``"feature"`` (zarr v3
  ``dimension_names``), one row per feature, rows sorted by frame (stable within a
  frame, in the order the locator found them). Chunks of ``chunk_rows`` rows (default
  65536, 512 KiB of float64), compressed with Blosc/zstd level 5 (byte shuffle for
  floats, bit shuffle for the sorted ``frame`` column).
- **frame_offsets** (dimension ``"frame_edge"``): entry ``k`` is the first row of frame
  ``frame_origin + k`` and the end of frame ``frame_origin + k - 1``, so the rows of
  frames ``[a, b)`` are the single slice ``frame_offsets[a - frame_origin] :
  frame_offsets[b - frame_origin]`` of every column (two index entries read, then only
  the column chunks holding those rows). Every integer frame from the first chunk's
  first frame to the last chunk's stop has an entry, also frames that were not selected
  (a stepped selection such as ``frames=slice(0, 480, 3)``) or lie between chunks: those
  hold no rows.
- **chunk_ranges** (dimensions ``("chunk", "chunk_field")``): one row per appended chunk,
  ``[frame_start, frame_stop, row_start, row_stop, id_hi, id_lo]``, in append (= frame)
  order; ``id_hi, id_lo`` are the chunk's identity (:mod:`daskloc.metadata`) as
  two int64 words. Stores written before identities existed have the first four only.
- **watermark** (dimension ``"watermark_field"``): ``[n_chunks, n_rows, frame_origin,
  frame_stop, generation]``. It is the commit record: only the first ``n_chunks`` rows
  of ``chunk_ranges``, the first ``n_rows`` rows of the columns and the first
  ``frame_stop - frame_origin + 1`` entries of ``frame_offsets`` are complete; anything
  beyond is a write in progress (or left by a writer killed mid-append) and is ignored
  by readers and cut off by the next append or :meth:`ZarrStore.remove_temporary`.
  ``generation`` is a random number drawn when the layout is created, so a reader
  notices that a store was cleared and re-created under it.

Every daskloc array carries the attribute ``daskloc_role`` (``"column"``,
``"frame_offsets"``, ``"chunk_ranges"`` or ``"watermark"``); :meth:`ZarrStore.clear`
removes only those, the ``_daskloc`` sub-group (and the ``daskloc`` group attribute),
never other arrays or sub-groups (other tables) of the group.

**Older layout.** Tables created before the index moved have ``frame_offsets``,
``chunk_ranges`` and ``watermark`` in the table's group, beside the columns. They read
as before and a resumed job appends to them in that layout (the place of the watermark
says which layout a table has); a table re-created (``overwrite=True``, :meth:`clear`,
or new columns) gets the sub-group. xarray opens such a group only with
``ds[columns]`` before ``to_dataframe()`` (its index arrays have other dimensions).

**Consolidated metadata.** When a job ends (:meth:`ZarrStore.finish`, called under the
writer's lease by :func:`daskloc.batch` and :func:`daskloc.export`), the table's arrays
are cut back to the watermark and zarr's consolidated metadata of the whole store (every
table, as committed) is written into the root group's ``zarr.json`` (xarray reads it
there, also for ``group=table``), so ``xarray.open_zarr(path)`` and
``xarray.open_zarr(path, group=table)`` open with default arguments and no warning. A
many-video batch writes it once, after its last table; it is not written while another
process holds the lease of a table of the store (that writer writes it when it ends).
Before a job writes anything else (its first step under the lease, before any append,
:meth:`ZarrStore.clear` or metadata write) it removes the consolidated metadata of the
table's group and of every group above it. So while a job writes, no consolidated
metadata describes the table and readers read each array's own document; daskloc's own
reader never uses consolidated metadata (it trusts only the watermark).

Reading without daskloc::

    import xarray as xr, zarr
    df = xr.open_zarr("features.zarr").to_dataframe()  # or group="bulk_water/features"
    g = zarr.open_group("features.zarr", mode="r")
    n_chunks, n_rows, origin, stop, _ = g["_daskloc/watermark"][:]  # complete part
    o = g["_daskloc/frame_offsets"]; rows = slice(o[105 - origin], o[111 - origin])
    y = g["y"][rows]                                   # frames 105..110

While a batch appends, the arrays are resized one by one before their rows are written,
so for a moment they can differ in length (xarray then refuses the dataset) or hold rows
not yet complete, and there is no consolidated metadata (``xarray.open_zarr`` warns and
reads each array's document; pass ``consolidated=False`` to skip the warning): a plain
reader reads the watermark first and keeps rows below ``n_rows``
(``ds.isel(feature=slice(0, n_rows))``), which is what daskloc does.

Readers in other processes rely on each key being replaced atomically: LocalStore writes
a temporary ``<key>.<hex>.partial`` and renames it since zarr 3.1.3 (a writer killed
mid-write leaves such files; :meth:`ZarrStore.remove_temporary` deletes them), and an
object-store PUT is atomic.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import posixpath
import secrets
import shutil
import socket
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import zarr
from zarr.buffer import default_buffer_prototype
from zarr.codecs import BloscCodec
from zarr.errors import ContainsArrayError, ContainsGroupError
from zarr.storage import FsspecStore, LocalStore

from daskloc.metadata import (
    ChunkMark,
    ChunkVerifier,
    MetadataError,
    UnsafeStoreError,
    id_from_words,
    id_words,
    validate_metadata,
)
from daskloc.schema import column_attrs
from daskloc.stores._fs import fsspec_options, fsync
from daskloc.stores._lease import LockFileOps, ObjectLeaseOps, lease_name
from daskloc.stores.base import FeatureStore, check_chunk_features, chunk_may_hold, write_error

__all__ = ["ZarrStore"]

#: Group attribute holding the metadata document.
METADATA_ATTR = "daskloc"
#: Array attribute marking daskloc's arrays (value: the array's role).
ROLE_ATTR = "daskloc_role"
#: Names of the index arrays (feature columns may not use them).
OFFSETS, CHUNK_RANGES, WATERMARK = "frame_offsets", "chunk_ranges", "watermark"
_INDEX_NAMES = (OFFSETS, CHUNK_RANGES, WATERMARK)
#: The sub-group of a table's group holding its index arrays (a reserved table name:
#: :data:`daskloc.stores.base.RESERVED_TABLE_PARTS`).
BOOKKEEPING = "_daskloc"
#: Where a table's index arrays are: in :data:`BOOKKEEPING` (every table created or
#: re-created now) or beside the columns in the table's group (tables created before
#: the index moved; they keep that layout when resumed).
SUB, FLAT = "sub-group", "flat"
#: Fields of the watermark array, in order.
WATERMARK_FIELDS = ("n_chunks", "n_rows", "frame_origin", "frame_stop", "generation")
#: Fields of a row of ``chunk_ranges``.
CHUNK_FIELDS = ("frame_start", "frame_stop", "row_start", "row_stop", "id_hi", "id_lo")
#: Fields of chunk_ranges in stores written before chunk identities.
LEGACY_CHUNK_FIELDS = CHUNK_FIELDS[:4]
#: Rows per chunk of ``chunk_ranges``.
CHUNK_RANGES_CHUNK = 4096
#: Codecs daskloc's arrays may declare (what it writes, and zarr's other built-in
#: byte codecs); anything else is refused before any chunk is decoded.
_SAFE_CODECS = frozenset({"bytes", "blosc", "zstd", "gzip", "crc32c", "transpose"})
#: Zarr's temporary files (a LocalStore writes ``<key>.<hex>.partial`` then renames it).
_PARTIAL_SUFFIX = ".partial"

class _DurableLocalStore(LocalStore):
    """A LocalStore that fsyncs every key it writes before the write returns.

    LocalStore (zarr >= 3.1.3) writes each key to a temporary file and renames it into
    place, so readers see a key whole or not at all; the fsync makes the order of writes
    (data first, watermark last) also hold after a power loss.
    """

    async def set(self, key, value):
        await super().set(key, value)
        await asyncio.to_thread(fsync, self.root / key)

    async def set_if_not_exists(self, key, value):
        await super().set_if_not_exists(key, value)
        await asyncio.to_thread(fsync, self.root / key)

    def set_sync(self, key, value):
        super().set_sync(key, value)
        fsync(self.root / key)


def _merge_ranges(ranges):
    """Sorted ``(start, stop)`` ranges with touching neighbours merged."""
    out = []
    for a, b in sorted((int(a), int(b)) for a, b in ranges):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _zsync(coro):
    """Run a coroutine on zarr's event loop and return its result.

    zarr-python 3 has no public function for this, and it is needed: the async API
    (``zarr.api.asynchronous``, ``AsyncArray``, ``Store.get/set/list_dir``) is public,
    but a store's connections (s3fs's aiohttp session) belong to the loop zarr's own
    synchronous API runs them on, so running our coroutines on another loop
    (``asyncio.run``) would break them. This is the one use of zarr's internals
    (``zarr.core.sync.sync``, what ``zarr.Array``'s methods call).
    """
    from zarr.core.sync import sync

    return sync(coro)


def _gather(coros):
    """Run coroutines concurrently on zarr's event loop; return their results in order."""

    async def _all():
        return await asyncio.gather(*coros)

    return _zsync(_all())


@dataclass(frozen=True)
class _Mark:
    """The watermark: what readers may trust."""

    n_chunks: int
    n_rows: int
    frame_origin: int
    frame_stop: int
    generation: int

    @classmethod
    def from_array(cls, values):
        return cls(*(int(v) for v in values))

    @property
    def n_edges(self):
        """Committed length of ``frame_offsets``."""
        return self.frame_stop - self.frame_origin + 1 if self.n_chunks else 0


class _Handles:
    """Open zarr objects of one store (dropped when the store is pickled)."""

    def __init__(self, store, writable):
        self.store = store
        self.writable = writable
        self.reset()

    #: Where the index arrays are (:data:`SUB` or :data:`FLAT`); None: not known yet
    #: (found when the watermark is opened afresh).
    layout = None
    #: True once this writer removed the consolidated metadata describing the table
    #: (see :meth:`ZarrStore._unconsolidate`); False again after :meth:`ZarrStore.finish`.
    unconsolidated = False

    def reset(self, arrays=None, generation=None):
        """Forget the open arrays (a new dict: readers in other threads keep theirs)."""
        self.arrays = {} if arrays is None else arrays
        self.generation = generation
        #: The writer's copy of each array's last, partly filled zarr chunk:
        #: ``{name: (first row, rows)}`` (see :meth:`ZarrStore.append_chunk`).
        self.tails = {}

    def close(self):
        self.reset()
        self.store.close()


class ZarrStore(FeatureStore):
    """Features as a ragged Zarr (v3) table, appended in frame order by one writer.

    Parameters
    ----------
    path : str or os.PathLike
        The store: a local directory (conventionally ending in ``.zarr``) or an fsspec URL
        such as ``s3://bucket/features.zarr``.
    table : str, optional
        Sub-group holding this result set (``"bulk_water/features"``); None (default)
        puts the table in the root group, where ``xarray.open_zarr(path)`` finds it.
    storage_options : dict, optional
        fsspec options for a URL (e.g. ``{"endpoint_url": ..., "key": ..., "secret":
        ...}`` for S3). Not accepted for local paths. For ``s3://`` the store adds
        ``max_concurrency=1`` unless given (s3fs would otherwise send a HEAD before every
        GET of a whole object).
    chunk_rows : int, optional
        Rows per zarr chunk of the column arrays and entries per chunk of
        ``frame_offsets`` (default 65536: 512 KiB of float64). A frame-range read decodes
        whole chunks: smaller chunks read less for short ranges, larger ones compress
        slightly better; every append re-encodes the last, partly filled chunk.
    clevel : int, optional
        Blosc/zstd compression level, 0-9 (default 5).

        ``chunk_rows`` and ``clevel`` apply when the arrays are created (first append
        after :meth:`prepare` or :meth:`clear`); an existing table keeps its own.
    fsync : bool, optional
        For local stores: fsync every written key before the watermark is written
        (default True), so a power loss cannot leave a watermark pointing at unwritten
        data. Object storage PUTs are durable when they return.

    Raises
    ------
    ValueError
        ``storage_options`` given for a local path, or ``chunk_rows < 1``.

    Notes
    -----
    Layout of the table's group (details in the module docstring)::

        zarr.json          attributes {"daskloc": metadata document}
        <column>/          1-D, dim "feature", float64 (frame: int64), Blosc/zstd
        _daskloc/          the index (tables created before it moved: in the group)
            frame_offsets/ int64 (frame_stop - frame_origin + 1,), dim "frame_edge":
                           rows of frames [a, b) = offsets[a - origin]:offsets[b - origin]
            chunk_ranges/  int64 (n_chunks, 6): frame_start, frame_stop, row_start,
                           row_stop, id_hi, id_lo (the chunk's identity)
            watermark/     int64 (5,): n_chunks, n_rows, frame_origin, frame_stop,
                           generation -- the commit record, written last

    ``xarray.open_zarr(path)`` (``group=table``) is the feature table, without options
    once a job has ended: :meth:`finish` writes consolidated metadata at the store's
    root, and the first write of the next job removes it before anything else (while a
    job writes, pass ``consolidated=False`` and keep rows below the watermark).

    Appends are ordered and single-writer
    (``concurrent_writers = False``, ``ordered_appends = True``): :func:`daskloc.batch`
    brings each chunk's features to the client, which appends chunks in frame order.
    An append writes, in this order: the columns' new rows (after cutting off anything
    beyond the watermark), ``frame_offsets`` and ``chunk_ranges``, and last the
    watermark. The writer keeps a copy of each array's last, partly filled zarr chunk and
    writes from that chunk's first row, so zarr never reads a chunk back to merge the new
    rows in (each append encodes the partial chunk again, but decodes nothing). On S3 an
    append is about 25-35 requests (one PUT of ``zarr.json`` per resized array, one or
    two chunk PUTs per array, the watermark), sent concurrently. Each key is written
    atomically (LocalStore renames a temporary file into
    place since zarr 3.1.3; an object-store PUT is atomic), so a reader in another
    process that reads the watermark first and then only rows below it sees complete
    chunks only (``live_reads = True``). A writer killed mid-append leaves rows beyond
    the watermark: readers ignore them and the next append overwrites them, so resuming
    gives the table of an uninterrupted run.

    A chunk is appended once: appending a frame range that starts before the end of the
    last stored chunk (out of order, or again) raises ValueError; :meth:`clear` empties
    the table.
    """

    backend = "zarr"
    format_name = "Zarr"
    suffixes = (".zarr",)
    supports_remote = True
    lists_tables = True
    concurrent_writers = False
    ordered_appends = True
    live_reads = True

    def __init__(self, path, *, table=None, storage_options=None, chunk_rows=65536, clevel=5,
                 fsync=True):
        super().__init__(path, table=table)
        #: True for a URL (object storage through fsspec), False for a local directory.
        self.remote = "://" in self.path
        if storage_options and not self.remote:
            raise ValueError(
                f"storage_options apply to object-storage URLs (s3://...), not to the local "
                f"path {self.path!r}"
            )
        self.storage_options = dict(storage_options or {})
        self.chunk_rows = int(chunk_rows)
        if self.chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows!r}")
        self.clevel = int(clevel)
        self.fsync = bool(fsync)

    # -- zarr objects ------------------------------------------------------------
    @property
    def group_path(self):
        """str: Path of the table's group inside the store ("" for the root group)."""
        return self.table or ""

    def _key(self, name):
        return f"{self.group_path}/{name}" if self.group_path else name

    def _handles(self, writable=False):
        h = self.__dict__.get("_live_handles")
        if h is not None and (h.writable or not writable):
            return h
        if self.remote:
            store = FsspecStore.from_url(
                self.path, storage_options=fsspec_options(self.path, self.storage_options),
                read_only=False,
            )
            writable = True  # opening a remote store creates nothing: one handle serves both
        elif writable:
            store = (_DurableLocalStore if self.fsync else LocalStore)(self.path)
        else:
            store = LocalStore(self.path, read_only=True)
        if h is not None:
            h.close()
        h = _Handles(store, writable)
        self._live_handles = h
        return h

    def _node(self, name=None, writable=False):
        """Open the table's group (``name=None``) or a group or array in it; None if absent.

        Groups are opened without their consolidated metadata: daskloc never trusts it
        (it can be older than the arrays), and a group document written through such a
        handle (:meth:`write_metadata`) drops it."""
        h = self._handles(writable)
        path = self.group_path if name is None else self._key(name)
        mode = "r+" if writable else "r"
        try:
            if name is None or name == BOOKKEEPING:
                node = zarr.open_group(store=h.store, path=path, mode=mode, zarr_format=3,
                                       use_consolidated=False)
            else:
                node = zarr.open_array(store=h.store, path=path, mode=mode, zarr_format=3)
        except (FileNotFoundError, NotADirectoryError):  # zarr's NodeNotFoundError too
            return None
        except (ContainsArrayError, ContainsGroupError):  # a group where an array is
            return None                                   # expected, or vice versa
        return node

    def _rel(self, name, layout):
        """Path of a daskloc array inside the table's group, in a given layout."""
        return f"{BOOKKEEPING}/{name}" if name in _INDEX_NAMES and layout == SUB else name

    async def _open_async(self, h, name):
        """Open one array of the table on zarr's loop; None if it does not exist.

        An index array is looked for where :attr:`_Handles.layout` says; while the
        layout is not known, in the :data:`BOOKKEEPING` sub-group first, then beside
        the columns (a table created before the index moved), and the place it is found
        decides the layout.

        Raises MetadataError if its document cannot be read, UnsafeStoreError if it
        declares a codec daskloc never writes (the only way a Zarr array could make
        a reader run foreign code: a codec that unpickles, say)."""
        if name not in _INDEX_NAMES or h.layout is not None:
            return await self._open_at(h, name, self._rel(name, h.layout))
        for layout in (SUB, FLAT):
            a = await self._open_at(h, name, self._rel(name, layout))
            if a is not None:
                h.layout = layout
                return a
        return None

    async def _open_at(self, h, name, rel):
        try:
            a = await zarr.api.asynchronous.open_array(
                store=h.store, path=self._key(rel), mode="r+" if h.writable else "r",
                zarr_format=3)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (ValueError, TypeError, KeyError) as exc:  # unknown codecs or dtypes, garbage
            raise MetadataError(
                f"{self.url}: the array {name!r} cannot be opened ({type(exc).__name__}: "
                f"{exc}); its zarr.json is not one daskloc writes: if the store is yours, "
                "run the job again with overwrite=True (CLI: --overwrite)") from None
        codecs = [c.to_dict().get("name") for c in a.metadata.codecs]
        unknown = [c for c in codecs if c not in _SAFE_CODECS]
        if unknown:
            raise UnsafeStoreError(
                f"{self.url}: the array {name!r} declares codecs {unknown} that daskloc never "
                f"writes (it writes {sorted(_SAFE_CODECS)}); refusing to decode its data")
        return a

    def _arrays(self, needs, writable=False):
        """Cached handles on arrays of the table, each with at least the rows asked for.

        Parameters
        ----------
        needs : dict
            ``{array name: minimum length}``. Handles missing or shorter (opened before
            the writer grew the array) are (re)opened, all at once.

        Returns
        -------
        dict
            ``{array name: zarr.Array}``.

        Raises
        ------
        RuntimeError
            An array is missing or shorter than the watermark promises (the store was
            cleared during the read, or damaged).
        """
        h = self._handles(writable)
        cache = h.arrays  # replaced, never cleared, when the layout changes: thread-safe
        out, stale = {}, []
        for name, k in needs.items():
            arr = cache.get(name)
            if arr is None or arr.shape[0] < k:
                stale.append(name)
            else:
                out[name] = arr
        if stale:
            opened = _gather([self._open_async(h, n) for n in stale])
            for name, a in zip(stale, opened):
                if a is None:
                    raise RuntimeError(
                        f"array {name!r} of {self.url} disappeared (the store was cleared "
                        "while being read?)"
                    )
                if a.shape[0] < needs[name]:
                    raise RuntimeError(
                        f"array {name!r} of {self.url} has {a.shape[0]} rows but the "
                        f"watermark promises {needs[name]}: the store is damaged"
                    )
                out[name] = cache[name] = zarr.Array(a)
        return out

    def _array(self, name, min_len=0, writable=False):
        """A cached handle on one array of the table with at least ``min_len`` rows."""
        return self._arrays({name: min_len}, writable)[name]

    def _mark(self, writable=False):
        """Read the watermark (one small key). None when no layout exists yet."""
        h = self._handles(writable)
        wm = h.arrays.get(WATERMARK)
        if wm is not None:
            mark = _Mark.from_array(wm[:])
            if mark.generation == h.generation and mark.generation:
                return mark
        # No handle yet, or another layout (cleared and re-created): open afresh, and
        # find where the index is (a re-created table may have moved it).
        h.layout = None

        async def open_and_read():
            a = await self._open_async(h, WATERMARK)
            return (None, None) if a is None else (a, await a.getitem(slice(None)))

        a, values = _gather([open_and_read()])[0]
        if a is None:
            h.reset()
            return None
        mark = _Mark.from_array(values)
        h.reset({WATERMARK: zarr.Array(a)}, mark.generation)
        if mark.generation == 0:  # created, initial watermark not written yet
            return None
        return mark

    # -- lifecycle ---------------------------------------------------------------
    def location_exists(self):
        if not self.remote:
            return os.path.exists(self._local_dir())
        h = self._handles()

        async def _any():
            prefix = self.group_path + "/" if self.group_path else ""
            async for _ in h.store.list_prefix(prefix):
                return True
            return False

        try:
            return _zsync(_any())
        except FileNotFoundError:
            return False

    def exists(self):
        try:
            g = self._node()
        except (ValueError, TypeError, KeyError):  # a damaged group document: say so on
            return True                            # read_metadata, with the fix
        return g is not None and isinstance(g.attrs.get(METADATA_ATTR), dict)

    def list_tables(self):
        """Tables of the store: the groups below the root with a ``daskloc`` attribute.

        Returns
        -------
        list of str
            Sorted group paths (``"video=a"``, ``"bulk_water/features"``); the root
            group's own table (``table=None``) is not listed.
        """
        h = self._handles()
        try:
            root = zarr.open_group(store=h.store, path="", mode="r", zarr_format=3,
                                   use_consolidated=False)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except (ContainsArrayError, ContainsGroupError):  # the root is an array
            return []
        out, todo = [], [(root, "")]
        while todo:
            group, rel = todo.pop()
            with warnings.catch_warnings():  # zarr warns about non-zarr files (*.partial)
                warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
                subs = [(name, sub) for name, sub in
                        group.members(use_consolidated_for_children=False)
                        if isinstance(sub, zarr.Group) and name != BOOKKEEPING]
            for name, sub in subs:
                path = f"{rel}/{name}" if rel else name
                if isinstance(sub.attrs.get(METADATA_ATTR), dict):
                    out.append(path)
                todo.append((sub, path))
        return sorted(out)

    def _local_dir(self):
        """The table group's directory (local stores)."""
        if not self.group_path:
            return self.path
        return os.path.join(self.path, *self.group_path.split("/"))

    def _members(self, group):
        """``(daskloc nodes, foreign arrays)`` of a group: lists of names.

        daskloc's nodes are its arrays (attribute ``daskloc_role``) and the
        :data:`BOOKKEEPING` sub-group; other sub-groups (other tables) are neither."""
        ours, foreign = [], []
        with warnings.catch_warnings():  # zarr warns about non-zarr files (*.partial)
            warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
            members = list(group.members(use_consolidated_for_children=False))
        for name, node in members:
            if isinstance(node, zarr.Array):
                (ours if ROLE_ATTR in node.attrs else foreign).append(name)
            elif name == BOOKKEEPING:
                ours.append(name)
        return ours, foreign

    def _delete(self, h, names):
        """Delete daskloc nodes of the table's group, each watermark first: an
        interrupted delete leaves no watermark claiming arrays that are half gone."""
        first = ([f"{BOOKKEEPING}/{WATERMARK}"] if BOOKKEEPING in names else []) + (
            [WATERMARK] if WATERMARK in names else [])

        async def delete():
            for name in first:
                await h.store.delete_dir(self._key(name))
            await asyncio.gather(*(h.store.delete_dir(self._key(n))
                                   for n in names if n != WATERMARK))

        _zsync(delete())

    def _unconsolidate(self, force=False):
        """Remove consolidated metadata describing this table, before it is written.

        :meth:`finish` writes consolidated metadata into the table group's
        ``zarr.json`` (so that plain ``xarray.open_zarr`` needs no options); it holds
        every array's shape, and readers that use it trust those shapes. So before
        the first write of a job (and of any writer that did not write last), the
        consolidated metadata is dropped from the table's group and from every group
        above it (a table nested in another table's group is in that table's
        consolidated metadata too). Nothing else of the documents changes; each is
        replaced atomically. Done once per writer handle unless ``force``."""
        h = self._handles(writable=True)
        if h.unconsolidated and not force:
            return
        parts = self.group_path.split("/") if self.group_path else []
        proto = default_buffer_prototype()

        async def drop(path):
            key = f"{path}/zarr.json" if path else "zarr.json"
            buf = await h.store.get(key, prototype=proto)
            if buf is None:
                return
            try:
                doc = json.loads(buf.to_bytes())
            except (UnicodeDecodeError, json.JSONDecodeError):
                return  # damaged: not ours to fix here (clear and read_metadata say so)
            if (isinstance(doc, dict) and doc.get("node_type") == "group"
                    and "consolidated_metadata" in doc):
                del doc["consolidated_metadata"]
                await h.store.set(key, proto.buffer.from_bytes(
                    json.dumps(doc, indent=2).encode()))

        _gather([drop("/".join(parts[:i])) for i in range(len(parts), -1, -1)])
        h.unconsolidated = True

    def _check_root(self):
        """Refuse a location that holds something other than a zarr v3 hierarchy."""
        if self.remote:
            return
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise NotADirectoryError(
                f"cannot write the feature store at {self.path}: it exists and is a file, "
                "not a Zarr store directory; choose another output path (CLI: --out)"
            )
        if os.path.isdir(self.path):
            names = os.listdir(self.path)
            if ".zgroup" in names or ".zarray" in names:
                raise ValueError(
                    f"{self.path} is a Zarr format 2 store; daskloc writes Zarr format 3: "
                    "choose another output path (CLI: --out)"
                )
            if names and "zarr.json" not in names:
                raise ValueError(
                    f"{self.path} is a non-empty directory that is not a Zarr store (no "
                    f"zarr.json; it holds e.g. {sorted(names)[:3]}); refusing to write into "
                    "it: choose another output path (CLI: --out)"
                )

    def prepare(self):
        self._check_root()
        h = self._handles(writable=True)
        # Every group on the way must be a group (or absent), never an array.
        parts = self.group_path.split("/") if self.group_path else []
        for i in range(len(parts) + 1):
            sub = "/".join(parts[:i])
            node = None
            try:
                node = zarr.open(store=h.store, path=sub, mode="r", zarr_format=3)
            except Exception:  # noqa: BLE001 - absent (or unreadable: creating will say)
                node = None
            if isinstance(node, zarr.Array):
                raise ValueError(
                    f"{self.path}{'/' + sub if sub else ''} is a Zarr array, not a group; "
                    f"cannot hold the feature table {self.url}: choose another output path "
                    "or table"
                )
        try:
            group = self._node()
        except (ValueError, TypeError, KeyError):  # a damaged group document: the job's
            self._probe_write(h)                   # metadata check names it (and the fix)
            return
        if group is not None and not isinstance(group.attrs.get(METADATA_ATTR), dict):
            _, foreign = self._members(group)
            if foreign:
                raise ValueError(
                    f"{self.url} is a Zarr group that is not a daskloc store (no "
                    f"{METADATA_ATTR!r} attribute; it holds arrays {sorted(foreign)[:3]}); "
                    "refusing to write into it: choose another output path (CLI: --out) "
                    "or table"
                )
        try:
            if group is None:
                self._unconsolidate()  # a new group: no longer what a parent's says
                zarr.open_group(store=h.store, path=self.group_path, mode="a", zarr_format=3,
                                use_consolidated=False)
            else:  # prove the location writable without rewriting what a writer may
                self._probe_write(h)   # be writing now (this runs before the lease)
        except OSError as e:
            raise write_error(
                e,
                f"cannot write the feature store at {self.url} ({e.strerror or e}); choose a "
                "writable output path (CLI: --out), fix the permissions, or check that the "
                "bucket exists and storage_options may write there",
            ) from e

    def _probe_write(self, h):
        """Write and delete a probe key where no zarr reader lists it."""
        if not self.remote:
            d = self._local_dir()
            if not os.access(d, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return
        key = self._key(f"{BOOKKEEPING}/.daskloc-write-test-{secrets.token_hex(8)}")
        proto = default_buffer_prototype()
        _zsync(h.store.set(key, proto.buffer.from_bytes(b"daskloc")))
        _zsync(h.store.delete(key))

    def _clear_plan(self):
        """``(group or None, our array names)`` for :meth:`clear`; raises when the group
        is not a daskloc store. A group whose zarr.json is damaged gives ``(None,
        names)`` of the daskloc arrays found in it by their own documents."""
        self._check_root_for_clear()
        try:
            group = self._node(writable=False)
        except (ValueError, TypeError, KeyError):  # a damaged group document
            return None, self._damaged_members()
        if group is None:
            return None, []
        ours, foreign = self._members(group)
        is_store = isinstance(group.attrs.get(METADATA_ATTR), dict)
        if not is_store and foreign:
            raise ValueError(
                f"{self.url} is a Zarr group that is not a daskloc store (no "
                f"{METADATA_ATTR!r} attribute; it holds arrays {sorted(foreign)[:3]}); "
                "refusing to delete its contents"
            )
        return group, ours

    def _damaged_members(self):
        """Names of the daskloc arrays under a group whose own zarr.json is unreadable.

        Raises ValueError if the group holds arrays daskloc did not write."""
        h = self._handles(writable=True)
        proto = default_buffer_prototype()

        async def scan():
            prefix = self.group_path
            names = [k async for k in h.store.list_dir(prefix)]
            ours, foreign = [], []
            for name in names:
                if name == "zarr.json":
                    continue
                buf = await h.store.get(self._key(f"{name}/zarr.json"), prototype=proto)
                if buf is None:
                    continue  # a sub-folder without a document: not a node
                try:
                    doc = json.loads(buf.to_bytes())
                except (UnicodeDecodeError, json.JSONDecodeError):
                    doc = None
                if not isinstance(doc, dict):
                    foreign.append(name)
                    continue
                attrs = doc.get("attributes") if isinstance(doc, dict) else None
                if doc.get("node_type") == "group":
                    if name == BOOKKEEPING:
                        ours.append(name)  # the table's index
                    continue  # another table (or someone's group): left alone
                if isinstance(attrs, dict) and ROLE_ATTR in attrs:
                    ours.append(name)
                else:
                    foreign.append(name)
            return ours, foreign

        ours, foreign = _zsync(scan())
        if foreign:
            raise ValueError(
                f"{self.url}: the group's zarr.json is damaged and the group holds arrays "
                f"daskloc did not write ({sorted(foreign)[:3]}); refusing to clear it, "
                "nothing was removed: move those out, or delete the group yourself"
            )
        return ours

    def check_clear(self):
        self._clear_plan()

    def clear(self):
        group, ours = self._clear_plan()
        if group is None:
            if ours or self._group_doc_damaged():
                self._clear_damaged(ours)
            return
        self._unconsolidate()
        group = self._node(writable=True)
        # Metadata first, then the watermark: an interrupted clear leaves no store, and
        # no watermark claiming arrays that are half gone.
        if METADATA_ATTR in group.attrs:
            del group.attrs[METADATA_ATTR]
        h = self._handles(writable=True)
        self._delete(h, ours)
        h.reset()
        h.layout = None
        self._remove_partials(ours)
        if self.group_path and not list(group.members()) and not dict(group.attrs):
            _zsync(h.store.delete(self._key("zarr.json")))

    def _group_doc_damaged(self):
        try:
            self._node()
        except (ValueError, TypeError, KeyError):
            return True
        return False

    def _clear_damaged(self, ours):
        """Remove our arrays and replace the unreadable group document by an empty one."""
        self._unconsolidate()
        h = self._handles(writable=True)
        h.reset()
        h.layout = None
        self._delete(h, ours)
        proto = default_buffer_prototype()
        doc = json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
        _zsync(h.store.set(self._key("zarr.json"), proto.buffer.from_bytes(doc.encode())))
        self._remove_partials(ours)

    def _lease_ops(self):

        name = lease_name(self.path.rstrip("/"), self.table)
        if self.remote:
            import fsspec

            fs, root = fsspec.core.url_to_fs(
                self.path, **fsspec_options(self.path, self.storage_options))
            root = root.rstrip("/")
            if "/" not in root:
                raise ValueError(
                    f"{self.url}: a Zarr store at the top of a bucket has no place for its "
                    "writer's lease; put it under a prefix (s3://bucket/features.zarr)")
            return ObjectLeaseOps(fs, posixpath.join(posixpath.dirname(root), name))
        return LockFileOps(os.path.join(os.path.dirname(self.path), name))

    def _check_root_for_clear(self):
        if not self.remote and os.path.exists(self.path) and not os.path.isdir(self.path):
            raise NotADirectoryError(
                f"{self.path} is a file, not a daskloc store; not removing it"
            )

    def _remove_partials(self, arrays):
        """Delete zarr's temporary ``*.partial`` files (local stores) of the table."""
        if self.remote:
            return
        top = self._local_dir()
        dirs = [top] + [os.path.join(top, a) for a in arrays]
        for d in dirs:
            if not os.path.isdir(d):
                continue
            walker = [(d, [], os.listdir(d))] if d == top else os.walk(d)
            for root, _, files in walker:
                for f in files:
                    if f.endswith(_PARTIAL_SUFFIX):
                        p = os.path.join(root, f)
                        try:
                            if os.path.isdir(p):
                                shutil.rmtree(p)
                            else:
                                os.remove(p)
                        except FileNotFoundError:
                            pass

    def remove_temporary(self):
        """Delete zarr's temporary files and cut every array back to the watermark.

        Also removes consolidated metadata describing the table (every job calls this
        first, under its lease, before it writes anything else; see
        :meth:`_unconsolidate`)."""
        group = self._node()
        if group is None:
            return
        self._unconsolidate(force=True)
        self._trim(group)

    def _trim(self, group):
        ours, _ = self._members(group)
        self._remove_partials(ours)
        h = self._handles(writable=True)
        h.reset()  # shapes as they are on disk now, not as cached
        mark = self._mark(writable=True)
        if mark is None:
            return
        lengths = {c: mark.n_rows for c in self._stored_columns()}
        lengths[OFFSETS] = mark.n_edges
        lengths[CHUNK_RANGES] = mark.n_chunks
        arrays = self._arrays({name: 0 for name in lengths}, writable=True)
        jobs = [arr.async_array.resize((lengths[name],) + arr.shape[1:])
                for name, arr in arrays.items() if arr.shape[0] != lengths[name]]
        if jobs:
            _gather(jobs)

    def finish(self, last=True):
        """Write consolidated metadata for the store's root group (its ``zarr.json``).

        Called when a job's writes are over (under its lease): the table's arrays are
        cut back to the watermark first, so the consolidated shapes are the committed
        table. It covers the whole store (xarray reads consolidated metadata at the
        root, also for ``group=table``), so that ``xarray.open_zarr(path)`` and
        ``xarray.open_zarr(path, group=table)`` open without options or warning. It is
        written only with ``last`` (the last table of the store the batch finishes) and
        while no other process holds the lease of a table of the store (that writer
        writes it when it ends). The next write of any table removes it first
        (:meth:`_unconsolidate`); daskloc itself never reads it."""
        group = self._node()
        if group is None or not isinstance(group.attrs.get(METADATA_ATTR), dict):
            return
        self._trim(group)
        if not last or self._others_writing():
            return
        h = self._handles(writable=True)
        with warnings.catch_warnings():  # "not part of the Zarr format 3 specification"
            warnings.simplefilter("ignore", zarr.errors.ZarrUserWarning)
            _zsync(zarr.api.asynchronous.consolidate_metadata(h.store, path="",
                                                              zarr_format=3))
        h.unconsolidated = False

    def _others_writing(self):
        """True if a live writer of another process holds the lease of a table here."""
        me = (socket.gethostname(), os.getpid())
        for table in [None, *self.list_tables()]:
            if table == self.table:
                continue
            other = type(self)(self.path, table=table, storage_options=self.storage_options)
            holder = other.lease_holder()
            other.close()
            if holder is not None and not holder["stale"] and (
                    holder["host"], holder["pid"]) != me:
                return True
        return False

    # -- metadata ----------------------------------------------------------------
    def write_metadata(self, metadata):
        try:
            doc = json.loads(json.dumps(metadata, allow_nan=False))
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata must be plain JSON (no NaN, no objects): {e}") from None
        self._unconsolidate()
        group = self._node(writable=True)
        if group is None:
            self.prepare()
            group = self._node(writable=True)
        group.update_attributes({METADATA_ATTR: doc})

    def read_metadata(self):
        try:
            group = self._node()
        except (ValueError, TypeError, KeyError) as e:  # JSONDecodeError, UnicodeDecodeError
            raise MetadataError(
                f"{self.url}: the store's metadata is damaged: the group's zarr.json cannot "
                f"be read ({type(e).__name__}: {e}); if the store is yours, run the job "
                "again with overwrite=True (CLI: --overwrite) to locate it anew"
            ) from None
        if group is None:
            return None
        meta = group.attrs.get(METADATA_ATTR)
        if meta is None:
            return None
        return validate_metadata(meta, f"{self.url} (group attribute {METADATA_ATTR!r})")

    # -- chunks ------------------------------------------------------------------
    def _stored_columns(self):
        return list(self._array(WATERMARK).attrs.get("columns", []))

    def _create_layout(self, columns, dtypes):
        """Create empty column and index arrays; the watermark is created last."""
        group = self._node(writable=True)
        if group is None:
            self.prepare()
            group = self._node(writable=True)
        ours, _ = self._members(group)
        h = self._handles(writable=True)
        self._delete(h, ours)
        h.reset()
        h.layout = SUB
        sub = group.create_group(BOOKKEEPING, overwrite=True, attributes={
            ROLE_ATTR: "bookkeeping",
            "description": "daskloc's index of the feature table in the group above: "
                           "frame_offsets, chunk_ranges and the watermark (its commit "
                           "record); the columns are the arrays of that group"})

        def blosc(shuffle):
            return BloscCodec(cname="zstd", clevel=self.clevel, shuffle=shuffle)

        for name, dt in zip(columns, dtypes):
            dt = np.dtype(dt)
            floating = np.issubdtype(dt, np.floating)
            group.create_array(
                name, shape=(0,), dtype=dt, chunks=(self.chunk_rows,),
                compressors=[blosc("shuffle" if floating else "bitshuffle")],
                fill_value=np.nan if floating else 0, dimension_names=["feature"],
                attributes={**column_attrs(name), ROLE_ATTR: "column"},
                overwrite=True,
            )
        sub.create_array(
            OFFSETS, shape=(0,), dtype="int64", chunks=(self.chunk_rows,),
            compressors=[blosc("bitshuffle")], fill_value=0, dimension_names=["frame_edge"],
            attributes={
                ROLE_ATTR: OFFSETS,
                "description": "entry k: first row of frame frame_origin + k (and end of "
                               "frame frame_origin + k - 1); frame_origin is in watermark",
            },
            overwrite=True,
        )
        sub.create_array(
            CHUNK_RANGES, shape=(0, len(CHUNK_FIELDS)), dtype="int64",
            chunks=(CHUNK_RANGES_CHUNK, len(CHUNK_FIELDS)), compressors=[blosc("bitshuffle")],
            fill_value=0, dimension_names=["chunk", "chunk_field"],
            attributes={ROLE_ATTR: CHUNK_RANGES, "fields": list(CHUNK_FIELDS),
                        "description": "appended chunks: frames [frame_start, frame_stop) "
                                       "are rows [row_start, row_stop); the first n_chunks "
                                       "(watermark) rows are complete"},
            overwrite=True,
        )
        wm = sub.create_array(
            WATERMARK, shape=(len(WATERMARK_FIELDS),), dtype="int64",
            chunks=(len(WATERMARK_FIELDS),), compressors=None, fill_value=0,
            dimension_names=["watermark_field"],
            attributes={ROLE_ATTR: WATERMARK, "fields": list(WATERMARK_FIELDS),
                        "columns": list(columns),
                        "description": "written last by every append: only the first "
                                       "n_rows rows, n_chunks chunk ranges and frames "
                                       "[frame_origin, frame_stop) are complete"},
            overwrite=True,
        )
        generation = secrets.randbits(62) + 1
        wm[:] = np.array([0, 0, 0, 0, generation], dtype=np.int64)
        h.reset({WATERMARK: wm}, generation)
        return _Mark(0, 0, 0, 0, generation)

    def append_chunk(self, start, stop, features, chunk_id=None, skipped=()):
        start, stop, features = check_chunk_features(start, stop, features)
        frame = features["frame"].to_numpy()
        columns = [str(c) for c in features.columns]
        bad = [c for c in columns if c in _INDEX_NAMES or c == BOOKKEEPING]
        if bad:
            raise ValueError(f"feature columns may not be named {bad}: daskloc's index uses them")
        dtypes = [np.dtype(np.int64) if c == "frame" else features[c].dtype for c in columns]
        id_hi, id_lo = id_words(self._chunk_id_for(start, stop, chunk_id, skipped))

        self._unconsolidate()
        mark = self._mark(writable=True)
        stored = self._stored_columns() if mark is not None else None
        if mark is not None and mark.n_chunks:
            if start < mark.frame_stop:
                ranges = self._chunk_table(mark)
                again = any(r[0] == start and r[1] == stop for r in ranges)
                last = (int(ranges[-1][0]), int(ranges[-1][1]))
                raise ValueError(
                    f"chunk [{start}, {stop}) "
                    + ("is already stored" if again else f"comes before the last stored "
                       f"chunk [{last[0]}, {last[1]})")
                    + f" in {self.url}: a Zarr store takes each chunk once, in increasing "
                    "frame order (one writer at a time: daskloc.batch holds the store's "
                    "lease while it writes)"
                )
            if self._array(CHUNK_RANGES, writable=True).shape[1] != len(CHUNK_FIELDS):
                raise ValueError(
                    f"{self.url} was written by an older daskloc (chunks without "
                    "identities): it can be read but not appended to; run the job again "
                    "with overwrite=True (CLI: --overwrite)"
                )
            if stored != columns or any(
                self._array(c, writable=True).dtype != dt for c, dt in zip(columns, dtypes)
            ):
                raise ValueError(
                    f"chunk [{start}, {stop}) has columns {columns} but {self.url} holds "
                    f"{stored}; clear() the store to change the columns"
                )
        elif mark is None or stored != columns or any(
            self._array(c, writable=True).dtype != dt for c, dt in zip(columns, dtypes)
        ) or self._array(CHUNK_RANGES, writable=True).shape[1] != len(CHUNK_FIELDS):
            mark = self._create_layout(columns, dtypes)  # nothing committed: start afresh

        n_chunks, rows = mark.n_chunks, mark.n_rows
        origin = mark.frame_origin if n_chunks else start
        first_edge = mark.frame_stop if n_chunks else start  # frame of the first entry to write
        m = len(features)

        arrays = {c: self._array(c, writable=True) for c in columns}
        offsets = self._array(OFFSETS, writable=True)
        chunk_ranges = self._array(CHUNK_RANGES, writable=True)

        # New entries of frame_offsets: the first rows of frames first_edge..stop-1 and the
        # end of frame stop-1. (The entry of first_edge itself, the end of the previous
        # chunk, is already committed with the value ``rows``.)
        k0 = first_edge - origin + (1 if n_chunks else 0)
        k1 = stop - origin + 1
        edges = np.arange(origin + k0, stop + 1, dtype=np.int64)
        starts = rows + np.searchsorted(frame, edges, side="left").astype(np.int64)
        row = np.array([[start, stop, rows, rows + m, id_hi, id_lo]], dtype=np.int64)

        tails = self._handles(writable=True).tails

        async def put(name, arr, length, at, values):
            """Resize ``arr`` to ``length`` and write ``values`` from row ``at`` on.

            The write starts at the first row of the zarr chunk holding ``at``: the rows
            before ``at`` in that chunk come from the writer's copy (``tails``), so
            zarr writes whole chunks and never reads one back to merge (a GET and a
            decode per array per append, on object storage a round trip)."""
            a = arr.async_array
            if a.shape[0] != length:
                await a.resize((length,) + a.shape[1:])
            if values is None or not len(values):
                return
            size = a.chunks[0]
            first = at // size * size
            if first < at:
                tail = tails.get(name)
                if tail is None or tail[0] != first or len(tail[1]) != at - first:
                    tail = (first, await a.getitem(slice(first, at)))
                values = np.concatenate([np.asarray(tail[1], dtype=a.dtype), values])
            await a.setitem(slice(first, first + len(values)), values)
            end = first + len(values)
            tails[name] = (end // size * size, values[end // size * size - first:].copy())

        jobs = [
            put(c, arr, rows + m, rows, features[c].to_numpy(dtype=arr.dtype))
            for c, arr in arrays.items()
        ]
        jobs.append(put(OFFSETS, offsets, k1, k0, starts))
        jobs.append(put(CHUNK_RANGES, chunk_ranges, n_chunks + 1, n_chunks, row))
        _gather(jobs)
        # The commit: one small key, written after everything it points to.
        wm = self._array(WATERMARK, writable=True)
        wm[:] = np.array([n_chunks + 1, rows + m, origin, stop, mark.generation], dtype=np.int64)

    def _chunk_table(self, mark):
        """The committed rows of ``chunk_ranges``: int64 array, shape (n_chunks, 4)."""
        if mark is None or not mark.n_chunks:
            return np.empty((0, len(CHUNK_FIELDS)), dtype=np.int64)
        return np.asarray(self._array(CHUNK_RANGES, mark.n_chunks)[: mark.n_chunks])

    def complete_chunks(self):
        table = self._chunk_table(self._mark())
        return [(int(r[0]), int(r[1])) for r in table]

    def chunk_ids(self, chunks=None):
        table = self._chunk_table(self._mark())
        wanted = None if chunks is None else {(int(a), int(b)) for a, b in chunks}
        out = {}
        for r in table:
            c = (int(r[0]), int(r[1]))
            if wanted is None or c in wanted:
                cid = id_from_words(r[4], r[5]) if len(r) >= 6 else None
                out[c] = ChunkMark(cid, None, int(r[3] - r[2]))
        return out

    def n_rows(self, chunks=None):
        mark = self._mark()
        if mark is None:
            return 0
        if chunks is None:
            return mark.n_rows
        wanted = {(int(a), int(b)) for a, b in chunks}
        return int(sum(r[3] - r[2] for r in self._chunk_table(mark)
                       if (int(r[0]), int(r[1])) in wanted))

    # -- reading -----------------------------------------------------------------
    def row_runs(self, lo, hi, wanted=None, mark=None):
        """The row ranges holding a frame selection (from two or a few index entries).

        Parameters
        ----------
        lo, hi : int
            The selection lies in frames ``[lo, hi)``.
        wanted : numpy.ndarray of int64, optional
            Exact sorted frames; None means every frame in ``[lo, hi)``.
        mark : optional
            The watermark to read under (default: read it now).

        Returns
        -------
        list of (int, int)
            Disjoint, increasing ``[row_start, row_stop)`` ranges of the column arrays,
            all below the watermark's ``n_rows``; consecutive frames give one range.
        """
        mark = self._mark() if mark is None else mark
        if mark is None or not mark.n_chunks:
            return []
        origin, fstop = mark.frame_origin, mark.frame_stop
        offsets = self._array(OFFSETS, mark.n_edges)
        if wanted is None:
            a, b = max(lo, origin), min(hi, fstop)
            if b <= a:
                return []
            r0, r1 = (int(v) for v in offsets.get_orthogonal_selection(
                (np.array([a - origin, b - origin]),)))
            return [(r0, r1)] if r1 > r0 else []
        w = np.asarray(wanted, dtype=np.int64)
        w = w[(w >= origin) & (w < fstop)]
        if not w.size:
            return []
        k = w - origin
        idx = np.unique(np.concatenate([k, k + 1]))
        values = np.asarray(offsets.get_orthogonal_selection((idx,)))
        starts = values[np.searchsorted(idx, k)]
        stops = values[np.searchsorted(idx, k + 1)]
        runs = []
        for s, e in zip(starts.tolist(), stops.tolist()):
            if e <= s:
                continue
            if runs and runs[-1][1] == s:
                runs[-1] = (runs[-1][0], e)
            else:
                runs.append((s, e))
        return runs

    def _read_chunks(self, lo, hi, wanted, columns, meta, chunks=None):
        # One read of the watermark and of the chunk table: candidates and identities.
        mark = self._mark()
        verifier = ChunkVerifier(meta)
        chosen = []
        for r in self._chunk_table(mark):
            c = (int(r[0]), int(r[1]))
            if chunks is not None and c not in chunks:
                continue
            if chunk_may_hold(*c, lo, hi, wanted) and verifier.accepts(
                    c, ChunkMark(id_from_words(r[4], r[5]) if len(r) >= 6 else None)):
                chosen.append(c)
        return self._read_selection(lo, hi, wanted, columns, chosen, mark)

    def _read_selection(self, lo, hi, wanted, columns, chunks, mark=None):
        mark = self._mark() if mark is None else mark
        if mark is None or not mark.n_chunks or not chunks:
            return None
        stored = self._stored_columns()
        names = [c for c in columns if c in stored]
        # Open the index and every column at once (one round trip), then read.
        arrays = self._arrays({OFFSETS: mark.n_edges} | {c: mark.n_rows for c in names})
        runs = []
        for a, b in _merge_ranges(chunks):  # only the chunks asked for (verified ones)
            a, b = max(a, lo), min(b, hi)
            if a >= b:
                continue
            w = None if wanted is None else wanted[(wanted >= a) & (wanted < b)]
            if w is not None and not w.size:
                continue
            for r in self.row_runs(a, b, w, mark):
                if runs and runs[-1][1] == r[0]:
                    runs[-1] = (runs[-1][0], r[1])
                else:
                    runs.append(r)
        if not runs:
            return None
        if len(runs) == 1:
            sel = slice(*runs[0])
            jobs = [arrays[c].async_array.getitem(sel) for c in names]
        else:
            index = np.concatenate([np.arange(s, e, dtype=np.int64) for s, e in runs])
            jobs = [arrays[c].async_array.get_orthogonal_selection((index,)) for c in names]
        data = _gather(jobs)
        return pd.DataFrame({
            c: np.asarray(v).astype(columns[c], copy=False) for c, v in zip(names, data)
        })
