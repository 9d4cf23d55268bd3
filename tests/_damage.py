"""Damaged copies of real movies, for the tests of decode errors (test_decode_errors.py,
test_hostile.py): what a torn download or a bad disk sector leaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def packet_table(path):
    """(pts, dts, pos, size, is_keyframe, payload) of the video packets, decode order."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [
            (p.pts, p.dts, p.pos, p.size, bool(p.is_keyframe), bytes(p))
            for p in container.demux(stream)
            if p.size
        ]


def damage_packet(src, dst, index, nbytes=8, seed=0):
    """Copy ``src`` to ``dst`` with random bytes over the start of packet ``index``.

    The payload is found from ``packet.pos`` (which for some containers points at the
    block header before it) by searching for the packet's own bytes.
    """
    data = bytearray(Path(src).read_bytes())
    _, _, pos, size, _, payload = packet_table(src)[index]
    at = data.find(payload[:64], pos)
    assert 0 <= at - pos < 64, "packet payload not found near packet.pos"
    garbage = np.random.default_rng(seed).integers(0, 256, min(nbytes, size), np.uint8)
    data[at : at + len(garbage)] = garbage.tobytes()
    Path(dst).write_bytes(bytes(data))
