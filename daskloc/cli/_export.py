"""``daskloc export``: a store's features to CSV, Excel, MATLAB or another store.
"""

from __future__ import annotations

import click

from daskloc.cli._console import expected_errors, fail
from daskloc.cli._options import parse_frames


@click.command()
@click.argument("store")
@click.argument("out")
@click.option("--frames", default=None,
              help="Frames to export: START:STOP[:STEP] or a list 1,5,9 [all].")
@click.option("--table", default=None, help="Result set to read, in a STORE holding several.")
@click.option("--out-table", default=None, help="Result set to write, in an output store.")
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists.")
def export(store, out, frames, table, out_table, overwrite):
    """Export the features of STORE to OUT, chosen by OUT's suffix or URL.

    \b
    features.csv     text, streamed chunk by chunk
    features.xlsx    Excel: sheet 'features' (continued on 'features_2', ... beyond
                     1,048,576 rows) and sheet 'parameters'
    features.mat     MATLAB/Octave: struct 'features' of N-by-1 columns, 'params', 'source'
    another store    .parquet, .zarr, .h5, sqlite:///f.db, postgresql+psycopg://...,
                     mysql+pymysql://... (same rows, same metadata)
    """
    from daskloc.export import export as export_features

    try:
        summary = export_features(store, out, parse_frames(frames), table=table,
                                  out_table=out_table, overwrite=overwrite)
    except expected_errors() as exc:  # StoreBusyError among them
        fail(exc)
    sheets = f" (sheets {', '.join(summary['sheets'])})" if summary.get("sheets") else ""
    frames_text = f" of frames {summary['frames']}" if summary["frames"] else ""
    click.echo(f"{summary['n_features']} features{frames_text} -> {summary['out']} "
               f"({summary['format']}){sheets}")
