"""Export a feature store for people and other tools: CSV, Excel, MATLAB, or another store.

    daskloc.export("features.parquet", "features.csv")                  # spreadsheet text
    daskloc.export("features.parquet", "features.xlsx", frames=slice(0, 100))
    daskloc.export("features.parquet", "features.mat")                  # MATLAB / Octave
    daskloc.export("features.parquet", "sqlite:///features.db")         # any store -> any store

Everything goes through the store interface (:mod:`daskloc.stores`): the source's
complete chunks are read one at a time, in frame order, so every backend can be exported
and (except for ``.mat``, which scipy writes in one go) memory holds one chunk at a time.
The exported rows are exactly those of :func:`daskloc.read_features` on the same store
and frames, in the same order.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import uuid

import numpy as np

from daskloc._extras import require
from daskloc._version import __version__
from daskloc.metadata import METADATA_VERSION, JobMetadata, chunk_id, utc_now
from daskloc.stores import (
    OBJECT_SCHEMES,
    FeatureStore,
    encode_frames,
    is_store_location,
    open_store,
    store_formats,
)
from daskloc.stores.base import chunk_may_hold, normalize_selection, write_error

__all__ = ["FILE_FORMATS", "MAT_MAX_VARIABLE_BYTES", "XLSX_MAX_ROWS", "export"]

#: Output formats written as one file (by suffix), with a description for messages.
FILE_FORMATS = {
    ".csv": "CSV text",
    ".xlsx": "Excel workbook",
    ".mat": "MATLAB MAT-file",
}
#: Rows per Excel worksheet, header included (Excel's limit, 2**20).
XLSX_MAX_ROWS = 1_048_576
#: Largest MATLAB variable a version 5/7 MAT-file may hold, in bytes (MATLAB's limit:
#: 2**31 bytes per variable; larger needs MAT 7.3, which scipy does not write).
MAT_MAX_VARIABLE_BYTES = 2**31
#: Bytes of a MAT-file struct besides its data (headers, field names); generous.
_MAT_OVERHEAD = 4096


def _hide_password(url):
    """``scheme://user:secret@host/db`` -> ``scheme://user:***@host/db`` (other text as is)."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", str(url))


def _formats_text():
    formats = store_formats()
    suffixes = [s for f in formats for s in f.store_class.suffixes]
    first = [".parquet", ".zarr", ".h5", ".hdf5"]
    stores = [s for s in first if s in suffixes] + sorted(set(suffixes) - set(first))
    urls = [", ".join(f.store_class.url_examples) for f in formats
            if f.url_schemes and f.store_class.url_examples]
    return (
        f"files {', '.join(FILE_FORMATS)}; stores {', '.join(stores)}"
        + (f"; or a database URL ({', '.join(urls)})" if urls else "")
    )


def _output_kind(out):
    """``".csv"``, ``".xlsx"``, ``".mat"`` or ``"store"`` for an output location.

    Raises
    ------
    ValueError
        A suffix that is neither a file format nor a store (the message lists both).
    """
    if isinstance(out, FeatureStore):
        return "store"
    text = os.fspath(out)
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme not in ("", "file") and is_store_location(text):
        return "store"  # a database URL, or a store format on object storage
    location = text.split("#", 1)[0] if scheme in ("", "file") else text
    suffix = os.path.splitext(location.rstrip("/" + os.sep))[1].lower()
    if suffix in FILE_FORMATS:
        if scheme not in ("", "file"):
            raise ValueError(
                f"cannot export to {text!r}: {FILE_FORMATS[suffix]} files are written to a "
                "local path; write it locally and copy it, or export to a store "
                "(.parquet/.zarr) on object storage"
            )
        return suffix
    if is_store_location(location) or (
            scheme in OBJECT_SCHEMES and any(suffix in f.suffixes for f in store_formats())):
        return "store"  # (a format object storage cannot hold: open_store says so)
    what = f"unknown output format {suffix!r}" if suffix else "no file suffix"
    if suffix == ".xls":
        what += " (old Excel; use .xlsx)"
    raise ValueError(f"cannot export to {text!r}: {what}; export to {_formats_text()}")


# ----------------------------------------------------------------- reading the source


def _pieces(src, lo, hi, wanted):
    """The source's complete chunks that meet the selection, clipped to it.

    Returns
    -------
    list of (int, int, slice or numpy.ndarray)
        ``(start, stop, selection)`` in frame order: ``[start, stop)`` is the chunk
        clipped to the selection, ``selection`` the frames to read from it.
    """
    out = []
    for a, b in src.valid_chunks():
        if not chunk_may_hold(a, b, lo, hi, wanted):
            continue
        if wanted is None:
            s, e = max(a, lo), min(b, hi)
            out.append((s, e, slice(s, e)))
        else:
            w = wanted[(wanted >= a) & (wanted < b)]
            out.append((int(w[0]), int(w[-1]) + 1, w))
    return out


def _chunks(src, pieces, columns):
    """Yield ``(start, stop, DataFrame)`` per piece, read one at a time."""
    for s, e, sel in pieces:
        df = src.read(sel)
        if list(df.columns) != columns:
            df = df[columns]
        yield s, e, df


# ----------------------------------------------------------------- writing files


def _temp_file(out):
    """Create an empty hidden temporary file beside ``out`` and return its path."""
    folder, name = os.path.split(os.path.abspath(out))
    tmp = os.path.join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb"):
            pass
    except OSError as e:
        raise write_error(
            e, f"cannot write {out} ({e.strerror}); choose a writable output path or fix the "
            "folder's permissions") from e
    return tmp


def _check_file_output(out, overwrite):
    path = os.path.abspath(os.fspath(out).removeprefix("file://"))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"cannot write {path}: the folder {folder} does not exist; create it first"
        )
    if os.path.isdir(path):
        raise IsADirectoryError(f"cannot write {path}: it is a directory; choose a file name")
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it, "
            "or choose another output name"
        )
    return path


def _write_csv(tmp, chunks, columns):
    n = 0
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(",".join(columns) + "\n")
        for _, _, df in chunks:
            # Floats are written as Python's repr: the shortest text that reads back to the
            # same float64. Missing values (NaN) are empty fields.
            df.to_csv(f, header=False, index=False, lineterminator="\n")
            n += len(df)
    return {"n_features": n}


def _cell(value):
    """A metadata value as one spreadsheet cell (str, number, bool or None)."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Real):
        return value if math.isfinite(value) else None
    return json.dumps(value)


def _rows_of(df):
    """Rows of ``df`` as lists of Python scalars; NaN/inf become None (an empty cell)."""
    cols = []
    for c in df.columns:
        v = df[c].to_numpy()
        values = v.tolist()
        if v.dtype.kind == "f":
            bad = ~np.isfinite(v)
            if bad.any():
                for i in np.flatnonzero(bad):
                    values[i] = None
        cols.append(values)
    return zip(*cols)


def _write_xlsx(tmp, chunks, columns, info):
    openpyxl = require("openpyxl")  # the [excel] extra

    wb = openpyxl.Workbook(write_only=True)
    sheets = []  # [name, rows of features]
    try:
        result = _fill_workbook(wb, sheets, chunks, columns, info)
        wb.save(tmp)
    except BaseException:
        _discard_sheets(wb)
        raise
    return result


def _discard_sheets(wb):
    """Finish and delete the temporary files openpyxl spools unsaved sheets to."""
    for ws in wb.worksheets:
        try:
            if getattr(ws, "_rows", None) is not None:
                ws._rows.close()
            writer = getattr(ws, "_writer", None)
            if writer is not None:
                writer.close()
                writer.cleanup()
        except Exception:  # noqa: BLE001 - best effort; openpyxl also cleans up at exit
            pass


def _fill_workbook(wb, sheets, chunks, columns, info):
    def new_sheet():
        name = "features" if not sheets else f"features_{len(sheets) + 1}"
        ws = wb.create_sheet(name)
        ws.freeze_panes = "A2"
        ws.append(columns)
        sheets.append([name, 0])
        return ws

    ws = new_sheet()
    per_sheet = XLSX_MAX_ROWS - 1
    n = 0
    for _, _, df in chunks:
        for row in _rows_of(df):
            if sheets[-1][1] == per_sheet:
                ws = new_sheet()
            ws.append(row)
            sheets[-1][1] += 1
            n += 1
    ps = wb.create_sheet("parameters")
    ps.append(["daskloc export", ""])
    for key, value in [
        ("exported from", info["store"]),
        ("table", info["table"]),
        ("backend", info["backend"]),
        ("frames exported", info["frames"] or "all"),
        ("features", n),
        ("feature sheets", ", ".join(f"{s} ({r} rows)" for s, r in sheets)),
        ("columns", ", ".join(columns)),
        ("dims", ", ".join(info["dims"] or ())),
        ("exported", info["exported"]),
        ("exported by", f"daskloc {__version__}"),
    ]:
        ps.append([key, _cell(value)])
    meta = info["metadata"]
    ps.append([])
    ps.append(["locate parameter", "value"])
    for key, value in (meta.get("params") or {}).items():
        ps.append([key, _cell(value)])
    ps.append([])
    ps.append(["source", "value"])
    for key, value in (meta.get("source") or {}).items():
        ps.append([key, _cell(value)])
    ps.append([])
    ps.append(["located by", f"daskloc {meta.get('daskloc_version')}"])
    ps.append(["located", meta.get("created")])
    ps.append(["versions", _cell(meta.get("versions"))])
    return {"n_features": n, "sheets": [s for s, _ in sheets]}


def _matlab_name(key):
    """A valid MATLAB field name (letters, digits, ``_``, starting with a letter; <= 63)."""
    name = re.sub(r"\W", "_", str(key), flags=re.ASCII)
    if not name or not name[0].isalpha():
        name = "x" + name
    return name[:63]


def _matlab_value(value):
    """Convert a JSON-like metadata value to what scipy writes as natural MATLAB data.

    Numbers become double (MATLAB's default: int64 would turn arithmetic into integer
    arithmetic), bools logical, None the empty matrix ``[]``, dicts structs, lists of
    numbers 1-by-n double rows, other lists cell arrays.
    """
    if value is None:
        return np.zeros((0, 0))
    if isinstance(value, (bool, np.bool_)):
        return np.bool_(value)
    if isinstance(value, numbers.Integral) and abs(int(value)) > 2**53:
        return np.int64(value)  # e.g. mtimes in ns: a double would round them
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {_matlab_name(k): _matlab_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
            return np.asarray(value, dtype=np.float64).reshape(1, -1)
        cell = np.empty((1, len(value)), dtype=object)
        for i, v in enumerate(value):
            cell[0, i] = _matlab_value(v)
        return cell
    return str(value)


def _mat_bytes(n_rows, n_columns):
    return 8 * int(n_rows) * int(n_columns) + _MAT_OVERHEAD


def _check_mat_size(n_rows, columns):
    need = _mat_bytes(n_rows, len(columns))
    if need > MAT_MAX_VARIABLE_BYTES:
        raise ValueError(
            f"{n_rows} features x {len(columns)} columns need {need / 2**30:.2f} GiB as one "
            f"MATLAB variable, more than the {MAT_MAX_VARIABLE_BYTES / 2**30:.0f} GiB a "
            "MAT-file (version 5/7, what scipy writes) can hold per variable; export frame "
            "ranges to several .mat files (--frames A:B), or to .h5 (MATLAB reads it with "
            "h5read) or .csv"
        )


def _write_mat(tmp, chunks, columns, info, upper_rows):
    import scipy.io

    # One preallocated array per column (at most the rows of the chunks read), filled
    # chunk by chunk, so memory holds the output columns plus one chunk.
    capacity = int(upper_rows)
    data = {c: np.empty(capacity, dtype=np.float64) for c in columns}
    n = 0
    for _, _, df in chunks:
        k = len(df)
        if n + k > capacity:  # a chunk was rewritten with more rows since counted
            capacity = max(2 * capacity, n + k)
            for c in columns:
                grown = np.empty(capacity, dtype=np.float64)
                grown[:n] = data[c][:n]
                data[c] = grown
        for c in columns:
            data[c][n:n + k] = df[c].to_numpy(dtype=np.float64)
        n += k
    _check_mat_size(n, columns)
    features = {_matlab_name(c): data[c][:n].reshape(-1, 1) for c in columns}
    meta = info["metadata"]
    mdict = {
        "features": features,
        "params": _matlab_value(meta.get("params") or {}),
        "source": _matlab_value(meta.get("source") or {}),
        "daskloc": _matlab_value({
            "exported_from": info["store"],
            "table": info["table"] or "",
            "backend": info["backend"],
            "frames": info["frames"] or "all",
            "n_features": n,
            "columns": list(columns),
            "dims": list(info["dims"] or ()),
            "frame_numbers": "0-based: the video's first frame is frame 0",
            "exported": info["exported"],
            "exported_by": f"daskloc {__version__}",
            "located_by": f"daskloc {meta.get('daskloc_version')}",
            "located": meta.get("created"),
        }),
    }
    with open(tmp, "wb") as f:
        scipy.io.savemat(f, mdict, do_compression=True, oned_as="column")
    return {"n_features": n}


# ----------------------------------------------------------------- store to store


def _same_store(a, b):
    if type(a) is not type(b) or a.table != b.table:
        return False
    pa, pb = a.store_path, b.store_path
    if "://" in pa or "://" in pb:
        return pa == pb
    return os.path.realpath(pa) == os.path.realpath(pb)


def _copy_metadata(src_meta, dst, info, frames, lo, hi, wanted, source_frames, pieces):
    """The output store's metadata (a JobMetadata): the source's, with the export noted
    and, for a frame selection, the source frames and chunking restricted to it."""
    meta = src_meta.copy()
    meta.store = {"backend": dst.backend}
    meta.exported_from = {
        "store": info["store"],
        "backend": info["backend"],
        "table": info["table"],
        "frames": info["frames"],
        "exported": info["exported"],
        "daskloc_version": __version__,
        "previous": src_meta.exported_from,
    }
    if frames is not None:
        sel = None
        if source_frames is not None:
            sf = np.asarray(source_frames, dtype=np.int64)
            keep = (sf >= lo) & (sf < hi)
            if wanted is not None:
                keep &= np.isin(sf, wanted)
            sel = sf[keep]
            meta.source["frames"] = encode_frames(sel)
            meta.source["n_selected"] = int(sel.size)
        planned = meta.chunks or [(s, e) for s, e, _ in pieces]
        clipped = []
        for a, b in planned:
            if not chunk_may_hold(a, b, lo, hi, wanted):
                continue
            if wanted is None:
                clipped.append((max(a, lo), min(b, hi)))
            else:
                w = wanted[(wanted >= a) & (wanted < b)]
                clipped.append((int(w[0]), int(w[-1]) + 1))
        if sel is not None:
            counts = [int(np.count_nonzero((sel >= a) & (sel < b))) for a, b in clipped]
        else:
            counts = [b - a for a, b in clipped]
        meta.chunking = {"chunk_frames": counts, "chunks": [list(c) for c in clipped]}
        skipped = []
        for a, b, frames_ in meta.skipped:
            for c0, c1 in clipped:  # a chunk's skipped frames, clipped with it
                inside = [f for f in frames_ if c0 <= f < c1 and a <= f < b]
                if inside and a <= c0 < b:
                    skipped.append([c0, c1, inside])
        meta.skipped = skipped
    meta.failed_chunks = []
    meta.format_version = METADATA_VERSION
    meta.job = meta.identity
    meta.complete_chunks = []
    meta.n_features = 0
    meta.finished = False
    meta.updated = utc_now()
    return meta


def _copy_to_store(src, dst, chunks, meta):
    identity = meta.identity
    skipped = meta.skipped_frames()
    dst.remove_temporary()
    dst.write_metadata(meta.to_json())
    done, n = [], 0
    try:
        for s, e, df in chunks:
            frames_ = skipped.get((s, e), ())
            dst.append_chunk(s, e, df, chunk_id=chunk_id(identity, s, e, frames_),
                             skipped=frames_)
            done.append([s, e])
            n += len(df)
    finally:
        planned = set(meta.chunks)
        meta.complete_chunks = done
        meta.n_features = n
        meta.finished = bool(planned) and planned <= {tuple(c) for c in done}
        meta.updated = utc_now()
        dst.write_metadata(meta.to_json())
    return {"n_features": n}


# ----------------------------------------------------------------- the API


def _describe_selection(frames, lo, hi, wanted):
    if frames is None:
        return None
    if wanted is None:
        return f"{lo}..{hi - 1}" if hi > lo else "none"
    spec = encode_frames(wanted)
    if isinstance(spec, dict):
        step = spec["step"]
        return f"{spec['start']}..{spec['stop'] - 1}" + ("" if step == 1 else f" step {step}")
    return ", ".join(str(v) for v in spec) if len(spec) <= 20 else (
        f"{len(spec)} frames from {spec[0]} to {spec[-1]}"
    )


def export(store, out, frames=None, *, table=None, storage_options=None, out_table=None,
           overwrite=False, out_storage_options=None):
    """Export the features of a store to a CSV, Excel or MATLAB file, or to another store.

    Parameters
    ----------
    store : str, os.PathLike or daskloc.stores.FeatureStore
        The source: any feature store :func:`daskloc.read_features` reads
        (``"features.parquet"``, ``"features.zarr"``, ``"features.h5"``,
        ``"sqlite:///features.db"``, ...).
    out : str, os.PathLike or daskloc.stores.FeatureStore
        The output; its suffix (or URL scheme) chooses the format:

        - ``.csv``: text, one header line (the store's columns:
          ``y,x,mass,size,ecc,signal,raw_mass,ep,frame`` or ``y,x,mass,frame`` for 2-D
          frames; ``z`` first for 3-D volumes, ``size_z,size_y,size_x``, ``ep_z,...``
          for a per-axis diameter) then one line per feature, no index column. Floats are
          written as the shortest text that reads back to the same float64
          (:func:`pandas.read_csv` of pandas 3 gets them back bit for bit; older pandas
          needs ``float_precision="round_trip"``); missing values are empty fields.
          Written chunk by chunk.
        - ``.xlsx``: an Excel workbook. Sheet ``features`` holds the header row and the
          features; a sheet holds at most 1,048,576 rows (Excel's limit, header
          included), so a longer table **continues on further sheets** ``features_2``,
          ``features_3``, ... (each with the header row; rows stay in frame order, a
          frame may straddle two sheets). Sheet ``parameters`` lists the locate
          parameters (per-axis values as ``[5, 11, 11]``), the video's dims, the source
          video, where the features came from and which sheets
          hold them. Missing or infinite values are empty cells (Excel has no NaN);
          Excel has one number type, so whole floats read back as integers. openpyxl's
          write-only mode spools each sheet to the system temporary folder before
          zipping it into ``out``.
        - ``.mat``: a MATLAB MAT-file (version 5 with compression, as
          :func:`scipy.io.savemat` writes; MATLAB and Octave ``load`` it). Variables:
          ``features``, a struct with one N-by-1 double column per feature column, in
          table order (``features.x``, ``features.frame``, ...; frame numbers are
          doubles, exact below 2**53); ``params``, a struct of the locate parameters
          (numbers double, flags logical, unset ones ``[]``); ``source``, a struct
          describing the video; ``daskloc``, a struct saying what was exported from
          where (``columns`` and ``dims`` are cell arrays of names).
        - a store: ``.parquet``, ``.zarr``, ``.h5``/``.hdf5``, an SQLAlchemy URL
          (``sqlite:///features.db``, ``postgresql+psycopg://...``,
          ``mysql+pymysql://...``) or an object-storage URL of a store format
          (``s3://bucket/features.zarr``). The features are copied chunk by chunk
          through the store interface, in frame order, with the same chunk ranges
          (clipped to ``frames``) and the source's metadata (parameters, source,
          versions) plus ``exported_from`` (source location, password hidden; backend;
          frames; time). A full copy (``frames=None``) holds the same job as the source:
          an unfinished source gives an unfinished copy that ``daskloc.batch`` /
          ``daskloc locate --out`` resumes -- except that Zarr and HDF5 stores take
          chunks in frame order only, so a missing chunk *before* a complete one cannot
          be filled in such a copy later (batch says so; finish the source first).
          With ``frames``, the copy's source frames and chunking are restricted to the
          selection (a later batch with the original job refuses it as a mismatch).
    frames : None, int, slice, range or sequence of int, optional
        Absolute frame numbers to export, as in :func:`daskloc.read_features`
        (``slice(100, 200)`` is frames 100..199). None exports every complete chunk.
    table : str, optional
        The result set to read, in a source holding several.
    storage_options : dict, optional
        fsspec options for a source on object storage.
    out_table : str, optional
        The result set to write, in an output store (several may share one store); not
        for ``.csv``/``.xlsx``/``.mat``. ``OUT#TABLE`` names it too.
    overwrite : bool, default False
        Replace an existing output. A file is replaced only once the new one is
        complete; an output store (only a daskloc store, never other data) is cleared
        first.
    out_storage_options : dict, optional
        fsspec options for an output store on object storage.

    Returns
    -------
    dict
        ``out`` (the output path or store URL, password hidden), ``format``
        (``"csv"``, ``"xlsx"``, ``"mat"`` or the store backend's name), ``n_features``
        (rows written), ``n_chunks`` (source chunks read), ``frames`` (the selection as
        text, or None for everything) and, for ``.xlsx``, ``sheets`` (names of the
        feature sheets).

    Raises
    ------
    ValueError
        ``out`` has a suffix that is neither a file format nor a store (the message
        lists the formats); ``frames`` reaches outside the source video's frames (the
        store's own error, raised before anything is written); ``out`` is the source
        store itself; ``out_table`` with a file output; a ``.mat`` export whose
        features exceed the 2 GiB a MATLAB variable may hold (see Notes).
    FileNotFoundError
        There is no store at ``store``, or the output's folder does not exist.
    FileExistsError
        The output exists and ``overwrite`` is False.
    PermissionError, OSError
        The output cannot be written (nothing is left behind for file outputs).

    Notes
    -----
    The rows are exactly ``read_features(store, frames)``: the same values, dtypes
    (float64 features, int64 ``frame``) and order. While a batch is still writing the
    source, only the chunks complete when the export starts are exported.

    Memory: ``.csv``, ``.xlsx`` and store outputs hold one chunk at a time (openpyxl's
    write-only mode spools sheets to temporary files). ``.mat`` needs the whole table:
    the columns (8 bytes per value) plus, while scipy compresses, one more uncompressed
    copy. A MAT-file (version 5/7) variable holds at most 2**31 bytes, i.e. about
    29.8 million features of 9 columns: beyond that this raises ValueError before
    writing (scipy itself would only fail at 4 GiB, after writing a file MATLAB cannot
    load). Export frame ranges to several files, or use ``.h5``.

    File outputs are written under a hidden temporary name beside ``out`` and renamed
    when complete: an error or interruption leaves no partial file. A store output
    interrupted midway is left as an unfinished store (``daskloc info`` says so);
    export again with ``overwrite=True``.

    Examples
    --------
    >>> export("features.parquet", "features.csv")  # doctest: +SKIP
    {'out': '/data/features.csv', 'format': 'csv', 'n_features': 292258, ...}
    >>> export("features.parquet", "features.mat", frames=slice(0, 100))  # doctest: +SKIP
    >>> export("features.parquet", "sqlite:///features.db",
    ...        out_table="bulk_water")  # doctest: +SKIP
    """
    kind = _output_kind(out)
    if kind != "store" and out_table is not None:
        raise ValueError(
            f"out_table ({out_table!r}) names a table in an output store; a {kind} file "
            "has no tables"
        )
    src = open_store(store, "r", table=table, storage_options=storage_options)
    stored = src.metadata()
    src_meta = stored if stored is not None else JobMetadata()
    source_frames = src.source_frames(stored) if stored is not None else None
    lo, hi, wanted = normalize_selection(frames, source_frames, where=src.url)
    columns = list(src.columns())
    exported = utc_now()
    info = {
        "store": _hide_password(src.url),
        "table": src.table,
        "backend": src.backend,
        "frames": _describe_selection(frames, lo, hi, wanted),
        "exported": exported,
        "metadata": stored.to_json() if stored is not None else {},
        # the video's dims: frame, y, x (2-D frames) or frame, z, y, x (3-D volumes)
        "dims": list(stored.video_dims) if stored is not None else None,
    }

    if kind == "store":
        dst = open_store(out, "a", table=out_table, storage_options=out_storage_options)
        if _same_store(src, dst):
            raise ValueError(
                f"cannot export {src.url} onto itself; choose another output (or "
                "another out_table)"
            )
        dst.prepare()
        with dst.lease():  # one writer per store
            if dst.exists():
                if not overwrite:
                    raise FileExistsError(
                        f"the output store {_hide_password(dst.url)} already exists; pass "
                        "overwrite=True (CLI: --overwrite) to replace it, or choose another "
                        "output (or out_table)"
                    )
                dst.clear()
            pieces = _pieces(src, lo, hi, wanted) if hi > lo else []
            meta = _copy_metadata(src_meta, dst, info, frames, lo, hi, wanted, source_frames,
                                  pieces)
            result = _copy_to_store(src, dst, _chunks(src, pieces, columns), meta)
            dst.finish()  # e.g. consolidated metadata for plain Zarr readers
        result.update(out=_hide_password(dst.url), format=dst.backend)
    else:
        path = _check_file_output(out, overwrite)
        pieces = _pieces(src, lo, hi, wanted) if hi > lo else []
        upper = 0
        if kind == ".mat":
            whole = [(a, b) for a, b in src.valid_chunks()
                     if chunk_may_hold(a, b, lo, hi, wanted)]
            upper = src.n_rows(whole)
            if [(s, e) for s, e, sel in pieces if isinstance(sel, slice)] == whole:
                _check_mat_size(upper, columns)  # exact: fail before reading anything
        tmp = _temp_file(path)
        try:
            chunks = _chunks(src, pieces, columns)
            if kind == ".csv":
                result = _write_csv(tmp, chunks, columns)
            elif kind == ".xlsx":
                result = _write_xlsx(tmp, chunks, columns, info)
            else:
                result = _write_mat(tmp, chunks, columns, info, upper)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise
        result.update(out=path, format=kind[1:])
    result.update(n_chunks=len(pieces), frames=info["frames"])
    return {k: result[k] for k in ("out", "format", "n_features", "n_chunks", "frames",
                                   "sheets") if k in result}
