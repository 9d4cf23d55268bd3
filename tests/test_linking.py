"""The hand-off to trackpy: features read from any store go into ``trackpy.link`` unchanged.

The whole 480-frame bulk-water movie is located by daskloc into Parquet, Zarr and SQLite
stores, read back with ``read_features`` and linked by ``trackpy.link(features, 5,
memory=3)`` as they come. The reference is a trackpy user's own pipeline, run live:
frames read with pims, ``trackpy.batch(..., engine="numba")``, ``trackpy.link`` with
the same parameters. Trajectories are compared as sets of features, not by particle
ids: a trajectory is its sequence of ``(frame, y, x)`` (positions rounded to 1e-6 px)
in frame order, and a daskloc trajectory counts as equal when trackpy has the same one.
"""

import numpy as np
import pandas as pd
import pytest

import daskloc
from tests._data import data_path

# every test here locates the real movie (about 30 s) and links it with trackpy
pytestmark = [pytest.mark.data, pytest.mark.slow]

trackpy = pytest.importorskip("trackpy")

DIAMETER = 11
PARAMS = {"minmass": 20, "invert": True}
SEARCH_RANGE = 5
MEMORY = 3


@pytest.fixture(scope="module")
def movie():
    return data_path("bulk-water.mov")


@pytest.fixture(scope="module")
def reference(movie):
    """trackpy alone: pims frames (channel 0), trackpy.batch with numba, trackpy.link."""
    import pims

    trackpy.quiet()
    frames = pims.open(str(movie))
    stack = np.stack([np.asarray(f)[..., 0] for f in frames])
    features = trackpy.batch(stack, DIAMETER, engine="numba", processes=1, **PARAMS)
    linked = trackpy.link(features, SEARCH_RANGE, memory=MEMORY)
    return features, linked


@pytest.fixture(scope="module", params=["parquet", "zarr", "hdf5", "sqlite"])
def store(request, movie, tmp_path_factory):
    """The whole movie located by daskloc.batch into a store of each format."""
    folder = tmp_path_factory.mktemp(f"link-{request.param}")
    location = {
        "parquet": str(folder / "features.parquet"),
        "zarr": str(folder / "features.zarr"),
        "hdf5": str(folder / "features.h5"),
        "sqlite": f"sqlite:///{folder / 'features.db'}",
    }[request.param]
    video = daskloc.open_video(movie, channel=0, chunks=64)
    daskloc.batch(video, DIAMETER, store=location, do_not_return=True, **PARAMS)
    return location


def trajectories(linked):
    """Each trajectory as a tuple of (frame, y, x), y and x rounded to 1e-6 px, by frame."""
    t = linked[["particle", "frame", "y", "x"]].sort_values(["particle", "frame"], kind="stable")
    rows = zip(t["frame"].to_numpy().tolist(), np.round(t["y"].to_numpy(), 6).tolist(),
               np.round(t["x"].to_numpy(), 6).tolist())
    ids = t["particle"].to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    rows = list(rows)
    ends = np.r_[starts[1:], len(rows)]
    return {tuple(rows[a:b]) for a, b in zip(starts, ends)}


def test_store_features_are_trackpys_columns_and_dtypes(store, reference):
    ref, _ = reference
    features = daskloc.read_features(store)
    # what trackpy.batch returns: same names, same order, same dtypes, frame a column
    assert list(features.columns) == list(ref.columns)
    assert features.dtypes.to_dict() == ref.dtypes.to_dict()
    assert "frame" in features.columns and features.index.name is None
    assert isinstance(features.index, pd.RangeIndex)
    # and the same features: every frame, same counts, same positions
    assert len(features) == len(ref)
    a = features.sort_values(["frame", "y", "x"]).reset_index(drop=True)
    b = ref.sort_values(["frame", "y", "x"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[["frame", "y", "x", "mass"]], b[["frame", "y", "x", "mass"]],
                                  check_exact=False, rtol=0, atol=1e-9)


def test_store_features_link_unchanged_like_trackpys_own(store, reference):
    _, ref_linked = reference
    features = daskloc.read_features(store)
    linked = trackpy.link(features, SEARCH_RANGE, memory=MEMORY)  # no preparation at all
    assert features["frame"].nunique() == 480
    assert len(linked) == len(features)
    assert linked["particle"].dtype == ref_linked["particle"].dtype
    assert list(linked.columns) == list(ref_linked.columns)

    mine, theirs = trajectories(linked), trajectories(ref_linked)
    assert len(theirs) > 10_000
    same = len(mine & theirs)
    share = same / max(len(mine), len(theirs))
    assert share >= 0.99, (
        f"{same} of {len(theirs)} trackpy trajectories equal ({len(mine)} from daskloc)"
    )


@pytest.mark.parametrize("store", ["parquet"], indirect=True)
@pytest.mark.parametrize("segments", [2, 7])
def test_daskloc_link_equals_trackpy_link_on_the_movie(store, segments, client):
    """daskloc.link of the located movie, 2 and 7 segments on a 2-worker cluster (one
    segment is the sequential run; tests/test_link.py has it on synthetic walks):
    every trajectory is trackpy.link's on the same features, as (frame, y, x) sequences."""
    from daskloc.testing.stores import birth_numbers

    features = daskloc.read_features(store)
    ref = _trackpy_link_of(store, features)
    info = daskloc.link(store, SEARCH_RANGE, memory=MEMORY, segments=segments, client=client,
                        overwrite=True)
    assert info["segments"] == segments and info["complete"]
    got = daskloc.read_features(store, trajectories=True)
    assert trajectories(got) == trajectories(ref)
    np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))
    assert info["n_particles"] == ref["particle"].nunique() > 10_000


_LINKED = {}


def _trackpy_link_of(store, features):
    """trackpy.link of a store's features, once per store (it takes a few seconds)."""
    if store not in _LINKED:
        _LINKED[store] = trackpy.link(features, SEARCH_RANGE, memory=MEMORY)
    return _LINKED[store]
