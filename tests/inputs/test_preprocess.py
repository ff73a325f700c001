"""Preprocessing (``inputs/_preprocess.py``): ``PreprocessConfig``,
``apply_geometry`` and ``match_channels``."""

import pytest
import torch

from sktransfer.inputs import PreprocessConfig, apply_geometry, match_channels


# -- PreprocessConfig, apply_geometry, match_channels ----------------------


@pytest.mark.parametrize(
    "shape, expected",
    [((3, 20, 40), (16, 32)), ((3, 40, 20), (32, 16)), ((3, 16, 24), (16, 24)),
     ((2, 1, 30, 45), (16, 24))],
)
def test_shorter_side_resize_keeps_aspect_ratio(shape, expected):
    images = torch.rand(shape)
    out = apply_geometry(images, PreprocessConfig(resize_size=16))
    assert tuple(out.shape) == shape[:-2] + expected


def test_resize_to_exact_size_and_centre_crop():
    images = torch.rand(2, 3, 20, 40)
    out = apply_geometry(images, PreprocessConfig(resize_size=(10, 12)))
    assert tuple(out.shape) == (2, 3, 10, 12)
    # A centre crop without resize takes the middle pixels.
    crop = apply_geometry(images, PreprocessConfig(crop_size=(10, 20)))
    torch.testing.assert_close(crop, images[..., 5:15, 10:30])
    # Resize the shorter side to 16, then crop the centre 16x16.
    both = apply_geometry(images, PreprocessConfig(resize_size=16, crop_size=16))
    assert tuple(both.shape) == (2, 3, 16, 16)
    resized = apply_geometry(images, PreprocessConfig(resize_size=16))
    torch.testing.assert_close(both, resized[..., :, 8:24])
    # No geometry: the same tensor back.
    assert apply_geometry(images, PreprocessConfig()) is images


def test_uint8_images_resize():
    images = torch.randint(0, 256, (3, 20, 40), dtype=torch.uint8)
    out = apply_geometry(images, PreprocessConfig(resize_size=10, crop_size=10))
    assert out.dtype == torch.uint8 and tuple(out.shape) == (3, 10, 10)


def test_preprocess_config_with_image_size():
    base = PreprocessConfig(crop_size=224, resize_size=256, interpolation="bicubic")
    assert base.crop_size == (224, 224) and base.resize_size == 256
    assert base.output_size == (224, 224) and base.has_geometry

    square = base.with_image_size(32)
    assert square.resize_size == 32 and square.crop_size == (32, 32)
    assert square.output_size == (32, 32)
    assert square.interpolation == "bicubic" and square.mean == base.mean
    images = torch.rand(3, 40, 60)
    assert tuple(apply_geometry(images, square).shape) == (3, 32, 32)

    rect = base.with_image_size((24, 40))
    assert rect.resize_size == (24, 40) and rect.crop_size is None
    assert rect.output_size == (24, 40)
    assert tuple(apply_geometry(images, rect).shape) == (3, 24, 40)

    assert base.with_image_size(None) is base
    plain = PreprocessConfig()
    assert plain.output_size is None and not plain.has_geometry
    assert PreprocessConfig(resize_size=[10, 12]).resize_size == (10, 12)


def test_preprocess_config_refuses_unknown_interpolation():
    with pytest.raises(ValueError, match="interpolation='lanczos'"):
        PreprocessConfig(interpolation="lanczos")


def test_match_channels():
    grey = torch.rand(2, 1, 4, 5)
    rgb = match_channels(grey, 3)
    assert tuple(rgb.shape) == (2, 3, 4, 5)
    for c in range(3):
        torch.testing.assert_close(rgb[:, c], grey[:, 0])

    rgba = torch.rand(2, 4, 4, 5)
    torch.testing.assert_close(match_channels(rgba, 3), rgba[:, :3])
    single = torch.rand(4, 4, 5)  # unbatched (C, H, W)
    torch.testing.assert_close(match_channels(single, 3), single[:3])

    colour = torch.rand(2, 3, 4, 5)
    luma = match_channels(colour, 1)
    assert tuple(luma.shape) == (2, 1, 4, 5)
    expected = 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2]
    torch.testing.assert_close(luma[:, 0], expected)
    torch.testing.assert_close(match_channels(rgba, 1)[:, 0],
                               0.299 * rgba[:, 0] + 0.587 * rgba[:, 1] + 0.114 * rgba[:, 2])
    assert match_channels(colour, 3) is colour
    with pytest.raises(ValueError, match="2 channels"):
        match_channels(torch.rand(2, 2, 4, 5), 3)
