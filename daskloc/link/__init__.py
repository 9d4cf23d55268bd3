"""Trajectories from a feature store: streamed, parallel over time, equal to trackpy.link.

:func:`link` reads a store's features chunk by chunk, links segments of frames at the
same time on a Dask cluster with trackpy's linker, joins them by a rule that proves the
result equals one sequential :func:`trackpy.link` run (:mod:`daskloc.link._core`), and
streams the trajectories (the features plus ``particle``) into a table of the same
store format, readable while it runs: ``read_features(store, trajectories=True)``.
"""

from daskloc.link._api import LinkError, check_link_params, link

__all__ = ["LinkError", "check_link_params", "link"]
