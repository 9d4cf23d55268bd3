"""A third-party store, announced through the entry-point group ``daskloc.stores``.

An installed distribution is simulated by a ``*.dist-info`` folder (METADATA and
entry_points.txt) on ``sys.path``, as pip leaves it: the registry finds the class there,
:func:`daskloc.stores.open_store` and :func:`daskloc.read_features` open its locations,
and the package's conformance suite passes on it. A broken plugin is left out with a
warning naming it.
"""

from __future__ import annotations

import os
import warnings

import pandas as pd
import pytest

import daskloc
from daskloc.stores import (
    ParquetStore,
    StorePluginWarning,
    clear_registry_cache,
    open_store,
    store_class,
    store_formats,
)
from daskloc.testing.stores import (
    CHUNKS,
    StoreLocation,
    StoreTests,
    fake_features,
    source_metadata,
)
from tests.stores._jsonl_store import JSONLinesStore

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def install_plugin(folder, monkeypatch, entry_points, name="daskloc-jsonl"):
    """Put a distribution with ``entry_points`` (lines of ``[daskloc.stores]``) on the path
    of this process and of the processes it starts; forget the registry's classes."""
    dist = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[daskloc.stores]\n" + "\n".join(entry_points) + "\n")
    monkeypatch.syspath_prepend(str(folder))
    paths = [str(folder), ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                   if p]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    clear_registry_cache()


@pytest.fixture
def jsonl_plugin(tmp_path_factory, monkeypatch):
    install_plugin(tmp_path_factory.mktemp("site"), monkeypatch,
                   ["jsonl = tests.stores._jsonl_store:JSONLinesStore"])
    yield
    clear_registry_cache()


def test_the_entry_point_adds_the_format(jsonl_plugin):
    formats = {f.name: f for f in store_formats()}
    assert [f.name for f in store_formats()][:4] == ["parquet", "zarr", "hdf5", "sql"]
    f = formats["jsonl"]
    assert f.store_class is JSONLinesStore and f.suffixes == (".jsonl",)
    assert f.origin == "entry point jsonl (daskloc-jsonl)"
    assert f.capabilities["concurrent_writers"] and not f.capabilities["supports_remote"]
    assert store_class("x/features.jsonl") is JSONLinesStore
    assert store_class("x/features.parquet") is ParquetStore
    with pytest.raises(ValueError, match="object storage"):
        store_class("s3://bucket/features.jsonl")  # it does not say it supports_remote


def test_without_the_plugin_the_suffix_is_nobodys(tmp_path):
    clear_registry_cache()
    assert "jsonl" not in {f.name for f in store_formats()}
    assert store_class(str(tmp_path / "features.jsonl")) is ParquetStore  # the fallback


def test_open_store_and_read_features_open_the_plugins_locations(jsonl_plugin, tmp_path):
    url = str(tmp_path / "features.jsonl")
    st = open_store(url, "a")
    assert isinstance(st, JSONLinesStore)
    st.prepare()
    st.write_metadata(source_metadata(0, 30, CHUNKS))
    part = fake_features(range(0, 10), [2] * 10, seed=1)
    st.append_chunk(0, 10, part)
    pd.testing.assert_frame_equal(daskloc.read_features(url), part)
    pd.testing.assert_frame_equal(daskloc.read_features(url, frames=slice(3, 5)),
                                  part[part.frame.between(3, 4)].reset_index(drop=True))
    assert daskloc.store_info(url)["backend"] == "jsonl"
    out = daskloc.export(url, tmp_path / "copy.jsonl")  # a store of the plugin's format too
    assert out["format"] == "jsonl"
    pd.testing.assert_frame_equal(daskloc.read_features(tmp_path / "copy.jsonl"), part)


@pytest.mark.parametrize("target,why", [
    ("no_such_module_xyz:Store", "cannot be imported (ModuleNotFoundError"),
    ("collections:OrderedDict", "is not a subclass of daskloc.stores.FeatureStore"),
])
def test_a_broken_plugin_is_left_out_with_a_warning(tmp_path, monkeypatch, target, why):
    install_plugin(tmp_path / "site", monkeypatch, [f"broken = {target}"], name="broken-plugin")
    try:
        with pytest.warns(StorePluginWarning) as record:
            names = [f.name for f in store_formats()]
        message = str(record[0].message)
        assert "'broken'" in message and target in message and why in message
        assert "broken-plugin" in message
        assert names == ["parquet", "zarr", "hdf5", "sql"]  # the others still work
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # warned once, not at every lookup
            assert store_class(str(tmp_path / "f.zarr")).backend == "zarr"
    finally:
        clear_registry_cache()


class TestJSONLinesStore(StoreTests):
    """The package's conformance suite, as a plugin's author runs it on their store (with
    the suite's own defaults: a synthetic video, no test data)."""

    store_class = JSONLinesStore
    capabilities = {"supports_remote": False, "lists_tables": True,
                    "concurrent_writers": True, "ordered_appends": False, "live_reads": True}

    @pytest.fixture(autouse=True)
    def _plugin(self, jsonl_plugin):
        yield

    def make_location(self, tmp_path, name="features"):
        return StoreLocation("jsonl", str(tmp_path / f"{name}.jsonl"))
