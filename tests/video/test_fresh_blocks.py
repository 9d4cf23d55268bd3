"""A chunk read as one new array is the chunk (no copy) only for sources that promise
their blocks are new; anything else is copied, so a chunk never aliases a caller's array."""

from __future__ import annotations

import numpy as np

from daskloc.video import Source, open_video
from daskloc.video._chunks import ChunkRequest, read_chunk

HELD = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(2, 3, 4)


class _Whole(Source):
    name = "whole"

    @staticmethod
    def read(spec, arg):
        yield slice(None), HELD


class _Fresh(_Whole):
    fresh_blocks = True


def request(kind, channel=None):
    return ChunkRequest(kind.read, ("p",), (0, 1), 2, (3, 4), "uint16", channel,
                        np.arange(2), kind, ("y", "x"))


def test_a_fresh_whole_chunk_is_used_as_it_is():
    assert read_chunk(request(_Fresh)) is HELD


def test_other_blocks_are_copied():
    out = read_chunk(request(_Whole))
    assert out is not HELD and not np.shares_memory(out, HELD)
    np.testing.assert_array_equal(out, HELD)


def test_a_chunk_of_a_numpy_array_does_not_alias_it():
    arr = np.zeros((4, 3, 4), np.uint8)
    block = open_video(arr, chunks=2).data.blocks[0].compute(scheduler="sync")
    block[:] = 7
    assert not arr.any()
