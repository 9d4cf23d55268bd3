"""A store's complete chunks read back lazily as a dask DataFrame (what batch returns).
"""

from __future__ import annotations

from daskloc.pipeline._partitions import _meta, _to_partition


def _read_chunk(store, start, stop, names):
    # not "columns": dask's from_map passes its column projection under that name
    df = store.read(frames=slice(start, stop))
    return _to_partition(df, names)


def _from_store(st):
    """A store's complete chunks as a Dask DataFrame indexed by frame, known divisions."""
    import dask.dataframe as dd  # only when a DataFrame is made (see _api.locate)

    meta = st.metadata()
    # The columns the job recorded (from its dims and parameters when it started)
    columns = [c for c in st.columns(meta) if c != "frame"]
    chunks = st.valid_chunks(meta) if meta is not None else []
    empty = _meta(columns)
    if not chunks:
        return dd.from_pandas(empty, npartitions=1)
    divisions = tuple(a for a, _ in chunks) + (chunks[-1][1] - 1,)
    return dd.from_map(
        _read_chunk,
        [st] * len(chunks),
        [a for a, _ in chunks],
        [b for _, b in chunks],
        args=(columns,),
        meta=empty,
        divisions=divisions,
        label="daskloc-read",
        enforce_metadata=False,
    )


def calibration(store, *, video=None, table=None, storage_options=None):
    """The calibration of the recording a store's features came from.

    What the source file's metadata recorded when the job ran (µm per pixel along
    each axis, frames per second and which field each came from): in the form
    ``trackpy.motion.emsd(traj, mpp, fps)`` takes. The features themselves stay in
    pixels and frames, as trackpy's do: this converts nothing.

    Parameters
    ----------
    store : str or os.PathLike
        A store written by :func:`daskloc.batch`.
    video : str, optional
        In a many-video store (e.g. the positions of a multi-position file): the video.
        Without it such a store's videos must share one calibration.
    table, storage_options
        As for :func:`daskloc.read_features`.

    Returns
    -------
    daskloc.video.Calibration
        Unpacks as ``mpp, fps``: ``mpp`` in µm per pixel for trackpy's default
        position columns (``x``, ``y``): one number when they have the same size,
        else one per column (:meth:`~daskloc.video.Calibration.mpp_for` gives them
        for other ``pos_columns``, e.g. ``["z", "y", "x"]``); ``fps`` in frames per
        second. Either is None when the source did not record it (a calibration is
        never invented: give trackpy your own values then).

    Raises
    ------
    FileNotFoundError
        Nothing exists at ``store``.
    ValueError
        Not a daskloc store; no video of that name; several videos of different
        calibrations and no ``video=`` (the message lists them).

    Examples
    --------
    >>> import daskloc, trackpy  # doctest: +SKIP
    >>> mpp, fps = daskloc.calibration("features.parquet")  # doctest: +SKIP
    >>> trackpy.emsd(trajectories, mpp, fps)  # doctest: +SKIP
    """
    from daskloc.stores import store_info
    from daskloc.video import Calibration

    info = store_info(store, video=video, table=table, storage_options=storage_options)
    videos = info.get("videos") or {}
    if not videos:
        return Calibration.from_json((info.get("source") or {}).get("calibration"))
    found = {name: Calibration.from_json((one.get("source") or {}).get("calibration"))
             for name, one in videos.items()}
    first = next(iter(found.values()))
    if all(c == first for c in found.values()):
        return first
    listed = "; ".join(f"{n}: {c.describe()}" for n, c in found.items())
    raise ValueError(
        f"the videos of {store} have different calibrations ({listed}): pass video=NAME"
    )
