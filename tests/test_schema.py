"""One schema: the feature columns daskloc defines are trackpy's, in every case trackpy
supports (checked live against trackpy.locate), and every store declares them from it."""

import warnings

import numpy as np
import pytest

from daskloc.schema import column, column_attrs, empty_features, feature_columns, feature_dtypes

trackpy = pytest.importorskip("trackpy")


def _spots(shape, sigma):
    rng = np.random.default_rng(1)
    grid = np.indices(shape).astype(float)
    img = np.zeros(shape)
    centre = [s / 2 + 0.3 for s in shape]
    img += 200 * np.exp(-sum((g - c) ** 2 / (2 * s ** 2)
                             for g, c, s in zip(grid, centre, sigma)))
    return (img + rng.normal(10, 1, shape)).clip(0, 255).astype(np.uint8)


@pytest.mark.parametrize("characterize", [True, False])
@pytest.mark.parametrize("shape, diameter, anisotropic", [
    ((64, 64), 9, False),
    ((64, 64), (7, 11), True),
    ((24, 48, 48), 9, False),
    ((24, 48, 48), (7, 9, 9), True),
])
def test_columns_and_dtypes_are_trackpys(shape, diameter, anisotropic, characterize):
    image = _spots(shape, [d / 4 for d in np.broadcast_to(diameter, len(shape))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = trackpy.locate(image, diameter, characterize=characterize)
    ndim = len(shape)
    assert feature_columns(characterize, ndim=ndim, anisotropic=anisotropic) == tuple(f.columns)
    dtypes = feature_dtypes(characterize, ndim=ndim, anisotropic=anisotropic, with_frame=False)
    assert dtypes == {c: str(t) for c, t in f.dtypes.items()}


def test_the_pipelines_columns_end_with_frame_as_trackpy_batch_gives_them():
    assert feature_dtypes()["frame"] == "int64" and list(feature_dtypes())[-1] == "frame"
    empty = empty_features(with_frame=True)
    assert len(empty) == 0 and list(empty.columns) == list(feature_columns(with_frame=True))


def test_per_axis_columns_have_the_stems_unit_and_unknown_names_say_so():
    assert column("ep_z").unit == column("ep").unit == "pixel"
    assert "along z" in column("size_z").description
    with pytest.raises(KeyError, match="not a feature column"):
        column("mass_x")
    assert column_attrs("nonsense") == {}
    with pytest.raises(ValueError, match="2-D .* or 3-D"):
        feature_columns(ndim=4)


def test_every_store_declares_the_schemas_columns():
    from daskloc.stores import sql, zarr

    assert sql.FLOAT_COLUMNS == feature_columns()
    assert zarr.column_attrs is column_attrs
