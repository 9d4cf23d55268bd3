"""Many videos in one batch: which items are several videos, their names, and the
error naming the videos that failed.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Mapping
from pathlib import Path

from daskloc._utils import has_glob_chars
from daskloc.stores.base import check_table_name
from daskloc.video import Position, classify, positions


class BatchError(RuntimeError):
    """Some videos of a many-video :func:`batch` failed; every other video completed.

    Raised once, after the last video finished. The message has one line per failed
    video (its name, source and error).

    Attributes
    ----------
    failed : dict
        ``{video name: exception}`` of the videos that failed, in input order.
    sources : dict
        ``{video name: source path or description}`` of the failed videos.
    completed : list of str
        Names of the videos whose every chunk is in the store.
    store : str
        The store's location.
    """

    def __init__(self, message, failed=None, sources=None, completed=None, store=None):
        super().__init__(message)
        self.failed = dict(failed or {})
        self.sources = dict(sources or {})
        self.completed = list(completed or [])
        self.store = store


def _kind(item):
    """How an item of a list given to batch counts: a "video", one "frame" of an image
    sequence, or "unknown" (cannot tell: missing or unreadable); the video registry
    decides (:func:`daskloc.video.classify`)."""
    return classify(item).kind


def _clean_name(text):
    text = unicodedata.normalize("NFC", str(text))
    text = "".join(c if (c.isalnum() or c in "_-.") else "_" for c in text)
    text = re.sub(r"_{2,}", "_", text).strip("._")
    return text or None


def _name_from_path(text):
    text = os.fspath(text)
    if has_glob_chars(text) and not os.path.exists(text):
        fixed = []
        for part in Path(text).parts:
            if has_glob_chars(part):
                break
            fixed.append(part)
        return _clean_name(Path(*fixed).name) if fixed else None
    return _clean_name(classify(text).stem)


def _base_name(item):
    import xarray as xr

    if isinstance(item, Position):
        stem = _name_from_path(item.path) if isinstance(item.path, (str, os.PathLike)) else None
        return _clean_name(f"{stem or 'video'}-{item.name or f'pos{item.index}'}")
    if isinstance(item, xr.DataArray):
        src = item.attrs.get("source")
        if isinstance(src, (list, tuple)) and src and isinstance(src[0], (str, os.PathLike)):
            return _clean_name(Path(os.fspath(src[0])).parent.name)
        if isinstance(src, (str, os.PathLike)):
            text = os.fspath(src)
            if os.path.exists(text) or has_glob_chars(text):
                return _name_from_path(text)
        return _clean_name(item.name) if isinstance(item.name, str) else None
    if isinstance(item, (str, os.PathLike)):
        return _name_from_path(item)
    return None


def video_names(videos):
    """The names :func:`batch` gives the videos of a list: file stems, made unique.

    Parameters
    ----------
    videos : list
        As given to :func:`batch`.

    Returns
    -------
    list of str
        One name per video, in order: a file's stem (``bulk-water`` for
        ``run1/bulk-water.mov``), a folder's name, the folder of a glob pattern; for a
        :class:`~daskloc.video.Position` of a multi-position file the file's stem and
        the position's name (``plate-Pos1``); for an
        xarray DataArray the same from the file it was opened from
        (``attrs["source"]``), else its ``name``; else ``video-<i>`` (1-based
        position). Characters other than letters, digits, ``_``, ``-`` and ``.``
        become ``_``. A name already taken (compared case-insensitively) gets
        ``-2``, ``-3``, ...: ``bulk-water``, ``bulk-water-2``.
    """
    taken, out = set(), []
    for i, item in enumerate(videos):
        base = _base_name(item) or f"video-{i + 1}"
        name, n = base, 1
        while name.casefold() in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name.casefold())
        out.append(name)
    return out


def many_videos(video):
    """Whether ``video`` is several videos, and which: the rule of :func:`batch`.

    Parameters
    ----------
    video : object
        What was given to :func:`batch` (or the CLI's resolved arguments).

    Returns
    -------
    list of (str, object) or None
        ``[(name, video), ...]`` for several videos; None for one video (a single
        path or array, or a list of single images: one image sequence). A file
        holding several positions (:func:`daskloc.video.positions`: an OME-TIFF of
        several series, a CZI file of several scenes) counts as one video per
        position, each a :class:`~daskloc.video.Position`, alone or in a list.

    Raises
    ------
    ValueError
        A list mixing single images (frames of one sequence) with videos; an empty
        dict; a bad or repeated name in a dict; the same path given twice.
    """
    if isinstance(video, Mapping):
        if not video:
            raise ValueError("no videos given: the dict of videos is empty")
        items, taken = [], {}
        for name, item in video.items():
            if not isinstance(name, str) or "=" in name or not _name_ok(name):
                raise ValueError(
                    f"video name {name!r} is not usable: use letters, digits, '_', '-' and "
                    "'.' (e.g. 'bulk-water')"
                )
            if name.casefold() in taken:
                raise ValueError(
                    f"video names {taken[name.casefold()]!r} and {name!r} differ only in "
                    "case; stores on case-insensitive file systems and SQL databases "
                    "cannot keep both: rename one"
                )
            taken[name.casefold()] = name
            items.append((name, item))
        _refuse_repeats([v for _, v in items])
        return items
    if not isinstance(video, (list, tuple)):
        found = positions(video)
        return None if found is None else list(zip(video_names(found), found))
    kinds = [_kind(v) for v in video]
    if "video" not in kinds:
        return None
    if "frame" in kinds:
        frames = [os.fspath(v) for v, k in zip(video, kinds) if k == "frame"]
        videos = [v if isinstance(v, (str, os.PathLike)) else type(v).__name__
                  for v, k in zip(video, kinds) if k == "video"]
        raise ValueError(
            f"the list mixes single images (frames of one image sequence, e.g. "
            f"{frames[0]!r}) with videos (e.g. {os.fspath(videos[0])!r}): give either "
            "image files only (one sequence), or videos only (movies, multi-page TIFFs, "
            "folders of images, arrays)"
        )
    _refuse_repeats(video)
    expanded = []
    for v in video:
        found = positions(v) if isinstance(v, (str, os.PathLike)) else None
        expanded.extend(found or [v])
    return list(zip(video_names(expanded), expanded))


def _name_ok(name):
    try:
        check_table_name(name)
    except (TypeError, ValueError):
        return False
    return "/" not in name


def _refuse_repeats(videos):
    seen = {}
    for v in videos:
        if isinstance(v, (str, os.PathLike)):
            key = os.path.abspath(os.fspath(v))
            if key in seen:
                raise ValueError(f"the video {os.fspath(v)!r} is given twice")
            seen[key] = v


def _describe_source(item, plan=None):
    if plan is not None:
        src = plan.video.attrs.get("source")
        if src is not None:
            return str(src) if not isinstance(src, (list, tuple)) else f"{len(src)} files"
    if isinstance(item, (str, os.PathLike)):
        return os.fspath(item)
    if isinstance(item, Position):
        return str(item)
    return type(item).__name__
