"""Many videos in one job: ``batch([...])`` and ``daskloc locate A.mov B.mov 'run*/*.tif'``.

Three small synthetic videos of different lengths (dark spots on a light background,
written as multi-page TIFFs) and the first frames of the real movie go through one
many-video batch into every kind of store; each video must equal a one-video run of it,
row for row. Then: the chunks of the videos interleave, a SIGKILLed many-video job
resumes per video and per chunk, a bad video fails alone and is named, names are made
unique, and the command line does all of it as a person would run it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import dask
import imageio.v3 as iio
import numpy as np
import pandas as pd
import pyarrow.dataset as ds
import pytest
import tifffile
import xarray as xr

from daskloc import locate_stack, open_video
from daskloc.pipeline import BatchError, batch, many_videos, video_names
from daskloc.stores import ParquetStore, StoreMismatchError, open_store, read_features, store_info
from daskloc.stores.base import check_table_name
from daskloc.testing._batch import kill_when
from tests._data import data_path
from tests.conftest import make_spots, parquet_doc
from tests.stores import _services

#: One parameter set for every video of a job: those of the real movie (dark particles).
DIAMETER = 11
PARAMS = {"minmass": 20, "invert": True}
#: Synthetic videos: name -> number of frames (chunks of 4 frames: 2, 3 and 4 chunks).
LENGTHS = {"short": 6, "mid": 10, "long": 14}
CHUNK = 4
MOVIE_FRAMES = slice(0, 16)
MOVIE_CHUNK = 8


def dark_spots(n_frames, seed):
    """Dark spots on a light background, like the real movie (uint8)."""
    return 255 - make_spots(n_frames=n_frames, shape=(80, 96), n_particles=8,
                            diameter=DIAMETER, seed=seed)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """The synthetic videos as multi-page TIFF files: ``{name: path}``."""
    folder = tmp_path_factory.mktemp("videos")
    out = {}
    for seed, (name, n) in enumerate(LENGTHS.items()):
        path = folder / f"{name}.tif"
        tifffile.imwrite(path, dark_spots(n, seed))
        out[name] = path
    return out


@pytest.fixture(scope="module")
def movie():
    return data_path("bulk-water.mov")


def open_movie(movie):
    return open_video(movie, channel=0, frames=MOVIE_FRAMES, chunks=MOVIE_CHUNK)


@pytest.fixture(scope="module")
def references(videos, movie, tmp_path_factory):
    """Each video through a one-video batch (its own Parquet store): ``{name: DataFrame}``."""
    folder = tmp_path_factory.mktemp("references")
    out = {}
    sources = {n: open_video(p, chunks=CHUNK) for n, p in videos.items()}
    sources["bulk-water"] = open_movie(movie)
    for name, video in sources.items():
        store = folder / f"{name}.parquet"
        batch(video, DIAMETER, store=store, do_not_return=True, **PARAMS)
        out[name] = read_features(store)
        assert len(out[name]) > 5 * video.sizes["frame"], name  # real features in every one
    return out


def job(videos, movie):
    """The list given to batch: three TIFF paths and the opened movie subset."""
    return [videos["short"], videos["mid"], videos["long"], open_movie(movie)]


NAMES = ["short", "mid", "long", "bulk-water"]


# ----------------------------------------------------------------- stores of every kind

BACKENDS = ["parquet", "zarr", "sqlite", "postgresql", "mariadb"]


def location(backend, tmp_path):
    """``(store URL, extra batch/read keywords)`` for one backend."""
    if backend == "parquet":
        return str(tmp_path / "features.parquet"), {}
    if backend == "zarr":
        return str(tmp_path / "features.zarr"), {}
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'features.db'}", {}
    if backend == "postgresql":  # a shared server: a base table of our own
        return _services.postgres_url(), {"table": _services.unique_table("many")}
    if backend == "mariadb":
        return _services.mysql_url(), {"table": _services.unique_table("many")}
    raise AssertionError(backend)


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("backend", BACKENDS)
def test_each_video_equals_a_one_video_run(backend, tmp_path, videos, movie, references):
    url, kw = location(backend, tmp_path)
    calls = []
    try:
        out = batch(job(videos, movie), DIAMETER, store=url, open_options={"chunks": CHUNK},
                    progress=lambda *a: calls.append(a), **kw, **PARAMS)
        assert list(out) == NAMES
        for name in NAMES:
            got = read_features(url, video=name, **kw)
            pd.testing.assert_frame_equal(got, references[name])  # row for row
            lazy = out[name].compute().reset_index()
            pd.testing.assert_frame_equal(lazy[got.columns.tolist()], got)

        # One frame range of one video.
        part = read_features(url, video="bulk-water", frames=slice(4, 12), **kw)
        ref = references["bulk-water"]
        pd.testing.assert_frame_equal(
            part, ref[(ref.frame >= 4) & (ref.frame < 12)].reset_index(drop=True))

        # Without video=: every video, with a categorical video column.
        every = read_features(url, **kw)
        assert isinstance(every["video"].dtype, pd.CategoricalDtype)
        assert list(every["video"].cat.categories) == sorted(NAMES)
        for name in NAMES:
            one = every[every.video == name].drop(columns="video").reset_index(drop=True)
            pd.testing.assert_frame_equal(one, references[name])

        # Progress counts chunks of all videos together: 2 + 3 + 4 + 2, one call each.
        total = 2 + 3 + 4 + 2
        assert calls[0][:2] == (0, total) and calls[-1][:2] == (total, total)
        assert [c[0] for c in calls] == list(range(total + 1))
        assert calls[-1][2] == sum(len(r) for r in references.values())

        info = store_info(url, **kw)
        assert info["complete"] and set(info["videos"]) == set(NAMES)
        assert info["chunks_total"] == total and info["n_features"] == calls[-1][2]
        for name in NAMES:
            v = info["videos"][name]
            assert v["complete"] and v["n_features"] == len(references[name]), name
            assert v["video"] == name
        assert store_info(url, video="mid", **kw)["frames_total"] == LENGTHS["mid"]

        base = kw.get("table")
        tables = open_store(url, "a").list_tables()
        prefix = f"{base}/" if base else ""
        assert {f"{prefix}video={n}" for n in NAMES} <= set(tables)
        meta = open_store(url, "r", table=f"{prefix}video=long").read_metadata()
        assert meta["video"] == "long" and meta["finished"] is True
    finally:
        if backend in ("postgresql", "mariadb"):  # shared servers: leave nothing behind
            for name in NAMES:
                open_store(url, "a", table=f"{kw['table']}/video={name}").clear()


@pytest.mark.data
def test_plain_pandas_and_pyarrow_see_a_video_column(tmp_path, videos, references):
    store = tmp_path / "f.parquet"
    batch([videos["short"], videos["long"]], DIAMETER, store=store, do_not_return=True,
          open_options={"chunks": CHUNK}, **PARAMS)
    assert sorted(p.name for p in store.iterdir()) == ["video=long", "video=short"]
    assert (store / "video=short" / "part-000000000-000000004.parquet").is_file()
    for df in (pd.read_parquet(store),
               ds.dataset(store, format="parquet", partitioning="hive").to_table().to_pandas()):
        assert set(df["video"].astype(str)) == {"short", "long"}
        for name in ("short", "long"):
            one = df[df["video"].astype(str) == name].drop(columns="video")
            one = one.sort_values("frame", kind="stable", ignore_index=True)
            pd.testing.assert_frame_equal(one, references[name])


# ----------------------------------------------------------------- interleaving


def test_chunks_alternate_between_videos(tmp_path, videos, monkeypatch):
    """One thread, a window of 2: the chunks land exactly round-robin over the videos."""
    landed = []
    real = ParquetStore.append_chunk

    def spy(self, start, stop, features, **kw):
        landed.append((self.table, start))
        return real(self, start, stop, features, **kw)

    monkeypatch.setattr(ParquetStore, "append_chunk", spy)
    with dask.config.set(scheduler="synchronous"):
        batch([videos["short"], videos["mid"], videos["long"]], DIAMETER,
              store=tmp_path / "f.parquet", do_not_return=True, open_options={"chunks": CHUNK},
              **PARAMS)
    s, m, l = "video=short", "video=mid", "video=long"  # noqa: E741
    assert landed == [(s, 0), (m, 0), (l, 0), (s, 4), (m, 4), (l, 4), (m, 8), (l, 8), (l, 12)]


def test_chunks_interleave_on_a_cluster(tmp_path, videos, client):
    """Two workers: every video's first chunk lands before any video is half done.

    One video after another would land the long video's first chunk sixth; round-robin
    submission puts each video's first chunk among the first four submitted (the
    window). Two workers may finish them in another order (a busy machine swaps
    neighbours), so landing among the first five is required: still never sixth.
    """
    store = tmp_path / "f.parquet"
    batch([videos["short"], videos["mid"], videos["long"]], DIAMETER, store=store,
          client=client, do_not_return=True, open_options={"chunks": CHUNK}, **PARAMS)
    parts = sorted(store.glob("video=*/part-*.parquet"), key=lambda p: p.stat().st_mtime_ns)
    assert len(parts) == 9
    order = [(p.parent.name, int(p.name.split("-")[1])) for p in parts]
    first_five = {video for video, _ in order[:5]}
    assert first_five == {"video=short", "video=mid", "video=long"}, order


# ----------------------------------------------------------------- resume after SIGKILL

_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np, dask, dask.array as da, xarray as xr
    from daskloc.pipeline import batch

    folder, store, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])

    def slow(block):
        time.sleep(delay)
        return block

    videos = {}
    for name in ("short", "mid", "long"):
        arr = np.load(f"{folder}/{name}.npy")
        data = da.from_array(arr, chunks=(2, -1, -1)).map_blocks(
            slow, dtype=arr.dtype, meta=np.empty((0, 0, 0), arr.dtype))
        videos[name] = xr.DataArray(data, dims=("frame", "y", "x"),
                                    coords={"frame": np.arange(len(arr), dtype=np.int64)})
    with dask.config.set(num_workers=2):
        batch(videos, 11, store=store, do_not_return=True, minmass=20, invert=True)
    """
)


def as_dataarray(arr, chunks):
    return xr.DataArray(
        dask.array.from_array(arr, chunks=(chunks, -1, -1)), dims=("frame", "y", "x"),
        coords={"frame": np.arange(len(arr), dtype=np.int64)},
    )


@pytest.mark.slow
def test_resume_after_sigkill_of_a_many_video_job(tmp_path, monkeypatch):
    arrays = {name: dark_spots(n, seed) for seed, (name, n) in enumerate(LENGTHS.items())}
    for name, arr in arrays.items():
        np.save(tmp_path / f"{name}.npy", arr)
    expected = {name: locate_stack(arr, DIAMETER, **PARAMS) for name, arr in arrays.items()}
    script = tmp_path / "run.py"
    script.write_text(_KILL_SCRIPT)
    store = tmp_path / "f.parquet"
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path), str(store), "0.3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(proc, lambda: len(list(store.glob("video=*/part-*.parquet"))) >= 5,
              interval=0.02)
    total = 3 + 5 + 7  # chunks of 2 frames
    before = {name: open_store(store, table=f"video={name}").complete_chunks()
              for name in LENGTHS}
    n_before = sum(map(len, before.values()))
    assert 5 <= n_before < total
    assert sum(1 for chunks in before.values() if chunks) >= 2  # several videos under way
    info = store_info(store)
    assert not info["complete"] and info["chunks_complete"] == n_before

    appended = []
    real = ParquetStore.append_chunk
    monkeypatch.setattr(ParquetStore, "append_chunk",
                        lambda self, a, b, f, **kw: (appended.append((self.table, a)),
                                                     real(self, a, b, f, **kw))[1])
    calls = []
    videos = {name: as_dataarray(arr, 2) for name, arr in arrays.items()}
    batch(videos, DIAMETER, store=store, do_not_return=True,
          progress=lambda *a: calls.append(a), **PARAMS)
    assert calls[0][:2] == (n_before, total)  # the chunks done before count as done
    # Only the missing chunks of each video were computed again.
    missing = {(f"video={name}", a) for name in LENGTHS
               for a in range(0, LENGTHS[name], 2) if (a, min(a + 2, LENGTHS[name]))
               not in before[name]}
    assert sorted(appended) == sorted(missing)
    for name in LENGTHS:  # nothing lost, nothing twice
        pd.testing.assert_frame_equal(read_features(store, video=name), expected[name])
    assert store_info(store)["complete"]


# ----------------------------------------------------------------- a bad video among good ones


def _fail_from_frame_4(block, block_info=None):
    if block_info[0]["array-location"][0][0] >= 4:
        raise OSError("the disk holding midway.avi went away")
    return block


def failing_midway(arr):
    """A video whose chunks from frame 4 on fail when read."""
    data = dask.array.from_array(arr, chunks=(CHUNK, -1, -1)).map_blocks(
        _fail_from_frame_4, dtype=arr.dtype, meta=np.empty((0, 0, 0), arr.dtype))
    return xr.DataArray(data, dims=("frame", "y", "x"), name="midway",
                        coords={"frame": np.arange(len(arr), dtype=np.int64)})


@pytest.mark.slow
@pytest.mark.data
@pytest.mark.parametrize("where", ["local", "cluster-zarr"])
def test_a_bad_video_fails_alone_and_is_named(tmp_path, videos, references, request, where):
    corrupt = tmp_path / "corrupt.mov"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypqt  " + os.urandom(2000))
    missing = tmp_path / "missing.mov"
    midway = failing_midway(dark_spots(12, seed=7))
    given = [videos["short"], corrupt, midway, missing, videos["long"]]
    if where == "local":
        store, client = tmp_path / "f.parquet", None
        context = dask.config.set(scheduler="synchronous")  # deterministic order
    else:  # ordered appends held on the client: a failed video must not stall the rest
        store, client = tmp_path / "f.zarr", request.getfixturevalue("client")
        context = dask.config.set({})
    with context, pytest.raises(BatchError) as err:
        batch(given, DIAMETER, store=store, client=client, open_options={"chunks": CHUNK},
              **PARAMS)
    exc = err.value
    assert list(exc.failed) == ["corrupt", "midway", "missing"]
    assert exc.completed == ["short", "long"]
    message = str(exc)
    assert message.startswith("3 of 5 videos failed (2 completed in")
    assert str(corrupt) in message and str(missing) in message
    assert "midway" in message and "went away" in message
    assert isinstance(exc.failed["missing"], FileNotFoundError)
    for name in ("short", "long"):  # the good ones are complete and right
        pd.testing.assert_frame_equal(read_features(store, video=name), references[name])
    info = store_info(store)
    assert set(info["videos"]) == {"short", "long", "midway"}  # unreadable: no table at all
    assert not info["complete"] and not info["videos"]["midway"]["complete"]
    done = open_store(store, table="video=midway").complete_chunks()
    assert (4, 8) not in done and (8, 12) not in done
    if where == "local":
        assert done == [(0, 4)]  # frames 0..3 landed; nothing after the failure was tried


# ----------------------------------------------------------------- resume, mismatch, names


@pytest.mark.data
def test_rerun_resumes_adds_videos_and_checks_each_video(tmp_path, videos, references,
                                                         monkeypatch):
    store = tmp_path / "f.parquet"
    opts = {"chunks": CHUNK}
    batch([videos["short"], videos["mid"]], DIAMETER, store=store, do_not_return=True,
          open_options=opts, **PARAMS)
    appended = []
    real = ParquetStore.append_chunk
    monkeypatch.setattr(ParquetStore, "append_chunk",
                        lambda self, a, b, f, **kw: (appended.append((self.table, a)),
                                                     real(self, a, b, f, **kw))[1])
    # The same job plus one video: only the new video is computed.
    batch([videos["short"], videos["mid"], videos["long"]], DIAMETER, store=store,
          do_not_return=True, open_options=opts, **PARAMS)
    assert sorted(appended) == [("video=long", a) for a in (0, 4, 8, 12)]
    pd.testing.assert_frame_equal(read_features(store, video="long"), references["long"])

    # Other parameters: refused before anything is computed, naming every video.
    appended.clear()
    with pytest.raises(StoreMismatchError) as err:
        batch([videos["short"], videos["mid"]], DIAMETER, store=store, open_options=opts,
              minmass=40, invert=True)
    assert "2 videos differ" in str(err.value)
    assert "video 'short'" in str(err.value) and "video 'mid'" in str(err.value)
    assert "minmass: 20 -> 40" in str(err.value) and "video=short" in str(err.value)
    assert appended == []
    # One video's source changed (other chunking): only that one differs.
    with pytest.raises(StoreMismatchError) as err:
        batch({"short": open_video(videos["short"], chunks=CHUNK),
               "mid": open_video(videos["mid"], chunks=2)}, DIAMETER, store=store, **PARAMS)
    assert "video 'mid'" in str(err.value) and "video 'short'" not in str(err.value)
    assert "chunking" in str(err.value) and appended == []
    # overwrite=True replaces the tables of these videos and leaves the others alone.
    batch([videos["short"], videos["mid"]], DIAMETER, store=store, do_not_return=True,
          open_options=opts, overwrite=True, minmass=40, invert=True)
    assert (read_features(store, video="short").mass > 40).all()
    pd.testing.assert_frame_equal(read_features(store, video="long"), references["long"])


@pytest.mark.data
def test_read_features_by_video(tmp_path, videos, references):
    store = tmp_path / "f.zarr"
    batch([videos["short"], videos["mid"]], DIAMETER, store=store, do_not_return=True,
          open_options={"chunks": CHUNK}, **PARAMS)
    with pytest.raises(ValueError, match="no video 'nope'; its videos are 'mid', 'short'"):
        read_features(store, video="nope")
    both = read_features(store, video=["short", "mid"], frames=slice(0, 8))
    assert list(both.video.cat.categories) == ["short", "mid"]
    assert list(both.video.unique()) == ["short", "mid"]  # grouped by video, in that order
    ref = references["mid"]
    pd.testing.assert_frame_equal(
        both[both.video == "mid"].drop(columns="video").reset_index(drop=True),
        ref[ref.frame < 8].reset_index(drop=True))
    # frames beyond a short video: that video gives what it has, no error
    late = read_features(store, frames=slice(6, 10))
    assert set(late.video) == {"mid"} and late.frame.min() == 6
    with pytest.raises(ValueError, match="outside the source video's frames"):
        read_features(store, video="short", frames=slice(6, 10))  # one video: as always
    # A one-video store reads as it always did (no video column).
    single = tmp_path / "one.parquet"
    batch(open_video(videos["short"], chunks=CHUNK), DIAMETER, store=single,
          do_not_return=True, **PARAMS)
    pd.testing.assert_frame_equal(read_features(single), references["short"])
    assert "videos" not in store_info(single)
    with pytest.raises(ValueError, match="holds no videos"):
        read_features(single, video="short")
    with pytest.raises(FileNotFoundError):
        read_features(tmp_path / "nothing.parquet", video="short")


def test_names_from_stems_made_unique(tmp_path):
    for d in ("run1", "run2", "RUN3"):
        (tmp_path / d).mkdir()
    paths = [tmp_path / "run1" / "bulk-water.mov", tmp_path / "run2" / "bulk-water.mov",
             tmp_path / "RUN3" / "Bulk-Water.mov", tmp_path / "bulk-water-2.mov",
             tmp_path / "my movie (1).avi"]
    assert video_names(paths) == ["bulk-water", "bulk-water-2", "Bulk-Water-3",
                                  "bulk-water-2-2", "my_movie_1"]
    arr = np.zeros((2, 8, 8), np.uint8)
    named = xr.DataArray(arr, dims=("frame", "y", "x"), name="cells")
    from_file = xr.DataArray(arr, dims=("frame", "y", "x"),
                             attrs={"source": str(tmp_path / "run1")})
    assert video_names([arr, named, from_file, str(tmp_path / "run2" / "*.png"),
                        tmp_path / "run1"]) == ["video-1", "cells", "run1", "run2", "run1-2"]
    assert check_table_name("base/video=bulk-water") == "base/video=bulk-water"
    for bad in ("video=a=b", "=a", "video=", "video=a b"):
        with pytest.raises(ValueError, match="table name"):
            check_table_name(bad)


def test_which_lists_are_many_videos(tmp_path, videos):
    pngs = []
    for i in range(3):
        pngs.append(tmp_path / f"frame_{i}.png")
        iio.imwrite(pngs[-1], np.full((8, 8), i, np.uint8))
    single_tif = tmp_path / "one.tif"
    tifffile.imwrite(single_tif, np.zeros((8, 8), np.uint8))
    assert many_videos(pngs + [single_tif]) is None  # single images: one image sequence
    assert many_videos(str(videos["short"])) is None  # one path: one video
    assert [n for n, _ in many_videos([videos["short"], videos["mid"]])] == ["short", "mid"]
    assert [n for n, _ in many_videos([videos["long"]])] == ["long"]  # a list of one video
    with pytest.raises(ValueError, match="mixes single images"):
        many_videos([pngs[0], videos["short"]])
    with pytest.raises(ValueError, match="given twice"):
        many_videos([videos["short"], str(videos["short"])])
    with pytest.raises(ValueError, match="differ only in case"):
        many_videos({"a": videos["short"], "A": videos["mid"]})
    with pytest.raises(ValueError, match="video name"):
        many_videos({"a/b": videos["short"]})
    with pytest.raises(TypeError, match="location"):
        batch([videos["short"], videos["mid"]], DIAMETER,
              store=open_store(tmp_path / "f.parquet", "a"), **PARAMS)


# ----------------------------------------------------------------- the command line


def run(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "daskloc", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout)


@pytest.mark.slow
@pytest.mark.data
def test_cli_several_movies_a_collision_and_a_bad_one(tmp_path, movie):
    for d in ("run1", "run2"):
        (tmp_path / d).mkdir()
        shutil.copy(movie, tmp_path / d / "bulk-water.mov")
    (tmp_path / "bad.mov").write_bytes(b"not a movie at all" * 100)
    args = ["--diameter", DIAMETER, "--minmass", 20, "--invert", "--channel", 0,
            "--frames", "0:16", "--chunk-frames", 8, "--workers", 2, "--out", "f.parquet"]
    result = run("locate", "run*/*.mov", "bad.mov", *args, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "1 of 3 videos failed" in result.stderr
    assert "bad (bad.mov)" in result.stderr  # the name and the path of the bad one
    assert "  bulk-water: 16 frames" in result.stdout
    assert "  bulk-water-2: 16 frames" in result.stdout
    assert "2 videos, 32 frames" in result.stdout

    store = tmp_path / "f.parquet"
    expected = locate_stack(open_video(movie, channel=0, frames=MOVIE_FRAMES).values,
                            DIAMETER, **PARAMS)
    for name in ("bulk-water", "bulk-water-2"):
        pd.testing.assert_frame_equal(read_features(store, video=name), expected)
    plain = pd.read_parquet(store)
    assert sorted(plain["video"].astype(str).unique()) == ["bulk-water", "bulk-water-2"]
    meta = parquet_doc(store / "video=bulk-water-2")
    assert meta["source"]["path"] == str(tmp_path / "run2" / "bulk-water.mov")

    # Again without the bad one: both are done already, nothing is computed twice.
    again = run("locate", "run*/*.mov", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"2 videos, 32 frames, {2 * len(expected)} features" in again.stdout
    info = run("info", "f.parquet", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "32 of 32 done" in info.stdout and "2 videos: bulk-water, bulk-water-2" in info.stdout


@pytest.mark.slow
@pytest.mark.data
def test_cli_tiff_stacks_are_videos_single_images_one_sequence(tmp_path, references):
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    for seed, (name, n) in enumerate(LENGTHS.items()):
        tifffile.imwrite(stacks / f"{name}.tif", dark_spots(n, seed))
    args = ["--diameter", DIAMETER, "--minmass", 20, "--invert", "--chunk-frames", CHUNK,
            "--workers", 1]
    result = run("locate", "stacks/*.tif", *args, "--out", "stacks.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in LENGTHS:
        pd.testing.assert_frame_equal(
            read_features(tmp_path / "stacks.parquet", video=name), references[name])
    assert "3 videos" in result.stdout

    frames = tmp_path / "frames"
    frames.mkdir()
    arr = dark_spots(5, seed=3)
    for i, frame in enumerate(arr):
        tifffile.imwrite(frames / f"f{i}.tif", frame)  # single-page TIFFs: frames
    seq = run("locate", "frames/*.tif", *args, "--out", "seq.parquet", cwd=tmp_path)
    assert seq.returncode == 0, seq.stderr
    assert (tmp_path / "seq.parquet" / "_daskloc.parquet").is_file()  # one video, as always
    pd.testing.assert_frame_equal(read_features(tmp_path / "seq.parquet"),
                                  locate_stack(arr, DIAMETER, **PARAMS))
    assert seq.stdout.strip().splitlines()[-1].startswith("5 frames")

    mixed = run("locate", "frames/f0.tif", "stacks/short.tif", *args, "--out", "m.parquet",
                cwd=tmp_path)
    assert mixed.returncode == 1 and "Traceback" not in mixed.stderr
    assert "mixes single images" in mixed.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_video_and_many_never_share_a_table(backend, tmp_path, videos):
    # A one-video result and the per-video tables of a job of several videos in one
    # table would be mixed by every reader: each order is refused, saying why, and
    # nothing is written by the refused job.
    url, kw = location(backend, tmp_path)
    short, mid = videos["short"], videos["mid"]
    batch(short, DIAMETER, store=url, do_not_return=True, **kw, **PARAMS)
    before = read_features(url, **kw)
    with pytest.raises(ValueError, match="holds the features of one video"):
        batch([short, mid], DIAMETER, store=url, do_not_return=True, **kw, **PARAMS)
    prefix = kw["table"] + "/" if "table" in kw else ""
    assert not [t for t in open_store(url, "a", **kw).list_tables()
                if t.startswith(prefix + "video=")]
    pd.testing.assert_frame_equal(read_features(url, **kw), before)

    other = location(backend, tmp_path / "second")
    (tmp_path / "second").mkdir()
    url2, kw2 = other
    batch([short, mid], DIAMETER, store=url2, do_not_return=True, **kw2, **PARAMS)
    with pytest.raises(ValueError, match=r"holds the tables of a job of several videos "
                                         r"\(video=mid, video=short\)"):
        batch(short, DIAMETER, store=url2, do_not_return=True, **kw2, **PARAMS)
    assert sorted(read_features(url2, **kw2)["video"].unique()) == ["mid", "short"]
