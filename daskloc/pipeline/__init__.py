"""The Dask pipeline: a lazy video becomes features, lazily (:func:`locate`) or streamed to a
store chunk by chunk, resumable (:func:`batch`).

Both work on the video's frame chunks: one chunk of frames is one task (read the frames,
locate every frame, return or store the features) and one partition of the result. The
pipeline knows stores only through :mod:`daskloc.stores`' interface, never a file format.

One module per concern (each imports only those before it in this list):

- ``_graph``: one small task graph per chunk; a block's graph carried opaque to dask
- ``_plan``: the validated video and its chunks; the source recorded in the metadata
- ``_partitions``: a chunk's features as a partition (schema, conversion, locate's task)
- ``_errors``: storage failures explained, :class:`UndecodableChunksError`
- ``_tasks``: the chunk tasks of :func:`batch` (worker side)
- ``_executors``: the bounded window of chunk tasks (distributed or local), the
  client-side writer of single-writer stores
- ``_job``: one video's job: metadata, mismatch and chunk checks, resume, progress
- ``_videos``: many videos: which, their names, :class:`BatchError`
- ``_readback``: a store read back as a dask DataFrame
- ``_api``: :func:`locate`, :func:`batch` and :func:`check_batch`
"""

import importlib

# Each name is imported from its module when first asked for (PEP 562), so a worker
# process that only runs chunk tasks (``_tasks``) does not import :mod:`_api` and what it
# needs (xarray, dask.array, the corrections): about a second less of start-up in every
# worker. Importable from here as before, though not in __all__: the constants of batch's
# window, the private names the CLI (_frames_text) and the tests (_ClientWriter) use, and
# the function UndecodableChunksError pickles to (pickles made before the split load).
_NAMES = {
    "batch": "_api",
    "check_batch": "_api",
    "locate": "_api",
    "UndecodableChunksError": "_errors",
    "_frames_text": "_errors",
    "_rebuild_undecodable": "_errors",
    "DRAIN_SECONDS": "_executors",
    "IN_FLIGHT_PER_THREAD": "_executors",
    "LOCAL_THREADS": "_executors",
    "METADATA_INTERVAL": "_executors",
    "_ClientWriter": "_executors",
    "calibration": "_readback",
    "BatchError": "_videos",
    "many_videos": "_videos",
    "video_names": "_videos",
    "StoreMismatchError": "daskloc.stores",
    "video_table": "daskloc.stores._names",
}

__all__ = ["BatchError", "StoreMismatchError", "UndecodableChunksError", "batch", "calibration",
           "check_batch", "locate",
           "many_videos", "video_names", "video_table"]


def __getattr__(name):
    module = _NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module.startswith("_"):
        module = f"{__name__}.{module}"
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found at once next time
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES))
