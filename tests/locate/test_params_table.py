"""The locate parameter table is the one list of parameters: the kernel's signature,
normalize_params and the CLI's options all follow it."""

import inspect

import click
import pytest

from daskloc import locate_frame
from daskloc.cli import main
from daskloc.locate import PARAM_NAMES, PARAMETERS, normalize_params


def test_locate_frames_signature_is_the_table():
    sig = inspect.signature(locate_frame).parameters
    names = [n for n, p in sig.items() if n != "image" and p.kind != p.VAR_KEYWORD]
    assert names == [*PARAM_NAMES, "engine"]  # then the one execution option
    for p in PARAMETERS:
        default = sig[p.name].default
        assert (default is inspect.Parameter.empty) if p.required else default == p.default


def test_normalize_params_fills_every_parameter_and_refuses_unknown_names():
    out = normalize_params(11)
    assert list(out) == list(PARAM_NAMES)
    assert out["separation"] == 12 and out["smoothing_size"] == 11 and out["minmass"] == 0
    with pytest.raises(TypeError, match="unknown locate parameter.*min_mass"):
        normalize_params(11, min_mass=3)


def test_every_parameter_is_a_cli_option_of_locate_with_the_tables_default():
    cmd = main.commands["locate"]
    opts = {p.name: p for p in cmd.params if isinstance(p, click.Option)}
    for p in PARAMETERS:
        opt = opts[p.name]
        assert opt.required == p.required
        if not p.required:
            assert opt.default == p.default, p.name
        assert ("--" + p.name.replace("_", "-")) in opt.opts
        if p.type is bool:
            assert opt.is_flag and opt.secondary_opts == ["--no-" + p.name.replace("_", "-")]
