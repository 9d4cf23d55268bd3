"""Options and parameter types shared by the commands: the locate parameters (from
:data:`daskloc.locate.PARAMETERS`), --chunk-frames, --frames, --channel, --cluster and the
cluster's --dashboard-address.
"""

from __future__ import annotations

import click

from daskloc.locate import PARAMETERS, PER_AXIS


class _Chunks(click.ParamType):
    """``--chunk-frames``: a positive int or ``auto``."""

    name = "N|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a number of frames; use a positive int or 'auto'",
                      param, ctx)
        if n < 1:
            self.fail(f"{n} frames per chunk; use a positive int or 'auto'", param, ctx)
        return n


CHUNKS = _Chunks()


def parse_frames(text):
    """Parse ``--frames``: ``A:B`` or ``A:B:STEP`` (a slice), ``A,B,C`` (a list) or ``N``.

    Parameters
    ----------
    text : str or None

    Returns
    -------
    slice, list of int, or None

    Raises
    ------
    click.BadParameter
        Anything else.
    """
    if text is None:
        return None
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            return slice(*parts)
        return [int(p) for p in text.split(",")]
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a frame range; use START:STOP (e.g. 0:480), START:STOP:STEP, or 1,5,9"
        ) from None


def parse_channel(text):
    """Parse ``--channel``: an integer or ``grey``/``gray``; None keeps the source as is."""
    if text is None:
        return None
    if text.lower() in ("grey", "gray"):
        return "grey"
    try:
        return int(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a channel number (0, 1, 2) or 'grey'") from None


#: The options of the commands that run on a cluster (locate, pixel-stats), the same in each.
CHANNEL_OPTION = click.option("--channel", default=None,
                              help="Colour channel number, or 'grey'. Required for colour video.")
CHUNK_FRAMES_OPTION = click.option(
    "--chunk-frames", type=CHUNKS, default="auto", show_default=True,
    help="Frames per chunk (task), or 'auto' (movies: whole keyframe groups, "
         "<= 256 frames; else 64).")
CLUSTER_OPTION = click.option(
    "--cluster", default="local", show_default=True,
    help="Where to run: local, slurm, kubernetes, or tcp://ADDRESS of a running scheduler.")


class PerAxis(click.ParamType):
    """A parameter of :data:`daskloc.locate.PER_AXIS`: ``N`` or one value per axis,
    slowest first, comma-separated (``5,11,11`` for ``z, y, x``; ``7,11`` for ``y, x``).

    Parameters
    ----------
    number : type
        ``int`` or ``float``: the type of each value.
    """

    def __init__(self, number):
        self.number = number
        self.name = "N|N,N,N"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, (int, float, tuple)):
            return value
        parts = [v.strip() for v in str(value).split(",")]
        try:
            values = tuple(self.number(v) for v in parts)
        except ValueError:
            self.fail(f"{value!r} is not {'an integer' if self.number is int else 'a number'} "
                      "or one per axis: give N, or comma-separated values slowest axis first "
                      "(z,y,x: 5,11,11; y,x: 7,11)", param, ctx)
        if len(values) == 1:
            return values[0]
        if len(values) not in (2, 3):
            self.fail(f"{value!r} has {len(values)} values: give one, or one per axis (y,x: "
                      "2 values; z,y,x: 3 values)", param, ctx)
        return values


#: Said after the help of each per-axis option (from PARAMETERS, written for one value).
PER_AXIS_HELP = " One value, or one per axis slowest first: Z,Y,X (e.g. 5,11,11) or Y,X."


def _param_option(p):
    """The click option of one locate parameter (daskloc.locate.PARAMETERS)."""
    flag = "--" + p.name.replace("_", "-")
    if p.type is bool:
        return click.option(f"{flag}/--no-{flag[2:]}", default=p.default,
                            show_default=p.default is True, help=p.help)
    decls = (flag, "-d") if p.name == "diameter" else (flag,)
    kind, text = p.type, p.help
    if p.name in PER_AXIS:
        kind, text = PerAxis(p.type), p.help + PER_AXIS_HELP
    return click.option(*decls, type=kind, default=p.default, required=p.required,
                        show_default=p.default is not None, help=text)


_PARAMS = [_param_option(p) for p in PARAMETERS]


def _with_params(func):
    for option in reversed(_PARAMS):
        func = option(func)
    return func


def _dashboard_address(ctx, param, value):
    """``--dashboard-address``: checked before anything starts (HOST:PORT of this machine)."""
    if value is None:
        return None
    from daskloc.cluster import check_dashboard_address

    try:
        return check_dashboard_address(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


DASHBOARD_OPTION = click.option(
    "--dashboard-address", default=None, metavar="HOST:PORT", callback=_dashboard_address,
    help="Where the dashboard of the cluster daskloc starts (local, slurm) listens "
         "[127.0.0.1:8787: this machine only; a free port if 8787 is taken]. "
         "0.0.0.0:8787 or :8787 opens it to the network: the dashboard has NO LOGIN and "
         "shows everything about the job (file names, tasks, worker logs) to whoever "
         "reaches it; prefer an SSH tunnel (ssh -L 8787:localhost:8787 HOST). Not with "
         "--cluster tcp://... or kubernetes, whose schedulers serve their own.",
)


def _check_dashboard_cluster(dashboard_address, cluster):
    """--dashboard-address only for the clusters daskloc starts a scheduler of here."""
    if dashboard_address is None:
        return
    if "://" in cluster:
        raise click.UsageError(
            "--dashboard-address sets the dashboard of a cluster daskloc starts; the running "
            f"scheduler {cluster} serves its own (set it where that scheduler is started: "
            "dask scheduler --dashboard-address 127.0.0.1:8787)"
        )
    if cluster == "kubernetes":
        raise click.UsageError(
            "--dashboard-address cannot move the Kubernetes dashboard: it runs in the "
            "scheduler pod (port 8787 of its Service); reach it with kubectl port-forward"
        )


#: ``--level``: the resolution level of a multiscale image (locate, pixel-stats, probe).
LEVEL_OPTION = click.option(
    "--level", type=int, default=None,
    help="For a multiscale image (OME-Zarr): the resolution level (0: full, the default).")


def one_position(videos, position):
    """The :class:`~daskloc.video.Position` ``--position`` names in the one VIDEO."""
    from daskloc._utils import is_glob
    from daskloc.video import pick_position, positions

    if len(videos) != 1 or is_glob(videos[0]):
        raise click.UsageError("--position picks a position of ONE multi-position file")
    found = positions(videos[0])
    if found is None:
        raise click.UsageError(f"--position is for a file holding several positions "
                               f"(OME-TIFF series, CZI scenes); {videos[0]} holds one")
    names = [p.name for p in found]
    if position not in names and position.lstrip("-").isdigit():
        position = int(position)  # a name first: a position may be named "1"
    try:
        return found[pick_position(names, position, videos[0])]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
