"""Fixtures of the video tests: the bulk-water movie, its reference decode, its PNGs."""

from __future__ import annotations

import numpy as np
import pytest

from tests._data import data_path
from tests.video._helpers import MOVIE, N_MOVIE, frame_hash

av = pytest.importorskip("av")
imageio = pytest.importorskip("imageio.v3")


@pytest.fixture(scope="session")
def movie():
    return str(data_path(MOVIE))


@pytest.fixture(scope="session")
def movie_reference(movie):
    """Sequential PyAV decode of the whole movie: per-frame hashes and channel 0."""
    container = av.open(movie)
    hashes, red = [], []
    for frame in container.decode(container.streams.video[0]):
        rgb = frame.to_ndarray(format="rgb24")
        hashes.append(frame_hash(rgb))
        red.append(rgb[..., 0].copy())
    container.close()
    assert len(hashes) == N_MOVIE
    return hashes, np.stack(red)


@pytest.fixture(scope="session")
def pngs():
    folder = data_path("bulk_water_png")
    paths = sorted(folder.glob("bulk_water_*.png"))
    assert len(paths) == 100
    return np.stack([imageio.imread(p) for p in paths])
