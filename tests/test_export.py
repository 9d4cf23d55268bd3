"""daskloc.export and ``daskloc export``: CSV, Excel, MATLAB (loaded by real Octave) and
store-to-store copies, each row-for-row equal to ``read_features`` on the same frames."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io

import daskloc
import daskloc.export  # noqa: F401 - the module; daskloc.export may be the function
from daskloc.export import export
from daskloc.locate import feature_columns
from daskloc.pipeline import batch
from daskloc.stores import open_store, read_features, store_info
from daskloc.stores.parquet import ParquetStore
from tests._data import data_path
from tests._markers import require_marker
from tests.conftest import DIAMETER, PARAMS, as_video, make_spots
from tests.stores import _services

export_module = sys.modules["daskloc.export"]

FIRST = 100  # absolute number of the first frame of the synthetic video
COLUMNS = list(feature_columns(True)) + ["frame"]
STORES_DIR = Path(daskloc.__file__).parent / "stores"


# ----------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def video():
    """24 frames; frames 108..111 are black (no features); chunks of 5 frames from 100."""
    return as_video(make_spots(n_frames=24, seed=5, black=range(8, 12)), chunks=5,
                    first_frame=FIRST)


@pytest.fixture(scope="module")
def src(video, tmp_path_factory):
    """A finished Parquet store of :func:`video`: chunks [100,105) ... [120,124)."""
    path = tmp_path_factory.mktemp("src") / "features.parquet"
    batch(video, DIAMETER, store=path, do_not_return=True, **PARAMS)
    return path


@pytest.fixture(scope="module")
def nan_src(tmp_path_factory):
    """A store written through the interface with NaN and an empty chunk (frames 0..29)."""
    path = tmp_path_factory.mktemp("nan") / "nan.parquet"
    st = open_store(path, "a")
    st.prepare()
    chunks = [(0, 10), (10, 20), (20, 30)]
    st.write_metadata({
        "format": "daskloc-features", "format_version": 2,
        "params": {"diameter": 9, "minmass": 100, "maxsize": None, "invert": True},
        "source": {"path": "synthetic", "frames": {"start": 0, "stop": 30, "step": 1}},
        "chunking": {"chunks": [list(c) for c in chunks]},
        "columns": {**{c: "float64" for c in COLUMNS[:-1]}, "frame": "int64"},
    })
    rng = np.random.default_rng(3)
    for (a, b), n in zip(chunks, (17, 0, 23)):
        frame = np.sort(rng.integers(a, b, n)).astype(np.int64)
        df = pd.DataFrame({c: rng.normal(100, 30, n) for c in COLUMNS[:-1]})
        df.loc[rng.random(n) < 0.3, "ep"] = np.nan
        df["frame"] = frame
        st.append_chunk(a, b, df)
    return path


def _exists(module):
    return (STORES_DIR / f"{module}.py").exists()


#: Output store backends to copy to: every backend present in daskloc/stores.
STORE_BACKENDS = ["parquet"] + [
    name for name, module in [("zarr", "zarr"), ("hdf5", "hdf5"), ("sqlite", "sql"),
                              ("postgresql", "sql"), ("mariadb", "sql"),
                              ("parquet-s3", "parquet"), ("zarr-s3", "zarr")]
    if _exists(module)
]


def store_location(backend, tmp_path, name="copy"):
    """``(location, kw)`` of a new store of a backend; ``kw`` holds ``table`` (unique on
    shared database servers) and ``storage_options`` (object storage)."""
    kw = {"table": None, "storage_options": None}
    if backend in ("parquet", "zarr", "hdf5"):
        suffix = {"parquet": "parquet", "zarr": "zarr", "hdf5": "h5"}[backend]
        return str(tmp_path / f"{name}.{suffix}"), kw
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / name}.db", kw
    if backend == "postgresql":
        return _services.postgres_url(), dict(kw, table=_services.unique_table(name))
    if backend == "mariadb":
        return _services.mysql_url(), dict(kw, table=_services.unique_table(name))
    if backend in ("parquet-s3", "zarr-s3"):
        options = _services.s3_storage_options()
        url = f"s3://{_services.s3_bucket()}/{name}.{backend.split('-')[0]}"
        return url, dict(kw, storage_options=options)
    raise AssertionError(backend)


def out_kw(kw):
    """``export`` keywords for writing to a location of :func:`store_location`."""
    return {"out_table": kw["table"], "out_storage_options": kw["storage_options"]}


@pytest.fixture
def cleanup():
    """Clear stores on shared database servers after the test."""
    opened = []
    yield opened.append
    for location, kw in opened:
        if kw["table"] is not None:
            st = open_store(location, "a", **kw)
            st.clear()
            st.close()


def octave():
    """Path of octave-cli; skip (fail under DASKLOC_REQUIRE_SERVICES=1) if absent."""
    require_marker("services", "octave-cli")
    exe = shutil.which("octave-cli")
    if exe is None:
        reason = "octave-cli not found (apt-get install octave): cannot load the .mat file"
        if os.environ.get("DASKLOC_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + "; DASKLOC_REQUIRE_SERVICES=1 makes this an error",
                        pytrace=False)
        pytest.skip(reason)
    return exe


def run_octave(script, cwd):
    path = Path(cwd) / "check_export.m"
    path.write_text(script)
    result = subprocess.run([octave(), "--no-history", "--no-gui", "--quiet", str(path)],
                            capture_output=True, text=True, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def no_temp_files(folder):
    return [n for n in os.listdir(folder) if n.endswith(".tmp")] == []


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "daskloc", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


SELECTIONS = [None, slice(102, 117), range(101, 124, 4), [123, 100, 110, 113], slice(108, 112)]


# ----------------------------------------------------------------- CSV


@pytest.mark.parametrize("frames", SELECTIONS)
def test_csv_rows_equal_read_features(src, tmp_path, frames):
    out = tmp_path / "f.csv"
    summary = export(src, out, frames)
    expected = read_features(src, frames)
    got = pd.read_csv(out)
    assert list(got.columns) == COLUMNS
    if len(expected):
        pd.testing.assert_frame_equal(got, expected)  # bit for bit, frame int64
    else:  # black frames 108..111: the header only
        assert len(got) == 0 and out.read_text() == ",".join(COLUMNS) + "\n"
    assert summary["n_features"] == len(expected)
    assert summary["format"] == "csv" and summary["out"] == str(out)
    assert no_temp_files(tmp_path)


def test_csv_missing_values_are_empty_fields(nan_src, tmp_path):
    out = tmp_path / "nan.csv"
    export(nan_src, out)
    expected = read_features(nan_src)
    assert expected["ep"].isna().sum() > 3
    got = pd.read_csv(out)
    pd.testing.assert_frame_equal(got, expected)
    assert ",," in out.read_text() or ",\n" not in out.read_text()


def test_csv_is_streamed_one_chunk_at_a_time(src, tmp_path, monkeypatch):
    """Every read covers at most one chunk; the header is written once."""
    reads = []
    original = ParquetStore.read

    def spy(self, frames=None):
        df = original(self, frames)
        reads.append((frames, len(df)))
        return df

    monkeypatch.setattr(ParquetStore, "read", spy)
    out = tmp_path / "f.csv"
    export(src, out)
    chunks = open_store(src).complete_chunks()
    assert [f for f, _ in reads] == [slice(a, b) for a, b in chunks]
    assert max(n for _, n in reads) < len(read_features(src))
    assert out.read_text().count("y,x,mass") == 1


def test_no_half_written_file_on_error(src, tmp_path, monkeypatch):
    out = tmp_path / "f.csv"
    out.write_text("the old export\n")
    original = ParquetStore.read
    calls = []

    def failing(self, frames=None):
        calls.append(frames)
        if len(calls) == 3:
            raise OSError("disk went away")
        return original(self, frames)

    monkeypatch.setattr(ParquetStore, "read", failing)
    for name in ("g.csv", "g.xlsx", "g.mat", "f.csv"):
        calls.clear()
        with pytest.raises(OSError, match="disk went away"):
            export(src, tmp_path / name, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["f.csv"]  # no partial file, no temp file
    assert out.read_text() == "the old export\n"  # replaced only by a complete export


def test_pandas_path_stays_pandas(src, tmp_path):
    """read_features returns a plain DataFrame: its to_csv/read_csv round-trip just works."""
    df = read_features(src, slice(100, 110))
    df.to_csv(tmp_path / "pandas.csv")
    back = pd.read_csv(tmp_path / "pandas.csv", index_col=0)
    pd.testing.assert_frame_equal(back, df, check_index_type=False)
    df.to_csv(tmp_path / "plain.csv", index=False)
    export(src, tmp_path / "export.csv", slice(100, 110))
    assert (tmp_path / "plain.csv").read_text() == (tmp_path / "export.csv").read_text()


# ----------------------------------------------------------------- Excel


def read_xlsx(path):
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True)
    sheets = {ws.title: [list(r) for r in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    wb.close()
    return sheets


def test_xlsx_features_and_parameters(src, tmp_path):
    out = tmp_path / "f.xlsx"
    summary = export(src, out, slice(100, 115))
    assert summary["sheets"] == ["features"]
    sheets = read_xlsx(out)
    assert list(sheets) == ["features", "parameters"]
    rows = sheets["features"]
    assert rows[0] == COLUMNS
    # Excel has one number type: whole floats (raw_mass) read back as int; values exact.
    got = pd.DataFrame(rows[1:], columns=COLUMNS).astype({c: "float64" for c in COLUMNS[:-1]})
    expected = read_features(src, slice(100, 115))
    pd.testing.assert_frame_equal(got, expected)
    params = {r[0]: (r + [None])[1] for r in sheets["parameters"] if r and r[0]}
    meta = open_store(src).read_metadata()
    assert params["diameter"] == DIAMETER and params["minmass"] == PARAMS["minmass"]
    assert params["invert"] is False and params["maxsize"] is None
    assert params["exported from"] == str(src)
    assert params["frames exported"] == "100..114"
    assert params["features"] == len(expected)
    assert params["shape"] == "[24, 96, 96]"
    assert params["located"] == meta["created"]


def test_xlsx_continues_on_further_sheets(src, tmp_path, monkeypatch):
    """Beyond a sheet's rows the features continue on features_2, ... (limit patched
    down from Excel's 1,048,576 so the test stays small)."""
    monkeypatch.setattr(export_module, "XLSX_MAX_ROWS", 40)
    out = tmp_path / "f.xlsx"
    expected = read_features(src)
    summary = export(src, out)
    n_sheets = -(-len(expected) // 39)
    names = ["features"] + [f"features_{i}" for i in range(2, n_sheets + 1)]
    assert summary["sheets"] == names
    sheets = read_xlsx(out)
    assert list(sheets) == names + ["parameters"]
    body = []
    for name in names:
        assert sheets[name][0] == COLUMNS and len(sheets[name]) <= 40
        body += sheets[name][1:]
    assert all(len(sheets[n]) == 40 for n in names[:-1])
    got = pd.DataFrame(body, columns=COLUMNS).astype({c: "float64" for c in COLUMNS[:-1]})
    pd.testing.assert_frame_equal(got, expected)
    params = {r[0]: (r + [None])[1] for r in sheets["parameters"] if r and r[0]}
    assert params["feature sheets"].startswith("features (39 rows), features_2 (39 rows)")


def test_xlsx_missing_values_are_empty_cells(nan_src, tmp_path):
    out = tmp_path / "nan.xlsx"
    export(nan_src, out)
    rows = read_xlsx(out)["features"]
    got = pd.DataFrame(rows[1:], columns=COLUMNS).astype({c: "float64" for c in COLUMNS[:-1]})
    pd.testing.assert_frame_equal(got, read_features(nan_src))


# ----------------------------------------------------------------- MATLAB


def test_mat_struct_of_columns(src, tmp_path):
    out = tmp_path / "f.mat"
    export(src, out, range(100, 124, 2))
    expected = read_features(src, range(100, 124, 2))
    m = scipy.io.loadmat(out, squeeze_me=False, struct_as_record=False)
    f = m["features"][0, 0]
    assert list(f._fieldnames) == COLUMNS
    for c in COLUMNS:
        col = getattr(f, c)
        assert col.shape == (len(expected), 1) and col.dtype == np.float64
        np.testing.assert_array_equal(col[:, 0], expected[c].to_numpy(dtype=np.float64))
    p = m["params"][0, 0]
    assert p.diameter[0, 0] == DIAMETER and p.maxsize.shape == (0, 0)
    info = m["daskloc"][0, 0]
    assert info.frames[0] == "100..122 step 2"
    assert [c[0] for c in info.columns[0]] == COLUMNS


@pytest.mark.services
def test_mat_loads_in_octave_with_the_same_values(nan_src, src, tmp_path):
    """Real Octave loads the file: sizes, classes, sums and rows match the pandas table."""
    export(nan_src, tmp_path / "nan.mat")
    export(src, tmp_path / "empty.mat", slice(108, 112))  # black frames: no features
    expected = read_features(nan_src)
    out = run_octave(
        """
        load("nan.mat");
        printf("fields %s\\n", strjoin(fieldnames(features)', ","));
        printf("class %s %s\\n", class(features.frame), class(features.x));
        printf("size %d %d\\n", size(features.x, 1), size(features.x, 2));
        printf("numel %d\\n", numel(features.frame));
        printf("nan_ep %d\\n", sum(isnan(features.ep)));
        printf("sum_x %.17g\\n", sum(features.x));
        printf("sum_frame %.17g\\n", sum(features.frame));
        printf("row5 %.17g %.17g %.17g\\n", features.y(5), features.x(5), features.frame(5));
        printf("diameter %g %s\\n", params.diameter, class(params.diameter));
        printf("invert %d %s\\n", params.invert, class(params.invert));
        printf("maxsize_empty %d\\n", isempty(params.maxsize));
        printf("source %s %d\\n", source.path, source.frames.stop);
        printf("columns %s\\n", strjoin(daskloc.columns, ","));
        load("empty.mat");
        printf("empty %d %d\\n", size(features.x, 1), size(features.x, 2));
        """,
        tmp_path,
    )
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert lines["fields"] == ",".join(COLUMNS)
    assert lines["class"] == "double double"
    assert lines["size"] == f"{len(expected)} 1"
    assert int(lines["numel"]) == len(expected)
    assert int(lines["nan_ep"]) == expected["ep"].isna().sum()
    assert float(lines["sum_x"]) == pytest.approx(expected["x"].sum(), rel=1e-14)
    assert float(lines["sum_frame"]) == expected["frame"].sum()
    y, x, frame = map(float, lines["row5"].split())
    assert (y, x, frame) == tuple(expected.loc[4, ["y", "x", "frame"]])  # %.17g: exact
    assert lines["diameter"] == "9 double"
    assert lines["invert"] == "1 logical"
    assert lines["maxsize_empty"] == "1"
    assert lines["source"] == "synthetic 30"
    assert lines["columns"] == ",".join(COLUMNS)
    assert lines["empty"] == "0 1"


def test_mat_too_big_for_a_matlab_variable(src, tmp_path, monkeypatch):
    """Over MATLAB's 2 GiB per variable (patched down here) is a clear error, no file."""
    n = len(read_features(src))
    monkeypatch.setattr(export_module, "MAT_MAX_VARIABLE_BYTES", 8 * 9 * (n - 10) + 4096)
    for frames in (None, range(100, 124)):  # whole chunks (checked before reading) or not
        with pytest.raises(ValueError, match=r"MAT-file .* per variable.*--frames"):
            export(src, tmp_path / "f.mat", frames)
    assert os.listdir(tmp_path) == []
    export(src, tmp_path / "f.mat", slice(100, 110))  # a smaller range fits


# ----------------------------------------------------------------- store to store


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_copy_to_every_store(src, tmp_path, backend, cleanup):
    location, kw = store_location(backend, tmp_path)
    cleanup((location, kw))
    summary = export(src, location, **out_kw(kw))
    assert summary["n_features"] == len(read_features(src))
    pd.testing.assert_frame_equal(read_features(location, **kw), read_features(src))
    pd.testing.assert_frame_equal(read_features(location, slice(105, 115), **kw),
                                  read_features(src, slice(105, 115)))
    dst = open_store(location, **kw)
    assert dst.complete_chunks() == open_store(src).complete_chunks()
    meta, src_meta = dst.read_metadata(), open_store(src).read_metadata()
    for key in ("params", "source", "chunking", "columns", "created", "daskloc_version"):
        assert meta[key] == src_meta[key], key
    assert meta["store"] == {"backend": dst.backend}
    assert meta["exported_from"]["store"] == str(src)
    assert meta["exported_from"]["backend"] == "parquet"
    info = store_info(location, **kw)
    assert info["complete"] and info["n_features"] == summary["n_features"]

    # ... and back from that backend to Parquet: any store to any other.
    back = tmp_path / "back.parquet"
    export(location, back, slice(103, 121), **kw)
    pd.testing.assert_frame_equal(read_features(back), read_features(src, slice(103, 121)))


@pytest.mark.slow
@pytest.mark.parametrize("frames", SELECTIONS[1:])
@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_copy_a_frame_selection(src, tmp_path, backend, frames, cleanup):
    location, kw = store_location(backend, tmp_path)
    cleanup((location, kw))
    export(src, location, frames, **out_kw(kw))
    expected = read_features(src, frames)
    pd.testing.assert_frame_equal(read_features(location, **kw), expected)
    info = store_info(location, **kw)
    assert info["complete"] and info["n_features"] == len(expected)
    wanted = sorted(set(range(FIRST, FIRST + 24)) & set(
        range(FIRST + 24)[frames] if isinstance(frames, slice) else frames))
    assert (info["first_frame"], info["last_frame"]) == (wanted[0], wanted[-1])
    assert info["frames_total"] == info["frames_complete"] == len(wanted)
    dst = open_store(location, **kw)
    for a, b in dst.complete_chunks():  # clipped to the selection, never overlapping
        assert wanted[0] <= a < b <= wanted[-1] + 1
    if wanted[0] > FIRST or wanted[-1] < FIRST + 23:
        with pytest.raises(ValueError, match="outside the source video's frames"):
            read_features(location, slice(FIRST, FIRST + 24), **kw)


@pytest.mark.parametrize("backend", STORE_BACKENDS)
def test_full_copy_of_an_unfinished_store_resumes(video, tmp_path, backend, cleanup):
    """A full copy holds the same job: batch on the copy computes only what is missing
    (where the output format can take a chunk before stored ones)."""
    part = tmp_path / "part.parquet"
    batch(video, DIAMETER, store=part, do_not_return=True, **PARAMS)
    reference = read_features(part)
    os.remove(open_store(part).part_path(110, 115))  # as if the job had not finished
    assert not store_info(part)["complete"]

    location, kw = store_location(backend, tmp_path)
    cleanup((location, kw))
    export(part, location, **out_kw(kw))
    info = store_info(location, **kw)
    assert not info["complete"] and info["chunks_complete"] == 4 and info["chunks_total"] == 5
    pd.testing.assert_frame_equal(read_features(location, **kw), read_features(part))
    if open_store(location, **kw).ordered_appends:
        # Zarr and HDF5 take chunks in frame order only: the gap cannot be filled later.
        with pytest.raises(ValueError, match=r"\[110, 115\).*(order|before)"):
            batch(video, DIAMETER, store=location, **kw, do_not_return=True, **PARAMS)
        return
    done = []
    batch(video, DIAMETER, store=location, **kw, do_not_return=True,
          progress=lambda d, t, n: done.append(d), **PARAMS)
    assert done[0] == 4 and done[-1] == 5
    pd.testing.assert_frame_equal(read_features(location, **kw), reference)


def test_output_store_object(src, tmp_path):
    dst = open_store(tmp_path / "obj.parquet", "a", table="run")
    assert export(src, dst, slice(100, 105))["out"] == f"{tmp_path / 'obj.parquet'}#run"
    pd.testing.assert_frame_equal(read_features(dst), read_features(src, slice(100, 105)))


def test_existing_output_store_needs_overwrite(src, tmp_path):
    out = tmp_path / "copy.parquet"
    export(src, out, slice(100, 110))
    with pytest.raises(FileExistsError, match="already exists.*overwrite"):
        export(src, out)
    export(src, out, slice(115, 124), overwrite=True)
    pd.testing.assert_frame_equal(read_features(out), read_features(src, slice(115, 124)))
    assert store_info(out)["first_frame"] == 115


def test_tables_in_one_output_store(src, tmp_path):
    if "sqlite" not in STORE_BACKENDS:
        pytest.skip("the SQL store (daskloc/stores/sql.py) does not exist yet")
    db = f"sqlite:///{tmp_path / 'all.db'}"
    export(src, db, slice(100, 110), out_table="first_half")
    export(src, f"{db}#second_half", slice(110, 124))
    pd.testing.assert_frame_equal(read_features(db, table="first_half"),
                                  read_features(src, slice(100, 110)))
    pd.testing.assert_frame_equal(read_features(db, table="second_half"),
                                  read_features(src, slice(110, 124)))
    with pytest.raises(ValueError, match="onto itself"):
        export(db, f"sqlite:///{tmp_path / '.' / 'all.db'}", table="second_half",
               out_table="second_half")


# ----------------------------------------------------------------- errors


def test_errors(src, tmp_path):
    with pytest.raises(ValueError, match=r"unknown output format '\.txt'.*\.csv, \.xlsx, \.mat.*"
                                         r"\.parquet, \.zarr, \.h5.*sqlite:///"):
        export(src, tmp_path / "f.txt")
    with pytest.raises(ValueError, match=r"old Excel; use \.xlsx"):
        export(src, tmp_path / "f.xls")
    with pytest.raises(ValueError, match="no file suffix"):
        export(src, tmp_path / "features")
    with pytest.raises(ValueError, match="written to a local path"):
        export(src, "s3://bucket/f.csv")
    with pytest.raises(ValueError, match="has no tables"):
        export(src, tmp_path / "f.csv", out_table="t")
    with pytest.raises(ValueError, match="onto itself"):
        export(src, src)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(src, tmp_path / "no" / "such" / "f.csv")
    with pytest.raises(FileNotFoundError):
        export(tmp_path / "missing.parquet", tmp_path / "f.csv")
    (tmp_path / "f.csv").write_text("mine")
    with pytest.raises(FileExistsError, match="already exists.*overwrite"):
        export(src, tmp_path / "f.csv")
    assert (tmp_path / "f.csv").read_text() == "mine"
    # Frames outside the source: the store's own error, before anything is written.
    with pytest.raises(ValueError) as theirs:
        read_features(src, slice(90, 110))
    for out in ("g.csv", "g.xlsx", "g.mat", "g.parquet"):
        with pytest.raises(ValueError) as ours:
            export(src, tmp_path / out, slice(90, 110))
        assert str(ours.value) == str(theirs.value)
    assert sorted(os.listdir(tmp_path)) == ["f.csv"]


def test_url_passwords_are_hidden():
    hide = export_module._hide_password
    assert hide("postgresql+psycopg://ci:s3cret@127.0.0.1:5432/db#t") == \
        "postgresql+psycopg://ci:***@127.0.0.1:5432/db#t"
    assert hide("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
    assert hide("/data/features.parquet") == "/data/features.parquet"


# ----------------------------------------------------------------- the command


@pytest.mark.slow
def test_cli_export(src, tmp_path):
    result = cli("export", src, tmp_path / "f.csv", "--frames", "105:115")
    assert result.returncode == 0, result.stderr
    n = len(read_features(src, slice(105, 115)))
    assert result.stdout.strip() == f"{n} features of frames 105..114 -> {tmp_path / 'f.csv'} (csv)"
    assert len(pd.read_csv(tmp_path / "f.csv")) == n

    result = cli("export", src, tmp_path / "f.xlsx")
    assert result.returncode == 0, result.stderr
    assert "(xlsx) (sheets features)" in result.stdout

    result = cli("export", src, tmp_path / "copy.parquet", "--out-table", "run1")
    assert result.returncode == 0, result.stderr
    pd.testing.assert_frame_equal(read_features(tmp_path / "copy.parquet", table="run1"),
                                  read_features(src))


@pytest.mark.parametrize(
    "args, phrases",
    [
        (["{out}/f.txt"], ["unknown output format '.txt'", ".csv, .xlsx, .mat"]),
        (["{out}/f.csv", "--frames", "0:10"], ["outside the source video's frames 100..123"]),
        (["{out}/f.csv", "--frames", "a:b"], ["is not a frame range"]),
        (["{out}/exists.csv"], ["already exists", "--overwrite"]),
        (["{out}/f.csv", "--out-table", "t"], ["has no tables"]),
    ],
)
@pytest.mark.slow
def test_cli_errors_are_one_line(src, tmp_path, args, phrases):
    (tmp_path / "exists.csv").write_text("x")
    result = cli("export", src, *[a.format(out=tmp_path) for a in args])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


@pytest.mark.slow
def test_cli_missing_store(tmp_path):
    result = cli("export", tmp_path / "missing.parquet", tmp_path / "f.csv")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"no feature store at .*missing\.parquet", result.stderr)


# ----------------------------------------------------------------- the real movie


@pytest.fixture(scope="module")
def movie_store(tmp_path_factory):
    movie = data_path("bulk-water.mov")
    path = tmp_path_factory.mktemp("movie") / "bulk.parquet"
    video = daskloc.open_video(movie, channel=0, frames=slice(0, 40))
    batch(video, 11, store=path, minmass=20, invert=True, do_not_return=True)
    return path


@pytest.mark.services
@pytest.mark.data
def test_real_movie_everywhere(movie_store, tmp_path, cleanup):
    """The bulk-water features: every store backend, CSV and Octave agree with pandas."""
    expected = read_features(movie_store)
    assert len(expected) > 40 * 400
    for backend in STORE_BACKENDS:
        location, kw = store_location(backend, tmp_path, name=f"movie_{backend}")
        cleanup((location, kw))
        export(movie_store, location, **out_kw(kw))
        pd.testing.assert_frame_equal(read_features(location, **kw), expected)
        pd.testing.assert_frame_equal(read_features(location, slice(10, 15), **kw),
                                      read_features(movie_store, slice(10, 15)))
    export(movie_store, tmp_path / "bulk.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "bulk.csv"),
                                  expected)

    export(movie_store, tmp_path / "bulk.mat", slice(10, 30))
    sel = read_features(movie_store, slice(10, 30))
    out = run_octave(
        """
        load("bulk.mat");
        printf("n %d\\n", numel(features.x));
        printf("frames %d %d %d\\n", min(features.frame), max(features.frame),
               numel(unique(features.frame)));
        printf("mass %.17g\\n", sum(features.mass));
        per_frame = accumarray(features.frame - 9, 1);
        printf("per_frame %s\\n", sprintf("%d,", per_frame));
        printf("params %g %g %d\\n", params.diameter, params.minmass, params.invert);
        printf("source %s\\n", source.path);
        """,
        tmp_path,
    )
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert int(lines["n"]) == len(sel)
    assert lines["frames"] == "10 29 20"
    assert float(lines["mass"]) == pytest.approx(sel["mass"].sum(), rel=1e-13)
    counts = sel.groupby("frame").size().tolist()
    assert lines["per_frame"].rstrip(",") == ",".join(map(str, counts))
    assert lines["params"] == "11 20 1"
    assert lines["source"].endswith("bulk-water.mov")


# ----------------------------------------------------------------- 3-D volumes


@pytest.fixture(scope="module")
def src_3d(tmp_path_factory):
    """A store of a 3-D job with a per-axis diameter (z, size_z.., ep_z.. columns)."""
    from daskloc.testing.stores import gaussian_volumes

    store = tmp_path_factory.mktemp("export3d") / "f.parquet"
    batch(as_video(gaussian_volumes(6, seed=8), chunks=2), (5, 7, 7), store=store,
          do_not_return=True, minmass=200)
    return store


def test_3d_columns_in_every_export_format(src_3d, tmp_path):
    expected = read_features(src_3d, slice(1, 5))
    columns = list(expected.columns)
    assert columns[0] == "z" and "size_z" in columns and "ep_x" in columns
    floats = {c: "float64" for c in columns[:-1]}

    export(src_3d, tmp_path / "f.csv", slice(1, 5))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "f.csv"), expected)

    export(src_3d, tmp_path / "f.xlsx", slice(1, 5))
    sheets = read_xlsx(tmp_path / "f.xlsx")
    rows = sheets["features"]
    assert rows[0] == columns
    pd.testing.assert_frame_equal(pd.DataFrame(rows[1:], columns=columns).astype(floats),
                                  expected)
    params = {r[0]: (r + [None])[1] for r in sheets["parameters"] if r and r[0]}
    assert params["diameter"] == "[5, 7, 7]" and params["dims"] == "frame, z, y, x"

    export(src_3d, tmp_path / "f.mat", slice(1, 5))
    m = scipy.io.loadmat(tmp_path / "f.mat", squeeze_me=False, struct_as_record=False)
    f = m["features"][0, 0]
    assert list(f._fieldnames) == columns
    for c in columns:
        np.testing.assert_array_equal(getattr(f, c)[:, 0], expected[c].to_numpy(np.float64))
    np.testing.assert_array_equal(m["params"][0, 0].diameter, [[5, 7, 7]])
    assert [d[0] for d in m["daskloc"][0, 0].dims[0]] == ["frame", "z", "y", "x"]

    copy = tmp_path / "copy.zarr"  # a store of another format keeps the columns
    export(src_3d, copy)
    pd.testing.assert_frame_equal(read_features(copy, frames=slice(1, 5)), expected)
    assert store_info(copy)["dims"] == ["frame", "z", "y", "x"]
