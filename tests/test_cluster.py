"""Where daskloc runs: daskloc.cluster.make_client for local, SLURM, Kubernetes and a running
scheduler.

SLURM is real: ``.ci/services.sh`` starts a single-node SLURM on loopback (the same
``cluster/slurm/start-local-slurm.sh`` users get) and exports ``SLURM_CONF`` and
``DASKLOC_TEST_SLURM=1``. Without them the SLURM tests skip, unless
``DASKLOC_REQUIRE_SERVICES=1`` (CI): then they fail.

Kubernetes cannot run here: its tests are offline (the DaskCluster spec built in Python,
the manifests in ``cluster/kubernetes/`` parsed and checked, and the clear error when no
Kubernetes API answers).
"""

from __future__ import annotations

import copy
import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import dask
import pandas as pd
import pytest
import yaml

import daskloc
from daskloc import cluster as dlc
from tests._listening import (
    http_status,
    is_loopback,
    is_wildcard,
    link_port,
    listening,
    other_interface_address,
    reachable,
    sockets_of,
)
from tests._markers import require_marker
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S_DIR = os.path.join(REPO, "cluster", "kubernetes")
K8S_CONFIG = os.path.join(K8S_DIR, "daskloc-kubernetes.yaml")
SLURM_DIR = os.path.join(REPO, "cluster", "slurm")


# ----------------------------------------------------------------- helpers


def require_slurm():
    """Skip (or fail under DASKLOC_REQUIRE_SERVICES=1) without the test SLURM."""
    require_marker("services", "the test SLURM")
    missing = [v for v in ("SLURM_CONF", "DASKLOC_TEST_SLURM") if not os.environ.get(v)]
    if not missing and shutil.which("sbatch") is None:
        missing = ["sbatch on PATH"]
    if missing:
        reason = (f"SLURM not available: {', '.join(missing)} unset "
                  "(.ci/services.sh or cluster/slurm/start-local-slurm.sh starts one)")
        if os.environ.get("DASKLOC_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + "; DASKLOC_REQUIRE_SERVICES=1 makes this an error", pytrace=False)
        pytest.skip(reason)


def slurm_config(tmp_path, **changes):
    """A small jobqueue config for the single-node test SLURM, as a YAML file."""
    conf = {
        "cores": 1,
        "processes": 1,
        "memory": "1GiB",
        "queue": "debug",
        "interface": "lo",
        "walltime": "00:15:00",
        "death-timeout": 30,
        "log-directory": str(tmp_path / "slurm-logs"),
        "local-directory": str(tmp_path / "worker-space"),
    }
    conf.update(changes)
    path = tmp_path / "jobqueue.yaml"
    path.write_text(yaml.safe_dump({"jobqueue": {"slurm": conf}}))
    return path


def squeue(job_ids):
    """{job id: state} of the given jobs still in the queue."""
    out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T"],
                         capture_output=True, text=True, timeout=30).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def wait_until_gone(job_ids, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        left = squeue(job_ids)
        if not left:
            return {}
        time.sleep(0.25)
    return squeue(job_ids)


def worker_job_ids(client):
    """{worker address: SLURM_JOB_ID in that worker's environment}."""
    return client.run(lambda: os.environ.get("SLURM_JOB_ID"))


def many_videos_supported():
    """The many-videos batch (``batch({name: video, ...})``) is in this tree."""
    import daskloc.pipeline

    return hasattr(daskloc.pipeline, "video_names")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------- argument checks


@pytest.mark.parametrize("bad", ["", "slurmm", "k8s", "LOCAL", "127.0.0.1"])
def test_unknown_cluster_names_the_choices(bad):
    with pytest.raises(ValueError, match="'local', 'slurm', 'kubernetes' or a scheduler address"):
        dlc.make_client(bad)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        dlc.make_client("local", workers=workers)


def test_workers_with_a_scheduler_address_is_an_error():
    with pytest.raises(ValueError, match="workers cannot be set"):
        dlc.make_client("tcp://127.0.0.1:8786", workers=2)


# ----------------------------------------------------------------- configuration files


def test_config_file_missing_or_not_a_mapping(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        dlc.make_client("slurm", config=tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must hold a mapping"):
        dlc.make_client("slurm", config=tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("jobqueue: {slurm: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        dlc.make_client("slurm", config=tmp_path / "bad.yaml")


def test_config_file_merges_key_by_key_and_only_for_the_call(tmp_path):
    import dask_jobqueue  # noqa: F401 - its defaults

    path = tmp_path / "c.yaml"
    path.write_text("jobqueue:\n  slurm:\n    cores: 3\n    memory: 5GiB\n")
    before = copy.deepcopy(dask.config.get("jobqueue.slurm"))
    kwargs = dlc.slurm_cluster_kwargs(config=path)
    assert kwargs["cores"] == 3 and kwargs["memory"] == "5GiB"
    # the rest of jobqueue.slurm keeps dask-jobqueue's defaults (merged, not replaced)
    assert kwargs["walltime"] == before["walltime"] == "00:30:00"
    assert kwargs["worker_command"] == "distributed.cli.dask_worker"
    assert dask.config.get("jobqueue.slurm") == before  # nothing left behind


def test_slurm_without_cores_or_memory_says_which_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("jobqueue:\n  slurm:\n    cores: 2\n")
    with pytest.raises(ValueError, match=r"jobqueue\.slurm\.memory.*daskloc-slurm\.yaml"):
        dlc.make_client("slurm", config=path)


def test_config_file_sets_the_slurm_job_script(tmp_path):
    """A config= file's jobqueue.slurm settings are what the generated job script asks for
    (no SLURM needed: dask-jobqueue writes the script itself)."""
    from dask_jobqueue import SLURMCluster

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"jobqueue": {"slurm": {
        "cores": 3, "processes": 3, "memory": "6GiB", "queue": "gpu-short",
        "walltime": "01:02:03", "account": "lab42", "interface": "lo",
        "job-script-prologue": ["source /opt/daskloc/bin/activate"],
        "job-extra-directives": ["--qos=low"],
        "log-directory": str(tmp_path / "logs"),
    }}}))
    cluster = SLURMCluster(**dlc.slurm_cluster_kwargs(config=path))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH --cpus-per-task=3", "#SBATCH --mem=6G", "#SBATCH -p gpu-short",
                 "#SBATCH -t 01:02:03", "#SBATCH -A lab42", "#SBATCH --qos=low",
                 f"#SBATCH -o {tmp_path / 'logs'}/", "source /opt/daskloc/bin/activate"):
        assert line in script, script
    assert "--nworkers 3" in script and "--nthreads 1" in script, script
    # glibc's steady-state malloc thresholds for the workers, after the user's prologue
    export = "export MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=67108864"
    assert script.index("source /opt/daskloc/bin/activate") < script.index(export), script
    # the same python as the submitting process runs the workers
    assert f"{sys.executable} -m distributed.cli.dask_worker" in script


def test_slurm_cluster_keeps_its_config_after_the_call(tmp_path):
    """Jobs a cluster submits later (scale up) use the settings it was made with, not
    whatever Dask's configuration says by then."""
    from dask_jobqueue import SLURMCluster

    path = tmp_path / "c.yaml"
    path.write_text("jobqueue: {slurm: {cores: 2, memory: 3GiB, walltime: '00:07:00'}}\n")
    cluster = SLURMCluster(**dlc.slurm_cluster_kwargs(config=path))
    try:
        with dask.config.set({"jobqueue.slurm.walltime": "09:09:09",
                              "jobqueue.slurm.cores": 8}):
            script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -t 00:07:00" in script and "--cpus-per-task=2" in script, script


# ----------------------------------------------------------------- local and address


@pytest.mark.slow
def test_local_client_closes_its_cluster():
    client = dlc.make_client("local", workers=2)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        cluster = client.cluster
        assert all(w["nthreads"] == 1 for w in client.scheduler_info()["workers"].values())
    finally:
        client.close()
    assert cluster.status.name == "closed"


def _frame_faults():
    """Minor page faults of 100 frame-sized arrays (640 x 424 RGB, 814 KB) made, written
    and freed one after the other in this process, as a worker decoding a movie does."""
    import resource

    import numpy as np

    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):
        frame = np.empty((424, 640, 3), np.uint8)
        frame.fill(1)
        del frame
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


@pytest.mark.slow
def test_local_workers_use_freed_memory_again(monkeypatch):
    """The worker processes of daskloc's local cluster start with glibc's steady-state
    malloc thresholds, not with distributed's MALLOC_TRIM_THRESHOLD_=65536 alone, which
    maps every block over 128 KiB afresh: each decoded frame then costs a page fault per
    4 KiB (about 200). A MALLOC_MMAP_THRESHOLD_ in the configuration is the user's choice
    and stands, and with glibc's fixed 128 KiB it does give those faults (so the count
    below does see the difference)."""
    expected = {k: str(v) for k, v in dlc.WORKER_MALLOC_ENVIRON.items()}
    # distributed's nanny leaves the variables it sets in this process's environment,
    # where they win over the configuration: none from the clusters of earlier tests
    for key in expected:
        monkeypatch.delenv(key, raising=False)

    def environ():
        return {k: os.environ.get(k) for k in expected}

    with dlc.make_client("local", workers=2) as client:
        envs = client.run(environ)
        faults = client.run(_frame_faults)
    assert len(envs) == 2 and all(env == expected for env in envs.values()), envs
    # 100 frames x 200 pages = 20,000 faults when every frame is new memory
    assert all(n < 2_000 for n in faults.values()), faults

    for key in expected:
        monkeypatch.delenv(key, raising=False)
    chosen = {"distributed": {"nanny": {"pre-spawn-environ": {
        "MALLOC_MMAP_THRESHOLD_": 131072, "MALLOC_TRIM_THRESHOLD_": 65536}}}}
    with dlc.make_client("local", workers=1, config=chosen) as client:
        envs = client.run(environ)
        faults = client.run(_frame_faults)
    assert list(envs.values()) == [{"MALLOC_MMAP_THRESHOLD_": "131072",
                                    "MALLOC_TRIM_THRESHOLD_": "65536"}]
    assert all(n > 10_000 for n in faults.values()), faults


def test_worker_preload_config_adds_daskloc_after_the_configured_preloads():
    # distributed's defaults registered before, not inside, the settings made here
    import distributed  # noqa: F401

    with dask.config.set({"distributed.worker.preload": [], "distributed.worker.preload-argv": []}):
        assert dlc.worker_preload_config() == {
            "distributed.worker.preload": [dlc.WORKER_PRELOAD],
            "distributed.worker.preload-argv": []}
    # per-preload argument lists keep their pairing: the daskloc preload gets none
    with dask.config.set({"distributed.worker.preload": ["mine.py"],
                          "distributed.worker.preload-argv": [["--level", "2"]]}):
        assert dlc.worker_preload_config() == {
            "distributed.worker.preload": ["mine.py", dlc.WORKER_PRELOAD],
            "distributed.worker.preload-argv": [["--level", "2"], []]}
    # one list for every preload, and a preload given as one string
    with dask.config.set({"distributed.worker.preload": "mine.py",
                          "distributed.worker.preload-argv": ["--level", "2"]}):
        assert dlc.worker_preload_config() == {
            "distributed.worker.preload": ["mine.py", dlc.WORKER_PRELOAD],
            "distributed.worker.preload-argv": ["--level", "2"]}
    with dask.config.set({"distributed.worker.preload": [dlc.WORKER_PRELOAD]}):
        assert dlc.worker_preload_config()["distributed.worker.preload"] == [dlc.WORKER_PRELOAD]


@pytest.mark.slow
def test_local_workers_load_the_kernel_before_their_first_task(tmp_path):
    """Each worker of daskloc's local cluster imports the pipeline's worker side and loads
    the locate kernel from numba's cache as it starts, in a background thread, before any
    task of a job reaches it; a preload the configuration names runs too."""
    mine = tmp_path / "mine_preload.py"
    mine.write_text("def dask_setup(worker):\n    worker.mine_ran = True\n")

    def state(dask_worker):  # pickled by value: unpickling it imports nothing of daskloc
        import sys
        import threading

        before = {m: m in sys.modules for m in ("daskloc.pipeline._tasks", "daskloc.stores",
                                                "daskloc.video")}
        for thread in threading.enumerate():
            if thread.name == "daskloc-warm":
                thread.join(120)
        from daskloc.locate.preprocess import _bandpass_unsigned

        return {"mine": getattr(dask_worker, "mine_ran", False),
                "imported": {m: m in sys.modules for m in before},
                "kernel": [str(sig) for sig in _bandpass_unsigned.signatures]}

    config = {"distributed": {"worker": {"preload": [str(mine)]}}}
    with dlc.make_client("local", workers=2, config=config) as client:
        states = client.run(state)
    assert len(states) == 2
    for got in states.values():
        assert got["mine"], got
        assert all(got["imported"].values()), got
        # the 8-bit band pass, loaded with no frame of a job sent to the worker
        assert any("uint8" in sig for sig in got["kernel"]), got


_CYCLE_AT_EXIT = """
import atexit, sys
from daskloc._utils import skip_final_collections
skip, path = sys.argv[1] == "skip", sys.argv[2]
class Cycle:
    def __del__(self):
        with open(path, "a") as f:
            f.write("collected ")
if skip:
    skip_final_collections()
atexit.register(lambda: open(path, "a").write("closed "))  # registered after: runs before
cycle = Cycle()
cycle.me = cycle
del cycle  # unreachable garbage now, left to the collector
"""


@pytest.mark.parametrize("skip", [False, True])
def test_skip_final_collections_leaves_the_exit_collections_nothing_to_do(tmp_path, skip):
    """What the workers of daskloc's local clusters and the daskloc command do at exit:
    a handler registered later (a client or a store closing) still runs, and the
    interpreter's final collections no longer walk the objects alive at that moment
    (a cycle they would have collected stays as it is)."""
    out = tmp_path / "events.txt"
    done = subprocess.run([sys.executable, "-c", _CYCLE_AT_EXIT, "skip" if skip else "plain",
                           str(out)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and not done.stderr, done.stderr
    assert out.read_text().split() == (["closed"] if skip else ["closed", "collected"])


@pytest.mark.slow
def test_config_file_with_distributed_keys_in_a_fresh_process(tmp_path):
    """A --cluster-config file setting distributed.* keys, in a process that has not
    imported distributed yet (the CLI): its value reaches the workers, and closing the
    client works. Before, distributed's defaults were registered inside the file's merge
    and dropped with it when the merge ended: closing the client then waited 60 s and
    failed with KeyError: 'distributed'."""
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump({"distributed": {"nanny": {"pre-spawn-environ": {
        "MALLOC_MMAP_THRESHOLD_": 1048576}}}}))
    script = (
        "import os, sys\n"
        "from daskloc.cluster import make_client\n"
        "assert 'distributed' not in sys.modules\n"
        f"client = make_client('local', workers=1, config={str(path)!r})\n"
        "print(list(client.run(lambda: os.environ.get('MALLOC_MMAP_THRESHOLD_')).values()))\n"
        "client.close()\n"
        "import dask\n"
        "print(dask.config.get('distributed.deploy.lost-worker-timeout'))\n"
    )
    # without the variables the nannies of earlier tests left in this environment (they
    # win over the configuration)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[:2] == ["['1048576']", "15s"], done.stdout


@pytest.mark.slow
def test_connect_still_works():
    client = daskloc.connect(workers=1)
    try:
        assert len(client.scheduler_info()["workers"]) == 1
    finally:
        client.close()


def test_address_client_leaves_the_scheduler_running(cluster):
    client = dlc.make_client(cluster.scheduler_address)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
    finally:
        client.close()
    assert cluster.status.name == "running"
    with dlc.make_client(cluster.scheduler_address) as again:
        assert again.submit(sum, [1, 2]).result() == 3


@pytest.mark.slow
def test_address_that_does_not_answer_fails_in_bounded_time():
    address = f"tcp://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(OSError, match=re.escape(address)):
        dlc.make_client(address, timeout=2)
    assert time.monotonic() - t0 < 20


# ----------------------------------------------------------------- the dashboard


def own_ports(client):
    """{"scheduler": port, "worker ...": port, "nanny ...": port} of a local cluster."""
    from distributed.comm import get_address_host_port

    info = client.scheduler_info(n_workers=-1)
    ports = {"scheduler": get_address_host_port(client.scheduler.address)[1]}
    for address, w in info["workers"].items():
        ports[f"worker {address}"] = get_address_host_port(address)[1]
        if w.get("nanny"):
            ports[f"nanny {w['nanny']}"] = get_address_host_port(w["nanny"])[1]
    return ports


def hold_port(host, port, patience=60.0):
    """A socket listening on ``host:port``, or None if another process keeps a socket
    listening there for ``patience`` seconds (other clusters come and go on a shared
    machine)."""
    deadline = time.monotonic() + patience
    while True:
        holder = socket.socket()
        # connections in TIME_WAIT must not stop the bind; a listening socket still does
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            holder.bind((host, port))
            holder.listen()
            return holder
        except OSError:
            holder.close()
            if time.monotonic() > deadline:
                return None
            time.sleep(0.5)


def assert_dashboard_answers(link):
    status, body = http_status(link)
    assert status == 200, (link, status)
    assert "Dask" in body, body[:500]  # a Dask dashboard, not whatever else holds a port


@pytest.mark.slow
@pytest.mark.parametrize("start", ["make_client", "connect"])
def test_local_dashboard_scheduler_and_workers_listen_on_loopback_only(start):
    """By default nothing of the local cluster listens beyond this machine: the dashboard
    (no login), the scheduler, the nannies and the workers, as `ss` shows them."""
    client = (dlc.make_client("local", workers=2) if start == "make_client"
              else daskloc.connect(workers=2))
    try:
        link = client.dashboard_link
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", link), link
        port = link_port(link)
        worker_pids = set(client.run(os.getpid).values())
        ours = {os.getpid()} | worker_pids
        rows = listening()
        assert sockets_of(port, ours, rows) == ["127.0.0.1"], [r for r in rows if r[1] == port]
        for what, p in own_ports(client).items():
            addresses = sockets_of(p, ours, rows)
            assert addresses and all(is_loopback(a) for a in addresses), (what, p, addresses)
        # anything else a worker process listens on (a worker dashboard) is loopback too
        for host, p, owners in rows:
            if owners & worker_pids:
                assert is_loopback(host), (host, p)
        assert_dashboard_answers(link)
        other = other_interface_address()
        if other is not None:  # not reachable through the machine's network address
            assert not reachable(other, port), f"dashboard reachable at {other}:{port}"
    finally:
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize("holder_host", ["127.0.0.1", "0.0.0.0"])
def test_busy_8787_gives_a_free_loopback_port_and_the_link_names_it(holder_host):
    """8787 taken (here, or by another process on this shared machine): distributed moves
    the dashboard to a free port, still on 127.0.0.1, and dashboard_link names that port."""
    holder = hold_port(holder_host, 8787)
    try:
        if holder is None:  # another process kept it listening all along: busy all the same
            assert 8787 in {p for _, p, _ in listening()}, "8787 could not be held"
        with pytest.warns(UserWarning, match="8787 is already in use"):
            client = dlc.make_client("local", workers=1)
        try:
            link = client.dashboard_link
            port = link_port(link)
            assert port != 8787 and link == f"http://127.0.0.1:{port}/status"
            assert sockets_of(port, {os.getpid()}) == ["127.0.0.1"]
            assert_dashboard_answers(link)
        finally:
            client.close()
        if holder is not None:  # the dashboard did not take 8787 from its holder
            assert holder.getsockname()[1] == 8787
    finally:
        if holder is not None:
            holder.close()


@pytest.mark.slow
def test_dashboard_address_opts_in_to_every_interface():
    """dashboard_address="0.0.0.0:0": listening on every interface (reachable through
    the machine's own network address), the link naming the port."""
    with dlc.make_client("local", workers=1, dashboard_address="0.0.0.0:0") as client:
        link = client.dashboard_link
        port = link_port(link)
        addresses = sockets_of(port, {os.getpid()})
        assert addresses and all(is_wildcard(a) for a in addresses), addresses
        assert link == f"http://127.0.0.1:{port}/status"
        assert dlc.dashboard_is_public(dlc.dashboard_bound(client))
        assert_dashboard_answers(link)
        other = other_interface_address()
        if other is not None:
            assert_dashboard_answers(f"http://{other}:{port}/status")


@pytest.mark.slow
def test_dashboard_address_chosen_port_and_interface_are_in_the_link():
    """A given port is used; a given interface is what the link names (distributed's own
    link would name the scheduler's 127.0.0.1, where this dashboard does not listen)."""
    port = free_port()
    with daskloc.connect(workers=1, dashboard_address=f"127.0.0.1:{port}") as client:
        assert client.dashboard_link == f"http://127.0.0.1:{port}/status"
        assert sockets_of(port, {os.getpid()}) == ["127.0.0.1"]
        assert not dlc.dashboard_is_public(dlc.dashboard_bound(client))
    other = other_interface_address()
    if other is None:
        pytest.skip("no network interface besides loopback to bind the dashboard to")
    with dlc.make_client("local", workers=1, dashboard_address=f"{other}:0") as client:
        link = client.dashboard_link
        port = link_port(link)
        assert link == f"http://{other}:{port}/status"
        assert sockets_of(port, {os.getpid()}) == [other]
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")  # scheduler unmoved
        assert_dashboard_answers(link)


@pytest.mark.parametrize("bad,phrase", [
    ("8787", "no HOST"),
    ("[::1]:8787", "IPv6"),
    ("127.0.0.1:8787,:8788", "list"),
    ("127.0.0.1:port", "not a number"),
    ("127.0.0.1:65536", "not a number"),
    ("203.0.113.7:8787", "not an address of this machine"),
    ("no-such-host.invalid:8787", "does not resolve"),
    (8787, "not a HOST:PORT string"),
])
def test_invalid_dashboard_address_is_refused_before_anything_starts(bad, phrase):
    for call in (lambda: dlc.make_client("local", workers=1, dashboard_address=bad),
                 lambda: daskloc.connect(workers=1, dashboard_address=bad),
                 lambda: dlc.slurm_cluster_kwargs(
                     config={"jobqueue": {"slurm": {"cores": 1, "memory": "1GiB"}}},
                     dashboard_address=bad)):
        with pytest.raises(ValueError, match=re.escape(phrase)) as info:
            call()
        assert "127.0.0.1:8787" in str(info.value)  # the message says what to use


def test_dashboard_address_is_refused_where_the_scheduler_is_not_ours():
    with pytest.raises(ValueError, match="running scheduler.*serves its own dashboard"):
        dlc.make_client("tcp://127.0.0.1:8786", dashboard_address="127.0.0.1:8787")
    with pytest.raises(ValueError, match="running scheduler.*serves its own dashboard"):
        daskloc.connect(scheduler="tcp://127.0.0.1:8786", dashboard_address="127.0.0.1:8787")
    with pytest.raises(ValueError, match="Kubernetes.*scheduler pod"):
        dlc.make_client("kubernetes", dashboard_address="127.0.0.1:8787")


def test_slurm_dashboard_is_loopback_unless_configured_or_given():
    """dask-jobqueue's default dashboard is ':8787' (every interface): daskloc makes it
    127.0.0.1:8787, keeps a configured scheduler-options dashboard_address, and a
    dashboard_address given to it wins over both. Other scheduler options are kept."""
    import dask_jobqueue  # noqa: F401 - its defaults

    base = {"cores": 1, "memory": "1GiB"}
    kwargs = dlc.slurm_cluster_kwargs(config={"jobqueue": {"slurm": base}})
    assert kwargs["scheduler_options"] == {"dashboard_address": "127.0.0.1:8787"}
    assert "interface" not in kwargs["scheduler_options"]  # the scheduler's interface unchanged
    configured = {"jobqueue": {"slurm": dict(base, **{"scheduler-options": {
        "dashboard_address": ":8788", "port": 8999}})}}
    kwargs = dlc.slurm_cluster_kwargs(config=configured)
    assert kwargs["scheduler_options"] == {"dashboard_address": ":8788", "port": 8999}
    kwargs = dlc.slurm_cluster_kwargs(config=configured, dashboard_address="0.0.0.0:0")
    assert kwargs["scheduler_options"] == {"dashboard_address": "0.0.0.0:0", "port": 8999}


def test_slurm_worker_dashboards_stay_on_their_node_unless_configured(tmp_path):
    """``dask worker`` serves its dashboard on every interface of the compute node by
    default (no login): daskloc's job script binds it to the node's loopback, and a
    configured worker-extra-args dashboard option is the user's choice."""
    from dask_jobqueue import SLURMCluster

    base = {"cores": 1, "memory": "1GiB", "worker-extra-args": ["--lifetime", "1h"]}
    preload = ["--preload", dlc.WORKER_PRELOAD]
    kwargs = dlc.slurm_cluster_kwargs(config={"jobqueue": {"slurm": base}})
    assert kwargs["worker_extra_args"] == ["--lifetime", "1h",
                                           "--dashboard-address", "127.0.0.1:0", *preload]
    cluster = SLURMCluster(**kwargs)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "--lifetime 1h --dashboard-address 127.0.0.1:0" in script, script
    for own in (["--no-dashboard"], ["--dashboard-address=:8789"]):
        conf = {"jobqueue": {"slurm": dict(base, **{"worker-extra-args": own})}}
        assert dlc.slurm_cluster_kwargs(config=conf)["worker_extra_args"] == own + preload


def test_slurm_workers_get_daskloc_preload_and_the_configured_ones():
    """``dask worker --preload`` replaces the preloads of the node's own configuration:
    the job script names daskloc's and the configured ones, each once."""
    base = {"cores": 1, "memory": "1GiB"}
    conf = {"jobqueue": {"slurm": base}, "distributed": {"worker": {"preload": ["mine.py"]}}}
    args = dlc.slurm_cluster_kwargs(config=conf)["worker_extra_args"]
    assert args[2:] == ["--preload", "mine.py", "--preload", dlc.WORKER_PRELOAD], args
    given = {"jobqueue": {"slurm": dict(base, **{"worker-extra-args": [
        f"--preload={dlc.WORKER_PRELOAD}", "--preload", "mine.py"]})},
        "distributed": {"worker": {"preload": ["mine.py"]}}}
    args = dlc.slurm_cluster_kwargs(config=given)["worker_extra_args"]
    assert args == [f"--preload={dlc.WORKER_PRELOAD}", "--preload", "mine.py",
                    "--dashboard-address", "127.0.0.1:0"], args


@pytest.mark.services
def test_slurm_scheduler_stays_on_its_interface_and_its_dashboard_on_loopback(tmp_path):
    """A real SLURM cluster whose scheduler listens on the machine's network interface
    (as it must for workers on other nodes): a worker job connects to it there, and the
    dashboard listens on 127.0.0.1 only, where its link points."""
    require_slurm()
    import psutil

    other = other_interface_address()
    if other is None:
        pytest.skip("no network interface besides loopback for the SLURM scheduler")
    interface = next(name for name, addresses in psutil.net_if_addrs().items()
                     if any(a.address == other for a in addresses))
    with dlc.make_client("slurm", workers=1, timeout=120,
                         config=slurm_config(tmp_path, interface=interface)) as client:
        assert client.scheduler.address.startswith(f"tcp://{other}:")
        assert client.scheduler_info()["workers"]  # a SLURM worker reached it there
        scheduler_port = int(client.scheduler.address.rsplit(":", 1)[1])
        rows = listening()
        assert sockets_of(scheduler_port, {os.getpid()}, rows) == [other]
        link = client.dashboard_link
        port = link_port(link)
        assert link == f"http://127.0.0.1:{port}/status"
        assert sockets_of(port, {os.getpid()}, rows) == ["127.0.0.1"]
        assert_dashboard_answers(link)
        assert not reachable(other, port)


# ----------------------------------------------------------------- SLURM, real


@pytest.fixture
def video_pair():
    """Two small synthetic videos (the second with black frames: a chunk without features)."""
    return {
        "first": as_video(make_spots(n_frames=16, seed=1), chunks=4),
        "second": as_video(make_spots(n_frames=12, seed=2, black=range(4, 8)), chunks=4),
    }


@pytest.mark.services
def test_slurm_batch_runs_in_slurm_jobs_and_equals_a_local_run(tmp_path, client, video_pair):
    """daskloc.batch on a SLURMCluster: the chunk tasks ran on workers inside SLURM jobs
    (SLURM_JOB_ID in their environment, the jobs RUNNING in squeue), the features equal a
    local run row for row, and closing the client cancels the jobs."""
    require_slurm()
    from distributed import get_task_stream

    video = video_pair["first"]
    expected = daskloc.batch(video, DIAMETER, store=tmp_path / "local.parquet",
                             client=client, **PARAMS).compute()
    assert len(expected) > 0

    t0 = time.monotonic()
    slurm = dlc.make_client("slurm", workers=2, config=slurm_config(tmp_path), timeout=120)
    started = time.monotonic() - t0
    print(f"SLURM: first worker connected {started:.1f} s after make_client was called")
    try:
        assert "#SBATCH -p debug" in slurm.cluster.job_script()
        slurm.wait_for_workers(2, timeout=60)
        jobs = worker_job_ids(slurm)
        job_ids = sorted(set(jobs.values()))
        assert len(job_ids) == 2 and all(j and j.isdigit() for j in job_ids), jobs
        submitted = sorted(w.job_id for w in slurm.cluster.workers.values())
        assert job_ids == submitted
        malloc = slurm.run(lambda: os.environ.get("MALLOC_MMAP_THRESHOLD_"))
        assert set(malloc.values()) == {str(dlc.WORKER_MALLOC_ENVIRON["MALLOC_MMAP_THRESHOLD_"])}
        # daskloc's preload ran in each worker (no task imports it)
        preloaded = slurm.run(lambda: dlc.WORKER_PRELOAD in sys.modules)
        assert list(preloaded.values()) == [True, True], preloaded
        assert set(squeue(job_ids).values()) == {"RUNNING"}

        with get_task_stream(slurm) as ts:
            got = daskloc.batch(video, DIAMETER, store=tmp_path / "slurm.parquet",
                                client=slurm, **PARAMS).compute()
        ran_on = {t["worker"] for t in ts.data if "_chunk_task" in t["key"]}
        assert ran_on and ran_on <= set(jobs), (ran_on, jobs)
        assert {jobs[w] for w in ran_on} <= set(job_ids)
        pd.testing.assert_frame_equal(got, expected, check_exact=True)
    finally:
        slurm.close()
    assert wait_until_gone(job_ids) == {}, "closing the client must cancel the SLURM jobs"


@pytest.mark.services
def test_slurm_many_videos_batch_equals_local_runs(tmp_path, client, video_pair):
    """Two videos in one batch on SLURM workers: each video's features equal a local run."""
    require_slurm()
    if not many_videos_supported():
        pytest.skip("the many-videos batch (batch({name: video})) is not in this tree yet")

    expected = daskloc.batch(video_pair, DIAMETER, store=tmp_path / "local",
                             client=client, **PARAMS)
    expected = {name: df.compute() for name, df in expected.items()}
    with dlc.make_client("slurm", workers=2, config=slurm_config(tmp_path),
                         timeout=120) as slurm:
        jobs = worker_job_ids(slurm)
        job_ids = sorted({j for j in jobs.values() if j})
        assert job_ids and set(squeue(job_ids).values()) == {"RUNNING"}
        got = daskloc.batch(video_pair, DIAMETER, store=tmp_path / "slurm", client=slurm,
                            **PARAMS)
        got = {name: df.compute() for name, df in got.items()}
    assert list(got) == list(expected) == ["first", "second"]
    for name in expected:
        assert len(expected[name]) > 0
        pd.testing.assert_frame_equal(got[name], expected[name], check_exact=True)
    assert wait_until_gone(job_ids) == {}


@pytest.mark.services
def test_slurm_refused_job_is_a_clear_error(tmp_path):
    require_slurm()
    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        dlc.make_client("slurm", config=slurm_config(tmp_path, queue="no-such-partition"))
    message = str(info.value)
    assert "SLURM refuses" in message and "no-such-partition" in message
    assert "sinfo" in message and "invalid partition" in message.lower()
    assert time.monotonic() - t0 < 30


@pytest.mark.services
def test_slurm_worker_that_never_starts_times_out_and_cancels(tmp_path):
    """Jobs held in the queue: a TimeoutError within the bound that names squeue and sinfo
    and the jobs' state, and the jobs are cancelled."""
    require_slurm()
    config = slurm_config(tmp_path, **{"job-extra-directives": ["--begin=now+3600"]})
    t0 = time.monotonic()
    with pytest.raises(TimeoutError) as info:
        dlc.make_client("slurm", workers=2, config=config, timeout=3)
    elapsed = time.monotonic() - t0
    message = str(info.value)
    assert "within 3 s" in message and "squeue" in message and "sinfo" in message
    assert "PENDING" in message and "BeginTime" in message
    job_ids = re.findall(r"(\d+) PENDING", message)
    assert len(job_ids) == 2, message
    assert elapsed < 30
    assert wait_until_gone(job_ids) == {}


@pytest.mark.services
def test_slurm_sbatch_script_runs_daskloc_end_to_end(tmp_path, client):
    """cluster/slurm/daskloc-locate.sbatch as a user submits it: one SLURM job runs the
    daskloc CLI, which runs its workers in other SLURM jobs; the store equals a local run."""
    require_slurm()
    from daskloc.cli import main

    if not any(getattr(p, "name", None) == "cluster"
               for p in main.commands["locate"].params):
        pytest.skip("the CLI has no --cluster option yet")
    import tifffile

    arr = make_spots(n_frames=16, seed=3)
    movie = tmp_path / "movie.tif"
    tifffile.imwrite(movie, arr)
    daskloc.batch(str(movie), DIAMETER, store=tmp_path / "local.parquet", client=client,
                  do_not_return=True, **PARAMS)
    expected = daskloc.read_features(tmp_path / "local.parquet")
    out = tmp_path / "slurm.parquet"
    env = dict(os.environ, DASKLOC_WORKER_JOBS="1",
               DASKLOC_CLUSTER_CONFIG=str(slurm_config(tmp_path)),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    sub = subprocess.run(
        ["sbatch", "--parsable", "--mem=2G", os.path.join(SLURM_DIR, "daskloc-locate.sbatch"),
         str(movie), str(out), "--diameter", str(DIAMETER), "--minmass", str(PARAMS["minmass"])],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert sub.returncode == 0, sub.stderr
    job = sub.stdout.strip().split(";")[0]
    assert wait_until_gone([job], seconds=240) == {}
    log = (tmp_path / f"daskloc-{job}.out").read_text()
    assert f"daskloc job {job}" in log, log
    got = daskloc.read_features(out)
    pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                  expected.reset_index(drop=True), check_exact=True)
    worker_logs = glob.glob(str(tmp_path / "slurm-logs" / "*.err"))
    assert worker_logs, "the worker ran in its own SLURM job, with its own log"


# ----------------------------------------------------------------- Kubernetes, offline


K8S_SETTINGS = {
    "kubernetes": {
        "image": "registry.example.org/lab/daskloc:9.9",
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"},
                      "limits": {"cpu": "1", "memory": "4Gi"}},
        "env": {"NUMBA_NUM_THREADS": "1"},
    },
    "daskloc": {"kubernetes": {"pvc": "shared-videos", "mount-path": "/mnt/v"}},
}


def test_kubernetes_spec_image_commands_resources_volume():
    spec = dlc.kubernetes_cluster_spec("lab-run", workers=3, config=K8S_SETTINGS)
    assert spec["apiVersion"] == "kubernetes.dask.org/v1" and spec["kind"] == "DaskCluster"
    assert spec["metadata"]["name"] == "lab-run"
    worker_pod = spec["spec"]["worker"]["spec"]
    scheduler_pod = spec["spec"]["scheduler"]["spec"]
    assert spec["spec"]["worker"]["replicas"] == 3
    (worker,) = worker_pod["containers"]
    (scheduler,) = scheduler_pod["containers"]
    for container in (worker, scheduler):
        assert container["image"] == "registry.example.org/lab/daskloc:9.9"
        assert container["resources"] == K8S_SETTINGS["kubernetes"]["resources"]
        assert {"name": "NUMBA_NUM_THREADS", "value": "1"} in container["env"]
        assert container["volumeMounts"] == [{"name": "data", "mountPath": "/mnt/v"}]
    assert worker["resources"] is not scheduler["resources"]
    for pod in (worker_pod, scheduler_pod):
        assert pod["volumes"] == [{"name": "data",
                                   "persistentVolumeClaim": {"claimName": "shared-videos"}}]
        assert pod["securityContext"] == {"fsGroup": 1000}
    # `dask worker`/`dask scheduler`: distributed no longer installs dask-worker/dask-scheduler
    assert worker["args"][:4] == ["dask", "worker", "--nthreads", "1"]
    assert scheduler["args"] == ["dask", "scheduler", "--host", "0.0.0.0"]
    assert_dask_command_parses(worker["args"])
    assert_dask_command_parses(scheduler["args"])


def test_kubernetes_spec_defaults_and_no_volume():
    settings = copy.deepcopy(K8S_SETTINGS)
    settings["daskloc"]["kubernetes"] = {"pvc": None}
    settings["kubernetes"]["count"] = {"start": 5}
    spec = dlc.kubernetes_cluster_spec(config=settings)
    assert re.fullmatch(r"[a-z0-9-]{1,63}", spec["metadata"]["name"])
    assert spec["spec"]["worker"]["replicas"] == 5
    worker = spec["spec"]["worker"]["spec"]
    assert "volumes" not in worker and "volumeMounts" not in worker["containers"][0]


def test_kubernetes_spec_refuses_the_plain_dask_image():
    with pytest.raises(ValueError, match="no daskloc in it.*Dockerfile"):
        dlc.kubernetes_cluster_spec("x",
                                    config={"kubernetes": {"image": "ghcr.io/dask/dask:latest"}})


def assert_dask_command_parses(args):
    """The `dask worker ...` / `dask scheduler ...` arguments are valid for this distributed."""
    assert args[0] == "dask"
    if args[1] == "worker":
        from distributed.cli.dask_worker import main
        extra = ["tcp://127.0.0.1:8786"]
    else:
        assert args[1] == "scheduler"
        from distributed.cli.dask_scheduler import main
        extra = []
    main.make_context(f"dask {args[1]}", list(args[2:]) + extra)


def load_all_yaml():
    """{path relative to cluster/kubernetes: [documents]} for every YAML file there."""
    out = {}
    for path in sorted(glob.glob(os.path.join(K8S_DIR, "**", "*.y*ml"), recursive=True)):
        with open(path) as f:
            out[os.path.relpath(path, K8S_DIR)] = [d for d in yaml.safe_load_all(f) if d]
    return out


def pod_specs(doc):
    """The pod specs inside a manifest (DaskCluster: scheduler and workers; Job: its pod)."""
    if doc["kind"] == "DaskCluster":
        return [doc["spec"]["scheduler"]["spec"], doc["spec"]["worker"]["spec"]]
    if doc["kind"] in ("Job", "Deployment", "StatefulSet"):
        return [doc["spec"]["template"]["spec"]]
    if doc["kind"] == "Pod":
        return [doc["spec"]]
    return []


def test_kubernetes_manifests_parse_and_have_what_a_user_applies():
    files = load_all_yaml()
    assert "daskloc-kubernetes.yaml" in files  # the Dask config, not a manifest
    manifests = {p: docs for p, docs in files.items() if p != "daskloc-kubernetes.yaml"}
    assert manifests
    kinds = {}
    for path, docs in manifests.items():
        assert docs, f"{path} is empty"
        for doc in docs:
            for field in ("apiVersion", "kind"):
                assert doc.get(field), f"{path}: no {field}"
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), path
            kinds.setdefault(doc["kind"], []).append((path, doc))
    assert {"Namespace", "PersistentVolumeClaim", "DaskCluster", "Job"} <= set(kinds)

    settings = load_all_yaml()["daskloc-kubernetes.yaml"][0]
    image = settings["kubernetes"]["image"]
    namespace = settings["kubernetes"]["namespace"]
    (ns_path, ns), = kinds["Namespace"]
    assert ns["metadata"]["name"] == namespace
    (pvc_path, pvc), = kinds["PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == settings["daskloc"]["kubernetes"]["pvc"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]  # workers on many nodes write
    mount = settings["daskloc"]["kubernetes"]["mount-path"]

    for kind in ("DaskCluster", "Job"):
        for path, doc in kinds[kind]:
            assert doc["metadata"].get("namespace") == namespace, path
            for pod in pod_specs(doc):
                claims = {v["name"]: v["persistentVolumeClaim"]["claimName"]
                          for v in pod["volumes"]}
                for container in pod["containers"]:
                    assert container["image"] == image, path
                    mounts = {m["mountPath"]: claims[m["name"]] for m in container["volumeMounts"]}
                    assert mounts == {mount: pvc["metadata"]["name"]}, path

    (dc_path, cluster), = kinds["DaskCluster"]
    worker_args = cluster["spec"]["worker"]["spec"]["containers"][0]["args"]
    scheduler_args = cluster["spec"]["scheduler"]["spec"]["containers"][0]["args"]
    assert worker_args[:2] == ["dask", "worker"] and scheduler_args[:2] == ["dask", "scheduler"]
    assert_dask_command_parses(worker_args)
    assert_dask_command_parses(scheduler_args)

    (job_path, job), = kinds["Job"]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:2] == ["daskloc", "locate"]
    cluster_arg = command[command.index("--cluster") + 1]
    service = f"{cluster['metadata']['name']}-scheduler.{namespace}.svc.cluster.local:8786"
    assert cluster_arg == f"tcp://{service}"
    for path_arg in (command[2], command[command.index("--out") + 1]):
        assert path_arg.startswith(mount + "/"), "video and store on the shared volume"
    from daskloc.cli import main

    if any(getattr(p, "name", None) == "cluster" for p in main.commands["locate"].params):
        main.commands["locate"].make_context("daskloc locate", list(command[2:]))


def test_daskcluster_manifest_is_what_the_python_spec_builds():
    """manifests/30-daskcluster.yaml = kubernetes_cluster_spec from daskloc-kubernetes.yaml."""
    files = load_all_yaml()
    (manifest,) = files[os.path.join("manifests", "30-daskcluster.yaml")]
    built = dlc.kubernetes_cluster_spec("daskloc", config=K8S_CONFIG)
    built["metadata"]["namespace"] = manifest["metadata"]["namespace"]
    assert manifest == built


def test_dockerfile_installs_daskloc_and_runs_as_the_fs_group_user():
    text = open(os.path.join(K8S_DIR, "Dockerfile")).read()
    assert re.search(r"^FROM python:3\.1[1-9]", text, re.M)
    assert "COPY daskloc ./daskloc" in text and "pip install ." in text
    assert "USER 1000" in text  # matches daskloc.kubernetes.fs-group


@pytest.fixture
def no_kubernetes(monkeypatch, tmp_path):
    """No kubeconfig, no in-cluster service account."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def test_kubernetes_without_a_cluster_is_a_clear_quick_error(no_kubernetes, tmp_path):
    t0 = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        dlc.make_client("kubernetes", config=K8S_SETTINGS)
    message = str(info.value)
    assert time.monotonic() - t0 < 15
    assert "no Kubernetes API reachable" in message
    assert str(tmp_path / ".kube" / "config") in message and "not found" in message
    assert "in-cluster service account" in message and "KUBERNETES_SERVICE_HOST" in message


def test_kubernetes_api_that_does_not_answer_names_the_server(no_kubernetes, tmp_path, monkeypatch):
    server = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": server}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me"}}],
        "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
    }))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    t0 = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        dlc.make_client("kubernetes", config=K8S_SETTINGS, timeout=10)
    message = str(info.value)
    assert time.monotonic() - t0 < 20
    assert server in message and str(kubeconfig) in message and "kubectl get nodes" in message


def test_kubernetes_cluster_config_example_is_valid_dask_config():
    """The example file sets only keys dask-kubernetes or daskloc know."""
    import dask_kubernetes  # noqa: F401 - its defaults

    with open(K8S_CONFIG) as f:
        settings = yaml.safe_load(f)
    known = dask.config.get("kubernetes")
    assert set(settings) == {"kubernetes", "daskloc"}
    assert set(settings["kubernetes"]) <= set(known)
    assert set(settings["daskloc"]["kubernetes"]) <= set(dlc.KUBERNETES_DEFAULTS)


def test_slurm_config_example_keys_are_dask_jobqueue_keys():
    import dask_jobqueue  # noqa: F401 - its defaults

    with open(os.path.join(SLURM_DIR, "daskloc-slurm.yaml")) as f:
        settings = yaml.safe_load(f)
    known = dask.config.get("jobqueue.slurm")
    assert set(settings) == {"jobqueue"} and set(settings["jobqueue"]) == {"slurm"}
    assert set(settings["jobqueue"]["slurm"]) <= set(known)
    kwargs = dlc.slurm_cluster_kwargs(config=settings)
    assert kwargs["cores"] == kwargs["processes"]  # one single-threaded worker per core


def test_local_slurm_script_is_valid_bash():
    for script in ("start-local-slurm.sh", "daskloc-locate.sbatch"):
        res = subprocess.run(["bash", "-n", os.path.join(SLURM_DIR, script)],
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
