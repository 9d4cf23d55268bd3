"""``daskloc link``: trajectories from a feature store, on a cluster.
"""

from __future__ import annotations

import click

from daskloc.cli._console import expected_errors, fail
from daskloc.cli._options import CLUSTER_OPTION, DASHBOARD_OPTION, _check_dashboard_cluster

#: Below this many features a local link runs in this process: starting a cluster and
#: importing trackpy in each worker (about 4 s: it imports pims and matplotlib) costs
#: more than linking in parallel saves (measured on the bulk-water movie's 292,258
#: features: 4 s to link them in one process).
IN_PROCESS_FEATURES = 1_000_000


def _floats(text, what):
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"{text!r}: give a number or one per axis, e.g. 5 or 2,5,5",
                                 param_hint=what) from None
    return values[0] if len(values) == 1 else values


def _summary(info, seconds):
    if "path" not in info:  # several videos
        lines = [f"  {name}: {v['n_features']} features, {v['n_particles']} trajectories"
                 for name, v in info.items()]
        n = sum(v["n_particles"] or 0 for v in info.values())
        f = sum(v["n_features"] for v in info.values())
        return "\n".join(lines + [f"{len(info)} videos: {f} features in {n} trajectories, "
                                  f"{seconds:.1f} s"])
    done = "" if info["complete"] else (
        f" (partial: {info['chunks_complete']} of {info['chunks_total']} chunks)")
    return (f"{info['frames_complete']} frames, {info['n_features']} features in "
            f"{info['n_particles']} trajectories{done}; {info['segments']} segment"
            + ("s" if info["segments"] != 1 else "")
            + (f" ({info['relinked']} linked again with a longer warm-up)"
               if info["relinked"] else "")
            + f", {seconds:.1f} s -> {info['path']}")


@click.command("link")
@click.argument("store")
@click.option("--search-range", "-s", required=True,
              help="Farthest a feature moves between frames, pixels: one number, or one "
                   "per position column (e.g. 2,5,5 for z,y,x).")
@click.option("--memory", "-m", type=click.IntRange(min=0), default=0, show_default=True,
              help="Frames a feature may vanish for and continue its trajectory.")
@click.option("--adaptive-stop", type=float, default=None,
              help="Shrink the search range of too-large subnetworks down to this (pixels).")
@click.option("--adaptive-step", type=float, default=0.95, show_default=True,
              help="Factor the adaptive search shrinks the search range by.")
@click.option("--pos-columns", default=None,
              help="Position columns, comma-separated [y,x; z,y,x for 3-D features].")
@click.option("--video", "videos", multiple=True,
              help="Of a many-video store: link only this video (repeat for several).")
@click.option("--out", "-o", default=None,
              help="Store for the trajectories [STORE itself, table '_trajectories'].")
@click.option("--partial", is_flag=True,
              help="Link a store still being written up to its first missing chunk.")
@click.option("--overwrite", is_flag=True,
              help="Replace trajectories linked with other parameters.")
@click.option("--segments", type=click.IntRange(min=1), default=None,
              help="Segments linked in parallel [two per worker].")
@CLUSTER_OPTION
@click.option("--cluster-config", type=click.Path(dir_okay=False), default=None,
              help="Dask config YAML for the cluster, merged over ~/.config/dask for this run.")
@click.option("--workers", type=int, default=None, help="Local worker processes [one per core].")
@DASHBOARD_OPTION
def link(store, search_range, memory, adaptive_stop, adaptive_step, pos_columns, videos, out,
         partial, overwrite, segments, cluster, cluster_config, workers, dashboard_address):
    """Link the features of STORE into trajectories (trackpy's linker), in parallel.

    The trajectories (the features plus an int64 'particle' column) stream into the
    table '_trajectories' of STORE (or of --out), chunk by chunk: read them while the
    link runs with daskloc.read_features(STORE, trajectories=True). They equal one
    sequential trackpy.link run. A link that was stopped resumes; other parameters on
    an existing result are refused unless --overwrite.
    """
    import contextlib
    import time

    from rich.console import Console

    from daskloc._runner import _Progress, dashboard_text
    from daskloc.cluster import make_client
    from daskloc.link import LinkError, check_link_params
    from daskloc.link import link as run_link
    from daskloc.stores import store_info

    if workers is not None and "://" in cluster:
        raise click.UsageError("--workers sizes a cluster daskloc starts; "
                               "a running scheduler has its own")
    _check_dashboard_cluster(dashboard_address, cluster)
    sr = _floats(search_range, "--search-range")
    pos = None if pos_columns is None else [c.strip() for c in pos_columns.split(",")]
    console = Console(stderr=True)
    try:
        # the values first: a cluster started for bad ones would be started for nothing
        check_link_params(sr, memory, adaptive_stop, adaptive_step)
        size = store_info(store, video=videos[0] if len(videos) == 1 else None)["n_features"]
        if cluster == "local" and workers is None and dashboard_address is None and \
                size < IN_PROCESS_FEATURES:
            connect = contextlib.nullcontext(None)
            console.print(f"dask: this process ({size:,} features: a cluster's start would "
                          "cost more than it saves; --workers N starts one)", markup=False,
                          soft_wrap=True)
        else:
            connect = make_client(cluster, workers=workers, config=cluster_config,
                                  dashboard_address=dashboard_address)
        start = time.perf_counter()
        with connect as client:
            if client is not None:
                console.print(dashboard_text(client, cluster), markup=False, soft_wrap=True)
            progress = _Progress(console, label="link", what="linked")
            try:
                info = run_link(store, sr, memory=memory, adaptive_stop=adaptive_stop,
                                adaptive_step=adaptive_step, pos_columns=pos,
                                video=list(videos) or None, out=out,
                                client=client if client is not None else "local-threads",
                                partial=partial, overwrite=overwrite, segments=segments,
                                progress=progress)
            finally:
                progress.stop()
        seconds = time.perf_counter() - start
    except click.ClickException:
        raise
    except (LinkError, *expected_errors()) as exc:
        fail(exc)
    click.echo(_summary(info, seconds))
