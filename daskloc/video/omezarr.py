"""OME-Zarr (OME-NGFF 0.4 on Zarr v2, 0.5 on Zarr v3) images, read with zarr-python: a
local directory or an ``s3://`` (any fsspec) URL holding ``multiscales`` metadata, or a
bioformats2raw container of several images (one position each).

The NGFF metadata is small JSON and is read here with zarr-python, not with the
``ome-zarr`` package: ``import ome_zarr`` takes seconds (it pulls in scikit-image), and
its reader opens every resolution level as a dask array of its own, while a chunk task
here opens the one array it needs by URL and reads only its frames' chunks.
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from daskloc._extras import require
from daskloc._utils import is_glob
from daskloc.video._base import (
    VIDEO_DIMS,
    Source,
    UnsupportedSourceError,
    VideoError,
    fingerprint_files,
    fingerprint_of,
    fingerprint_tree,
    is_path,
    pick_position,
)
from daskloc.video._calibration import calibration_attrs, to_micrometres, to_seconds
from daskloc.video._chunks import runs

__all__ = ["OmeZarrSource"]

#: An NGFF axis name -> the video axis it is (``t`` is time: frames).
_AXIS_ROLES = {"t": "frame", "z": "z", "c": "channel", "y": "y", "x": "x"}
#: An NGFF axis type -> the video axis, for axes not named as above.
_TYPE_ROLES = {"time": "frame", "channel": "channel"}
#: The axes of NGFF 0.1 and 0.2, which had no ``axes`` metadata (always 5-D).
_V01_AXES = ("t", "c", "z", "y", "x")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

#: What ``calibration_source`` says the pixel size and frame interval were read from.
_SCALE_FIELD = "OME-NGFF multiscales coordinateTransformations scale"


def _is_url(text):
    return bool(_URL.match(text)) and not text.lower().startswith("file://")


def _clean(source):
    text = os.fspath(source)
    return text.rstrip("/") or text if _is_url(text) else text


def _join(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


# ---------------------------------------------------------------------------------------
# Metadata: JSON documents of the container, local or remote
# ---------------------------------------------------------------------------------------


def _fs(url):
    """``(filesystem, root path)`` of a URL (fsspec; s3fs for ``s3://``)."""
    import fsspec

    if url.split("://", 1)[0].lower() in ("s3", "s3a"):
        require("s3fs")  # the [s3] extra
    return fsspec.core.url_to_fs(url)


class _Container:
    """Reads the small metadata documents of a container (a local directory or a URL).

    Parameters
    ----------
    location : str
        The container's path or URL.
    """

    def __init__(self, location):
        self.location = location
        self.url = _is_url(location)
        self._fs = None

    def read(self, key):
        """The bytes of ``key`` (relative to the container), or None when absent."""
        if not self.url:
            try:
                return (Path(self.location) / key).read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        if self._fs is None:
            self._fs = _fs(self.location)
        fs, root = self._fs
        try:
            return fs.cat_file(_join(root, key) if root else key)
        except FileNotFoundError:
            return None

    def json(self, key):
        data = self.read(key)
        if data is None:
            return None
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise VideoError(f"{self.location}: {key} is not JSON ({exc})") from exc
        return doc if isinstance(doc, dict) else None

    def group_attrs(self, path=""):
        """``(zarr_format, attributes)`` of the group at ``path``, or None if no group.

        For Zarr v3 the attributes are those under ``"ome"`` when present (NGFF 0.5
        keeps its metadata there), else all of them.
        """
        doc = self.json(_join(path, "zarr.json"))
        if doc is not None:
            if doc.get("node_type") != "group":
                return None
            attrs = doc.get("attributes") or {}
            ome = attrs.get("ome")
            return 3, (ome if isinstance(ome, dict) else attrs)
        if self.read(_join(path, ".zgroup")) is None:
            return None
        return 2, self.json(_join(path, ".zattrs")) or {}


def _kind(attrs):
    """What an NGFF group's attributes describe: ``"image"``, ``"bioformats2raw"``,
    ``"plate"``, ``"well"``, or None for a group that is not NGFF."""
    if "bioformats2raw.layout" in attrs:
        return "bioformats2raw"
    for kind, key in (("image", "multiscales"), ("plate", "plate"), ("well", "well")):
        if key in attrs:
            return kind
    return None


def _series_paths(container, zarr_format):
    """The paths of a bioformats2raw container's images, in the file's order: the
    ``series`` list of its ``OME`` group, else ``0``, ``1``, ... while they exist."""
    ome = container.group_attrs("OME")
    if ome is not None and isinstance(ome[1].get("series"), list):
        return [str(p) for p in ome[1]["series"]]
    paths = []
    while container.group_attrs(str(len(paths))) is not None:
        paths.append(str(len(paths)))
    return paths


def _ome_xml_names(container):
    """The ``Name`` of each ``Image`` of ``OME/METADATA.ome.xml`` (None where missing), or
    [] without a readable OME-XML."""
    try:
        data = container.read("OME/METADATA.ome.xml")
        if data is None:
            return []
        root = ET.fromstring(data)
    except (ET.ParseError, OSError, ValueError):
        return []
    return [im.get("Name") for im in root if im.tag.rsplit("}", 1)[-1] == "Image"]


def _position_names(container, paths):
    """Unique names of the series: their OME-XML ``Image`` names, ``series<i>`` where a
    name is missing or repeated (as for OME-TIFF series)."""
    names = _ome_xml_names(container)
    names = [(names[i] if i < len(names) else None) or "" for i in range(len(paths))]
    return [n if n and names.count(n) == 1 else f"series{i}" for i, n in enumerate(names)]


# ---------------------------------------------------------------------------------------
# Axes and calibration of one multiscale image
# ---------------------------------------------------------------------------------------


def _axes(multiscale, ndim, where):
    """``[(name, type, unit)]`` of a multiscale's axes (NGFF 0.3 wrote bare names; 0.1 and
    0.2 none, meaning ``tczyx``)."""
    axes = multiscale.get("axes")
    if axes is None:
        if ndim != len(_V01_AXES):
            raise VideoError(f"{where}: the multiscales metadata names no axes and the "
                             f"array has {ndim} (not the 5 of NGFF 0.1/0.2, t c z y x)")
        axes = list(_V01_AXES)
    out = []
    for ax in axes:
        if isinstance(ax, str):
            out.append((ax, None, None))
        elif isinstance(ax, dict) and isinstance(ax.get("name"), str):
            out.append((ax["name"], ax.get("type"), ax.get("unit")))
        else:
            raise VideoError(f"{where}: malformed multiscales axis {ax!r}")
    if len(out) != ndim:
        raise VideoError(f"{where}: the multiscales metadata names {len(out)} axes "
                         f"({', '.join(a[0] for a in out)}) but the array has {ndim}")
    return out


def _roles(axes, shape, where):
    """The video axis of each array axis (None: an axis of one entry, dropped)."""
    roles = []
    for (name, kind, _), size in zip(axes, shape):
        role = _AXIS_ROLES.get(name.lower()) or _TYPE_ROLES.get(str(kind).lower())
        if role in ("z", "channel") and size == 1:
            role = None  # one plane, one channel: a 2-D, single-channel frame
        if role is None and size > 1:
            raise VideoError(
                f"{where}: axis {name!r} (type {kind!r}, {size} entries) is not t (time), "
                "z, c (channel), y or x; read the array with zarr, pick what you want and "
                "pass it to open_video with dims="
            )
        if role is not None and role in roles:
            raise VideoError(f"{where}: two axes are {role} ({[a[0] for a in axes]})")
        roles.append(role)
    if "y" not in roles or "x" not in roles:
        raise VideoError(f"{where}: the image has no y and x axes (axes "
                         f"{[a[0] for a in axes]})")
    return roles


def _scales(transformations, ndim):
    """The product of the vector ``scale`` transformations of a list (None: none usable)."""
    scale = None
    for t in transformations or ():
        if isinstance(t, dict) and t.get("type") == "scale" and isinstance(
                t.get("scale"), list) and len(t["scale"]) == ndim:
            try:
                s = np.asarray(t["scale"], dtype=np.float64)
            except (TypeError, ValueError):
                continue
            scale = s if scale is None else scale * s
    return scale


def _calibration(multiscale, dataset, axes, roles):
    """The calibration attrs of one level: its scale times the multiscale's global one,
    for the axes whose unit is a length (z, y, x) or a time (t: the frame interval)."""
    ndim = len(axes)
    local = _scales(dataset.get("coordinateTransformations"), ndim)
    overall = _scales(multiscale.get("coordinateTransformations"), ndim)
    if local is None and overall is None:
        return {}
    scale = np.ones(ndim) if local is None else local
    if overall is not None:
        scale = scale * overall
    sizes, interval = {}, None
    for (_, _, unit), role, value in zip(axes, roles, scale):
        if unit is None:  # NGFF: no unit, no physical size (ome-zarr writes 1.0 then)
            continue
        if role in ("z", "y", "x"):
            um = to_micrometres(float(value), unit)
            if um is not None:
                sizes[role] = um
        elif role == "frame":
            interval = to_seconds(float(value), unit)
    path = dataset.get("path")
    field = f"{_SCALE_FIELD} (dataset {path!r}) and axes units"
    return calibration_attrs(sizes, frame_interval=interval,
                             source={"pixel_size": field, "frame_interval": field})


# ---------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------


class OmeZarrSource(Source):
    """An OME-Zarr image (OME-NGFF 0.4 or 0.5) or a bioformats2raw container of several.

    Parameters
    ----------
    source : str or path-like
        The image's directory (a Zarr group with NGFF ``multiscales`` metadata, in
        ``.zattrs`` for Zarr v2 or under ``"ome"`` in ``zarr.json`` for Zarr v3), or its
        URL (``s3://bucket/image.ome.zarr``, any fsspec protocol). A bioformats2raw
        container (``bioformats2raw.layout`` metadata, images ``0/``, ``1/``, ...) holds
        one image per position.
    position : int or str, optional
        For a bioformats2raw container of several images: which one, by index or name
        (the OME-XML ``Image`` name from ``OME/METADATA.ome.xml``, ``series<i>`` where it
        has none).
    level : int, optional
        The resolution level: the index into the multiscale's ``datasets``, 0 (the
        default) being the full resolution.

    Raises
    ------
    UnsupportedSourceError
        The group holds no NGFF image (not NGFF at all, or an HCS plate or well, which
        this reader does not read: open one field's image, e.g. ``plate.zarr/A/1/0``).
    VideoError
        Malformed metadata; an axis that is not ``t``, ``z``, ``c``, ``y`` or ``x`` (or
        of type ``time``/``channel``) with more than one entry; a level or position the
        container does not hold (the message lists them); no frames.
    ImportError
        An ``s3://`` URL without s3fs (the ``[s3]`` extra).

    Notes
    -----
    **Axes.** ``t`` is the frame axis, ``z`` the z axis (frames are z-stacks), ``c``
    the channel axis (moved last: pick one with ``open_video(..., channel=)``), ``y``
    and ``x`` the image; a ``z`` or ``c`` axis of one entry is dropped. An image without
    ``t`` is one frame: a z-stack with ``z``, else a 2-D image.

    **Reads.** Only the metadata (a few small JSON documents) is read here. A chunk
    task opens the level's array by path or URL (nothing but strings and ints travels
    in the graph) and reads a slice along ``t``, i.e. only the Zarr chunks holding its
    frames (all their planes and channels; an axis of one entry at index 0). A Zarr
    chunk that cannot be decoded gives the usual
    :class:`~daskloc.video.VideoDecodeError`; a chunk file that is missing reads as the
    array's fill value, as Zarr defines it.

    **Calibration** (``attrs``, see :func:`~daskloc.video._calibration.calibration_attrs`):
    the ``scale`` of the chosen level's ``coordinateTransformations`` times the
    multiscale's own (global) ``scale``, for the axes with a unit: µm per pixel for
    ``z``, ``y``, ``x`` with a length unit, the frame interval (hence ``fps``) for ``t``
    with a time unit. An axis without a unit is uncalibrated (NGFF leaves its scale
    without physical meaning; ``ome_zarr.writer`` writes 1.0 there).

    **Remote containers.** A URL is opened with fsspec (``s3://`` needs s3fs, the
    ``[s3]`` extra). Credentials and endpoint come from fsspec's configuration, as for
    any fsspec URL: environment variables ``FSSPEC_S3_ENDPOINT_URL``, ``FSSPEC_S3_KEY``,
    ``FSSPEC_S3_SECRET`` (or AWS's own ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_ENDPOINT_URL``, ``~/.aws``), a JSON file in ``~/.config/fsspec/``, or in the
    process ``fsspec.config.conf["s3"] = {"endpoint_url": ..., "key": ..., "secret":
    ...}``. Chunk tasks open the URL again where they run, so Dask workers in other
    processes or machines need the same configuration: environment variables or the
    config file reach them, a change to ``fsspec.config.conf`` in the client does not.

    Only the first multiscale of an image is read (NGFF allows several; writers write
    one). HCS plates are not read as positions.
    """

    name = "omezarr"
    suffixes = (".zarr",)
    summary = ("OME-Zarr images (OME-NGFF 0.4/0.5, a directory or s3:// URL; "
               "bioformats2raw containers: one position per image)")
    priority = 15  # before the plain Zarr arrays (20), which would call it a group
    per_frame = True
    open_options = ("position", "level")

    @classmethod
    def can_open(cls, source):
        """True for a directory or URL of a Zarr group with NGFF metadata (an image, a
        bioformats2raw container, a plate), or a ``.zarr`` URL whose metadata cannot be
        read (the error then says why)."""
        if not is_path(source) or is_glob(source):
            return False
        location = _clean(source)
        url = _is_url(location)
        if not url and not os.path.isdir(location):
            return False
        try:
            found = _Container(location).group_attrs()
        except Exception:  # noqa: BLE001 - unreadable: a URL may still be ours, below
            return url and location.lower().endswith(".zarr")
        return found is not None and _kind(found[1]) is not None

    @classmethod
    def stem(cls, path):
        """The container's name without ``.zarr`` and an ``.ome`` before it (also for a
        URL)."""
        text = _clean(path)
        name = text.rsplit("/", 1)[-1] if _is_url(text) else super().stem(text)
        if _is_url(text) and name.lower().endswith(".zarr"):
            name = name[:-5]
        return name[:-4] if name.lower().endswith(".ome") and len(name) > 4 else name

    @classmethod
    def role(cls, item):
        """``"video"`` when :meth:`can_open` claims ``item``, else None."""
        return "video" if cls.can_open(item) else None

    @classmethod
    def positions_of(cls, source):
        """The names of a bioformats2raw container's images when it holds several; None
        for one image or a container that cannot be read."""
        try:
            container = _Container(_clean(source))
            found = container.group_attrs()
            if found is None or _kind(found[1]) != "bioformats2raw":
                return None
            paths = _series_paths(container, found[0])
            return _position_names(container, paths) if len(paths) > 1 else None
        except Exception:  # noqa: BLE001 - unreadable: open_video says why
            return None

    def __init__(self, source, position=None, level=None):
        import zarr

        location = _clean(source)
        self.path = location
        container = _Container(location)
        try:
            found = container.group_attrs()
        except VideoError:
            raise
        except ImportError:
            raise
        except Exception as exc:
            raise VideoError(f"{location}: cannot read the Zarr metadata "
                             f"({type(exc).__name__}: {exc})") from exc
        if found is None:
            raise UnsupportedSourceError(f"{location}: not a Zarr group (no zarr.json or "
                                         ".zgroup)")
        zarr_format, attrs = found
        kind = _kind(attrs)
        names, image_path = None, ""
        if kind == "bioformats2raw":
            paths = _series_paths(container, zarr_format)
            if not paths:
                raise VideoError(f"{location}: bioformats2raw container holds no images "
                                 "(no group 0)")
            names = _position_names(container, paths)
            index = pick_position(names, position, location)
            image_path = paths[index]
            found = container.group_attrs(image_path)
            attrs = found[1] if found is not None else {}
            if _kind(attrs) != "image":
                raise VideoError(f"{location}: series {image_path!r} is not an OME-NGFF "
                                 "image (no multiscales metadata)")
        elif kind == "image":
            index = pick_position(["image"], position, location)
        elif kind in ("plate", "well"):
            raise UnsupportedSourceError(
                f"{location}: an OME-NGFF HCS {kind}; daskloc reads images, not plates: "
                f"open one field's image (e.g. {location}/A/1/0 for well A1, field 0)"
            )
        else:
            raise UnsupportedSourceError(
                f"{location}: a Zarr group without OME-NGFF metadata (no multiscales or "
                "bioformats2raw.layout attribute)"
            )
        where = location + (f" (series {image_path!r})" if image_path else "")
        multiscales = attrs.get("multiscales")
        if not (isinstance(multiscales, list) and multiscales
                and isinstance(multiscales[0], dict)):
            raise VideoError(f"{where}: malformed multiscales metadata")
        multiscale = multiscales[0]
        datasets = [d for d in multiscale.get("datasets") or () if isinstance(d, dict)
                    and isinstance(d.get("path"), str)]
        if not datasets:
            raise VideoError(f"{where}: the multiscales metadata lists no datasets")
        self.level = _pick_level(datasets, level, where)
        dataset = datasets[self.level]
        self.array_path = _join(image_path, dataset["path"])
        try:
            arr = zarr.open_array(location, path=self.array_path, mode="r")
        except Exception as exc:
            raise VideoError(f"{where}: cannot open the array {dataset['path']!r} of level "
                             f"{self.level} ({type(exc).__name__}: {exc})") from exc
        shape = tuple(int(s) for s in arr.shape)
        axes = _axes(multiscale, len(shape), where)
        roles = _roles(axes, shape, where)
        self.roles = tuple(roles)
        # frames per storage chunk: auto chunks begin and end on them
        self.storage_frames = (int(arr.chunks[roles.index("frame")])
                               if "frame" in roles else None)
        present = [r for r in roles if r is not None]
        self.order = tuple(present.index(d) for d in VIDEO_DIMS if d in present)
        self.frame_dims = tuple(d for d in VIDEO_DIMS[1:] if d in present)
        self.frame_shape = tuple(shape[roles.index(d)] for d in self.frame_dims)
        n = shape[roles.index("frame")] if "frame" in roles else 1
        if n == 0:
            raise VideoError(f"{where}: has no frames")
        self.dtype = np.dtype(arr.dtype)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": location,
            "original_shape": shape,
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
            **_calibration(multiscale, dataset, axes, roles),
            "storage_frames": self.storage_frames,
        }
        if names is not None and len(names) > 1:
            self.attrs["position"] = names[index]
            self.attrs["position_index"] = index

    def token_parts(self):
        """The container, the array read and its :meth:`fingerprint`."""
        found = fingerprint_of(self) or {}
        return (self.path, self.array_path, found.get("file_size"), found.get("file_mtime_ns"))

    def fingerprint(self):
        """Size and newest mtime of the files of the array read (its chunks and
        metadata) and, for a local container, of the metadata documents of the groups
        above it (multiscales, calibration); one listing for a URL, no data read."""
        if _is_url(self.path):
            fs, root = _fs(self.path)
            return fingerprint_tree(_join(root, self.array_path) if root else self.array_path,
                                    fs)
        array = os.path.join(self.path, self.array_path)
        found = fingerprint_tree(array)
        docs, here = [], Path(array)
        while True:
            here = here.parent
            docs += [here / n for n in ("zarr.json", ".zattrs", ".zgroup")
                     if (here / n).is_file()]
            if here == Path(self.path) or here == here.parent:
                break
        if docs:
            extra = fingerprint_files(docs)
            found = {"file_size": found["file_size"] + extra["file_size"],
                     "file_mtime_ns": max(found["file_mtime_ns"], extra["file_mtime_ns"])}
        return found

    def spec(self):
        """``(location, array path, roles, order)``: what a chunk task opens and how the
        array's axes become the video's."""
        return (self.path, self.array_path, self.roles, self.order)

    def chunk_args(self, positions):
        """The chunk's frame positions, a tuple of int."""
        return tuple(int(p) for p in positions)

    @staticmethod
    def read(spec, arg):
        """Read runs of consecutive frames: a slice along ``t`` of the level's array."""
        import zarr

        location, array_path, roles, order = spec
        arr = zarr.open_array(location, path=array_path, mode="r")
        for a, b, offset in runs(arg):
            index = tuple(slice(a, b) if r == "frame" else 0 if r is None else slice(None)
                          for r in roles)
            block = np.asarray(arr[index])
            if "frame" not in roles:
                block = block[None]
                block_order = (0,) + tuple(o + 1 for o in order)
            else:
                block_order = order
            if block_order != tuple(range(block.ndim)):
                block = np.ascontiguousarray(block.transpose(block_order))
            yield slice(offset, offset + (b - a)), block


def _pick_level(datasets, level, where):
    """The index of resolution ``level`` among ``datasets`` (None: 0)."""
    listed = ", ".join(f"{i}: {d['path']!r}" for i, d in enumerate(datasets))
    if level is None:
        return 0
    if isinstance(level, bool) or not isinstance(level, (int, np.integer)):
        raise TypeError(f"level must be an int (a resolution level, 0 = full resolution), "
                        f"got {level!r}")
    if not 0 <= int(level) < len(datasets):
        raise VideoError(f"{where} has no resolution level {level}: it has "
                         f"{len(datasets)} (levels {listed})")
    return int(level)
