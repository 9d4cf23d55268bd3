"""A store's complete chunks read back lazily as a dask DataFrame (what batch returns).
"""

from __future__ import annotations

from daskloc.pipeline._partitions import _meta, _to_partition


def _read_chunk(store, start, stop, names):
    # not "columns": dask's from_map passes its column projection under that name
    df = store.read(frames=slice(start, stop))
    return _to_partition(df, names)


def _from_store(st):
    """A store's complete chunks as a Dask DataFrame indexed by frame, known divisions."""
    import dask.dataframe as dd  # only when a DataFrame is made (see _api.locate)

    meta = st.metadata()
    # The columns the job recorded (from its dims and parameters when it started)
    columns = [c for c in st.columns(meta) if c != "frame"]
    chunks = st.valid_chunks(meta) if meta is not None else []
    empty = _meta(columns)
    if not chunks:
        return dd.from_pandas(empty, npartitions=1)
    divisions = tuple(a for a, _ in chunks) + (chunks[-1][1] - 1,)
    return dd.from_map(
        _read_chunk,
        [st] * len(chunks),
        [a for a, _ in chunks],
        [b for _, b in chunks],
        args=(columns,),
        meta=empty,
        divisions=divisions,
        label="daskloc-read",
        enforce_metadata=False,
    )
