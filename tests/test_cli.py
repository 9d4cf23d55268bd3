"""The daskloc command, run as a user would: a subprocess, real files, a real local cluster."""

import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from daskloc import read_features
from daskloc.demo import score
from tests._data import data_path


def run(*args, cwd=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "daskloc", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
    )


def assert_clean_error(result, *phrases):
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.fixture(scope="module")
def movie():
    return data_path("bulk-water.mov")


@pytest.mark.slow
@pytest.mark.data
def test_locate_movie_then_info(tmp_path, movie):
    out = tmp_path / "features.parquet"
    result = run("locate", movie, "--diameter", 11, "--minmass", 20, "--invert", "--channel", 0,
                 "--frames", "0:40", "--chunk-frames", 16, "--workers", 2, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "dashboard" in result.stderr and "http://" in result.stderr
    assert "chunks" in result.stderr  # the progress bar
    summary = result.stdout.strip().splitlines()[-1]
    features = read_features(out)
    assert summary.startswith(f"40 frames, {len(features)} features")
    assert str(out) in summary
    assert sorted(features.frame.unique()) == list(range(40))
    assert len(features) > 40 * 400

    from daskloc import locate_stack, open_video

    expected = locate_stack(open_video(movie, channel=0, frames=slice(0, 40)).values,
                            11, minmass=20, invert=True)
    pd.testing.assert_frame_equal(features.reset_index(drop=True), expected)

    info = run("info", out)
    assert info.returncode == 0, info.stderr
    assert "complete" in info.stdout and "40 of 40" in info.stdout
    assert f"features:   {len(features)}" in info.stdout
    assert "minmass=20" in info.stdout and "invert=True" in info.stdout
    as_json = json.loads(run("info", out, "--json").stdout)
    assert as_json["n_features"] == len(features) and as_json["params"]["diameter"] == 11

    # Same command again: everything is done, nothing is recomputed or duplicated.
    again = run("locate", movie, "--diameter", 11, "--minmass", 20, "--invert", "--channel", 0,
                "--frames", "0:40", "--chunk-frames", 16, "--workers", 1, "--out", out)
    assert again.returncode == 0, again.stderr
    pd.testing.assert_frame_equal(read_features(out), features)

    # Other parameters on the same store: refused, store untouched; --overwrite replaces it.
    other = run("locate", movie, "--diameter", 11, "--minmass", 30, "--invert", "--channel", 0,
                "--frames", "0:40", "--chunk-frames", 16, "--workers", 1, "--out", out)
    assert_clean_error(other, "pass --overwrite")
    assert "overwrite=True" not in other.stderr  # the CLI's words, not Python's
    err = other.stderr.strip().splitlines()
    assert err[-3].startswith("daskloc: error: store") and err[-3].endswith("(stored -> asked):")
    assert err[-2:] == ["  minmass: 20 -> 30",  # only the field that differs
                        "to replace it pass --overwrite, or choose another store (--out)"]
    pd.testing.assert_frame_equal(read_features(out), features)
    replaced = run("locate", movie, "--diameter", 11, "--minmass", 30, "--invert", "--channel", 0,
                   "--frames", "0:40", "--chunk-frames", 16, "--workers", 1, "--out", out,
                   "--overwrite")
    assert replaced.returncode == 0, replaced.stderr
    assert (read_features(out).mass > 30).all() and len(read_features(out)) < len(features)


@pytest.mark.slow
@pytest.mark.data
def test_locate_on_a_running_scheduler(tmp_path, movie, cluster):
    out = tmp_path / "features.parquet"
    result = run("locate", movie, "--diameter", 11, "--minmass", 20, "--invert", "--channel", 0,
                 "--frames", "0:20", "--chunk-frames", 10, "--scheduler", cluster.scheduler_address,
                 "--out", out)
    assert result.returncode == 0, result.stderr
    assert f"scheduler {cluster.scheduler_address}" in result.stderr
    assert sorted(read_features(out).frame.unique()) == list(range(20))


@pytest.mark.slow
@pytest.mark.data
def test_scheduler_that_does_not_answer_fails_in_bounded_time(tmp_path, movie):
    import socket
    import time

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    result = run("locate", movie, "--diameter", 11, "--channel", 0, "--frames", "0:8",
                 "--scheduler", f"tcp://127.0.0.1:{port}", "--out", tmp_path / "f.parquet",
                 timeout=120)
    assert_clean_error(result, f"tcp://127.0.0.1:{port}")
    assert time.monotonic() - start < 60


@pytest.mark.data
@pytest.mark.parametrize(
    "args,phrases",
    [
        (["missing.mov", "--diameter", 11], ["missing.mov"]),
        (["{movie}", "--diameter", 10, "--channel", 0], ["diameter", "11"]),
        (["{movie}", "--diameter", -3, "--channel", 0], ["diameter", "positive"]),
        (["{movie}", "--diameter", 11, "--channel", 0, "--frames", "400:600"], ["480"]),
        (["{movie}", "--diameter", 11, "--channel", 0, "--frames", "abc"], ["frame range"]),
        (["{notavideo}", "--diameter", 11], ["{notavideo}"]),
    ],
)
@pytest.mark.slow
def test_errors_a_person_can_act_on(tmp_path, movie, args, phrases):
    notavideo = tmp_path / "notes.mov"
    notavideo.write_text("this is not a movie")
    fill = lambda s: str(s).format(movie=movie, notavideo=notavideo)  # noqa: E731
    out = tmp_path / "f.parquet"
    result = run("locate", *map(fill, args), "--out", out, timeout=120)
    assert_clean_error(result, *map(fill, phrases))
    assert not out.exists() or not any(p.suffix == ".parquet" for p in out.iterdir())


@pytest.mark.slow
@pytest.mark.data
def test_unwritable_output(tmp_path, movie):
    if os.geteuid() == 0:
        target = "/proc/daskloc-cannot-write-here.parquet"  # not writable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "f.parquet"
    result = run("locate", movie, "--diameter", 11, "--channel", 0, "--frames", "0:8",
                 "--workers", 1, "--out", target, timeout=120)
    assert_clean_error(result, str(target))


@pytest.mark.slow
def test_info_on_missing_store(tmp_path):
    assert_clean_error(run("info", tmp_path / "nothing.parquet"), "nothing.parquet")


@pytest.mark.slow
def test_demo_reports_accuracy_against_known_positions(tmp_path):
    result = run("demo", "--frames", 30, "--workers", 1, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "daskloc-demo"
    assert "found" in result.stdout and "position error" in result.stdout
    assert str(out / "features.parquet").endswith("features.parquet")
    assert "daskloc-demo/features.parquet" in result.stdout
    # Recompute the accuracy the demo printed, independently, from what it wrote.
    features = read_features(out / "features.parquet")
    truth = pd.read_csv(out / "truth.csv")
    report = score(features, truth, separation=10)
    assert report["recall"] > 0.99 and report["false_positives"] == 0
    assert report["rms_error"] < 0.1
    assert f"{report['recall']:.2%}" in result.stdout


@pytest.mark.slow
@pytest.mark.data
def test_chunk_failure_on_a_worker_prints_one_clean_error(tmp_path):
    """A chunk failing on a worker (a truncated image) ends in one error line naming the
    file, not in the worker's traceback dump, and the other chunks are kept."""
    import shutil

    folder = tmp_path / "seq"
    folder.mkdir()
    for path in sorted(data_path("bulk_water_png").glob("bulk_water_0[0-3]*.png")):
        shutil.copy(path, folder / path.name)
    bad = folder / "bulk_water_035.png"
    bad.write_bytes(bad.read_bytes()[:2000])
    out = tmp_path / "f.parquet"
    result = run("locate", f"{folder}/*.png", "--diameter", 11, "--minmass", 20, "--invert",
                 "--channel", 0, "--chunk-frames", 8, "--workers", 2, "--out", out)
    assert_clean_error(result, "bulk_water_035.png", "truncated")
    assert "Compute Failed" not in result.stderr and "distributed.worker" not in result.stderr
    assert [line for line in result.stderr.splitlines() if "error" in line.lower()] == [
        result.stderr.strip().splitlines()[-1]
    ]
    kept = read_features(out)
    assert set(kept.frame.unique()) == set(range(32))  # chunks 0..3 landed; 32..39 did not


# ----------------------------------------------------------------- the dashboard


def start(*args, cwd=None):
    """``daskloc ARGS`` in the background, and a queue of its stderr lines."""
    import queue
    import threading

    proc = subprocess.Popen([sys.executable, "-m", "daskloc", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()

    def pump():
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return proc, lines


def wait_for_dashboard_line(lines, timeout=300):
    """The stderr read until the ``dashboard http://...`` line, and that link."""
    import queue

    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no dashboard line within {timeout} s: {''.join(seen)}") from None
        if line is None:
            raise AssertionError(f"the run ended without a dashboard line: {''.join(seen)}")
        seen.append(line)
        match = re.search(r"dashboard (https?://\S+)", line)
        if match:
            return "".join(seen), match.group(1)


def stop(proc, lines):
    """Ctrl-C the run (it closes its cluster) and return the rest of its stderr."""
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    rest = []
    while (line := lines.get(timeout=30)) is not None:
        rest.append(line)
    proc.stdout.close()
    return "".join(rest)


@pytest.mark.data
@pytest.mark.parametrize("command,option", [("locate", None), ("locate", "0.0.0.0:0"),
                                            ("demo", None)])
@pytest.mark.slow
def test_printed_dashboard_link_is_where_it_listens(tmp_path, movie, command, option):
    """While `daskloc locate` (the whole movie) or `daskloc demo` runs, `ss` shows its
    dashboard on the port of the printed link: on 127.0.0.1 only by default, on every
    interface with --dashboard-address 0.0.0.0:0 (and then a warning that it has no
    login); the link's page answers. The run is interrupted once this is checked."""
    from tests._listening import http_status, is_loopback, is_wildcard, link_port, sockets_of

    if command == "locate":
        args = ["locate", movie, "--diameter", 11, "--invert", "--channel", 0,
                "--chunk-frames", 16, "--workers", 1, "--out", tmp_path / "f.parquet"]
    else:
        args = ["demo", "--frames", 400, "--workers", 1, "--out", tmp_path / "demo"]
    extra = [] if option is None else ["--dashboard-address", option]
    proc, lines = start(*args, *extra)
    try:
        head, link = wait_for_dashboard_line(lines)
        port = link_port(link)
        addresses = sockets_of(port, {proc.pid})
        assert proc.poll() is None, "the run ended before its dashboard was looked at"
        status, body = http_status(link)
    finally:
        tail = stop(proc, lines)
    assert "local cluster, 1 workers" in head
    assert status == 200 and "Dask" in body, (link, status)
    if option is None:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/status", link), link
        assert addresses and all(is_loopback(a) for a in addresses), addresses
        assert "warning: the dashboard" not in head + tail
    else:
        assert addresses and all(is_wildcard(a) for a in addresses), addresses
        assert f"warning: the dashboard listens on 0.0.0.0:{port}" in head + tail
        assert "no login" in head + tail and f"ssh -L {port}:localhost:{port}" in head + tail


@pytest.mark.slow
@pytest.mark.data
def test_pixel_stats_dashboard_address(tmp_path):
    """pixel-stats takes --dashboard-address too: the printed link is on the port asked
    for; 0.0.0.0 (every interface) brings the warning that the dashboard has no login."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = data_path("stuck.tif")
    asked = run("pixel-stats", path, "--out", tmp_path / "a.zarr", "--workers", 1,
                "--dashboard-address", f"127.0.0.1:{port}")
    assert asked.returncode == 0, asked.stderr
    assert f"dashboard http://127.0.0.1:{port}/status" in asked.stderr
    assert "warning: the dashboard" not in asked.stderr
    public = run("pixel-stats", path, "--out", tmp_path / "b.zarr", "--workers", 1,
                 "--dashboard-address", "0.0.0.0:0")
    assert public.returncode == 0, public.stderr
    port = re.search(r"dashboard http://127\.0\.0\.1:(\d+)/status", public.stderr).group(1)
    assert f"warning: the dashboard listens on 0.0.0.0:{port}" in public.stderr


@pytest.mark.data
@pytest.mark.parametrize("command,args,phrases", [
    ("locate", ["--dashboard-address", "8787"],
     ["--dashboard-address", "no HOST", "127.0.0.1:8787"]),
    ("pixel-stats", ["--dashboard-address", "203.0.113.7:8787"],
     ["--dashboard-address", "not an address of this machine"]),
    ("locate", ["--dashboard-address", "[::1]:8787"], ["--dashboard-address", "IPv6"]),
    ("locate", ["--scheduler", "tcp://127.0.0.1:8786", "--dashboard-address", "127.0.0.1:8787"],
     ["--dashboard-address", "tcp://127.0.0.1:8786 serves its own"]),
    ("pixel-stats", ["--cluster", "tcp://127.0.0.1:8786", "--dashboard-address", "0.0.0.0:8787"],
     ["--dashboard-address", "serves its own"]),
    ("pixel-stats", ["--cluster", "kubernetes", "--dashboard-address", "127.0.0.1:8787"],
     ["--dashboard-address", "scheduler pod"]),
])
@pytest.mark.slow
def test_dashboard_address_errors(tmp_path, movie, command, args, phrases):
    extra = ["--diameter", 11] if command == "locate" else []
    result = run(command, movie, "--channel", 0, *extra, "--out", tmp_path / "out", *args,
                 timeout=120)
    assert_clean_error(result, *phrases)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_help_warns_that_the_dashboard_has_no_login():
    for command in ("locate", "pixel-stats"):
        text = " ".join(run(command, "--help").stdout.split())
        assert "--dashboard-address HOST:PORT" in text
        assert "127.0.0.1:8787" in text and "0.0.0.0:8787" in text
        assert "NO LOGIN" in text and "ssh -L 8787:localhost:8787" in text


def test_locate_a_3d_stack_with_a_per_axis_diameter_then_info(tmp_path):
    """An ImageJ hyperstack (T, Z, Y, X) with --diameter 5,7,7: the store holds z and the
    per-axis columns, info shows the dims, and a per-axis option of the wrong length or
    a malformed one is a one-line error before anything runs."""
    import tifffile

    from daskloc.locate import locate_stack
    from daskloc.testing.stores import gaussian_volumes

    arr = gaussian_volumes(4, seed=2)
    tif = tmp_path / "stack.tif"
    tifffile.imwrite(tif, arr, imagej=True, metadata={"axes": "TZYX"})
    out = tmp_path / "f.parquet"
    r = run("locate", tif, "--diameter", "5,7,7", "--separation", "6,8,8", "--minmass",
            "200", "--out", out)
    assert r.returncode == 0, r.stderr
    assert "4 volumes of 16x48x48 uint8" in " ".join(r.stderr.split())  # the console's
    ref = locate_stack(arr, (5, 7, 7), separation=(6, 8, 8), minmass=200)
    pd.testing.assert_frame_equal(read_features(out), ref)
    info = run("info", out)
    assert info.returncode == 0, info.stderr
    assert "dims:       frame, z, y, x (3-D volumes)" in info.stdout
    assert "diameter=[5, 7, 7]" in info.stdout and "separation=[6, 8, 8]" in info.stdout
    assert json.loads(run("info", out, "--json").stdout)["dims"] == ["frame", "z", "y", "x"]

    assert_clean_error(run("locate", tif, "--diameter", "7,7", "--out", tmp_path / "g.parquet"),
                       "diameter has 2 values (7, 7) but the images are 3-D")
    assert_clean_error(run("locate", tif, "--diameter", "5,x", "--out", tmp_path / "g.parquet"),
                       "'5,x' is not an integer or one per axis")
    assert_clean_error(run("locate", tif, "-d", "5,7,7,7", "--out", tmp_path / "g.parquet"),
                       "has 4 values")
    assert not (tmp_path / "g.parquet").exists()
    assert "5,11,11" in run("locate", "--help").stdout
