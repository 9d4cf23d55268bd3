"""The conformance suite of feature stores: every store daskloc ships passes it, and so can yours.

Subclass :class:`StoreTests` in a pytest module (the subclass's name must start with
``Test``) and say where a store of yours lives::

    from daskloc.testing.stores import StoreLocation, StoreTests

    class TestMyStore(StoreTests):
        store_class = MyStore
        capabilities = {"concurrent_writers": True, "ordered_appends": False}

        def make_location(self, tmp_path, name="features"):
            return StoreLocation("mystore", str(tmp_path / f"{name}.mine"))

The suite checks the :class:`daskloc.stores.FeatureStore` interface directly (append,
complete chunks, reads by frames, metadata, tables, clear, pickling), that the registry
opens the location with the class, and then whole jobs through :func:`daskloc.batch`:
the features of a video land as :func:`daskloc.locate_stack` finds them, and so do those
of a recording followed while a writer fills it (``follow=True``), a job killed
with SIGKILL resumes, a reader in another process sees complete chunks only while a job
writes, and a store written with other parameters is refused until ``overwrite=True``.
Set ``job_tests = False`` to run the interface tests only. The job tests that start a
writer process are marked ``slow`` (register the marker in your pytest configuration, as
daskloc's own ``pyproject.toml`` does, to select them with ``-m``).

A ``client`` fixture (a ``distributed.Client``), if the test session has one, runs the
jobs; else they run on Dask's local scheduler.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
import threading
import time

import numpy as np
import pandas as pd
import pytest

from daskloc.locate import feature_columns, locate_stack
from daskloc.stores import (
    StoreBusyError,
    StoreMismatchError,
    open_store,
    read_features,
    store_class,
    store_info,
)
from daskloc.testing._batch import as_video, kill_when, start_batch_process, watch_run

__all__ = ["CHUNKS", "COLUMNS", "COLUMN_SETS", "StoreLocation", "StoreTests",
           "birth_numbers", "fake_features", "gaussian_volumes", "source_metadata",
           "write_features"]

#: The feature columns of a store written with ``characterize=True`` (2-D frames).
COLUMNS = list(feature_columns(True))
#: Other jobs' columns every store must hold as well: ``{case: (dims, columns)}``.
#: 3-D volumes add ``z``; a per-axis diameter splits ``size`` and ``ep`` per axis.
COLUMN_SETS = {
    "3-D": (["frame", "z", "y", "x"], list(feature_columns(True, ndim=3))),
    "3-D per-axis": (["frame", "z", "y", "x"],
                     list(feature_columns(True, ndim=3, anisotropic=True))),
    "2-D per-axis": (["frame", "y", "x"], list(feature_columns(True, anisotropic=True))),
    "3-D no characterize": (["frame", "z", "y", "x"], list(feature_columns(False, ndim=3))),
}
#: The chunks of the store the ``filled`` fixture writes.
CHUNKS = [(0, 10), (10, 20), (20, 30)]


@dataclasses.dataclass
class StoreLocation:
    """Where one test's store lives, and the keywords every call needs to reach it.

    Attributes
    ----------
    backend : str
        A label of the kind of location (e.g. ``"parquet-s3"``), for messages.
    url : str
        The location :func:`daskloc.stores.open_store` and :func:`daskloc.batch` take.
    kwargs : dict
        Keywords of every call (e.g. ``table``, ``storage_options``); JSON-able, since
        they are passed to a job in another process.
    """

    backend: str
    url: str
    kwargs: dict = dataclasses.field(default_factory=dict)

    def open(self, mode="a", **extra):
        """The store, opened with :func:`daskloc.stores.open_store` (mode ``"a"``)."""
        return open_store(self.url, mode, **{**self.kwargs, **extra})

    @property
    def batch_kwargs(self):
        """dict: The keywords :func:`daskloc.batch` needs for this location."""
        return dict(self.kwargs)


def fake_features(frames, per_frame, seed=0, columns=None):
    """A feature table (inputs for a store, not outputs of daskloc) for some frames.

    Parameters
    ----------
    frames : sequence of int
    per_frame : sequence of int
        Features in each frame.
    seed : int
    columns : list of str, optional
        The feature columns (default :data:`COLUMNS`; e.g. a case of
        :data:`COLUMN_SETS`).

    Returns
    -------
    pandas.DataFrame
        ``columns`` (float64, ``ep`` columns NaN in about a fifth of the rows) and
        ``frame`` (int64), sorted by frame.
    """
    columns = COLUMNS if columns is None else list(columns)
    rng = np.random.default_rng(seed)
    counts = np.asarray(per_frame, dtype=np.int64)
    frame = np.repeat(np.asarray(frames, dtype=np.int64), counts)
    n = len(frame)
    df = pd.DataFrame({c: rng.normal(100, 30, n) for c in columns})
    for c in columns:
        if c == "ep" or c.startswith("ep_"):
            df[c] = np.where(rng.random(n) < 0.2, np.nan, df[c])  # NaN must survive
    df["frame"] = frame
    return df


def source_metadata(first, stop, chunks, columns=None, dims=None):
    """A minimal metadata document describing frames ``first..stop-1`` cut in ``chunks``.

    Parameters
    ----------
    first, stop : int
    chunks : list of (int, int)
    columns : list of str, optional
        The feature columns (default :data:`COLUMNS`).
    dims : list of str, optional
        The video's dims (recorded when given, e.g. ``["frame", "z", "y", "x"]``).

    Returns
    -------
    dict
        Of the current metadata format (chunks carry identities), with unicode text and
        nested values that must round-trip.
    """
    columns = COLUMNS if columns is None else list(columns)
    doc = {
        "format": "daskloc-features",
        "format_version": 2,
        "params": {"diameter": 9, "minmass": 100, "note": "unicode µm ✓",
                   "nested": {"a": [1, 2.5, None]}},
        "source": {"path": "synthetic", "frames": {"start": first, "stop": stop, "step": 1}},
        "chunking": {"chunks": [list(c) for c in chunks]},
        "columns": {**{c: "float64" for c in columns}, "frame": "int64"},
    }
    if dims is not None:
        doc["dims"] = list(dims)
        doc["params"]["diameter"] = [5, 9, 9] if len(dims) == 4 else [7, 9]
    return doc


def write_features(st, df, chunk_frames, *, first=0, n_frames=None):
    """Write a feature table into a store as a finished job would (inputs for linking).

    Parameters
    ----------
    st : FeatureStore
        An opened store (mode ``"a"``) with nothing in it.
    df : pandas.DataFrame
        Position columns (``y, x`` or ``z, y, x``), any other float columns and an int
        ``frame`` column, sorted by frame (e.g. :func:`daskloc.synthetic.random_walks`;
        a ``truth`` column is left out).
    chunk_frames : int
        Frames per chunk.
    first, n_frames : int, optional
        The source's frames ``first .. first + n_frames - 1`` (default: 0 to the last
        frame of ``df``).

    Returns
    -------
    list of (int, int)
        The chunks written.
    """
    from daskloc.metadata import JobMetadata

    n_frames = int(df["frame"].max()) + 1 - first if n_frames is None else n_frames
    stop = first + n_frames
    chunks = [(a, min(a + chunk_frames, stop)) for a in range(first, stop, chunk_frames)]
    cols = [c for c in df.columns if c not in ("frame", "truth")]
    meta = JobMetadata(
        params={"diameter": 9, "minmass": 10.0},
        source={"path": "random walks", "frames": {"start": first, "stop": stop, "step": 1},
                "n_frames": n_frames},
        chunking={"chunk_frames": [b - a for a, b in chunks],
                  "chunks": [list(c) for c in chunks]},
        dims=["frame", "z", "y", "x"] if "z" in cols else None,
        columns={**{c: "float64" for c in cols}, "frame": "int64"}, finished=True)
    meta.job = meta.identity
    st.prepare()
    st.write_metadata(meta.to_json())
    frame = df["frame"].to_numpy()
    for a, b in chunks:
        part = df[(frame >= a) & (frame < b)][[*cols, "frame"]].reset_index(drop=True)
        st.append_chunk(a, b, part)
    return chunks


def birth_numbers(linked):
    """trackpy's ``particle`` numbers renumbered 0, 1, ... by first appearance (frame,
    then row): :func:`daskloc.link`'s numbering of the same trajectories.

    Parameters
    ----------
    linked : pandas.DataFrame
        ``trackpy.link``'s result, rows in the order of its input.

    Returns
    -------
    numpy.ndarray of int64
    """
    order = {}
    ids = linked["particle"].to_numpy().tolist()
    for p in ids:
        if p not in order:
            order[p] = len(order)
    return np.array([order[p] for p in ids], dtype=np.int64)


def gaussian_volumes(n_frames, shape=(16, 48, 48), n_particles=5, seed=0):
    """A 3-D video: Gaussian spots, wider along z, drifting in ``(z, y, x)`` volumes.

    Parameters
    ----------
    n_frames : int
    shape : tuple of int
        ``(z, y, x)`` of one volume.
    n_particles : int
    seed : int

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(n_frames, *shape)``: spots of peak 180 and sigma ``(1.2, 1.6,
        1.6)`` pixels on a background of 20 with noise of 3; found with
        ``diameter=(5, 7, 7), minmass=200``.
    """
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    grid = np.indices(shape, dtype=np.float64)
    sigma = np.array([1.2, 1.6, 1.6])
    lo = np.array([3.0, 6.0, 6.0])
    hi = np.array(shape) - lo - 1
    start = rng.uniform(lo, hi, (n_particles, 3))
    out = np.empty((n_frames, *shape), dtype=np.uint8)
    for f in range(n_frames):
        pos = np.clip(start + rng.normal(0, 0.7, start.shape) * f ** 0.5, lo, hi)
        img = rng.normal(20, 3, shape)
        for c in pos:
            r2 = sum(((grid[i] - c[i]) / sigma[i]) ** 2 for i in range(3))
            img += 180 * np.exp(-r2 / 2)
        out[f] = np.clip(np.rint(img), 0, 255)
    return out


@functools.lru_cache(maxsize=4)
def _located(n_frames, diameter, params, seed):
    """A synthetic video (numpy) and what locate_stack finds in it (computed once)."""
    from daskloc.synthetic import make_video

    arr, _ = make_video(n_frames=n_frames, shape=(64, 64), n_particles=6, diameter=diameter,
                        seed=seed)
    return arr, locate_stack(arr, diameter, **dict(params))


class StoreTests:
    """The conformance tests of a :class:`daskloc.stores.FeatureStore` (pytest).

    Subclass it (as ``Test...``) and implement :meth:`make_location`; set
    :attr:`store_class` and :attr:`capabilities` to have them checked.
    """

    #: The FeatureStore subclass the locations open (None: not checked).
    store_class = None
    #: ``{capability: bool}`` the class must declare (see
    #: :data:`daskloc.stores.CAPABILITIES`); None: not checked.
    capabilities = None
    #: Whether to run the tests of whole jobs (:func:`daskloc.batch`, several seconds).
    job_tests = True
    #: Locate parameters of the jobs (the videos are made for them).
    diameter = 9
    params = {"minmass": 100}
    #: Locate parameters of the 3-D jobs (per-axis diameter, z first), for
    #: :meth:`make_volumes`' videos.
    diameter_3d = [5, 7, 7]
    params_3d = {"minmass": 200}

    # -- what a subclass provides --------------------------------------------------
    def make_location(self, tmp_path, name="features"):
        """A location no store exists at yet.

        Parameters
        ----------
        tmp_path : pathlib.Path
            The test's temporary folder.
        name : str
            A name to derive the location from.

        Returns
        -------
        StoreLocation
        """
        raise NotImplementedError("a StoreTests subclass says where its stores live")

    def cleanup_location(self, location):
        """Remove what a test left at ``location`` (default: nothing; the temporary
        folder goes anyway). Override for shared servers."""

    def make_spots(self, n_frames, shape, n_particles, seed):
        """A uint8 video (numpy, ``(n_frames, *shape)``) with features for
        :attr:`diameter` and :attr:`params` (default: :func:`daskloc.synthetic.make_video`)."""
        from daskloc.synthetic import make_video

        return make_video(n_frames=n_frames, shape=shape, n_particles=n_particles,
                          diameter=self.diameter, seed=seed)[0]

    def make_volumes(self, n_frames, seed):
        """A uint8 3-D video (numpy, ``(n_frames, z, y, x)``) with features for
        :attr:`diameter_3d` and :attr:`params_3d` (default: :func:`gaussian_volumes`)."""
        return gaussian_volumes(n_frames, seed=seed)

    # -- fixtures --------------------------------------------------------------------
    @pytest.fixture
    def location(self, tmp_path):
        """A location (no store yet); cleaned up after the test."""
        loc = self.make_location(tmp_path)
        yield loc
        self.cleanup_location(loc)

    @pytest.fixture
    def filled(self, location):
        """A store holding three chunks; chunk [10, 20) has no features at all."""
        st = location.open()
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        parts = {
            (0, 10): fake_features(range(0, 10), [3, 0, 5, 1, 2, 0, 0, 4, 6, 2], seed=1),
            (10, 20): fake_features([], [], seed=2),
            (20, 30): fake_features(range(20, 30), [2] * 10, seed=3),
        }
        for (a, b), df in parts.items():
            st.append_chunk(a, b, df)
        expected = pd.concat(parts.values(), ignore_index=True)
        return st, expected

    @pytest.fixture
    def store_client(self, request):
        """The session's ``client`` fixture if there is one, else None."""
        try:
            return request.getfixturevalue("client")
        except pytest.FixtureLookupError:
            return None

    @pytest.fixture
    def reference_video(self):
        """``(video, reference, locate keywords)``: a video of at least 150 frames, the
        features :func:`daskloc.locate_stack` finds in it with those keywords."""
        arr, reference = _located(160, self.diameter, tuple(sorted(self.params.items())), 7)
        return as_video(arr, chunks=16), reference, dict(self.params, diameter=self.diameter)

    def _job_tests(self):
        if not self.job_tests:
            pytest.skip(f"{type(self).__name__}.job_tests is False")

    # ----------------------------------------------------------------- the interface
    def test_the_registry_opens_the_location_with_the_class(self, location):
        st = location.open()
        assert isinstance(st, store_class(location.url))
        if self.store_class is not None:
            assert type(st) is self.store_class
        caps = type(st).capabilities()
        if self.capabilities is not None:
            assert {k: caps[k] for k in self.capabilities} == self.capabilities
        for name, value in caps.items():
            assert getattr(st, name) is value or getattr(st, name) == value

    def test_a_new_location_is_not_a_store(self, location):
        st = location.open()
        assert not st.exists()
        assert st.read_metadata() is None
        assert st.complete_chunks() == []
        with pytest.raises((FileNotFoundError, ValueError)):
            location.open("r")

    def test_metadata_round_trips_as_json(self, location):
        st = location.open()
        st.prepare()
        meta = source_metadata(0, 30, CHUNKS)
        st.write_metadata(meta)
        assert st.exists()
        assert location.open("r").read_metadata() == meta
        meta["params"]["minmass"] = 200
        st.write_metadata(meta)
        assert location.open("r").read_metadata()["params"]["minmass"] == 200

    def test_chunks_round_trip(self, filled, location):
        st, expected = filled
        assert st.complete_chunks() == CHUNKS
        assert st.n_rows() == len(expected)
        got = location.open("r").read()
        pd.testing.assert_frame_equal(got, expected)
        assert list(got.columns) == COLUMNS + ["frame"]
        assert (got[COLUMNS].dtypes == np.float64).all() and got.frame.dtype == np.int64

    def test_finish_leaves_the_table_readable_and_resumable(self, location):
        # finish() (called when a job's writes end) may prepare the table for plain
        # readers; the next writer must undo that before its first write.
        st = location.open()
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        parts = [fake_features(range(a, b), [2] * (b - a), seed=a) for a, b in CHUNKS]
        for (a, b), df in zip(CHUNKS[:2], parts[:2]):
            st.append_chunk(a, b, df)
        st.finish()
        pd.testing.assert_frame_equal(location.open("r").read(),
                                      pd.concat(parts[:2], ignore_index=True))
        again = location.open()  # the resumed job: a new writer
        again.remove_temporary()
        assert again.complete_chunks() == CHUNKS[:2]
        again.append_chunk(*CHUNKS[2], parts[2])
        again.finish()
        got = location.open("r")
        assert got.complete_chunks() == CHUNKS
        pd.testing.assert_frame_equal(got.read(), pd.concat(parts, ignore_index=True))

    @pytest.mark.parametrize(
        "frames,wanted",
        [
            (slice(5, 15), range(5, 15)),
            (slice(None, 3), range(0, 3)),
            (range(8, 22), range(8, 22)),
            ([2, 7, 20, 29], [2, 7, 20, 29]),
            (slice(0, 30, 4), range(0, 30, 4)),
            (12, [12]),
        ],
    )
    def test_read_frame_selections(self, filled, frames, wanted):
        st, expected = filled
        got = st.read(frames)
        want = expected[expected.frame.isin(list(wanted))].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want)

    def test_read_of_chosen_chunks(self, filled):
        st, expected = filled
        got = st.read(chunks=[(20, 30)])
        pd.testing.assert_frame_equal(got, expected[expected.frame >= 20].reset_index(drop=True))
        assert len(st.read(slice(0, 10), chunks=[(20, 30)])) == 0
        assert len(st.read(chunks=[(0, 5)])) == 0  # not a stored chunk

    def test_read_of_frames_without_features_keeps_the_schema(self, filled):
        st, expected = filled
        got = st.read(slice(10, 20))
        assert len(got) == 0
        assert list(got.columns) == list(expected.columns)
        assert (got.dtypes == expected.dtypes).all()

    def test_read_outside_the_source_is_an_error(self, filled):
        st, expected = filled
        with pytest.raises(ValueError, match="0..29"):
            st.read(slice(25, 40))
        got = st.read(slice(25, 40), strict=False)  # unless asked to give what is there
        pd.testing.assert_frame_equal(got, expected[expected.frame >= 25].reset_index(drop=True))

    def test_chunks_out_of_order(self, location):
        st = location.open()
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        late = fake_features(range(20, 30), [1] * 10, seed=4)
        early = fake_features(range(0, 10), [2] * 10, seed=5)
        st.append_chunk(20, 30, late)
        if st.ordered_appends:
            # A format that appends in frame order only must refuse, not corrupt the table.
            with pytest.raises(ValueError, match="order"):
                st.append_chunk(0, 10, early)
            assert st.complete_chunks() == [(20, 30)]
            pd.testing.assert_frame_equal(st.read(), late)
            return
        st.append_chunk(0, 10, early)
        assert st.complete_chunks() == [(0, 10), (20, 30)]
        pd.testing.assert_frame_equal(st.read(), pd.concat([early, late], ignore_index=True))

    def test_appending_a_chunk_again_replaces_it(self, location):
        st = location.open()
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        first = fake_features(range(0, 10), [2] * 10, seed=6)
        second = fake_features(range(0, 10), [3] * 10, seed=7)
        st.append_chunk(0, 10, first)
        if not st.concurrent_writers:
            # Single-writer formats are appended by one client that never repeats a chunk;
            # a repeat must be refused, never duplicated.
            with pytest.raises(ValueError):
                st.append_chunk(0, 10, second)
            pd.testing.assert_frame_equal(st.read(), first)
            return
        st.append_chunk(0, 10, second)  # a retried Dask task writes its chunk again
        assert st.complete_chunks() == [(0, 10)]
        pd.testing.assert_frame_equal(st.read(), second)

    def test_append_checks_frames_belong_to_the_chunk(self, location):
        st = location.open()
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        with pytest.raises(ValueError):
            st.append_chunk(0, 10, fake_features([12], [1]))
        with pytest.raises(ValueError, match="integer"):
            st.append_chunk(0, 10, fake_features([2], [1]).assign(frame=2.5))
        with pytest.raises(ValueError, match="empty"):
            st.append_chunk(10, 10, fake_features([], []))
        assert st.complete_chunks() == []

    def test_a_pickled_store_writes_where_the_original_reads(self, location):
        st = location.open()
        st.prepare()
        st.write_metadata(source_metadata(0, 30, CHUNKS))
        st.read_metadata()  # may open handles: they must not travel
        blob = pickle.dumps(st)
        assert len(blob) < 10_000
        remote = pickle.loads(blob)
        part = fake_features(range(0, 10), [1] * 10, seed=8)
        remote.append_chunk(0, 10, part)
        remote.close()
        pd.testing.assert_frame_equal(st.read(), part)

    def test_tables_in_one_store_are_independent(self, location):
        base = location.kwargs.get("table")
        name_a = f"{base}_a/features" if base else "run_a/features"
        name_b = f"{base}_b/features" if base else "run_b/features"
        a = location.open(table=name_a)
        b = location.open(table=name_b)
        for st, seed in ((a, 1), (b, 2)):
            st.prepare()
            st.write_metadata(source_metadata(0, 30, CHUNKS))
            st.append_chunk(0, 10, fake_features(range(10), [seed] * 10, seed=seed))
        try:
            assert len(location.open("r", table=name_a).read()) == 10
            assert len(location.open("r", table=name_b).read()) == 20
            if a.lists_tables:
                assert {name_a, name_b} <= set(a.list_tables())
            a.clear()
            assert not a.exists() and a.complete_chunks() == []
            assert len(location.open("r", table=name_b).read()) == 20
        finally:
            a.clear()
            b.clear()

    @pytest.mark.parametrize("case", list(COLUMN_SETS))
    def test_3d_and_per_axis_columns_round_trip(self, location, case):
        # A job's columns depend on the video's dims and its parameters: z first for
        # 3-D volumes, size_z.. and ep_z.. for a per-axis diameter. Every store keeps
        # them, in order, with their dtypes, through frame-range reads, a new writer
        # (resume) and an empty selection.
        dims, columns = COLUMN_SETS[case]
        st = location.open()
        st.prepare()
        meta = source_metadata(0, 30, CHUNKS, columns=columns, dims=dims)
        st.write_metadata(meta)
        parts = [fake_features(range(0, 10), [3, 0, 5, 1, 2, 0, 0, 4, 6, 2], seed=11,
                               columns=columns),
                 fake_features([], [], columns=columns),
                 fake_features(range(20, 30), [2] * 10, seed=12, columns=columns)]
        for (a, b), df in zip(CHUNKS[:2], parts[:2]):
            st.append_chunk(a, b, df)
        st.finish()
        again = location.open()  # the resumed job: a new writer
        again.remove_temporary()
        assert again.read_metadata() == meta
        assert again.complete_chunks() == CHUNKS[:2]
        again.append_chunk(*CHUNKS[2], parts[2])
        again.finish()
        expected = pd.concat(parts, ignore_index=True)
        reader = location.open("r")
        got = reader.read()
        assert list(got.columns) == columns + ["frame"]
        assert (got[columns].dtypes == np.float64).all() and got.frame.dtype == np.int64
        pd.testing.assert_frame_equal(got, expected)
        part = reader.read(slice(5, 25))
        pd.testing.assert_frame_equal(
            part, expected[expected.frame.between(5, 24)].reset_index(drop=True))
        pd.testing.assert_frame_equal(
            reader.read([3, 28]), expected[expected.frame.isin([3, 28])].reset_index(drop=True))
        empty = reader.read(slice(10, 20))
        assert len(empty) == 0 and list(empty.columns) == columns + ["frame"]
        assert (empty.dtypes == expected.dtypes).all()
        assert reader.n_rows() == len(expected)

    def test_clear_removes_the_store(self, filled, location):
        st, _ = filled
        st.clear()
        assert not st.exists()
        assert st.complete_chunks() == []
        with pytest.raises((FileNotFoundError, ValueError)):
            location.open("r")

    # ----------------------------------------------------------------- the whole job
    @pytest.mark.slow
    def test_a_video_lands_as_locate_stack_finds_it(self, location, reference_video,
                                                    store_client):
        self._job_tests()
        video, reference, kw = reference_video
        kw = dict(kw)
        batch(video, kw.pop("diameter"), store=location.url, client=store_client,
              do_not_return=True, **location.batch_kwargs, **kw)
        got = read_features(location.url, **location.kwargs)
        key = ["frame", "y", "x"]
        pd.testing.assert_frame_equal(
            got.sort_values(key).reset_index(drop=True),
            reference.sort_values(key).reset_index(drop=True)
        )
        part = read_features(location.url, frames=slice(100, 150), **location.kwargs)
        assert sorted(part.frame.unique()) == list(range(100, 150))
        want = reference[reference.frame.between(100, 149)]
        pd.testing.assert_frame_equal(
            part.sort_values(key).reset_index(drop=True),
            want.sort_values(key).reset_index(drop=True)
        )
        info = store_info(location.url, **location.kwargs)
        assert info["complete"] and info["n_features"] == len(reference)
        assert info["frames_complete"] == video.sizes["frame"]

    @pytest.mark.slow
    def test_resume_after_sigkill(self, location, tmp_path):
        self._job_tests()
        arr = self.make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=21)
        reference = locate_stack(arr, self.diameter, **self.params)
        proc = start_batch_process(tmp_path, arr, location.url, delay=0.05, chunks=4,
                                   diameter=self.diameter, params=self.params,
                                   store_kwargs=location.batch_kwargs,
                                   hold=3)
        kill_when(proc, lambda: len(location.open().complete_chunks()) >= 2)
        assert 2 <= len(location.open().complete_chunks()) < 10
        batch(as_video(arr, chunks=4), self.diameter, store=location.url, do_not_return=True,
              **location.batch_kwargs, **self.params)
        got = read_features(location.url, **location.kwargs)
        pd.testing.assert_frame_equal(got, reference)  # nothing lost, nothing twice

    @pytest.mark.slow
    def test_reading_while_a_batch_writes(self, location, tmp_path):
        self._job_tests()
        arr = self.make_spots(n_frames=40, shape=(64, 64), n_particles=5, seed=9)
        reference = locate_stack(arr, self.diameter, **self.params)
        chunks = [(a, a + 2) for a in range(0, 40, 2)]
        proc = start_batch_process(tmp_path, arr, location.url, delay=0.2, chunks=2,
                                   diameter=self.diameter, params=self.params,
                                   store_kwargs=location.batch_kwargs)

        def observe():
            try:
                reader = location.open("r")
                before = set(reader.complete_chunks())
                got = reader.read()
                after = set(reader.complete_chunks())
                reader.close()
            except StoreBusyError as exc:
                assert not location.open().live_reads
                assert "Parquet" in str(exc) or "wait" in str(exc)  # says what instead
                return "refused"
            except (FileNotFoundError, ValueError):
                return None  # not created yet
            if not before or len(after) == len(chunks):
                return None
            for a, b in chunks:
                rows = got[got.frame.between(a, b - 1)].reset_index(drop=True)
                want = reference[reference.frame.between(a, b - 1)].reset_index(drop=True)
                if (a, b) in before:
                    pd.testing.assert_frame_equal(rows, want)
                elif (a, b) not in after:
                    assert len(rows) == 0
                elif len(rows):  # finished during the read: all or nothing
                    pd.testing.assert_frame_equal(rows, want)
            return "seen"

        seen = watch_run(proc, observe)
        observations, refusals = seen["seen"], seen["refused"]
        if location.open().live_reads:
            assert observations >= 2, "the reader never overlapped the run"
        else:
            assert refusals + observations >= 2
        pd.testing.assert_frame_equal(read_features(location.url, **location.kwargs), reference)

    def test_a_followed_recording_lands_as_the_finished_one(self, location, tmp_path,
                                                            store_client):
        # batch(follow=True) on a folder a real writer (imageio, files written in two
        # halves) is filling: the store says it grows while it does, holds every frame
        # once at the end, in the followed default chunks, as locate_stack finds them.
        self._job_tests()
        from daskloc.testing.acquire import write_frames
        from daskloc.video._follow import FOLLOW_CHUNK_FRAMES

        n = 2 * FOLLOW_CHUNK_FRAMES + 8
        arr = self.make_spots(n_frames=n, shape=(64, 64), n_particles=5, seed=13)
        reference = locate_stack(arr, self.diameter, **self.params)
        folder = tmp_path / "recording"
        folder.mkdir()  # as acquisition software does before its first frame
        folder = str(folder)
        snapshots, done = [], threading.Event()

        def write_and_watch():
            write_frames(folder, arr, kind="png", fps=30, tear=0.3)
            while not done.is_set():  # the job waits `idle` seconds for more frames
                try:
                    snapshots.append(store_info(location.url, **location.kwargs))
                except (FileNotFoundError, ValueError, StoreBusyError):
                    pass
                time.sleep(0.1)

        writer = threading.Thread(target=write_and_watch, daemon=True)
        writer.start()
        try:
            batch(folder, self.diameter, store=location.url, follow=True, idle=2,
                  client=store_client, do_not_return=True, **location.batch_kwargs,
                  **self.params)
        finally:
            done.set()
            writer.join(60)
        got = read_features(location.url, **location.kwargs)
        pd.testing.assert_frame_equal(got, reference)
        assert any(s["growing"] and not s["complete"] for s in snapshots), (
            "the store never said the source was still growing")
        info = store_info(location.url, **location.kwargs)
        assert info["complete"] and info["followed"] and not info["growing"]
        assert info["frames_complete"] == n and "idle" in info["ended"]
        chunks = location.open("r").metadata().chunks
        assert [tuple(c) for c in chunks] == [
            (0, FOLLOW_CHUNK_FRAMES), (FOLLOW_CHUNK_FRAMES, 2 * FOLLOW_CHUNK_FRAMES),
            (2 * FOLLOW_CHUNK_FRAMES, n)]

    # ----------------------------------------------------------------- linking
    def _walks(self, location, n_frames=48, seed=3):
        from daskloc.synthetic import random_walks

        df = random_walks(n_frames, 120, shape=(120, 120), step=1.2, drift=(0.3, -0.2),
                          blink=0.08, seed=seed)
        st = location.open()
        write_features(st, df, 6)
        st.close()
        return df

    def test_link_streams_trajectories_equal_to_trackpy(self, location, store_client):
        self._job_tests()
        trackpy = pytest.importorskip("trackpy")
        from daskloc.link import link

        self._walks(location)
        info = link(location.url, 3.5, memory=2, segments=3, client=store_client,
                    **location.kwargs)
        assert info["complete"] and info["segments"] == 3
        features = read_features(location.url, **location.kwargs)
        ref = trackpy.link(features, 3.5, memory=2)
        got = read_features(location.url, trajectories=True, **location.kwargs)
        assert got["particle"].dtype == np.int64
        pd.testing.assert_frame_equal(got.drop(columns="particle"), features)
        np.testing.assert_array_equal(got["particle"].to_numpy(), birth_numbers(ref))
        part = read_features(location.url, frames=slice(12, 30), trajectories=True,
                             particles=[0, 7, 40], **location.kwargs)
        want = got[got.frame.between(12, 29) & got.particle.isin([0, 7, 40])]
        pd.testing.assert_frame_equal(part, want.reset_index(drop=True))
        # the features are untouched and still read as features
        assert store_info(location.url, **location.kwargs)["n_features"] == len(features)
        with pytest.raises(StoreMismatchError, match="memory"):
            link(location.url, 3.5, memory=1, **location.kwargs)
        link(location.url, 3.5, memory=1, overwrite=True, **location.kwargs)
        again = read_features(location.url, trajectories=True, **location.kwargs)
        np.testing.assert_array_equal(again["particle"].to_numpy(),
                                      birth_numbers(trackpy.link(features, 3.5, memory=1)))

    @pytest.mark.slow
    def test_link_resumes_after_sigkill(self, location, tmp_path):
        self._job_tests()
        trackpy = pytest.importorskip("trackpy")
        from daskloc.link import link
        from daskloc.testing._batch import start_link_process

        self._walks(location, n_frames=60, seed=5)
        kwargs = dict(search_range=3.5, memory=3, segments=10)
        def stored():  # a new store object each time: no cached listing of an object store
            return len(location.open(table=_trajectories(location)).complete_chunks())

        proc = start_link_process(tmp_path, location.url, delay=0.4,
                                  link_kwargs={**kwargs, **location.kwargs})
        kill_when(proc, lambda: stored() >= 2)
        assert 2 <= stored() < 10
        info = link(location.url, **kwargs, **location.kwargs)
        assert info["complete"]
        features = read_features(location.url, **location.kwargs)
        got = read_features(location.url, trajectories=True, **location.kwargs)
        pd.testing.assert_frame_equal(got.drop(columns="particle"), features)
        np.testing.assert_array_equal(got["particle"].to_numpy(),
                                      birth_numbers(trackpy.link(features, 3.5, memory=3)))

    def test_a_3d_video_lands_as_locate_stack_finds_it(self, location, store_client):
        # (frame, z, y, x) volumes with a per-axis diameter: z and the per-axis columns
        # land, frame-range reads and the lazy result give them, the store says its dims.
        self._job_tests()
        arr = self.make_volumes(8, seed=5)
        reference = locate_stack(arr, self.diameter_3d, **self.params_3d)
        assert len(reference) and "z" in reference and "size_z" in reference
        out = batch(as_video(arr, chunks=2), self.diameter_3d, store=location.url,
                    client=store_client, **location.batch_kwargs, **self.params_3d)
        got = read_features(location.url, **location.kwargs)
        pd.testing.assert_frame_equal(got, reference)
        lazy = out.compute().reset_index()
        pd.testing.assert_frame_equal(lazy[list(reference.columns)], reference)
        part = read_features(location.url, frames=slice(3, 6), **location.kwargs)
        pd.testing.assert_frame_equal(
            part, reference[reference.frame.between(3, 5)].reset_index(drop=True))
        info = store_info(location.url, **location.kwargs)
        assert info["complete"] and info["n_features"] == len(reference)
        assert info["dims"] == ["frame", "z", "y", "x"]
        assert info["params"]["diameter"] == list(self.diameter_3d)

    @pytest.mark.slow
    def test_a_3d_job_resumes_after_sigkill(self, location, tmp_path):
        self._job_tests()
        arr = self.make_volumes(16, seed=6)
        reference = locate_stack(arr, self.diameter_3d, **self.params_3d)
        proc = start_batch_process(tmp_path, arr, location.url, delay=0.05, chunks=2,
                                   diameter=list(self.diameter_3d), params=self.params_3d,
                                   store_kwargs=location.batch_kwargs,
                                   hold=3)
        kill_when(proc, lambda: len(location.open().complete_chunks()) >= 2)
        assert 2 <= len(location.open().complete_chunks()) < 8
        batch(as_video(arr, chunks=2), self.diameter_3d, store=location.url,
              do_not_return=True, **location.batch_kwargs, **self.params_3d)
        pd.testing.assert_frame_equal(read_features(location.url, **location.kwargs),
                                      reference)  # nothing lost, nothing twice

    def test_other_dims_or_per_axis_values_are_refused_until_overwrite(self, location):
        self._job_tests()
        arr = self.make_volumes(4, seed=7)
        video = as_video(arr, chunks=2)
        batch(video, self.diameter_3d, store=location.url, do_not_return=True,
              **location.batch_kwargs, **self.params_3d)
        first = read_features(location.url, **location.kwargs)
        wider = [d + 2 for d in self.diameter_3d]
        with pytest.raises(StoreMismatchError, match="diameter"):
            batch(video, wider, store=location.url, **location.batch_kwargs,
                  **self.params_3d)
        planes = as_video(arr[:, arr.shape[1] // 2], chunks=2)  # one plane: 2-D frames
        with pytest.raises(StoreMismatchError, match="dims") as refused:
            batch(planes, self.diameter_3d[-1], store=location.url,
                  **location.batch_kwargs, **self.params_3d)
        assert "3-D volumes" in str(refused.value) and "2-D frames" in str(refused.value)
        pd.testing.assert_frame_equal(read_features(location.url, **location.kwargs), first)
        batch(planes, self.diameter_3d[-1], store=location.url, overwrite=True,
              do_not_return=True, **location.batch_kwargs, **self.params_3d)
        again = read_features(location.url, **location.kwargs)
        want = locate_stack(arr[:, arr.shape[1] // 2], self.diameter_3d[-1], **self.params_3d)
        pd.testing.assert_frame_equal(again, want)
        assert "z" not in again and store_info(location.url, **location.kwargs)["dims"] == [
            "frame", "y", "x"]

    def test_other_parameters_are_refused_until_overwrite(self, location):
        self._job_tests()
        arr = self.make_spots(n_frames=8, shape=(64, 64), n_particles=4, seed=2)
        video = as_video(arr, chunks=4)
        other = {**self.params, "minmass": 300}
        batch(video, self.diameter, store=location.url, do_not_return=True,
              **location.batch_kwargs, **self.params)
        first = read_features(location.url, **location.kwargs)
        with pytest.raises(StoreMismatchError, match="minmass"):
            batch(video, self.diameter, store=location.url, **location.batch_kwargs, **other)
        pd.testing.assert_frame_equal(read_features(location.url, **location.kwargs), first)
        batch(video, self.diameter, store=location.url, overwrite=True, do_not_return=True,
              **location.batch_kwargs, **other)
        again = read_features(location.url, **location.kwargs)
        assert (again.mass > 300).all() and len(again) <= len(first)


def batch(*args, **kwargs):
    """:func:`daskloc.batch` (imported when a job test runs: the interface tests need
    nothing beyond the stores)."""
    from daskloc.pipeline import batch as run

    return run(*args, **kwargs)


def _trajectories(location):
    """The trajectories' table of a location's features table."""
    from daskloc.stores._names import trajectories_table

    return trajectories_table(location.kwargs.get("table"))
