"""daskloc.ProgressBar and batch(progress=True): a tqdm bar counting chunks and features."""

import io

import numpy as np
import pytest

import daskloc
from daskloc import ProgressBar, read_features
from tests.conftest import make_spots


def test_progress_bar_counts_chunks_and_features():
    out = io.StringIO()
    bar = ProgressBar(file=out, mininterval=0)
    bar(0, 5, 0)
    bar(2, 5, 1234)
    assert bar.bar.n == 2 and bar.bar.total == 5
    assert "2/5" in out.getvalue() and "1,234 features" in out.getvalue()
    bar(5, 5, 4321)
    assert bar.bar.n == 5
    assert "5/5" in out.getvalue() and "4,321 features" in out.getvalue()
    assert bar.bar.disable  # closed by itself after the last chunk
    assert "5/5 chunks" in repr(bar)


def test_progress_bar_starts_where_a_resumed_job_is():
    out = io.StringIO()
    bar = ProgressBar(file=out, mininterval=0)
    bar(3, 8, 99)  # three chunks were done by an earlier run
    assert bar.bar.n == 3 and "3/8" in out.getvalue()


def test_batch_progress_true_draws_a_bar(tmp_path, capsys):
    video = daskloc.open_video(make_spots(n_frames=12), chunks=4)
    daskloc.batch(video, 9, store=tmp_path / "f.parquet", progress=True, do_not_return=True)
    err = capsys.readouterr().err
    assert "locate" in err and "3/3" in err
    n = len(read_features(tmp_path / "f.parquet"))
    assert n > 0 and f"{n:,} features" in err


def test_batch_progress_must_be_callable(tmp_path):
    video = daskloc.open_video(np.zeros((4, 32, 32), np.uint8))
    with pytest.raises(TypeError, match="progress"):
        daskloc.batch(video, 9, store=tmp_path / "f.parquet", progress="yes")
    assert not (tmp_path / "f.parquet").exists()
