"""What a newcomer meets in the first hour: scripts without the ``__main__`` guard run to
the end, the README's Python example runs as a script, small CLI jobs start in-process,
and errors speak the CLI's words."""

import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import tifffile

from daskloc import locate_stack, read_features
from tests._data import data_path
from tests.conftest import DIAMETER, PARAMS, make_spots

README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")


def python(script, cwd, timeout=300):
    path = os.path.join(cwd, "script.py")
    with open(path, "w") as fh:
        fh.write(textwrap.dedent(script))
    return subprocess.run([sys.executable, path], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


@pytest.mark.slow
@pytest.mark.parametrize("guarded", [False, True])
def test_where_the_guard_is_is_found(tmp_path, guarded):
    body = "print(unguarded_script_line())\n"
    script = ("from daskloc.cluster import unguarded_script_line\n"
              + ('if __name__ == "__main__":\n    ' + body if guarded else body))
    result = python(script, tmp_path)
    assert result.returncode == 0, result.stderr
    want = "None" if guarded else f"('{tmp_path / 'script.py'}', 2)"
    assert result.stdout.strip() == want


@pytest.mark.slow
def test_a_script_without_the_guard_runs_to_the_end_on_threads(tmp_path):
    """The README's first-hour failure: connect() at a script's top level hung (worker
    processes re-ran the script). Now it runs in the script's threads and says why."""
    frames = make_spots(n_frames=12, shape=(64, 64), n_particles=5, seed=4)
    np.save(tmp_path / "frames.npy", frames)
    result = python(f"""
        import numpy as np
        import daskloc
        client = daskloc.connect()
        print("processes", client.cluster.processes, flush=True)
        video = daskloc.open_video(np.load("frames.npy"), chunks=4)
        daskloc.batch(video, {DIAMETER}, store="f.parquet", do_not_return=True,
                      **{PARAMS!r})
        print("done", flush=True)
        """, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["processes", "False", "done"]
    assert re.search(r"script.py:4: UserWarning: line 4 of script.py starts daskloc's local "
                     r"cluster outside `if __name__ == \"__main__\":`", result.stderr)
    assert result.stderr.count("__name__") == 1 and "Traceback" not in result.stderr
    pd.testing.assert_frame_equal(read_features(tmp_path / "f.parquet"),
                                  locate_stack(frames, DIAMETER, **PARAMS))


@pytest.mark.slow
def test_a_guarded_script_gets_worker_processes(tmp_path):
    result = python("""
        import daskloc
        if __name__ == "__main__":
            client = daskloc.connect(workers=2)
            print(client.cluster.processes, len(client.scheduler_info()["workers"]))
        """, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "2"]
    assert "__name__" not in result.stderr


def _readme_python_example():
    text = open(README, encoding="utf-8").read()
    section = text[text.index("## Use it from Python"):]
    return section[section.index("```python\n") + 10: section.index("```\n", 10)]


def test_the_readme_example_is_a_script_with_the_guard():
    code = _readme_python_example()
    compile(code, "README.md", "exec")
    top = [line for line in code.splitlines() if line and not line.startswith((" ", "#"))]
    assert top == ["import daskloc", "import trackpy", 'if __name__ == "__main__":  # a '
                   "script needs it: worker processes run the script again"]


@pytest.mark.slow
@pytest.mark.data
def test_the_readme_python_example_runs_as_a_script(tmp_path):
    os.symlink(data_path("bulk-water.mov"), tmp_path / "bulk-water.mov")
    result = python(_readme_python_example(), tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "__name__" not in result.stderr  # guarded: worker processes, no warning
    assert re.search(r"^\d+ trajectories$", result.stdout, re.M), result.stdout
    assert read_features(tmp_path / "features.parquet").frame.nunique() == 480


@pytest.mark.slow
def test_a_small_cli_job_runs_in_process_and_a_mismatch_speaks_cli(tmp_path):
    frames = make_spots(n_frames=8, shape=(64, 64), n_particles=5, seed=6)
    tifffile.imwrite(tmp_path / "stack.tif", frames)
    out = tmp_path / "f.parquet"

    def locate(*extra):
        return subprocess.run(
            [sys.executable, "-m", "daskloc", "locate", str(tmp_path / "stack.tif"),
             "--diameter", str(DIAMETER), "--out", str(out), "--chunk-frames", "4", *extra],
            capture_output=True, text=True, timeout=300)

    first = locate("--minmass", "50")
    assert first.returncode == 0, first.stderr
    # two chunks, two cores: worker processes would each get one chunk at most
    assert "local cluster in this process, 2 threads" in first.stderr
    pd.testing.assert_frame_equal(read_features(out),
                                  locate_stack(frames, DIAMETER, minmass=50))
    other = locate("--minmass", "80")
    assert other.returncode == 1
    assert "dask:" not in other.stderr  # refused before any cluster started
    assert other.stderr.strip().splitlines()[-3:] == [
        f"daskloc: error: store {out} holds another job; what differs (stored -> asked):",
        "  minmass: 50 -> 80",
        "to replace it pass --overwrite, or choose another store (--out)",
    ]
