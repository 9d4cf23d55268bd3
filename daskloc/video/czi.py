"""Zeiss CZI files, read with pylibCZIrw (libCZI): ``T`` is the frame axis, ``Z`` the z
axis, ``C`` the channel axis, each scene (``S``) a position; calibration from the CZI
``Scaling`` metadata."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np

from daskloc._extras import require
from daskloc.video._base import Source, UnsupportedSourceError, VideoError, pick_position
from daskloc.video._calibration import calibration_attrs, to_micrometres, to_seconds

__all__ = ["CZI_EXTENSIONS", "CziSource"]

#: Zeiss CZI files, read with pylibCZIrw.
CZI_EXTENSIONS = (".czi",)

#: CZI pixel types daskloc reads -> (numpy dtype, colour: three BGR samples per pixel).
PIXEL_TYPES = {
    "Gray8": ("uint8", False),
    "Gray16": ("uint16", False),
    "Gray32Float": ("float32", False),
    "Bgr24": ("uint8", True),
    "Bgr48": ("uint16", True),
    "Bgr96Float": ("float32", True),
}

#: Grey pixel types in the order of the values they hold: channels of different grey
#: types are all read as the widest (libCZI converts by value: 200 stays 200).
_GREY_ORDER = ("Gray8", "Gray16", "Gray32Float")

#: CZI dimensions that are not T, Z, C (nor S, scenes, or M, the tiles of a mosaic):
#: a file with more than one entry along any of them is refused.
_OTHER_DIMS = ("R", "I", "H", "V", "B")

#: Where the metadata keeps what the calibration is read from.
_SCALING = "Metadata/Scaling/Items/Distance"
_T_INCREMENT = "Metadata/Information/Image/Dimensions/T/Positions/Interval/Increment"
_SCENES = "Metadata/Information/Image/Dimensions/S/Scenes/Scene"


def _pyczi():
    """pylibCZIrw's ``czi`` module, or the ImportError naming the ``[czi]`` extra."""
    return require("pylibCZIrw.czi")


def _metadata(reader):
    """The CZI's XML metadata as an ElementTree root (``ImageDocument``), or None."""
    try:
        return ET.fromstring(reader.raw_metadata)
    except Exception:  # noqa: BLE001 - malformed metadata: no names, no calibration
        return None


def _scene_ids(reader):
    """The scene indices of the file, sorted; ``[None]`` for a file without scenes."""
    try:
        rects = reader.scenes_bounding_rectangle_no_pyramid
    except ValueError as exc:  # scenes in the metadata and in the subblocks disagree
        raise VideoError(f"cannot tell the CZI file's scenes apart ({exc})") from exc
    return sorted(rects) if rects else [None]


def _scene_t(reader, scene):
    """The sorted ``T`` indices (int64 array) of the full-resolution subblocks of
    ``scene`` (every subblock for None), from the subblock directory (no pixel data)."""
    found = set()

    def visit(_index, info):
        coord = info.coordinate.to_dict()
        if scene is None or coord.get("S", scene) == scene:
            found.add(int(coord.get("T", 0)))
        return True

    reader.enumerate_subblocks_subset(visit, only_layer0=True)
    return np.array(sorted(found), dtype=np.int64)


def _scene_names(root, ids):
    """One unique name per scene: the metadata's ``Scene`` ``Name`` (matched by its
    ``Index``, else by order), ``scene<i>`` where it is missing or repeated."""
    found = {}
    elements = root.findall(_SCENES) if root is not None else []
    for order, element in enumerate(elements):
        index = element.get("Index")
        try:
            index = int(index) if index is not None else order
        except ValueError:
            index = order
        name = (element.get("Name") or "").strip()
        if name:
            found.setdefault(index, name)
    names = [found.get(i, "") if i is not None else "" for i in ids]
    return [n if n and names.count(n) == 1 else f"scene{i}" for i, n in enumerate(names)]


def _calibration(root, frame_dims, has_t):
    """The calibration attrs (:func:`calibration_attrs`): µm per pixel from
    ``Scaling/Items/Distance`` (X, Y and, for z-stacks, Z; values in metres), the frame
    interval from ``Dimensions/T/Positions/Interval/Increment`` (seconds)."""
    sizes, sources, interval = {}, {}, None
    if root is None:
        return {}
    for distance in root.findall(_SCALING):
        axis = (distance.get("Id") or "").lower()
        if axis not in frame_dims or axis not in ("z", "y", "x"):
            continue
        um = to_micrometres((distance.findtext("Value") or "").strip(), "m")
        if um is not None:  # 2e-07 m is 0.2 µm, not 0.19999999999999998
            sizes[axis] = float(f"{um:.12g}")
    if sizes:
        sources["pixel_size"] = "CZI Scaling Distance " + "/".join(
            a.upper() for a in ("x", "y", "z") if a in sizes)
    if has_t:
        interval = to_seconds((root.findtext(_T_INCREMENT) or "").strip(), "s")
        if interval is not None:
            sources["frame_interval"] = "CZI Dimensions T Positions Interval Increment"
    return calibration_attrs(sizes, frame_interval=interval, source=sources)


def _pixel_type(types, path):
    """The one pixel type all channels are read as, from their pixel types."""
    unknown = sorted({t for t in types if t not in PIXEL_TYPES})
    if unknown:
        raise VideoError(
            f"{path}: CZI pixel type {', '.join(unknown)} is not read by daskloc (it reads "
            f"{', '.join(PIXEL_TYPES)})"
        )
    colour = {PIXEL_TYPES[t][1] for t in types}
    if len(colour) > 1:
        raise VideoError(
            f"{path}: CZI channels mix colour and grey pixel types ({', '.join(types)}); "
            "daskloc reads one pixel type per file"
        )
    if colour == {True}:
        if len(set(types)) > 1:
            raise VideoError(f"{path}: CZI channels of different colour pixel types "
                             f"({', '.join(types)})")
        return types[0]
    return max(types, key=_GREY_ORDER.index)


class CziSource(Source):
    """A Zeiss CZI file (``.czi``), read with pylibCZIrw (the ``[czi]`` extra).

    Parameters
    ----------
    source : str or path-like
        The CZI file.
    position : int or str, optional
        For a file of several scenes: which one (index in the file's order, or name).

    Raises
    ------
    ImportError
        pylibCZIrw is not installed (the message names the ``[czi]`` extra).
    UnsupportedSourceError
        pylibCZIrw cannot open the file (damaged or truncated: the subblock directory
        is at its end; not a CZI); a ``VideoError``.
    VideoError
        Several scenes and no ``position`` (or one the file does not hold); more than
        one entry along a dimension besides ``T``, ``Z``, ``C`` (``R``, ``I``, ``H``,
        ``V``, ``B``); colour pixels and a ``C`` axis of several channels (two channel
        axes); a pixel type other than those below.

    Notes
    -----
    **Axes.** ``T`` is the frame axis, ``Z`` the z axis (frames are then z-stacks, dims
    ``("frame", "z", "y", "x")``) and ``C`` the channel axis (last; pick one with
    ``open_video(..., channel=)``); a dimension with one entry is dropped, so a file
    without ``T`` is one frame (a z-stack when it has ``Z``). Dimensions are taken to
    start at index 0, as pylibCZIrw's own reads do.

    **Pixels.** ``Gray8``, ``Gray16`` and ``Gray32Float`` give ``uint8``, ``uint16``
    and ``float32`` frames; channels of different grey types are all read as the
    widest (libCZI converts by value). ``Bgr24``, ``Bgr48`` and ``Bgr96Float`` are
    colour: a channel axis of 3, turned from the file's (and pylibCZIrw's) blue,
    green, red order into red, green, blue as for every other source, so
    ``channel=0`` is red and ``channel="grey"`` weighs the right components.

    **Scenes and mosaics.** Each scene (``S``) is one position: ``position=`` picks one
    (index or the metadata's scene name; unnamed scenes are ``scene<i>``) and
    :func:`daskloc.batch` locates each as its own video. A frame is the scene's
    bounding rectangle at full resolution (of pyramid layer 0), read through libCZI's
    tile accessor, which composes the tiles of a mosaic (``M``) into it: places no
    tile covers are 0, and where tiles overlap libCZI's drawing order decides (the
    last tile drawn wins). A file without scenes is read whole (its bounding
    rectangle). A scene's frames are the ``T`` indices its own subblocks have (from the
    subblock directory): the file's ``T`` range covers every scene, and a scene whose
    acquisition stopped early has fewer, which are not padded with black frames.

    **Laziness.** Opening reads only the file's directory and metadata. A chunk task
    opens the file itself and reads just the planes of its frames: for each of its
    ``T`` indices, every ``Z`` and ``C`` plane of the scene (no pixel data or open
    file in the graph).

    **Calibration** (``attrs``, see :func:`~daskloc.video._calibration.calibration_attrs`;
    ``pixel_size_source`` and ``fps_source`` name the fields): µm per pixel from the metadata's
    ``Scaling/Items/Distance`` values for ``X``, ``Y`` and, for z-stacks, ``Z`` (in
    metres; 0 means not calibrated), and the frame interval from
    ``Information/Image/Dimensions/T/Positions/Interval/Increment`` (seconds) when the
    file has a ``T`` axis. Per-plane timestamps (the ``TimeStamps`` attachment) are
    not read: pylibCZIrw does not give access to attachments.
    """

    name = "czi"
    open_options = ("position",)
    suffixes = CZI_EXTENSIONS
    summary = "Zeiss CZI (.czi, with the [czi] extra)"
    priority = 40
    per_frame = True

    @classmethod
    def positions_of(cls, source):
        """The names of the file's scenes when it holds several; None for one scene, no
        scenes, or a file that cannot be read (``open_video`` then says why)."""
        try:
            with _pyczi().open_czi(os.fspath(source)) as reader:
                ids = _scene_ids(reader)
                if len(ids) < 2:
                    return None
                return _scene_names(_metadata(reader), ids)
        except Exception:  # noqa: BLE001 - missing library, unreadable: open_video says why
            return None

    def __init__(self, source, position=None):
        pyczi = _pyczi()
        path = os.fspath(source)
        self.path = path
        try:
            with pyczi.open_czi(path) as reader:
                ids = _scene_ids(reader)
                root = _metadata(reader)
                names = _scene_names(root, ids)
                index = pick_position(names, position, path)
                box = reader.total_bounding_box_no_pyramid
                if ids[index] is None:
                    rect = reader.total_bounding_rectangle_no_pyramid
                else:
                    rect = reader.scenes_bounding_rectangle_no_pyramid[ids[index]]
                n_c = box.get("C", (0, 1))[1]
                types = [reader.get_channel_pixel_type(c) for c in range(max(n_c, 1))]
                t_present = _scene_t(reader, ids[index]) if "T" in box else None
        except VideoError:
            raise
        except Exception as exc:  # libCZI raises RuntimeError (truncated, not a CZI)
            raise UnsupportedSourceError(
                f"{path}: cannot read as a CZI file ({type(exc).__name__}: {exc}); a "
                "truncated or damaged CZI cannot be opened (its subblock directory is at "
                "the end of the file)"
            ) from exc
        sizes = {d: int(box[d][1] - box[d][0]) for d in ("T", "Z", "C") if d in box}
        others = {d: int(box[d][1] - box[d][0]) for d in _OTHER_DIMS
                  if d in box and box[d][1] - box[d][0] > 1}
        if others:
            listed = ", ".join(f"{d} ({n} entries)" for d, n in others.items())
            raise VideoError(
                f"{path}: the CZI file has dimension(s) {listed} besides T (time), Z "
                "(depth) and C (channel); open_video reads one frame axis. Read the planes "
                "you want with pylibCZIrw and pass the array instead (with dims=, e.g. "
                "dims=('frame', 'z', 'y', 'x'))"
            )
        pixel_type = _pixel_type(types, path)
        dtype, colour = PIXEL_TYPES[pixel_type]
        n_t, n_z, n_c = (max(sizes.get(d, 1), 1) for d in ("T", "Z", "C"))
        if colour and n_c > 1:
            raise VideoError(
                f"{path}: the CZI file has {n_c} channels (C) of colour pixels "
                f"({pixel_type}): two channel axes; read the channel you want with "
                "pylibCZIrw and pass the array instead"
            )
        if rect.w <= 0 or rect.h <= 0:
            raise VideoError(f"{path}: the CZI scene {names[index]!r} holds no pixels")
        n_s = 3 if colour else n_c
        frame_dims = (("z",) if n_z > 1 else ()) + ("y", "x") + (
            ("channel",) if n_s > 1 else ())
        frame_shape = ((n_z,) if n_z > 1 else ()) + (int(rect.h), int(rect.w)) + (
            (n_s,) if n_s > 1 else ())
        self.scene = ids[index]
        self.roi = (int(rect.x), int(rect.y), int(rect.w), int(rect.h))
        self.pixel_type = pixel_type
        self.n_z, self.n_c, self.colour = n_z, n_c, colour
        self.frame_shape = frame_shape
        self.frame_dims = frame_dims
        self.dtype = np.dtype(dtype)
        # the scene's own T indices: the file's T range is every scene's, and a scene
        # may have fewer (an acquisition stopped during its last time point)
        t0 = int(box["T"][0]) if "T" in box else 0
        if t_present is not None and t_present.size:
            self.t_index = t_present
        else:
            self.t_index = np.arange(t0, t0 + n_t, dtype=np.int64)
        n_t = len(self.t_index)
        self.labels = self.t_index - t0
        original = tuple(n for n in (n_t, n_z, n_c) if n > 1) + (int(rect.h), int(rect.w))
        self.attrs = {
            "source": str(path),
            "original_shape": original + ((3,) if colour else ()),
            "original_dtype": str(self.dtype),
            "n_frames": int(n_t),
            "czi_pixel_type": pixel_type,
            **_calibration(root, frame_dims, n_t > 1),
        }
        if len(names) > 1:
            self.attrs["position"] = names[index]
            self.attrs["position_index"] = index

    def token_parts(self):
        """The file (path, mtime, size) and what is read of it: scenes of one file are
        different arrays, so their dask keys must differ."""
        return (*super().token_parts(), self.scene, self.roi, self.pixel_type)

    def spec(self):
        """``(path, scene, roi, n_z, n_c, pixel_type, colour)``: what every read needs
        (the scene's index in the file, or None, and its ``(x, y, w, h)`` rectangle)."""
        return (self.path, self.scene, self.roi, self.n_z, self.n_c, self.pixel_type,
                self.colour)

    def chunk_args(self, positions):
        """The chunk's ``T`` indices (the scene's T indices at ``positions``), a tuple of
        int."""
        return tuple(int(self.t_index[p]) for p in positions)

    @staticmethod
    def planes(spec, t):
        """The plane coordinates frame ``t`` is read from, in the frame's order.

        Parameters
        ----------
        spec : tuple
            :meth:`spec` of the source.
        t : int
            The frame's ``T`` index.

        Returns
        -------
        list of dict
            ``{"T": t, "Z": z, "C": c}`` for every z plane and channel, ``Z`` slowest
            (pylibCZIrw ignores the dimensions the file does not have).
        """
        n_z, n_c = spec[3], spec[4]
        return [{"T": int(t), "Z": z, "C": c} for z in range(n_z) for c in range(n_c)]

    @staticmethod
    def read(spec, arg):
        """Open the file and read the planes of the chunk's frames, one frame at a time."""
        path, scene, roi, n_z, n_c, pixel_type, colour = spec
        x, y, w, h = roi
        with _pyczi().open_czi(path) as reader:
            for i, t in enumerate(arg):
                planes = [
                    reader.read(roi=(x, y, w, h), plane=plane, scene=scene,
                                pixel_type=pixel_type)
                    for plane in CziSource.planes(spec, t)
                ]
                # each plane (h, w, 1) grey or (h, w, 3) BGR -> (z, c, h, w, samples)
                block = np.stack(planes).reshape((n_z, n_c, h, w, -1))
                if colour:
                    frame = block[:, 0, :, :, ::-1]  # BGR -> RGB
                else:
                    frame = np.moveaxis(block[..., 0], 1, -1)  # (z, h, w, c)
                if frame.shape[-1] == 1:
                    frame = frame[..., 0]
                if n_z == 1:
                    frame = frame[0]
                yield slice(i, i + 1), np.ascontiguousarray(frame)[None]
