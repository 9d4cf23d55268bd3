"""``daskloc watch``: a live view of a running job's store, until the job ends."""

from __future__ import annotations

import click

from daskloc.cli._console import expected_errors, fail


def _view(snap, store):
    """The lines of one snapshot (rich Text)."""
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    done, total = snap.get("frames_complete"), snap.get("frames_total")
    if snap.get("growing"):
        state = "following a recording being written" if snap["running"] else \
            "followed, stopped before its end"
        frames = f"{done} located (the recording grows)"
    else:
        state = ("running" if snap["running"] else
                 "complete" if snap["complete"] else "stopped (rerun to resume)")
        frames = f"{done} of {total}"
    table.add_row("store", str(snap.get("path", store)))
    table.add_row("state", state)
    table.add_row("frames", frames)
    table.add_row("features", f"{snap.get('n_features', 0):,}")
    per = snap["per_frame"]
    if len(per):
        table.add_row("per frame", f"{per.mean():.1f} mean, {per.min()}..{per.max()} over frames "
                                   f"{per.index[0]}..{per.index[-1]}")
        spark = "▁▂▃▄▅▆▇█"
        top = max(int(per.max()), 1)
        tail = per.to_numpy()[-60:]
        table.add_row("", "".join(spark[min(7, int(v * 7 / top))] for v in tail))
    rate = snap.get("rate")
    table.add_row("rate", "-" if rate is None else f"{rate:.1f} frames/s")
    eta = snap.get("eta")
    if eta is not None:
        table.add_row("eta", f"{eta:.0f} s")
    if snap.get("ended"):
        table.add_row("ended", str(snap["ended"]))
    return table


@click.command()
@click.argument("store")
@click.option("--interval", type=click.FloatRange(min=0.1), default=1.0, show_default=True,
              help="Seconds between two refreshes.")
def watch(store, interval):
    """Show a live view of the job writing STORE: frames done, features per frame over
    the last chunks, rate and ETA (when the total is known), until the job ends."""
    from rich.console import Console
    from rich.live import Live

    from daskloc.stores import watch_job

    console = Console()
    try:
        snaps = watch_job(store, interval=interval)
        first = next(snaps)
        with Live(_view(first, store), console=console, auto_refresh=False) as live:
            for snap in snaps:
                live.update(_view(snap, store), refresh=True)
    except KeyboardInterrupt:
        return
    except expected_errors() as exc:
        fail(exc)
