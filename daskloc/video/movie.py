"""Movies (``.mov``, ``.mp4``, ``.m4v``, ``.avi``, ``.mkv``, ``.webm``), decoded with PyAV.

Random access in compressed movies is expensive: an H.264 decoder can only start at a
keyframe. :class:`MovieSource` demuxes the movie once on the client (packet headers,
no decoding) into a :class:`MovieToc` (table of contents: every frame's presentation
timestamp and the keyframes); each chunk task then seeks once per run of frames to the
keyframe before it and decodes forward with a :class:`MovieReader`, which also handles
damaged data (see :func:`daskloc.video.skip_undecodable`).
"""

from __future__ import annotations

import bisect
import itertools
import os

import numpy as np

from daskloc.video._base import (
    AUTO_FRAMES,
    AUTO_MOVIE_FRAMES,
    Source,
    Unreadable,
    UnsupportedSourceError,
    VideoError,
    auto_frames,
    fixed_groups,
    reraise_fatal,
)
from daskloc.video._calibration import calibration_attrs

__all__ = ["MOVIE_EXTENSIONS", "MovieReader", "MovieSource", "MovieToc"]

#: Movie containers read through PyAV (FFmpeg), compared case-insensitively.
MOVIE_EXTENSIONS = (".mov", ".mp4", ".m4v", ".avi", ".mkv", ".webm")

#: How many frames :class:`MovieSource` decodes on the client to check that a movie's
#: timestamps give the presentation order (and to learn the frame shape).
_MOVIE_PROBE_FRAMES = 32


def _open_container(path):
    import av

    try:
        return av.open(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such file: {path!r}") from None
    except Exception as exc:
        raise UnsupportedSourceError(
            f"{path}: cannot open as a movie ({type(exc).__name__}: {exc})"
        ) from exc


def _ndarray_format(video_format):
    """PyAV ``to_ndarray`` format for a stream pixel format: grey or RGB, 8 or 16 bit."""
    name = video_format.name if video_format is not None else "yuv420p"
    try:
        bits = max(c.bits for c in video_format.components)
    except Exception:  # pragma: no cover - unusual formats
        bits = 8
    grey = name.startswith(("gray", "ya", "mono"))
    if grey:
        return "gray" if bits <= 8 else "gray16le"
    return "rgb24" if bits <= 8 else "rgb48le"


class MovieToc:
    """A movie's table of contents, built once on the client.

    ``mode == "pts"``: frame ``i`` is the frame with the ``i``-th smallest presentation
    timestamp (``frame_pts[i]``). ``mode == "count"``: frame ``i`` is the ``i``-th
    frame out of the decoder, counted from a keyframe whose position is its index in
    decode order (used when timestamps are missing, repeated or not in presentation
    order).
    """

    def __init__(self, packets, mode):
        self.mode = mode
        pts = [p[0] for p in packets]
        if mode == "pts":
            order = np.argsort(np.asarray(pts, dtype=np.int64), kind="stable")
            self.frame_pts = np.asarray(pts, dtype=np.int64)[order]
            position_of_packet = np.empty(len(packets), dtype=np.int64)
            position_of_packet[order] = np.arange(len(packets))
        else:
            self.frame_pts = None
            position_of_packet = np.arange(len(packets), dtype=np.int64)
        key = [i for i, p in enumerate(packets) if p[2]]
        kf_pos = position_of_packet[key] if key else np.empty(0, np.int64)
        order = np.argsort(kf_pos, kind="stable")
        self.kf_positions = kf_pos[order]
        self.kf_pts = [packets[key[i]][0] for i in order]
        self.kf_dts = [packets[key[i]][1] for i in order]
        self.first_packet_is_key = bool(packets[0][2])
        self.n = len(packets)

    def segments(self, positions):
        """Split a chunk's sorted positions into decode segments, one seek each.

        Returns a tuple of ``(seek_info, keys, positions, resume)``: ``seek_info`` is
        ``None`` (decode from the start of the file) or ``(kf_position, kf_pts,
        kf_dts)`` of the keyframe at or before the segment's first frame; ``keys``
        identify the frames to keep (presentation timestamps in pts mode, positions in
        count mode) and ``positions`` are their frame numbers (for messages). A new
        segment, i.e. a new seek, starts only where a keyframe lies beyond the frames
        already decoded. ``resume`` holds the ``seek_info`` of the keyframes after the
        segment's first frame up to its last one, where decoding can start again after
        an error (see :func:`skip_undecodable`); a normal read never uses them.
        """
        positions = np.asarray(positions, dtype=np.int64)
        j = np.searchsorted(self.kf_positions, positions, side="right") - 1
        kf_pos = np.where(j >= 0, self.kf_positions[np.maximum(j, 0)], -1)
        new = np.ones(len(positions), dtype=bool)
        new[1:] = kf_pos[1:] > positions[:-1] + 1
        starts = np.flatnonzero(new)
        stops = np.append(starts[1:], len(positions))
        keys = self.frame_pts[positions] if self.mode == "pts" else positions
        # keyframes strictly after each segment's first frame, up to its last frame
        inner_lo = np.searchsorted(self.kf_positions, positions[starts], side="right")
        inner_hi = np.searchsorted(self.kf_positions, positions[stops - 1], side="right")
        return tuple(
            (
                self._seek_info(int(j[a])),
                tuple(int(k) for k in keys[a:b]),
                tuple(int(p) for p in positions[a:b]),
                tuple(self._seek_info(int(r)) for r in range(lo, hi)),
            )
            for a, b, lo, hi in zip(starts, stops, inner_lo, inner_hi)
        )

    def gop_groups(self, positions, size, longest):
        """Chunks of ``positions`` (sorted) that start at keyframes where possible.

        Runs of positions sharing a keyframe (a group of pictures) are gathered into
        chunks of about ``size`` frames (a run is never split to fit: a chunk holding
        one run of up to ``longest`` frames is fine); a run longer than ``longest`` is
        split into near-equal pieces of at most ``longest`` frames. A short last run
        (under ``size // 8`` frames after the last keyframe) joins the chunk before it
        rather than making a chunk of its own.
        """
        positions = np.asarray(positions, dtype=np.int64)
        gop = np.searchsorted(self.kf_positions, positions, side="right")
        starts = np.flatnonzero(np.diff(gop, prepend=-1))
        stops = np.append(starts[1:], len(positions))
        groups, current = [], []
        for a, b in zip(starts, stops):
            run = positions[a:b].tolist()
            last_and_short = b == len(positions) and len(run) < size // 8
            if len(current) + len(run) <= size or (current and last_and_short):
                current.extend(run)
                continue
            if current:
                groups.append(np.asarray(current, dtype=np.int64))
            if len(run) <= longest:
                current = run
                continue
            pieces = np.array_split(np.asarray(run, dtype=np.int64), -(-len(run) // longest))
            groups.extend(pieces[:-1])
            current = pieces[-1].tolist()
        if current:
            groups.append(np.asarray(current, dtype=np.int64))
        return groups

    def _seek_info(self, j):
        if j < 0:
            return None
        pos = int(self.kf_positions[j])
        if pos == 0 and j == 0 and self.first_packet_is_key:
            return None  # the file starts here: no seek needed
        return (pos, self.kf_pts[j], self.kf_dts[j])


def _probe_order(path, stream_index, expected_pts):
    """Decode the first frames; True when their pts are the sorted packet pts."""
    container = _open_container(path)
    try:
        stream = container.streams.video[stream_index]
        got = []
        try:
            for frame in container.decode(stream):
                got.append(frame.pts)
                if len(got) >= len(expected_pts):
                    break
        except Exception as exc:  # damaged early: judge by the frames decoded before it
            reraise_fatal(exc)
            return bool(got) and got == list(expected_pts)[: len(got)]
    finally:
        container.close()
    return got == list(expected_pts)


def _movie_frames(spec, arg):
    """Reader: yield (index, frame[None]) for one chunk of a movie (see MovieToc).

    ``arg`` is the chunk's tuple of segments from :meth:`MovieToc.segments`. One
    container is opened for the chunk and reused for all its segments.

    When decoding fails in a segment, yields ``(slice(a, b), Unreadable(exc))`` for
    the wanted frames from the failure to the next keyframe of the segment (frames of
    that slice yielded before stay valid) and goes on by seeking to that keyframe;
    :func:`~daskloc.video._chunks.read_chunk` raises at the first such failure outside
    skip mode, which
    closes this generator.
    """
    path, stream_index, mode, fmt = spec
    reader = MovieReader(path, stream_index, mode, fmt)
    offset = 0
    try:
        for seek_info, keys, positions, resume in arg:
            start, info = 0, seek_info
            while start < len(keys):
                try:
                    for i, image in reader.segment(info, keys[start:], positions[start:]):
                        yield offset + start + i, image[None]
                    break
                except _SegmentFailed as failure:
                    k = start + failure.k
                    if k >= len(keys):  # pragma: no cover - failures name a wanted frame
                        break
                    # decoding restarts at the first keyframe after the failing frame:
                    # the frames before it may be predicted from the broken data
                    info = next((r for r in resume if r[0] > positions[k]), None)
                    stop = len(keys) if info is None else bisect.bisect_left(positions, info[0])
                    reader.close()  # a fresh decoder for what follows
                    yield slice(offset + k, offset + stop), Unreadable(failure.exc)
                    start = stop
            offset += len(keys)
    finally:
        reader.close()


class _Retry(Exception):
    """A seek landed somewhere unusable, or a frame did not come: try a safer way."""

    def __init__(self, message, ended=False):
        super().__init__(message)
        self.ended = ended  # the stream ended before the wanted frame


class _SegmentFailed(Exception):
    """Frames ``k``, ``k + 1``, ... of a segment cannot be decoded, because of ``exc``."""

    def __init__(self, k, exc):
        super().__init__(k, exc)
        self.k, self.exc = k, exc


class MovieReader:
    """Decodes segments of one movie file (lives inside one chunk task)."""

    def __init__(self, path, stream_index, mode, fmt):
        self.path, self.stream_index, self.mode, self.fmt = path, stream_index, mode, fmt
        self.container = None
        self.fresh = False  # container opened and not read from yet
        self.ended = None  # error of a decode from the start that hit the end of the file
        self.reformatter = None  # made at the first frame, used for every frame after

    def to_ndarray(self, frame):
        """``frame`` (an ``av.VideoFrame``) as a new array in the reader's format
        (``fmt``: e.g. ``"rgb24"`` gives (y, x, 3) uint8, ``"gray16le"`` (y, x) uint16).

        The same conversion as PyAV's ``frame.to_ndarray(format=fmt)`` (FFmpeg's swscale,
        its default interpolation; equal to the bit, tested), with one
        ``VideoReformatter`` for all the frames and one thread. ``to_ndarray`` makes a new
        reformatter for every frame: a new swscale context, which with PyAV's default
        ``threads=0`` also starts and joins a thread per core for each frame (strace: a
        ``clone3`` and hundreds of futex waits a frame). A worker runs one task at a
        time on one core, so one thread does the conversion. Measured on the bulk-water
        movie (640 x 424 yuvj420p to rgb24, 238-frame chunks in one thread): 3.5 ms a
        frame read and converted before, 2.1 ms with this.
        """
        if self.reformatter is None:
            from av.video.reformatter import VideoReformatter

            self.reformatter = VideoReformatter()
        return self.reformatter.reformat(frame, format=self.fmt, threads=1).to_ndarray()

    def close(self):
        if self.container is not None:
            self.container.close()
            self.container = None

    def _reopen(self):
        self.close()
        self.container = _open_container(self.path)
        self.fresh = True

    def segment(self, seek_info, keys, positions):
        """Yield (i, ndarray) for the segment's frames, ``i`` indexing ``keys``.

        Tries, in turn: seeking to the keyframe's pts, to its dts, and decoding from the
        start of the file. A frame may be yielded again by a later attempt (the caller
        overwrites by index).

        Raises
        ------
        _SegmentFailed
            With the index of the first frame not decoded: the decoder, the demuxer or a
            seek raised (not retried: the data is damaged), the file cannot be opened,
            or every attempt failed to deliver the frames (``exc`` is then a VideoError
            saying why). Frames yielded before stay valid.
        """
        if self.ended is not None:
            # decoding from the start already reached the end of the file before an
            # earlier (smaller) frame of this chunk: later frames cannot come either
            raise _SegmentFailed(0, self.ended)
        if seek_info is None:
            attempts = ["start"]
        elif seek_info[2] is not None:
            attempts = ["pts", "dts", "start"]
        else:
            attempts = ["pts", "start"]
        error = None
        done = 0  # frames 0..done-1 were yielded
        for how in attempts:
            try:
                if self.container is None or (how == "start" and not self.fresh):
                    self._reopen()
                for i, image in self._decode(seek_info, keys, positions, how):
                    yield i, image
                    done = max(done, i + 1)
                return
            except _Retry as exc:
                error = exc
            except _SegmentFailed:
                raise
            except Exception as exc:  # opening the file failed (deleted, replaced...)
                reraise_fatal(exc)
                raise _SegmentFailed(done, exc) from exc
        failure = VideoError(str(error))
        if error.ended and how == "start":
            self.ended = failure
        raise _SegmentFailed(done, failure) from error

    def _decode(self, seek_info, keys, positions, how):
        container = self.container
        stream = container.streams.video[self.stream_index]
        self.fresh = False
        mode = self.mode
        k = 0  # index of the next wanted frame
        last_pts = None
        sending = None  # the packet being decoded
        try:
            if how != "start":
                kf_pos, kf_pts, kf_dts = seek_info
                ts = kf_pts if how == "pts" else kf_dts
                container.seek(ts, stream=stream, backward=True, any_frame=False)
            packets = container.demux(stream)
            first = next((packet for packet in packets if packet.size), None)
            if first is None:
                raise _Retry(
                    f"no data for frame {positions[0]} (file truncated or changed since "
                    "open_video?)"
                )
            if how != "start":
                if mode == "pts":
                    # any keyframe at or before the wanted one will do: pts identify frames
                    if not first.is_keyframe or first.pts is None or first.pts > kf_pts:
                        raise _Retry(f"seeking missed the keyframe of frame {positions[0]}")
                elif not first.is_keyframe or first.pts != kf_pts or (
                    first.dts is not None and first.dts != kf_dts
                ):
                    # counting frames needs exactly the keyframe whose position is known
                    raise _Retry(f"seeking missed the keyframe at frame {kf_pos}")
            codec = stream.codec_context
            start_count = 0 if how == "start" else seek_info[0]
            count = start_count  # count mode: position of the next decoded frame
            for packet in itertools.chain([first], packets):
                if mode == "pts":
                    # A non-reference frame that is not wanted is needed neither for
                    # output nor as a reference: let the decoder skip it (about half the
                    # pre-roll of H.264 with B-frames). Frames are matched by pts, so
                    # this is safe.
                    skip = packet.pts is not None and packet.pts < keys[k]
                    codec.skip_frame = "NONREF" if skip else "DEFAULT"
                sending = packet
                decoded = stream.decode(packet)
                sending = None
                for frame in decoded:
                    if mode == "pts":
                        p = frame.pts
                        if p is None or (last_pts is not None and p <= last_pts):
                            raise _Retry(
                                "decoded frames have missing or non-increasing "
                                "timestamps; cannot identify frames"
                            )
                        last_pts = p
                        if p < keys[k]:
                            continue
                        if p > keys[k]:
                            raise _Retry(
                                f"frame {positions[k]} (timestamp {keys[k]}) was not decoded"
                            )
                    else:
                        if how != "start" and count == start_count and frame.pts != kf_pts:
                            raise _Retry(f"decoding did not start at frame {kf_pos}")
                        current = count
                        count += 1
                        if current < keys[k]:
                            continue
                    yield k, self.to_ndarray(frame)
                    k += 1
                    if k == len(keys):
                        return
        except _Retry:
            raise
        except Exception as exc:  # FFmpeg refused a packet, the demuxer or seek failed
            reraise_fatal(exc)
            if mode == "pts":
                yield from self._drain(stream, keys, k, last_pts, sending)
            raise _SegmentFailed(k, exc) from exc
        raise _Retry(
            f"the video ended before frame {positions[k]} could be decoded (file "
            "truncated, corrupt or changed since open_video?)",
            ended=True,
        )

    def _drain(self, stream, keys, k, last_pts, broken):
        """After an error (pts mode): the wanted frames the decoder finished before it.

        Flushing the decoder returns the frames it had decoded from the packets before
        the failing one and held back for reordering (e.g. the P-frame that B-frames
        sent later are predicted from). Those depend only on packets that decoded
        without error, so they are exact; they are kept when their timestamp is wanted,
        except the frame of the broken packet itself (it may have been half decoded)
        and any frame FFmpeg flags as corrupt.
        """
        wanted = {key: i for i, key in enumerate(keys[k:], start=k)}
        broken_pts = None if broken is None else broken.pts
        try:
            stream.codec_context.skip_frame = "DEFAULT"
            for frame in stream.decode(None):
                p = frame.pts
                if p is None or (last_pts is not None and p <= last_pts):
                    return  # cannot identify frames any more
                last_pts = p
                i = wanted.get(p)
                if i is not None and p != broken_pts and not frame.is_corrupt:
                    yield i, self.to_ndarray(frame)
        except Exception as exc:  # the decoder may fail again: keep what came
            reraise_fatal(exc)


class MovieSource(Source):
    """A movie file, decoded with PyAV (FFmpeg); its first video stream.

    Parameters
    ----------
    source : str or path-like
        The movie file.

    Attributes
    ----------
    toc : MovieToc
        The table of contents built when the movie is opened.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    UnsupportedSourceError
        FFmpeg cannot open it, or it has no video stream (a ``VideoError``).
    VideoError
        Its packets cannot be read, it holds no frames, or its first frame cannot be
        decoded.

    Notes
    -----
    Colour movies are converted to RGB (``uint8``, or ``uint16`` for more than 8 bits
    per component) the way PyAV/pims do; greyscale movies stay single-channel.
    ``attrs["fps"]`` is the stream's average (or guessed) frame rate
    (``fps_source`` says which); a movie records no pixel size.
    """

    name = "movie"
    suffixes = MOVIE_EXTENSIONS
    summary = "movies (" + ", ".join(MOVIE_EXTENSIONS) + ")"
    priority = 30
    read = staticmethod(_movie_frames)

    def __init__(self, source):
        path = os.fspath(source)
        self.path = path
        container = _open_container(path)
        try:
            if not container.streams.video:
                raise UnsupportedSourceError(f"{path}: has no video stream")
            stream = container.streams.video[0]
            self.stream_index = 0
            rate, field = stream.average_rate, "the video stream's average_rate"
            if not rate:
                rate, field = stream.guessed_rate, "the video stream's guessed_rate"
            fps = float(rate) if rate else None
            fmt = _ndarray_format(stream.codec_context.format)
            packets = []
            try:
                for packet in container.demux(stream):
                    if packet.size:
                        packets.append((packet.pts, packet.dts, bool(packet.is_keyframe)))
            except Exception as exc:
                raise VideoError(
                    f"{path}: cannot read the movie's packets ({type(exc).__name__}: {exc})"
                ) from exc
        finally:
            container.close()
        if not packets:
            raise VideoError(f"{path}: the video stream holds no frames")
        pts = [p[0] for p in packets]
        mode = "pts"
        if any(p is None for p in pts) or len(set(pts)) != len(pts):
            mode = "count"
        else:
            probe = sorted(pts)[: _MOVIE_PROBE_FRAMES]
            if not _probe_order(path, 0, probe):
                mode = "count"
        self.toc = MovieToc(packets, mode)
        self.fmt = fmt
        # decode one frame through the chunk reader itself: checks the file decodes and
        # gives the exact frame shape
        frames = _movie_frames(self._spec(), self.toc.segments([0]))
        try:
            first = next(frames)[1]
        finally:
            frames.close()
        if type(first) is Unreadable:
            exc = first.exc
            raise VideoError(
                f"{path}: cannot decode frame 0, the first frame ({type(exc).__name__}: "
                f"{exc}); the file is damaged at its start or not a movie PyAV can decode"
            ) from exc
        first = first[0]
        self.frame_shape = tuple(int(s) for s in first.shape)
        self.dtype = first.dtype
        n = self.toc.n
        self.labels = np.arange(n, dtype=np.int64)
        self.attrs = {
            "source": str(path),
            "original_shape": (n,) + self.frame_shape,
            "original_dtype": str(self.dtype),
            "n_frames": int(n),
            **calibration_attrs(fps=fps, source={"fps": field}),
        }

    def _spec(self):
        return (self.path, self.stream_index, self.toc.mode, self.fmt)

    def spec(self):
        """``(path, stream index, "pts" or "count", ndarray pixel format)``."""
        return self._spec()

    def chunk_args(self, positions):
        """The chunk's decode segments (:meth:`MovieToc.segments`)."""
        return self.toc.segments(positions)

    def chunk_groups(self, positions, chunks, out_shape, out_dtype):
        """For ``"auto"``: chunks of whole groups of pictures (:meth:`MovieToc.gop_groups`)."""
        if chunks != "auto":
            return fixed_groups(positions, chunks)
        return self.toc.gop_groups(positions, auto_frames(AUTO_FRAMES, out_shape, out_dtype),
                                   auto_frames(AUTO_MOVIE_FRAMES, out_shape, out_dtype))
