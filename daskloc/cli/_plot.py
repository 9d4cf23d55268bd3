"""``daskloc plot``: pictures of one frame's features (PNG).
"""

from __future__ import annotations

import click

from daskloc.cli._console import expected_errors, fail
from daskloc.cli._options import parse_channel


@click.command()
@click.argument("store")
@click.option("--video", default=None,
              help="The video the features came from [the path recorded in STORE].")
@click.option("--frame", type=int, default=None,
              help="Frame number to plot [the first located frame].")
@click.option("--out", "-o", required=True,
              help="PNG to write; with --kind all, the stem of four PNGs.")
@click.option("--kind", type=click.Choice(["annotate", "mass", "size", "subpx", "all"]),
              default="annotate", show_default=True, help="Which picture.")
@click.option("--channel", default=None,
              help="Colour channel of the video, or 'grey' [as recorded in STORE].")
@click.option("--table", default=None,
              help="Result set to read, in a STORE holding several (video=NAME).")
@click.option("--dpi", type=int, default=100, show_default=True,
              help="Pixels per inch of the PNGs.")
@click.option("--z", "z", type=int, default=None,
              help="For 3-D volumes: the plane --kind annotate draws [the middle one].")
def plot(store, video, frame, out, kind, channel, table, dpi, z):
    """Plot one frame's features from STORE to PNG: circles on the frame, mass, size, sub-pixel.

    \b
    annotate  the frame with a circle (the locate diameter) on every feature
    mass      histogram of mass (where to put --minmass)
    size      size against mass (trackpy's mass_size)
    subpx     histograms of x % 1 and y % 1: flat if --diameter is large enough
    all       the four, as OUT's stem + -annotate, -mass, -size, -subpx (e.g. f-mass.png)
    """
    from daskloc.plot import save_plots

    try:
        written = save_plots(store, out, frame=frame, video=video, kind=kind,
                             channel=parse_channel(channel), table=table, dpi=dpi, z=z)
    except expected_errors() as exc:
        fail(exc)
    for path in written.values():
        click.echo(str(path))
