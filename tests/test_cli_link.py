"""``daskloc link``, run as a user would: a subprocess on a real store."""

import numpy as np
import pytest

import daskloc
from daskloc.stores import open_store
from daskloc.synthetic import random_walks
from daskloc.testing.stores import birth_numbers, write_features
from tests.test_cli import assert_clean_error, run

trackpy = pytest.importorskip("trackpy")


@pytest.fixture
def store(tmp_path):
    url = str(tmp_path / "features.parquet")
    df = random_walks(60, 80, shape=(100, 100), step=1.0, drift=(0.2, 0.1), blink=0.05,
                      seed=2)
    write_features(open_store(url, "a"), df, 10)
    return url


def test_link_command_streams_trajectories(store, tmp_path):
    result = run("link", store, "--search-range", 3, "--memory", 2, "--segments", 3)
    assert result.returncode == 0, result.stderr
    features = daskloc.read_features(store)
    ref = trackpy.link(features, 3, memory=2)
    got = daskloc.read_features(store, trajectories=True)
    np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))
    n = ref["particle"].nunique()
    assert (f"60 frames, {len(features)} features in {n} trajectories; 3 segments"
            in result.stdout), result.stdout
    assert f"-> {store}#_trajectories" in result.stdout
    shown = run("info", store)
    assert (f"trajectories: complete, {len(features)} features linked with "
            "search_range=3.0, memory=2" in shown.stdout), shown.stdout
    # a second run: other parameters are refused in one line naming the fix
    again = run("link", store, "--search-range", 4)
    assert_clean_error(again, "search_range: 3.0 -> 4.0", "--overwrite")
    # --out: another store, of another format
    out = tmp_path / "tracks.zarr"
    result = run("link", store, "-s", "3", "-m", "2", "--out", out)
    assert result.returncode == 0, result.stderr
    other = daskloc.read_features(str(out), trajectories=True)
    np.testing.assert_array_equal(other["particle"].to_numpy(), got["particle"].to_numpy())


def test_link_command_bad_input(store, tmp_path):
    assert_clean_error(run("link", store, "--search-range", 0),
                       "search_range must be positive")
    assert_clean_error(run("link", store, "--search-range", "a,b"), "--search-range")
    assert_clean_error(run("link", tmp_path / "absent.parquet", "--search-range", 3),
                       "absent.parquet")
    # --workers starts a cluster: bad values fail before it does, not after
    for args, message in [(("--search-range", 0), "search_range must be positive"),
                          (("-s", 3, "--adaptive-stop", -1), "adaptive_stop"),
                          (("-s", 3, "--adaptive-step", 2), "adaptive_step")]:
        result = run("link", store, *args, "--workers", 1)
        assert_clean_error(result, message)
        assert "dashboard" not in result.stderr and "dask:" not in result.stderr, (
            result.stderr)
