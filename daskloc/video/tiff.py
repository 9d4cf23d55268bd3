"""Multi-page TIFF files, read with tifffile: one frame per page, or along the single
non-singleton leading axis of the first TIFF series; z-stacks over time from the series'
axes (``T``, ``Z``, ``C``: ImageJ hyperstacks, OME-TIFF, tifffile's ``metadata={'axes':
...}``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from daskloc._utils import is_glob
from daskloc.video._base import (
    Source,
    UnsupportedSourceError,
    VideoError,
    fingerprint_files,
    is_path,
    pick_position,
)
from daskloc.video._buffers import chunk_buffer
from daskloc.video._calibration import calibration_attrs, to_micrometres, to_seconds
from daskloc.video._follow import Growing, Growth

__all__ = ["TIFF_EXTENSIONS", "GrowingTiff", "TiffSource"]

#: Multi-page TIFF files, read with tifffile.
TIFF_EXTENSIONS = (".tif", ".tiff")


class _TifffileErrors(logging.Handler):
    """Collects what tifffile logs while a file is opened: it logs a broken page chain
    (``invalid page offset``: a truncated file) and goes on with the pages before it,
    and it logs planes an OME-XML lists but no file holds (a companion file of a
    multi-file set not copied, an acquisition stopped early: "Missing data are zeroed")
    and fills them with zeros; either would silently be wrong frames."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        logging.getLogger("tifffile").addHandler(self)
        return self

    def __exit__(self, *exc):
        logging.getLogger("tifffile").removeHandler(self)


def _check_complete(path, tf, series, errors):
    """Raise VideoError if the page chain broke or the series' data run past the end
    of the file (a truncated or damaged TIFF): never fewer frames without a word."""
    size = os.path.getsize(path)
    end = None
    try:
        last = series.pages[len(series.pages) - 1] if len(series.pages) else None
        if last is not None and getattr(last, "dataoffsets", None):
            end = max(int(o) + int(n) for o, n in zip(last.dataoffsets, last.databytecounts))
    except Exception as exc:  # noqa: BLE001 - an unreadable last page: damaged
        errors.messages.append(f"{type(exc).__name__}: {exc}")
    if series.dataoffset is not None:
        end = max(end or 0, int(series.dataoffset) + int(series.nbytes))
    broken = [m for m in errors.messages
              if any(w in m.lower() for w in ("offset", "truncat", "missing", "zeroed",
                                               "failed to read"))]
    if broken or (end is not None and end > size):
        why = broken[0] if broken else (
            f"its images need {end} bytes, the file has {size}")
        raise VideoError(
            f"{path}: the TIFF is truncated, damaged or incomplete (tifffile: {why}); "
            "its frames cannot all be found. Copy the file (and the other files of a "
            "multi-file OME-TIFF set) again from where it was recorded, or read what is "
            "there with tifffile and pass the array to open_video"
        )


def tiff_pages(path):
    """1 or 2 (meaning: more than one) pages in a TIFF file; None if it cannot be read."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            try:
                tf.pages[1]
            except IndexError:
                return 1
            return 2
    except Exception:  # noqa: BLE001 - missing, unreadable: the video's own error later
        return None


#: tifffile's axis codes (``series.axes``) that name a video's axis; any other leading
#: axis (``I``, ``Q``, ...) may be the frame axis when it is the only one.
_TIFF_ROLES = {"T": "frame", "Z": "z", "C": "channel", "Y": "y", "X": "x"}


class _TiffLayout:
    """How the axes of a tifffile series map to the video's (see :func:`_tiff_layout`)."""

    __slots__ = ("frame_axis", "frame_dims", "frame_shape", "n", "order", "plane", "shape")

    def __init__(self, shape, frame_axis, n, plane, order, frame_shape, frame_dims):
        self.shape = shape  # the series' shape
        self.frame_axis = frame_axis  # the series axis of the frames, or None
        self.n = n  # frames
        self.plane = plane  # trailing axes of one page: 2 (YX) or 3 (YXS)
        self.order = order  # series axes in video order (singleton axes left out)
        self.frame_shape = frame_shape
        self.frame_dims = frame_dims


def _tiff_layout(series, path, z_is_depth=True):
    """The frame axis, z axis and channel axis of a tifffile series, from its axes.

    The last two axes are y, x, or the last three y, x, samples (``S``, colour). Of the
    other (leading) axes with more than one entry, ``T`` is the frame axis, ``Z`` the z
    axis (unless not ``z_is_depth``: then it is like any other code), ``C`` a channel
    axis when there is a ``T`` or ``Z`` axis too (alone it is like any other code, as
    before: ``tifffile.imwrite(path, stack, imagej=True)`` labels a 3-D stack ``CYX``);
    without ``T`` a single axis of another code (``I``, ``Q``: pages of a plain
    multi-page TIFF) is the frame axis, and none means one frame.
    """
    shape = tuple(int(s) for s in series.shape)
    axes = series.axes
    colour = axes.endswith("S") and len(shape) >= 3
    plane = 3 if colour else 2
    if len(shape) < plane:
        raise VideoError(f"{path}: cannot read TIFF series of shape {shape} ({axes}) as a video")
    roles = [None] * len(shape)
    roles[len(shape) - plane] = "y"
    roles[len(shape) - plane + 1] = "x"
    if colour:
        roles[-1] = "channel"
    others = []
    leading = [(axes[i], shape[i]) for i in range(len(shape) - plane)]
    has_tz = any(s > 1 and (a == "T" or (a == "Z" and z_is_depth)) for a, s in leading)
    for i in range(len(shape) - plane):
        if shape[i] == 1:
            continue
        role = _TIFF_ROLES.get(axes[i])
        if role in ("y", "x") or (role == "z" and not z_is_depth) or (
            role == "channel" and not has_tz
        ):
            role = None
        if role is None:
            others.append(i)
        elif role in roles:
            raise VideoError(
                f"{path}: TIFF series has shape {shape} with axes {axes!r}: two "
                f"{role} axes; load it with tifffile, pick what you want and pass the array "
                "to open_video with dims="
            )
        else:
            roles[i] = role
    if others and ("frame" in roles or len(others) > 1):
        raise VideoError(
            f"{path}: TIFF series has shape {shape} with axes {axes!r}: more than one axis "
            "besides y, x (and samples) that is not T (time), Z (depth) or C (channel); "
            "open_video reads one frame axis. Load it with tifffile, pick the frames you "
            "want and pass the array instead (with dims=, e.g. dims=('frame', 'z', 'y', "
            "'x'))"
        )
    if others:
        roles[others[0]] = "frame"
    frame_axis = roles.index("frame") if "frame" in roles else None
    n = shape[frame_axis] if frame_axis is not None else 1
    order = tuple(roles.index(d) for d in ("frame", "z", "y", "x", "channel") if d in roles)
    frame_dims = tuple(d for d in ("z", "y", "x", "channel") if d in roles)
    frame_shape = tuple(shape[roles.index(d)] for d in frame_dims)
    return _TiffLayout(shape, frame_axis, n, plane, order, frame_shape, frame_dims)


def _ome_image(tf, index, name):
    """The OME-XML ``Image`` element (as tifffile's xml2dict gives it) of series
    ``index`` (matched by name when the names say so), or None."""
    import tifffile

    try:
        images = tifffile.xml2dict(tf.ome_metadata)["OME"]["Image"]
    except Exception:  # noqa: BLE001 - malformed OME-XML: no calibration, not an error
        return None
    images = images if isinstance(images, list) else [images]
    named = [im for im in images if isinstance(im, dict) and name and im.get("Name") == name]
    if len(named) == 1:
        return named[0]
    image = images[index] if index < len(images) else None
    return image if isinstance(image, dict) else None


def _plane_interval(planes):
    """The frame interval in seconds from the OME ``Plane`` elements' ``DeltaT`` (the
    time of each plane since the acquisition began; Micro-Manager writes these and no
    ``TimeIncrement``): the median step of ``DeltaT`` between consecutive ``TheT`` of
    the first z plane and channel; None without two time points or a positive step."""
    if isinstance(planes, dict):
        planes = [planes]
    if not isinstance(planes, list):
        return None
    times = {}
    for plane in planes:
        if not isinstance(plane, dict) or int(plane.get("TheZ", 0) or 0) != 0:
            continue
        if int(plane.get("TheC", 0) or 0) != 0:
            continue
        delta, unit = plane.get("DeltaT"), plane.get("DeltaTUnit", "s")
        # to_seconds takes intervals (> 0); DeltaT of the first plane is 0
        t = 0.0 if str(delta).strip() in ("0", "0.0") else to_seconds(delta, unit)
        if t is not None:
            times.setdefault(int(plane.get("TheT", 0) or 0), t)
    steps = [times[k + 1] - times[k] for k in sorted(times) if k + 1 in times]
    if not steps:
        return None
    step = float(np.median(steps))
    return step if step > 0 else None


def _tiff_calibration(tf, index, series, frame_dims):
    """The calibration attrs (:func:`calibration_attrs`) of series ``index``: OME-XML
    first, then ImageJ metadata, then the TIFF resolution tags in cm, mm or µm."""
    sizes, sources, interval, fps = {}, {}, None, None
    axes = [a for a in ("z", "y", "x") if a in frame_dims]
    if tf.is_ome:
        image = _ome_image(tf, index, series.name)
        pixels = (image or {}).get("Pixels")
        if isinstance(pixels, dict):
            for a in axes:
                key = f"PhysicalSize{a.upper()}"
                um = to_micrometres(pixels.get(key), pixels.get(f"{key}Unit"))
                if um is not None:
                    sizes[a] = um
            if sizes:
                sources["pixel_size"] = "OME-XML Pixels PhysicalSize" + "/".join(
                    a.upper() for a in ("x", "y", "z") if a in sizes)
            interval = to_seconds(pixels.get("TimeIncrement"), pixels.get("TimeIncrementUnit"))
            if interval is not None:
                sources["frame_interval"] = "OME-XML Pixels TimeIncrement"
            else:
                interval = _plane_interval(pixels.get("Plane"))
                if interval is not None:
                    sources["frame_interval"] = "OME-XML Plane DeltaT (median interval)"
    meta = tf.imagej_metadata or {}
    page = series.pages[0] if len(series.pages) else None
    if not sizes and page is not None:
        xres = _resolution(page, "XResolution")
        yres = _resolution(page, "YResolution")
        unit, where = None, None
        if tf.is_imagej:
            unit, where = meta.get("unit"), "ImageJ resolution and unit"
        else:
            code = getattr(page.tags.get("ResolutionUnit"), "value", None)
            unit = {3: "cm", 4: "mm", 5: "µm"}.get(int(code) if code is not None else 0)
            where = "TIFF XResolution/YResolution"
        if unit is not None and xres and yres:
            x, y = to_micrometres(1 / xres, unit), to_micrometres(1 / yres, unit)
            if x is not None and y is not None:
                sizes["x"], sizes["y"] = x, y
        if tf.is_imagej and "z" in axes and unit is not None:
            z = to_micrometres(meta.get("spacing"), unit)
            if z is not None:
                sizes["z"] = z
                where += " and spacing" if sizes.get("x") else ""
                where = where if sizes.get("x") else "ImageJ spacing and unit"
        if sizes:
            sources["pixel_size"] = where
    if interval is None and tf.is_imagej:
        interval = to_seconds(meta.get("finterval"), meta.get("tunit") or "s")
        if interval is not None:
            sources["frame_interval"] = "ImageJ finterval"
        elif _positive_number(meta.get("fps")):
            fps = float(meta["fps"])
            sources["fps"] = "ImageJ fps"
    return calibration_attrs(sizes, frame_interval=interval, fps=fps, source=sources)


def _resolution(page, tag):
    """Pixels per unit of a resolution tag (a rational), or None."""
    value = getattr(page.tags.get(tag), "value", None)
    try:
        num, den = value
        return float(num) / float(den) if num and den else None
    except (TypeError, ValueError):
        return None


def _positive_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _series_names(tf):
    """The names of a file's series (OME Image names), unique: a missing or repeated
    name becomes ``series<i>`` (``series<i>-<j>`` if a real name is already that)."""
    names = [(s.name or "").strip() for s in tf.series]
    out = [n if n and names.count(n) == 1 else None for n in names]
    taken = {n for n in out if n is not None}
    for i, n in enumerate(out):
        if n is None:
            name, j = f"series{i}", 1
            while name in taken:
                j += 1
                name = f"series{i}-{j}"
            out[i] = name
            taken.add(name)
    return out


def _announced_pages(description):
    """How many pages a TIFF's first ImageDescription says the file will hold: an
    OME-XML's ``SizeT x SizeZ x SizeC``, ImageJ's ``images=``, tifffile's shaped
    ``{"shape": [...]}`` (its leading axes); None when it does not say."""
    import json
    import re

    if not description:
        return None
    text = description.strip()
    if text.startswith("<") and "OME" in text[:400]:
        sizes = [re.search(rf'\bSize{a}="(\d+)"', text) for a in "TZC"]
        if all(sizes):
            return int(np.prod([int(m.group(1)) for m in sizes]))
        return None
    found = re.search(r"^images=(\d+)\s*$", text, re.M)
    if text.startswith("ImageJ=") and found:
        return int(found.group(1))
    if text.startswith("{"):
        try:
            shape = json.loads(text).get("shape")
        except (ValueError, AttributeError):
            return None
        if isinstance(shape, list) and len(shape) >= 3 and all(isinstance(v, int)
                                                                for v in shape):
            return int(np.prod(shape[:-2]))
    return None


class GrowingTiff(Growing):
    """A multi-page TIFF that grows while it is recorded, one page per frame.

    Each scan reads the file's page chain again with tifffile and counts, from the
    first page on, the pages whose image data lie entirely within the file as it is
    now (a page whose data are still being written, or an IFD cut short at the end of
    the file, is not counted until the next scan sees it whole). Every page must be
    one 2-D plane (or a colour plane) of the first page's shape and dtype.

    The recording has ended when it holds as many pages as its first page's
    description announces (an OME-XML's ``SizeT x SizeZ x SizeC``, ImageJ's
    ``images=``, tifffile's shaped ``{"shape": ...}``), when it says.

    Parameters
    ----------
    source : str or path-like
        The TIFF file.
    """

    reader = "tiff"

    def __init__(self, source):
        super().__init__(source)
        if not os.path.isfile(self.path):
            raise VideoError(f"{self.path}: not a file")
        self.offsets = []
        self.plane = None  # (shape, dtype) of the first page

    def scan(self):
        """Count the complete pages (see the class)."""
        import tifffile

        size = os.path.getsize(self.path)
        offsets, announced = [], None
        try:
            with _TifffileErrors(), tifffile.TiffFile(self.path) as tf:
                pages = tf.pages
                first = pages.first
                plane = (tuple(int(s) for s in first.shape), str(first.dtype))
                if self.plane is None:
                    self.plane = plane
                elif plane != self.plane:
                    raise VideoError(f"{self.path}: the first page changed since the last "
                                     "scan: not the recording followed")
                announced = _announced_pages(first.description)
                if announced is not None and announced < 1:
                    announced = None
                index = 0
                while True:
                    try:
                        page = pages[index]
                    except (IndexError, Exception):  # noqa: BLE001 - the chain ends here
                        break
                    if page is None:
                        break
                    shape = tuple(int(s) for s in page.shape)
                    if (shape, str(page.dtype)) != self.plane:
                        raise VideoError(
                            f"{self.path}: page {index} is {shape} {page.dtype}, the first "
                            f"is {self.plane[0]} {self.plane[1]}: follow reads one page "
                            "per frame, all of one shape")
                    ends = [int(o) + int(n) for o, n in zip(page.dataoffsets,
                                                            page.databytecounts)]
                    if not ends or max(ends) > size:
                        break
                    offsets.append(int(page.offset))
                    index += 1
        except VideoError:
            raise
        except Exception:  # noqa: BLE001 - a header being written: nothing new yet
            return Growth(len(self.offsets))
        if len(offsets) < len(self.offsets) or offsets[:len(self.offsets)] != self.offsets:
            raise VideoError(f"{self.path}: pages already located were rewritten or are "
                             "gone; a recording only grows")
        self.offsets = offsets
        n = len(offsets)
        if announced is not None and n >= announced:
            return Growth(n, True, f"all {announced} pages its metadata announces")
        return Growth(n)

    def source(self, n_frames):
        return TiffSource._of_pages(self.path, self.offsets[:n_frames], *self.plane)


class TiffSource(Source):
    """A TIFF file (``.tif``, ``.tiff``), one frame per page or along its frame axis.

    Parameters
    ----------
    source : str or path-like
        The TIFF file.

    position : int or str, optional
        For a file of several series: which one (index or name).

    Raises
    ------
    UnsupportedSourceError
        tifffile cannot read the file (a ``VideoError``).
    VideoError
        No images; more than one axis besides y, x (and samples) that is not ``T``,
        ``Z`` or ``C``; two channel axes (``C`` and samples); several series and no
        ``position`` (or one the file does not hold).

    Notes
    -----
    The axes come from tifffile's first series (``series.axes``): ``T`` is the frame
    axis, ``Z`` the z axis (frames are then z-stacks, dims ``("frame", "z", "y",
    "x")``) and ``C`` or samples (``S``) the channel axis, moved last; axes with one
    entry are dropped. Without ``T``, a single other leading axis (a plain multi-page
    TIFF's pages) is the frame axis, and without any (``ZYX``) the file is one frame.
    An ImageJ stack that is not a hyperstack is read as frames, as before: ImageJ
    records the images of every plain stack as ``slices`` (tifffile's ``Z``), time
    series included (e.g. ImageJ 1.46 saving a 5-frame recording); only a hyperstack
    (``hyperstack=true`` in its metadata, as ImageJ and ``tifffile.imwrite(...,
    imagej=True)`` write them) has z-stacks. To read a plain ImageJ stack as one
    z-stack, load it with tifffile and pass ``dims=("z", "y", "x")``.

    When each page of the series is one y, x plane (ImageJ hyperstacks, OME-TIFF,
    most multi-page files), a chunk task reads exactly the pages of its frames (every
    z plane and channel of each); otherwise it reads its frames' slice of tifffile's
    Zarr view of the series, which decodes only the pages (or tiles) holding them.

    **Positions.** A file of several series (an OME-TIFF of several ``Image``
    elements: stage positions of Micro-Manager and other acquisition software) holds
    one recording per series: ``position=`` (index or name: the OME ``Image`` name)
    picks one, and :func:`daskloc.batch` locates each as its own video.

    **Calibration** (``attrs``, see :func:`~daskloc.video._calibration.calibration_attrs`;
    in µm and s, the field read in ``pixel_size_source`` and ``fps_source``): from OME-XML
    (``PhysicalSizeX/Y/Z`` with their units, ``TimeIncrement`` or else the median step
    of the planes' ``DeltaT``), else from ImageJ
    metadata (the resolution tags in ``unit``, ``spacing`` for z, ``finterval`` or
    ``fps``), else from the TIFF resolution tags when their unit is cm, mm or µm (an
    inch means a printing resolution, not a calibration).
    """

    name = "tiff"
    open_options = ("position",)
    fresh_blocks = True  # each read decodes into a new chunk buffer
    suffixes = TIFF_EXTENSIONS
    summary = "multi-page TIFF (.tif, .tiff)"
    priority = 40
    per_frame = True
    growing = GrowingTiff

    @classmethod
    def _of_pages(cls, path, offsets, plane_shape, dtype):
        """The pages at IFD ``offsets`` of ``path`` as frames, one page each, without
        parsing the file (a followed TIFF's complete pages, :class:`GrowingTiff`)."""
        self = cls.__new__(cls)
        n = len(offsets)
        plane_shape = tuple(int(s) for s in plane_shape)
        colour = len(plane_shape) == 3
        shape = (n,) + plane_shape
        frame_dims = ("y", "x", "channel") if colour else ("y", "x")
        self.path = os.fspath(path)
        self.files = [os.path.abspath(self.path)]
        self.series = 0
        self.layout = _TiffLayout(shape, 0, n, 3 if colour else 2, tuple(range(len(shape))),
                                  plane_shape, frame_dims)
        self.use_pages = True
        self.first_page = 0
        self.ifd_offsets = np.asarray(offsets, dtype=np.int64)
        self.frame_shape = plane_shape
        self.frame_dims = frame_dims
        self.dtype = np.dtype(dtype)
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {"source": self.path, "original_shape": shape,
                      "original_dtype": str(self.dtype), "n_frames": n}
        return self

    @classmethod
    def role(cls, item):
        """``"video"`` for a multi-page TIFF, ``"frame"`` for a single page (one image
        of a sequence), ``"unknown"`` when it cannot be read; None if not a TIFF."""
        if not is_path(item) or is_glob(item):
            return None
        path = Path(os.fspath(item))
        if path.suffix.lower() not in cls.suffixes or path.is_dir():
            return None
        pages = tiff_pages(os.fspath(item))
        return "unknown" if pages is None else ("video" if pages > 1 else "frame")

    @classmethod
    def stem(cls, path):
        """The file's name without ``.tif`` / ``.tiff`` and an ``.ome`` before it."""
        stem = super().stem(path)
        return stem[:-4] if stem.lower().endswith(".ome") and len(stem) > 4 else stem

    @classmethod
    def positions_of(cls, source):
        """The names of the file's series when it holds several (OME-TIFF images of
        several positions); None for one series or a file tifffile cannot read."""
        import tifffile

        try:
            with tifffile.TiffFile(os.fspath(source)) as tf:
                return _series_names(tf) if len(tf.series) > 1 else None
        except Exception:  # noqa: BLE001 - unreadable: open_video says why
            return None

    def __init__(self, source, position=None):
        import tifffile

        path = os.fspath(source)
        self.path = path
        try:
            with _TifffileErrors() as errors, tifffile.TiffFile(path) as tf:
                if not tf.series:
                    raise VideoError(f"{path}: TIFF file holds no images")
                names = _series_names(tf)
                index = pick_position(names, position, path)
                series = tf.series[index]
                _check_complete(path, tf, series, errors)
                # the series' pages, parsed once (tifffile parses them again at each
                # iteration of series.pages: seconds for 10^4 pages)
                pages = list(series.pages)
                # every file the series' pages are in (a multi-file OME-TIFF's
                # companions too): a change to any of them is a change of the source
                self.files = sorted({os.path.abspath(page.parent.filehandle.path)
                                     for page in pages if page is not None})
                meta = tf.imagej_metadata or {}
                # ImageJ calls the images of every plain (not hyper-) stack "slices",
                # time series included: only a hyperstack's Z is depth.
                z_is_depth = not tf.is_imagej or bool(meta.get("hyperstack"))
                layout = _tiff_layout(series, path, z_is_depth)
                n = layout.n
                # one page per y, x plane (or y, x, samples): read pages, not the series
                self.use_pages = len(pages) == int(
                    np.prod(layout.shape[: len(layout.shape) - layout.plane], dtype=np.int64)
                )
                self.first_page = _first_page(pages, tf) if self.use_pages else None
                # where each page's IFD is: a chunk task reads its pages' IFDs alone,
                # not the chain of every IFD before them (O(file) per chunk)
                self.ifd_offsets = (np.array([page.offset for page in pages],
                                             dtype=np.int64)
                                    if self.first_page is not None else None)
                dtype = np.dtype(series.dtype)
                shape = tuple(int(s) for s in series.shape)
                calibration = _tiff_calibration(tf, index, series, layout.frame_dims)
        except VideoError:
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, ...
            raise UnsupportedSourceError(
                f"{path}: cannot read as a TIFF ({type(exc).__name__}: {exc})"
            ) from exc
        if n == 0:
            raise VideoError(f"{path}: TIFF has no frames")
        self.series = index
        self.layout = layout
        self.frame_shape = layout.frame_shape
        self.frame_dims = layout.frame_dims
        self.dtype = dtype
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": str(path),
            "original_shape": shape,
            "original_dtype": str(dtype),
            "n_frames": int(n),
            **calibration,
        }
        if len(names) > 1:
            self.attrs["position"] = names[index]
            self.attrs["position_index"] = index

    def fingerprint(self):
        """Total size and newest mtime of every file holding the series' pages."""
        return fingerprint_files(self.files or [self.path])

    def spec(self):
        """``(path, use_pages, shape, frame_axis, plane, order, first_page, series)``:
        the series' layout and index; ``first_page`` is the file's index of the series'
        first page when its pages are the file's pages from there on, in order (else
        None)."""
        lay = self.layout
        return (self.path, self.use_pages, lay.shape, lay.frame_axis, lay.plane, lay.order,
                self.first_page, self.series)

    def chunk_args(self, positions):
        """One entry per frame: its position (int) or, when the series' pages are the
        file's pages in order, ``(position, ifd_offsets)``, the file offsets of the
        IFDs of the frame's pages (in :meth:`pages` order)."""
        if self.ifd_offsets is None:
            return tuple(int(p) for p in positions)
        spec = self.spec()
        return tuple(
            (int(p), tuple(int(o) for o in self.ifd_offsets[self.pages(spec, (p,)).ravel()]))
            for p in positions
        )

    @staticmethod
    def pages(spec, arg):
        """The page indices (in the series) a chunk reads when it reads pages.

        Parameters
        ----------
        spec, arg
            As given to :meth:`read`.

        Returns
        -------
        numpy.ndarray of int64
            Shape: the series' leading axes (before y, x), with the frame axis cut to
            the chunk's frames (length 1 added first for a file of one frame); the
            index of the page holding each plane (C order, as tifffile numbers a
            series' pages).
        """
        shape, frame_axis, plane = spec[2:5]
        arg = [a[0] if isinstance(a, tuple) else a for a in arg]
        leading = tuple(shape[: len(shape) - plane])
        index = [np.arange(s, dtype=np.int64) for s in leading]
        if frame_axis is not None:
            index[frame_axis] = np.asarray(arg, dtype=np.int64)
        grids = np.meshgrid(*index, indexing="ij") if index else []
        pages = (np.ravel_multi_index(grids, leading) if index
                 else np.zeros((), dtype=np.int64))
        return np.asarray(pages, dtype=np.int64)

    @staticmethod
    def read(spec, arg):
        """Read the chunk's pages (or its slice of tifffile's zarr view of the series)."""
        import tifffile

        path, use_pages, shape, frame_axis, plane, order, first_page, series = spec
        positions = [a[0] if isinstance(a, tuple) else a for a in arg]
        with tifffile.TiffFile(path) as tf:
            if use_pages and arg and isinstance(arg[0], tuple):
                # Each page's IFD offset is known: read those IFDs alone (tifffile's
                # TiffFrame, decoded as the series' first page says), into one chunk
                # buffer that becomes the chunk (fresh_blocks: no second copy).
                pages = TiffSource.pages(spec, positions)
                offset_of = {}
                for entry in arg:
                    for page, offset in zip(TiffSource.pages(spec, entry[:1]).ravel(),
                                            entry[1], strict=True):
                        offset_of[int(page)] = offset
                offsets = [offset_of[int(page)] for page in pages.ravel()]
                planes = _read_frames(tf, offsets, shape[len(shape) - plane :])
                block = np.reshape(planes, pages.shape + tuple(shape[len(shape) - plane :]))
                yield slice(None), _to_video_order(block, shape, frame_axis, order)
                return
            if use_pages and first_page is not None:
                # The series' pages are the file's from first_page on: read them by file
                # index, without tf.series (tifffile parses an OME-TIFF's series by
                # reading every IFD of the file, at every chunk: O(file) per chunk), into
                # one new array that becomes the chunk (fresh_blocks: no second copy).
                pages = TiffSource.pages(spec, positions)
                planes = tf.asarray(key=(first_page + pages.ravel()).tolist(),
                                    out=_chunk_out(tf, pages.size, shape, plane))
                block = np.reshape(planes, pages.shape + tuple(shape[len(shape) - plane :]))
                yield slice(None), _to_video_order(block, shape, frame_axis, order)
                return
            if use_pages:
                # one page per plane: read just the pages of this chunk's frames
                pages = TiffSource.pages(spec, positions)
                planes = tf.asarray(key=pages.ravel().tolist(), series=series,
                                    out=_chunk_out(tf, pages.size, shape, plane))
                block = np.reshape(planes, pages.shape + tuple(shape[len(shape) - plane :]))
            else:
                import zarr

                store = tf.series[series].aszarr()
                try:
                    z = zarr.open_array(store, mode="r")
                    index = [slice(None)] * len(shape)
                    if frame_axis is not None:
                        index[frame_axis] = positions
                    block = z.oindex[tuple(index)]
                finally:
                    store.close()
        yield slice(None), _to_video_order(np.asarray(block), shape, frame_axis, order)


def _read_frames(tf, offsets, plane_shape):
    """The pages whose IFDs are at ``offsets``, as one array ``(len(offsets),) +
    plane_shape`` (a chunk buffer); the first is parsed whole and is the keyframe of
    the others (pages of one series share their layout)."""
    import tifffile

    tf.filehandle.seek(offsets[0])
    keyframe = tifffile.TiffPage(tf, index=0)
    out = chunk_buffer((len(offsets),) + tuple(plane_shape), keyframe.dtype)
    keyframe.asarray(out=out[0].reshape(keyframe.shape))
    for i, offset in enumerate(offsets[1:], 1):
        frame = tifffile.TiffFrame(tf, index=i, offset=offset, keyframe=keyframe)
        frame.asarray(out=out[i].reshape(keyframe.shape))
    return out

def _chunk_out(tf, n_planes, shape, plane):
    """A chunk buffer for ``n_planes`` planes of the file's first page's dtype, for
    tifffile's ``asarray(out=...)`` (None, tifffile's own new array, if that page has no
    plain dtype or more than one plane)."""
    n_planes = int(n_planes)
    first = tf.pages.first
    dtype = getattr(first, "dtype", None)
    if dtype is None or n_planes < 2:
        return None
    return chunk_buffer((n_planes,) + tuple(shape[len(shape) - plane :]), dtype)

def _first_page(pages, tf):
    """The file's index of the series' first page if the series' ``pages`` are the
    file's pages from there on, in order (every page of an OME-TIFF or multi-page TIFF
    written as one series); else None (pages in another file, out of order, missing)."""
    index = []
    for page in pages:
        if page is None or page.parent is not tf or not isinstance(page.index, int):
            return None
        index.append(page.index)
    if not index or index != list(range(index[0], index[0] + len(index))):
        return None
    return index[0]


def _to_video_order(block, shape, frame_axis, order):
    """A block with the series' axes (frame axis cut to the chunk) as (k, [z,] y, x[, c])."""
    if frame_axis is None:  # one frame: add its axis first
        block = block[None]
        order = (0,) + tuple(a + 1 for a in order)
        singletons = [a + 1 for a in range(len(shape)) if a + 1 not in order]
    else:
        singletons = [a for a in range(len(shape)) if a not in order]
    # axes of one entry (no role) are dropped; the others go in video order
    keep = [a for a in range(block.ndim) if a not in singletons]
    block = block.reshape([block.shape[a] for a in keep])
    rank = {a: i for i, a in enumerate(keep)}
    perm = tuple(rank[a] for a in order)
    if perm != tuple(range(len(perm))):
        block = np.ascontiguousarray(block.transpose(perm))
    return block
