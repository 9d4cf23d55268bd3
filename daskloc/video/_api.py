"""The public entry point :func:`open_video`: frame selection, chunks, channel, dims."""

from __future__ import annotations

import numbers

import numpy as np

from daskloc.video._chunks import to_dataarray
from daskloc.video._registry import open_source

__all__ = ["open_video"]


def open_video(source, *, chunks="auto", channel=None, frames=None, dims=None, position=None,
               level=None):
    """Open a video or image stack (2-D frames or z-stacks) as a lazy DataArray chunked by frame.

    Parameters
    ----------
    source : str, path-like, list of paths, numpy/dask/zarr array or xarray.DataArray
        What to read:

        - a movie file (``.mov``, ``.mp4``, ``.m4v``, ``.avi``, ``.mkv``, ``.webm``),
          decoded with PyAV (FFmpeg);
        - a multi-page TIFF (``.tif``, ``.tiff``), read with tifffile, one frame per
          page (or along the single non-singleton leading axis of the TIFF series).
          A series whose axes (tifffile's ``series.axes``: ImageJ hyperstacks,
          OME-TIFF, TIFFs written by tifffile with ``metadata={'axes': ...}``) include
          ``Z`` gives z-stacks: ``T`` is the frame axis, ``Z`` the z axis, ``C`` (or
          ``S``, samples) the channel axis, e.g. ``TZYX``, ``TZCYX``; ``ZYX`` without
          ``T`` is one frame;
        - a Zeiss CZI file (``.czi``), read with pylibCZIrw (the ``[czi]`` extra):
          ``T`` is the frame axis, ``Z`` the z axis, ``C`` the channel axis (colour
          ``Bgr`` pixels give RGB channels), a file without ``T`` is one frame; each
          scene is a position (``position=``), its tiles composed into one image;
        - an image sequence: a glob pattern such as ``"dir/*.png"``, a list of paths or
          a directory holding PNG, TIFF, JPEG or BMP files, one frame per file, sorted
          naturally (``img2.png`` before ``img10.png``);
        - an OME-Zarr image (OME-NGFF 0.4 on Zarr v2, 0.5 on Zarr v3): a directory or
          an ``s3://`` URL of a group with ``multiscales`` metadata (read with fsspec
          and s3fs, the ``[s3]`` extra; credentials and endpoint from fsspec's
          configuration, which Dask workers need too: environment variables
          ``FSSPEC_S3_ENDPOINT_URL``, ``FSSPEC_S3_KEY``, ``FSSPEC_S3_SECRET`` or AWS's
          own, or ``fsspec.config.conf["s3"]`` in one process); axes ``t`` (frames),
          ``z``, ``c`` (channel), ``y``, ``x``, without ``t`` one frame; ``level``
          picks the resolution. A bioformats2raw container holds one image per
          position;
        - a Zarr array: a ``zarr.Array`` or a path ending in ``.zarr`` (or a directory
          holding a Zarr array);
        - an array with shape ``(frame, y, x)`` or ``(frame, y, x, channel)`` with at
          most 4 channels (a 2-D array is one frame), or any layout named with
          ``dims``: numpy, dask, or an xarray DataArray with dims ``frame``, ``y``,
          ``x`` (and optionally ``z`` and ``channel``), e.g. the result of an earlier
          ``open_video`` call, which is then re-chunked and/or sub-selected;
        - a pims reader (any ``pims.FramesSequence``: ``pims.open(path)``,
          ``pims.ImageSequence``, ``pims.TiffStack``, ``pims.PyAVReaderIndexed``,
          ``pims.PyAVReaderTimed``, ``pims.Cine``, ...) or a slice of one
          (``reader[10:50]``, frame numbers kept), read through pims: each chunk task
          reopens the reader from its class and the file it was opened from
          (:class:`daskloc.video.pims.PimsSource`); a reader with no file to reopen
          (in-memory, a file object) or a pims pipeline is refused.
    chunks : "auto" or int, default "auto"
        Frames per dask chunk along ``frame``. ``z``, ``y``, ``x`` and ``channel`` are
        always a single chunk: a chunk holds whole frames (whole volumes for
        z-stacks). An int gives chunks of exactly that many frames (the last may be
        shorter). ``"auto"`` chooses by the source:

        - movies: chunks start at keyframes. Whole groups of pictures (keyframe to
          keyframe) are gathered into chunks of about :data:`AUTO_FRAMES` (64) frames;
          a group is not split unless it is longer than :data:`AUTO_MOVIE_FRAMES`
          (256) frames, and then into near-equal pieces. A chunk task decodes from the
          keyframe at or before its first frame, so a chunk starting mid-group decodes
          (and throws away) the frames before it; chunks that start at keyframes never
          do. On bulk-water.mov (keyframes at 0, 238, 478) this gives chunks of 238
          and 242 frames, and reads the movie about twice as fast as chunks of 64
          (``benchmarks/bench_chunks.py``); an all-keyframe movie gets chunks of 64.
        - other sources: :data:`AUTO_FRAMES` (64) frames.

        Either way a chunk holds at most about :data:`AUTO_CHUNK_BYTES` (128 MiB) of
        output frames (fewer frames for big or ``float64`` frames; a frame of a
        z-stack counts its whole volume, z x y x x pixels), at least 1 frame.
        Larger chunks amortise each task's fixed costs; smaller ones give more
        parallelism and less memory per task.
    channel : None, int or {"grey", "gray"}, optional
        ``None`` keeps all channels of a colour source (a trailing ``channel`` dim).
        An int picks that channel (0 = red for RGB movies) and drops the ``channel``
        dim, keeping the source dtype. ``"grey"`` (or ``"gray"``) converts RGB or RGBA
        to grey as ``pims.as_grey`` does, 0.2125 R + 0.7154 G + 0.0721 B in
        ``float64`` on the source's scale (alpha is ignored). On a greyscale source
        ``channel=0`` and
        ``"grey"`` are accepted and change nothing (the source dtype is kept); any other
        channel is an error.
    frames : None, slice, range or sequence of int, optional
        Which frames to read, as frame numbers of the source (0-based; for an xarray
        input, values of its ``frame`` coordinate). ``None`` reads all frames.

        - ``slice(start, stop, step)``: ``start`` defaults to the first frame, ``stop``
          to one past the last; negative values count from the end, as in Python. The
          step must be positive. Unlike Python slicing, a ``stop`` beyond the end of the
          video is an error, not clipped: those frames do not exist.
        - a range or a sequence of frame numbers: strictly increasing (negative values
          count from the end); every frame must exist.
    dims : sequence of str, optional
        For a numpy, dask or Zarr array: the names of its axes, in the array's order,
        from ``"frame"`` (time), ``"z"``, ``"y"``, ``"x"``, ``"channel"``; ``"y"`` and
        ``"x"`` are required, and without ``"frame"`` the array is one frame. E.g.
        ``dims=("frame", "z", "y", "x")`` for a time series of z-stacks,
        ``dims=("z", "y", "x")`` for one z-stack, ``dims=("frame", "channel", "y",
        "x")`` for several channels (pick one with ``channel``). The result has the
        axes in the order of Returns whatever the array's order (transposed lazily).
        Without ``dims`` only the 2-D layouts above are read; a 4-D array whose last
        axis has more than 4 entries (a z or channel axis, not colour) or an array of
        5 or more axes is an error asking for ``dims``: its layout is never guessed.
        A file names its own axes (giving ``dims`` for one is an error), and so does
        a DataArray.
    position : int or str, optional
        For a file holding several positions (an OME-TIFF with several series, a CZI
        file with several scenes, an OME-Zarr container of several images): which one,
        by index (0-based) or name; required for such a file (the error lists them).
        :func:`daskloc.batch` given the file locates every position as its own video
        instead. ``open_video(Position(path, i))`` is the same as ``position=i``.
    level : int, optional
        For a multiscale image (OME-Zarr): the resolution level, 0 (the default) being
        the full resolution.

    Returns
    -------
    xarray.DataArray
        Named ``"video"``, dims ``("frame", "y", "x")`` or ``("frame", "y", "x",
        "channel")``, or for z-stacks ``("frame", "z", "y", "x")`` or ``("frame", "z",
        "y", "x", "channel")``, sizes in frames, planes and pixels. The ``frame`` coordinate (int64)
        holds the absolute frame numbers in the source, so a selection keeps its
        original numbering. The data is a dask array chunked along ``frame`` as
        ``chunks`` says.
        Dtype is the source's (``uint8`` for 8-bit movies and PNGs, ``uint16`` for 16-bit
        TIFFs), or ``float64`` after ``channel="grey"`` on a colour source.

        ``attrs``:

        - ``source`` (str): the path, glob pattern or directory, or a description such
          as ``"numpy array"``;
        - ``fps`` (float): frames per second, only when the source records it (movies,
          ImageJ TIFFs with a frame interval, OME ``TimeIncrement``, pims readers
          with a ``frame_rate``);
        - ``reader`` (str): for a pims reader, its class name;
        - ``pixel_size_z``, ``pixel_size_y``, ``pixel_size_x`` (float): µm per pixel
          along the axes the file calibrates (ImageJ resolution and ``spacing``, OME
          ``PhysicalSizeX/Y/Z``, OME-Zarr scales, CZI scaling) -- recorded, never
          applied: features stay in pixels and frames (:class:`Calibration` reads
          these attrs);
        - ``pixel_size_source``, ``fps_source`` (str): which metadata field each came
          from;
        - ``position`` (str) and ``position_index`` (int): for one position of a
          multi-position file;
        - ``original_shape`` (tuple of int): the full source shape, before frame
          selection and channel handling, e.g. ``(480, 424, 640, 3)``;
        - ``original_dtype`` (str): the source dtype, e.g. ``"uint8"``;
        - ``n_frames`` (int): number of frames in the source (the selection's length is
          ``result.sizes["frame"]``);
        - ``channel`` (int or str): only when ``channel`` was given;

    Raises
    ------
    FileNotFoundError
        The path does not exist, a glob pattern matches no file, or a directory holds
        no supported image.
    VideoError
        (a ``ValueError``) The file cannot be read as a video: unknown extension,
        corrupt or undecodable data, no video stream, image-sequence frames of different
        shapes or modes, an unsupported array layout.
    IndexError
        ``frames`` names frames that are not in the source; the message gives the valid
        range, e.g. ``frames 400:600 outside the video (480 frames: 0..479)``.
    ValueError
        ``chunks`` < 1, an invalid ``channel``, or a ``frames`` selection that is empty,
        not strictly increasing or has a non-positive step; ``dims`` with unknown or
        repeated names, without ``y`` or ``x``, of another length than the array's
        number of axes, or given for a file or a DataArray with other dims.
    TypeError
        ``source``, ``chunks``, ``frames`` or ``dims`` of an unsupported type.

    VideoDecodeError
        (a ``VideoError``) Not by ``open_video`` itself but when the array is computed,
        from the read task of a chunk of a file source whose frames cannot be read or
        decoded: damaged movie data (an FFmpeg error), a TIFF page or
        image file that is corrupt, truncated, deleted or changed since ``open_video``,
        a frame of the wrong shape. It names the file, the first frame that failed and
        the chunk's frames, and chains the original error (its text is in
        ``reason``). Every recompute of that chunk fails the same way; to get the
        frames that can be decoded, compute inside :func:`skip_undecodable`.

    Notes
    -----
    **Seek once per chunk.** Random access in compressed movies is expensive: an H.264
    decoder can only start at a keyframe, and keyframes can be hundreds of frames apart
    (238 in the bulk-water example). ``open_video`` demuxes the movie once on the client
    (reading packet headers, not decoding) to build a table of contents: the
    presentation timestamp of every frame and which frames are keyframes. Each chunk
    task then seeks once to the keyframe at or before its first frame, decodes forward
    and keeps only the frames it was asked for, so a chunk costs about what decoding
    from that keyframe to its last frame costs. Frames are identified by their
    timestamps, never by counting after a seek, and a seek that lands after the wanted
    keyframe (some AVI files) is detected and retried from an earlier point. When a
    chunk holds scattered frames (a list selection) and a keyframe lies between two of
    them, the task seeks again instead of decoding the gap. If the timestamps do not
    give the presentation order (H.264 with B-frames in AVI), frames are numbered by
    decode order from each keyframe instead.

    **Damaged files.** Only the frames and headers needed to build the table of
    contents are read here, so damage further into a file shows at compute time, as a
    :class:`VideoDecodeError` from the chunk holding it; chunks without damaged frames
    read normally. Inside :func:`skip_undecodable` the chunk reads fill frames that
    cannot be decoded with zeros and list them instead (a movie skips from a broken
    packet to the next keyframe, since the frames between are predicted from it; other
    sources skip exactly the frames that fail).

    Colour movies are converted to RGB (``uint8``, or ``uint16`` for more than 8 bits
    per component) the way PyAV/pims do; greyscale movies stay single-channel.

    **Which source.** The registry (:func:`daskloc.video.source_for`) asks each source
    class, built-in or registered through the ``daskloc.readers`` entry point group,
    whether it can open ``source``; the first that can opens it.

    Examples
    --------
    >>> from daskloc.video import open_video
    >>> import numpy as np
    >>> video = open_video(np.zeros((10, 4, 5), np.uint8), chunks=4, frames=slice(2, 9))
    >>> video.dims, video.shape, video.data.chunks[0]
    (('frame', 'y', 'x'), (7, 4, 5), (4, 3))
    >>> video.frame.values.tolist()
    [2, 3, 4, 5, 6, 7, 8]

    A time series of z-stacks (6 volumes of 5 planes of 4 x 3 pixels):

    >>> stacks = open_video(np.zeros((6, 5, 4, 3), np.uint16), dims=("frame", "z", "y", "x"),
    ...                     chunks=4)
    >>> stacks.dims, stacks.data.chunks
    (('frame', 'z', 'y', 'x'), ((4, 2), (5,), (4,), (3,)))
    """
    chunks = _check_chunks(chunks)
    channel = _check_channel(channel)
    src = open_source(source, dims=dims, position=position, level=level)
    positions = _resolve_frames(frames, src.labels)
    return to_dataarray(src, positions, chunks, channel)



def _check_chunks(chunks):
    if isinstance(chunks, str) and chunks == "auto":
        return chunks
    if isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral):
        raise TypeError(
            f"chunks must be a positive int (frames per chunk) or 'auto', got {chunks!r} "
            f"({type(chunks).__name__})"
        )
    if chunks < 1:
        raise ValueError(f"chunks must be at least 1 frame per chunk, got {chunks}")
    return int(chunks)


def _check_channel(channel):
    if channel is None:
        return None
    if isinstance(channel, str):
        if channel.lower() in ("grey", "gray"):
            return "grey"
        raise ValueError(
            f"channel must be None, an int or 'grey'/'gray', got {channel!r}"
        )
    if isinstance(channel, bool) or not isinstance(channel, numbers.Integral):
        raise TypeError(
            f"channel must be None, an int or 'grey'/'gray', got {channel!r} "
            f"({type(channel).__name__})"
        )
    return int(channel)


def _describe_labels(labels):
    n = len(labels)
    return f"({n} frame{'s' if n != 1 else ''}: {labels[0]}..{labels[-1]})"


def _resolve_frames(frames, labels):
    """Positions (int64 array, strictly increasing) of the selected frames in ``labels``.

    ``labels`` are the source's frame numbers, strictly increasing int64.
    """
    n = len(labels)
    first, last = int(labels[0]), int(labels[-1])
    end = last + 1
    if frames is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(frames, slice):
        step = 1 if frames.step is None else frames.step
        for name, v in (("start", frames.start), ("stop", frames.stop), ("step", step)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
                raise TypeError(f"frames slice {name} must be an int, got {v!r}")
        if step <= 0:
            raise ValueError(f"frames slice step must be positive, got {step}")
        start = first if frames.start is None else int(frames.start)
        stop = end if frames.stop is None else int(frames.stop)
        if start < 0:
            start += end
        if stop < 0:
            stop += end
        shown = f"{'' if frames.start is None else frames.start}:" + (
            "" if frames.stop is None else str(frames.stop)
        )
        if frames.step is not None:
            shown += f":{frames.step}"
        if start < first or start > last or stop > end:
            raise IndexError(f"frames {shown} outside the video {_describe_labels(labels)}")
        if stop <= start:
            raise ValueError(f"frames {shown} selects no frames {_describe_labels(labels)}")
        lo = np.searchsorted(labels, start, side="left")
        hi = np.searchsorted(labels, stop, side="left")
        positions = np.arange(lo, hi, dtype=np.int64)
        positions = positions[(labels[positions] - start) % step == 0]
        return positions
    if isinstance(frames, (numbers.Integral, str, bytes)):
        raise TypeError(
            f"frames must be None, a slice, a range or a sequence of frame numbers, got "
            f"{frames!r}; for a single frame use [{frames!r}]"
        )
    wanted = np.asarray(list(frames) if isinstance(frames, range) else frames)
    if wanted.ndim != 1:
        raise TypeError(
            f"frames must be a 1-D sequence of frame numbers, got shape {wanted.shape}"
        )
    if wanted.size == 0:
        raise ValueError("frames is empty: select at least one frame")
    if wanted.dtype == bool or not np.issubdtype(wanted.dtype, np.integer):
        raise TypeError(f"frames must hold integer frame numbers, got dtype {wanted.dtype}")
    wanted = wanted.astype(np.int64)
    wanted = np.where(wanted < 0, wanted + end, wanted)
    pos = np.searchsorted(labels, wanted)
    inside = (pos < n) & (labels[np.minimum(pos, n - 1)] == wanted)
    if not inside.all():
        bad = wanted[~inside]
        shown = ", ".join(str(int(b)) for b in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise IndexError(
            f"frames [{shown}] outside the video {_describe_labels(labels)}"
        )
    if np.any(np.diff(wanted) <= 0):
        raise ValueError(
            "frames must be strictly increasing (no repeats); sort them first, e.g. "
            "sorted(set(frames))"
        )
    return pos.astype(np.int64)


#: Frames per chunk when a video arrives as an in-memory (not dask) array.
DEFAULT_CHUNK_FRAMES = 64


def grey_video(video, purpose="locate needs grey frames", open_options=None):
    """A video as the grey ``(frame, [z,] y, x)`` DataArray every computation takes.

    Parameters
    ----------
    video : xarray.DataArray or anything :func:`open_video` opens
        A DataArray with dims ``frame, y, x`` or ``frame, z, y, x`` (any order) or a
        source to open.
    purpose : str
        What needs grey frames, for the message of a colour video.
    open_options : dict, optional
        Keyword arguments of :func:`open_video` when ``video`` is a source.

    Returns
    -------
    xarray.DataArray
        Dims ``("frame", "y", "x")`` or ``("frame", "z", "y", "x")``, in that order.

    Raises
    ------
    ValueError
        The video has a ``channel`` dim (pick one with ``channel=``) or other dims.
    """
    import xarray as xr

    if not isinstance(video, xr.DataArray):
        video = open_video(video, **(open_options or {}))
    if "channel" in video.dims:
        raise ValueError(
            f"the video has a 'channel' dimension (dims {video.dims}, shape {video.shape}); "
            f"{purpose}: pick a channel with channel=0 (CLI: --channel 0), 1 or 2, or "
            "convert colour to grey with channel='grey' (CLI: --channel grey) when opening "
            "it"
        )
    if set(video.dims) == {"frame", "z", "y", "x"}:
        return video.transpose("frame", "z", "y", "x")
    if set(video.dims) != {"frame", "y", "x"}:
        raise ValueError(
            f"the video must have dims ('frame', 'y', 'x') or ('frame', 'z', 'y', 'x'), "
            f"got {video.dims}; open it with daskloc.open_video"
        )
    return video.transpose("frame", "y", "x")


def frame_chunked(video):
    """The dask array of a ``(frame, [z,] y, x)`` DataArray, chunked along frame only.

    Parameters
    ----------
    video : xarray.DataArray
        As :func:`grey_video` returns it.

    Returns
    -------
    dask.array.Array
        Shape ``(frame, y, x)`` or ``(frame, z, y, x)``; an in-memory video becomes
        chunks of :data:`DEFAULT_CHUNK_FRAMES` frames; chunks along z, y or x are
        merged (lazily), so each chunk holds whole frames (whole volumes).
    """
    import dask.array as da

    data = video.data
    rest = tuple(range(1, data.ndim))
    if not isinstance(data, da.Array):
        data = da.from_array(np.asarray(data),
                             chunks=(DEFAULT_CHUNK_FRAMES,) + (-1,) * len(rest))
    if any(len(data.chunks[a]) > 1 for a in rest):
        data = data.rechunk({a: -1 for a in rest})  # frame chunks stay; lazy
    return data
