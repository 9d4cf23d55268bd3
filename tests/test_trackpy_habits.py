"""trackpy's names work where they mean the same thing (``engine=``, ``output=``), and
trackpy keywords daskloc does not take are refused with what to use instead."""

import numpy as np
import pandas as pd
import pytest

import daskloc
from daskloc import batch, locate_frame, locate_stack, read_features
from daskloc.stores import open_store
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots


@pytest.fixture(scope="module")
def frames():
    return make_spots(n_frames=6, shape=(64, 64), n_particles=5, seed=3)


@pytest.mark.parametrize("engine", ["auto", "numba", "python"])
def test_every_trackpy_engine_runs_the_kernel(frames, engine):
    want = locate_frame(frames[0], DIAMETER, **PARAMS)
    pd.testing.assert_frame_equal(locate_frame(frames[0], DIAMETER, engine=engine, **PARAMS),
                                  want)
    pd.testing.assert_frame_equal(locate_stack(frames, DIAMETER, engine=engine, **PARAMS),
                                  locate_stack(frames, DIAMETER, **PARAMS))


def test_an_unknown_engine_is_named_with_the_choices(frames):
    with pytest.raises(ValueError, match=r"engine must be one of 'auto', 'numba', 'python'.*cuda"):
        locate_frame(frames[0], DIAMETER, engine="cuda")
    with pytest.raises(ValueError, match="engine"):
        daskloc.locate(as_video(frames, chunks=3), DIAMETER, engine="cuda")


@pytest.mark.parametrize("name, instead", [
    ("filter_before", "minmass="),
    ("filter_after", r"f\[f.mass > 500\]"),
    ("processes", "client=daskloc.make_client"),
    ("after_locate", "partitions"),
    ("meta", "daskloc info"),
])
def test_trackpy_only_keywords_say_what_to_use_instead(frames, tmp_path, name, instead):
    value = lambda f: f  # noqa: E731 - a trackpy filter function
    with pytest.raises(TypeError, match=f"{name} is a trackpy keyword.*{instead}"):
        locate_frame(frames[0], DIAMETER, **{name: value})
    with pytest.raises(TypeError, match=f"{name} is a trackpy keyword.*{instead}"):
        batch(as_video(frames, chunks=3), DIAMETER, store=tmp_path / "f.parquet",
              **{name: value})
    assert not (tmp_path / "f.parquet").exists()  # refused before anything is written


def test_output_is_trackpys_name_for_store(frames, tmp_path):
    video = as_video(frames, chunks=3)
    batch(video, DIAMETER, output=tmp_path / "f.parquet", do_not_return=True, **PARAMS)
    pd.testing.assert_frame_equal(read_features(tmp_path / "f.parquet"),
                                  locate_stack(frames, DIAMETER, **PARAMS))
    with pytest.raises(TypeError, match="not both"):
        batch(video, DIAMETER, store=tmp_path / "a.parquet", output=tmp_path / "b.parquet")
    with pytest.raises(TypeError, match="store='features.parquet'"):
        batch(video, DIAMETER)


def test_engine_is_recorded_but_is_not_part_of_the_identity(frames, tmp_path):
    video = as_video(frames, chunks=3)
    path = tmp_path / "f.parquet"
    batch(video[:3], DIAMETER, store=path, engine="python", do_not_return=True, **PARAMS)
    meta = open_store(path).metadata()
    assert meta.options["engine"] == "numba"  # the kernel that ran
    # the same job asked with another engine is the same job: no mismatch, nothing redone
    again = batch(video[:3], DIAMETER, store=path, engine="auto", **PARAMS).compute()
    assert len(again) == len(locate_stack(frames[:3], DIAMETER, **PARAMS))
    np.testing.assert_array_equal(again.index, read_features(path).frame)
