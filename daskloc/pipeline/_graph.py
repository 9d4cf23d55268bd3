"""Task graphs of a video's frame chunks: one small sub-graph per chunk, and a
block's graph carried opaque to dask (computed inside the chunk task).
"""

from __future__ import annotations

from dask.core import get_dependencies
from dask.delayed import Delayed


class _BlockGraph:
    """One small task graph per frame chunk, cut from the video's graph once.

    Culling the whole graph for every chunk costs O(n_chunks) each time; the dependency
    table built here makes each chunk's sub-graph cost only its own size.
    """

    def __init__(self, data):
        blocks = data.to_delayed(optimize_graph=True).reshape(-1)
        self.keys = [b.key for b in blocks]
        self.dsk = dict(blocks[0].dask) if len(blocks) else {}
        self.deps = {k: get_dependencies(self.dsk, k) for k in self.dsk}

    def subgraph(self, index):
        """``(graph, key)`` of one chunk's block: its tasks only."""
        key = self.keys[index]
        sub, stack = {}, [key]
        while stack:
            k = stack.pop()
            if k not in sub:
                sub[k] = self.dsk[k]
                stack.extend(self.deps[k])
        return sub, key

    def block(self, index):
        sub, key = self.subgraph(index)
        return Delayed(key, sub)


class _GraphRef:
    """A block's task graph carried as an opaque argument (dask does not look inside):
    the chunk task computes it itself, inside ``skip_undecodable``."""

    __slots__ = ("dsk", "key")

    def __init__(self, dsk, key):
        self.dsk, self.key = dsk, key

    def __getstate__(self):
        return {"dsk": self.dsk, "key": self.key}

    def __setstate__(self, state):
        self.dsk, self.key = state["dsk"], state["key"]


#: How the user hears that a video cannot go to worker processes, and what to do.
UNSHIPPABLE = (
    "the video's dask graph cannot be sent to the cluster's workers ({why}), as with an "
    "array of tifffile's aszarr store, which holds the open file"
)


def pickling_error(graph, index):
    """Why block ``index`` of a :class:`_BlockGraph` cannot be pickled for workers.

    Returns
    -------
    str or None
        ``"TypeError: cannot pickle '_thread.RLock' object"``, or None when it can. A
        video is one kind of source, so one block stands for all of them.
    """
    from distributed.protocol.pickle import dumps

    sub, _ = graph.subgraph(index)
    try:
        dumps(sub)
    except Exception as exc:  # noqa: BLE001 - whatever pickling raises, it is the reason
        return f"{type(exc).__name__}: {exc}"
    return None
