"""The registry of store formats: which :class:`FeatureStore` class opens a location.

Every store class says what it opens and what it can do in class attributes
(:attr:`FeatureStore.suffixes`, :attr:`FeatureStore.url_schemes`,
:attr:`FeatureStore.supports_remote`, ...). The registry is the list of those classes:
daskloc's own (Parquet, Zarr, HDF5, SQL), then third-party classes announced through
the entry-point group ``daskloc.stores``, then classes given to :func:`register_store`.
It is built on first use (so ``import daskloc.stores`` imports no backend library) and
answers every question about locations: :func:`store_class` picks the class of a path or
URL, :func:`store_formats` lists them, :func:`open_store` opens one.

A third-party package registers its store in its ``pyproject.toml``::

    [project.entry-points."daskloc.stores"]
    jsonl = "mypackage.store:JSONLinesStore"

A plugin that cannot be imported, or that is not a :class:`FeatureStore` subclass, is
left out with a warning naming it (``daskloc.stores.StorePluginWarning``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import os
import threading
import warnings

from daskloc.stores._names import VIDEO_KEY, video_table
from daskloc.stores.base import FeatureStore, MetadataError, check_table_name

__all__ = [
    "ENTRY_POINT_GROUP",
    "OBJECT_SCHEMES",
    "StoreFormat",
    "StorePluginWarning",
    "clear_registry_cache",
    "open_store",
    "register_backend",
    "register_store",
    "store_class",
    "store_formats",
]

#: Entry-point group through which other packages add store classes.
ENTRY_POINT_GROUP = "daskloc.stores"
#: daskloc's own store classes, in the order they are listed (imported on first use).
BUILTIN_STORES = (
    "daskloc.stores.parquet:ParquetStore",
    "daskloc.stores.zarr:ZarrStore",
    "daskloc.stores.hdf5:HDF5Store",
    "daskloc.stores.sql:SQLStore",
)
#: URL schemes of object storage (through fsspec): a class with ``supports_remote``
#: opens URLs of these schemes that end in one of its suffixes.
OBJECT_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "memory")


class StorePluginWarning(UserWarning):
    """A store plugin (entry point ``daskloc.stores``) could not be used."""


@dataclasses.dataclass(frozen=True)
class StoreFormat:
    """One registered store format, as :func:`store_formats` lists it.

    Attributes
    ----------
    name : str
        The backend's name (:attr:`FeatureStore.backend`, e.g. ``"parquet"``).
    store_class : type
        The :class:`FeatureStore` subclass.
    suffixes : tuple of str
        File-name suffixes it opens (``".parquet"``, ...).
    url_schemes : tuple of str
        URL schemes it opens (the part before ``+`` of ``postgresql+psycopg://``).
    capabilities : dict
        ``{name: bool}`` of :data:`daskloc.stores.base.CAPABILITIES`.
    origin : str
        ``"daskloc"``, ``"entry point <name> (<distribution>)"`` or ``"register_store"``.
    """

    name: str
    store_class: type
    suffixes: tuple
    url_schemes: tuple
    capabilities: dict
    origin: str


_LOCK = threading.RLock()
_CACHE = None  # list of (class, origin), built on first use
_BUILTIN = {}  # "module:Class" of BUILTIN_STORES -> class, each imported on first need
_REGISTERED = []  # classes given to register_store, in order
_SUFFIX_OVERRIDES = {}  # register_backend: suffix -> class or "module:Class"


def _load(target):
    """A class from ``"module:Class"`` (or the class itself)."""
    if isinstance(target, str):
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)
    return target


def _warn(what, why):
    warnings.warn(f"daskloc: the store plugin {what} is left out: {why}",
                  StorePluginWarning, stacklevel=4)


def _builtin(target):
    """The builtin store class named ``target``, imported once."""
    with _LOCK:
        cls = _BUILTIN.get(target)
        if cls is None:
            cls = _BUILTIN[target] = _load(target)
        return cls


def _classes():
    """The registered classes in lookup order, imported as the lookup reaches them.

    daskloc's own come first and claim their suffixes and schemes before any plugin, so
    a lookup that one of them answers (``f.parquet``) imports neither the other stores'
    modules (SQLAlchemy, zarr: half a second) nor the entry points.
    """
    for target in BUILTIN_STORES:
        yield _builtin(target)
    for cls, _ in _entries()[len(BUILTIN_STORES):]:
        yield cls


def _plugins():
    """``[(class, origin)]`` of the entry points of ``daskloc.stores`` that load."""
    out = []
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                     key=lambda e: e.name):
        dist = getattr(getattr(ep, "dist", None), "name", None)
        what = f"{ep.name!r} ({ep.value}{', from ' + dist if dist else ''})"
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin: leave it out
            _warn(what, f"it cannot be imported ({type(exc).__name__}: {exc})")
            continue
        if not (isinstance(cls, type) and issubclass(cls, FeatureStore)):
            _warn(what, f"{cls!r} is not a subclass of daskloc.stores.FeatureStore")
            continue
        out.append((cls, f"entry point {ep.name}" + (f" ({dist})" if dist else "")))
    return out


def _entries():
    """The registered classes with their origin, built on first use."""
    global _CACHE
    with _LOCK:
        if _CACHE is None:
            entries = [(_builtin(t), "daskloc") for t in BUILTIN_STORES]
            seen = {cls for cls, _ in entries}
            for cls, origin in _plugins():
                if cls not in seen:
                    entries.append((cls, origin))
                    seen.add(cls)
            _CACHE = entries
        return _CACHE + [(cls, "register_store") for cls in _REGISTERED
                         if cls not in {c for c, _ in _CACHE}]


def clear_registry_cache():
    """Forget the classes found so far: the next lookup reads the entry points again.

    For tests and for sessions that install a store plugin after daskloc was imported.
    Classes given to :func:`register_store` stay registered.
    """
    global _CACHE
    with _LOCK:
        _CACHE = None


def register_store(cls):
    """Add a store class to the registry (usable as a class decorator).

    Parameters
    ----------
    cls : type
        A :class:`FeatureStore` subclass declaring its :attr:`~FeatureStore.suffixes`
        and/or :attr:`~FeatureStore.url_schemes`. It comes after daskloc's own and the
        entry points' classes: a suffix or scheme one of those claims stays theirs.

    Returns
    -------
    type
        ``cls``.
    """
    if not (isinstance(cls, type) and issubclass(cls, FeatureStore)):
        raise TypeError(f"{cls!r} is not a subclass of daskloc.stores.FeatureStore")
    with _LOCK:
        if cls not in _REGISTERED:
            _REGISTERED.append(cls)
    return cls


def register_backend(suffix, target):
    """Open paths ending in ``suffix`` with ``target``, before any registered class.

    Parameters
    ----------
    suffix : str
        E.g. ``".zarr"`` (case-insensitive).
    target : str or type
        A :class:`FeatureStore` subclass or its ``"module:Class"`` name.

    See Also
    --------
    register_store : add a class that declares its own suffixes and schemes.
    """
    with _LOCK:
        _SUFFIX_OVERRIDES[suffix.lower()] = target


def store_formats():
    """The store formats daskloc can open, daskloc's own first.

    Returns
    -------
    list of StoreFormat
        One entry per class: its name, class, suffixes, URL schemes and capabilities.

    Examples
    --------
    >>> [f.name for f in store_formats()][:4]
    ['parquet', 'zarr', 'hdf5', 'sql']
    """
    return [
        StoreFormat(cls.backend or cls.__name__, cls, tuple(cls.suffixes),
                    tuple(cls.url_schemes), cls.capabilities(), origin)
        for cls, origin in _entries()
    ]


def _split(location):
    """``(scheme, base scheme, suffix)`` of a location (scheme "" for a local path)."""
    scheme = location.split("://", 1)[0].lower() if "://" in location else ""
    suffix = os.path.splitext(location.rstrip("/" + os.sep))[1].lower()
    return scheme, scheme.split("+", 1)[0], suffix


def _by_suffix(suffix, classes):
    if suffix in _SUFFIX_OVERRIDES:
        return _load(_SUFFIX_OVERRIDES[suffix])
    return next((c for c in classes if suffix in c.suffixes), None)


def _names(names, sep=" or "):
    """``"a, b or c"``."""
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return ", ".join(names[:-1]) + sep + names[-1]


def store_class(location):
    """The store class that opens a location.

    Parameters
    ----------
    location : str
        A local path (chosen by its suffix; a path no class claims is the
        :attr:`~FeatureStore.fallback` class's, Parquet), a URL of a scheme a class
        claims (``sqlite:///f.db``), or an object-storage URL (``s3://``, ...) ending in
        the suffix of a class that :attr:`~FeatureStore.supports_remote`.

    Returns
    -------
    type
        A :class:`FeatureStore` subclass.

    Raises
    ------
    ValueError
        An unknown URL scheme, or a format that object storage cannot hold (the message
        lists what is possible).
    """
    scheme, base, suffix = _split(location)
    if scheme in ("", "file"):
        cls = _by_suffix(suffix, _classes())
        if cls is None:
            cls = next(c for c in _classes() if c.fallback)
        return cls
    classes = [cls for cls, _ in _entries()]
    for cls in classes:
        if base in cls.url_schemes:
            return cls
    remote = [c for c in classes if c.supports_remote]
    if base in OBJECT_SCHEMES:
        cls = _by_suffix(suffix, remote)
        if cls is not None and cls.supports_remote:
            return cls
        raise ValueError(
            "only " + _names([f"{c.format_name} ({c.suffixes[0]})" for c in remote], " and ")
            + f" stores can live on object storage; {location!r} has "
            + ("neither suffix" if len(remote) == 2 else "none of those suffixes")
        )
    local = [c.suffixes[0] for c in classes if c.suffixes]
    urls = [f"{c.url_description} ({', '.join(c.url_examples)})"
            for c in classes if c.url_schemes and c.url_description]
    remote_suffixes = _names([c.suffixes[0] for c in remote])
    raise ValueError(
        f"unknown store location {location!r}: use a path ending in {_names(local)}, "
        + "".join(f"{u}, " for u in urls[:-1])
        + (f"{urls[-1]} " if urls else "")
        + f"or an s3:// URL ending in {remote_suffixes}"
    )


def is_store_location(location):
    """Whether a path or URL names a store by its own suffix or scheme.

    Unlike :func:`store_class`, a local path whose suffix no class claims is not a
    store location here (no fallback), and nothing raises.

    Parameters
    ----------
    location : str

    Returns
    -------
    bool
    """
    scheme, base, suffix = _split(location)
    if scheme == "":  # a local path: its suffix decides (no class claims the scheme "")
        return _by_suffix(suffix, _classes()) is not None
    classes = [cls for cls, _ in _entries()]
    if any(base in c.url_schemes for c in classes):
        return True
    if scheme == "file":
        return _by_suffix(suffix, classes) is not None
    if base in OBJECT_SCHEMES:
        cls = _by_suffix(suffix, [c for c in classes if c.supports_remote])
        return cls is not None and cls.supports_remote
    return False


def _split_table(location, table):
    """``"path#table"`` -> (path, table); an explicit ``table`` must agree."""
    if "#" in location and "://" not in location.split("#", 1)[1]:
        location, _, from_url = location.partition("#")
        named = check_table_name(from_url)
        base, _, last = named.rpartition("/")
        if table is not None and check_table_name(table) not in (
                named, video_table(last, base or None)):
            raise ValueError(f"two table names given: {from_url!r} in the location and {table!r}")
        table = from_url
    return location, table


def _listed_tables(store):
    """The tables below a store's location (``[]`` if its class cannot list them)."""
    if store.table is not None or not store.lists_tables:
        return []
    try:
        return list(store.list_tables())
    except (NotImplementedError, OSError, ValueError):
        return []


def open_store(path, mode="r", *, table=None, storage_options=None, **options):
    """Open a feature store, choosing the backend from the location.

    Parameters
    ----------
    path : str, os.PathLike or FeatureStore
        Where the store is:

        - a local path ending in ``.parquet`` (or no suffix: Parquet), ``.zarr``,
          ``.h5``/``.hdf5``, or a ``file://`` URL;
        - an SQLAlchemy URL: ``sqlite:///features.db``,
          ``postgresql+psycopg://user:pw@host/db``, ``mysql+pymysql://user:pw@host/db``;
        - an object-storage URL ending in ``.parquet`` or ``.zarr``
          (``s3://bucket/features.zarr``), opened through fsspec;
        - a location of a store format added by a plugin (see :func:`store_formats`).

        ``LOCATION#TABLE`` names a table as ``table`` does; read from a store of a
        many-video batch, ``LOCATION#NAME`` is the video ``NAME`` (table
        ``video=NAME``) when there is no table ``NAME``. A :class:`FeatureStore` is
        returned as is.
    mode : {"r", "a"}
        ``"r"``: the store must exist. ``"a"``: the store may not exist yet; nothing is
        touched until :meth:`FeatureStore.prepare` or a write.
    table : str, optional
        One result set among several in the same store (``"bulk_water/features"``).
    storage_options : dict, optional
        fsspec options for object storage (e.g. ``{"endpoint_url": ..., "key": ...,
        "secret": ...}``).
    **options
        Passed to the backend (e.g. ``row_group_rows`` for Parquet).

    Returns
    -------
    FeatureStore

    Raises
    ------
    FileNotFoundError
        ``mode="r"`` and there is no store (or no such table) at the location.
    ValueError
        ``mode="r"`` and the location is not a daskloc store (a store whose tables are
        all named: the message lists them); an unknown mode or location; a bad table
        name.
    """
    if isinstance(path, FeatureStore):
        if table is not None and check_table_name(table) != path.table:
            raise ValueError(f"{path!r} is already open on table {path.table!r}, not {table!r}")
        return path
    if mode not in ("r", "a"):
        raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
    location, table = _split_table(os.fspath(path), table)
    if location.startswith("file://"):
        location = location[len("file://"):]
    cls = store_class(location)
    if storage_options is not None:
        options["storage_options"] = storage_options
    store = cls(location, table=table, **options)
    base, _, last = (table or "").rpartition("/")
    if (mode == "r" and table is not None and not last.startswith(f"{VIDEO_KEY}=")
            and not store.exists()):
        # STORE#NAME of a many-video store: the video NAME, table "[base/]video=NAME"
        # (reading only: a job asked to write table NAME writes table NAME)
        of_video = cls(location, table=video_table(last, base or None), **options)
        if of_video.exists():
            store = of_video
    if mode == "r":
        if not store.exists():
            if not store.location_exists():
                raise FileNotFoundError(f"no feature store at {store.url}: the path does not exist")
            try:
                orphans = len(store.complete_chunks())
            except Exception:  # noqa: BLE001 - not a store at all: the message below
                orphans = 0
            if orphans:
                raise MetadataError(
                    f"{store.url} holds {orphans} chunks of daskloc features but no metadata "
                    "(its metadata document is missing or was deleted), and daskloc reads no "
                    "chunk it cannot check: run the job that wrote it again (its chunks are "
                    "kept if they are that job's, else it is refused), or with "
                    "overwrite=True (CLI: --overwrite)"
                )
            tables = _listed_tables(store)
            if tables:
                shown = ", ".join(tables[:10]) + (", ..." if len(tables) > 10 else "")
                raise ValueError(
                    f"{store.url} holds {len(tables)} named table"
                    f"{'s' if len(tables) != 1 else ''} and none at its root: {shown}; "
                    f"name one, e.g. {location}#{tables[0]} (table={tables[0]!r})"
                )
            raise ValueError(
                f"{store.url} is not a daskloc feature store (it has no daskloc metadata"
                f"{'' if store.table is None else ' for table ' + repr(store.table)}); "
                "point to a store written by daskloc batch / daskloc locate --out"
            )
    return store
