"""A stand-in for a microscope's acquisition: write frames at a set rate, as a writer would.

Used by the tests and benchmarks of ``daskloc.batch(..., follow=True)`` as a separate
process, and by anyone who wants to try following without a microscope::

    python -m daskloc.testing.acquire OUT --kind png --fps 20 --frames 400

writes the frames of :func:`daskloc.synthetic.make_video` (or of ``--source``, a
``.npy`` file) into ``OUT``:

- ``png`` / ``tif``: a folder of ``img_000000.png`` ... files. Each file is written in
  two halves with a pause between (``--tear``, a fraction of the frame period), so a
  reader scanning the folder finds half-written images, as it does with real
  acquisition software writing big frames;
- ``tiff``: one multi-page TIFF written page by page with tifffile, through an
  unbuffered file whose large writes are also cut in two with a pause between (torn
  pages at the end of the file);
- ``zarr``: a Zarr array ``(frame, y, x)`` grown by ``append`` one frame at a time.

Every frame's write time (``time.time()`` once the frame is complete) goes, one line
per frame (``frame seconds``), to ``--log`` if given: the benchmark's latency is
measured from it.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np

__all__ = ["main", "write_frames"]


class _TornFile(io.FileIO):
    """An unbuffered file whose large writes land in two halves, ``pause`` apart."""

    pause = 0.0

    def write(self, data):
        view = memoryview(data).cast("B")
        if self.pause and len(view) > 4096:
            half = len(view) // 2
            n = super().write(view[:half])
            time.sleep(self.pause)
            while n < len(view):
                n += super().write(view[n:])
            return n
        return super().write(data)


def _encode(frame, suffix):
    import imageio.v3 as iio

    if suffix == ".tif":
        import tifffile

        buf = io.BytesIO()
        tifffile.imwrite(buf, frame, metadata=None)
        return buf.getvalue()
    return iio.imwrite("<bytes>", frame, extension=suffix)


def write_frames(out, frames, *, kind="png", fps=20.0, tear=0.3, log=None):
    """Write ``frames`` into ``out`` at ``fps`` frames per second, as a recording grows.

    Parameters
    ----------
    out : str
        A folder (``kind`` ``"png"``/``"tif"``), a ``.tif`` file (``"tiff"``) or a
        ``.zarr`` directory (``"zarr"``); created.
    frames : numpy.ndarray, shape (n, y, x)
        The frames, ``uint8`` or ``uint16``.
    kind : {"png", "tif", "tiff", "zarr"}
        See the module's description.
    fps : float
        Frames per second (the frame period includes the writing).
    tear : float
        Fraction of the frame period between the two halves of each file or page
        (0: whole writes).
    log : file-like, optional
        Gets ``"frame seconds"`` (``time.time()``) per frame, once it is complete.

    Returns
    -------
    None
    """
    period = 1.0 / float(fps)
    start = time.monotonic()
    if kind in ("png", "tif"):
        os.makedirs(out, exist_ok=True)
    tiff = zarray = None
    if kind == "tiff":
        import tifffile

        fh = _TornFile(out, "w")
        fh.pause = tear * period
        tiff = tifffile.TiffWriter(fh)
    elif kind == "zarr":
        import zarr

        zarray = zarr.create_array(out, shape=(0,) + frames.shape[1:],
                                   chunks=(1,) + frames.shape[1:], dtype=frames.dtype)
    try:
        for i, frame in enumerate(frames):
            if kind in ("png", "tif"):
                data = _encode(frame, "." + kind)
                half = len(data) // 2 if tear else len(data)
                with open(os.path.join(out, f"img_{i:06d}.{kind}"), "wb", buffering=0) as f:
                    f.write(data[:half])
                    if tear:
                        time.sleep(tear * period)
                    f.write(data[half:])
            elif kind == "tiff":
                tiff.write(frame, metadata=None)
            elif kind == "zarr":
                zarray.append(frame[None], axis=0)
            else:
                raise ValueError(f"kind must be png, tif, tiff or zarr, got {kind!r}")
            if log is not None:
                log.write(f"{i} {time.time():.6f}\n")
                log.flush()
            wait = start + (i + 1) * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    finally:
        if tiff is not None:
            tiff.close()


def main(argv=None):
    """The command line (see the module's description)."""
    parser = argparse.ArgumentParser(prog="python -m daskloc.testing.acquire",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--kind", default="png", choices=["png", "tif", "tiff", "zarr"])
    parser.add_argument("--fps", type=float, default=20.0)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--shape", default="128,128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tear", type=float, default=0.3)
    parser.add_argument("--source", default=None, help="a .npy (n, y, x) array of frames")
    parser.add_argument("--log", default=None)
    args = parser.parse_args(argv)
    if args.source:
        frames = np.load(args.source)[: args.frames]
    else:
        from daskloc.synthetic import make_video

        shape = tuple(int(v) for v in args.shape.split(","))
        n = max(1, shape[0] * shape[1] // 700)  # spaced as make_video can place them
        frames = make_video(args.frames, shape, n_particles=n, seed=args.seed)[0]
    log = open(args.log, "w") if args.log else None  # noqa: SIM115 - closed below
    try:
        write_frames(args.out, frames, kind=args.kind, fps=args.fps, tear=args.tear, log=log)
    finally:
        if log is not None:
            log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
