"""Multi-page TIFF files, read with tifffile: one frame per page, or along the single
non-singleton leading axis of the first TIFF series."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from daskloc._utils import is_glob
from daskloc.video._base import Source, UnsupportedSourceError, VideoError, is_path

__all__ = ["TIFF_EXTENSIONS", "TiffSource"]

#: Multi-page TIFF files, read with tifffile.
TIFF_EXTENSIONS = (".tif", ".tiff")


def tiff_pages(path):
    """1 or 2 (meaning: more than one) pages in a TIFF file; None if it cannot be read."""
    try:
        import tifffile

        with tifffile.TiffFile(path) as tf:
            try:
                tf.pages[1]
            except IndexError:
                return 1
            return 2
    except Exception:  # noqa: BLE001 - missing, unreadable: the video's own error later
        return None


def _tiff_layout(series, path):
    """Frame axis, frame count and frame shape of a tifffile series."""
    shape = tuple(int(s) for s in series.shape)
    axes = series.axes
    colour = axes.endswith("S") and len(shape) >= 3
    nframe_dims = 3 if colour else 2
    if len(shape) < nframe_dims:
        raise VideoError(f"{path}: cannot read TIFF series of shape {shape} ({axes}) as a video")
    frame_shape = shape[len(shape) - nframe_dims :]
    leading = shape[: len(shape) - nframe_dims]
    big = [i for i, s in enumerate(leading) if s > 1]
    if len(big) > 1:
        raise VideoError(
            f"{path}: TIFF series has shape {shape} with axes {axes!r}: more than one axis "
            "besides y, x (and samples); open_video reads one frame axis. Load it with "
            "tifffile, pick the frames you want and pass the array instead"
        )
    frame_axis = big[0] if big else None
    n = leading[frame_axis] if big else 1
    return frame_axis, len(leading), n, frame_shape


class TiffSource(Source):
    """A TIFF file (``.tif``, ``.tiff``), one frame per page or along its frame axis.

    Parameters
    ----------
    source : str or path-like
        The TIFF file.

    Raises
    ------
    UnsupportedSourceError
        tifffile cannot read the file (a ``VideoError``).
    VideoError
        No images, or more than one axis besides y, x (and samples).

    Notes
    -----
    ``attrs["fps"]`` comes from ImageJ metadata (``fps``, or ``1 / finterval``).
    """

    name = "tiff"
    suffixes = TIFF_EXTENSIONS
    summary = "multi-page TIFF (.tif, .tiff)"
    priority = 40
    per_frame = True

    @classmethod
    def role(cls, item):
        """``"video"`` for a multi-page TIFF, ``"frame"`` for a single page (one image
        of a sequence), ``"unknown"`` when it cannot be read; None if not a TIFF."""
        if not is_path(item) or is_glob(item):
            return None
        path = Path(os.fspath(item))
        if path.suffix.lower() not in cls.suffixes or path.is_dir():
            return None
        pages = tiff_pages(os.fspath(item))
        return "unknown" if pages is None else ("video" if pages > 1 else "frame")

    def __init__(self, source):
        import tifffile

        path = os.fspath(source)
        self.path = path
        try:
            with tifffile.TiffFile(path) as tf:
                if not tf.series:
                    raise VideoError(f"{path}: TIFF file holds no images")
                series = tf.series[0]
                frame_axis, n_leading, n, frame_shape = _tiff_layout(series, path)
                self.use_pages = len(series.pages) == n
                dtype = np.dtype(series.dtype)
                shape = tuple(int(s) for s in series.shape)
                fps = None
                meta = tf.imagej_metadata or {}
                if meta.get("fps"):
                    fps = float(meta["fps"])
                elif meta.get("finterval"):
                    fps = 1.0 / float(meta["finterval"])
        except VideoError:
            raise
        except Exception as exc:  # tifffile raises TiffFileError, ValueError, ...
            raise UnsupportedSourceError(
                f"{path}: cannot read as a TIFF ({type(exc).__name__}: {exc})"
            ) from exc
        if n == 0:
            raise VideoError(f"{path}: TIFF has no frames")
        self.frame_axis, self.n_leading = frame_axis, n_leading
        self.frame_shape = tuple(frame_shape)
        self.dtype = dtype
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": str(path),
            "fps": fps,
            "original_shape": shape,
            "original_dtype": str(dtype),
            "n_frames": int(n),
        }

    def spec(self):
        """``(path, use_pages, frame_axis, n_leading, frame_shape)``."""
        return (self.path, self.use_pages, self.frame_axis, self.n_leading, self.frame_shape)

    def chunk_args(self, positions):
        """The chunk's frame positions, a tuple of int."""
        return tuple(int(p) for p in positions)

    @staticmethod
    def read(spec, arg):
        """Read the chunk's pages (or its slice of tifffile's zarr view of the series)."""
        import tifffile

        path, use_pages, frame_axis, n_leading, frame_shape = spec
        positions = list(arg)
        shape = (len(positions),) + tuple(frame_shape)
        with tifffile.TiffFile(path) as tf:
            if use_pages:
                # one page per frame: read just the pages of this chunk
                yield slice(None), np.reshape(tf.asarray(key=positions, series=0), shape)
                return
            import zarr

            store = tf.series[0].aszarr()
            try:
                z = zarr.open_array(store, mode="r")
                index = [0] * n_leading + [slice(None)] * len(frame_shape)
                if frame_axis is not None:
                    index[frame_axis] = positions
                block = z.oindex[tuple(index)]
            finally:
                store.close()
            yield slice(None), np.reshape(block, shape)
