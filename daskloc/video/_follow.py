"""Recordings still being written: which frames are complete, as a video.

A :class:`Growing` source watches one recording that a microscope's software or a
camera script is writing (a folder of images, a multi-page TIFF, a Zarr array). Each
:meth:`Growing.scan` looks at it again and says how many frames, from the first on,
are *complete*: written to the end and not changed since the scan before, so that no
half-written image is ever read. :meth:`Growing.video` gives the complete frames as
:func:`daskloc.video.open_video` would, chunked as the caller asks, for
:func:`daskloc.batch` with ``follow=True`` to locate them as they come.

A source class follows its recordings when its :attr:`~daskloc.video.Source.growing`
attribute names a :class:`Growing` subclass: the image sequence, the TIFF and the
Zarr sources do. :func:`follow_video` picks it through the registry, as
:func:`~daskloc.video.open_video` picks a source.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from daskloc.video._base import VideoError, is_path

__all__ = ["FOLLOW_CHUNK_FRAMES", "Growing", "Growth", "follow_video"]

#: Default frames per chunk of a followed recording: a chunk is located once it is
#: complete, so smaller chunks mean results sooner (16 frames: 0.8 s at 20 frames/s).
FOLLOW_CHUNK_FRAMES = 16


class Growth:
    """What one :meth:`Growing.scan` found.

    Attributes
    ----------
    n_frames : int
        Frames complete, from the first on (frames ``0 .. n_frames - 1``).
    ended : bool
        The writer's end marker was seen (for a TIFF: as many pages as its metadata
        announces): no frame will come after these.
    why : str or None
        When ``ended``: what said so, for messages and the store's metadata.
    """

    __slots__ = ("ended", "n_frames", "why")

    def __init__(self, n_frames, ended=False, why=None):
        self.n_frames = int(n_frames)
        self.ended = bool(ended)
        self.why = why

    def __repr__(self):
        return f"Growth(n_frames={self.n_frames}, ended={self.ended}, why={self.why!r})"


class Growing:
    """A recording being written, watched by repeated scans.

    Subclasses set :attr:`reader` and implement :meth:`scan` and :meth:`source`.

    Parameters
    ----------
    source : str or path-like
        What the source class opens (a folder, a glob, a ``.tif`` file, a ``.zarr``
        directory). It must exist; it may hold no complete frame yet.

    Attributes
    ----------
    reader : str
        Class attribute: the source class's :attr:`~daskloc.video.Source.name`.
    path : str
        The absolute path watched.
    """

    reader = "source"

    def __init__(self, source):
        if not is_path(source):
            raise TypeError(
                f"follow=True watches a file or folder being written; got a "
                f"{type(source).__name__}: locate an array without follow")
        self.given = os.fspath(source)
        self.path = os.path.abspath(self.given)
        self._digest = None
        self._round = 0

    def scan(self):
        """Look at the recording again.

        Returns
        -------
        Growth
            The number of complete frames (never fewer than an earlier scan's) and
            whether the writer's end marker was seen.

        Raises
        ------
        VideoError
            The recording changed in a way a growing one never does: frames counted
            before are gone or were rewritten, a frame of another shape or dtype.
        """
        raise NotImplementedError

    def source(self, n_frames):
        """The :class:`~daskloc.video.Source` of the first ``n_frames`` complete frames.

        Parameters
        ----------
        n_frames : int
            At most the last :meth:`scan`'s ``n_frames``.

        Returns
        -------
        daskloc.video.Source
            Its ``labels`` are ``0 .. n_frames - 1``.
        """
        raise NotImplementedError

    def video(self, n_frames, groups, channel=None):
        """The frames of ``groups`` as a DataArray, one dask chunk per group.

        Parameters
        ----------
        n_frames : int
            Complete frames (at least one past the last frame of ``groups``).
        groups : list of numpy.ndarray of int64
            The frame numbers of each chunk, increasing, chunks in order.
        channel : None, int or "grey"
            As for :func:`~daskloc.video.open_video`.

        Returns
        -------
        xarray.DataArray
            As :func:`~daskloc.video.open_video` returns it, with the ``frame``
            coordinate of the frames of ``groups`` only; its attrs carry no file size
            or mtime (a growing recording has none that stays).
        """
        from daskloc.video._api import _check_channel
        from daskloc.video._chunks import to_dataarray

        src = self.source(n_frames)
        src._fingerprint = None  # the files grow: their size is not the recording's identity
        self._round += 1
        # Dask keys: unique per scan, without a stat of every file
        key = (self.reader, self.path, n_frames, id(self), self._round)
        src.token_parts = lambda: key
        positions = (np.concatenate(groups) if groups else np.zeros(0, np.int64))
        return to_dataarray(src, positions.astype(np.int64), "auto", _check_channel(channel),
                            groups=[np.asarray(g, np.int64) for g in groups])

    def first_frame_digest(self):
        """``"sha256:..."`` of the first frame's pixels, shape and dtype: what tells this
        recording from another written to the same path (part of a followed job's
        identity). Needs one complete frame."""
        if self._digest is None:
            frame = np.ascontiguousarray(
                self.video(1, [np.zeros(1, np.int64)]).data.compute(scheduler="sync")[0])
            h = hashlib.sha256(f"{frame.shape}{frame.dtype.str}".encode("ascii"))
            h.update(frame.tobytes())
            self._digest = "sha256:" + h.hexdigest()
        return self._digest


def follow_video(source, **options):
    """The :class:`Growing` watcher of a recording being written.

    Parameters
    ----------
    source : str or path-like
        A folder of image files (or a glob of them), a multi-page TIFF file or a Zarr
        array directory, existing (it may hold no complete frame yet).
    **options
        ``dims`` for a Zarr array (as for :func:`~daskloc.video.open_video`).

    Returns
    -------
    Growing

    Raises
    ------
    FileNotFoundError
        The path does not exist (start following once the recording's folder or
        file is there).
    VideoError
        A source that does not grow (a movie, an OME-Zarr image, a CZI file): the
        message names what can be followed and says to locate it without follow.
    TypeError
        Not a path (an array, a pims reader).
    """
    from daskloc.video._registry import REGISTRY

    if not is_path(source):
        raise TypeError(
            f"follow watches a file or folder being written; got a {type(source).__name__}: "
            "locate an array without follow")
    if is_path(source) and not any(ch in os.fspath(source) for ch in "*?[") and \
            not os.path.exists(os.fspath(source)):
        raise FileNotFoundError(
            f"no such file or directory: {os.fspath(source)!r} (follow watches a "
            "recording that exists: start it once the folder or file is created)")
    cls = REGISTRY.source_for(source) if is_path(source) else None
    growing = getattr(cls, "growing", None) if cls is not None else None
    if growing is None:
        what = f"a {cls.name} source" if cls is not None else f"a {type(source).__name__}"
        raise VideoError(
            f"{os.fspath(source) if is_path(source) else source!r} is {what}, which does "
            "not grow while it is recorded; follow watches a folder of image files, a "
            "multi-page TIFF or a Zarr array being written. Locate it without follow "
            "(CLI: without --follow)")
    return growing(source, **{k: v for k, v in options.items() if v is not None})
