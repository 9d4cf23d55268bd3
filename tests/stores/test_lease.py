"""The writer's lease (daskloc.stores._lease): who may take a lease over, and when.

The end-to-end cases (a second batch refused naming the first, a SIGKILLed writer's
lease taken over, a lease from another host) are in tests/test_hostile.py; here the
rules themselves, each on a real store.
"""

from __future__ import annotations

import os
import socket
import time

import pytest

from daskloc.pipeline import _ClientWriter
from daskloc.stores import StoreInUseError, _lease, open_store


@pytest.fixture
def sqlite_store(tmp_path):
    st = open_store(f"sqlite:///{tmp_path / 'f.db'}", "a")
    st.prepare()
    return st


def test_a_lease_being_taken_by_another_thread_of_this_process_is_not_stale(sqlite_store):
    """A document of this very process whose token is not (yet) registered: another
    thread is taking it right now. It must be refused, not taken over as a leftover."""
    ops = sqlite_store._lease_ops()
    assert ops.create(_lease.encode(_lease.new_holder("another-threads-token")))
    with pytest.raises(StoreInUseError, match=f"process {os.getpid()}"):
        sqlite_store.lease().acquire()


def test_a_lease_whose_release_failed_is_taken_over_by_the_next_job(sqlite_store,
                                                                    monkeypatch):
    first = sqlite_store.lease().acquire()
    monkeypatch.setattr(type(first.ops), "release", lambda self, token: 1 / 0)
    first.release()  # fails (a full disk, say): the document stays
    monkeypatch.undo()
    assert sqlite_store.lease_holder() is not None
    second = sqlite_store.lease().acquire()
    assert "release failed" in second.taken_over
    second.release()
    assert sqlite_store.lease_holder() is None


def test_two_threads_of_one_process_hold_no_lease_twice(tmp_path):
    st = open_store(tmp_path / "f.parquet", "a")
    st.prepare()
    with st.lease():
        with pytest.raises(StoreInUseError):
            open_store(tmp_path / "f.parquet", "a").lease().acquire()


def test_one_hdf5_key_has_one_lease_whatever_it_is_called(tmp_path):
    """table=None and table="features" are the same HDF5 key: the same lease."""
    with open_store(tmp_path / "f.h5", "a").lease():
        with pytest.raises(StoreInUseError):
            open_store(tmp_path / "f.h5", "a", table="features").lease().acquire()
        open_store(tmp_path / "f.h5", "a", table="other").lease().acquire().release()


def test_same_host_rules_boot_and_pid_namespace():
    here = socket.gethostname()
    boot, ns = _lease._machine()
    gone_pid = 2 ** 22 + 12345  # above pid_max: no such process
    fresh = dict(_lease.new_holder("t"), host=here, pid=gone_pid)
    assert "is gone" in _lease.stale_reason(fresh)
    if boot is not None:
        rebooted = dict(fresh, boot_id="another-boot")
        assert "restarted" in _lease.stale_reason(rebooted)
    # Another pid namespace (a container with this host name): the pid says nothing,
    # the heartbeat decides.
    other_ns = dict(fresh, pid_namespace=(ns or 0) + 1)
    assert _lease.stale_reason(other_ns) is None
    old = dict(other_ns, heartbeat_unix=time.time() - _lease.LEASE_TIMEOUT - 1)
    assert "no heartbeat" in _lease.stale_reason(old)
    # Another host: the heartbeat decides.
    far = dict(fresh, host="elsewhere.example")
    assert _lease.stale_reason(far) is None
    assert "no heartbeat" in _lease.stale_reason(dict(far, heartbeat_unix=0))


def test_a_forked_child_does_not_renew_or_hold_its_parents_leases(tmp_path):
    st = open_store(tmp_path / "f.parquet", "a")
    st.prepare()
    with st.lease():
        pid = os.fork()
        if pid == 0:  # the child: no leases of its own, and it holds no lock
            ok = not _lease._HEARTBEATS.leases and not _lease._LOCKED
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        with pytest.raises(StoreInUseError):  # the parent still holds it
            open_store(tmp_path / "f.parquet", "a").lease().acquire()


def test_chunks_after_a_failed_chunk_are_never_held_by_an_ordered_writer(tmp_path):
    """Zarr/HDF5 take chunks in frame order: after a failed chunk, later chunks arriving
    are dropped, not held (they would count against the submission window forever)."""

    class Chunk:
        def __init__(self, start, stop):
            self.start, self.stop = start, stop

    st = open_store(tmp_path / "f.zarr", "a")
    writer = _ClientWriter(st, [Chunk(0, 4), Chunk(4, 8), Chunk(8, 12)])
    writer.abandon((4, 8))
    assert writer(dict(start=8, stop=12, features=None, chunk_id="x")) == []
    assert writer.held == {}
