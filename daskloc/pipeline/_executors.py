"""Running a batch's chunks: one bounded window of chunk tasks, round-robin over the
videos, on a distributed client or a local thread pool; the client-side writer of
stores that take one writer (in frame order where they must).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import dask
import dask.local
from dask.delayed import delayed

from daskloc.locate import add_no_feature_frames, no_feature_message, nonfinite_message
from daskloc.pipeline._errors import UndecodableChunksError, _append_chunk
from daskloc.pipeline._graph import UNSHIPPABLE, _GraphRef, pickling_error
from daskloc.pipeline._tasks import _chunk_task, _chunk_task_skipping
from daskloc.video import VideoDecodeError

#: Chunks kept in flight per worker thread by :func:`batch`.
IN_FLIGHT_PER_THREAD = 2
#: Minimum seconds between two progress updates of the store metadata during a batch.
METADATA_INTERVAL = 1.0
#: After a chunk error on a cluster, how long to let the chunks in flight finish before
#: the error is raised (they are cancelled after that).
DRAIN_SECONDS = 120


class _ClientWriter:
    """Appends finished chunks on the client, for stores that allow a single writer.

    With ``store.ordered_appends`` a chunk is held until every chunk before it (in frame
    order, among those to do) is written. Summaries of chunks already written by the
    workers pass straight through.
    """

    def __init__(self, store, todo, job=None):
        self.store = store
        self.job = job
        self.order = [(c.start, c.stop) for c in todo] if store.ordered_appends else None
        self.next = 0
        self.held = {}
        self.abandoned = False
        self.limit = None if self.order is None else len(self.order)

    def __call__(self, summary):
        """Take a finished chunk's summary; return the summaries of chunks now written."""
        if "features" not in summary:
            return [summary]
        if self.order is None:
            return [self._append(summary)]
        if self.abandoned:  # a chunk before it failed: it can never be appended in order
            return []
        chunk = (summary["start"], summary["stop"])
        if self.order.index(chunk) >= self.limit:  # after a failed chunk: never appended
            return []
        self.held[chunk] = summary
        written = []
        while self.next < self.limit and self.order[self.next] in self.held:
            written.append(self._append(self.held.pop(self.order[self.next])))
            self.next += 1
        return written

    def abandon(self, chunk=None):
        """The video failed: drop the chunks held for ordered appends (a rerun redoes them).

        With ``chunk`` (one that failed): only the chunks from it on are dropped; the
        ones before it are still appended when they arrive."""
        if chunk is None or self.order is None:
            self.abandoned = True
            self.held.clear()
            return
        self.limit = min(self.limit, self.order.index(chunk))
        for c in [c for c in self.held if self.order.index(c) >= self.limit]:
            del self.held[c]

    def _append(self, summary):
        if self.job is not None and self.job.note_skipped(summary):
            # This store keeps skipped frames only in the metadata: list them before the
            # chunk lands, so the chunk's identity can always be checked.
            self.job.write_meta()
        _append_chunk(self.store, summary["start"], summary["stop"], summary.pop("features"),
                      summary["chunk_id"], summary.get("skipped", ()))
        return summary


def _local_threads():
    if dask.config.get("scheduler", None) in ("sync", "synchronous", "single-threaded"):
        return 1
    return int(dask.config.get("num_workers", None) or os.cpu_count() or 1)


#: ``client=`` value meaning "this process's threads, whatever the default client".
LOCAL_THREADS = "local-threads"


def _find_client(client):
    if isinstance(client, str) and client == LOCAL_THREADS:
        return None
    if client is not None:
        return client
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def _client_threads(client):
    try:
        return max(1, sum(client.nthreads().values()))
    except Exception:  # noqa: BLE001 - a scheduler without workers yet, or a hiccup
        return 1


def _interleave(jobs):
    """Chunks to do, round-robin over the videos: one chunk of each in turn.

    Lazy: a video that failed meanwhile is skipped from then on.
    """
    queues = [(job, iter(job.todo)) for job in jobs if job.todo]
    while queues:
        alive = []
        for job, it in queues:
            if job.error is not None or job.halted:
                continue
            c = next(it, None)
            if c is None:
                continue
            yield job, c
            alive.append((job, it))
        queues = alive


def _execute(jobs, params, client, progress, fail_fast):
    """Run the chunks to do of every job in one bounded window; record what lands.

    With ``fail_fast`` the first chunk error is raised (one video); otherwise it is kept
    on its job (``job.error``), that job's remaining chunks are skipped and the others
    go on.
    """
    total = sum(len(j.planned) for j in jobs)
    counts = {"done": sum(len(j.done) for j in jobs),
              "features": sum(j.n_features for j in jobs)}
    nonfinite = {}  # job -> [NaN/inf pixels, frames holding them], chunks of this run
    no_features = {}  # job -> frames without features (add_no_feature_frames), this run
    if progress is not None:
        progress(counts["done"], total, counts["features"])
    if not any(j.todo for j in jobs):
        return
    for job in jobs:
        if job.todo:
            job.graph = job.plan.block_graph()
            job.last_meta = time.monotonic()

    def task(item):
        job, c = item
        if job.on_error == "skip":
            return delayed(_chunk_task_skipping, pure=False)(
                _GraphRef(*job.graph.subgraph(c.index)), c.frames, job.store, c.start,
                c.stop, params, job.columns, job.identity
            )
        return delayed(_chunk_task, pure=False)(
            job.graph.block(c.index), c.frames, job.store, c.start, c.stop, params,
            job.columns, job.chunk_id(c)
        )

    def on_error(item, exc):
        job, c = item
        if isinstance(exc, VideoDecodeError):
            # Damaged frames: this chunk fails (recorded with its reason), the others go
            # on. An ordered store cannot take the chunks after it: they wait for a rerun.
            job.failed[(c.start, c.stop)] = (
                f"{exc.path}: frame {exc.frame}: {exc.reason}" if hasattr(exc, "reason")
                else str(exc))
            if job.store.ordered_appends:
                job.halted = True
                job.writer.abandon((c.start, c.stop))
            return
        if fail_fast:
            raise exc
        if job.error is None:
            job.error = exc
        job.writer.abandon()

    def record(item, summary):
        job = item[0]
        try:
            written = job.writer(summary)
        except Exception as exc:  # the client's append of this video failed
            on_error(item, exc)
            return
        for w in written:
            job.done.add((w["start"], w["stop"]))
            job.failed.pop((w["start"], w["stop"]), None)
            if job.on_error == "skip":
                job.note_skipped(w)
            job.n_features += w["n_rows"]
            if w.get("no_features"):
                add_no_feature_frames(no_features.setdefault(job, {}), w["no_features"])
            if w.get("n_nonfinite"):
                bad = nonfinite.setdefault(job, [0, 0])
                bad[0] += w["n_nonfinite"]
                bad[1] += w["n_nonfinite_frames"]
            counts["done"] += 1
            counts["features"] += w["n_rows"]
            if progress is not None:
                progress(counts["done"], total, counts["features"])
        if time.monotonic() - job.last_meta >= METADATA_INTERVAL:
            job.write_meta()
            job.last_meta = time.monotonic()

    def backlog():
        return sum(len(j.writer.held) for j in jobs)

    queue = _interleave(jobs)
    cl = _find_client(client)
    try:
        if cl is not None:
            _run_distributed(cl, queue, task, record, on_error, backlog)
        else:
            _run_local(queue, task, record, on_error, backlog)
    except BaseException:
        # Chunks still running when the error came may have landed since: the
        # store's chunks are the authority, record them. Best effort: the store may
        # refuse writes (a full disk), and the error to report is the first one.
        for job in jobs:
            try:
                job.refresh()
                job.write_meta(finished=job.complete)
            except Exception:  # noqa: BLE001
                pass
        raise
    for job in jobs:
        job.write_meta(finished=job.complete)
        if job.failed and job.error is None:
            job.error = UndecodableChunksError(job)
    import warnings

    for job, summary in no_features.items():  # one summary per video, not one per frame
        where = "daskloc.batch" + (f" ({job.name})" if job.name is not None else "")
        warnings.warn(no_feature_message(summary["frames"], counts=summary["counts"],
                                         where=where),
                      UserWarning, stacklevel=4)
    if nonfinite:  # NaN pixels the chunk tasks filled: one warning for the whole job
        n, f = (sum(v[i] for v in nonfinite.values()) for i in (0, 1))
        per_video = [(j.name, *nonfinite[j]) for j in jobs if j in nonfinite and j.name is not None]
        warnings.warn(nonfinite_message(n, f, where="daskloc.batch", per_video=per_video),
                      UserWarning, stacklevel=4)  # _execute -> _batch_one/_many -> batch


def _cluster_or_threads(jobs, client):
    """``client``, or :data:`LOCAL_THREADS` when the cluster's workers cannot be sent
    the jobs' chunks (their graph cannot be pickled: :func:`pickling_error`), with one
    warning saying so. Called before anything is computed for the jobs (a background
    is computed on the same cluster)."""
    if _find_client(client) is None:
        return client
    for job in jobs:
        if job.todo:
            why = pickling_error(job.plan.block_graph(), job.todo[0].index)
            if why is not None:
                import warnings

                warnings.warn(
                    UNSHIPPABLE.format(why=why) + ": its chunks run in this process's "
                    "threads instead. daskloc.open_video(PATH) opens the file again in "
                    "each worker", UserWarning, stacklevel=4)  # -> _batch_* -> batch
                return LOCAL_THREADS
    return client


def _run_distributed(client, queue, task, record, on_error, backlog):
    from distributed import as_completed

    window = IN_FLIGHT_PER_THREAD * _client_threads(client)
    futures = {}
    pending = None

    def submit():
        item = next(queue, None)
        if item is None:
            return False
        fut = client.compute(task(item), optimize_graph=False)
        futures[fut] = item
        if pending is not None:
            pending.add(fut)
        return True

    for _ in range(window):
        if not submit():
            break
    pending = as_completed(list(futures), loop=client.loop)
    try:
        for n, fut in enumerate(pending, 1):
            item = futures.pop(fut)
            try:
                summary = fut.result()
            except Exception as exc:  # noqa: BLE001 - on_error decides (raise or record)
                fut.release()
                on_error(item, exc)
            else:
                fut.release()
                record(item, summary)
            if n % 32 == 0:
                window = IN_FLIGHT_PER_THREAD * _client_threads(client)
            # Chunks held by the client for an ordered store count against the window.
            while len(futures) + backlog() < window:
                if not submit():
                    break
    except Exception:
        # A chunk failed: let the chunks in flight finish (at most the window) before
        # the error goes up, so the store's chunks are final when the caller records
        # them; a cancelled task that is already running would land later otherwise.
        deadline = time.monotonic() + DRAIN_SECONDS
        for fut in list(futures):
            try:
                fut.exception(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - timed out (cancelled below) or lost
                pass
        raise
    finally:
        if futures:
            client.cancel(list(futures))


def _run_local(queue, task, record, on_error, backlog):
    threads = _local_threads()
    window = IN_FLIGHT_PER_THREAD * threads

    def run(item):
        # The sync scheduler as a function: named ("sync"), dask would import
        # distributed to look for a client (half a second of a small job's start-up).
        return dask.compute(task(item), scheduler=dask.local.get_sync, optimize_graph=False)[0]

    with ThreadPoolExecutor(threads, thread_name_prefix="daskloc-batch") as pool:
        pending = {}

        order = {}

        def submit():
            item = next(queue, None)
            if item is None:
                return False
            fut = pool.submit(run, item)
            pending[fut] = item
            order[fut] = len(order)
            return True

        for _ in range(window):
            if not submit():
                break
        try:
            while pending:
                finished, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                # Chunks that finished together are taken in submission order, and the
                # good ones are recorded before any error is handled (on_error may
                # raise): work that is done is never thrown away.
                errors = []
                for fut in sorted(finished, key=order.pop):
                    item = pending.pop(fut)
                    exc = fut.exception()
                    if exc is not None:
                        errors.append((item, exc))
                        continue
                    record(item, fut.result())
                for item, exc in errors:
                    on_error(item, exc)
                while len(pending) + backlog() < window:
                    if not submit():
                        break
        finally:
            for fut in pending:
                fut.cancel()
