"""A minimal third-party feature store: a directory of JSON-lines files, one per chunk.

What another package would write to add a format to daskloc (test_plugin.py announces it
through the entry-point group ``daskloc.stores`` and runs the conformance suite on it).
Layout of ``features.jsonl/`` (a table is a sub-folder)::

    _daskloc.json                      the metadata document
    chunk-<start>-<stop>.jsonl         line 1: {"id", "skipped", "columns"}; then one JSON
                                       array of values per feature, sorted by frame

Every file is written under a temporary name and renamed, so readers see chunks whole.
"""

from __future__ import annotations

import json
import os
import re
import uuid

import pandas as pd

from daskloc.metadata import ChunkMark, validate_metadata
from daskloc.stores import FeatureStore
from daskloc.stores.base import check_chunk_features

METADATA = "_daskloc.json"
_CHUNK = re.compile(r"^chunk-(\d+)-(\d+)\.jsonl$")


class JSONLinesStore(FeatureStore):
    """Features as JSON lines, one file per chunk (any number of writers at once)."""

    backend = "jsonl"
    format_name = "JSON lines"
    suffixes = (".jsonl",)
    lists_tables = True
    concurrent_writers = True
    ordered_appends = False
    live_reads = True

    def __init__(self, path, *, table=None):
        super().__init__(path, table=table)
        self.dir = os.path.join(self.path, *(self.table or "").split("/"))

    def _write(self, name, text):
        tmp = os.path.join(self.dir, f".{name}.{uuid.uuid4().hex}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, os.path.join(self.dir, name))

    def _names(self):
        return os.listdir(self.dir) if os.path.isdir(self.dir) else []

    def exists(self):
        return os.path.isfile(os.path.join(self.dir, METADATA))

    def prepare(self):
        os.makedirs(self.dir, exist_ok=True)

    def clear(self):
        ours = [n for n in self._names()
                if n == METADATA or _CHUNK.match(n) or n.endswith(".tmp")]
        for name in sorted(ours, key=lambda n: n != METADATA):  # metadata first
            os.remove(os.path.join(self.dir, name))

    def remove_temporary(self):
        for name in self._names():
            if name.endswith(".tmp"):
                os.remove(os.path.join(self.dir, name))

    def _lease_ops(self):
        from daskloc.stores import LockFileOps  # the public lease of a local store

        return LockFileOps(os.path.join(self.dir, ".daskloc-lease"))

    def list_tables(self):
        out = []
        for root, _, files in os.walk(self.path):
            if METADATA in files and root != self.path:
                out.append(os.path.relpath(root, self.path).replace(os.sep, "/"))
        return sorted(out)

    def write_metadata(self, metadata):
        self.prepare()
        self._write(METADATA, json.dumps(metadata, allow_nan=False))

    def read_metadata(self):
        try:
            with open(os.path.join(self.dir, METADATA), encoding="utf-8") as f:
                return validate_metadata(json.load(f), self.url)
        except FileNotFoundError:
            return None

    def append_chunk(self, start, stop, features, chunk_id=None, skipped=()):
        start, stop, features = check_chunk_features(start, stop, features)
        skipped = sorted(int(f) for f in skipped)
        mark = {"id": self._chunk_id_for(start, stop, chunk_id, skipped), "skipped": skipped,
                "columns": [str(c) for c in features.columns]}
        lines = [json.dumps(mark)] + [json.dumps(row) for row in
                                      features.astype(object).values.tolist()]
        self._write(f"chunk-{start}-{stop}.jsonl", "\n".join(lines) + "\n")

    def complete_chunks(self):
        return sorted((int(m[1]), int(m[2])) for m in map(_CHUNK.match, self._names()) if m)

    def _lines(self, chunk):
        with open(os.path.join(self.dir, f"chunk-{chunk[0]}-{chunk[1]}.jsonl"),
                  encoding="utf-8") as f:
            return f.read().splitlines()

    def chunk_ids(self, chunks=None):
        out = {}
        for c in self.complete_chunks() if chunks is None else chunks:
            c = (int(c[0]), int(c[1]))
            if c in self.complete_chunks():
                lines = self._lines(c)
                head = json.loads(lines[0])
                out[c] = ChunkMark(head["id"], tuple(head["skipped"]), len(lines) - 1)
        return out

    def n_rows(self, chunks=None):
        return sum(m.n_rows for m in self.chunk_ids(chunks).values())

    def _read_selection(self, lo, hi, wanted, columns, chunks):
        parts = []
        for c in chunks:
            lines = self._lines(c)
            names = json.loads(lines[0])["columns"]
            parts.append(pd.DataFrame([json.loads(s) for s in lines[1:]], columns=names))
        if not parts:
            return None
        df = pd.concat(parts, ignore_index=True)
        df = df[[c for c in columns if c in df.columns]].astype(
            {c: dt for c, dt in columns.items() if c in df.columns})
        keep = df.frame.between(lo, hi - 1) if wanted is None else df.frame.isin(wanted)
        return df[keep].sort_values("frame", kind="stable").reset_index(drop=True)
