"""What each worker process of daskloc's clusters does when it starts.

:func:`daskloc.make_client` names this module as the Dask preload of the workers it
starts, local and SLURM (``distributed.worker.preload``, ``dask worker --preload``; see
:data:`daskloc.cluster.WORKER_PRELOAD`). Its :func:`dask_setup` runs in each worker as
it starts, before it takes any task, and:

- starts a background thread that imports what a chunk task needs (the pipeline's
  worker side, the readers, the stores, pandas) and loads the locate kernel from
  numba's cache, so that the first chunk does not wait for them. A worker would pay
  this at its first chunk anyway (about 2.5 s of imports and 1 s of numba loading
  its registries on the machines of ``benchmarks/RESULTS.md``); while the command is
  still opening the videos and planning the job the worker is idle, and the thread
  uses that time. A task that needs a module the thread is importing waits for that
  import (Python's per-module import locks); one that needs a kernel the thread is
  loading waits for numba's compiler lock: nothing is done twice.
- lets the worker exit without the garbage collections of its last moments
  (:func:`daskloc._utils.skip_final_collections`), so closing the cluster does not
  wait for them.
"""

from __future__ import annotations

import threading

from daskloc._utils import skip_final_collections


def _warm():
    # Failures here are no one's business: the first chunk task imports and loads the
    # same things and reports whatever goes wrong with the job's own context.
    try:
        import numpy as np

        import daskloc.pipeline._tasks  # noqa: F401 - the worker side of batch
        import daskloc.stores  # noqa: F401
        import daskloc.video  # noqa: F401
        from daskloc.locate import locate_stack_counted

        # Two tiny 8-bit frames with a spot each, through the function the chunk tasks
        # call (it counts frames without features instead of warning, so nothing here
        # touches the process-wide warning filters a running task may be using): loads
        # numba's registries and the kernel's 8-bit variants (movies); a 16-bit job
        # loads its own variants at its first chunk, a small part of the whole.
        frames = np.zeros((2, 32, 32), dtype=np.uint8)
        frames[:, 15:18, 15:18] = 200
        locate_stack_counted(frames, 5)
    except Exception:  # noqa: BLE001
        pass


def dask_setup(worker):
    """The worker's preload hook (Dask calls it with the starting worker).

    Parameters
    ----------
    worker : distributed.Worker
        Not used: the set-up is the same for every worker.
    """
    skip_final_collections()
    threading.Thread(target=_warm, name="daskloc-warm", daemon=True).start()
