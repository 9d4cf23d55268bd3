"""Chunk tasks: the graph of one read task per chunk, and what each task does.

The task graph holds no pixel data and no open file: every chunk task receives a
:class:`ChunkRequest`, a small picklable description of what to read (a path, a handful
of frame numbers or timestamps), and opens its own reader through the source's
:meth:`~daskloc.video.Source.read`.
"""

from __future__ import annotations

import numpy as np

from daskloc.video._base import (
    Unreadable,
    VideoDecodeError,
    VideoError,
    fingerprint_of,
    frame_dims_of,
    record_skipped,
    reraise_fatal,
    skipping,
)
from daskloc.video._buffers import chunk_buffer

__all__ = ["GREY_WEIGHTS", "ChunkRequest", "read_chunk", "to_dataarray"]

#: Weights for R, G, B used by ``channel="grey"``: those of ``pims.as_grey`` (and
#: scikit-image's ``rgb2gray``, ITU-R BT.709), so grey frames equal what trackpy users
#: get from their usual pims pipeline.
GREY_WEIGHTS = (0.2125, 0.7154, 0.0721)


def output_frame(frame_shape, dtype, channel, what, frame_dims=None):
    """Frame shape and dtype after applying ``channel``; validates ``channel``.

    ``frame_dims`` names the axes of ``frame_shape`` (default: ``("y", "x")`` or
    ``("y", "x", "channel")`` by its length); a channel axis is always the last."""
    frame_dims = _frame_dims(frame_shape, frame_dims)
    colour = frame_dims[-1] == "channel"
    if channel is None:
        return frame_shape, dtype
    if not colour:
        if channel in (0, "grey"):
            return frame_shape, dtype
        raise ValueError(
            f"{what} is greyscale (no channel axis): channel must be None, 0 or 'grey', "
            f"got {channel!r}"
        )
    n_channels = frame_shape[-1]
    if channel == "grey":
        if n_channels not in (3, 4):
            raise ValueError(
                f"{what} has {n_channels} channels; channel='grey' needs RGB or RGBA (3 "
                "or 4 channels): pick one channel with channel=0 (CLI: --channel 0) instead"
            )
        return frame_shape[:-1], np.dtype(np.float64)
    if not -n_channels <= channel < n_channels:
        raise ValueError(
            f"channel {channel} does not exist: {what} has {n_channels} channels "
            f"(0..{n_channels - 1})"
        )
    return frame_shape[:-1], dtype


def _frame_dims(frame_shape, frame_dims):
    if frame_dims is not None:
        return tuple(frame_dims)
    return ("y", "x", "channel")[: len(frame_shape)]


def apply_channel_block(block, channel, colour):
    """Apply a validated ``channel`` to ``block`` shaped (k, [z,] y, x[, c]).

    ``colour``: whether ``block`` has a (last) channel axis."""
    if channel is None or not colour:
        return block
    if channel == "grey":
        r, g, b = GREY_WEIGHTS
        return (
            block[..., 0].astype(np.float64) * r
            + block[..., 1].astype(np.float64) * g
            + block[..., 2].astype(np.float64) * b
        )
    return block[..., channel]


def dims(out_frame_shape, frame_dims=None, channel=None):
    """The DataArray's dims: ``("frame",)`` plus the output frame's axis names.

    ``frame_dims`` names the source frame's axes (default by the length of
    ``out_frame_shape``: ``("y", "x")`` or ``("y", "x", "channel")``); the channel axis
    is dropped when ``channel`` picked one or converted to grey."""
    if frame_dims is None:
        return ("frame", "y", "x", "channel")[: 1 + len(out_frame_shape)]
    frame_dims = tuple(frame_dims)
    if frame_dims[-1] == "channel" and len(out_frame_shape) < len(frame_dims):
        frame_dims = frame_dims[:-1]
    return ("frame",) + frame_dims


def build_attrs(base, channel):
    """The DataArray's attrs: ``base`` without None values, plus ``channel`` if given."""
    attrs = {k: v for k, v in base.items() if v is not None}
    if channel is not None:
        attrs["channel"] = channel
    return attrs


class ChunkRequest:
    """Everything one chunk task needs: small and picklable, no pixel data, no handles.

    A plain class (not a tuple, list or dataclass) so dask treats it as an opaque
    argument.

    Parameters
    ----------
    reader : callable
        A module-level generator function ``reader(spec, arg)`` (a source's
        :meth:`~daskloc.video.Source.read`).
    spec : object
        Per-source constants (path, pixel format, ...).
    arg : object
        Per-chunk description of the frames to read.
    n : int
        Frames in the chunk.
    frame_shape : tuple of int
        Source frame shape, ``(y, x)`` or ``(y, x, channel)``.
    dtype : str
        Source dtype.
    channel : None, int or "grey"
        The validated channel choice.
    labels : tuple (first, step, n) or numpy.ndarray of int64
        Absolute frame numbers of the chunk's frames.
    source : type, optional
        The :class:`~daskloc.video.Source` class: says whether ``arg`` can be split
        per frame and which file a frame comes from.
    frame_dims : tuple of str, optional
        Names of the axes of ``frame_shape`` (default by its length: ``("y", "x")`` or
        ``("y", "x", "channel")``).
    """

    __slots__ = (
        "arg",
        "channel",
        "dtype",
        "frame_dims",
        "frame_shape",
        "labels",
        "n",
        "reader",
        "source",
        "spec",
    )

    def __init__(self, reader, spec, arg, n, frame_shape, dtype, channel, labels,
                 source=None, frame_dims=None):
        self.reader = reader
        self.spec = spec
        self.arg = arg
        self.n = n
        self.frame_shape = frame_shape
        self.dtype = dtype
        self.channel = channel
        self.labels = labels
        self.source = source
        self.frame_dims = _frame_dims(frame_shape, frame_dims)

    def __getstate__(self):
        return {s: getattr(self, s) for s in self.__slots__}

    def __setstate__(self, state):
        for k, v in state.items():
            setattr(self, k, v)

    def label(self, i):
        """Absolute frame number (``frame`` coordinate) of the chunk's frame ``i``."""
        labels = self.labels
        if isinstance(labels, tuple):
            return int(labels[0] + int(i) * labels[1])
        return int(labels[int(i)])

    def frame_path(self, i):
        """The file frame ``i`` of the chunk is read from (for messages)."""
        if self.source is not None:
            return self.source.frame_path(self.spec, self.arg, int(i))
        spec = self.spec
        if isinstance(spec, tuple) and spec and isinstance(spec[0], str):
            return spec[0]
        return str(spec)

    @property
    def per_frame(self):
        """Whether ``arg[i:i + 1]`` reads frame ``i`` alone."""
        return self.source is not None and self.source.per_frame

    def __repr__(self):
        return (
            f"<chunk of {self.n} frames ({self.label(0)}..{self.label(self.n - 1)}) via "
            f"{self.reader.__qualname__}>"
        )


def compact_labels(labels):
    """``(first, step, n)`` for evenly spaced frame numbers, else an int64 array."""
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    step = int(labels[1] - labels[0]) if n > 1 else 1
    if n == 1 or (step > 0 and np.all(np.diff(labels) == step)):
        return (int(labels[0]), step, n)
    return labels.copy()


def runs(positions):
    """Split sorted positions into (start, stop, offset) runs of consecutive values."""
    positions = np.asarray(positions)
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate([[0], breaks])
    stops = np.concatenate([breaks, [len(positions)]])
    return [(int(positions[a]), int(positions[b - 1]) + 1, int(a)) for a, b in zip(starts, stops)]


def _decode_error(request, i, exc):
    """The VideoDecodeError for frame ``i`` of the chunk (raise it ``from exc``)."""
    return VideoDecodeError(
        request.frame_path(i),
        request.label(i),
        (request.label(0), request.label(request.n - 1)),
        f"{type(exc).__name__}: {exc}",
    )


def read_chunk(request):
    """Dask task: read one chunk of frames, apply the channel, return a numpy array.

    Parameters
    ----------
    request : ChunkRequest

    Returns
    -------
    numpy.ndarray
        Shape ``(request.n,) + output frame shape``, the output dtype (the source's,
        or float64 after ``channel="grey"`` on colour).

    Raises
    ------
    VideoDecodeError
        Frames of the chunk cannot be read or decoded (not inside
        :func:`~daskloc.video.skip_undecodable`, where those frames are zeros and are
        recorded as skipped instead).
    """
    frame_shape = tuple(request.frame_shape)
    colour = request.frame_dims[-1] == "channel"
    dtype = np.dtype(request.dtype)
    out_shape, out_dtype = output_frame(frame_shape, dtype, request.channel, "source",
                                        request.frame_dims)
    shape = (request.n,) + tuple(out_shape)
    filled = np.zeros(request.n, dtype=bool)
    skipped = skipping()
    lost = {}  # skip mode: chunk index -> reason
    frames = request.reader(request.spec, request.arg)
    # A source whose blocks are new arrays nobody else holds (Source.fresh_blocks) may
    # give the whole chunk at once: used as it is, not copied (a chunk of a big TIFF is
    # 128 MiB: the copy cost as much as reading the pages).
    fresh = bool(getattr(request.source, "fresh_blocks", False)) and request.channel is None
    out = None
    try:
        for index, block in frames:
            if (out is None and fresh and index == slice(None) and type(block) is np.ndarray
                    and block.shape == shape and block.dtype == out_dtype
                    and block.flags.writeable):
                out = block
                filled[:] = True
                continue
            if out is None:
                out = chunk_buffer(shape, out_dtype)
            if type(block) is Unreadable:
                failed = np.flatnonzero(~filled[index]) + (index.start or 0)
                if failed.size:
                    if skipped is None:
                        raise _decode_error(request, failed[0], block.exc) from block.exc
                    _skip(out, filled, failed, block.exc, lost)
                continue
            block = np.asarray(block)
            if block.shape[1:] != frame_shape:
                raise VideoError(
                    f"frame has shape {block.shape[1:]}, expected {frame_shape} (all "
                    "frames must have the same shape)"
                )
            out[index] = apply_channel_block(block, request.channel, colour)
            filled[index] = True
    except VideoDecodeError:
        raise
    except Exception as exc:
        reraise_fatal(exc)
        frames.close()
        if out is None:
            out = chunk_buffer(shape, out_dtype)
        _recover(request, out, filled, exc, skipped, lost)
    finally:
        frames.close()
    if out is None:
        out = chunk_buffer(shape, out_dtype)
    if not filled.all():  # pragma: no cover - readers yield every frame or a failure
        exc = VideoError("the reader returned no data for this frame")
        failed = np.flatnonzero(~filled)
        if skipped is None:
            raise _decode_error(request, failed[0], exc)
        _skip(out, filled, failed, exc, lost)
    if lost:
        record_skipped(skipped, {request.label(i): r for i, r in lost.items()})
    return out


def _skip(out, filled, failed, exc, lost):
    out[failed] = 0
    filled[failed] = True
    reason = f"{type(exc).__name__}: {exc}"
    for i in failed:
        lost[int(i)] = reason


def _recover(request, out, filled, exc, skipped, lost):
    """After a chunk read failed with ``exc``: read its missing frames one at a time.

    Sources with ``per_frame`` (TIFF, images, Zarr) are retried frame by frame: a frame
    that fails alone raises VideoDecodeError (raise mode) or is skipped; the others are
    kept. For other readers (movies, which handle their decoding errors themselves)
    all missing frames failed with ``exc``.
    """
    missing = np.flatnonzero(~filled)
    if not request.per_frame:
        if skipped is None:
            raise _decode_error(request, missing[0], exc) from exc
        _skip(out, filled, missing, exc, lost)
        return
    frame_shape = tuple(request.frame_shape)
    colour = request.frame_dims[-1] == "channel"
    for i in missing:
        i = int(i)
        try:
            one = out[i : i + 1]
            got = False
            for index, block in request.reader(request.spec, request.arg[i : i + 1]):
                if type(block) is Unreadable:
                    raise block.exc
                block = np.asarray(block)
                if block.shape != (1,) + frame_shape:
                    raise VideoError(
                        f"frame has shape {block.shape[1:]}, expected {frame_shape} (all "
                        "frames must have the same shape)"
                    )
                one[index] = apply_channel_block(block, request.channel, colour)
                got = True
            if not got:  # pragma: no cover - defensive
                raise VideoError("the reader returned no data for this frame")
            filled[i] = True
        except Exception as frame_exc:
            reraise_fatal(frame_exc)
            if skipped is None:
                raise _decode_error(request, i, frame_exc) from frame_exc
            _skip(out, filled, np.array([i]), frame_exc, lost)


def to_dataarray(source, positions, chunks, channel, groups=None):
    """The DataArray of the selected frames of an opened source.

    Parameters
    ----------
    source : daskloc.video.Source
        An opened source.
    positions : numpy.ndarray of int64
        Sorted positions (indices into ``source.labels``) of the frames to read.
    chunks : int or "auto"
        Frames per chunk.
    channel : None, int or "grey"
        The validated channel choice.
    groups : list of numpy.ndarray of int64, optional
        The positions of each chunk, in order (``positions`` cut into pieces),
        instead of ``chunks``: a followed recording's chunks as its store plans them.

    Returns
    -------
    xarray.DataArray
        See :func:`daskloc.video.open_video`. Unless the source builds it itself
        (:meth:`~daskloc.video.Source.dataarray`), its dask array has one
        :func:`read_chunk` task per chunk.
    """
    import dask.array as da
    import xarray as xr
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    found = fingerprint_of(source)  # the files' size and mtime: part of a job's identity
    built = source.dataarray(positions, chunks, channel)
    if built is not None:
        built.attrs.update(found or {})
        return built
    frame_dims = frame_dims_of(source)
    out_shape, out_dtype = output_frame(source.frame_shape, source.dtype, channel, source.path,
                                        frame_dims)
    spec = source.spec()
    planned = groups is not None
    if not planned:
        groups = source.chunk_groups(positions, chunks, out_shape, out_dtype)
    kind = type(source)
    # the options it was opened with (position, level, dims) choose other data from
    # the same file: they are part of the key, for every source (the registry sets them)
    name = "open_video-" + tokenize(
        kind.__name__, source.token_parts(), getattr(source, "opened_with", ()), positions,
        [len(g) for g in groups] if planned else chunks, channel
    )
    ndim = 1 + len(out_shape)
    dsk = {}
    for i, group in enumerate(groups):
        request = ChunkRequest(
            kind.read,
            spec,
            source.chunk_args(group),
            len(group),
            tuple(source.frame_shape),
            str(source.dtype),
            channel,
            compact_labels(source.labels[group]),
            kind,
            frame_dims,
        )
        dsk[(name, i) + (0,) * (ndim - 1)] = (read_chunk, request)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    data = da.Array(
        graph,
        name,
        chunks=(tuple(len(g) for g in groups),) + tuple((s,) for s in out_shape),
        dtype=out_dtype,
        meta=np.empty((0,) * ndim, dtype=out_dtype),
    )
    return xr.DataArray(
        data,
        dims=dims(out_shape, frame_dims),
        coords={"frame": ("frame", source.labels[positions].astype(np.int64))},
        name="video",
        attrs=build_attrs({**source.attrs, **(found or {})}, channel),
    )
