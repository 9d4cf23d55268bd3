"""One video of a batch as a job: its metadata and identity, the check against what
the store holds (mismatch, foreign chunks), clear or resume, progress metadata; and
taking every job's table for writing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import platform
import sys

from daskloc._version import __version__
from daskloc.metadata import ChunkVerifier, JobMetadata, MetadataError, chunk_id, utc_now
from daskloc.pipeline._errors import _frames_text, _write_metadata
from daskloc.pipeline._executors import _ClientWriter
from daskloc.pipeline._plan import _Chunk
from daskloc.schema import column
from daskloc.stores import StoreMismatchError

#: The logger of the whole pipeline (its name as when it was one module).
logger = logging.getLogger("daskloc.pipeline")


def _versions():
    out = {"python": platform.python_version()}
    for name in ("dask", "distributed", "numpy", "pandas", "pyarrow", "xarray"):
        mod = sys.modules.get(name)
        if mod is not None:
            out[name] = getattr(mod, "__version__", None)
            continue
        try:  # the installed version, without importing the package (distributed: 0.5 s)
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


def _check_same_job(store, old, new):
    """Raise StoreMismatchError naming everything that differs between two jobs."""
    diffs = old.diff(new)
    if diffs:
        lines = "".join(f"\n  {name}: {was} -> {asked}" for name, was, asked in diffs)
        raise StoreMismatchError(
            f"store {store.url} holds another job; what differs (stored -> asked):{lines}"
            "\nto replace it pass overwrite=True (CLI: --overwrite), or choose another "
            "store (CLI: --out)"
        )


class _Job:
    """One video of a batch: its plan, its table in the store and its progress."""

    def __init__(self, plan, store, params, name=None, correction=None, on_error="raise",
                 engine="numba"):
        self.plan = plan
        #: "raise" or "skip": what a chunk with frames that cannot be decoded does.
        self.on_error = on_error
        #: {(start, stop): reason} of the chunks that could not be decoded in this run.
        self.failed = {}
        #: True once an ordered store cannot take this video's later chunks.
        self.halted = False
        self.correction = correction
        self.store = store
        self.name = name
        self.planned = [(c.start, c.stop) for c in plan.chunks]
        #: The feature columns of every chunk (from the video's dims and the parameters;
        #: ValueError here when they do not fit together).
        self.columns = plan.columns(params)
        self.meta = JobMetadata(
            params=dict(params, **(correction.identity if correction else {})),
            source=plan.source(),
            chunking={
                "chunk_frames": [len(c.frames) for c in plan.chunks],
                "chunks": [list(c) for c in self.planned],
            },
            dims=list(plan.dims),
            columns={c: column(c).dtype for c in (*self.columns, "frame")},
            options={"on_error": on_error, "engine": engine},
            store={"backend": store.backend},
            video=name,
            daskloc_version=__version__,
            created=utc_now(),
            versions=_versions(),
        )
        #: The job's identity: every chunk it writes carries chunk_id(identity, ...).
        self.identity = self.meta.job = self.meta.identity
        self.old = None
        self.damaged = None
        self.marks = None  # what the store holds about each chunk, read by verify()
        self.done = set()
        self.n_features = 0
        self.todo = []
        self.writer = None
        self.graph = None
        self.error = None
        self.lease = None
        self.last_meta = 0.0

    def note_skipped(self, summary):
        """Make the metadata list the frames a chunk skipped (``on_error="skip"``),
        replacing what an earlier run listed for it (none: its entry goes).

        Returns
        -------
        bool
            True if the metadata changed.
        """
        key = [summary["start"], summary["stop"]]
        frames = sorted(int(f) for f in summary.get("skipped") or ())
        entries = [e for e in self.meta.skipped if e[:2] != key]
        if frames:
            entries.append(key + [frames])
        entries.sort()
        changed = entries != self.meta.skipped
        self.meta.skipped = entries
        reasons = summary.get("skip_reasons")
        if reasons:
            self.meta.skip_reasons.update(
                {str(f): r for f, r in reasons.items()})
        return changed

    def chunk_id(self, c):
        """The identity of this job's chunk ``c`` (a _Chunk or (start, stop))."""
        start, stop = (c.start, c.stop) if isinstance(c, _Chunk) else c
        return chunk_id(self.identity, start, stop)

    def check(self, overwrite):
        """Read the store's metadata; raise StoreMismatchError for another job.

        Damaged metadata is an error naming the fix, unless ``overwrite``."""
        try:
            self.old = self.store.metadata()
        except MetadataError as exc:
            if not overwrite:
                raise
            self.old, self.damaged = None, exc
        if self.old is not None and not overwrite:
            _check_same_job(self.store, self.old, self.meta)
            # Frames skipped by an earlier run are part of its chunks' identities.
            self.meta.skipped = list(self.old.skipped)
            self.meta.skip_reasons = dict(self.old.skip_reasons)

    def verify(self, overwrite):
        """Which stored chunks are this job's; refuse chunks of another job (unless
        ``overwrite``): the identity of each chunk, not the metadata, decides."""
        st = self.store
        if overwrite:
            return
        present = st.complete_chunks()
        if not present:
            return
        if self.old is not None and self.old.legacy:
            raise StoreMismatchError(
                f"store {st.url} was written by daskloc {self.old.daskloc_version} "
                "before chunks carried their job's identity, so its chunks cannot be "
                "checked to be this job's: it can still be read (read_features, daskloc "
                "info, export), but not resumed; pass overwrite=True (CLI: --overwrite) to "
                "locate it again, or choose another --out"
            )
        marks = self.marks = st.chunk_ids(present)
        verifier = ChunkVerifier(self.meta)
        foreign = [c for c in present if verifier.reason(c, marks.get(c)) is not None]
        if foreign:
            shown = ", ".join(f"[{a}, {b})" for a, b in foreign[:3])
            more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
            why = ("its metadata is missing" if self.old is None else
                   "its metadata says this job, but the chunks' own identities disagree "
                   "(the metadata was edited or replaced)")
            raise StoreMismatchError(
                f"store {st.url} holds {len(foreign)} chunks written by another job (other "
                f"parameters, source or chunking: frames {shown}{more}); {why}. Nothing "
                "was changed. Pass overwrite=True (CLI: --overwrite) to replace them, or "
                "choose another --out"
            )
        partial = sorted(c for c in present
                         if (marks[c].skipped if marks[c].skipped is not None
                             else verifier.skipped.get(c)))
        if partial and self.on_error != "skip":
            frames = sorted({f for c in partial for f in (
                marks[c].skipped if marks[c].skipped is not None else verifier.skipped[c])})
            raise StoreMismatchError(
                f"store {st.url} was written with on_error='skip': {len(frames)} frames "
                f"that could not be decoded were left out ({_frames_text(frames)}); resume "
                "with on_error='skip' (CLI: --on-error skip) to keep them out, or pass "
                "overwrite=True (CLI: --overwrite) to try every frame again"
            )

    def start(self, overwrite):
        """Clear (``overwrite``) or resume: find the chunks done, write the metadata."""
        st = self.store
        if overwrite and (self.old is not None or self.damaged is not None
                          or st.complete_chunks()):
            st.clear()  # checked beforehand (check_clear) for every job of the batch
        elif self.old is not None:
            self.meta.created = self.old.created or self.meta.created
        st.remove_temporary()
        # Identities read by verify() (under the lease): reused where reading them again
        # costs a request per chunk and nothing since could change them (Parquet, SQL;
        # an HDF5 repair in remove_temporary can drop chunks).
        if self.marks is not None and not overwrite and st.concurrent_writers:
            verifier = ChunkVerifier(self.meta)
            self.done = {c for c, m in self.marks.items() if verifier.accepts(c, m)}
            counts = [self.marks[c].n_rows for c in self.done]
            self.n_features = (sum(counts) if None not in counts
                               else st.n_rows(sorted(self.done)))
        else:
            self.done = set(st.valid_chunks(self.meta)) & set(self.planned)
            self.n_features = st.n_rows(sorted(self.done))
        self.write_meta(finished=len(self.done) == len(self.planned))
        self.todo = [c for c in self.plan.chunks if (c.start, c.stop) not in self.done]
        self.writer = _ClientWriter(st, self.todo, self)

    def write_meta(self, finished=False):
        if self.lease is not None:
            self.lease.check()  # another writer took the store over: stop writing
        self.meta.failed_chunks = [{"start": a, "stop": b, "error": why}
                                   for (a, b), why in sorted(self.failed.items())]
        self.meta.complete_chunks = [list(c) for c in sorted(self.done)]
        self.meta.n_features = int(self.n_features)
        self.meta.finished = bool(finished)
        self.meta.updated = utc_now()
        _write_metadata(self.store, self.meta.to_json())

    def refresh(self):
        """Take the store's chunks as the authority (chunks in flight may have landed)."""
        self.done |= set(self.store.valid_chunks(self.meta)) & set(self.planned)
        self.n_features = self.store.n_rows(sorted(self.done))

    @property
    def complete(self):
        return len(self.done) == len(self.planned)


@contextlib.contextmanager
def _writing(jobs, overwrite):
    """Take every job's table for writing, or change nothing.

    In order, for all jobs before the next step: check each location can be written
    (``prepare``), take each table's lease (one writer per table: a second batch is
    refused at once, naming the first), read and check the metadata and the chunks'
    identities against the job (a store of another job is refused unless
    ``overwrite``), with ``overwrite`` check that every table can be cleared without
    touching anything daskloc did not write, and only then clear or resume each. When
    the block ends each started table is finished (``store.finish()``, under its lease;
    best effort if the block failed), then the leases are given up, however it ends.
    """
    with contextlib.ExitStack() as stack:
        for job in jobs:
            job.store.prepare()  # unwritable path / foreign directory: fail before computing
        for job in jobs:
            job.lease = stack.enter_context(job.store.lease())
            if job.lease.taken_over:
                logger.warning("%s", job.lease.taken_over)
        problems = []
        for job in jobs:
            try:
                job.check(overwrite)
                job.verify(overwrite)
            except (StoreMismatchError, MetadataError) as exc:
                problems.append((job, exc))
        if len(problems) == 1 and problems[0][0].name is None:
            raise problems[0][1]
        if problems:
            lines = [f"video {job.name!r}: " + str(exc).replace("\n", "\n    ")
                     for job, exc in problems]
            head = (f"{len(lines)} videos differ from what the store holds:\n  "
                    if len(lines) > 1 else "")
            kind = (StoreMismatchError if any(isinstance(e, StoreMismatchError)
                                              for _, e in problems) else MetadataError)
            raise kind(head + "\n  ".join(lines))
        if overwrite:
            for job in jobs:
                job.store.check_clear()  # nothing is removed unless all can be
        started = []
        for job in jobs:
            job.start(overwrite)
            started.append(job)
        try:
            yield
        except BaseException:
            for job, last in _lasts(started):  # the stores are consistent: finish them
                try:
                    _finish(job, last)
                except Exception:  # noqa: BLE001 - the error to report is the first one
                    pass
            raise
        for job, last in _lasts(started):
            _finish(job, last)


def _lasts(jobs):
    """``(job, last)``: ``last`` for the last job of each store location."""
    final = {(type(j.store), j.store.store_path): j for j in jobs}
    return [(j, final[(type(j.store), j.store.store_path)] is j) for j in jobs]


def _finish(job, last):
    """``job.store.finish(last)``, unless another writer took the table over."""
    if job.lease is not None:
        job.lease.check()
    job.store.finish(last=last)
