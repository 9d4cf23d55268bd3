"""One writer per store: the lease a job holds on each table it writes.

A lease is a small JSON document naming its holder (``host``, ``pid``, the process's
start time, when it started and its last ``heartbeat``), kept where the store lives:

- **local files** (Parquet, Zarr, HDF5): a lock file opened with ``O_NOFOLLOW`` (a
  symbolic link planted there is refused, never followed) and held with ``flock``
  for the whole job. The kernel releases the lock when the holder dies (even by
  SIGKILL), so the next writer takes the lease over at once; the document only tells
  who holds it. On a file system without ``flock`` the document's heartbeat decides,
  as below.
- **object storage and SQL**: a document created only if absent (S3 ``If-None-Match:
  *``; an SQL primary key) and replaced only if unchanged (S3 ``If-Match``; ``UPDATE
  ... WHERE token = ...``). A lease is stale, and is taken over, when its holder's
  process is gone (same host) or its heartbeat is older than :data:`LEASE_TIMEOUT`.

A background thread renews every lease of the process each :data:`LEASE_HEARTBEAT`
seconds; a writer that finds its lease taken over stops (:meth:`Lease.check`).
Readers never take a lease.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import threading
import time
import uuid
from datetime import UTC, datetime

from daskloc.stores.errors import StoreInUseError

__all__ = ["LEASE_HEARTBEAT", "LEASE_TIMEOUT", "CasLeaseOps", "Lease", "LockFileOps",
           "ObjectLeaseOps", "holder_of", "lease_name"]

#: Seconds between two heartbeats of a lease.
LEASE_HEARTBEAT = 10.0
#: A lease without heartbeat for this many seconds is stale (holders on other hosts).
LEASE_TIMEOUT = 60.0


def lease_name(location, table=None):
    """File name of the lease kept beside a store (``.features.zarr.daskloc-lease``),
    one per table (``...daskloc-lease.bulk_water+features`` for
    ``table="bulk_water/features"``; ``+`` cannot occur in table names)."""
    base = f".{location.rstrip('/').rsplit('/', 1)[-1]}.daskloc-lease"
    return base if table is None else f"{base}.{table.replace('/', '+')}"


def _now_iso(t=None):
    t = time.time() if t is None else t
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _process_start(pid):
    """Start time (seconds since the epoch) of process ``pid``; None if it is gone;
    ``"unknown"`` if it exists but may not be inspected (another user's, ``hidepid``)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with distributed
        return "unknown"
    try:
        return psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return None
    except Exception:  # noqa: BLE001 - AccessDenied, ZombieProcess: alive, unknown
        return "unknown"


def _machine():
    """``(boot id, pid namespace)``: a pid means this process only on the same machine,
    since its last boot, in the same pid namespace (containers share host names)."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = None
    try:
        ns = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        ns = None
    return boot, ns


def new_holder(token):
    """The lease document of this process."""
    now = time.time()
    boot, ns = _machine()
    return {
        "daskloc_lease": 1,
        "token": token,
        "host": socket.gethostname(),
        "boot_id": boot,
        "pid_namespace": ns,
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "started": _now_iso(now),
        "heartbeat": _now_iso(now),
        "heartbeat_unix": now,
    }


def decode(raw):
    """A lease document from bytes; ``{}`` if unreadable (torn or foreign)."""
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return {}
    return doc if isinstance(doc, dict) else {}


#: Lease documents are padded with spaces to this many bytes, so a heartbeat rewrites
#: one in place (one write of the same length: a reader never sees it shortened).
_DOC_BYTES = 1024


def encode(doc):
    data = json.dumps(doc, sort_keys=True).encode("utf-8")
    return (data + b"\n").ljust(_DOC_BYTES)


def stale_reason(doc, now=None, timeout=None):
    """Why the lease ``doc`` may be taken over, or None while its holder is alive."""
    timeout = LEASE_TIMEOUT if timeout is None else timeout
    if not doc:
        return "the lease document is unreadable"
    boot, ns = _machine()
    same_machine = (doc.get("host") == socket.gethostname()
                    and doc.get("boot_id", boot) == boot and boot is not None)
    if (doc.get("host") == socket.gethostname() and doc.get("boot_id") not in (None, boot)
            and boot is not None):
        return "this machine was restarted since (its process is gone)"
    if same_machine and doc.get("pid_namespace", ns) == ns and isinstance(doc.get("pid"), int):
        if doc["pid"] == os.getpid():
            if doc.get("token") in _FAILED_RELEASES:
                return "left by an earlier job of this process (its release failed)"
            return None  # a lease of this process, held or being taken now
        start = _process_start(doc["pid"])
        if start is None:
            return f"its process (pid {doc['pid']}) is gone"
        recorded = doc.get("process_start")
        if (isinstance(start, float) and isinstance(recorded, (int, float))
                and abs(start - recorded) > 1.0):
            return (f"its process (pid {doc['pid']}) is gone (the pid belongs to another "
                    "process now)")
        return None
    beat = doc.get("heartbeat_unix")
    if not isinstance(beat, (int, float)):
        return "the lease has no heartbeat"
    age = (time.time() if now is None else now) - beat
    if age > timeout:
        return f"no heartbeat for {age:.0f} s"
    return None


def took_over(doc, where, reason):
    """The line logged when a stale lease is taken over."""
    return (f"took over the lease of {where} from process {doc.get('pid')} on "
            f"{doc.get('host')} (since {doc.get('started')}): {reason}")


def describe(doc, where, reason=None):
    """One line naming the holder of a lease."""
    if not doc:
        who = "another daskloc job (its lease document is unreadable)"
    else:
        age = time.time() - doc["heartbeat_unix"] if isinstance(
            doc.get("heartbeat_unix"), (int, float)) else None
        who = (f"process {doc.get('pid')} on {doc.get('host')}, since {doc.get('started')}"
               + ("" if age is None else f", last heartbeat {max(age, 0):.0f} s ago"))
    text = f"{where} is being written by another daskloc job ({who})"
    if reason:
        text += f"; {reason}"
    return text


def _refusal(doc, where, timeout):

    same_host = doc.get("host") == socket.gethostname()
    later = ("at once" if same_host else
             f"after {timeout:.0f} s without a heartbeat")
    return StoreInUseError(
        describe(doc, where) + ". One writer per store: wait for that job to finish (or "
        "stop it), or write to another store; readers need not wait. If that process is "
        f"gone, its lease is taken over {later}"
    )


# ----------------------------------------------------------------- backends' primitives


def _flock_briefly(fd, seconds=0.5):
    """An exclusive non-blocking flock, retried for a moment: a reader probing the lock
    (``daskloc info``) holds it shared for microseconds."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


#: LockFileOps of this process holding a lock now.
_LOCKED = set()


class LockFileOps:
    """A lease held as an ``flock`` on a local lock file (opened with ``O_NOFOLLOW``).

    Parameters
    ----------
    path : str
        The lock file. Its directory is created if missing.
    """

    kind = "lock"

    def __init__(self, path):
        self.path = path
        self.fd = None

    def abandon_in_child(self):
        """After fork, in the child: close the inherited descriptor (the flock is the
        parent's; closing a duplicate leaves it held by the parent)."""
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    def _open(self, flags):
        try:
            return os.open(self.path, flags | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PermissionError(
                    errno.EPERM,
                    f"the lease file {self.path} is a symbolic link; daskloc never follows "
                    "one there (it could point at another file): remove it and run again",
                ) from None
            raise

    def _check_regular(self, fd):
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise PermissionError(
                errno.EPERM, f"the lease file {self.path} is not a regular file: remove it "
                             "and run again")

    def lock(self, data):
        """Take the lease: ``(True, previous document or None)``, or ``(False, holder)``."""
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        for _ in range(10):
            fd = self._open(os.O_RDWR | os.O_CREAT)
            self._check_regular(fd)
            try:
                _flock_briefly(fd)
            except BlockingIOError:
                raw = os.pread(fd, 1 << 16, 0)
                os.close(fd)
                return False, decode(raw)
            except OSError as exc:
                if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)
                    raise
                # No flock here: the document's heartbeat decides.
                raw = os.pread(fd, 1 << 16, 0)
                previous = decode(raw) if raw.strip() else None
                if previous is not None and stale_reason(previous) is None:
                    os.close(fd)
                    return False, previous
                return self._write_new(fd, data, previous)
            try:  # the file may have been unlinked (released) between open and flock
                same = os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            raw = os.pread(fd, 1 << 16, 0)
            return self._write_new(fd, data, decode(raw) if raw.strip() else None)
        raise OSError(errno.EAGAIN, f"could not take the lease file {self.path}")

    def _write_new(self, fd, data, previous):
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self.fd = fd
        _LOCKED.add(self)
        return True, previous

    def update(self, token, data):
        """Rewrite the document if the lease is still ours; False if it was lost."""
        if self.fd is None:
            return False
        try:
            if os.stat(self.path, follow_symlinks=False).st_ino != os.fstat(self.fd).st_ino:
                return False
        except FileNotFoundError:
            return False
        if decode(os.pread(self.fd, 1 << 16, 0)).get("token") != token:
            return False
        os.pwrite(self.fd, data, 0)
        return True

    def release(self, token):
        if self.fd is None:
            return
        try:
            if os.stat(self.path, follow_symlinks=False).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)  # still holding the lock: nobody holds this inode
        except OSError:
            pass  # e.g. the directory became read-only: the lock still ends with the fd
        finally:
            os.close(self.fd)
            self.fd = None
            _LOCKED.discard(self)

    def holder(self):
        """``(document, stale reason or None)`` of the current holder, or None."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            raw = os.pread(fd, 1 << 16, 0)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return decode(raw), None  # locked: its holder is alive
            except OSError:
                doc = decode(raw)
                return (doc, stale_reason(doc)) if raw.strip() else None
            return (decode(raw), "its writer is gone") if raw.strip() else None
        finally:
            os.close(fd)


class CasLeaseOps:
    """Base of the leases kept as a document that is created only if absent and
    replaced only if unchanged (compare-and-swap). Subclasses give ``create(data)``,
    ``read() -> (bytes or None, version)``, ``replace(version, data)`` and
    ``release(token)``."""

    kind = "cas"

    def update(self, token, data):
        """Renew the document if the lease is still ours; False if it was lost."""
        raw, version = self.read()
        if raw is None or decode(raw).get("token") != token:
            return False
        return self.replace(version, data)

    def holder(self):
        """``(document, stale reason or None)`` of the current holder, or None."""
        raw, _ = self.read()
        if raw is None:
            return None
        doc = decode(raw)
        return doc, stale_reason(doc)


class ObjectLeaseOps(CasLeaseOps):
    """A lease document on object storage through fsspec: conditional create/replace.

    On S3 the create is ``If-None-Match: *`` and the replace ``If-Match: <ETag>``,
    both atomic on the server; other fsspec file systems get the closest they offer.
    """

    def __init__(self, fs, path):
        self.fs, self.path = fs, path
        self.s3 = type(fs).__name__ == "S3FileSystem"

    def create(self, data):
        try:
            self.fs.pipe_file(self.path, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # a file system without mode=
            if self.fs.exists(self.path):
                return False
            self.fs.pipe_file(self.path, data)
        return True

    def read(self):
        """``(bytes or None, version)``: the version is read first, so a replace based
        on it fails if the document changed after it."""
        try:
            self.fs.invalidate_cache(self.path)
            info = self.fs.info(self.path)
            raw = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None, None
        return raw, info.get("ETag") or info.get("etag") or info.get("mtime")

    def replace(self, version, data):
        if self.s3 and version is not None:
            try:
                self.fs.pipe_file(self.path, data, IfMatch=version)
            except FileNotFoundError:
                return False  # released meanwhile
            except OSError as exc:
                if "pre-condition" in str(exc) or "PreconditionFailed" in str(exc):
                    return False  # changed since it was read
                raise  # a network or permission problem: not a lost race
            return True
        raw, now = self.read()
        if now != version:
            return False
        self.fs.pipe_file(self.path, data)
        return True

    def release(self, token):
        raw, _ = self.read()
        if raw is not None and decode(raw).get("token") == token:
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass


def holder_of(ops):
    """The holder of a lease now: dict with ``host``, ``pid``, ``started``,
    ``heartbeat``, ``stale`` (reason or None), or None if nobody holds it."""
    found = ops.holder()
    if found is None:
        return None
    doc, stale = found
    return {"host": doc.get("host"), "pid": doc.get("pid"), "started": doc.get("started"),
            "heartbeat": doc.get("heartbeat"), "stale": stale}


# ----------------------------------------------------------------- the lease


class Lease:
    """A writer's lease on one table of a store (see the module docstring).

    Use as a context manager, or :meth:`acquire` / :meth:`release`.

    Parameters
    ----------
    ops : LockFileOps, ObjectLeaseOps or a backend's own primitives
    where : str
        The table's location, for messages.
    """

    def __init__(self, ops, where, timeout=None):
        self.ops, self.where = ops, where
        self.timeout = LEASE_TIMEOUT if timeout is None else timeout
        self.token = None
        self.doc = None
        #: str or None: the previous holder, when its stale lease was taken over.
        self.taken_over = None
        #: str or None: why the lease was lost (taken over by another writer).
        self.lost = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()

    def acquire(self):
        """Take the lease.

        Returns
        -------
        Lease
            self.

        Raises
        ------
        daskloc.stores.StoreInUseError
            Another live writer holds it (the message names it).
        PermissionError
            The lease file is a symbolic link or not a regular file.
        """
        token = uuid.uuid4().hex
        doc = new_holder(token)
        if self.ops.kind == "lock":
            ok, previous = self.ops.lock(encode(doc))
            if not ok:
                raise _refusal(previous or {}, self.where, self.timeout)
            if previous:
                self.taken_over = took_over(previous, self.where, "its writer is gone")
        else:
            for _ in range(5):
                if self.ops.create(encode(doc)):
                    break
                raw, version = self.ops.read()
                if raw is None:
                    continue  # released meanwhile
                holder = decode(raw)
                why = stale_reason(holder, timeout=self.timeout)
                if why is None:
                    raise _refusal(holder, self.where, self.timeout)
                if self.ops.replace(version, encode(doc)):
                    self.taken_over = took_over(holder, self.where, why)
                    break
            else:

                raise StoreInUseError(
                    f"could not take the lease of {self.where}: it changed hands 5 times "
                    "while this job tried (other writers are starting); try again")
        self.token, self.doc = token, doc
        _HEARTBEATS.add(self)
        return self

    def beat(self):
        """Renew the heartbeat (called by the heartbeat thread)."""
        if self.token is None or self.lost:
            return
        now = time.time()
        doc = dict(self.doc, heartbeat=_now_iso(now), heartbeat_unix=now)
        if self.ops.update(self.token, encode(doc)):
            self.doc = doc
        else:
            self.lost = "another writer took it over (this job was stalled for too long?)"

    def check(self):
        """Raise StoreInUseError if the lease was lost."""
        if self.lost:

            raise StoreInUseError(
                f"this job lost the lease of {self.where}: {self.lost}; stopped so that "
                "only one writer writes it. Run the job again once the other writer is done"
            )

    def release(self):
        """Give the lease up (the lock file or document is removed)."""
        _HEARTBEATS.discard(self)
        if self.token is not None:
            try:
                self.ops.release(self.token)
            except Exception:  # noqa: BLE001 - a job's own error must not be hidden: the
                _FAILED_RELEASES.add(self.token)  # next job of this process takes it over
            finally:
                self.token = None


class _Heartbeats:
    """One daemon thread renewing every lease of this process."""

    def __init__(self):
        self.leases = set()
        self.lock = threading.Lock()
        self.thread = None
        self.pid = None

    def add(self, lease):
        with self.lock:
            self.leases.add(lease)
            if self.thread is None or not self.thread.is_alive() or self.pid != os.getpid():
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="daskloc-lease-heartbeat",
                                               daemon=True)
                self.thread.start()

    def discard(self, lease):
        with self.lock:
            self.leases.discard(lease)

    def forget(self):
        """In a forked child: the parent's leases are not the child's to renew."""
        self.leases = set()
        self.lock = threading.Lock()
        self.thread = None

    def _run(self):
        while True:
            time.sleep(LEASE_HEARTBEAT)
            with self.lock:
                leases = list(self.leases)
            for lease in leases:
                try:
                    lease.beat()
                except Exception:  # noqa: BLE001 - a storage hiccup: try again next time
                    pass


_HEARTBEATS = _Heartbeats()
#: Tokens of this process's leases whose release failed (e.g. on a full disk).
_FAILED_RELEASES = set()


def _after_fork():
    _HEARTBEATS.forget()
    for ops in list(_LOCKED):  # a child must not keep the parent's lock files held
        ops.abandon_in_child()
    _LOCKED.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
