"""Names shared by the stores and the pipeline: how the tables of a many-video batch are named.

The pipeline writes each video of a many-video batch to its own table and the readers
(:func:`daskloc.stores.read_features`, :func:`daskloc.stores.store_info`) find them
again; both take the naming from here, so the stores layer needs nothing from the
pipeline.
"""

from __future__ import annotations

from daskloc.stores.base import check_table_name

__all__ = ["TRAJECTORIES", "VIDEO_KEY", "trajectories_table", "video_table"]

#: The table of a video of a many-video batch is ``<table>/VIDEO_KEY=<name>``.
VIDEO_KEY = "video"
#: The trajectories linked from the features of table ``T`` are table ``T/TRAJECTORIES``
#: (``TRAJECTORIES`` for the default table), in the same store or in ``link(out=...)``.
#: The leading ``_`` hides them from plain readers of the features: pyarrow (so
#: ``pandas.read_parquet("features.parquet")``) skips folders named ``_*`` and ``.*``
#: when it discovers a dataset; a name without it would mix the trajectories' rows into
#: the features read that way.
TRAJECTORIES = "_trajectories"


def video_table(name, table=None):
    """Table name of one video of a many-video batch: ``"[table/]video=<name>"``.

    Parameters
    ----------
    name : str
        The video's name (see :func:`daskloc.batch`).
    table : str, optional
        The base table given to :func:`daskloc.batch`.

    Returns
    -------
    str
    """
    base = check_table_name(table)
    own = f"{VIDEO_KEY}={name}"
    check_table_name(own)
    return own if base is None else f"{base}/{own}"


def trajectories_table(table=None):
    """Table name of the trajectories linked from the features of ``table``.

    Parameters
    ----------
    table : str, optional
        The features' table: None (a one-video store), a ``table=`` given to
        :func:`daskloc.batch`, or a video's table (:func:`video_table`).

    Returns
    -------
    str
        ``"_trajectories"``, or ``"<table>/_trajectories"``.

    Examples
    --------
    >>> trajectories_table(), trajectories_table(video_table("bulk-water"))
    ('_trajectories', 'video=bulk-water/_trajectories')
    """
    base = check_table_name(table)
    return TRAJECTORIES if base is None else f"{base}/{TRAJECTORIES}"
