"""The ``daskloc`` command: a thin shell over the Python API. Its nine commands:

    daskloc locate VIDEO... --diameter 11 --minmass 20 --invert --out features.parquet
    daskloc link features.parquet --search-range 5 --memory 3
    daskloc info features.parquet
    daskloc watch features.parquet
    daskloc probe recording.ome.tif
    daskloc export features.parquet features.csv
    daskloc plot features.parquet --frame 100 --kind all --out f100.png
    daskloc pixel-stats VIDEO --out stats.zarr
    daskloc demo

One module per command (``_locate``, ``_link``, ``_stats``, ``_info``, ``_watch``, ``_probe``,
``_export``, ``_plot``, ``_demo``); the options they share in ``_options``; errors printed
in one place, ``_console``. The commands import what they run (the cluster, the readers, matplotlib,
...) inside their functions, when they run: that keeps ``daskloc --help`` fast.
"""

from __future__ import annotations

import click

from daskloc._utils import skip_final_collections
from daskloc.cli._console import expected_errors
from daskloc.cli._demo import demo
from daskloc.cli._export import export
from daskloc.cli._info import info
from daskloc.cli._link import link
from daskloc.cli._locate import locate
from daskloc.cli._options import CHUNKS, DASHBOARD_OPTION, parse_channel, parse_frames
from daskloc.cli._plot import plot
from daskloc.cli._probe import probe
from daskloc.cli._stats import pixel_stats
from daskloc.cli._watch import watch

__all__ = ["CHUNKS", "DASHBOARD_OPTION", "demo", "expected_errors", "export", "info", "link",
           "locate", "main", "parse_channel", "parse_frames", "pixel_stats", "plot", "probe",
           "watch"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="daskloc")
def main():
    """Find particles in microscopy videos (Crocker-Grier locate, as in trackpy) on Dask."""
    # The command's last act is closing what it opened; the interpreter's final garbage
    # collections after that cost half a second and collect nothing anyone needs.
    skip_final_collections()


for _command in (locate, link, pixel_stats, info, watch, probe, export, plot, demo):
    main.add_command(_command)
del _command
