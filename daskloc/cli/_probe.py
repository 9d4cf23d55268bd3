"""``daskloc probe``: what a recording holds and how a job would read it, before the job.
"""

from __future__ import annotations

import json

import click

from daskloc.cli._console import expected_errors, fail
from daskloc.cli._options import CHUNKS, LEVEL_OPTION, parse_channel


@click.command()
@click.argument("video")
@click.option("--position", default=None,
              help="For a multi-position file (OME-TIFF series, CZI scenes): the position "
                   "to describe, by index or name (default: list them, describe the first).")
@LEVEL_OPTION
@click.option("--channel", default=None, help="As for daskloc locate.")
@click.option("--chunk-frames", "chunk_frames", type=CHUNKS, default="auto",
              show_default=True, help="Frames per chunk, or 'auto' (as daskloc locate).")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def probe(video, position, level, channel, chunk_frames, as_json):
    """Describe VIDEO before a long run: format, axes and sizes, dtype, positions,
    calibration, frames, the chunks a job would use and the memory per chunk."""
    from daskloc.video import probe as probe_video
    from daskloc.video import probe_text

    if position is not None and position.lstrip("-").isdigit():
        from daskloc.video import positions

        found = positions(video)
        if not found or position not in [p.name for p in found]:
            position = int(position)  # a name first: a position may be named "1"
    try:
        info = probe_video(video, chunks=chunk_frames, channel=parse_channel(channel),
                           position=position, level=level)
    except expected_errors() as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
        return
    for line in probe_text(info):
        click.echo(line)
