"""The video registry: which source opens a thing, what an item of a list is, and
third-party readers registered through the ``daskloc.readers`` entry point group."""

from __future__ import annotations

import sys
import textwrap
import warnings

import numpy as np
import pytest

from daskloc import video
from daskloc.testing.readers import ReaderTests, known_frames
from daskloc.video import VideoError, classify, find_videos, open_video, source_for
from daskloc.video.arrays import ArraySource
from daskloc.video.czi import CziSource
from daskloc.video.images import ImageSequenceSource
from daskloc.video.movie import MovieSource
from daskloc.video.omezarr import OmeZarrSource
from daskloc.video.pims import PimsSource
from daskloc.video.tiff import TiffSource
from daskloc.video.zarr import ZarrSource

tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

PLUGIN_MODULE = "daskloc_npy_plugin"

#: A minimal third-party reader: stacks of frames saved with numpy.save.
PLUGIN_SOURCE = '''
import numpy as np

from daskloc.video import Source


class NpySource(Source):
    """Frames saved with numpy.save, shape (frame, y, x)."""

    name = "npy"
    suffixes = (".npy",)
    summary = "NumPy stacks (.npy)"
    per_frame = True

    def __init__(self, source):
        self.path = str(source)
        stack = np.load(self.path, mmap_mode="r")
        self.frame_shape = tuple(int(s) for s in stack.shape[1:])
        self.dtype = stack.dtype
        self.labels = np.arange(len(stack), dtype=np.int64)
        self.attrs = {"source": self.path, "original_shape": tuple(stack.shape),
                      "original_dtype": str(stack.dtype), "n_frames": len(stack)}

    def spec(self):
        return (self.path,)

    def chunk_args(self, positions):
        return tuple(int(p) for p in positions)

    @staticmethod
    def read(spec, arg):
        yield slice(None), np.asarray(np.load(spec[0], mmap_mode="r")[list(arg)])


class RaisingSource(NpySource):
    """A buggy plugin: can_open raises."""

    suffixes = (".bug",)

    @classmethod
    def can_open(cls, source):
        raise RuntimeError("buggy can_open")


class NotASource:
    pass
'''


def install_plugin(tmp_path, monkeypatch, entries):
    """Write the plugin module and a ``*.dist-info`` declaring ``entries`` (name ->
    object reference) in the daskloc.readers group; put it on sys.path."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / f"{PLUGIN_MODULE}.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    info = folder / "daskloc_npy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: daskloc-npy-plugin\nVersion: 0.1\n"
    )
    lines = "".join(f"{name} = {ref}\n" for name, ref in entries.items())
    (info / "entry_points.txt").write_text(f"[daskloc.readers]\n{lines}")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, PLUGIN_MODULE, raising=False)
    video.reload_readers()


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The NpySource plugin class, registered through its entry point."""
    install_plugin(tmp_path, monkeypatch, {"npy": f"{PLUGIN_MODULE}:NpySource"})
    try:
        classes = [c for c in video.sources() if c.__module__ == PLUGIN_MODULE]
        assert [c.__name__ for c in classes] == ["NpySource"]
        yield classes[0]
    finally:
        video.reload_readers()  # the entry point disappears with tmp_path


def test_open_video_reads_a_plugin_format(tmp_path, monkeypatch):
    frames = known_frames(9)
    path = tmp_path / "stack.npy"
    np.save(path, frames)
    video.reload_readers()
    with pytest.raises(VideoError, match=r"unknown file type '\.npy'"):
        open_video(str(path))
    install_plugin(tmp_path, monkeypatch, {"npy": f"{PLUGIN_MODULE}:NpySource"})
    try:
        assert source_for(str(path)).__name__ == "NpySource"
        v = open_video(str(path), chunks=4, frames=slice(1, 9))
        assert v.data.chunks[0] == (4, 4)
        np.testing.assert_array_equal(v.data.compute(scheduler="sync"), frames[1:])
        assert "NumPy stacks (.npy)" in video._registry.supported()
        # built-ins are unaffected
        assert source_for(frames) is ArraySource
    finally:
        monkeypatch.undo()  # uninstalled: gone once the entry points are read again
        video.reload_readers()
    assert source_for(str(path)) is None


class TestPluginReader(ReaderTests):
    """The shared reader suite passes for the third-party reader."""

    @pytest.fixture
    def source_class_(self, plugin):
        return plugin

    def make_recording(self, tmp_path, frames):
        path = tmp_path / "recording.npy"
        np.save(path, frames)
        return str(path)


def test_a_broken_plugin_warns_and_is_ignored(tmp_path, monkeypatch):
    install_plugin(tmp_path, monkeypatch, {
        "missing": "no_such_module_for_daskloc:Reader",
        "plain": f"{PLUGIN_MODULE}:NotASource",
        "buggy": f"{PLUGIN_MODULE}:RaisingSource",
    })
    try:
        bug = tmp_path / "x.bug"
        bug.write_bytes(b"\0")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            v = open_video(np.zeros((3, 4, 5), np.uint8))  # decided before any plugin
            with pytest.raises(VideoError, match="unknown file type"):
                open_video(str(bug))
        assert v.shape == (3, 4, 5)
        assert all(issubclass(w.category, RuntimeWarning) for w in caught)
        messages = " ".join(str(w.message) for w in caught)
        assert "no_such_module_for_daskloc" in messages and "ModuleNotFoundError" in messages
        assert "NotASource" in messages and "not a daskloc.video.Source subclass" in messages
        assert "buggy can_open" in messages
    finally:
        video.reload_readers()


def test_sources_are_asked_in_priority_order():
    assert video.sources()[:7] == [ArraySource, OmeZarrSource, ZarrSource, MovieSource,
                                   TiffSource, CziSource, ImageSequenceSource]
    assert video.sources()[-1] is PimsSource  # asked last: it claims only pims objects


def test_classify_tells_videos_from_frames(tmp_path):
    tifffile.imwrite(tmp_path / "stack.tif", np.zeros((3, 4, 5), np.uint8),
                     photometric="minisblack")
    tifffile.imwrite(tmp_path / "page.tif", np.zeros((4, 5), np.uint8))
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    (tmp_path / "frame.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "images").mkdir()
    zarr.create_array(str(tmp_path / "frames.zarr"), shape=(2, 3, 4), dtype="uint8")
    cases = {
        "stack.tif": ("video", TiffSource, "stack"),
        "page.tif": ("frame", TiffSource, "page"),
        "bad.tif": ("unknown", TiffSource, "bad"),
        "frame.png": ("frame", ImageSequenceSource, "frame"),
        "missing.mov": ("video", MovieSource, "missing"),
        "missing.zarr": ("video", ZarrSource, "missing"),
        "frames.zarr": ("video", ZarrSource, "frames"),
        "images": ("video", ImageSequenceSource, "images"),
        "notes.txt": ("unknown", None, "notes"),
    }
    for name, expected in cases.items():
        assert tuple(classify(str(tmp_path / name))) == expected, name
    assert classify(str(tmp_path / "*.png")).kind == "video"
    assert classify(np.zeros((2, 3, 4))) == ("video", ArraySource, None)
    assert classify({"not": "a video"}).kind == "video"  # open_video says what is wrong

    found = {p.rsplit("/", 1)[-1]: f.kind for p, f in find_videos(tmp_path)}
    assert found == {"bad.tif": "unknown", "frame.png": "frame", "frames.zarr": "video",
                     "images": "video", "page.tif": "frame", "stack.tif": "video"}
    with pytest.raises(NotADirectoryError):
        find_videos(tmp_path / "notes.txt")
