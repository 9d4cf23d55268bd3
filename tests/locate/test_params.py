import numpy as np
import pytest

from daskloc.locate import locate_frame, locate_stack, normalize_params


@pytest.mark.parametrize("diameter,fix", [(10, "round up to 11"), (0, "positive"),
                                          (-3, "positive"), (7.5, "round up to 9")])
def test_bad_diameter_names_the_fix(diameter, fix):
    with pytest.raises(ValueError, match=fix):
        normalize_params(diameter)
    with pytest.raises(ValueError, match="diameter"):
        locate_frame(np.zeros((32, 32), np.uint8), diameter)


def test_defaults_follow_trackpy():
    p = normalize_params(11)
    assert p["separation"] == 12 and p["smoothing_size"] == 11 and p["minmass"] == 0
    assert p["percentile"] == 64 and p["noise_size"] == 1 and p["max_iterations"] == 10


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(smoothing_size=10), "odd integer"),
        (dict(noise_size=12, smoothing_size=11), "larger than noise_size"),
        (dict(percentile=120), "between 0 and 100"),
        (dict(topn=2.5), "topn"),
        (dict(separation=-1), "separation"),
        (dict(max_iterations=-1), "max_iterations"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        normalize_params(11, **kwargs)


def test_non_numeric_parameter():
    with pytest.raises(TypeError, match="minmass"):
        normalize_params(11, minmass="20")


def test_colour_frame_is_rejected_with_advice():
    with pytest.raises(ValueError, match="channel"):
        locate_frame(np.zeros((32, 32, 3), np.uint8), 9)


def test_stack_tags_frames_and_keeps_schema():
    yy, xx = np.mgrid[:64, :64]
    spot = (200 * np.exp(-((yy - 30.3) ** 2 + (xx - 20.6) ** 2) / 8)).astype(np.uint8)
    stack = np.stack([spot, np.zeros_like(spot), spot])
    out = locate_stack(stack, 9, frame_numbers=[100, 101, 102])
    assert out.frame.tolist() == [100, 102]
    assert out.frame.dtype == np.int64
    single = locate_frame(spot, 9)
    np.testing.assert_array_equal(out[out.frame == 102].drop(columns="frame").to_numpy(),
                                  single.to_numpy())
    empty = locate_stack(stack[1:2], 9)
    assert len(empty) == 0 and list(empty.columns) == list(out.columns)
    assert (empty.dtypes == out.dtypes).all()
    with pytest.raises(ValueError, match="frame_numbers"):
        locate_stack(stack, 9, frame_numbers=[1, 2])
    with pytest.raises(ValueError, match="n_frames"):
        locate_stack(spot, 9)
