"""Frames without features: trackpy warns once per frame; daskloc gathers them into one
summary per call (locate_stack), per partition (lazy locate) and per video (batch)."""

from __future__ import annotations

import warnings

import numpy as np

from daskloc.pipeline import batch, locate
from daskloc.stores import read_features
from tests.conftest import DIAMETER, as_video, make_spots


def _no_feature_warnings(func, *args, **kwargs):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, [str(w.message) for w in record if "gave no features" in str(w.message)]


def test_batch_warns_once_for_the_whole_job(tmp_path):
    frames = make_spots(black=[3, 9, 10, 17])
    store = tmp_path / "f.parquet"
    _, messages = _no_feature_warnings(batch, as_video(frames, chunks=4), DIAMETER,
                                       store=store, minmass=100)
    assert len(messages) == 1, messages
    assert messages[0].startswith("daskloc.batch")
    assert "4 frames gave no features (frames 3, 9, 10, 17)" in messages[0]
    assert "Image is completely black. (4)" in messages[0]
    assert set(read_features(store).frame) == set(range(24)) - {3, 9, 10, 17}


def test_batch_with_features_everywhere_says_nothing(tmp_path):
    _, messages = _no_feature_warnings(batch, as_video(make_spots(), chunks=4),
                                       DIAMETER, store=tmp_path / "f.parquet", minmass=100)
    assert messages == []


def test_lazy_locate_warns_once_per_partition_computed():
    frames = make_spots(black=[1, 2, 13])
    ddf = locate(as_video(frames, chunks=8), DIAMETER, minmass=100)
    _, messages = _no_feature_warnings(ddf.compute, scheduler="sync")
    assert len(messages) == 2, messages  # partitions 0..7 and 8..15; 16..23 has none
    messages.sort(key=lambda m: int(m.split("frames ")[1].split("..")[0]))
    assert "frames 0..7: 2 of 8 frames gave no features (frames 1, 2)" in messages[0]
    assert "frames 8..15: 1 of 8 frames gave no features (frame 13)" in messages[1]


def test_the_summary_counts_every_frame_and_lists_the_first():
    from daskloc.locate import add_no_feature_frames, no_feature_message
    from daskloc.locate._locate import MAX_LISTED_FRAMES

    summary = {}
    for start in range(0, 5000, 100):
        add_no_feature_frames(summary, {f: "no_maxima" for f in range(start, start + 100)})
    assert len(summary["frames"]) == MAX_LISTED_FRAMES
    text = no_feature_message(summary["frames"], counts=summary["counts"])
    assert text.startswith("5000 frames gave no features (frames 0, 1, 2,")
    assert text.endswith("Image contains no local maxima. (5000)")
    assert np.all(np.diff(sorted(summary["frames"])) == 1)
