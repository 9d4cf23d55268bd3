"""The job-metadata model: every stored document goes through JobMetadata, which
round-trips, validates, names what differs between two jobs and keeps execution options
out of the job's identity."""

import json
from pathlib import Path

import pytest

from daskloc.metadata import METADATA_VERSION, JobMetadata, MetadataError, job_identity

LEGACY = Path(__file__).parent / "data" / "legacy-0.1"


def _job(**changes):
    doc = dict(params={"diameter": 11, "minmass": 20, "characterize": True},
               source={"path": "movie.mov", "n_frames": 40, "frames": {"start": 0,
                       "stop": 40, "step": 1}},
               chunking={"chunk_frames": [16, 16, 8], "chunks": [[0, 16], [16, 32], [32, 40]]})
    doc.update(changes)
    return JobMetadata(**doc)


def test_the_legacy_document_round_trips_and_is_legacy():
    doc = json.loads((LEGACY / "features.parquet" / "_daskloc.json").read_text())
    meta = JobMetadata.from_json(doc, "legacy")
    assert meta.legacy and meta.format_version == 1
    out = meta.to_json()
    assert {k: out[k] for k in doc} == doc  # nothing lost or changed
    assert {k: out[k] for k in set(out) - set(doc)} == {  # only the empty defaults added
        "failed_chunks": [], "job": None, "skipped": []}
    assert meta.column_dtypes()["frame"] == "int64"


def test_a_document_of_this_daskloc_round_trips_with_unknown_keys_kept():
    meta = _job(options={"on_error": "skip"}, video="a", skipped=[[16, 32, [20]]])
    doc = meta.to_json()
    assert doc["format"] == "daskloc-features" and doc["format_version"] == METADATA_VERSION
    doc["a_later_field"] = {"x": 1}
    again = JobMetadata.from_json(doc)
    assert again.extra == {"a_later_field": {"x": 1}} and again.to_json() == doc
    assert again.skipped_frames() == {(16, 32): (20,)}


def test_execution_options_and_progress_are_not_the_identity():
    base = _job()
    other = _job(options={"on_error": "skip", "engine": "numba-float32"},
                 complete_chunks=[[0, 16]], n_features=7, finished=True, created="x")
    assert base.identity == other.identity == job_identity(base.to_json())
    assert base.diff(other) == []


def test_diff_names_each_parameter_source_field_and_the_chunking():
    base = _job()
    assert base.diff(_job(params={"diameter": 11, "minmass": 200, "characterize": True})) \
        == [("minmass", "20", "200")]
    assert base.diff(_job(source=dict(base.source, n_frames=41))) == [
        ("source n_frames", "40", "41")]
    moved = base.diff(_job(chunking={"chunk_frames": [20, 20], "chunks": [[0, 20], [20, 40]]}))
    assert len(moved) == 1 and moved[0][0] == "chunking" and moved[0][1].startswith("3 chunks")
    # a correction recorded only when used: absent on one side means None
    masked = _job(params=dict(base.params, mask="abc"))
    assert base.diff(masked) == [("mask", "None", "'abc'")]
    assert masked.diff(base) == [("mask", "'abc'", "None")]
    assert _job(params=dict(base.params, minmass=5)).identity != base.identity


@pytest.mark.parametrize("doc, match", [
    ({"format": "other"}, "not daskloc feature-store metadata"),
    ({"format": "daskloc-features", "format_version": 99}, "newer daskloc"),
    ({"format": "daskloc-features", "params": [1]}, "params is a list"),
    ({"format": "daskloc-features", "columns": {"y": "object", "frame": "int64"}},
     "columns\\['y'\\]"),
])
def test_a_damaged_document_is_an_error_naming_the_field(doc, match):
    with pytest.raises(MetadataError, match=match):
        JobMetadata.from_json(doc, "s.parquet")


def test_edited_is_true_when_the_recorded_identity_disagrees():
    meta = _job()
    meta.job = meta.identity
    assert not meta.edited
    meta.params["minmass"] = 200
    assert meta.edited


def test_dims_are_recorded_and_2d_jobs_keep_the_identity_they_had_without_them():
    base = _job()
    flat = _job(dims=["frame", "y", "x"])
    assert flat.identity == base.identity == job_identity(base.to_json())
    assert base.ndim == flat.ndim == 2 and base.diff(flat) == []
    volumes = _job(dims=["frame", "z", "y", "x"])
    assert volumes.ndim == 3 and volumes.identity != base.identity
    assert JobMetadata.from_json(volumes.to_json()) == volumes
    assert volumes.to_json()["dims"] == ["frame", "z", "y", "x"]
    assert "dims" not in base.to_json()  # documents without dims stay as they were
    (what, was, asked), = base.diff(volumes)
    assert what == "dims" and "2-D frames" in was and "3-D volumes" in asked


def test_per_axis_values_are_part_of_the_identity_and_named_when_they_differ():
    a = _job(params={"diameter": [5, 11, 11], "minmass": 20, "characterize": True},
             dims=["frame", "z", "y", "x"])
    b = _job(params={"diameter": [7, 11, 11], "minmass": 20, "characterize": True},
             dims=["frame", "z", "y", "x"])
    assert a.identity != b.identity
    assert a.diff(b) == [("diameter", "[5, 11, 11]", "[7, 11, 11]")]


@pytest.mark.parametrize("dims", [["frame", "x", "y"], ["z", "y", "x"], "frame,y,x"])
def test_damaged_dims_are_an_error_naming_the_field(dims):
    doc = _job().to_json()
    doc["dims"] = dims
    with pytest.raises(MetadataError, match="dims is"):
        JobMetadata.from_json(doc, "s.parquet")
