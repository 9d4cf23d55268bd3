"""The package's store conformance suite, run with this test suite's videos and locations.

Each backend's test module defines one subclass of :class:`DasklocStoreTests` naming its
backend (a key of :data:`tests.stores._locations.LOCATIONS`), store class and
capabilities.
"""

from __future__ import annotations

import functools

import pytest

from daskloc.locate import locate_stack
from daskloc.testing.stores import StoreTests
from tests.conftest import DIAMETER, PARAMS, make_spots
from tests.stores import _locations


@functools.lru_cache(maxsize=1)
def _bulk_water():
    """The real movie (480 frames) and its features: located once per test session."""
    from daskloc.video import open_video
    from tests._data import data_path

    video = open_video(data_path("bulk-water.mov"), channel=0, chunks=64)
    reference = locate_stack(video.values, 11, frame_numbers=video.frame.values,
                             minmass=20, invert=True)
    return video, reference


class DasklocStoreTests(StoreTests):
    """:class:`~daskloc.testing.stores.StoreTests` on this suite's locations, with the
    synthetic videos of ``tests.conftest`` and the real movie ``bulk-water.mov``."""

    #: Key of :data:`tests.stores._locations.LOCATIONS`.
    backend = None
    diameter = DIAMETER
    params = PARAMS

    def make_location(self, tmp_path, name="features"):
        return _locations.make_location(self.backend, tmp_path, name)

    def cleanup_location(self, location):
        _locations.cleanup(location)

    def make_spots(self, n_frames, shape, n_particles, seed):
        return make_spots(n_frames=n_frames, shape=shape, n_particles=n_particles, seed=seed)

    @pytest.fixture
    def reference_video(self):
        video, reference = _bulk_water()
        return video, reference, {"diameter": 11, "minmass": 20, "invert": True}
