"""Names shared by the stores and the pipeline: how the tables of a many-video batch are named.

The pipeline writes each video of a many-video batch to its own table and the readers
(:func:`daskloc.stores.read_features`, :func:`daskloc.stores.store_info`) find them
again; both take the naming from here, so the stores layer needs nothing from the
pipeline.
"""

from __future__ import annotations

from daskloc.stores.base import check_table_name

__all__ = ["VIDEO_KEY", "video_table"]

#: The table of a video of a many-video batch is ``<table>/VIDEO_KEY=<name>``.
VIDEO_KEY = "video"


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
