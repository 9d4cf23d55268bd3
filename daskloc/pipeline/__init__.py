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

# Importable from here as before, though not in __all__: the constants of batch's window,
# the private names the CLI (_frames_text) and the tests (_ClientWriter) use, and the
# function UndecodableChunksError pickles to (pickles made before the split load).
from daskloc.pipeline._api import batch, check_batch, locate
from daskloc.pipeline._errors import (  # noqa: F401
    UndecodableChunksError,
    _frames_text,
    _rebuild_undecodable,
)
from daskloc.pipeline._executors import (  # noqa: F401
    DRAIN_SECONDS,
    IN_FLIGHT_PER_THREAD,
    LOCAL_THREADS,
    METADATA_INTERVAL,
    _ClientWriter,
)
from daskloc.pipeline._readback import calibration
from daskloc.pipeline._videos import BatchError, many_videos, video_names
from daskloc.stores import StoreMismatchError
from daskloc.stores._names import video_table

__all__ = ["BatchError", "StoreMismatchError", "UndecodableChunksError", "batch", "calibration",
           "check_batch", "locate",
           "many_videos", "video_names", "video_table"]
