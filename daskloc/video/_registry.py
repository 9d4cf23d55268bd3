"""The registry of video sources: which :class:`~daskloc.video.Source` opens a thing.

Built from the built-in source classes and, lazily on first use, the third-party
readers of the ``daskloc.readers`` entry point group (see :mod:`daskloc.video`).
Sources are asked in increasing :attr:`~daskloc.video.Source.priority`, ties in
registration order (built-ins first).
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import namedtuple
from importlib.metadata import entry_points
from pathlib import Path

from daskloc._utils import is_glob, natural_key
from daskloc.video._base import Position, Source, UnsupportedSourceError, is_path
from daskloc.video.arrays import ArraySource
from daskloc.video.czi import CziSource
from daskloc.video.images import ImageSequenceSource
from daskloc.video.movie import MovieSource
from daskloc.video.omezarr import OmeZarrSource
from daskloc.video.pims import PimsSource
from daskloc.video.tiff import TiffSource
from daskloc.video.zarr import ZarrSource

__all__ = [
    "ENTRY_POINT_GROUP",
    "Found",
    "Registry",
    "classify",
    "find_videos",
    "open_source",
    "positions",
    "reload_readers",
    "source_for",
    "sources",
    "supported",
]

#: The entry point group third-party readers register :class:`Source` subclasses in.
ENTRY_POINT_GROUP = "daskloc.readers"

#: The built-in sources, in registration order.
BUILTIN_SOURCES = (ArraySource, PimsSource, OmeZarrSource, ZarrSource, MovieSource, TiffSource,
                   CziSource, ImageSequenceSource)

#: The order in which the "supported sources" message lists the built-ins.
_SUMMARY_ORDER = (MovieSource, TiffSource, CziSource, ImageSequenceSource, OmeZarrSource,
                  ZarrSource, ArraySource, PimsSource)

Found = namedtuple("Found", ["kind", "source", "stem"])
Found.__doc__ = """What :func:`classify` found out about one item.

Attributes
----------
kind : {"video", "frame", "unknown"}
    A whole video; one frame of an image sequence; cannot tell (a path no source
    recognises, a missing or unreadable file).
source : type or None
    The :class:`~daskloc.video.Source` subclass that recognised the item.
stem : str or None
    For a path, the video's name without its format's suffix (a file's stem, a
    folder's name, the stem of ``frames.zarr``); None for other items.
"""


class Registry:
    """An ordered collection of :class:`~daskloc.video.Source` classes.

    Parameters
    ----------
    builtins : sequence of type
        Source classes always present, in registration order.
    group : str or None
        Entry point group whose entries (each a ``module:Class`` of a ``Source``
        subclass) are added on first use; None for none.

    Notes
    -----
    An entry point that cannot be loaded, is not a ``Source`` subclass, or whose
    ``can_open`` raises gives a ``RuntimeWarning`` naming it and is then ignored; it
    never breaks opening what other sources read.
    """

    def __init__(self, builtins=BUILTIN_SOURCES, group=ENTRY_POINT_GROUP):
        self.builtins = tuple(builtins)
        self.group = group
        self._lock = threading.Lock()
        self._sources = None
        self._broken = set()

    def reload(self):
        """Forget the loaded plugins: the entry points are read again on next use."""
        with self._lock:
            self._sources = None
            self._broken = set()

    def _plugins(self):
        if self.group is None:
            return []
        found = []
        for ep in entry_points(group=self.group):
            try:
                cls = ep.load()
            except Exception as exc:  # noqa: BLE001 - any failure of a plugin's import
                _warn(f"cannot load the video reader {ep.name!r} ({ep.value}) of entry "
                      f"point group {self.group!r}: {type(exc).__name__}: {exc}; it is "
                      "ignored")
                continue
            if not (isinstance(cls, type) and issubclass(cls, Source)):
                _warn(f"the video reader {ep.name!r} ({ep.value}) of entry point group "
                      f"{self.group!r} is not a daskloc.video.Source subclass; it is "
                      "ignored")
                continue
            if cls not in found and cls not in self.builtins:
                found.append(cls)
        return found

    def sources(self):
        """The source classes, in the order they are asked.

        Returns
        -------
        list of type
            Built-ins and plugins sorted by ``priority`` (stable: built-ins first among
            equals).
        """
        with self._lock:
            if self._sources is None:
                every = list(self.builtins) + self._plugins()
                self._sources = sorted(every, key=lambda cls: cls.priority)
            return list(self._sources)

    def _ask(self, cls, method, item):
        try:
            return getattr(cls, method)(item)
        except Exception as exc:
            if cls in self.builtins:
                raise
            key = (cls, method)
            if key not in self._broken:
                self._broken.add(key)
                _warn(f"the video reader {cls.__module__}.{cls.__qualname__}.{method} "
                      f"raised {type(exc).__name__}: {exc}; it is skipped")
            return None

    def source_for(self, source):
        """The first source class whose ``can_open(source)`` is true, or None.

        Parameters
        ----------
        source : object
            What would be given to :func:`daskloc.video.open_video`.

        Returns
        -------
        type or None
        """
        for cls in self.sources():
            if self._ask(cls, "can_open", source):
                return cls
        return None

    def supported(self):
        """What can be opened, as a sentence fragment for messages.

        Returns
        -------
        str
            E.g. ``"movies (.mov, ...), multi-page TIFF (.tif, .tiff), ..."``.
        """
        ordered = [c for c in _SUMMARY_ORDER if c in self.builtins]
        ordered += [c for c in self.sources() if c not in ordered]
        return ", ".join(c.summary or c.name for c in ordered)

    def open(self, source, dims=None, **options):
        """Open ``source`` with the first source class that can.

        Parameters
        ----------
        source : object
            What was given to :func:`daskloc.video.open_video`; a
            :class:`~daskloc.video.Position` opens that position of its file.
        dims : sequence of str, optional
            The names of the source's axes (``open_video``'s ``dims=``); only for
            sources whose :attr:`~daskloc.video.Source.takes_dims` is true.
        **options
            ``position``, ``level``: for sources that list them in
            :attr:`~daskloc.video.Source.open_options`; None values are ignored.

        Returns
        -------
        Source
            The opened source.

        Raises
        ------
        FileNotFoundError
            A path that does not exist and no source opens.
        VideoError
            An existing path no source opens (unknown file type), or the source's own
            error; an :class:`~daskloc.video.UnsupportedSourceError` gets the list of
            supported sources appended.
        TypeError
            An object no source opens.
        ValueError
            ``dims`` given for a source that names its own axes (a file); an option
            (``position``, ``level``) the source does not take.
        """
        options = {k: v for k, v in options.items() if v is not None}
        if isinstance(source, Position):
            if "position" in options and options["position"] != source.index:
                raise ValueError(f"position={options['position']!r} given with {source!r}: "
                                 "give one of the two")
            options["position"] = source.index
            source = source.path
        cls = self.source_for(source)
        if cls is None:
            if is_path(source):
                text = os.fspath(source)
                path = Path(text)
                if not path.exists():
                    raise FileNotFoundError(f"no such file or directory: {text!r}")
                raise UnsupportedSourceError(
                    f"{text}: unknown file type {path.suffix!r}; supported sources: "
                    f"{self.supported()}"
                )
            raise TypeError(
                f"cannot open a {type(source).__name__} as a video; supported sources: "
                f"{self.supported()}"
            )
        if dims is not None and not getattr(cls, "takes_dims", False):
            raise ValueError(
                f"dims= is for arrays whose axes have no names (numpy, dask, Zarr); a "
                f"{cls.name} source names its own axes ({_describe(source)}). For a TIFF, "
                "write it with its axes (tifffile.imwrite(path, data, metadata={'axes': "
                "'TZYX'})), or read it with tifffile and pass the array with dims="
            )
        refused = [k for k in options if k not in getattr(cls, "open_options", ())]
        if refused:
            what = {"position": "files holding several positions (OME-TIFF series, CZI "
                                "scenes, OME-Zarr series)",
                    "level": "multiscale images (OME-Zarr resolution levels)"}
            raise ValueError(
                f"{refused[0]}= is for {what.get(refused[0], 'other sources')}; a "
                f"{cls.name} source ({_describe(source)}) has no {refused[0]}s: leave it out"
            )
        if dims is not None:
            options["dims"] = dims
        try:
            opened = cls(source, **options)
        except UnsupportedSourceError as exc:
            if "supported sources:" in str(exc):
                raise
            raise UnsupportedSourceError(
                f"{exc}; supported sources: {self.supported()}"
            ) from (exc.__cause__ or exc)
        # what chose the data besides the source itself: part of the chunks' Dask keys
        opened.opened_with = tuple(sorted((k, repr(v)) for k, v in options.items()))
        return opened

    def positions(self, source):
        """The positions of ``source`` when it is one file holding several.

        Parameters
        ----------
        source : object
            What would be given to :func:`daskloc.video.open_video`.

        Returns
        -------
        list of Position or None
            One :class:`~daskloc.video.Position` per position (index and name) when
            the source that opens ``source`` finds more than one; None otherwise (one
            recording, a :class:`~daskloc.video.Position` already, or nothing opens it:
            ``open_video`` will say why).
        """
        if isinstance(source, Position) or not is_path(source):
            return None
        cls = self.source_for(source)
        if cls is None or "position" not in getattr(cls, "open_options", ()):
            return None
        names = self._ask(cls, "positions_of", source)
        if not names or len(names) < 2:
            return None
        return [Position(source, i, n) for i, n in enumerate(names)]

    def classify(self, item):
        """What ``item`` of a list given to :func:`daskloc.batch` is.

        Parameters
        ----------
        item : object
            A path (which may not exist), an array, a DataArray ...

        Returns
        -------
        Found
            ``kind`` is the first non-None :meth:`~daskloc.video.Source.role` of the
            sources, in order; for an item no source recognises, ``"video"`` when it
            is not a path (``open_video`` will say what is wrong with it) and
            ``"unknown"`` for a path.
        """
        for cls in self.sources():
            kind = self._ask(cls, "role", item)
            if kind is not None:
                return Found(kind, cls, _stem(cls, item))
        if is_path(item):
            return Found("unknown", None, _stem(Source, item))
        return Found("video", None, None)

    def find_videos(self, folder):
        """The videos (and single images) in a folder, and which source opens each.

        Parameters
        ----------
        folder : str or path-like
            A directory.

        Returns
        -------
        list of (str, Found)
            The folder's entries (hidden ones skipped) that some source recognises,
            as ``(path, found)`` in natural order; ``found.kind`` tells a video from a
            single image (``"frame"``) or an unreadable file of a known type.

        Raises
        ------
        NotADirectoryError
            ``folder`` is not a directory.
        """
        folder = Path(os.fspath(folder))
        if not folder.is_dir():
            raise NotADirectoryError(f"not a directory: {str(folder)!r}")
        out = []
        for entry in sorted(folder.iterdir(), key=natural_key):
            if entry.name.startswith("."):
                continue
            found = self.classify(str(entry))
            if found.source is not None:
                out.append((str(entry), found))
        return out


def _stem(cls, item):
    if not is_path(item) or is_glob(item):
        return None
    return cls.stem(item)


def _warn(message):
    warnings.warn(f"daskloc: {message}", RuntimeWarning, stacklevel=4)


#: The registry :func:`daskloc.video.open_video` uses.
REGISTRY = Registry()


def sources():
    """The source classes of the default registry, in the order they are asked.

    Returns
    -------
    list of type
    """
    return REGISTRY.sources()


def source_for(source):
    """The source class that would open ``source``, or None (see :meth:`Registry.source_for`)."""
    return REGISTRY.source_for(source)


def open_source(source, dims=None, **options):
    """Open ``source`` with the default registry (see :meth:`Registry.open`)."""
    return REGISTRY.open(source, dims=dims, **options)


def positions(source):
    """The positions of a multi-position file, or None (see :meth:`Registry.positions`).

    Parameters
    ----------
    source : object

    Returns
    -------
    list of Position or None
    """
    return REGISTRY.positions(source)


def _describe(source):
    return os.fspath(source) if is_path(source) else type(source).__name__


def classify(item):
    """What ``item`` of a list of videos is (see :meth:`Registry.classify`).

    Parameters
    ----------
    item : object

    Returns
    -------
    Found
    """
    return REGISTRY.classify(item)


def find_videos(folder):
    """The videos in ``folder`` and which source opens each (see :meth:`Registry.find_videos`).

    Parameters
    ----------
    folder : str or path-like

    Returns
    -------
    list of (str, Found)
    """
    return REGISTRY.find_videos(folder)


def supported():
    """What can be opened, for messages (see :meth:`Registry.supported`)."""
    return REGISTRY.supported()


def reload_readers():
    """Read the ``daskloc.readers`` entry points again on next use (e.g. after installing
    a plugin in a running process, or in tests)."""
    REGISTRY.reload()
