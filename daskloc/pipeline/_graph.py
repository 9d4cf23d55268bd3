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
