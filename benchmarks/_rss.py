"""The RSS sampler the memory benchmarks share (bench_memory, bench_ome_tiff)."""

from __future__ import annotations

import os
import threading

#: Seconds between samples.
SAMPLE_SECONDS = 0.05


class TreeSampler(threading.Thread):
    """Samples the RSS of process ``pid`` (default: this one) and every process below
    it, every ``interval`` s.

    Keeps the peak of the sum over the tree (``peak_total``), of the largest single
    child process (``peak_worker``: a local cluster's workers are the only sizeable
    children) and of the root process (``peak_client``), the number of samples and the
    most children seen at once. :meth:`stop` takes one last sample unless the root has
    exited.
    """

    def __init__(self, pid=None, interval=SAMPLE_SECONDS):
        super().__init__(daemon=True, name="rss-sampler")
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(os.getpid() if pid is None else pid)
        self.interval = interval
        self.procs = {}
        self.stop_event = threading.Event()
        self.peak_total = self.peak_worker = self.peak_client = 0
        self.samples = 0
        self.max_children = 0

    def sample(self):
        ps = self.psutil
        try:
            children = self.root.children(recursive=True)
            client = self.root.memory_info().rss
        except ps.Error:  # the root has exited
            return
        current = {}
        for p in children:  # reuse Process objects (pid reuse is checked by psutil)
            current[p.pid] = self.procs.get(p.pid, p)
        self.procs = current
        worker = total = 0
        for p in current.values():
            try:
                rss = p.memory_info().rss
            except ps.Error:  # exited between listing and reading
                continue
            total += rss
            worker = max(worker, rss)
        total += client
        self.peak_total = max(self.peak_total, total)
        self.peak_worker = max(self.peak_worker, worker)
        self.peak_client = max(self.peak_client, client)
        self.max_children = max(self.max_children, len(current))
        self.samples += 1

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval)

    def stop(self):
        self.stop_event.set()
        self.join()
        self.sample()
