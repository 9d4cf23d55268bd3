"""``daskloc info``: what a feature store holds, and what a careful reader must know.
"""

from __future__ import annotations

import json

import click

from daskloc.cli._console import expected_errors, fail


@click.command()
@click.argument("store")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def info(store, as_json):
    """Show what a feature STORE holds: progress, features, parameters, source."""
    from daskloc.stores import store_info

    try:
        summary = store_info(store)
    except expected_errors() as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    state = "complete" if summary["complete"] else "incomplete (rerun the same command to resume)"
    if summary.get("growing"):
        state = ("following a recording being written (frames are added as it grows)"
                 if summary.get("writer") else
                 "a followed recording, stopped before its end (rerun the same command "
                 "with --follow to go on)")
    click.echo(f"store:      {summary['path']} ({summary['backend']})")
    click.echo(f"state:      {state}")
    click.echo(f"frames:     {summary['frames_complete']} of {summary['frames_total']} done "
               f"({summary['chunks_complete']} of {summary['chunks_total']} chunks)")
    click.echo(f"features:   {summary['n_features']}")
    source = summary.get("source") or {}
    where = source.get("path") or source.get("store") or source.get("description", "?")
    click.echo(f"source:     {where}"
               + _position_text(source))
    if summary.get("followed") and summary.get("ended"):
        click.echo(f"followed:   until {summary['ended']}")
    videos = summary.get("videos") or {}
    if not videos:
        click.echo(f"calibration: {_calibration_text(source)}")
    for name, one in videos.items():
        src = one.get("source") or {}
        click.echo(f"  {name}: {src.get('path', '?')}{_position_text(src)}; "
                   f"{one.get('n_features', 0)} features; calibration: "
                   f"{_calibration_text(src)}")
    dims = summary.get("dims")
    if dims:
        kind = "3-D volumes" if "z" in dims else "2-D frames"
        click.echo(f"dims:       {', '.join(dims)} ({kind})")
    params = summary.get("params") or {}
    click.echo("parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    click.echo(f"written by: daskloc {summary.get('daskloc_version')} ({summary.get('updated')})")
    line = None if videos else _trajectories_line(store)
    if line:
        click.echo(line)
    for line in _warnings_of(summary):
        click.echo(line)


def _trajectories_line(store):
    """``trajectories: ...`` when the features of ``store`` were linked (daskloc link)
    into the same store; None otherwise (or for a table of trajectories itself)."""
    from daskloc.stores import open_store, store_info
    from daskloc.stores._names import trajectories_table

    try:
        st = open_store(store, "r")
        if st.metadata().trajectories:
            return None
        t = store_info(st.path, table=trajectories_table(st.table))
    except Exception:  # noqa: BLE001 - not linked (or not readable): nothing to say
        return None
    p = t.get("params") or {}
    state = "complete" if t["complete"] else (
        f"{t['chunks_complete']} of {t['chunks_total']} chunks")
    return (f"trajectories: {state}, {t['n_features']} features linked with "
            f"search_range={p.get('search_range')}, memory={p.get('memory')} "
            f"({t['path']}; read_features(..., trajectories=True))")


def _position_text(source):
    if source.get("position") is None:
        return ""
    return f" (position {source.get('position_index')}: {source['position']})"


def _calibration_text(source):
    """The calibration a store's ``source`` records, for people (features stay in
    pixels and frames)."""
    from daskloc.video import Calibration

    return Calibration.from_json(source.get("calibration")).describe()


def _warnings_of(summary):
    """The lines of ``daskloc info`` about what a careful reader must know."""
    lines = []
    writer = summary.get("writer")
    if writer:
        state = (f"left by a writer that is gone ({writer['stale']}; the next job takes it "
                 "over)" if writer.get("stale") else "being written now")
        lines.append(f"writer:     {state}: process {writer.get('pid')} on "
                     f"{writer.get('host')}, since {writer.get('started')}, last heartbeat "
                     f"{writer.get('heartbeat')}")
    if not summary.get("verified", True):
        lines.append("note:       written by daskloc < 0.2: its chunks carry no job identity "
                     "(readable, not resumable; --overwrite locates it again)")
    if summary.get("metadata_edited"):
        lines.append("warning:    the metadata's parameters or source were changed after the "
                     "job wrote it: chunks that do not match them are not read")
    ignored = [(c, c["chunk"], c["reason"]) for c in summary.get("ignored_chunks") or []]
    if ignored:
        lines += _chunk_lines("ignored:    {} chunks in the store are not read:", ignored)
        lines.append("            (remove them, or rerun with --overwrite; plain Parquet "
                     "readers would read them)")
    failed = [(c, (c["start"], c["stop"]), c.get("error"))
              for c in summary.get("failed_chunks") or []]
    if failed:
        lines += _chunk_lines("failed:     {} chunks could not be located:", failed)
    skipped = summary.get("skipped_frames")
    if skipped:
        from daskloc.pipeline import _frames_text as frames_text

        if isinstance(skipped, dict):
            n = sum(len(v) for v in skipped.values())
            text = "; ".join(f"{k}: {frames_text(v)}" for k, v in skipped.items())
        else:
            n, text = len(skipped), frames_text(skipped)
        lines.append(f"skipped:    {n} frames could not be decoded and have no features "
                     f"(on_error=skip): {text}")
    return lines


def _chunk_lines(title, items, shown=10):
    """A title line and one line per chunk: ``(entry, (start, stop), why)`` items."""
    lines = [title.format(len(items))]
    for c, (a, b), why in items[:shown]:
        where = f"video {c['video']}: " if c.get("video") else ""
        lines.append(f"            {where}frames [{a}, {b}): {why}")
    if len(items) > shown:
        lines.append(f"            ... and {len(items) - shown} more (--json lists all)")
    return lines
