"""The feature table: every column daskloc writes, defined once.

One table, :data:`COLUMNS`, says for each column its name, dtype, unit, meaning and when
it is present. The kernel builds its tables from it, every store declares its columns and
their units from it, export and the tests read it. A new column is one entry here (and
the kernel code that computes it).

Which columns a job has depends only on the video's dims and the parameters, so it is
known before any chunk runs (:func:`feature_columns`):

========= ========================================== ====================================
column    present                                    trackpy's name and definition
========= ========================================== ====================================
z         3-D images ``(z, y, x)``                   ``z``
y, x      always                                     ``y``, ``x``
mass      always                                     ``mass``
size      ``characterize``, isotropic ``diameter``   ``size``
size_<a>  ``characterize``, per-axis ``diameter``    ``size_z``, ``size_y``, ``size_x``
ecc       ``characterize``                           ``ecc`` (NaN in 3-D)
signal    ``characterize``                           ``signal``
raw_mass  ``characterize``                           ``raw_mass``
ep        ``characterize``, isotropic ``diameter``   ``ep``
ep_<a>    ``characterize``, per-axis ``diameter``    ``ep_z``, ``ep_y``, ``ep_x``
frame     stacks, pipeline and stores                ``frame``
particle  trajectories (after linking)               ``particle``
========= ========================================== ====================================

The names, order and dtypes are trackpy's (checked live against ``trackpy.locate`` on
2-D, anisotropic 2-D, 3-D and anisotropic 3-D images).

Examples
--------
>>> from daskloc.schema import feature_columns, column
>>> feature_columns()
('y', 'x', 'mass', 'size', 'ecc', 'signal', 'raw_mass', 'ep')
>>> feature_columns(characterize=False, with_frame=True)
('y', 'x', 'mass', 'frame')
>>> column("mass").unit
'grey level'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "Column", "column", "column_attrs", "empty_features",
           "feature_columns", "feature_dtypes", "AXES"]

#: Spatial axes of an image, slowest first (OME's Z, Y, X).
AXES = ("z", "y", "x")


@dataclass(frozen=True)
class Column:
    """One column of the feature table.

    Attributes
    ----------
    name : str
        The column name (trackpy's). For a per-axis column, the stem (``"size"``) that
        becomes ``size_z, size_y, size_x`` when the diameter differs per axis.
    dtype : str
        NumPy dtype name: ``"float64"`` or ``"int64"``.
    unit : str
        Unit of the values (UDUNITS-style words, as xarray/CF attributes use them):
        ``"pixel"``, ``"grey level"``, ``"frame"`` or ``"1"`` (dimensionless).
    description : str
        What the value is (shown as ``long_name`` by xarray).
    group : str
        When the column is present: ``"position"`` (always), ``"base"`` (always),
        ``"characterize"`` (with ``characterize=True``), ``"index"`` (``frame``: stacks,
        pipeline and stores) or ``"link"`` (``particle``: trajectories).
    per_axis : bool
        Whether the column splits per axis for an anisotropic diameter.
    """

    name: str
    dtype: str
    unit: str
    description: str
    group: str
    per_axis: bool = False


#: Every column, in trackpy's order. ``z`` is present only for 3-D images.
COLUMNS = (
    Column("z", "float64", "pixel", "feature centre, plane (origin at the centre of the first "
           "plane)", "position"),
    Column("y", "float64", "pixel", "feature centre, row (origin at the centre of the "
           "top-left pixel, y down)", "position"),
    Column("x", "float64", "pixel", "feature centre, column (origin at the centre of the "
           "top-left pixel)", "position"),
    Column("mass", "float64", "grey level", "integrated brightness of the bandpassed image",
           "base"),
    Column("size", "float64", "pixel", "radius of gyration of the brightness",
           "characterize", per_axis=True),
    Column("ecc", "float64", "1", "eccentricity (0 is circular)", "characterize"),
    Column("signal", "float64", "grey level", "peak brightness of the bandpassed image",
           "characterize"),
    Column("raw_mass", "float64", "grey level", "integrated brightness of the raw image",
           "characterize"),
    Column("ep", "float64", "pixel", "static error of the position (NaN when not estimable)",
           "characterize", per_axis=True),
    Column("frame", "int64", "1", "absolute frame number in the source video", "index"),
    Column("particle", "int64", "1", "trajectory number (after linking)", "link"),
)

_BY_NAME = {c.name: c for c in COLUMNS}


def _check_ndim(ndim):
    if ndim not in (2, 3):
        raise ValueError(f"images are 2-D (y, x) or 3-D (z, y, x), got ndim={ndim!r}")


def feature_columns(characterize=True, *, ndim=2, anisotropic=False, anisotropic_ep=None,
                    with_frame=False):
    """The feature column names of a job, in trackpy's order.

    Parameters
    ----------
    characterize : bool
        Whether the characterisation columns (``size``, ``ecc``, ``signal``, ``raw_mass``,
        ``ep``) are included; ``False`` gives positions and ``mass`` only, as in trackpy.
    ndim : {2, 3}
        Dimensions of one image: 2 for ``(y, x)`` frames, 3 for ``(z, y, x)`` stacks
        (adds ``z`` first).
    anisotropic : bool
        Whether ``diameter`` differs per axis: ``size`` and ``ep`` become one column per
        axis (``size_y, size_x`` or ``size_z, size_y, size_x``), as trackpy names them.
    anisotropic_ep : bool, optional
        Whether ``ep`` splits per axis; default ``anisotropic``. trackpy splits ``ep``
        also when only ``noise_size`` differs per axis
        (:func:`daskloc.locate.job_columns` decides from the parameters).
    with_frame : bool
        Append ``frame`` (the stack, pipeline and store schema).

    Returns
    -------
    tuple of str

    Raises
    ------
    ValueError
        If ``ndim`` is not 2 or 3.
    """
    _check_ndim(ndim)
    if anisotropic_ep is None:
        anisotropic_ep = anisotropic
    axes = AXES[-ndim:]
    names = []
    for c in COLUMNS:
        if c.group in ("index", "link"):
            continue
        if c.group == "characterize" and not characterize:
            continue
        if c.name == "z" and ndim == 2:
            continue
        if c.per_axis and (anisotropic_ep if c.name == "ep" else anisotropic):
            names.extend(f"{c.name}_{a}" for a in axes)
        else:
            names.append(c.name)
    if with_frame:
        names.append("frame")
    return tuple(names)


def column(name):
    """The :class:`Column` of a column name, per-axis names included (``"ep_x"``).

    Parameters
    ----------
    name : str

    Returns
    -------
    Column
        For a per-axis name, the stem's entry with the full name.

    Raises
    ------
    KeyError
        If ``name`` is not a daskloc feature column.
    """
    if name in _BY_NAME:
        return _BY_NAME[name]
    stem, _, axis = name.rpartition("_")
    entry = _BY_NAME.get(stem)
    if entry is None or not entry.per_axis or axis not in AXES:
        raise KeyError(f"{name!r} is not a feature column; the columns are "
                       f"{', '.join(_BY_NAME)} (size and ep also per axis: size_x, ...)")
    return Column(name, entry.dtype, entry.unit, f"{entry.description}, along {axis}",
                  entry.group, per_axis=True)


def feature_dtypes(characterize=True, *, ndim=2, anisotropic=False, anisotropic_ep=None,
                   with_frame=True):
    """Column name → dtype name of a job's feature table (``frame`` included by default).

    Parameters
    ----------
    characterize, ndim, anisotropic, anisotropic_ep, with_frame
        As in :func:`feature_columns`.

    Returns
    -------
    dict of str to str
        In column order, e.g. ``{"y": "float64", ..., "frame": "int64"}``.
    """
    names = feature_columns(characterize, ndim=ndim, anisotropic=anisotropic,
                            anisotropic_ep=anisotropic_ep, with_frame=with_frame)
    return {n: column(n).dtype for n in names}


def empty_features(characterize=True, with_frame=False, *, ndim=2, anisotropic=False,
                   anisotropic_ep=None, columns=None):
    """An empty feature table with the job's columns and dtypes.

    Parameters
    ----------
    characterize, with_frame, ndim, anisotropic, anisotropic_ep
        As in :func:`feature_columns`.
    columns : sequence of str, optional
        The column names instead (e.g. :func:`daskloc.locate.job_columns`).

    Returns
    -------
    pandas.DataFrame
        Zero rows; float64 columns and an int64 ``frame``.
    """
    if columns is not None:
        dtypes = {n: column(n).dtype for n in columns}
    else:
        dtypes = feature_dtypes(characterize, ndim=ndim, anisotropic=anisotropic,
                                anisotropic_ep=anisotropic_ep, with_frame=with_frame)
    return pd.DataFrame({n: np.empty(0, dtype=d) for n, d in dtypes.items()})


def column_attrs(name):
    """Attributes describing a column for self-describing formats (xarray/CF words).

    Parameters
    ----------
    name : str
        A column name; unknown names give an empty dict.

    Returns
    -------
    dict
        ``{"long_name": ..., "units": ...}``.
    """
    try:
        c = column(name)
    except KeyError:
        return {}
    return {"long_name": c.description, "units": c.unit}
