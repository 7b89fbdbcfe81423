"""Camera images -> DNN inputs: encodings, resizing, normalisation, refusals."""

import array

import numpy as np
import pytest

from hax_conn_core.errors import FrameError
from hax_conn_core.preprocess import Image, MEAN_RGB, STD_RGB, to_input

SHAPE = (1, 3, 224, 224)


def _image(encoding, height, width, channels, fill=None, pad=0):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    if fill is not None:
        pixels[...] = fill
    rows = np.zeros((height, width * channels + pad), np.uint8)
    rows[:, :width * channels] = pixels.reshape(height, -1)
    return Image(encoding, height, width, width * channels + pad, rows.tobytes()), pixels


def _normalised(rgb):
    return (rgb / 255.0 - np.asarray(MEAN_RGB)) / np.asarray(STD_RGB)


def test_rgb8_same_size_is_normalised_nchw():
    image, pixels = _image("rgb8", 224, 224, 3)
    out = to_input(image, SHAPE)
    assert out.shape == SHAPE and out.dtype == np.float32 and out.flags.c_contiguous
    np.testing.assert_allclose(out[0].transpose(1, 2, 0), _normalised(pixels), rtol=1e-5,
                               atol=1e-5)


def test_bgr8_equals_rgb8_of_the_swapped_channels():
    image, pixels = _image("bgr8", 224, 224, 3)
    rgb = Image("rgb8", 224, 224, 224 * 3, pixels[:, :, ::-1].tobytes())
    np.testing.assert_array_equal(to_input(image, SHAPE), to_input(rgb, SHAPE))


def test_mono8_is_repeated_over_three_channels():
    image, pixels = _image("mono8", 224, 224, 1)
    out = to_input(image, SHAPE)
    rgb = np.repeat(pixels, 3, axis=2)
    np.testing.assert_allclose(out[0].transpose(1, 2, 0), _normalised(rgb), rtol=1e-5,
                               atol=1e-5)


def test_resize_nearest_keeps_a_uniform_image_and_its_corners():
    image, _ = _image("rgb8", 480, 640, 3, fill=(255, 0, 128))
    out = to_input(image, SHAPE)
    expected = _normalised(np.asarray([255.0, 0.0, 128.0]))
    for c in range(3):
        np.testing.assert_allclose(out[0, c], expected[c], rtol=1e-5)
    small, pixels = _image("rgb8", 2, 2, 3)
    out = to_input(small, (1, 3, 4, 4))
    np.testing.assert_allclose(out[0, :, 3, 3], _normalised(pixels[1, 1].astype(float)),
                               rtol=1e-5)


def test_row_padding_and_array_data_as_rclpy_gives_it():
    image, pixels = _image("rgb8", 10, 12, 3, pad=4)
    as_array = Image(image.encoding, image.height, image.width, image.step,
                     array.array("B", image.data))
    out = to_input(as_array, (1, 3, 10, 12))
    np.testing.assert_allclose(out[0].transpose(1, 2, 0), _normalised(pixels), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("image, match", [
    (Image("rgba8", 4, 4, 16, bytes(64)),
     r"encoding 'rgba8' is not supported: expected one of rgb8, bgr8, mono8"),
    (Image("16UC1", 4, 4, 8, bytes(32)), r"'16UC1' is not supported"),
    (Image("rgb8", 0, 4, 12, b""), r"size 4x0: expected a width and a height of at least 1"),
    (Image("rgb8", 4, 0, 0, b""), r"size 0x4"),
    (Image("rgb8", 4, 4, 12, bytes(47)), r"truncated: 47 bytes .* \(expected 48\)"),
    (Image("rgb8", 4, 4, 12, b""), r"truncated: 0 bytes"),
    (Image("rgb8", 4, 4, 8, bytes(48)), r"row step 8 bytes is shorter than a row of 4 rgb8"),
])
def test_bad_images_are_frame_errors(image, match):
    with pytest.raises(FrameError, match=match):
        to_input(image, SHAPE, name="alexnet")
    with pytest.raises(FrameError, match="^alexnet: "):
        to_input(image, SHAPE, name="alexnet")


def _nearest(pixels, height, width):
    rows = [y * pixels.shape[0] // height for y in range(height)]
    cols = [x * pixels.shape[1] // width for x in range(width)]
    return pixels[rows][:, cols]


@pytest.mark.parametrize("encoding, shape", [
    ("rgb8", (1, 3, 29, 61)), ("bgr8", (1, 3, 64, 20)), ("mono8", (1, 3, 50, 50)),
    ("mono8", (1, 1, 17, 90)), ("rgb8", (1, 1, 30, 30)), ("bgr8", (1, 1, 40, 7)),
])
def test_resized_padded_images_match_a_float_reference(encoding, shape):
    channels = 1 if encoding == "mono8" else 3
    image, pixels = _image(encoding, 37, 53, channels, pad=5)
    rgb = pixels[:, :, ::-1] if encoding == "bgr8" else pixels
    picked = _nearest(rgb.astype(float), shape[2], shape[3])
    if shape[1] == 1:
        gray = picked.mean(axis=2, keepdims=True)
        expected = (gray / 255.0 - np.mean(MEAN_RGB)) / np.mean(STD_RGB)
    else:
        expected = _normalised(np.repeat(picked, 3, axis=2) if channels == 1 else picked)
    for _ in range(2):  # the second call reuses the precomputed plan
        out = to_input(image, shape)
        assert out.shape == shape and out.dtype == np.float32 and out.flags.c_contiguous
        np.testing.assert_allclose(out[0].transpose(1, 2, 0), expected, rtol=1e-5, atol=1e-5)


def test_one_geometry_then_another_gives_each_its_own_result():
    small, small_pixels = _image("rgb8", 4, 4, 3)
    large, large_pixels = _image("rgb8", 8, 8, 3, fill=7)
    for image, pixels in ((small, small_pixels), (large, large_pixels), (small, small_pixels)):
        out = to_input(image, (1, 3, 4, 4))
        np.testing.assert_allclose(out[0].transpose(1, 2, 0),
                                   _normalised(_nearest(pixels.astype(float), 4, 4)),
                                   rtol=1e-5, atol=1e-5)


def test_a_truncated_image_of_a_geometry_seen_before_is_still_refused():
    image, _ = _image("rgb8", 6, 5, 3, pad=2)
    to_input(image, (1, 3, 6, 5))  # the plan of this geometry is made and kept
    short = Image("rgb8", 6, 5, image.step, image.data[:image.step * 5 + 14])
    with pytest.raises(FrameError, match=r"^alexnet: image data truncated: 99 bytes for a 5x6 "
                                         r"rgb8 image with row step 17 \(expected 102\)"):
        to_input(short, (1, 3, 6, 5), name="alexnet")
    to_input(Image("rgb8", 6, 5, image.step, image.data[:image.step * 5 + 15]), (1, 3, 6, 5))
