"""Locating a recording while it is written: :func:`batch` with ``follow=True``.

The recording is watched by its reader's :class:`~daskloc.video._follow.Growing`
(which frames are complete). Its frames are cut into chunks of a fixed number of
frames from the first on; a chunk is planned once all its frames are complete, the
store's metadata lists it, and then it runs through the same window of chunk tasks as
any batch (:func:`~daskloc.pipeline._executors._execute`). The job's identity is that
of the recording, not of its current length (:data:`daskloc.metadata.FOLLOW_IDENTITY`),
so every chunk written so far stays valid as the recording grows, and a killed job
resumes from the store's chunks like any other.
"""

from __future__ import annotations

import logging
import time
import warnings

import numpy as np

from daskloc.pipeline._executors import _cluster_or_threads, _execute
from daskloc.pipeline._job import _Job, _writing
from daskloc.pipeline._plan import _Plan
from daskloc.stores import encode_frames
from daskloc.video import VideoError
from daskloc.video._follow import FOLLOW_CHUNK_FRAMES, follow_video

logger = logging.getLogger("daskloc.pipeline")

#: Seconds between two scans of a followed recording.
FOLLOW_POLL = 0.25
#: Seconds without a new frame after which a followed recording is taken as ended.
FOLLOW_IDLE = 60.0


class _FollowJob(_Job):
    """The one video of a followed batch: its chunks grow with the recording."""

    def __init__(self, grow, size, plan, store, params, *, channel, **kw):
        super().__init__(plan, store, params, **kw)
        self.grow = grow
        self.size = int(size)
        self.channel = channel
        self.frame_shape = [int(s) for s in plan.data.shape[1:]]
        self.digest = grow.first_frame_digest()
        self.planned = []
        self.n_frames = 0  # complete frames seen (and planned into chunks)
        self.ended = None  # why the recording is taken as ended, once it is
        self.base_source = dict(self.meta.source)
        self._shift = None  # a background array's shift, computed once
        self._describe()

    def _describe(self):
        """Set the metadata's source and chunking from the frames planned so far."""
        n = self.planned[-1][1] if self.planned else 0
        src = dict(self.base_source)
        src.update(
            path=self.grow.path, file_size=None, file_mtime_ns=None, n_frames=int(n),
            frames=encode_frames(np.arange(n, dtype=np.int64)) if n else None,
            n_selected=int(n), shape=[int(n), *self.frame_shape],
            frame_shape=self.frame_shape, original_shape=[int(n), *self.frame_shape],
            follow={"reader": self.grow.reader, "first_frame": self.digest},
            growing=self.ended is None, ended=self.ended,
        )
        self.meta.source = src
        self.meta.chunking = {"follow_frames": self.size,
                              "chunk_frames": [b - a for a, b in self.planned],
                              "chunks": [list(c) for c in self.planned]}
        self.identity = self.meta.job = self.meta.identity

    def check(self, overwrite):
        super().check(overwrite)
        old = self.old
        if old is not None and not overwrite:
            # the same recording: its chunks so far are this job's, and so is its end
            self.planned = [tuple(c) for c in old.chunks]
            if old.finished:
                self.ended = old.source.get("ended")
            self._describe()

    def start(self, overwrite):
        super().start(overwrite)
        self.todo, self.writer = [], None

    def extend(self, n_frames, final):
        """Plan the chunks the first ``n_frames`` complete frames fill; with ``final``
        also the last, shorter one. Returns the new chunks."""
        last = self.planned[-1][1] if self.planned else 0
        new = []
        while last + self.size <= n_frames:
            new.append((last, last + self.size))
            last += self.size
        if final and last < n_frames:
            new.append((last, n_frames))
        self.planned.extend(new)
        self.n_frames = max(self.n_frames, n_frames)
        if new:
            self._describe()
        return new

    def round(self, correction):
        """Make the chunks planned and not done this round's plan (their frames as a
        video), and list them in the metadata before any of them can land."""
        from daskloc.pipeline._executors import _ClientWriter

        todo = [c for c in self.planned if c not in self.done]
        if not todo:
            self.todo = []
            return
        groups = [np.arange(a, b, dtype=np.int64) for a, b in todo]
        video = self.grow.video(self.planned[-1][1], groups, self.channel)
        plan = _Plan(video)
        if correction is not None and correction.active:
            if self._shift is None:
                self._shift = (correction.shift(plan.data, lazy=False),)
            plan.data = correction.apply(plan.data, self._shift[0])
        self.plan = plan
        self.todo = plan.chunks
        self.writer = _ClientWriter(self.store, self.todo, self)
        self.graph = None
        self.write_meta()

    def write_meta(self, finished=False):
        self._describe()
        super().write_meta(finished=bool(finished) and self.ended is not None)


def _first_frame(grow, idle, poll):
    """Wait until the recording holds a complete frame; its first scan."""
    start = time.monotonic()
    while True:
        growth = grow.scan()
        if growth.n_frames:
            return growth
        if time.monotonic() - start >= idle:
            raise VideoError(
                f"{grow.path}: no complete frame after {idle:g} s of following: is the "
                "recording being written there? (follow waits idle seconds for the first "
                "frame)")
        time.sleep(poll)


def follow_frames_limit(frames):
    """The number of frames after which a followed recording ends (``frames=``).

    Parameters
    ----------
    frames : None, int, slice or range
        ``N`` (the first N frames), ``slice(None or 0, N)`` or ``range(N)``; None:
        no limit.

    Returns
    -------
    int or None

    Raises
    ------
    ValueError
        A selection that does not start at frame 0 or skips frames: a followed
        recording is located from its first frame, every frame.
    """
    if frames is None:
        return None
    if isinstance(frames, (int, np.integer)) and not isinstance(frames, bool):
        stop = int(frames)
    elif isinstance(frames, (slice, range)) and frames.start in (None, 0) and \
            frames.step in (None, 1) and frames.stop is not None:
        stop = int(frames.stop)
    elif isinstance(frames, list) and len(frames) == 1:  # the CLI's --frames N
        stop = int(frames[0])
    else:
        raise ValueError(
            f"frames={frames!r}: a followed recording is located from its first frame, "
            "every frame; give the number of frames after which to stop (frames=N, CLI "
            "--frames N) or leave it out")
    if stop < 1:
        raise ValueError(f"frames={frames!r}: the number of frames to follow must be "
                         "at least 1")
    return stop


def batch_follow(video, params, *, store, overwrite, client, progress, open_options,
                 correction_of, idle=FOLLOW_IDLE, poll=FOLLOW_POLL, on_error="raise",
                 engine="numba"):
    """Follow ``video`` (a path being written) into ``store``; see :func:`batch`.

    ``correction_of(plan)`` gives the job's :class:`~daskloc.correct.Correction` for a
    plan of its first frame. Returns the finished job.
    """
    options = dict(open_options or {})
    chunks = options.pop("chunks", "auto")
    channel = options.pop("channel", None)
    limit = follow_frames_limit(options.pop("frames", None))
    dims = options.pop("dims", None)
    if options:
        raise ValueError(f"open_options {sorted(options)} do not apply to a followed "
                         "recording (it takes chunks, channel, frames and dims)")
    size = FOLLOW_CHUNK_FRAMES if chunks in (None, "auto") else int(chunks)
    if size < 1:
        raise ValueError(f"chunks must be at least 1 frame per chunk, got {size}")
    grow = follow_video(video, dims=dims)
    first = _first_frame(grow, idle, poll)
    plan = _Plan(grow.video(first.n_frames, [np.zeros(1, np.int64)], channel))
    correction = correction_of(plan)
    job = _FollowJob(grow, size, plan, store, params, channel=channel,
                     correction=correction, on_error=on_error, engine=engine)
    with _writing([job], overwrite):
        if job.ended is not None and first.n_frames <= job.planned[-1][1] and job.complete:
            warnings.warn(
                f"{store.url}: nothing to do: it holds every frame of the recording "
                f"{grow.path} followed to its end ({job.planned[-1][1]} frames, ended: "
                f"{job.ended}); pass overwrite=True (CLI: --overwrite) to locate it anew",
                UserWarning, stacklevel=4)
            return job
        job.ended = None
        client = _cluster_or_threads([job], client)
        _follow_loop(job, params, client, progress, correction, first, limit, idle, poll)
    if job.error is not None:
        raise job.error
    return job


def _follow_loop(job, params, client, progress, correction, growth, limit, idle, poll):
    """Scan, plan and run chunks until the recording ends (or Ctrl-C), then the last."""
    last_new = time.monotonic()
    seen = 0
    interrupted = False
    while True:
        began = time.monotonic()
        try:
            if growth is None:
                growth = job.grow.scan()
            n = growth.n_frames if limit is None else min(growth.n_frames, limit)
            if n > seen:
                seen, last_new = n, time.monotonic()
            ended = job.ended
            if ended is None:
                if interrupted:
                    ended = "interrupted (Ctrl-C)"
                elif growth.ended:
                    ended = f"the writer's end marker ({growth.why})"
                elif limit is not None and n >= limit:
                    ended = f"{limit} frames, as asked (frames=)"
                elif time.monotonic() - last_new >= idle:
                    ended = f"no new frame for {idle:g} s (idle)"
            growth = None
            job.extend(n, final=ended is not None)
            job.round(correction)
            if job.todo:
                _execute([job], params, client, progress, fail_fast=True)
            if job.error is not None:
                return
            if ended is not None:
                job.ended = ended
                job.write_meta(finished=job.complete)
                return
            time.sleep(max(0.0, poll - (time.monotonic() - began)))
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop now (the store resumes)
                raise
            interrupted = True
            logger.warning("interrupted: locating the frames complete so far, then stopping")
