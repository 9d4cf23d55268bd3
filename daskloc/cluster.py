"""Where daskloc runs: an embedded local cluster (the default), SLURM jobs, Kubernetes pods,
or a scheduler that is already running.

:func:`make_client` returns a :class:`distributed.Client` for each of these; closing it
also shuts down the cluster it started (SLURM jobs are cancelled, Kubernetes resources
deleted). Settings come from Dask's own configuration, following the conventions of
dask-jobqueue (``jobqueue.slurm.*``) and dask-kubernetes (``kubernetes.*``): YAML files in
``~/.config/dask/`` or a file passed as ``config=`` (the CLI's ``--cluster-config``).
daskloc adds a few keys of its own under ``daskloc.kubernetes`` (the shared volume).

The dashboard of a cluster whose scheduler runs here (local, SLURM) listens on
127.0.0.1 unless ``dashboard_address=`` says otherwise: it has no login.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import functools
import getpass
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
import uuid
import warnings
from collections.abc import Mapping

import dask
import dask.config

from daskloc._extras import require

__all__ = ["check_dashboard_address", "connect", "dashboard_bound", "default_workers",
           "kubernetes_cluster_spec", "make_client"]

logger = logging.getLogger(__name__)

#: Kinds of cluster :func:`make_client` starts; anything with ``://`` is a scheduler address.
CLUSTER_KINDS = ("local", "slurm", "kubernetes")

#: Default seconds :func:`make_client` waits: for a scheduler address to answer, and for the
#: first worker of a SLURM or Kubernetes cluster to connect (queue wait included).
DEFAULT_TIMEOUTS = {"local": 60.0, "address": 10.0, "slurm": 300.0, "kubernetes": 300.0}

#: Where the dashboard of a cluster daskloc starts (local, SLURM) listens unless told
#: otherwise: this machine only. The dashboard has no login; a busy port gives a free one.
DEFAULT_DASHBOARD_ADDRESS = "127.0.0.1:8787"

#: Where the dashboard of each SLURM worker listens unless ``worker-extra-args`` says
#: otherwise: its own node only, on a free port (``dask worker``'s default is every
#: interface). The scheduler's dashboard shows the workers all the same.
WORKER_DASHBOARD_ADDRESS = "127.0.0.1:0"
#: What the dashboard shows, for the warnings of ``dashboard_address``.
DASHBOARD_WARNING = (
    "the dashboard has no login: whoever reaches its address sees everything about the "
    "job (file names, task details, worker logs, the call stacks of running tasks)"
)

#: C ``malloc`` settings for the worker processes daskloc starts (local, SLURM): glibc's
#: own steady state. distributed's nanny sets ``MALLOC_TRIM_THRESHOLD_=65536`` for its
#: workers (``distributed.nanny.pre-spawn-environ``) so that freed memory goes back to the
#: operating system at once; setting it also turns off glibc's sliding mmap threshold, so
#: every block over 128 KiB is mapped afresh and unmapped when freed. A worker decoding a
#: movie then takes a page fault on each 4 KiB of every frame it decodes (a 640 x 480 RGB
#: frame from PyAV: 200 faults). Measured on the five copies of the bulk-water movie
#: (``benchmarks/bench_end_to_end.py``): about 500,000 minor faults and 6 s of system time
#: with distributed's setting, 67,000 with these. These are the values glibc slides to by
#: itself (mmap threshold at most 32 MiB, trim threshold twice that): memory of the sizes
#: a job uses again and again stays in the process, and blocks over 32 MiB are still mapped
#: and unmapped. Not applied when the configuration sets ``MALLOC_MMAP_THRESHOLD_`` itself
#: (the user's choice stands); a variable of either name in this process's environment
#: wins over both (distributed's rule). See :func:`worker_pre_spawn_environ`.
WORKER_MALLOC_ENVIRON = {"MALLOC_MMAP_THRESHOLD_": 32 * 2**20,
                         "MALLOC_TRIM_THRESHOLD_": 64 * 2**20}

#: The Dask preload (``distributed.worker.preload``; ``dask worker --preload`` in SLURM
#: job scripts) of the worker processes daskloc starts, local and SLURM: each worker
#: imports the pipeline's worker side and loads the kernel in a background thread as it
#: starts, and exits without its final garbage collections (see
#: :mod:`daskloc.pipeline._worker`). Added to the configured preloads.
WORKER_PRELOAD = "daskloc.pipeline._worker"

#: daskloc's own defaults for Kubernetes (config keys ``daskloc.kubernetes.*``).
KUBERNETES_DEFAULTS = {
    # PersistentVolumeClaim mounted on the scheduler and every worker (null: none, e.g.
    # when the videos and the store are on s3://)
    "pvc": "daskloc-data",
    "mount-path": "/data",
    # the locate kernel is single-threaded numba: one thread per worker process
    "worker-command": "dask worker --nthreads 1",
    "scheduler-command": "dask scheduler --host 0.0.0.0",
    # pod securityContext.fsGroup: the image runs as uid 1000, the volume must be writable
    "fs-group": 1000,
}

# jobqueue.slurm.* config keys that SLURMCluster also takes as keywords, and the keyword.
_SLURM_KEYWORDS = {
    "name": "job_name",
    "cores": "cores",
    "memory": "memory",
    "processes": "processes",
    "python": "python",
    "interface": "interface",
    "death-timeout": "death_timeout",
    "local-directory": "local_directory",
    "shared-temp-directory": "shared_temp_directory",
    "worker-command": "worker_command",
    "worker-extra-args": "worker_extra_args",
    "shebang": "shebang",
    "queue": "queue",
    "account": "account",
    "walltime": "walltime",
    "job-script-prologue": "job_script_prologue",
    "job-cpu": "job_cpu",
    "job-mem": "job_mem",
    "job-extra-directives": "job_extra_directives",
    "job-directives-skip": "job_directives_skip",
    "log-directory": "log_directory",
    "scheduler-options": "scheduler_options",
    # deprecated by dask-jobqueue (it warns), passed on only when set
    "extra": "extra",
    "env-extra": "env_extra",
    "job-extra": "job_extra",
    "header-skip": "header_skip",
    "project": "project",
}


def worker_pre_spawn_environ():
    """Environment variables the nanny of each worker daskloc starts sets before the
    worker process starts: Dask's ``distributed.nanny.pre-spawn-environ`` with
    :data:`WORKER_MALLOC_ENVIRON` merged in.

    Returns
    -------
    dict of str to str or int
        The configured ``distributed.nanny.pre-spawn-environ`` (distributed's defaults:
        ``MALLOC_TRIM_THRESHOLD_``, ``OMP_NUM_THREADS``...), with
        :data:`WORKER_MALLOC_ENVIRON` over it unless the configuration sets
        ``MALLOC_MMAP_THRESHOLD_`` itself: then it is returned unchanged.

    Notes
    -----
    These variables must be in the environment when the process starts: glibc reads them
    once, at its first allocation (``mallopt(3)``, section ENVIRONMENT). Setting them in a
    running worker (``distributed.nanny.environ``) does nothing.

    Examples
    --------
    >>> env = worker_pre_spawn_environ()
    >>> env["MALLOC_MMAP_THRESHOLD_"], env["MALLOC_TRIM_THRESHOLD_"]
    (33554432, 67108864)
    """
    import distributed  # noqa: F401 - registers distributed.* defaults

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default=None) or {})
    if "MALLOC_MMAP_THRESHOLD_" not in env:
        env.update(WORKER_MALLOC_ENVIRON)
    return env


def worker_preload_config():
    """Dask configuration of the workers' preloads: the configured ones and
    :data:`WORKER_PRELOAD` after them.

    Returns
    -------
    dict
        ``{"distributed.worker.preload": [...], "distributed.worker.preload-argv": [...]}``
        for :func:`dask.config.set`. A per-preload argument list (a list of lists) gets
        an empty one for :data:`WORKER_PRELOAD`; one list for all preloads is left as it
        is (the daskloc preload takes no arguments).

    Examples
    --------
    >>> worker_preload_config()["distributed.worker.preload"][-1]
    'daskloc.pipeline._worker'
    """
    import distributed  # noqa: F401 - registers distributed.* defaults

    preload = dask.config.get("distributed.worker.preload", default=None) or []
    preload = [preload] if isinstance(preload, str) else list(preload)
    argv = list(dask.config.get("distributed.worker.preload-argv", default=None) or [])
    if WORKER_PRELOAD not in preload:
        if argv and not isinstance(argv[0], str):
            argv.append([])
        preload.append(WORKER_PRELOAD)
    return {"distributed.worker.preload": preload, "distributed.worker.preload-argv": argv}


def default_workers():
    """Number of local worker processes: one per core available to this process.

    Returns
    -------
    int
    """
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not on Linux
        return max(os.cpu_count() or 1, 1)


def unguarded_script_line():
    """Where the running script calls daskloc outside ``if __name__ == "__main__":``.

    Worker processes of a local cluster are started by :mod:`multiprocessing`'s
    ``spawn``, which runs the main script again in each new process; a script that
    starts a cluster at its top level, without that guard, starts another cluster in
    each worker and never gets its workers (distributed hangs, or dies with
    multiprocessing's "bootstrapping phase" error).

    Returns
    -------
    tuple of (str, int) or None
        ``(path, line)`` of the top-level statement of the ``__main__`` script that is
        running now, when it is not inside an ``if __name__ == "__main__":`` block;
        None in Jupyter, the REPL, ``python -c``, or a guarded script.
    """
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not str(path).endswith(".py"):
        return None  # Jupyter, the REPL, python -c: spawn does not run anything again
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals is vars(main)):
        frame = frame.f_back
    if frame is None:
        return None  # not called from the script's top level (a thread, a callback)
    line = frame.f_lineno
    try:
        with tokenize.open(path) as fh:  # the script's own encoding (PEP 263)
            tree = ast.parse(fh.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:
        if (isinstance(node, ast.If) and _is_main_test(node.test)
                and node.lineno <= line <= (node.end_lineno or node.lineno)):
            return None
    return str(path), line


def _is_main_test(test):
    """Whether an ``if`` test is ``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    values = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return len(names) == 1 and len(values) == 1


# ----------------------------------------------------------------- configuration


def load_config(config):
    """Read a Dask configuration file (YAML) into a nested dict.

    Parameters
    ----------
    config : str, os.PathLike, Mapping or None
        A YAML file with Dask configuration (e.g. ``jobqueue: {slurm: {cores: 2}}``), or
        such a mapping already loaded. None gives an empty dict.

    Returns
    -------
    dict

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not valid YAML or does not hold a mapping at its top level.
    """
    if config is None:
        return {}
    if isinstance(config, Mapping):
        return dict(config)
    import yaml

    path = os.fspath(config)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"cluster configuration file {path} does not exist")
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as exc:
        raise ValueError(f"cluster configuration file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ValueError(
            f"cluster configuration file {path} must hold a mapping of Dask settings "
            f"(e.g. 'jobqueue: {{slurm: {{cores: 1}}}}'), got {type(data).__name__}"
        )
    return dict(data)


def _flatten(data, prefix=""):
    """Nested dict -> {"a.b.c": leaf}: merged into Dask's config key by key, not replacing
    whole sections. Empty mappings and non-mappings are leaves."""
    out = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


@contextlib.contextmanager
def _config_applied(config):
    """Dask's configuration with ``config`` (see :func:`load_config`) merged in, for the
    duration of the block."""
    flat = _flatten(load_config(config))
    if not flat:
        yield
        return
    with dask.config.set(flat):
        yield


# ----------------------------------------------------------------- the client


@functools.cache
def _client_class():
    from distributed import Client

    class ClusterClient(Client):
        """A client that shuts down the cluster it was made for when it closes."""

        _daskloc_cluster = None

        @property
        def dashboard_link(self):
            """Link to the dashboard at the address and port it really listens on.

            distributed builds the link from the scheduler's host, which is not where
            the dashboard listens when it was given another interface (a SLURM
            scheduler on ``ib0`` with its dashboard on 127.0.0.1).
            """
            bound = dashboard_bound(self)
            if bound is None:
                return super().dashboard_link
            return _link(*bound[0], scheduler_host=_scheduler_host(self))

        def close(self, *args, **kwargs):
            cluster, self._daskloc_cluster = self._daskloc_cluster, None
            try:
                return super().close(*args, **kwargs)
            finally:
                if cluster is not None:
                    cluster.close()

    return ClusterClient


def _owning_client(cluster):
    """A client of ``cluster`` whose ``close()`` also closes ``cluster``."""
    try:
        # the default client, as the local one: daskloc.batch uses it without client=
        client = _client_class()(cluster)
    except BaseException:
        cluster.close()
        raise
    client._daskloc_cluster = cluster
    return client


# ----------------------------------------------------------------- the dashboard


def check_dashboard_address(address):
    """Check where a dashboard should listen, before any cluster starts.

    The dashboard has no login: whoever reaches its address sees everything about the
    job (file names, task details, worker logs, the call stacks of running tasks).
    Keep it on ``127.0.0.1`` (the default) and reach it from elsewhere through an SSH
    tunnel (``ssh -L 8787:localhost:8787 HOST``) where possible.

    Parameters
    ----------
    address : str
        ``HOST:PORT``. ``HOST`` is an IPv4 address or a host name of this machine
        (``127.0.0.1``: this machine only), ``0.0.0.0`` or empty (``:8787``) for every
        network interface. ``PORT`` 0 takes any free port; a port in use gives a free
        one too (distributed's own fallback).

    Returns
    -------
    str
        ``HOST:PORT`` as distributed's ``dashboard_address`` takes it.

    Raises
    ------
    ValueError
        Not a ``HOST:PORT`` string (a bare port, an IPv6 address, a list), a port
        outside 0..65535, or a host that does not resolve or is not an address of this
        machine.
    """
    import socket

    usage = ("use HOST:PORT: 127.0.0.1:8787 (this machine only, the default) or "
             "0.0.0.0:8787 (every network interface, and the dashboard has no login); "
             "port 0 takes any free port")
    if not isinstance(address, str):
        raise ValueError(f"dashboard address {address!r} is not a HOST:PORT string; {usage}")
    text = address.strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        raise ValueError(f"dashboard address {address!r} has no HOST: part (a bare port "
                         f"would listen on every interface); {usage}")
    if ":" in host or "[" in host or "," in host:
        raise ValueError(f"dashboard address {address!r} is not one HOST:PORT with an IPv4 "
                         f"address or host name (distributed takes no IPv6 address or "
                         f"list here); {usage}")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"dashboard address {address!r}: port {port!r} is not a number "
                         f"0..65535; {usage}")
    if host in ("", "0.0.0.0"):
        return f"{host}:{int(port)}"
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"dashboard address {address!r}: host {host!r} does not resolve "
                         f"({exc.strerror}); {usage}") from None
    problem = None
    for family, kind, proto, _, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.bind((sockaddr[0], 0))
            return f"{host}:{int(port)}"
        except OSError as exc:
            problem = exc.strerror or str(exc)
    raise ValueError(f"dashboard address {address!r}: {host} is not an address of this "
                     f"machine ({problem}); {usage}")


def dashboard_bound(client):
    """Where the dashboard of a scheduler in this process (local, SLURM) listens.

    Parameters
    ----------
    client : distributed.Client

    Returns
    -------
    list of (str, int) or None
        The (IP address, port) pairs its HTTP server is bound to (``0.0.0.0`` or ``::``:
        every interface), or None when the scheduler runs elsewhere (a scheduler address,
        Kubernetes) or serves no dashboard.
    """
    from distributed.comm import get_tcp_server_addresses

    cluster = getattr(client, "cluster", None)
    services = getattr(getattr(cluster, "scheduler", None), "services", None)
    server = services.get("dashboard") if isinstance(services, dict) else None
    if server is None:  # no cluster object, its scheduler elsewhere, or no dashboard
        return None
    try:
        bound = [(a[0], int(a[1])) for a in get_tcp_server_addresses(server)]
    except (AttributeError, ValueError):  # not a TCP server (closed)
        return None
    return bound or None


def dashboard_is_public(bound):
    """True if any of the ``(address, port)`` of :func:`dashboard_bound` is not loopback."""
    import ipaddress

    return any(not ipaddress.ip_address(host).is_loopback for host, _ in bound or ())


def _scheduler_host(client):
    try:
        from distributed.comm import get_address_host

        return get_address_host(client.cluster.scheduler_address)
    except Exception:  # noqa: BLE001 - only for the link
        return None


def _link(host, port, scheduler_host=None):
    """The dashboard link for a server bound to ``host:port``; a wildcard address (every
    interface) is reached at the scheduler's host."""
    from distributed.utils import format_dashboard_link

    if host in ("", "0.0.0.0", "::"):
        host = scheduler_host or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return format_dashboard_link(host, port)


def make_client(cluster="local", *, workers=None, config=None, timeout=None,
                dashboard_address=None, processes=None):
    """A Dask client on a local cluster, SLURM jobs, Kubernetes pods or a running scheduler.

    Parameters
    ----------
    cluster : str, default "local"
        ``"local"``: an embedded cluster of worker processes on this machine.
        ``"slurm"``: a :class:`dask_jobqueue.SLURMCluster` (the scheduler runs here, each
        SLURM job runs workers), configured by the ``jobqueue.slurm.*`` keys of Dask's
        configuration (at least ``cores`` and ``memory``; ``queue``, ``walltime``,
        ``interface``, ``log-directory``, ... as in dask-jobqueue).
        ``"kubernetes"``: a ``dask_kubernetes.operator.KubeCluster`` from
        :func:`kubernetes_cluster_spec` (needs ``pip install 'daskloc[kubernetes]'``, a
        reachable Kubernetes API with the Dask operator installed, and ``kubernetes.image``
        set to an image with daskloc in it).
        ``"tcp://HOST:PORT"`` (any address with ``://``): a scheduler already running.
    workers : int, optional
        ``"local"``: worker processes (default: one per core). ``"slurm"``: SLURM jobs to
        submit (default 1; each runs ``jobqueue.slurm.processes`` workers).
        ``"kubernetes"``: worker pods (default ``kubernetes.count.start``, or 1). Not
        allowed with a scheduler address.
    config : str, os.PathLike or Mapping, optional
        A YAML file of Dask configuration (or the mapping itself) merged over Dask's own
        configuration (``~/.config/dask/*.yaml``, ``DASK_*`` variables) while the cluster
        is made, e.g.::

            jobqueue:
              slurm: {cores: 4, memory: 16GiB, queue: normal, walltime: "02:00:00"}

        The settings of the cluster are fixed when it is made: SLURM jobs started later
        by the same cluster use them too.
    timeout : float, optional
        Seconds to wait for a scheduler address to answer (default 10), or for the first
        SLURM/Kubernetes worker to connect, queue wait included (default 300).
    dashboard_address : str, optional
        ``HOST:PORT`` where the dashboard of the cluster started here listens (see
        :func:`check_dashboard_address`). Default ``127.0.0.1:8787``: this machine only,
        a free port if 8787 is taken (``client.dashboard_link`` names the port in use).
        For ``"slurm"`` the default is ``jobqueue.slurm.scheduler-options.dashboard_address``
        when that is configured, else ``127.0.0.1:8787``; the scheduler itself keeps
        listening where the workers reach it (``jobqueue.slurm.interface``).
        ``"0.0.0.0:8787"`` or ``":8787"`` opens the dashboard to every network interface.
        **The dashboard has no login**: whoever reaches it sees everything about the job
        (file names, task details, worker logs, the call stacks of running tasks); prefer
        an SSH tunnel (``ssh -L 8787:localhost:8787 HOST``). Not allowed with a scheduler
        address (it serves its own dashboard) or ``"kubernetes"`` (the dashboard is in the
        scheduler pod).
    processes : bool, optional
        ``"local"`` only. True: ``workers`` worker processes of one thread each. False:
        one worker in this process with ``workers`` threads (the locate kernel releases
        the GIL), which starts in a fraction of a second instead of seconds: for small
        jobs. Default: processes, except when a script calls this at its top level
        outside ``if __name__ == "__main__":`` (see :func:`unguarded_script_line`):
        then threads, with a ``UserWarning`` naming the line, since worker processes
        would run the script again.

    Returns
    -------
    distributed.Client
        ``client.close()`` (or leaving a ``with`` block) also shuts down the cluster that
        was started: the local worker processes, the SLURM jobs (``scancel``) or the
        Kubernetes ``DaskCluster``. Closing a client of a running scheduler leaves that
        scheduler running.

    Raises
    ------
    ValueError
        Unknown ``cluster``; ``workers`` not a positive integer, or given with a scheduler
        address; ``dashboard_address`` not a ``HOST:PORT`` of this machine, or given with
        a scheduler address or ``"kubernetes"``; ``jobqueue.slurm.cores``/``memory`` not
        configured; ``kubernetes.image`` not set to a daskloc image; an invalid
        configuration file.
    FileNotFoundError
        ``config`` names a missing file; ``sbatch``/``sinfo`` are not installed.
    ImportError
        ``"kubernetes"`` without dask-kubernetes installed.
    RuntimeError
        SLURM refuses the job (``sbatch`` says why: unknown partition, too much memory, ...)
        or its controller does not answer.
    ConnectionError
        ``"kubernetes"``: no Kubernetes API is reachable (the message lists the kubeconfig
        files and in-cluster credentials that were tried).
    TimeoutError
        No SLURM or Kubernetes worker connected within ``timeout`` (the message names the
        jobs' state and ``squeue``/``sinfo`` or ``kubectl`` to look further); the jobs or
        pods are cancelled.
    OSError
        A scheduler address does not answer within ``timeout`` seconds (the message names
        the address).

    Examples
    --------
    Needs a SLURM cluster, so not run as a doctest:

    >>> config = "cluster/slurm/daskloc-slurm.yaml"
    >>> with make_client("slurm", workers=4, config=config) as c:  # doctest: +SKIP
    ...     daskloc.batch("movie.mov", 11, store="/shared/f.parquet", client=c)
    """
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if isinstance(cluster, str) and "://" in cluster:
        if workers is not None:
            raise ValueError(
                f"workers cannot be set for a running scheduler ({cluster}): its workers are "
                "started with it"
            )
        kind = "address"
    elif isinstance(cluster, str) and cluster in CLUSTER_KINDS:
        kind = cluster
    else:
        raise ValueError(
            f"unknown cluster {cluster!r}: use 'local', 'slurm', 'kubernetes' or a scheduler "
            "address such as 'tcp://10.0.0.5:8786'"
        )
    if processes is not None and kind != "local":
        raise ValueError(f"processes is for the local cluster; {cluster!r} starts its own "
                         "workers")
    if dashboard_address is not None:
        if kind == "address":
            raise ValueError(
                f"dashboard_address cannot be set for a running scheduler ({cluster}): it "
                "serves its own dashboard, set where it was started (`dask scheduler "
                "--dashboard-address 127.0.0.1:8787`)"
            )
        if kind == "kubernetes":
            raise ValueError(
                "dashboard_address cannot be set for Kubernetes: the dashboard runs in the "
                "scheduler pod (port 8787 of its Service); reach it with `kubectl "
                "port-forward service/NAME-scheduler 8787:8787`"
            )
        dashboard_address = check_dashboard_address(dashboard_address)
    if timeout is None:
        timeout = DEFAULT_TIMEOUTS[kind]
    settings = load_config(config)  # a bad file fails before anything starts
    # Import the cluster library before merging the file: importing registers its config
    # defaults, and registered inside the merge they would be dropped again when it ends.
    _client_class()  # imports distributed: its defaults too (a file may set distributed.*)
    if kind == "slurm":
        require("dask_jobqueue")  # the [slurm] extra
    elif kind == "kubernetes":
        _import_kubernetes()
    with _config_applied(settings):
        if kind == "local":
            return _local_client(workers, dashboard_address, processes=processes)
        if kind == "address":
            return _address_client(cluster, timeout)
        if kind == "slurm":
            return _slurm_client(workers, timeout, dashboard_address)
        return _kubernetes_client(workers, timeout)


def connect(*, workers=None, scheduler=None, dashboard_address=None, timeout=10,
            processes=None):
    """Start an embedded local Dask cluster, or connect to a running scheduler.

    Kept for existing callers; :func:`make_client` also starts SLURM and Kubernetes
    clusters.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the local cluster (one thread each: the locate kernel
        is single-threaded numba, so processes give the parallelism). Default: one
        per core. Ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    dashboard_address : str, optional
        ``HOST:PORT`` where the local cluster serves its dashboard. Default
        ``127.0.0.1:8787``: this machine only (a free port is used if 8787 is taken;
        ``client.dashboard_link`` names the one in use). ``"0.0.0.0:8787"`` or ``":8787"``
        opens it to every network interface: **the dashboard has no login** and shows
        everything about the job to whoever reaches it. Not allowed with ``scheduler``.
    timeout : float
        Seconds to wait for ``scheduler`` to answer.
    processes : bool, optional
        Worker processes (default) or threads in this process; see :func:`make_client`.
        A script that calls ``connect()`` at its top level, outside ``if __name__ ==
        "__main__":``, gets threads (and a ``UserWarning`` saying to add the guard):
        worker processes would run the script again.

    Returns
    -------
    distributed.Client
        ``client.close()`` also shuts down the local cluster it started.

    Raises
    ------
    ValueError
        ``workers`` is not a positive integer; ``dashboard_address`` is not a
        ``HOST:PORT`` of this machine, or is given with ``scheduler``.
    OSError
        ``scheduler`` does not answer within ``timeout`` seconds (the message names
        the address).
    """
    if scheduler:
        if dashboard_address is not None:
            raise ValueError(
                f"dashboard_address cannot be set for a running scheduler ({scheduler}): it "
                "serves its own dashboard"
            )
        return _address_client(scheduler, timeout)
    n = default_workers() if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if dashboard_address is not None:
        dashboard_address = check_dashboard_address(dashboard_address)
    return _local_client(n, dashboard_address=dashboard_address, processes=processes)


def _local_client(workers, dashboard_address=None, processes=None):
    n = default_workers() if workers is None else workers
    if processes is None:
        where = unguarded_script_line()
        processes = where is None
        if where is not None:
            warnings.warn(
                f"line {where[1]} of {os.path.basename(where[0])} starts daskloc's local "
                "cluster outside `if __name__ == \"__main__\":`, so it runs in this "
                "process's threads (worker "
                "processes would run the script again); put the script's work under that "
                "guard to use worker processes", UserWarning, stacklevel=3)
    if dashboard_address is None:
        # distributed's own default (":8787") listens on every interface
        dashboard_address = DEFAULT_DASHBOARD_ADDRESS
    # A client given cluster keywords starts a LocalCluster it owns and closes with it.
    # Worker logs below CRITICAL stay quiet: a failed task's "Compute Failed" ERROR
    # record only repeats, as a traceback dump on the terminal, the exception that
    # reaches the caller anyway (batch names the video, chunk and fix). The scheduler and
    # the workers listen on 127.0.0.1 (LocalCluster's default host), worker dashboards
    # are off (its default too).
    if not processes:  # one worker in this process: n threads (the kernel releases the GIL)
        return _client_class()(
            n_workers=1,
            threads_per_worker=n,
            processes=False,
            dashboard_address=dashboard_address,
            silence_logs=logging.CRITICAL,
        )
    # each nanny reads the variables and the preloads for its worker process when it is
    # made, here
    with dask.config.set({"distributed.nanny.pre-spawn-environ": worker_pre_spawn_environ(),
                          **worker_preload_config()}):
        return _client_class()(
            n_workers=n,
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard_address,
            silence_logs=logging.CRITICAL,
        )


def _probe_scheduler(address, timeout):
    """Ask the scheduler at ``address`` for its identity, all within ``timeout`` seconds.

    ``distributed.Client(timeout=...)`` bounds the TCP connect but not the exchange after
    it, so a peer that accepts and stays silent (a hung scheduler, another service, a dead
    tunnel) would hang it forever. The probe runs its own event loop in a thread, so it
    also works where a loop is already running (Jupyter).
    """
    import asyncio
    import threading

    from distributed.comm import connect

    async def probe():
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        try:
            await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
            await asyncio.wait_for(comm.read(), timeout)
        finally:
            comm.abort()

    outcome = {}

    def run():
        try:
            asyncio.run(probe())
        except BaseException as exc:  # reported to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="daskloc-probe-scheduler", daemon=True)
    thread.start()
    thread.join(timeout * 3 + 1)
    if thread.is_alive():
        return "no answer"
    error = outcome.get("error")
    if error is None:
        return None
    return str(error) or type(error).__name__


def _address_client(address, timeout):
    from distributed import Client

    problem = _probe_scheduler(address, timeout)
    if problem is None:
        try:
            return Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            problem = str(exc) or type(exc).__name__
    raise OSError(
        f"could not reach the Dask scheduler at {address} within {timeout:g} s ({problem}); "
        "check the address, or use the local cluster (the default)"
    )


def _wait_for_first_worker(client, timeout, deadline_hint, check=None):
    """Wait until a worker is connected; ``check()`` is called between polls and may raise.

    Raises TimeoutError with ``deadline_hint()`` in the message."""
    start = time.monotonic()
    while True:
        if client.scheduler_info(n_workers=-1).get("workers"):
            return time.monotonic() - start
        if check is not None:
            check()
        left = timeout - (time.monotonic() - start)
        if left <= 0:
            raise TimeoutError(
                f"no Dask worker connected within {timeout:g} s; {deadline_hint()}"
            )
        try:
            client.wait_for_workers(1, timeout=min(1.0, left))
        except (TimeoutError, OSError):
            pass


# ----------------------------------------------------------------- SLURM


def slurm_cluster_kwargs(config=None, *, dashboard_address=None):
    """The keywords :func:`make_client` gives ``dask_jobqueue.SLURMCluster``: every
    ``jobqueue.slurm.*`` setting of Dask's configuration that is set.

    Passing them explicitly fixes the settings when the cluster is made (dask-jobqueue
    would otherwise read its configuration again for every job it submits later).

    The scheduler runs in this process; its dashboard listens on ``127.0.0.1:8787``
    (dask-jobqueue's own default, ``:8787``, is every interface) unless
    ``dashboard_address`` or ``jobqueue.slurm.scheduler-options.dashboard_address`` says
    otherwise. Each worker's own dashboard listens on its node's loopback
    (``--dashboard-address 127.0.0.1:0`` added to ``worker_extra_args``) unless
    ``jobqueue.slurm.worker-extra-args`` already has a dashboard option. The job script
    exports :data:`WORKER_MALLOC_ENVIRON` (after ``job-script-prologue``) unless the
    configuration sets ``MALLOC_MMAP_THRESHOLD_`` itself. The workers get the preloads of
    :func:`worker_preload_config` as ``--preload`` options (those ``worker-extra-args``
    does not name already). The scheduler
    itself listens where the workers reach it, as configured (``jobqueue.slurm.interface``,
    or ``scheduler-options`` ``host``/``interface``).

    Parameters
    ----------
    config : str, os.PathLike or Mapping, optional
        A Dask configuration file merged over the current configuration (as in
        :func:`make_client`).
    dashboard_address : str, optional
        ``HOST:PORT`` for the scheduler's dashboard, over the configuration (see
        :func:`check_dashboard_address`; the dashboard has no login).

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        ``jobqueue.slurm.cores`` or ``jobqueue.slurm.memory`` is not set;
        ``dashboard_address`` is not a ``HOST:PORT`` of this machine.
    FileNotFoundError
        ``config`` names a missing file.
    """
    require("dask_jobqueue")  # registers the jobqueue.* defaults (before merging)

    with _config_applied(config):
        # a copy: leaving the block restores the config dicts in place
        conf = copy.deepcopy(dask.config.get("jobqueue.slurm", default={}) or {})
        environ = worker_pre_spawn_environ()
        preloads = worker_preload_config()["distributed.worker.preload"]
    kwargs = {}
    for key, value in conf.items():
        keyword = _SLURM_KEYWORDS.get(key.replace("_", "-"))
        if keyword is None or value is None:
            continue
        if key in ("extra", "env-extra", "job-extra", "header-skip", "project") and not value:
            continue
        kwargs[keyword] = value
    options = dict(kwargs.get("scheduler_options") or {})
    if dashboard_address is not None:
        options["dashboard_address"] = check_dashboard_address(dashboard_address)
    elif "dashboard_address" not in options:  # a configured one is the user's choice
        options["dashboard_address"] = DEFAULT_DASHBOARD_ADDRESS
    kwargs["scheduler_options"] = options
    args = list(kwargs.get("worker_extra_args") or [])
    if not any(a.split("=", 1)[0] in ("--dashboard-address", "--no-dashboard", "--dashboard")
               for a in args):  # the user's choice stands
        # dask worker's own default is every interface of the compute node: keep each
        # worker's dashboard (no login either) on the node itself.
        args += ["--dashboard-address", WORKER_DASHBOARD_ADDRESS]
    given = ({b for a, b in zip(args, args[1:]) if a == "--preload"}
             | {a.split("=", 1)[1] for a in args if a.startswith("--preload=")})
    # dask worker's --preload replaces the preloads of the node's configuration: this
    # configuration's go with daskloc's
    for preload in preloads:
        if preload not in given:
            args += ["--preload", preload]
    kwargs["worker_extra_args"] = args
    if all(environ.get(k) == v for k, v in WORKER_MALLOC_ENVIRON.items()):
        # the job's shell exports them to the nanny, whose worker inherits them (a value
        # in the environment wins over distributed's configured MALLOC_TRIM_THRESHOLD_)
        kwargs["job_script_prologue"] = [
            *(kwargs.get("job_script_prologue") or []),
            "export " + " ".join(f"{k}={v}" for k, v in WORKER_MALLOC_ENVIRON.items()),
        ]
    missing = [k for k in ("cores", "memory") if kwargs.get(k) is None]
    if missing:
        raise ValueError(
            "SLURM jobs need " + " and ".join(f"jobqueue.slurm.{k}" for k in missing)
            + " in Dask's configuration (per job, e.g. cores: 4, memory: 16GiB): set them in "
            "~/.config/dask/jobqueue.yaml or a --cluster-config file; "
            "cluster/slurm/daskloc-slurm.yaml is an example"
        )
    return kwargs


def _run(cmd, timeout=30.0):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RuntimeError(
            f"`{' '.join(cmd)}` did not finish within {timeout:g} s: the SLURM controller does "
            "not answer (check `sinfo`, `scontrol ping` and SLURM_CONF)"
        ) from None


def _slurm_preflight(cluster):
    """Fail fast and clearly where SLURM would only fail later, in the background."""
    for exe in ("sbatch", "squeue", "scancel"):
        if shutil.which(exe) is None:
            raise FileNotFoundError(
                f"{exe} not found on PATH: the SLURM client commands must be installed "
                "where daskloc runs (a login node), e.g. apt-get install slurm-client"
            )
    # `sbatch --test-only` checks the job script (partition, memory, time limit) without
    # submitting it; dask-jobqueue would only log sbatch's refusal.
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
        f.write(cluster.job_script())
    try:
        res = _run(["sbatch", "--test-only", f.name])
    finally:
        os.unlink(f.name)
    if res.returncode != 0:
        detail = " ".join((res.stderr or res.stdout).split()) or "sbatch --test-only failed"
        directives = " ".join(
            line[len("#SBATCH"):].strip() for line in cluster.job_script().splitlines()
            if line.startswith("#SBATCH")
            and not line[len("#SBATCH"):].strip().startswith(("-e", "-o"))
        )
        raise RuntimeError(
            f"SLURM refuses daskloc's worker job ({detail}); the job asks for: {directives}. "
            "Compare with `sinfo -o '%P %c %m %l'` (partitions, CPUs, memory MiB, time "
            "limit) and change the jobqueue.slurm settings "
            f"(SLURM_CONF={os.environ.get('SLURM_CONF', 'unset')})"
        )


def _squeue_state(job_ids):
    if not job_ids:
        return "no job was submitted"
    res = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T %r"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    if not lines:
        return f"jobs {', '.join(job_ids)} are no longer in the queue (they ended: see their logs)"
    return "jobs (id state reason): " + "; ".join(lines)


def _slurm_client(workers, timeout, dashboard_address=None):
    try:
        SLURMCluster = require("dask_jobqueue").SLURMCluster
    except ImportError:  # pragma: no cover - a runtime dependency
        raise ImportError("daskloc's SLURM support needs dask-jobqueue: pip install "
                          "'dask-jobqueue>=0.9'") from None
    jobs = 1 if workers is None else workers
    kwargs = slurm_cluster_kwargs(dashboard_address=dashboard_address)
    t0 = time.monotonic()
    cluster = SLURMCluster(**kwargs)
    try:
        _slurm_preflight(cluster)
        cluster.scale(jobs=jobs)
        client = _owning_client(cluster)
    except BaseException:
        cluster.close()
        raise

    def job_ids():
        return [w.job_id for w in list(cluster.workers.values()) if w.job_id]

    def check():
        failed = [name for name, w in list(cluster.workers.items()) if not w.job_id]
        if failed and not job_ids():
            raise RuntimeError(
                f"sbatch failed for daskloc's worker jobs ({', '.join(map(str, failed))}); "
                "check `sinfo`, `squeue` and the jobqueue.slurm settings"
            )

    def hint():
        log_dir = kwargs.get("log_directory") or "the directory sbatch ran in (slurm-JOBID.out)"
        partition = (f"partition {kwargs['queue']}" if kwargs.get("queue")
                     else "the default partition")
        return (
            f"{_squeue_state(job_ids())}. Check `squeue` and `sinfo` (are nodes free in "
            f"{partition}?), the job logs in {log_dir}, and "
            f"that compute nodes reach the scheduler at {cluster.scheduler_address} "
            "(jobqueue.slurm.interface); the jobs have been cancelled"
        )

    try:
        waited = _wait_for_first_worker(client, timeout, hint, check)
    except BaseException:
        client.close()
        raise
    logger.info("SLURM: %d job(s) %s submitted, first worker after %.1f s (%.1f s in all)",
                jobs, ",".join(job_ids()), waited, time.monotonic() - t0)
    return client


# ----------------------------------------------------------------- Kubernetes


def kubernetes_cluster_spec(name=None, *, workers=None, config=None):
    """The ``DaskCluster`` resource (a dict) that ``make_client("kubernetes")`` creates.

    Built with ``dask_kubernetes.operator.make_cluster_spec`` from Dask's configuration
    (the dask-kubernetes keys ``kubernetes.image``, ``kubernetes.resources``,
    ``kubernetes.env``, ``kubernetes.count.start``, ``kubernetes.idle-timeout``,
    ``kubernetes.scheduler-service-type``) and daskloc's own ``daskloc.kubernetes.*``:
    ``pvc`` (a PersistentVolumeClaim mounted at ``mount-path`` in the scheduler and every
    worker, for videos and stores on a shared filesystem; null for none),
    ``worker-command`` (default ``dask worker --nthreads 1``), ``scheduler-command``
    (default ``dask scheduler --host 0.0.0.0``: distributed no longer installs the
    ``dask-scheduler`` command that ``make_cluster_spec`` starts) and ``fs-group`` (the
    pods' ``securityContext.fsGroup``, default 1000: the daskloc image runs as uid 1000).

    Parameters
    ----------
    name : str, optional
        Cluster name (default: ``kubernetes.name`` with ``{user}``/``{uuid}`` filled in).
    workers : int, optional
        Worker pods (default: ``kubernetes.count.start``, or 1).
    config : str, os.PathLike or Mapping, optional
        A Dask configuration file merged over the current configuration (as in
        :func:`make_client`).

    Returns
    -------
    dict
        ``apiVersion: kubernetes.dask.org/v1``, ``kind: DaskCluster``; apply it with
        ``kubectl apply`` or give it to ``KubeCluster(custom_cluster_spec=...)``.

    Raises
    ------
    ImportError
        dask-kubernetes is not installed.
    ValueError
        ``workers`` is not a positive integer; ``kubernetes.image`` is dask's own image
        (it has no daskloc: build one with ``cluster/kubernetes/Dockerfile``).
    """
    _import_kubernetes()  # before merging config: see make_client
    from dask_kubernetes.operator import make_cluster_spec

    with _config_applied(config):
        # copies: leaving the block restores the config dicts in place
        conf = copy.deepcopy(dask.config.get("kubernetes"))
        own = dict(KUBERNETES_DEFAULTS,
                   **copy.deepcopy(dask.config.get("daskloc.kubernetes", default={}) or {}))
    image = conf.get("image")
    env = dict(conf.get("env") or {})
    if not image or (str(image).startswith("ghcr.io/dask/dask")
                     and "EXTRA_PIP_PACKAGES" not in env):
        raise ValueError(
            f"kubernetes.image is {image!r}, which has no daskloc in it: build the image in "
            "cluster/kubernetes/Dockerfile, push it to a registry the cluster pulls from, and "
            "set kubernetes.image (see cluster/kubernetes/daskloc-kubernetes.yaml)"
        )
    if workers is None:
        workers = int((conf.get("count") or {}).get("start") or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if name is None:
        name = str(conf.get("name") or "daskloc-{uuid}").format(
            user=_k8s_name(getpass.getuser()), uuid=uuid.uuid4().hex[:10])
    spec = make_cluster_spec(
        name=_k8s_name(name),
        image=image,
        n_workers=workers,
        resources=conf.get("resources") or None,
        env=env or None,
        worker_command=own["worker-command"],
        scheduler_service_type=conf.get("scheduler-service-type") or "ClusterIP",
        idle_timeout=int(conf.get("idle-timeout") or 0),
    )
    scheduler = spec["spec"]["scheduler"]["spec"]["containers"][0]
    # make_cluster_spec starts `dask-scheduler`, a command distributed no longer installs
    scheduler["args"] = str(own["scheduler-command"]).split()
    pods = [spec["spec"]["scheduler"]["spec"], spec["spec"]["worker"]["spec"]]
    for pod in pods:
        for container in pod["containers"]:
            for key in ("env", "resources"):
                if container.get(key) is None:
                    container.pop(key, None)
                else:  # scheduler and workers must not share one object
                    container[key] = copy.deepcopy(container[key])
        if own.get("fs-group") is not None:
            pod["securityContext"] = {"fsGroup": int(own["fs-group"])}
    if own.get("pvc"):
        for pod in pods:
            pod["volumes"] = [{"name": "data",
                               "persistentVolumeClaim": {"claimName": str(own["pvc"])}}]
            for container in pod["containers"]:
                container["volumeMounts"] = [{"name": "data",
                                              "mountPath": str(own["mount-path"])}]
    return spec


def _k8s_name(name):
    """A DNS-1123 label: lower case letters, digits and '-'."""
    out = "".join(c if c.isalnum() else "-" for c in str(name).lower()).strip("-")
    return out[:63].rstrip("-") or "daskloc"


def _import_kubernetes():
    require("dask_kubernetes.operator")  # the [kubernetes] extra


def _kubernetes_sources():
    """Where the Kubernetes client looks for credentials, and whether each exists."""
    tried = []
    kubeconfig = os.environ.get("KUBECONFIG")
    if kubeconfig:  # like kubectl: KUBECONFIG, when set, replaces ~/.kube/config
        for path in kubeconfig.split(os.pathsep):
            if path:
                tried.append((f"KUBECONFIG file {path}", os.path.isfile(path)))
    else:
        default = os.path.expanduser("~/.kube/config")
        tried.append((f"KUBECONFIG file {default} (KUBECONFIG unset)", os.path.isfile(default)))
    token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    in_pod = bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and os.path.isfile(token)
    tried.append(("in-cluster service account (KUBERNETES_SERVICE_HOST and " + token + ")",
                  in_pod))
    return tried


def check_kubernetes_api(timeout=10.0):
    """Check that a Kubernetes API server answers, as dask-kubernetes would reach it.

    Parameters
    ----------
    timeout : float
        Seconds to wait for the API server.

    Returns
    -------
    str
        The API server's URL.

    Raises
    ------
    ConnectionError
        No credentials found, or the API server does not answer (the message names the
        kubeconfig files and in-cluster credentials tried, and the server's error).
    """
    tried = _kubernetes_sources()
    listing = "; ".join(f"{what}: {'found' if ok else 'not found'}" for what, ok in tried)
    if not any(ok for _, ok in tried):
        raise ConnectionError(
            f"no Kubernetes API reachable: no credentials found (tried {listing}). Run "
            "daskloc where `kubectl get nodes` works, with the Dask operator installed "
            "(see cluster/README.md), or use --cluster local/slurm/tcp://ADDRESS"
        )
    result = {}

    def probe():
        try:
            import kr8s

            result["version"] = kr8s.api().version()  # kr8s.api() asks the server too
        except BaseException as exc:  # noqa: BLE001 - reported below
            result["error"] = exc

    thread = threading.Thread(target=probe, daemon=True, name="daskloc-kubernetes-probe")
    thread.start()
    thread.join(timeout)
    server = _kubernetes_server(tried) or "the API server"
    if thread.is_alive():
        raise ConnectionError(
            f"no Kubernetes API reachable: {server} did not answer within {timeout:g} s "
            f"(credentials: {listing}); check `kubectl get nodes`"
        )
    if "error" in result:
        exc = result["error"]
        raise ConnectionError(
            f"no Kubernetes API reachable: {server} failed ({type(exc).__name__}: {exc}) "
            f"(credentials: {listing}); check `kubectl get nodes`"
        )
    return server


def _kubernetes_server(tried):
    """The API server URL the credentials found point to (best effort; None if unknown)."""
    try:
        import yaml

        for what, ok in tried:
            if not ok:
                continue
            if what.startswith("in-cluster"):
                return (f"https://{os.environ['KUBERNETES_SERVICE_HOST']}:"
                        f"{os.environ.get('KUBERNETES_SERVICE_PORT', '443')}")
            path = what.removeprefix("KUBECONFIG file ").removesuffix(" (KUBECONFIG unset)")
            with open(path) as f:
                kc = yaml.safe_load(f) or {}
            contexts = {c.get("name"): c.get("context", {}) for c in kc.get("contexts") or []}
            clusters = {c.get("name"): c.get("cluster", {}) for c in kc.get("clusters") or []}
            context = contexts.get(kc.get("current-context"), {})
            return clusters.get(context.get("cluster"), {}).get("server")
    except Exception:  # noqa: BLE001 - only for the message
        return None
    return None


def _kubernetes_client(workers, timeout):
    _import_kubernetes()
    from dask_kubernetes.operator import KubeCluster

    check_kubernetes_api(timeout=min(timeout, 30.0))
    spec = kubernetes_cluster_spec(workers=workers)
    conf = dask.config.get("kubernetes")
    t0 = time.monotonic()
    cluster = KubeCluster(
        custom_cluster_spec=spec,
        namespace=conf.get("namespace"),
        shutdown_on_close=True,
        resource_timeout=int(timeout),
        quiet=True,
    )
    client = _owning_client(cluster)
    name = spec["metadata"]["name"]

    def hint():
        return (f"check `kubectl get daskcluster,pods -l dask.org/cluster-name={name}` and "
                "`kubectl describe pod` (image pull, resources, the volume claim); the cluster "
                "has been deleted")

    try:
        waited = _wait_for_first_worker(client, timeout, hint)
    except BaseException:
        client.close()
        raise
    logger.info("Kubernetes: cluster %s, first worker after %.1f s (%.1f s in all)", name,
                waited, time.monotonic() - t0)
    return client

