"""What a user checks about a recording before a long run: :func:`probe`."""

from __future__ import annotations

import numpy as np

from daskloc.video._api import open_video
from daskloc.video._calibration import Calibration
from daskloc.video._registry import positions, source_for

__all__ = ["WORKING_BYTES_PER_PIXEL", "probe", "probe_text"]

#: Working memory of locating one frame, in bytes per pixel (voxel) of the frame:
#: the float images of the band pass, the maxima and the refinement. Measured with
#: tracemalloc on 512 x 512 and 2048 x 2048 frames and 32 x 256 x 256 volumes (12 to 17
#: bytes per pixel), rounded up.
WORKING_BYTES_PER_PIXEL = 16


def probe(source, *, chunks="auto", channel=None, frames=None, dims=None, position=None,
          level=None):
    """Describe a recording the way a long job will read it, without reading its pixels.

    Parameters
    ----------
    source : object
        Anything :func:`open_video` opens (a path, an array, a pims reader ...).
    chunks, channel, frames, dims, position, level
        As for :func:`open_video`. For a file holding several positions and no
        ``position``, the first position is described and ``positions`` lists all.

    Returns
    -------
    dict
        JSON-ready values:

        - ``source`` (str) and ``format``: the source class's ``name`` and ``summary``;
        - ``positions``: for a multi-position file, ``[{"index", "name", "shape",
          "dims"}, ...]``, else None; ``position``: the one described (name) or None;
        - ``original_shape`` and ``original_dtype``: as the file stores them;
        - ``dims``, ``shape`` and ``dtype``: of the video a job locates (after
          ``channel`` and ``frames``);
        - ``n_frames``: frames in the source; ``n_selected``: frames selected;
        - ``calibration``: :meth:`Calibration.to_json` (µm per pixel per axis,
          frames per second, which metadata field), and ``calibration_text`` for
          people;
        - ``chunks``: ``{"n_chunks", "max_frames", "sizes"}`` (frames per chunk, the
          first 10) that ``chunks`` gives (``"auto"``: what a job would choose);
        - ``memory_per_chunk``: ``{"frames_bytes", "working_bytes", "decode_bytes",
          "total_bytes"}``: the chunk's frames as read, plus the working memory of
          locating one of its frames (:data:`WORKING_BYTES_PER_PIXEL` per pixel), plus,
          when a Zarr storage chunk holds more frames than the chunk, that storage
          chunk decoded whole (``attrs["storage_frames"]`` frames as stored; else 0),
          for the largest chunk: what one worker thread holds at most for one task.

    Raises
    ------
    FileNotFoundError, VideoError, ValueError, TypeError
        As :func:`open_video` raises them.

    Notes
    -----
    Only metadata is read (a TIFF's page headers, a movie's packet table, a Zarr
    array's metadata); nothing is decoded.

    Examples
    --------
    >>> import numpy as np
    >>> info = probe(np.zeros((100, 64, 80), np.uint16), chunks=32)
    >>> info["dims"], info["shape"], info["chunks"]["sizes"]
    (['frame', 'y', 'x'], [100, 64, 80], [32, 32, 32, 4])
    >>> info["memory_per_chunk"]["frames_bytes"] == 32 * 64 * 80 * 2
    True
    """
    found = positions(source) if position is None else None
    listed = None
    if found is not None:
        listed = []
        for p in found:
            one = open_video(p, level=level, channel=channel)
            listed.append({"index": p.index, "name": p.name,
                           "shape": [int(s) for s in one.shape], "dims": list(one.dims)})
        position = 0
    video = open_video(source, chunks=chunks, channel=channel, frames=frames, dims=dims,
                       position=position, level=level)
    attrs = dict(video.attrs)
    cls = source_for(source)
    sizes = [int(c) for c in video.data.chunks[0]]
    frame_pixels = int(np.prod([video.sizes[d] for d in video.dims
                                if d not in ("frame", "channel")], dtype=np.int64))
    frame_bytes = int(np.prod(video.shape[1:], dtype=np.int64)) * video.dtype.itemsize
    largest = max(sizes, default=0)
    # a task whose frames are part of a bigger storage chunk (Zarr) decodes all of it
    storage = attrs.get("storage_frames")
    decode_bytes = 0
    if storage and storage > largest and attrs.get("original_shape"):
        stored = np.dtype(attrs.get("original_dtype") or video.dtype).itemsize * int(
            np.prod(attrs["original_shape"], dtype=np.int64)) // max(
            int(attrs.get("n_frames") or 1), 1)
        decode_bytes = int(storage) * int(stored)
    calibration = Calibration.from_attrs(attrs)
    src = attrs.get("source")
    return {
        "source": str(src) if src is not None else type(source).__name__,
        "format": {"name": cls.name, "summary": cls.summary} if cls is not None else None,
        "positions": listed,
        "position": attrs.get("position"),
        "original_shape": _ints(attrs.get("original_shape")),
        "original_dtype": attrs.get("original_dtype"),
        "dims": list(video.dims),
        "shape": [int(s) for s in video.shape],
        "dtype": str(video.dtype),
        "n_frames": int(attrs.get("n_frames", video.sizes["frame"])),
        "n_selected": int(video.sizes["frame"]),
        "calibration": calibration.to_json(),
        "calibration_text": calibration.describe(),
        "chunks": {"n_chunks": len(sizes), "max_frames": largest, "sizes": sizes[:10]},
        "memory_per_chunk": {
            "frames_bytes": largest * frame_bytes,
            "working_bytes": frame_pixels * WORKING_BYTES_PER_PIXEL,
            "decode_bytes": decode_bytes,
            "total_bytes": (largest * frame_bytes + frame_pixels * WORKING_BYTES_PER_PIXEL
                            + decode_bytes),
        },
    }


def _ints(shape):
    return None if shape is None else [int(s) for s in shape]


def _mib(n):
    return f"{n / 2**20:.1f} MiB"


def probe_text(info):
    """The lines ``daskloc probe`` prints for a :func:`probe` result.

    Parameters
    ----------
    info : dict
        What :func:`probe` returned.

    Returns
    -------
    list of str
    """
    fmt = info.get("format") or {}
    lines = [f"source:      {info['source']}",
             f"format:      {fmt.get('summary') or fmt.get('name') or '?'}"]
    if info.get("positions"):
        lines.append(f"positions:   {len(info['positions'])} (each located as its own "
                     "video by daskloc locate; --position picks one)")
        for p in info["positions"][:20]:
            lines.append(f"  {p['index']}: {p['name']}  {' x '.join(map(str, p['shape']))} "
                         f"({', '.join(p['dims'])})")
        if len(info["positions"]) > 20:
            lines.append(f"  ... and {len(info['positions']) - 20} more (--json lists all)")
        lines.append(f"position:    {info['position']} (described below)")
    elif info.get("position") is not None:
        lines.append(f"position:    {info['position']}")
    shape = info.get("original_shape")
    if shape is not None:
        lines.append(f"stored:      {' x '.join(map(str, shape))} {info.get('original_dtype')}")
    kind = "3-D volumes" if "z" in info["dims"] else "2-D frames"
    lines.append(f"video:       {', '.join(info['dims'])} = "
                 f"{' x '.join(map(str, info['shape']))} {info['dtype']} ({kind})")
    lines.append(f"frames:      {info['n_selected']} of {info['n_frames']}")
    lines.append(f"calibration: {info['calibration_text']}")
    ch = info["chunks"]
    sizes = ", ".join(map(str, ch["sizes"])) + (", ..." if ch["n_chunks"] > 10 else "")
    lines.append(f"chunks:      {ch['n_chunks']} of at most {ch['max_frames']} frames "
                 f"({sizes})")
    mem = info["memory_per_chunk"]
    lines.append(f"memory:      {_mib(mem['total_bytes'])} per chunk task "
                 f"({_mib(mem['frames_bytes'])} of frames + {_mib(mem['working_bytes'])} "
                 "to locate one"
                 + (f" + {_mib(mem['decode_bytes'])} to decode a storage chunk"
                    if mem.get("decode_bytes") else "") + ")")
    return lines
