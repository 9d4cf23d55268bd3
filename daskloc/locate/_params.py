"""Validation and normalisation of the locate parameters.

The normalised parameters are plain JSON values (ints, floats, bools, None), so they
can be stored beside results and compared when a job resumes.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Parameter:
    """One locate parameter: its name, default, type and one-line help.

    Attributes
    ----------
    name : str
        trackpy's name (``minmass``); the CLI option is ``--`` + name with dashes.
    default : object
        The default of :func:`daskloc.locate_frame` (None: derived or unused).
    type : type
        ``int``, ``float`` or ``bool`` (a bool is a ``--name/--no-name`` flag).
    help : str
        One line for the CLI's ``--help`` (the units in words).
    required : bool
        Whether the parameter has no default (``diameter``).
    """

    name: str
    default: object
    type: type
    help: str
    required: bool = False


#: The locate parameters, in :func:`daskloc.locate_frame`'s signature order. Every one
#: changes the features, so all are part of a job's identity. The CLI's options,
#: :data:`PARAM_NAMES` and :func:`normalize_params` are made from this table.
PARAMETERS = (
    Parameter("diameter", None, int, "Feature diameter in pixels (odd).", required=True),
    Parameter("minmass", None, float, "Minimum integrated brightness (trackpy units)."),
    Parameter("maxsize", None, float, "Maximum radius of gyration, pixels."),
    Parameter("separation", None, float, "Minimum separation, pixels [diameter + 1]."),
    Parameter("noise_size", 1, float, "Gaussian low-pass sigma, pixels."),
    Parameter("smoothing_size", None, int, "Boxcar background side, pixels [diameter]."),
    Parameter("threshold", None, float, "Clip the band-passed image below this."),
    Parameter("invert", False, bool, "Dark features on a light background."),
    Parameter("percentile", 64, float, "Peak brightness percentile."),
    Parameter("topn", None, int, "Keep the N brightest features per frame."),
    Parameter("preprocess", True, bool, "Band-pass first."),
    Parameter("max_iterations", 10, int, "Refinement moves."),
    Parameter("characterize", True, bool, "Compute size, ecc, signal, raw_mass, ep."),
)

#: Parameter names accepted by :func:`daskloc.locate_frame`, in signature order.
PARAM_NAMES = tuple(p.name for p in PARAMETERS)
#: Defaults of the optional parameters.
PARAM_DEFAULTS = {p.name: p.default for p in PARAMETERS if not p.required}

#: trackpy's ``engine`` values. daskloc has one kernel (numba) whose features equal
#: trackpy's with either of its engines, so each value runs it. ``engine`` is an
#: execution option: recorded with a job, never part of its identity (a store made
#: with one engine resumes with another).
ENGINES = ("auto", "numba", "python")

#: trackpy keywords daskloc does not take, with what to do instead (the error says it).
TRACKPY_ONLY = {
    "filter_before": "trackpy deprecated it (0.4) and daskloc never had it: use minmass= "
                     "and maxsize=, or filter the features afterwards, e.g. f[f.ecc < 0.3]",
    "filter_after": "trackpy deprecated it (0.4) and daskloc never had it: filter the "
                    "features afterwards, e.g. f[f.mass > 500] or f.query('ecc < 0.3')",
    "processes": "daskloc runs on a Dask cluster: pass client=daskloc.make_client(workers=N) "
                 "(CLI: --workers N)",
    "after_locate": "map it over the partitions of daskloc.locate(...), a dask DataFrame, "
                    "or apply it to read_features(store)",
    "meta": "the store records the parameters itself (CLI: daskloc info STORE)",
}


def check_engine(engine):
    """Check trackpy's ``engine`` keyword and return the kernel that runs.

    Parameters
    ----------
    engine : str
        One of :data:`ENGINES` (``"auto"``, ``"numba"``, ``"python"``).

    Returns
    -------
    str
        ``"numba"``: daskloc's kernel, which matches trackpy's features for every engine.

    Raises
    ------
    ValueError
        ``engine`` is not one of :data:`ENGINES`.

    Examples
    --------
    >>> check_engine("python")
    'numba'
    """
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(map(repr, ENGINES))}, "
                         f"got {engine!r}")
    return "numba"


def split_options(params):
    """Split execution options (``engine``) from locate parameters.

    Parameters
    ----------
    params : dict
        Keyword arguments of a locate call.

    Returns
    -------
    params : dict
        ``params`` without the options.
    options : dict
        ``{"engine": "numba"}`` (see :func:`check_engine`).

    Raises
    ------
    ValueError
        An unknown ``engine``.
    """
    params = dict(params)
    return params, {"engine": check_engine(params.pop("engine", "auto"))}


def _number(name, value, *, positive=False, allow_none=True):
    if value is None:
        if allow_none:
            return None
        raise ValueError(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return int(value) if value.is_integer() else value


#: Parameters that take one value per spatial axis (trackpy's tuples), slowest axis first.
PER_AXIS = ("diameter", "separation", "noise_size", "smoothing_size")


def _per_axis(name, value, ndim):
    """``value`` as a tuple (one entry per axis) and its length; scalars give ``(v,)``."""
    if isinstance(value, (str, bytes)) or not np.iterable(value):
        return (value,), None
    values = tuple(value)
    if len(values) not in (2, 3):
        raise ValueError(f"{name} takes one number or one per axis ((y, x) or (z, y, x)), "
                         f"got {len(values)} values {value!r}")
    if ndim is not None and len(values) != ndim:
        raise ValueError(f"{name} has {len(values)} values {tuple(value)!r} but the images are "
                         f"{ndim}-D ({', '.join(('z', 'y', 'x')[-ndim:])}): give {ndim} values "
                         "or one for every axis")
    return values, len(values)


def _plain(values):
    """One value when every axis has the same (isotropic), else a list (JSON-able)."""
    return values[0] if all(v == values[0] for v in values) else list(values)


def _odd_sizes(name, values, what):
    out = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be an odd integer number of pixels, got {value!r}")
        if not np.isfinite(value) or float(value) != int(value):
            hint = f"; round up to {int(np.ceil(value)) | 1}" if np.isfinite(value) else ""
            raise ValueError(f"{name} must be an odd integer number of pixels, "
                             f"got {value!r}{hint}")
        value = int(value)
        if value <= 0:
            raise ValueError(f"{name} must be a positive odd integer ({what}), got {value}")
        if value % 2 == 0:
            raise ValueError(f"{name} must be an odd integer ({what}), got {value}; "
                             f"round up to {value + 1}")
        out.append(value)
    return out


def axis_values(params, name, ndim):
    """A per-axis parameter of normalised ``params`` as a tuple of ``ndim`` values.

    Parameters
    ----------
    params : dict
        From :func:`normalize_params`.
    name : str
        One of :data:`PER_AXIS`.
    ndim : {2, 3}
        Dimensions of one image.

    Returns
    -------
    tuple
        ``(y, x)`` or ``(z, y, x)`` values (pixels).

    Raises
    ------
    ValueError
        If the parameter has a different number of values than ``ndim``.

    Examples
    --------
    >>> p = normalize_params([5, 11, 11])
    >>> axis_values(p, "separation", 3)
    (6, 12, 12)
    """
    value = params[name]
    if isinstance(value, (list, tuple)):
        _per_axis(name, value, ndim)
        return tuple(value)
    return (value,) * ndim


def params_ndim(params):
    """The image dimensions the per-axis values of ``params`` fix, or None (any).

    Parameters
    ----------
    params : dict
        From :func:`normalize_params`.

    Returns
    -------
    int or None
        2 or 3 when some parameter has one value per axis, None when every one is a
        single number (valid for 2-D and 3-D images).
    """
    for name in PER_AXIS:
        if isinstance(params.get(name), (list, tuple)):
            return len(params[name])
    return None


def check_ndim(params, ndim):
    """Check that ``params`` fit images of ``ndim`` dimensions.

    Parameters
    ----------
    params : dict
        From :func:`normalize_params`.
    ndim : {2, 3}
        Dimensions of one image (2: ``(y, x)``; 3: ``(z, y, x)``).

    Raises
    ------
    ValueError
        A per-axis parameter has another number of values (the message names it and
        the image's axes).
    """
    if ndim not in (2, 3):
        raise ValueError(f"images are 2-D (y, x) or 3-D (z, y, x), got {ndim}-D")
    for name in PER_AXIS:
        axis_values(params, name, ndim)


def job_columns(params, ndim=2, *, with_frame=False):
    """The feature columns of a job: they depend only on the image dims and ``params``.

    Parameters
    ----------
    params : dict
        From :func:`normalize_params`.
    ndim : {2, 3}
        Dimensions of one image.
    with_frame : bool
        Append ``frame``.

    Returns
    -------
    tuple of str
        trackpy's columns: ``size`` splits per axis when ``diameter`` differs per axis,
        ``ep`` when ``diameter`` or ``noise_size`` does (as ``trackpy.locate`` names them).

    Raises
    ------
    ValueError
        As :func:`check_ndim`.

    Examples
    --------
    >>> job_columns(normalize_params([5, 11, 11]), 3)[3:10]
    ('mass', 'size_z', 'size_y', 'size_x', 'ecc', 'signal', 'raw_mass')
    >>> job_columns(normalize_params(11, noise_size=(1, 2)), 2)[-2:]
    ('ep_y', 'ep_x')
    """
    from daskloc.schema import feature_columns

    check_ndim(params, ndim)
    size_axes = isinstance(params["diameter"], list)
    ep_axes = size_axes or isinstance(params["noise_size"], list)
    return feature_columns(params["characterize"], ndim=ndim, anisotropic=size_axes,
                           anisotropic_ep=ep_axes, with_frame=with_frame)


def normalize_params(diameter, *, ndim=None, **params):
    """Check locate parameters and return them as a dict of plain JSON values.

    Parameters
    ----------
    diameter : int or sequence of int
        Feature diameter in pixels; a positive odd integer (trackpy's convention:
        "when in doubt, round up"), or one per axis, slowest first (``(5, 11, 11)``:
        ``(z, y, x)`` of a confocal stack whose planes are further apart than its
        pixels).
    ndim : {2, 3}, optional
        Dimensions of the images the parameters are for; per-axis values must have
        this many entries. Default: whatever the per-axis values say (checked against
        the images later, :func:`check_ndim`).
    minmass, maxsize, separation, noise_size, smoothing_size, threshold, invert,
    percentile, topn, preprocess, max_iterations, characterize
        As in :func:`daskloc.locate_frame`. ``separation``, ``noise_size`` and
        ``smoothing_size`` take one value or one per axis, as ``diameter``.

    Returns
    -------
    dict
        Every parameter of :data:`PARAM_NAMES`, defaults filled in where trackpy
        derives them from ``diameter`` (``separation = diameter + 1``,
        ``smoothing_size = diameter``, ``minmass = 0``), per axis. A per-axis
        parameter is one number when it is the same on every axis (``(11, 11)`` is
        ``11``, as trackpy treats it), else a list.

    Raises
    ------
    ValueError
        If ``diameter`` is not a positive odd integer (the message says to round up
        to the next odd number), if a size is not positive, if ``smoothing_size`` is
        not larger than ``noise_size`` on every axis (the band pass would be empty),
        if ``percentile`` is outside 0..100, if per-axis values disagree in number
        (with each other or ``ndim``), or if ``maxsize`` is given with a per-axis
        ``diameter`` (trackpy: "Filtering by size is not available for anisotropic
        features").
    TypeError
        If a numeric parameter is not a number, or a name is not a locate parameter
        (for trackpy's ``filter_before``, ``filter_after``, ``processes``... the message
        says what to do instead: :data:`TRACKPY_ONLY`).

    Examples
    --------
    >>> p = normalize_params((5, 11, 11))
    >>> p["diameter"], p["separation"], p["smoothing_size"], p["noise_size"]
    ([5, 11, 11], [6, 12, 12], [5, 11, 11], 1)
    >>> normalize_params((11, 11))["diameter"]
    11
    """
    unknown = sorted(set(params) - set(PARAM_DEFAULTS))
    for name in unknown:
        if name in TRACKPY_ONLY:
            raise TypeError(f"{name} is a trackpy keyword daskloc does not take: "
                            f"{TRACKPY_ONLY[name]}")
    if unknown:
        raise TypeError(f"unknown locate parameter(s) {', '.join(unknown)}; the parameters "
                        f"are {', '.join(PARAM_NAMES)}")
    if ndim is not None and ndim not in (2, 3):
        raise ValueError(f"images are 2-D (y, x) or 3-D (z, y, x), got ndim={ndim!r}")
    p = {**PARAM_DEFAULTS, **params}
    raw = {"diameter": diameter, **{n: p[n] for n in PER_AXIS[1:]}}
    split, lengths = {}, {}
    for name, value in raw.items():
        if value is None:
            continue
        split[name], n = _per_axis(name, value, ndim)
        if n is not None:
            lengths[name] = n
    if len(set(lengths.values())) > 1:
        raise ValueError("per-axis parameters disagree in their number of axes: " + ", ".join(
            f"{name} has {n}" for name, n in lengths.items()))
    n_axes = ndim or next(iter(lengths.values()), 1)

    def widen(values):
        return tuple(values) * n_axes if len(values) == 1 else tuple(values)

    diameters = widen(_odd_sizes("diameter", split["diameter"], "pixels"))
    if "separation" in split:
        separation = []
        for value in widen(split["separation"]):
            value = _number("separation", value)
            if value < 0:
                raise ValueError(f"separation must be >= 0 pixels, got {value}")
            separation.append(value)
    else:
        separation = [d + 1 for d in diameters]
    if "smoothing_size" in split:
        smoothing = widen(_odd_sizes("smoothing_size", split["smoothing_size"],
                                     "the boxcar side, pixels"))
    else:
        smoothing = diameters
    noise = [_number("noise_size", v, allow_none=False) for v in widen(split["noise_size"])]
    if any(v < 0 for v in noise):  # 0: no low pass along that axis (trackpy takes it)
        raise ValueError(f"noise_size must be >= 0 pixels, got {_plain(noise)}")
    if p["preprocess"]:
        for n_size, s_size in zip(noise, smoothing):
            if n_size >= s_size:
                raise ValueError(
                    f"smoothing_size ({_plain(smoothing)}) must be larger than noise_size "
                    f"({_plain(noise)}) on every axis for the band pass; increase "
                    "smoothing_size or decrease noise_size"
                )
    minmass = _number("minmass", p["minmass"])
    if minmass is None:
        minmass = 0
    maxsize = _number("maxsize", p["maxsize"], positive=True)
    diameter = _plain(diameters)
    if maxsize is not None and isinstance(diameter, list):
        raise ValueError(f"maxsize cannot be used with a per-axis diameter {diameter}: trackpy "
                         "has no single size for anisotropic features (it reports size_z, "
                         "size_y, size_x); filter the features afterwards, e.g. "
                         "f[f.size_x < 3]")
    threshold = _number("threshold", p["threshold"])
    percentile = _number("percentile", p["percentile"], allow_none=False)
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    topn = p["topn"]
    if topn is not None:
        topn = _number("topn", topn, positive=True)
        if not isinstance(topn, int):
            raise ValueError(f"topn must be a positive integer, got {topn}")
    max_iterations = _number("max_iterations", p["max_iterations"], allow_none=False)
    if not isinstance(max_iterations, int) or max_iterations < 0:
        raise ValueError(f"max_iterations must be a non-negative integer, got {max_iterations}")
    values = {
        "diameter": diameter, "minmass": minmass, "maxsize": maxsize,
        "separation": _plain(separation), "noise_size": _plain(noise),
        "smoothing_size": _plain(smoothing), "threshold": threshold,
        "invert": bool(p["invert"]), "percentile": percentile, "topn": topn,
        "preprocess": bool(p["preprocess"]), "max_iterations": max_iterations,
        "characterize": bool(p["characterize"]),
    }
    return {name: values[name] for name in PARAM_NAMES}
