"""A validated video (:class:`_Plan`) and its frame chunks (:class:`_Chunk`); the
source description recorded in a store's metadata.
"""

from __future__ import annotations

import os

import numpy as np

from daskloc.locate import job_columns, normalize_params
from daskloc.pipeline._graph import _BlockGraph
from daskloc.stores import encode_frames
from daskloc.video import Calibration, frame_chunked, grey_video


class _Chunk:
    __slots__ = ("index", "frames", "start", "stop")

    def __init__(self, index, frames):
        self.index = index  # block index along the frame axis of the dask array
        self.frames = frames  # absolute frame numbers, int64, strictly increasing
        self.start = int(frames[0])
        self.stop = int(frames[-1]) + 1


class _Plan:
    """A validated video: the dask array (one block per frame chunk) and its chunks."""

    def __init__(self, video, open_options=None):
        video = grey_video(video, open_options=open_options)
        data = frame_chunked(video)
        if "frame" in video.coords:
            frames = np.asarray(video.coords["frame"].values)
            if frames.size and not np.issubdtype(frames.dtype, np.integer):
                raise ValueError(f"the frame coordinate must hold integers, got {frames.dtype}")
            frames = frames.astype(np.int64)
        else:
            frames = np.arange(data.shape[0], dtype=np.int64)
        if frames.size > 1 and not np.all(np.diff(frames) > 0):
            raise ValueError(
                "the video's frame numbers must increase strictly (sort the frame selection "
                "given to open_video)"
            )
        if frames.size and frames[0] < 0:
            raise ValueError(f"frame numbers must be non-negative, got {frames[0]}")
        self.video = video
        self.data = data
        self.frames = frames
        self.chunks = []
        offset = 0
        for i, n in enumerate(data.chunks[0]):
            if n:
                self.chunks.append(_Chunk(i, frames[offset : offset + n]))
            offset += n

    @property
    def dims(self):
        """The video's dims: ``("frame", "y", "x")`` or ``("frame", "z", "y", "x")``."""
        return tuple(self.video.dims)

    @property
    def ndim(self):
        """Dimensions of one image: 2 (``y, x`` frames) or 3 (``z, y, x`` volumes)."""
        return self.data.ndim - 1

    def columns(self, params):
        """The job's feature columns for this video (``frame`` not included).

        They depend only on the video's dims and the parameters
        (:func:`daskloc.locate.job_columns`), so they are known before any chunk runs.

        Raises
        ------
        ValueError
            A per-axis parameter has another number of values than the video's images
            have axes (the message names both and the fix).
        """
        try:
            return job_columns(params, self.ndim)
        except ValueError as exc:
            raise self._misfit(exc) from None

    def fit(self, diameter, params):
        """Check the parameters as asked (before normalising) against the video's dims.

        A per-axis value of equal entries normalises to one number (``(7, 7)`` is
        ``7``), so only the values as given tell that ``(7, 7)`` was meant for 2-D
        frames: trackpy refuses it for 3-D images, and so does this.

        Parameters
        ----------
        diameter, params
            As given to :func:`daskloc.batch` (``params`` without execution options).

        Returns
        -------
        tuple of str
            :meth:`columns` of the normalised parameters.

        Raises
        ------
        ValueError
            A per-axis parameter with another number of values than the images have
            axes (the message names the video's dims and the fix).
        """
        try:
            normalized = normalize_params(diameter, ndim=self.ndim, **params)
        except ValueError as exc:
            raise self._misfit(exc) from None
        return self.columns(normalized)

    def _misfit(self, exc):
        hint = ("; if it holds z-stacks, open it with its z axis (open_video's "
                "dims=('frame', 'z', 'y', 'x'))" if self.ndim == 2 else "")
        return ValueError(f"{exc} (the video has dims {self.dims}{hint})")

    @property
    def divisions(self):
        return tuple(c.start for c in self.chunks) + (self.chunks[-1].stop - 1,)

    def block_graph(self):
        return _BlockGraph(self.data)

    def source(self):
        """The source description recorded in a store's metadata (JSON values)."""
        attrs = dict(self.video.attrs)
        src = attrs.get("source")
        path = None
        # the reader's fingerprint of the files read (Source.fingerprint), taken when
        # the video was opened; the stat of the path for a video made by hand
        file_size, mtime = attrs.get("file_size"), attrs.get("file_mtime_ns")
        if isinstance(src, (str, os.PathLike)):
            path = os.fspath(src)
            if os.path.exists(path):
                path = os.path.abspath(path)
                if os.path.isfile(path) and file_size is None:
                    st = os.stat(path)
                    file_size, mtime = st.st_size, st.st_mtime_ns
        elif isinstance(src, (list, tuple)) and src:
            path = [os.path.abspath(os.fspath(p)) if isinstance(p, (str, os.PathLike))
                    else str(p) for p in src]
        elif src is not None:
            path = str(src)
        n_frames = attrs.get("n_frames")
        return _jsonable({
            "path": path,
            "file_size": file_size,
            "file_mtime_ns": mtime,
            "n_frames": int(n_frames) if n_frames is not None else int(self.frames.size),
            "frames": encode_frames(self.frames),
            "n_selected": int(self.frames.size),
            "shape": list(self.data.shape),
            "dtype": str(self.data.dtype),
            "channel": attrs.get("channel"),
            "fps": attrs.get("fps"),
            "position": attrs.get("position"),
            "position_index": attrs.get("position_index"),
            "calibration": Calibration.from_attrs(attrs).to_json(),
            "original_shape": attrs.get("original_shape"),
            "original_dtype": attrs.get("original_dtype"),
        })


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype):
        return str(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    return str(value)
