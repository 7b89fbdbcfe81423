"""Camera images -> a DNN's input: decode the encoding, resize, normalise, lay out as NCHW.

``to_input(image, input_shape)`` takes an :class:`Image` (the fields of a sensor_msgs/Image,
without ROS) and returns the float32 array of ``input_shape`` (N=1, C, H, W) that
``Runtime.submit`` expects. Accepted encodings: ``rgb8``, ``bgr8`` and ``mono8`` (a mono image
feeding a 3-channel DNN is repeated over the channels). Anything else, a zero-sized image, a
row stride shorter than a row or data shorter than ``step * height`` is a FrameError naming what
was found and what is accepted: only that DNN's frame fails.

Resizing is nearest-neighbour (index arrays, no interpolation library); normalisation is the
ImageNet mean and standard deviation of the RGB channels, on values scaled to 0-1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Tuple, Union

import numpy as np

from hax_conn_core.errors import FrameError

#: encoding -> channels per pixel.
ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
#: ImageNet statistics of R, G, B on 0-1 values (torchvision's reference transforms).
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Image:
    """An image as sensor_msgs/Image carries it. ``step``: bytes per row (>= width * channels);
    ``data``: at least ``step * height`` bytes, row-major."""

    encoding: str
    height: int
    width: int
    step: int
    data: Union[bytes, bytearray, memoryview, np.ndarray, Sequence[int]]


def accepted() -> str:
    return ", ".join(ENCODINGS)


def to_input(image: Image, input_shape: Tuple[int, ...], name: str = "") -> np.ndarray:
    """``image`` as a float32 array of ``input_shape`` (1, C, H, W); FrameError if unusable.

    ``name`` (the DNN) starts the error message when given.
    """
    lead = f"{name}: " if name else ""
    pixels = _decode(image, lead)
    if len(input_shape) != 4 or input_shape[0] != 1 or input_shape[1] not in (1, 3):
        raise FrameError(f"{lead}input shape {tuple(input_shape)}: expected (1, C, H, W) "
                         f"with C 1 or 3")
    _, channels, height, width = (int(v) for v in input_shape)
    if pixels.shape[:2] != (height, width):
        rows = (np.arange(height) * pixels.shape[0]) // height
        cols = (np.arange(width) * pixels.shape[1]) // width
        pixels = pixels[rows][:, cols]
    rgb = pixels.astype(np.float32) * np.float32(1.0 / 255.0)  # H, W, 3 (or 1)
    if channels == 1:
        gray = rgb.mean(axis=2, keepdims=True) if rgb.shape[2] == 3 else rgb
        out = (gray - np.float32(np.mean(MEAN_RGB))) / np.float32(np.mean(STD_RGB))
    else:
        if rgb.shape[2] == 1:
            rgb = np.repeat(rgb, 3, axis=2)
        out = (rgb - np.asarray(MEAN_RGB, np.float32)) / np.asarray(STD_RGB, np.float32)
    return np.ascontiguousarray(out.transpose(2, 0, 1)[np.newaxis], dtype=np.float32)


def _decode(image: Image, lead: str) -> np.ndarray:
    """The pixels as a uint8 array (H, W, C) in RGB order (or one gray channel)."""
    channels = ENCODINGS.get(image.encoding)
    if channels is None:
        raise FrameError(f"{lead}image encoding {image.encoding!r} is not supported: expected "
                         f"one of {accepted()}")
    height, width, step = int(image.height), int(image.width), int(image.step)
    if height <= 0 or width <= 0:
        raise FrameError(f"{lead}image of size {width}x{height}: expected a width and a "
                         f"height of at least 1")
    row = width * channels
    if step < row:
        raise FrameError(f"{lead}image row step {step} bytes is shorter than a row of "
                         f"{width} {image.encoding} pixels ({row} bytes)")
    data = image.data
    if isinstance(data, np.ndarray):
        buffer = data.reshape(-1).view(np.uint8)
    else:
        buffer = np.frombuffer(memoryview(bytes(data) if isinstance(data, list) else data),
                               dtype=np.uint8)
    need = step * (height - 1) + row
    if buffer.size < need:
        raise FrameError(f"{lead}image data truncated: {buffer.size} bytes for a "
                         f"{width}x{height} {image.encoding} image with row step {step} "
                         f"(expected {step * height})")
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, row), strides=(step, 1))
    pixels = rows.reshape(height, width, channels)
    if image.encoding == "bgr8":
        pixels = pixels[:, :, ::-1]
    return pixels
