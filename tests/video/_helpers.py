"""Helpers shared by the video tests: synthetic movies, hashes, a synchronous compute."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

av = pytest.importorskip("av")

MOVIE = "bulk-water.mov"
N_MOVIE = 480


def sync(arr):
    return arr.compute(scheduler="sync")


def frame_hash(frame):
    return hashlib.sha1(np.ascontiguousarray(frame).tobytes()).hexdigest()


def encode(path, n=60, keyint=12, bframes=2, codec="libx264", extra=""):
    """Write a small synthetic movie whose frames all differ; return nothing."""
    try:
        av.codec.Codec(codec, "w")
    except Exception:
        pytest.skip(f"PyAV has no {codec} encoder")
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
    container = av.open(str(path), "w")
    if codec == "libx264":
        params = (
            f"keyint={keyint}:min-keyint={keyint}:bframes={bframes}:b-adapt=0:"
            f"b-pyramid=normal:scenecut=0{extra}"
        )
        stream = container.add_stream(codec, rate=25, options={"x264-params": params, "qp": "10"})
        stream.pix_fmt = "yuv420p"
    else:
        stream = container.add_stream(codec, rate=25)
        stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        stream.codec_context.gop_size = keyint
        if codec == "mpeg4":
            stream.codec_context.max_b_frames = bframes
    stream.width, stream.height = 64, 48
    for i in range(n):
        image = np.roll(base, 3 * i, axis=1)
        image[:8, :8] = (4 * i) % 256
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()


def sequential(path):
    container = av.open(str(path))
    frames = [f.to_ndarray(format="rgb24") for f in container.decode(container.streams.video[0])]
    container.close()
    return np.stack(frames)


def keyframes(path):
    """Positions of the keyframes of a movie, by demuxing it with PyAV directly."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [i for i, p in enumerate(p for p in container.demux(stream) if p.size)
                if p.is_keyframe]
