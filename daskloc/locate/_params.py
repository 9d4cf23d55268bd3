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


def normalize_params(diameter, **params):
    """Check locate parameters and return them as a dict of plain JSON values.

    Parameters
    ----------
    diameter : int
        Feature diameter in pixels; a positive odd integer (trackpy's convention:
        "when in doubt, round up").
    minmass, maxsize, separation, noise_size, smoothing_size, threshold, invert,
    percentile, topn, preprocess, max_iterations, characterize
        As in :func:`daskloc.locate_frame`.

    Returns
    -------
    dict
        Every parameter of :data:`PARAM_NAMES`, defaults filled in where trackpy
        derives them from ``diameter`` (``separation = diameter + 1``,
        ``smoothing_size = diameter``, ``minmass = 0``).

    Raises
    ------
    ValueError
        If ``diameter`` is not a positive odd integer (the message says to round up
        to the next odd number), if a size is not positive, if ``smoothing_size`` is
        not larger than ``noise_size`` (the band pass would be empty), or if
        ``percentile`` is outside 0..100.
    TypeError
        If a numeric parameter is not a number, or a name is not a locate parameter
        (for trackpy's ``filter_before``, ``filter_after``, ``processes``... the message
        says what to do instead: :data:`TRACKPY_ONLY`).
    """
    unknown = sorted(set(params) - set(PARAM_DEFAULTS))
    for name in unknown:
        if name in TRACKPY_ONLY:
            raise TypeError(f"{name} is a trackpy keyword daskloc does not take: "
                            f"{TRACKPY_ONLY[name]}")
    if unknown:
        raise TypeError(f"unknown locate parameter(s) {', '.join(unknown)}; the parameters "
                        f"are {', '.join(PARAM_NAMES)}")
    p = {**PARAM_DEFAULTS, **params}
    minmass, maxsize, separation = p["minmass"], p["maxsize"], p["separation"]
    noise_size, smoothing_size, threshold = p["noise_size"], p["smoothing_size"], p["threshold"]
    invert, percentile, topn, preprocess = p["invert"], p["percentile"], p["topn"], p["preprocess"]
    max_iterations, characterize = p["max_iterations"], p["characterize"]
    if isinstance(diameter, bool) or not isinstance(diameter, numbers.Real):
        raise TypeError(f"diameter must be an odd integer number of pixels, got {diameter!r}")
    if float(diameter) != int(diameter):
        raise ValueError(
            f"diameter must be an odd integer number of pixels, got {diameter!r}; "
            f"round up to {int(np.ceil(diameter)) | 1}"
        )
    diameter = int(diameter)
    if diameter <= 0:
        raise ValueError(f"diameter must be a positive odd integer (pixels), got {diameter}")
    if diameter % 2 == 0:
        raise ValueError(
            f"diameter must be an odd integer (pixels), got {diameter}; round up to {diameter + 1}"
        )
    separation = _number("separation", separation, positive=False)
    if separation is None:
        separation = diameter + 1
    elif separation < 0:
        raise ValueError(f"separation must be >= 0 pixels, got {separation}")
    smoothing_size = _number("smoothing_size", smoothing_size, positive=True)
    if smoothing_size is None:
        smoothing_size = diameter
    elif not isinstance(smoothing_size, int) or smoothing_size % 2 == 0:
        raise ValueError(
            f"smoothing_size must be an odd integer number of pixels (the boxcar side), "
            f"got {smoothing_size}; round up to the next odd integer"
        )
    noise_size = _number("noise_size", noise_size, positive=True, allow_none=False)
    if preprocess and noise_size >= smoothing_size:
        raise ValueError(
            f"smoothing_size ({smoothing_size}) must be larger than noise_size ({noise_size}) "
            "for the band pass; increase smoothing_size or decrease noise_size"
        )
    minmass = _number("minmass", minmass)
    if minmass is None:
        minmass = 0
    maxsize = _number("maxsize", maxsize, positive=True)
    threshold = _number("threshold", threshold)
    percentile = _number("percentile", percentile, allow_none=False)
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {percentile}")
    if topn is not None:
        topn = _number("topn", topn, positive=True)
        if not isinstance(topn, int):
            raise ValueError(f"topn must be a positive integer, got {topn}")
    max_iterations = _number("max_iterations", max_iterations, allow_none=False)
    if not isinstance(max_iterations, int) or max_iterations < 0:
        raise ValueError(f"max_iterations must be a non-negative integer, got {max_iterations}")
    values = {
        "diameter": diameter, "minmass": minmass, "maxsize": maxsize,
        "separation": separation, "noise_size": noise_size,
        "smoothing_size": smoothing_size, "threshold": threshold, "invert": bool(invert),
        "percentile": percentile, "topn": topn, "preprocess": bool(preprocess),
        "max_iterations": max_iterations, "characterize": bool(characterize),
    }
    return {name: values[name] for name in PARAM_NAMES}
