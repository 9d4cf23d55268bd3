"""Pictures of located features: the checks trackpy users make before linking.

:func:`annotate` circles the features on their frame, :func:`mass_hist` and
:func:`mass_size` show whether ``minmass`` separates particles from noise, and
:func:`subpx_bias` shows whether ``diameter`` was large enough for sub-pixel accuracy.
:func:`save_plots` is what ``daskloc plot`` runs: one frame of a store (and of its
video) to PNG files.

Only matplotlib is needed (``pip install matplotlib``). Importing this module does not
choose a matplotlib backend: functions given ``ax=None`` create their figure with
``matplotlib.pyplot`` (so it shows inline in Jupyter and in a window in a script),
while :func:`save_plots` draws on plain :class:`matplotlib.figure.Figure` objects and
writes them with the Agg renderer, which works without a display and without touching
pyplot's state.

Coordinates are trackpy's: ``x`` is the column and ``y`` the row, in pixels, with the
centre of the top-left pixel at ``(0, 0)`` and y pointing down; images are shown the
same way (``origin="upper"``), so a feature's circle sits on its spot.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from daskloc._extras import require

require("matplotlib")  # the [plot] extra (no backend is chosen here)

__all__ = ["annotate", "mass_hist", "mass_size", "subpx_bias", "save_plots", "KINDS"]

#: Which columns each plot needs, and what produces them (for error messages).
_PRODUCED_BY = {
    "y": "any locate",
    "x": "any locate",
    "mass": "any locate",
    "size": "locate with characterize=True (the default)",
    "frame": "locate of a video, batch or read_features",
}

#: The kinds of :func:`save_plots` / ``daskloc plot --kind``, and their file suffixes
#: for ``kind="all"``.
KINDS = {"annotate": "-annotate", "mass": "-mass", "size": "-size", "subpx": "-subpx"}


def _require(features, columns, what):
    """Raise ValueError naming the columns of ``columns`` that ``features`` lacks."""
    if not hasattr(features, "columns"):
        raise TypeError(
            f"{what} needs a pandas DataFrame of features, got {type(features).__name__}"
        )
    missing = [c for c in columns if c not in features.columns]
    if missing:
        made = "; ".join(f"{c!r} comes from {_PRODUCED_BY.get(c, 'locate')}" for c in missing)
        raise ValueError(
            f"{what} needs the column(s) {', '.join(repr(c) for c in missing)}, which the "
            f"features lack (they have {', '.join(map(str, features.columns)) or 'no columns'}); "
            f"{made}"
        )


def _new_axes(what, figsize=None, ncols=1):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, ncols, figsize=figsize, layout="constrained")
    return ax


# ----------------------------------------------------------------- annotate


def _frame_of(features):
    """The frame numbers in ``features`` (a ``frame`` column or index), or None."""
    if "frame" in features.columns:
        return features["frame"].to_numpy()
    if features.index.name == "frame":
        return features.index.to_numpy()
    return None


def _plane(image, z):
    """The z plane of a 3-D frame (``(z, y, x)`` array or DataArray with a ``z`` dim)."""
    dims = getattr(image, "dims", None)
    is_stack = ("z" in dims) if dims is not None else (
        np.ndim(image) == 3 and np.shape(image)[-1] > 4)
    if not is_stack:
        if z is not None:
            raise ValueError(f"z={z!r} is for a 3-D stack (z, y, x); this image has shape "
                             f"{np.shape(image)} and no z axis: leave z out")
        return image, False
    n = image.sizes["z"] if dims is not None else np.shape(image)[0]
    if z is None:
        raise ValueError(f"the image is a 3-D stack of {n} planes: choose the plane to draw, "
                         f"e.g. z={n // 2} (daskloc plot --z {n // 2})")
    if isinstance(z, bool) or not isinstance(z, (int, np.integer)) or not 0 <= z < n:
        raise ValueError(f"z must be a plane number 0..{n - 1}, got {z!r}")
    return (image.isel(z=int(z)) if dims is not None else np.asarray(image)[int(z)]), True


def _image_and_features(image, features, z=None):
    """Pick the frame (and z plane) to show and its features; a 2-D (or RGB) numpy image."""
    frames = _frame_of(features)
    present = np.unique(frames) if frames is not None else np.array([], np.int64)
    image_frame = None
    dims = getattr(image, "dims", None)
    if dims is not None:  # an xarray.DataArray (a frame, or a video)
        if "frame" in dims:
            if image.sizes["frame"] == 1:
                image = image.isel(frame=0)
            elif len(present) == 1:
                if int(present[0]) not in set(image["frame"].values.tolist()):
                    raise ValueError(
                        f"the features are of frame {int(present[0])}, which the video "
                        f"does not hold (frames {int(image['frame'][0])}.."
                        f"{int(image['frame'][-1])})"
                    )
                image = image.sel(frame=int(present[0]))
            else:
                raise ValueError(
                    f"image is a video of {image.sizes['frame']} frames; pass one frame "
                    f"(video.sel(frame=k)) or the features of one frame"
                )
        if "frame" in image.coords and image["frame"].ndim == 0:
            image_frame = int(image["frame"].values)
        image, _ = _plane(image, z)
        if "channel" in image.dims:
            image = image.transpose("y", "x", "channel")
        image = image.values
    else:
        image, _ = _plane(image, z)
    image = np.asarray(image)
    if image.ndim != 2 and not (image.ndim == 3 and image.shape[-1] in (3, 4)):
        raise ValueError(
            f"image must be one frame: 2-D (y, x) or RGB(A) (y, x, 3|4), got shape "
            f"{image.shape}; pick a channel or a frame first"
        )
    if frames is not None and len(present) > 1 or (image_frame is not None and len(present)):
        if image_frame is None:
            raise ValueError(
                f"the features hold {len(present)} frames ({int(present[0])}.."
                f"{int(present[-1])}); pass one frame's features "
                f"(features[features.frame == k]) or the image as a frame of the video "
                f"(video.sel(frame=k)), whose frame coordinate selects them"
            )
        keep = frames == image_frame
        if not keep.any():
            raise ValueError(
                f"the features hold no feature of frame {image_frame} (the image's frame); "
                f"they are of frames {int(present[0])}..{int(present[-1])}"
            )
        features = features[keep]
    return image, features, image_frame


def annotate(image, features, *, ax=None, diameter=None, color="red", imshow_style=None,
             plot_style=None, z=None):
    """Circle the features on their frame (as :func:`trackpy.annotate`), or on one z plane.

    Parameters
    ----------
    image : array_like or xarray.DataArray
        The frame, shape ``(y, x)`` (grey) or ``(y, x, 3|4)`` (RGB(A)), e.g.
        ``video.sel(frame=0)`` of :func:`daskloc.open_video`, or a 3-D stack
        ``(z, y, x)`` with ``z=`` the plane to draw. A DataArray frame with a
        scalar ``frame`` coordinate selects that frame's rows of ``features``; a video
        DataArray with dims ``(frame, y, x)`` (or ``(frame, z, y, x)``) is reduced to
        the one frame that ``features`` hold.
    features : pandas.DataFrame
        Columns ``y`` and ``x`` (pixels: row and column, origin at the centre of the
        top-left pixel), one row per feature, of one frame -- or of several frames when
        ``image`` tells which frame it is (see above). Other columns are ignored.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure (``matplotlib.pyplot``) sized to the image.
    diameter : float or tuple of float, optional
        Circle diameter in pixels (data units: the circles scale with zooming). Use the
        ``diameter`` the features were located with; a per-axis one draws ellipses of
        its ``y`` and ``x`` sizes, and its ``z`` size sets which features a plane shows.
        Default: 4 x the median ``size`` (radius of gyration) of the features (per axis
        for ``size_z, size_y, size_x``), about the visible spot; 10 px when there is no
        ``size`` column or no feature.
    color : matplotlib colour, default "red"
        Colour of the circles.
    imshow_style : dict, optional
        Keyword arguments for :meth:`~matplotlib.axes.Axes.imshow` (defaults:
        ``cmap="gray"``, ``interpolation="nearest"``, ``origin="upper"``).
    plot_style : dict, optional
        Keyword arguments for the circles' :class:`~matplotlib.collections.EllipseCollection`
        (defaults: ``linewidths=1``, ``facecolors="none"``), e.g. ``{"linewidths": 2}``.
    z : int, optional
        The plane of a 3-D stack to draw (required for one; refused for a 2-D frame):
        the features whose ``z`` lies within half the ``z`` diameter of it are circled.

    Returns
    -------
    matplotlib.axes.Axes
        The image with one circle per feature: a single
        :class:`~matplotlib.collections.EllipseCollection` (label ``"features"``) whose
        offsets are the features' ``(x, y)``; axes in pixels, y pointing down, limits
        the image's edges.

    Raises
    ------
    ValueError
        ``features`` lacks ``y`` or ``x`` (the message names them; any locate produces
        them), or ``z`` for a plane of a stack; ``image`` is not one 2-D or RGB(A) frame
        or a 3-D stack with ``z=`` one of its planes; ``features`` hold several
        frames and ``image`` does not say which one to show, or none of the image's
        frame.
    TypeError
        ``features`` is not a DataFrame.

    Examples
    --------
    >>> video = daskloc.open_video("bulk-water.mov", channel=0)  # doctest: +SKIP
    >>> f = daskloc.read_features("features.parquet", frames=[0])  # doctest: +SKIP
    >>> daskloc.plot.annotate(video.sel(frame=0), f, diameter=11)  # doctest: +SKIP
    """
    from matplotlib.collections import EllipseCollection

    _require(features, ["y", "x"] + (["z"] if z is not None else []), "annotate")
    image, features, image_frame = _image_and_features(image, features, z)
    h, w = image.shape[:2]
    if ax is None:
        ax = _new_axes("annotate", figsize=(8, 8 * h / w + 0.4))
    axes = ("z", "y", "x") if z is not None else ("y", "x")
    if diameter is None:
        sizes = []
        for a in axes:
            col = f"size_{a}" if f"size_{a}" in features.columns else "size"
            size = features[col].to_numpy() if col in features.columns else np.array([])
            size = size[np.isfinite(size)]
            sizes.append(4.0 * float(np.median(size)) if size.size else 10.0)
        diameter = tuple(sizes)
    per_axis = np.broadcast_to(np.asarray(diameter, dtype=np.float64).ravel(), (len(axes),)) \
        if np.size(diameter) in (1, len(axes)) else None
    if per_axis is None or not np.all(np.isfinite(per_axis)) or np.any(per_axis <= 0):
        raise ValueError(f"diameter must be a positive number of pixels (or one per axis "
                         f"{', '.join(axes)}), got {diameter!r}")
    if z is not None:  # the features whose centre is within half a z diameter of the plane
        features = features[np.abs(features["z"].to_numpy(float) - z) <= per_axis[0] / 2]
    style = {"cmap": "gray", "interpolation": "nearest", "origin": "upper"}
    style.update(imshow_style or {})
    ax.imshow(image, **style)
    circles = {"linewidths": 1.0, "facecolors": "none", "edgecolors": color}
    circles.update(plot_style or {})
    n = len(features)
    xy = np.column_stack([features["x"].to_numpy(float), features["y"].to_numpy(float)])
    widths = np.full(n, float(per_axis[-1]))
    heights = np.full(n, float(per_axis[-2]))
    coll = EllipseCollection(widths, heights, np.zeros(n), units="xy", offsets=xy,
                             offset_transform=ax.transData, **circles)
    coll.set_label("features")
    ax.add_collection(coll, autolim=False)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    where = f"frame {image_frame}: " if image_frame is not None else ""
    plane = f"z = {z}: " if z is not None else ""
    ax.set_title(f"{where}{plane}{n} features")
    return ax


# ----------------------------------------------------------------- mass and size


def mass_hist(features, *, ax=None, bins=50):
    """Histogram of the features' ``mass`` (total brightness): where to put ``minmass``.

    Real particles form a hump of high mass; noise piles up at low mass. A ``minmass``
    between the two removes the noise.

    Parameters
    ----------
    features : pandas.DataFrame
        Column ``mass`` (integrated brightness of the feature after preprocessing, grey
        levels); rows of any number of frames. NaN masses are left out.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure (``matplotlib.pyplot``).
    bins : int, sequence or str, default 50
        As :meth:`matplotlib.axes.Axes.hist` (``numpy.histogram_bin_edges``).

    Returns
    -------
    matplotlib.axes.Axes
        x: mass, y: number of features per bin.

    Raises
    ------
    ValueError
        ``features`` lacks ``mass`` (any locate produces it).
    TypeError
        ``features`` is not a DataFrame.
    """
    _require(features, ["mass"], "mass_hist")
    if ax is None:
        ax = _new_axes("mass_hist")
    mass = features["mass"].to_numpy(float)
    mass = mass[np.isfinite(mass)]
    ax.hist(mass, bins=bins, color="0.3")
    ax.set_xlabel("mass (integrated brightness)")
    ax.set_ylabel("features")
    ax.set_title(f"mass of {len(mass)} features")
    return ax


def mass_size(features, *, ax=None):
    """Scatter of each feature's ``size`` against its ``mass`` (trackpy's ``mass_size``).

    Particles form a cloud at high mass and a size near the spot's; noise features are
    small in mass and often odd in size: a guide for ``minmass`` and ``maxsize``.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``mass`` (grey levels) and ``size`` (radius of gyration, pixels; for a
        per-axis diameter the mean of ``size_z, size_y, size_x`` is plotted); rows of
        any number of frames.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure (``matplotlib.pyplot``).

    Returns
    -------
    matplotlib.axes.Axes
        x: mass, y: size (pixels); one marker per feature (a single
        :class:`~matplotlib.lines.Line2D` with the features' ``(mass, size)`` as data).

    Raises
    ------
    ValueError
        ``features`` lacks ``mass`` or ``size`` (``size`` needs locate with
        ``characterize=True``, the default).
    TypeError
        ``features`` is not a DataFrame.
    """
    per_axis = [c for c in ("size_z", "size_y", "size_x") if c in features.columns]
    if "size" not in features.columns and per_axis:  # a per-axis diameter: their mean
        features = features.assign(size=features[per_axis].mean(axis=1))
    _require(features, ["mass", "size"], "mass_size")
    if ax is None:
        ax = _new_axes("mass_size")
    ax.plot(features["mass"].to_numpy(float), features["size"].to_numpy(float), "o",
            color="k", alpha=0.2, markersize=3, markeredgewidth=0, linestyle="none")
    ax.set_xlabel("mass (integrated brightness)")
    ax.set_ylabel("size (radius of gyration, pixels)")
    ax.set_title(f"size vs mass, {len(features)} features")
    return ax


# ----------------------------------------------------------------- sub-pixel bias


def subpx_bias(features, *, ax=None, bins=10):
    """Histograms of the fractional parts of ``x`` and ``y``: is ``diameter`` large enough?

    The fractional part of a position (``x % 1``, between 0 and 1) says where within its
    pixel a feature lies. Particles land anywhere, so with good sub-pixel accuracy both
    histograms are **flat**. When ``diameter`` is too small the centroid cannot move far
    from the brightest pixel and positions are pulled towards whole pixels: the
    histograms **peak at 0 and 1 and dip in the middle**. Then locate again with a
    larger ``diameter`` (still odd). A dip at 0 and 1 (peak in the middle) means the
    opposite pull, usually from a mask much larger than the spots. Use a few hundred
    features or more (several frames) for the shape to mean something.

    Parameters
    ----------
    features : pandas.DataFrame
        Columns ``x`` and ``y`` (pixels); rows of any number of frames. NaN positions
        are left out.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default: a new figure (``matplotlib.pyplot``).
    bins : int, default 10
        Equal bins over ``[0, 1]``.

    Returns
    -------
    matplotlib.axes.Axes
        One Axes, like the other plots: the ``x`` and the ``y`` histogram side by side
        in each bin (x axis: fractional part, pixels; y axis: features per bin; legend
        ``x % 1``, ``y % 1``). ``ax.containers[0]`` and ``[1]`` hold their bars; each
        histogram counts every feature with a finite position once. (trackpy's
        ``subpx_bias`` returns two Axes, one per column, from ``DataFrame.hist``.)

    Raises
    ------
    ValueError
        ``features`` lacks ``x`` or ``y`` (any locate produces them).
    TypeError
        ``features`` is not a DataFrame, or ``ax`` is not one Axes (a pair of Axes, as
        for trackpy's two histograms: pass one of them).
    """
    _require(features, ["x", "y"], "subpx_bias")
    if ax is None:
        ax = _new_axes("subpx_bias", figsize=(6.4, 4.0))
    elif not hasattr(ax, "hist"):
        raise TypeError(f"subpx_bias draws x and y on one Axes; got {type(ax).__name__} "
                        "(for a pair of Axes pass one of them, e.g. ax=axes[0])")
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    fractions = []
    for col in ("x", "y"):
        v = features[col].to_numpy(float)
        fractions.append(np.mod(v[np.isfinite(v)], 1.0))
    ax.hist(fractions, bins=edges, color=["0.25", "0.65"], label=["x % 1", "y % 1"])
    ax.set_xlim(0, 1)
    ax.set_xlabel("fractional part of the position (pixels)")
    ax.set_ylabel("features")
    ax.set_title(f"sub-pixel bias, {len(fractions[0])} features (flat: diameter is enough)")
    ax.legend(loc="lower center")
    return ax


# ----------------------------------------------------------------- from a store to PNGs


def _plot_paths(out, kind):
    """``{kind: path}`` to write for ``kind`` (``"all"``: OUT's stem + suffix per kind)."""
    out = Path(out)
    if kind == "all":
        suffix = out.suffix or ".png"
        return {k: out.with_name(out.stem + s + suffix) for k, s in KINDS.items()}
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)} or all, got {kind!r}")
    return {kind: out}


def _check_frame_stored(store, frame, table):
    """Raise ValueError unless the store holds ``frame`` (features, or a done empty frame)."""
    from daskloc.stores import open_store

    st = open_store(store, "r", table=table)
    meta = st.metadata()
    frames = st.source_frames(meta) if meta is not None else None
    chunks = st.valid_chunks(meta) if meta is not None else []
    in_source = frames is None or frame in set(np.asarray(frames).tolist())
    done = any(a <= frame < b for a, b in chunks)
    if in_source and done:
        return
    held = ", ".join(f"{a}..{b - 1}" for a, b in chunks[:6]) + (", ..." if len(chunks) > 6 else "")
    why = "not located (not in the selected frames)" if not in_source else "not done yet"
    raise ValueError(
        f"frame {frame} is not in the store {os.fspath(store)}: {why}; it holds frames "
        f"{held or 'none yet'}"
    )


def save_plots(store, out, *, frame=None, video=None, kind="annotate", channel=None, table=None,
               dpi=100, z=None):
    """Plot one frame's features from a store to PNG file(s): what ``daskloc plot`` does.

    Parameters
    ----------
    store : str or os.PathLike
        A store written by :func:`daskloc.batch` (any format).
    out : str or os.PathLike
        The PNG to write; for ``kind="all"`` the stem of four files (see Returns).
    frame : int, optional
        Absolute frame number; default: the first frame of the store's source.
    video : str, os.PathLike or xarray.DataArray, optional
        The video the features came from, for ``annotate``; default: the path recorded
        in the store. Not read for the other kinds.
    kind : {"annotate", "mass", "size", "subpx", "all"}, default "annotate"
        :func:`annotate`, :func:`mass_hist`, :func:`mass_size`, :func:`subpx_bias`, or
        all four.
    channel : int or "grey", optional
        Channel of a colour video; default: the one recorded in the store.
    table : str, optional
        Result set of a store holding several (for one video of a many-video batch:
        ``"video=<name>"``).
    z : int, optional
        For a store of 3-D volumes: the plane ``annotate`` draws (default: the middle
        one, ``n_planes // 2``).
    dpi : int, default 100
        Pixels per inch. Image sizes in pixels: ``annotate`` 800 x (800 x h / w + 40),
        rounded to whole pixels; ``mass`` and ``size`` 640 x 480; ``subpx`` 800 x 320
        (at ``dpi=100``; scale by ``dpi / 100``).

    Returns
    -------
    dict
        ``{kind: pathlib.Path}`` of the files written. For ``kind="all"`` and
        ``out="f.png"``: ``f-annotate.png``, ``f-mass.png``, ``f-size.png``,
        ``f-subpx.png`` (beside ``out``).

    Raises
    ------
    FileNotFoundError
        No store at ``store``, or no video file.
    ValueError
        ``frame`` is not in the store (outside the located frames, or its chunk not
        done yet), the store holds several videos (choose one with ``table``), no video
        is known for ``annotate``, or a bad ``kind``.
    IndexError
        ``frame`` is not in the video.
    """
    from matplotlib.figure import Figure

    from daskloc.stores import read_features, store_info
    from daskloc.video import open_video

    paths = _plot_paths(out, kind)
    info = store_info(store, table=table)
    if "videos" in info:
        raise ValueError(
            f"the store {os.fspath(store)} holds several videos ({', '.join(info['videos'])}); "
            f"choose one with table='video=NAME' (daskloc plot --table video=NAME)"
        )
    if frame is None:
        frame = info["first_frame"] if info["first_frame"] is not None else 0
    frame = int(frame)
    features = read_features(store, frames=[frame], table=table)
    if len(features) == 0:
        _check_frame_stored(store, frame, table)
    source = info.get("source") or {}
    params = info.get("params") or {}
    written = {}
    for k, path in paths.items():
        if k == "annotate":
            if video is None:
                video = source.get("path")
                if not video:
                    raise ValueError(
                        f"the store {os.fspath(store)} does not record its video's path; "
                        f"give the video (--video)"
                    )
                if ("://" not in str(video) and not os.path.exists(str(video))
                        and not glob.glob(str(video))):
                    # an array ("numpy array"), or a file moved since the job
                    raise FileNotFoundError(
                        f"the store {os.fspath(store)} was made from {video!r}, which is not "
                        "a file here to draw the frame from; give the video (--video PATH, "
                        "or video= in Python)")
            if channel is None:
                channel = source.get("channel")
            frames_video = open_video(video, channel=channel, frames=[frame], chunks=1)
            image = frames_video.sel(frame=frame)
            plane = None
            if "z" in image.dims:
                plane = image.sizes["z"] // 2 if z is None else z
            h, w = image.sizes["y"], image.sizes["x"]
            fig = Figure(figsize=(8, 8 * h / w + 0.4), dpi=dpi, layout="constrained")
            annotate(image, features, ax=fig.add_subplot(), diameter=params.get("diameter"),
                     z=plane)
        elif k == "subpx":
            fig = Figure(figsize=(6.4, 4.0), dpi=dpi, layout="constrained")
            subpx_bias(features, ax=fig.add_subplot())
        else:
            fig = Figure(figsize=(6.4, 4.8), dpi=dpi, layout="constrained")
            (mass_hist if k == "mass" else mass_size)(features, ax=fig.add_subplot())
            fig.axes[0].set_title(f"frame {frame}: " + fig.axes[0].get_title())
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi, format="png")
        written[k] = path
    return written
