"""``daskloc demo``: a synthetic video located, with the accuracy reported.
"""

from __future__ import annotations

import click

from daskloc.cli._console import expected_errors, fail


@click.command()
@click.option("--out", "-o", default="daskloc-demo", show_default=True,
              type=click.Path(file_okay=False),
              help="Folder for the synthetic video and its features.")
@click.option("--frames", "n_frames", type=int, default=200, show_default=True,
              help="Frames to generate.")
@click.option("--particles", type=int, default=40, show_default=True,
              help="Particles in the video.")
@click.option("--workers", type=int, default=None, help="Local worker processes [one per core].")
def demo(out, n_frames, particles, workers):
    """Generate a synthetic video with known particles, locate them, report accuracy."""
    from daskloc.demo import run_demo

    try:
        run_demo(out, n_frames=n_frames, n_particles=particles, workers=workers)
    except expected_errors() as exc:
        fail(exc)
