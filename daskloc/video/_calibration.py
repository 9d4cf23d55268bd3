"""The calibration of a recording: µm per pixel along each axis, seconds per frame.

One model, :class:`Calibration`, for every reader and every consumer. A reader puts
what its format's metadata records into the video's attrs (:func:`calibration_attrs`);
the pipeline records :meth:`Calibration.to_json` in a store's metadata (``source``'s
``"calibration"``); ``daskloc info``, :func:`daskloc.probe` and
:func:`daskloc.calibration` read it back with :meth:`Calibration.from_json`. Features
stay in pixels and frames (trackpy's convention): nothing here converts them.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["FPS_ATTR", "FPS_SOURCE_ATTR", "PIXEL_SIZE_ATTRS", "PIXEL_SIZE_SOURCE_ATTR",
           "SPATIAL_AXES", "Calibration", "calibration_attrs", "to_micrometres", "to_seconds"]

#: The spatial axes a pixel size can be given for, slowest first.
SPATIAL_AXES = ("z", "y", "x")

#: Length units as OME-XML, ImageJ and OME-Zarr write them, in micrometres.
_LENGTH_UM = {
    "pm": 1e-6, "Å": 1e-4, "\\u00c5": 1e-4, "angstrom": 1e-4, "nm": 1e-3, "nanometer": 1e-3,
    "nanometre": 1e-3, "µm": 1.0, "μm": 1.0, "um": 1.0, "micron": 1.0, "microns": 1.0,
    "micrometer": 1.0, "micrometre": 1.0, "\\u00b5m": 1.0, "mm": 1e3, "millimeter": 1e3,
    "millimetre": 1e3, "cm": 1e4, "centimeter": 1e4, "m": 1e6, "meter": 1e6, "metre": 1e6,
}

#: Time units as OME-XML, ImageJ and OME-Zarr write them, in seconds.
_TIME_S = {
    "ns": 1e-9, "nanosecond": 1e-9, "µs": 1e-6, "μs": 1e-6, "us": 1e-6, "usec": 1e-6,
    "µsec": 1e-6, "\\u00b5s": 1e-6, "\\u00b5sec": 1e-6, "microsecond": 1e-6,
    "ms": 1e-3, "msec": 1e-3, "millisecond": 1e-3, "s": 1.0, "sec": 1.0,
    "second": 1.0, "seconds": 1.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
}


def _positive(value):
    """``float(value)`` if a finite positive real number, else None."""
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        return None
    try:
        value = float(value)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _factor(unit, table, default):
    if unit is None:
        return table[default]
    key = str(unit).strip()
    return table.get(key, table.get(key.lower()))


def to_micrometres(value, unit="µm"):
    """A length in micrometres, or None when it is not a usable calibration.

    Parameters
    ----------
    value : float or str
        The length as the metadata records it.
    unit : str or None, default "µm"
        Its unit as written by OME-XML (``"nm"``, ``"µm"``...), ImageJ (``"micron"``,
        ``"\\u00B5m"``, ``"pixel"``) or OME-Zarr (``"micrometer"``); None means µm (the
        OME schema's default).

    Returns
    -------
    float or None
        The length in µm; None for a value that is not a finite positive number or a
        unit that is not a length (ImageJ's ``"pixel"``: uncalibrated).

    Examples
    --------
    >>> to_micrometres(650, "nm"), to_micrometres("0.5", "micron"), to_micrometres(1, "pixel")
    (0.65, 0.5, None)
    """
    value, factor = _positive(value), _factor(unit, _LENGTH_UM, "µm")
    return None if value is None or factor is None else value * factor


def to_seconds(value, unit="s"):
    """A time interval in seconds, or None when it is not a usable calibration.

    Parameters
    ----------
    value : float or str
        The interval as the metadata records it.
    unit : str or None, default "s"
        Its unit (``"ms"``, ``"s"``, ``"min"``, ``"millisecond"``...); None means s.

    Returns
    -------
    float or None
        The interval in s; None for a value that is not a finite positive number or a
        unit that is not a time.

    Examples
    --------
    >>> to_seconds(50, "ms"), to_seconds(2, "min"), to_seconds(0, "s")
    (0.05, 120.0, None)
    """
    value, factor = _positive(value), _factor(unit, _TIME_S, "s")
    return None if value is None or factor is None else value * factor


#: The attrs a video's calibration is kept in: plain numbers and strings, so the
#: attrs stay netCDF-friendly (``video.to_netcdf()``). µm per pixel along each axis:
PIXEL_SIZE_ATTRS = {"z": "pixel_size_z", "y": "pixel_size_y", "x": "pixel_size_x"}
#: ... frames per second, and the metadata field each came from.
FPS_ATTR, PIXEL_SIZE_SOURCE_ATTR, FPS_SOURCE_ATTR = "fps", "pixel_size_source", "fps_source"


def _normal_sources(source):
    """``{"pixel_size": field, "fps": field}`` from a reader's ``source`` dict, whose
    time field may be named ``frame_interval`` (the metadata recorded an interval)."""
    out = {}
    for key, value in (source or {}).items():
        if value is None:
            continue
        key = "fps" if key == "frame_interval" else key
        if key not in ("pixel_size", "fps"):
            raise ValueError(f"calibration source key {key!r} is not 'pixel_size', "
                             "'fps' or 'frame_interval'")
        out[key] = str(value)
    return out


def calibration_attrs(pixel_size=None, frame_interval=None, fps=None, source=None):
    """The attrs a reader adds to its video for what its metadata records.

    Parameters
    ----------
    pixel_size : dict, optional
        ``{axis: µm}`` for the axes the metadata calibrates (``"z"``, ``"y"``,
        ``"x"``); values that are not positive numbers are left out.
    frame_interval : float, optional
        Seconds between frames.
    fps : float, optional
        Frames per second, when the format records a rate instead (movies); ignored
        when ``frame_interval`` is given.
    source : dict, optional
        ``{"pixel_size": field, "frame_interval" or "fps": field}``: which metadata
        field each came from (e.g. ``"OME-XML Pixels PhysicalSizeX/Y/Z"``).

    Returns
    -------
    dict
        ``pixel_size_z``, ``pixel_size_y``, ``pixel_size_x`` (float, µm), ``fps``
        (float), ``pixel_size_source`` and ``fps_source`` (str), each only when known:
        plain values, so the attrs stay netCDF-friendly; :meth:`Calibration.from_attrs`
        reads them.

    Raises
    ------
    ValueError
        An axis of ``pixel_size`` that is not ``z``, ``y`` or ``x``; a ``source`` key
        that is not ``pixel_size``, ``fps`` or ``frame_interval``.

    Examples
    --------
    >>> calibration_attrs({"y": 0.16, "x": 0.16}, frame_interval=0.05,
    ...                   source={"pixel_size": "ImageJ resolution"})
    {'pixel_size_y': 0.16, 'pixel_size_x': 0.16, 'fps': 20.0, 'pixel_size_source': 'ImageJ resolution'}
    """  # noqa: E501 - a doctest's output is one line
    sizes = {}
    for axis, value in (pixel_size or {}).items():
        if axis not in SPATIAL_AXES:
            raise ValueError(f"pixel_size axis {axis!r} is not one of {SPATIAL_AXES}")
        value = _positive(value)
        if value is not None:
            sizes[axis] = value
    attrs = {PIXEL_SIZE_ATTRS[a]: sizes[a] for a in SPATIAL_AXES if a in sizes}
    interval = _positive(frame_interval)
    rate = 1.0 / interval if interval is not None else _positive(fps)
    if rate is not None:
        attrs[FPS_ATTR] = rate
    fields = _normal_sources(source)
    if sizes and "pixel_size" in fields:
        attrs[PIXEL_SIZE_SOURCE_ATTR] = fields["pixel_size"]
    if rate is not None and "fps" in fields:
        attrs[FPS_SOURCE_ATTR] = fields["fps"]
    return attrs


class Calibration:
    """µm per pixel along each axis and frames per second, with where each came from.

    Parameters
    ----------
    pixel_size : dict, optional
        ``{axis: µm}`` for the calibrated axes among ``z``, ``y``, ``x``.
    fps : float, optional
        Frames per second (``1 / frame_interval``).
    source : dict, optional
        ``{"pixel_size": field, "fps" or "frame_interval": field}``: the metadata
        field each value was read from.

    Raises
    ------
    ValueError
        As :func:`calibration_attrs`.

    Attributes
    ----------
    pixel_size : dict
        As given (µm), only the calibrated axes.
    fps : float or None
        Frames per second; None when the recording does not say.
    frame_interval : float or None
        Seconds between frames (``1 / fps``).
    z_step : float or None
        µm between planes of a z-stack (``pixel_size["z"]``).
    source : dict
        ``{"pixel_size": field, "fps": field}`` for the values known.

    Notes
    -----
    ``mpp, fps = calibration`` unpacks in the form ``trackpy.motion.emsd(traj, mpp,
    fps)`` and ``trackpy.motion.imsd`` take (a ValueError saying what is missing when
    either is not recorded) with their default position columns
    (``x``, ``y``): :attr:`mpp` is one number when x and y have the same size, else
    one per column. With ``pos_columns=["z", "y", "x"]`` pass
    ``calibration.mpp_for(["z", "y", "x"])``. The features themselves stay in pixels
    and frames.

    Examples
    --------
    >>> c = Calibration({"y": 0.2, "x": 0.2}, fps=10.0)
    >>> mpp, fps = c
    >>> mpp, fps, c.frame_interval
    (0.2, 10.0, 0.1)
    >>> Calibration({"z": 0.5, "y": 0.2, "x": 0.2}).mpp_for(["z", "y", "x"])
    array([0.5, 0.2, 0.2])
    """

    __slots__ = ("fps", "pixel_size", "source")

    def __init__(self, pixel_size=None, fps=None, source=None):
        attrs = calibration_attrs(pixel_size, fps=fps, source=source)
        self.pixel_size = {a: attrs[k] for a, k in PIXEL_SIZE_ATTRS.items() if k in attrs}
        self.fps = attrs.get(FPS_ATTR)
        self.source = {k: v for k, v in (("pixel_size", attrs.get(PIXEL_SIZE_SOURCE_ATTR)),
                                         ("fps", attrs.get(FPS_SOURCE_ATTR))) if v}

    # ------------------------------------------------------------- conversions

    @classmethod
    def from_attrs(cls, attrs):
        """The calibration of a video from its attrs (as :func:`calibration_attrs`
        writes them)."""
        sizes = {a: attrs[k] for a, k in PIXEL_SIZE_ATTRS.items() if k in attrs}
        return cls(sizes, attrs.get(FPS_ATTR), {"pixel_size": attrs.get(PIXEL_SIZE_SOURCE_ATTR),
                                                 "fps": attrs.get(FPS_SOURCE_ATTR)})

    def to_json(self):
        """A JSON document: ``{"pixel_size_um": {...}, "fps": ..., "frame_interval_s":
        ..., "source": {...}}`` (None where unknown), as a store's metadata records it."""
        return {"pixel_size_um": dict(self.pixel_size) or None, "fps": self.fps,
                "frame_interval_s": self.frame_interval, "source": dict(self.source)}

    @classmethod
    def from_json(cls, doc):
        """The calibration :meth:`to_json` recorded; an empty one for None or a document
        that is not a dict (stores written before calibration was recorded)."""
        if not isinstance(doc, dict):
            return cls()
        sizes = doc.get("pixel_size_um")
        source = doc.get("source")
        return cls(sizes if isinstance(sizes, dict) else None, doc.get("fps"),
                   source if isinstance(source, dict) else None)

    # ------------------------------------------------------------- values

    @property
    def frame_interval(self):
        return None if self.fps is None else 1.0 / self.fps

    @property
    def z_step(self):
        return self.pixel_size.get("z")

    def mpp_for(self, pos_columns):
        """µm per pixel for trackpy's ``mpp`` with these position columns.

        Parameters
        ----------
        pos_columns : sequence of str
            The columns the MSD is taken over, e.g. ``["x", "y"]`` (trackpy's default)
            or ``["z", "y", "x"]``.

        Returns
        -------
        float, numpy.ndarray of float64 or None
            One number when all those axes have the same size, else one per column in
            the order given; None when any of them is not calibrated.
        """
        import numpy as np

        sizes = [self.pixel_size.get(c) for c in pos_columns]
        if any(s is None for s in sizes):
            return None
        if all(s == sizes[0] for s in sizes):
            return sizes[0]
        return np.asarray(sizes, dtype=np.float64)

    @property
    def mpp(self):
        """µm per pixel for trackpy's default position columns, ``["x", "y"]``: one
        number when x and y have the same size, else ``[x, y]``; None when they are
        not calibrated. For other columns (``["z", "y", "x"]``) use :meth:`mpp_for`."""
        return self.mpp_for(["x", "y"])

    def __iter__(self):
        missing = [n for n, v in (("µm per pixel (x, y)", self.mpp), ("fps", self.fps))
                   if v is None]
        if missing:
            raise ValueError(
                f"the recording's metadata gave no {' and no '.join(missing)} "
                f"({self.describe()}), so there is no (mpp, fps) to unpack for trackpy: "
                "give trackpy your own values, or read calibration.mpp and "
                "calibration.fps (None where unknown)"
            )
        return iter((self.mpp, self.fps))

    def __bool__(self):
        return bool(self.pixel_size) or self.fps is not None

    def __eq__(self, other):
        return isinstance(other, Calibration) and self.to_json() == other.to_json()

    def __repr__(self):
        return (f"Calibration(pixel_size={self.pixel_size!r}, fps={self.fps!r}, "
                f"source={self.source!r})")

    def describe(self):
        """One line for people: ``"0.16 x 0.16 µm per pixel (y, x), 0.5 µm z step, 20
        frames/s (0.05 s per frame)"`` and the fields read, or ``"not recorded"``."""
        parts = []
        xy = [self.pixel_size.get(a) for a in ("y", "x")]
        if all(v is not None for v in xy):
            parts.append(f"{xy[0]:g} x {xy[1]:g} µm per pixel (y, x)")
        else:
            parts += [f"{v:g} µm per pixel along {a}" for a, v in zip("yx", xy)
                      if v is not None]
        if self.z_step is not None:
            parts.append(f"{self.z_step:g} µm z step")
        if self.fps is not None:
            parts.append(f"{self.fps:g} frames/s ({self.frame_interval:g} s per frame)")
        if not parts:
            return "not recorded"
        fields = "; ".join(f"{k}: {v}" for k, v in self.source.items())
        return ", ".join(parts) + (f" [from {fields}]" if fields else "")
