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


def test_a_parquet_job_on_a_tiff_imports_no_other_format(tmp_path):
    # Time to first result: every import a small job does not need is saved start-up.
    # Resolving f.parquet once imported every store (SQLAlchemy, zarr), probing any
    # source imported zarr, and the job's metadata imported distributed for its version.
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((6, 32, 32), np.uint8))
    script = textwrap.dedent("""
        import sys
        from daskloc.pipeline._job import _versions
        from daskloc.stores import is_store_location, store_class
        from daskloc.video import open_video
        assert store_class("f.parquet").backend == "parquet"
        assert is_store_location("f.parquet")
        assert open_video("s.tif").sizes["frame"] == 6
        assert _versions()["distributed"]
        print(sorted(m for m in ("zarr", "sqlalchemy", "distributed", "tables", "bokeh")
                     if m in sys.modules))
        """)
    result = python(script, tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


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
    assert "dask: 2 threads in this process, no cluster" in first.stderr
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


@pytest.mark.slow
def test_a_resumed_cli_job_says_how_much_was_done_and_a_needless_channel_is_noted(tmp_path):
    frames = make_spots(n_frames=8, shape=(64, 64), n_particles=5, seed=6)
    tifffile.imwrite(tmp_path / "stack.tif", frames)
    out = tmp_path / "f.parquet"
    args = [sys.executable, "-m", "daskloc", "locate", str(tmp_path / "stack.tif"),
            "--diameter", str(DIAMETER), "--out", str(out), "--chunk-frames", "2"]
    first = subprocess.run([*args, "--channel", "0"], capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "note: the video is greyscale; --channel 0 changes nothing" in first.stderr
    # lose the last two chunks, as a killed job would not have written them
    for name in ("part-000000004-000000006.parquet", "part-000000006-000000008.parquet"):
        os.remove(out / name)
    again = subprocess.run([*args, "--channel", "0"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    n = int((locate_stack(frames[:4], DIAMETER).frame < 4).sum())
    assert f"resuming: 2 of 4 chunks already done, {n:,} features" in again.stderr
    pd.testing.assert_frame_equal(read_features(out), locate_stack(frames, DIAMETER))


def test_store_hash_name_is_a_video_of_a_many_video_store(tmp_path):
    a = make_spots(n_frames=6, shape=(64, 64), n_particles=4, seed=1)
    b = make_spots(n_frames=6, shape=(64, 64), n_particles=6, seed=2)
    store = tmp_path / "lab.parquet"
    from daskloc import batch, store_info
    from tests.conftest import as_video

    batch({"movie1": as_video(a, chunks=3), "movie2": as_video(b, chunks=3)}, DIAMETER,
          store=store, do_not_return=True, **PARAMS)
    want = locate_stack(b, DIAMETER, **PARAMS)
    pd.testing.assert_frame_equal(read_features(f"{store}#movie2"), want)
    assert store_info(f"{store}#movie2")["n_features"] == len(want)
    # the same table named both ways is one name, not two
    pd.testing.assert_frame_equal(read_features(f"{store}#movie2", table="video=movie2"), want)
    with pytest.raises(ValueError, match="two table names"):
        read_features(f"{store}#movie2", table="video=movie1")


def test_a_store_of_named_tables_lists_them(tmp_path):
    from daskloc import batch, store_info
    from tests.conftest import as_video

    store = tmp_path / "t.parquet"
    for name, seed in (("run1", 1), ("run2", 2)):
        batch(as_video(make_spots(n_frames=4, shape=(64, 64), seed=seed), chunks=2), DIAMETER,
              store=store, table=name, do_not_return=True, **PARAMS)
    with pytest.raises(ValueError, match=rf"holds 2 named tables and none at its root: run1, "
                                         rf"run2; name one, e.g. {re.escape(str(store))}#run1"):
        store_info(store)
    from click.testing import CliRunner

    from daskloc.cli import main

    result = CliRunner().invoke(main, ["info", str(store)])
    assert result.exit_code == 1 and "run1, run2" in result.output
    assert CliRunner().invoke(main, ["info", f"{store}#run2"]).exit_code == 0


@pytest.fixture
def user_arrays(tmp_path):
    """Dask arrays as users build them: zarr-backed, tifffile's aszarr store, a memmap."""
    import dask.array as da
    import zarr

    frames = make_spots(n_frames=8, shape=(64, 64), n_particles=5, seed=6)
    tifffile.imwrite(tmp_path / "s.tif", frames)
    np.save(tmp_path / "m.npy", frames)
    zarr.create_array(tmp_path / "a.zarr", data=frames, chunks=(4, 64, 64))
    return frames, {
        "zarr": da.from_zarr(str(tmp_path / "a.zarr")),
        "aszarr": da.from_zarr(zarr.open(tifffile.imread(tmp_path / "s.tif", aszarr=True),
                                         mode="r"), chunks=(4, -1, -1)),
        "memmap": da.from_array(np.load(tmp_path / "m.npy", mmap_mode="r"), chunks=(4, -1, -1)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["zarr", "aszarr", "memmap"])
def test_any_dask_array_a_user_builds_runs_through_batch_on_a_cluster(user_arrays, kind,
                                                                      client, tmp_path):
    frames, arrays = user_arrays
    store = tmp_path / "f.parquet"
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        daskloc_batch(arrays[kind], DIAMETER, store=store, client=client, do_not_return=True,
                      **PARAMS)
    pd.testing.assert_frame_equal(read_features(store), locate_stack(frames, DIAMETER, **PARAMS))
    said = [str(w.message) for w in caught if "cannot be sent" in str(w.message)]
    # tifffile's aszarr store holds the open file: it cannot go to worker processes
    # ("TypeError Could not serialize object of type _HLGExprSequence" before), so its
    # chunks run in this process's threads, and the user hears why
    assert len(said) == (kind == "aszarr")
    if said:
        assert "cannot pickle" in said[0] and "daskloc.open_video(PATH)" in said[0]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["zarr", "memmap"])
def test_a_users_dask_array_computes_lazily_on_the_default_cluster(user_arrays, kind, cluster):
    import distributed

    frames, arrays = user_arrays
    import daskloc

    with distributed.Client(cluster):  # the default client: locate's graph runs there
        got = daskloc.locate(arrays[kind], DIAMETER, **PARAMS).compute()
    want = locate_stack(frames, DIAMETER, **PARAMS)
    pd.testing.assert_frame_equal(got.reset_index(), want[["frame", *want.columns[:-1]]])


@pytest.mark.slow
def test_locate_warns_when_its_graph_cannot_go_to_the_default_cluster(user_arrays, cluster):
    import distributed

    import daskloc

    _, arrays = user_arrays
    with distributed.Client(cluster):
        with pytest.warns(UserWarning, match="cannot be sent.*scheduler='threads'"):
            ddf = daskloc.locate(arrays["aszarr"], DIAMETER, **PARAMS)
    assert len(ddf.compute(scheduler="threads")) > 0  # as the warning says


def daskloc_batch(*args, **kwargs):
    from daskloc import batch

    return batch(*args, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["f.parquet", "f.zarr", "f.h5", "f.db"])
def test_no_files_are_left_beside_a_store_after_a_job_and_a_read(tmp_path, name):
    """The HDF5 lock file stayed beside the store after every job. The job and a read run
    in a process of their own, as a user's do: SQLite keeps its -wal and -shm files
    only while a connection is open."""
    frames = make_spots(n_frames=8, shape=(64, 64), n_particles=5, seed=3)
    np.save(tmp_path / "frames.npy", frames)
    where = tmp_path / "out"
    where.mkdir()
    url = f"sqlite:///{where / name}" if name.endswith(".db") else str(where / name)
    result = python(f"""
        import numpy as np, daskloc
        if __name__ == "__main__":
            video = daskloc.open_video(np.load("frames.npy"), chunks=4)
            daskloc.batch(video, {DIAMETER}, store={url!r}, do_not_return=True, **{PARAMS!r})
            print(len(daskloc.read_features({url!r})))
        """, tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(locate_stack(frames, DIAMETER, **PARAMS))
    assert sorted(os.listdir(where)) == [name]


def test_public_names_stay_the_functions_after_their_submodules_are_imported():
    """``import daskloc.export`` bound the submodule over the function ``daskloc.export``
    once the package's names became lazy."""
    import importlib

    import daskloc

    importlib.import_module("daskloc.export")
    importlib.import_module("daskloc.locate")
    assert callable(daskloc.export) and daskloc.export.__module__ == "daskloc.export"
    assert callable(daskloc.locate) and daskloc.locate.__name__ == "locate"
    assert importlib.import_module("daskloc.locate").locate_frame is daskloc.locate_frame


@pytest.mark.slow
def test_import_daskloc_imports_nothing_heavy():
    code = ("import sys, daskloc, daskloc.cli; "
            "print(sorted(m for m in ('dask', 'pandas', 'numba', 'distributed') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
    # the subpackages are still attributes of the package, imported when used
    code = "import daskloc; print(daskloc.stores.open_store.__name__, daskloc.video.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.split() == ["open_store", "daskloc.video"], out.stderr


@pytest.mark.slow
def test_a_background_on_an_unpicklable_video_is_computed_in_threads_too(user_arrays, client,
                                                                          tmp_path):
    """The background was computed on the cluster before the fallback was decided: the
    job failed as before. Now the same features as from the same frames on the cluster."""
    _, arrays = user_arrays
    with pytest.warns(UserWarning, match="cannot be sent"):
        daskloc_batch(arrays["aszarr"], DIAMETER, store=tmp_path / "a.parquet", client=client,
                      background="mean", do_not_return=True, **PARAMS)
    daskloc_batch(arrays["memmap"], DIAMETER, store=tmp_path / "m.parquet", client=client,
                  background="mean", do_not_return=True, **PARAMS)
    got = read_features(tmp_path / "a.parquet")
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, read_features(tmp_path / "m.parquet"))


def test_store_hash_name_is_a_video_only_when_reading(tmp_path):
    from daskloc.stores import open_store
    from tests.conftest import as_video

    store = tmp_path / "lab.parquet"
    daskloc_batch({"movie1": as_video(make_spots(n_frames=4, shape=(64, 64)), chunks=2)},
                  DIAMETER, store=store, do_not_return=True, **PARAMS)
    assert open_store(f"{store}#movie1").table == "video=movie1"
    assert open_store(f"{store}#movie1", "a").table == "movie1"  # a job writes table NAME


def test_the_package_pickles_by_name():
    """Its namespace is a ModuleType subclass: by default that pickles by value and
    fails, so a task that referred to ``daskloc`` could not reach a worker (the
    many-video CLI job failed: "Could not serialize object of type _Package")."""
    import pickle

    import cloudpickle

    import daskloc

    assert pickle.loads(pickle.dumps(daskloc)) is daskloc
    assert cloudpickle.loads(cloudpickle.dumps(lambda: daskloc.batch))() is daskloc.batch
