"""Optional extras: a core install locates into Parquet and Zarr; a backend or cluster
kind whose extra is missing raises an ImportError naming the extra to install.

Each case runs in a fresh interpreter where the optional libraries cannot be imported
(``sys.modules[name] = None``, as if they were not installed)."""

import subprocess
import sys
import textwrap

import pytest

from daskloc._extras import EXTRAS

BLOCK = f"import sys\nfor m in {sorted(EXTRAS)!r}:\n    sys.modules[m] = None\n"


def run(code, tmp_path):
    proc = subprocess.run([sys.executable, "-c", BLOCK + textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    return proc


@pytest.mark.slow
def test_a_core_install_locates_into_parquet_and_zarr(tmp_path):
    proc = run("""
        import dask
        import numpy as np
        import daskloc
        from daskloc.synthetic import make_video
        video, _ = make_video(n_frames=8, shape=(64, 64), n_particles=4, seed=3)
        with dask.config.set(scheduler="synchronous"):
            for out in ("f.parquet", "f.zarr"):
                daskloc.batch(daskloc.open_video(video), 9, store=out, do_not_return=True)
                print(out, len(daskloc.read_features(out)))
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    counts = dict(line.split() for line in proc.stdout.splitlines())
    assert set(counts) == {"f.parquet", "f.zarr"} and int(counts["f.parquet"]) > 0
    assert counts["f.parquet"] == counts["f.zarr"]


@pytest.mark.parametrize("code, extra", [
    ("daskloc.stores.open_store('f.h5', 'a').prepare()", "hdf5"),
    ("daskloc.stores.open_store('sqlite:///f.db', 'a')", "sql"),
    ("daskloc.stores.open_store('s3://bucket/f.parquet', 'r')", "s3"),
    ("daskloc.make_client('slurm')", "slurm"),
    ("daskloc.make_client('kubernetes')", "kubernetes"),
    ("import daskloc.plot", "plot"),
])
@pytest.mark.slow
def test_a_missing_extra_is_named(code, extra, tmp_path):
    proc = run(f"""
        import daskloc, daskloc.stores
        try:
            {code}
        except ImportError as exc:
            print("ImportError:", exc)
        """, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"pip install 'daskloc[{extra}]'" in proc.stdout, proc.stdout + proc.stderr
