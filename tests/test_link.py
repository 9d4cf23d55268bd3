"""daskloc.link against trackpy.link, live, on the same features.

Features are generated as random walks (daskloc.synthetic.random_walks: dense enough for
crossings and subnetworks, with drift and blinking) and written to a store with the
store API, so the features trackpy and daskloc link are exactly the same rows. trackpy's
answer is ``trackpy.link(read_features(store), ...)``, the call a user makes. The
trajectories must be the same: every feature in the same trajectory, and the particle
numbers equal to trackpy's renumbered in birth order (daskloc's documented numbering).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import daskloc
from daskloc.link._core import join_segment
from daskloc.stores import StoreMismatchError, open_store
from daskloc.synthetic import random_walks
from daskloc.testing.stores import birth_numbers
from daskloc.testing.stores import write_features as write_store

trackpy = pytest.importorskip("trackpy")
trackpy.quiet()


def crowded_share(df, search_range):
    """Share of features with another feature of the same frame within search_range."""
    from scipy.spatial import cKDTree

    n = 0
    for _, f in df.groupby("frame"):
        d, _ = cKDTree(f[["y", "x"]].to_numpy()).query(f[["y", "x"]].to_numpy(), k=2)
        n += int((d[:, 1] < search_range).sum())
    return n / len(df)


def write_features(url, df, chunk_frames, *, first=0, n_frames=None, **kwargs):
    """A feature store at ``url`` holding ``df`` (see daskloc.testing.stores)."""
    return write_store(open_store(url, "a", **kwargs), df, chunk_frames, first=first,
                       n_frames=n_frames)


def remove_parquet_chunks(folder, chunks):
    """Delete the part files of ``chunks`` (what a killed job never wrote)."""
    import os

    names = {f"part-{a:09d}-{b:09d}.parquet" for a, b in chunks}
    gone = [n for n in os.listdir(folder) if n in names]
    for n in gone:
        os.remove(os.path.join(folder, n))
    assert len(gone) == len(chunks), sorted(os.listdir(folder))


def assert_same_as_trackpy(url, search_range, *, trackpy_kwargs=None, **kwargs):
    features = daskloc.read_features(url, **({"table": kwargs["table"]}
                                             if "table" in kwargs else {}))
    ref = trackpy.link(features, search_range, **(trackpy_kwargs or {}),
                       **{k: v for k, v in kwargs.items()
                          if k in ("memory", "pos_columns", "adaptive_stop")})
    got = daskloc.read_features(url, trajectories=True,
                                **({"table": kwargs["table"]} if "table" in kwargs else {}))
    assert list(got.columns) == [*features.columns, "particle"]
    assert got["particle"].dtype == np.int64
    pd.testing.assert_frame_equal(got.drop(columns="particle"), features)
    np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))
    return ref, got


@pytest.fixture(scope="module")
def walks_2d():
    """Dense 2-D walks: 250 particles in 160 x 160 px, step 1.2 px, drift, 8 % blinking."""
    return random_walks(112, 250, shape=(160, 160), step=1.2, drift=(0.4, -0.2), blink=0.08,
                        seed=11)


@pytest.mark.parametrize("segments", [1, 2, 7])
@pytest.mark.parametrize("memory", [0, 3])
def test_2d_equals_trackpy_link(tmp_path, walks_2d, segments, memory):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    info = daskloc.link(url, 3.5, memory=memory, segments=segments)
    assert info["segments"] == segments
    assert info["complete"] and info["n_features"] == len(walks_2d)
    ref, got = assert_same_as_trackpy(url, 3.5, memory=memory)
    assert info["n_particles"] == ref["particle"].nunique()
    # the walks are dense enough that linking is not trivial (features with a neighbour
    # within search_range in their own frame: trackpy solved subnetworks), so a join
    # made on the wrong state would show
    assert crowded_share(walks_2d, 3.5) > 0.2


def test_2d_on_a_cluster_equals_trackpy_link(tmp_path, walks_2d, client):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    info = daskloc.link(url, 3.5, memory=2, client=client, segments=7)
    assert info["segments"] == 7
    assert_same_as_trackpy(url, 3.5, memory=2)


def test_a_short_warm_up_is_caught_and_linked_again(tmp_path):
    """Long memory and dense blinking: the first warm-up (4 x (memory + 1) frames) is
    sometimes too short, which the join rule must notice; the result stays exact."""
    df = random_walks(96, 300, shape=(150, 150), step=1.5, drift=(0.3, 0.1), blink=0.1,
                      seed=3)
    url = str(tmp_path / "f.parquet")
    write_features(url, df, 8)
    info = daskloc.link(url, 4.0, memory=6, segments=12)
    assert info["relinked"] > 0
    assert_same_as_trackpy(url, 4.0, memory=6)


@pytest.mark.parametrize("segments", [1, 2, 7])
def test_3d_anisotropic_equals_trackpy_link(tmp_path, segments):
    df = random_walks(84, 200, shape=(30, 120, 120), step=(0.4, 1.0, 1.0),
                      drift=(0.05, 0.3, 0.2), blink=0.05, seed=5)
    url = str(tmp_path / "f.zarr")
    write_features(url, df, 6)
    sr = (1.5, 3.0, 3.0)
    info = daskloc.link(url, sr, memory=2, pos_columns=["z", "y", "x"], segments=segments)
    assert info["params"]["pos_columns"] == ["z", "y", "x"]
    assert info["params"]["search_range"] == [1.5, 3.0, 3.0]
    assert_same_as_trackpy(url, sr, memory=2, pos_columns=["z", "y", "x"])


def test_3d_default_position_columns_are_zyx(tmp_path):
    df = random_walks(30, 50, shape=(20, 80, 80), seed=6)
    url = str(tmp_path / "f.parquet")
    write_features(url, df, 10)
    info = daskloc.link(url, 3.0)
    assert info["params"]["pos_columns"] == ["z", "y", "x"]
    assert_same_as_trackpy(url, 3.0)


def test_frames_not_starting_at_zero_and_empty_frames(tmp_path):
    """A store of frames 100..159 whose frames 120..129 have no features: memory counts
    frame numbers across them, as trackpy.link does."""
    df = random_walks(60, 80, shape=(100, 100), step=1.0, blink=0.1, first_frame=100, seed=7)
    df = df[(df.frame < 120) | (df.frame >= 129)].reset_index(drop=True)
    url = str(tmp_path / "f.parquet")
    write_features(url, df, 10, first=100, n_frames=60)
    daskloc.link(url, 4.0, memory=9, segments=4)
    assert_same_as_trackpy(url, 4.0, memory=9)


def drift_predictor(t1, particles):
    """A trackpy predictor: where each feature goes at frame t1 under a known drift."""
    return [p.pos + np.array([1.5, 1.0]) * (t1 - p.t) for p in particles]


def test_predictor_links_sequentially_like_trackpy(tmp_path):
    df = random_walks(60, 120, shape=(100, 100), step=0.5, drift=(1.5, 1.0), seed=8)
    url = str(tmp_path / "f.parquet")
    write_features(url, df, 10)
    info = daskloc.link(url, 1.6, predictor=drift_predictor, segments=4)
    assert info["segments"] == 1  # a predictor's state may reach back: one segment
    assert info["params"]["predictor"] == "tests.test_link.drift_predictor"
    features = daskloc.read_features(url)
    ref = trackpy.link(features, 1.6, predictor=drift_predictor)
    got = daskloc.read_features(url, trajectories=True)
    np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))
    # and the predictor mattered: without it the trajectories differ
    plain = trackpy.link(features, 1.6)
    assert plain["particle"].nunique() > 1.5 * ref["particle"].nunique()


def test_read_by_frames_and_particles(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    daskloc.link(url, 3.5, memory=1, segments=3)
    every = daskloc.read_features(url, trajectories=True)
    part = daskloc.read_features(url, frames=slice(20, 40), trajectories=True)
    pd.testing.assert_frame_equal(
        part, every[(every.frame >= 20) & (every.frame < 40)].reset_index(drop=True))
    chosen = daskloc.read_features(url, trajectories=True, particles=[3, 250])
    assert set(chosen["particle"]) == {3, 250}
    pd.testing.assert_frame_equal(
        chosen, every[every.particle.isin([3, 250])].reset_index(drop=True))
    with pytest.raises(ValueError, match="trajectories=True"):
        daskloc.read_features(url, particles=[3])


def test_metadata_records_the_linking_and_a_rerun_resumes(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    daskloc.link(url, 3.5, memory=2, adaptive_stop=1.0, segments=3)
    traj = open_store(url, "r", table="_trajectories")
    meta = traj.metadata()
    assert meta.kind == "trajectories"
    assert meta.params["search_range"] == 3.5 and meta.params["memory"] == 2
    assert meta.params["adaptive_stop"] == 1.0
    assert meta.params["features_job"] == open_store(url, "r").metadata().job
    assert meta.columns["particle"] == "int64"
    assert meta.finished
    before = {c: m.id for c, m in traj.chunk_ids().items()}
    again = daskloc.link(url, 3.5, memory=2, adaptive_stop=1.0, segments=5)
    assert {c: m.id for c, m in traj.chunk_ids().items()} == before
    assert again["n_particles"] is not None and again["complete"]
    with pytest.raises(StoreMismatchError, match="memory: 2 -> 3"):
        daskloc.link(url, 3.5, memory=3, adaptive_stop=1.0)
    daskloc.link(url, 3.5, memory=3, overwrite=True, segments=2)
    assert_same_as_trackpy(url, 3.5, memory=3)


def test_resume_after_losing_the_last_chunks(tmp_path, walks_2d):
    """Chunks of trajectories removed (as a killed link leaves them): the rerun links
    only from the first missing chunk, joined to what is stored, and equals trackpy."""
    url = str(tmp_path / "f.parquet")
    chunks = write_features(url, walks_2d, 8)
    daskloc.link(url, 3.5, memory=3, segments=4)
    traj = open_store(url, "a", table="_trajectories")
    kept = traj.read()
    remove_parquet_chunks(f"{url}/_trajectories", chunks[6:])
    assert len(traj.valid_chunks()) == 6
    info = daskloc.link(url, 3.5, memory=3, segments=3)
    assert info["complete"]
    pd.testing.assert_frame_equal(daskloc.read_features(url, trajectories=True), kept)


def test_out_store_of_another_format(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    out = str(tmp_path / "tracks.h5")
    info = daskloc.link(url, 3.5, memory=1, out=out, segments=3)
    assert info["backend"] == "hdf5"
    with pytest.raises(FileNotFoundError, match="holds no trajectories"):
        daskloc.read_features(url, trajectories=True)
    got = daskloc.read_features(out, trajectories=True)
    ref = trackpy.link(daskloc.read_features(url), 3.5, memory=1)
    np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))


def test_many_video_store_links_each_video_on_its_own(tmp_path):
    url = str(tmp_path / "videos.parquet")
    a = random_walks(40, 60, shape=(100, 100), seed=1)
    b = random_walks(30, 40, shape=(100, 100), seed=2)
    write_features(url, a, 10, table="video=a")
    write_features(url, b, 10, table="video=b")
    info = daskloc.link(url, 3.0, memory=1)
    assert set(info) == {"a", "b"}
    both = daskloc.read_features(url, trajectories=True)
    assert list(both["video"].cat.categories) == ["a", "b"]
    for name in ("a", "b"):
        one = daskloc.read_features(url, trajectories=True, video=name)
        ref = trackpy.link(daskloc.read_features(url, video=name), 3.0, memory=1)
        np.testing.assert_array_equal(one["particle"].to_numpy(), birth_numbers(ref))
    only = daskloc.link(url, 3.0, memory=1, video="b")
    assert set(only) == {"b"}


# ----------------------------------------------------------------- bad input


def test_a_store_still_being_located_is_refused_or_linked_partially(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    chunks = write_features(url, walks_2d, 8)
    # the last four chunks were never written: a locate job stopped (or still running)
    remove_parquet_chunks(url, chunks[-4:])
    assert len(open_store(url, "r").valid_chunks()) == len(chunks) - 4
    with pytest.raises(ValueError, match="is incomplete .*partial=True"):
        daskloc.link(url, 3.5)
    info = daskloc.link(url, 3.5, partial=True, segments=3)
    assert not info["complete"]
    assert info["chunks_complete"] == len(chunks) - 4
    linked_frames = daskloc.read_features(url, trajectories=True)["frame"]
    assert linked_frames.max() < chunks[-4][0]
    head = daskloc.read_features(url, frames=slice(0, chunks[-4][0]))
    ref = trackpy.link(head, 3.5)
    np.testing.assert_array_equal(
        daskloc.read_features(url, trajectories=True)["particle"].to_numpy(),
        birth_numbers(ref))


def test_a_store_held_by_a_running_locate_is_named(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    chunks = write_features(url, walks_2d, 8)
    remove_parquet_chunks(url, chunks[2:])
    with open_store(url, "a").lease():
        with pytest.raises(ValueError, match="still being written"):
            daskloc.link(url, 3.5)


def test_no_features_and_bad_parameters(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d.iloc[:0], 8, n_frames=16)
    with pytest.raises(ValueError, match="holds no features"):
        daskloc.link(url, 3.0)
    url = str(tmp_path / "g.parquet")
    write_features(url, walks_2d, 8)
    for bad in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="search_range must be positive"):
            daskloc.link(url, bad)
    with pytest.raises(ValueError, match="one per position column"):
        daskloc.link(url, (1.0, 2.0, 3.0))
    with pytest.raises(ValueError, match="memory"):
        daskloc.link(url, 3.0, memory=-1)
    with pytest.raises(ValueError, match="pos_columns"):
        daskloc.link(url, 3.0, pos_columns=["z", "y", "x"])
    with pytest.raises(FileNotFoundError):
        daskloc.link(str(tmp_path / "absent.parquet"), 3.0)
    assert not open_store(url, "a", table="_trajectories").exists()


def test_subnet_oversize_is_one_line_naming_the_frame(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for t in range(12):
        n = 40 if t >= 7 else 5  # from frame 7 on, a crowd in a 6 px box
        rows.append(pd.DataFrame({"y": rng.random(n) * 6 + 50, "x": rng.random(n) * 6 + 50,
                                  "mass": 100.0, "frame": t}))
    df = pd.concat(rows, ignore_index=True)
    url = str(tmp_path / "f.parquet")
    write_features(url, df, 4)
    with pytest.raises(daskloc.LinkError, match=r"failed at frame 7: SubnetOversize"
                       r".*smaller search_range, or adaptive_stop") as info:
        daskloc.link(url, 20.0, segments=3)
    assert info.value.frame == 7
    assert "\n" not in str(info.value)
    with pytest.raises(trackpy.SubnetOversizeException):
        trackpy.link(daskloc.read_features(url), 20.0)


# ----------------------------------------------------------------- the join rule


def test_join_accepts_only_the_same_grouping():
    assert join_segment(np.array([5, 5, 9]), np.array([0, 0, 1])) == {0: 5, 1: 9}
    assert join_segment(np.array([5, 5, 9]), np.array([0, 1, 1])) is None  # other grouping
    assert join_segment(np.array([5, 6, 9]), np.array([0, 0, 1])) is None  # merged two
    assert join_segment(np.array([5, 6]), np.array([0, 1, 2])) is None     # other rows
    assert join_segment(np.array([], dtype=np.int64), np.array([], dtype=np.int64)) == {}


# ----------------------------------------------------------------- beside the features


def test_plain_readers_of_the_features_do_not_see_the_trajectories(tmp_path, walks_2d):
    """pandas.read_parquet of a store (one video, or many: hive folders) reads its
    features only; the trajectories' folder starts with "_", which pyarrow skips."""
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    many = str(tmp_path / "v.parquet")
    write_features(many, walks_2d, 8, table="video=a")
    daskloc.link(url, 3.5, segments=2)
    daskloc.link(many, 3.5, segments=2)
    plain = pd.read_parquet(url)
    assert "particle" not in plain.columns and len(plain) == len(walks_2d)
    plain = pd.read_parquet(many)
    assert "particle" not in plain.columns and len(plain) == len(walks_2d)
    assert len(pd.read_parquet(f"{url}/_trajectories")) == len(walks_2d)
    # daskloc's own readers, too
    assert "particle" not in daskloc.read_features(url).columns
    assert daskloc.store_info(many)["n_features"] == len(walks_2d)
    assert list(daskloc.store_info(many)["videos"]) == ["a"]


def test_trajectories_of_relocated_features_are_refused(tmp_path):
    """The features are located again (batch with overwrite=True, other parameters):
    the stored trajectories belong to the old features and are never read as if
    they were linked from the new ones."""
    from daskloc.synthetic import make_video
    from daskloc.testing._batch import as_video

    arr, _ = make_video(n_frames=24, shape=(64, 64), n_particles=6, diameter=9, seed=1)
    url = str(tmp_path / "f.parquet")
    daskloc.batch(as_video(arr, chunks=8), 9, minmass=100, store=url, do_not_return=True)
    daskloc.link(url, 3.0)
    assert len(daskloc.read_features(url, trajectories=True))
    daskloc.batch(as_video(arr, chunks=8), 9, minmass=300, store=url, overwrite=True,
                  do_not_return=True)
    with pytest.raises(StoreMismatchError, match="located again since.*--overwrite"):
        daskloc.read_features(url, trajectories=True)
    with pytest.raises(StoreMismatchError, match="features_job"):
        daskloc.link(url, 3.0)
    daskloc.link(url, 3.0, overwrite=True)
    got = daskloc.read_features(url, trajectories=True)
    assert (got["mass"] > 300).all()


def test_many_videos_linked_into_another_store_read_by_video(tmp_path):
    url = str(tmp_path / "videos.parquet")
    write_features(url, random_walks(30, 40, shape=(100, 100), seed=1), 10, table="video=a")
    write_features(url, random_walks(30, 40, shape=(100, 100), seed=2), 10, table="video=b")
    out = str(tmp_path / "tracks.zarr")
    daskloc.link(url, 3.0, out=out)
    for name in ("a", "b"):
        got = daskloc.read_features(out, trajectories=True, video=name)
        ref = trackpy.link(daskloc.read_features(url, video=name), 3.0)
        np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))
    with pytest.raises(ValueError, match="no video 'c'.*'a', 'b'"):
        daskloc.read_features(url, trajectories=True, video="c")


# ----------------------------------------------------------------- found by a hostile tester


def test_a_stepped_frame_selection_links_in_segments(tmp_path):
    """frames=0:60:2: the chunks have gaps ((0, 9), (10, 19), ...), so a segment's join
    window lies before the next segment's first frame, not before its own last one."""
    from daskloc.synthetic import make_video

    v, _ = make_video(n_frames=60, shape=(64, 64), n_particles=10, diameter=7, seed=1)
    url = str(tmp_path / "step.parquet")
    daskloc.batch(daskloc.open_video(v, frames=slice(0, 60, 2), chunks=5), 7, minmass=100,
                  store=url, do_not_return=True)
    ref = trackpy.link(daskloc.read_features(url), 5)
    for segments, memory in ((2, 0), (4, 1), (3, 2)):
        info = daskloc.link(url, 5, memory=memory, segments=segments, overwrite=True)
        assert info["segments"] == segments
        ref = trackpy.link(daskloc.read_features(url), 5, memory=memory)
        got = daskloc.read_features(url, trajectories=True)
        np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))


def test_exact_ties_fall_back_to_one_sequential_run(tmp_path):
    """Integer positions: distances tie exactly, and trackpy's linker breaks ties in an
    order of memory addresses, so two runs of it need not agree. The link must still
    finish, as one sequential run, and say why."""
    rng = np.random.default_rng(0)
    pos, rows = rng.integers(0, 60, (150, 2)).astype(float), []
    for t in range(60):
        pos = pos + rng.integers(-1, 2, pos.shape)
        rows += [(y, x, 1.0, t) for y, x in pos[rng.random(len(pos)) > 0.05]]
    df = pd.DataFrame(rows, columns=["y", "x", "mass", "frame"])
    url = str(tmp_path / "ties.parquet")
    write_features(url, df, 4)
    with pytest.warns(RuntimeWarning, match="tied distances.*one sequential run"):
        info = daskloc.link(url, 1.5, memory=2, segments=8)
    assert info["complete"] and info["segments"] == 1
    got = daskloc.read_features(url, trajectories=True)
    assert len(got) == len(df) and (got.groupby("frame")["particle"].nunique()
                                    == got.groupby("frame").size()).all()


def test_trajectories_in_an_out_store_go_stale_with_the_features(tmp_path):
    from daskloc.synthetic import make_video
    from daskloc.testing._batch import as_video

    arr, _ = make_video(n_frames=16, shape=(64, 64), n_particles=6, diameter=9, seed=1)
    url, out = str(tmp_path / "f.parquet"), str(tmp_path / "t.zarr")
    daskloc.batch(as_video(arr, chunks=8), 9, minmass=100, store=url, do_not_return=True)
    daskloc.link(url, 3.0, out=out)
    assert len(daskloc.read_features(out, trajectories=True))
    daskloc.batch(as_video(arr, chunks=8), 9, minmass=300, store=url, overwrite=True,
                  do_not_return=True)
    with pytest.raises(StoreMismatchError, match="located again since"):
        daskloc.read_features(out, trajectories=True)


def test_a_moved_store_resumes(tmp_path, walks_2d):
    import shutil

    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    daskloc.link(url, 3.5, memory=1, segments=2)
    moved = str(tmp_path / "moved.parquet")
    shutil.move(url, moved)
    info = daskloc.link(moved, 3.5, memory=1)  # nothing to do, nothing refused
    assert info["complete"]
    got = daskloc.read_features(moved, trajectories=True)
    ref = trackpy.link(daskloc.read_features(moved), 3.5, memory=1)
    np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))


def test_bad_arguments_are_refused_before_anything_changes(tmp_path, walks_2d):
    url = str(tmp_path / "f.parquet")
    write_features(url, walks_2d, 8)
    daskloc.link(url, 3.0, memory=1, segments=2)
    before = daskloc.read_features(url, trajectories=True)
    with pytest.raises(TypeError, match="progress"):
        daskloc.link(url, 3.0, memory=2, overwrite=True, progress=5)
    for bad in ("55", [True, 3], None):
        with pytest.raises(TypeError, match="search_range"):
            daskloc.link(url, bad, memory=2, overwrite=True)
    with pytest.raises(ValueError, match="adaptive_stop"):
        daskloc.link(url, 3.0, adaptive_stop=True, overwrite=True)
    with pytest.raises(ValueError, match="finite"):
        daskloc.link(url, 3.0, adaptive_stop=float("inf"), overwrite=True)
    with pytest.raises(ValueError, match="segments"):
        daskloc.link(url, 3.0, segments=True, overwrite=True)
    with pytest.raises(ValueError, match="twice"):
        daskloc.link(url, 3.0, pos_columns=["x", "x"], overwrite=True)
    with pytest.raises(ValueError, match="names no video"):
        daskloc.link(url, 3.0, video=[], overwrite=True)
    pd.testing.assert_frame_equal(daskloc.read_features(url, trajectories=True), before)
    with pytest.raises(ValueError, match="whole particle numbers"):
        daskloc.read_features(url, trajectories=True, particles=[3.5])
