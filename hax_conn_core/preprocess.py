"""Camera images -> a DNN's input: decode the encoding, resize, normalise, lay out as NCHW.

``to_input(image, input_shape)`` takes an :class:`Image` (the fields of a sensor_msgs/Image,
without ROS) and returns the float32 array of ``input_shape`` (N=1, C, H, W) that
``Runtime.submit`` expects. Accepted encodings: ``rgb8``, ``bgr8`` and ``mono8`` (a mono image
feeding a 3-channel DNN is repeated over the channels). Anything else, a zero-sized image, a
row stride shorter than a row or data shorter than ``step * height`` is a FrameError naming what
was found and what is accepted: only that DNN's frame fails.

Resizing is nearest-neighbour; normalisation is the ImageNet mean and standard deviation of the
RGB channels, on values scaled to 0-1. Both are precomputed per image geometry and input shape
(a :class:`_Plan`): one gather of the source bytes straight into NCHW order (row stride, channel
order and mono repetition folded into the indices), then one multiply-add per value with the
channel's scale (1 / (255 std)) and offset (-mean / std): about 0.1-0.3 ms for a 224x224 image
here against 1.2 ms for resizing, scaling and normalising in separate float passes
(docs/bench-ros.md; a 256-entry lookup table per channel took 0.2 ms). An image already of the
input's size skips the gather: the multiply-add reads it through a strided view. A gray DNN
fed a colour image averages the channels first (the float path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from hax_conn_core.errors import FrameError

#: encoding -> channels per pixel.
ENCODINGS = {"rgb8": 3, "bgr8": 3, "mono8": 1}
#: ImageNet statistics of R, G, B on 0-1 values (torchvision's reference transforms).
MEAN_RGB = (0.485, 0.456, 0.406)
STD_RGB = (0.229, 0.224, 0.225)
#: Plans kept (one per camera geometry and input shape); a stream of many sizes only rebuilds.
PLANS_KEPT = 32


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
    buffer, channels_in = _buffer(image, lead)
    if len(input_shape) != 4 or input_shape[0] != 1 or input_shape[1] not in (1, 3):
        raise FrameError(f"{lead}input shape {tuple(input_shape)}: expected (1, C, H, W) "
                         f"with C 1 or 3")
    _, channels, height, width = (int(v) for v in input_shape)
    if channels == 1 and channels_in == 3:  # the gray of a colour pixel: not one lookup
        return _float_path(_pixels(image, buffer, channels_in), channels, height, width)
    key = (image.encoding, int(image.height), int(image.width), int(image.step), channels,
           height, width)
    plan = _PLANS.get(key)
    if plan is None:
        if len(_PLANS) >= PLANS_KEPT:
            _PLANS.clear()
        plan = _PLANS[key] = _Plan.make(*key)
    return plan.apply(buffer)


@dataclass(frozen=True)
class _Plan:
    """One image geometry -> one input shape: ``source`` holds, for input value ``(c, y, x)``
    (flattened), the index of the image byte it comes from; the value is that byte times
    ``scale[c]`` plus ``offset[c]``. ``source`` is None for an image of the input's size:
    ``view`` (height, width, step, channels, bgr) then reads it in place."""

    source: Optional[np.ndarray]  # (C * H * W,) intp into the image's bytes
    scale: np.ndarray  # (C, 1, 1) float32
    offset: np.ndarray  # (C, 1, 1) float32
    shape: Tuple[int, int, int, int]
    view: Tuple[int, int, int, int, bool]

    @classmethod
    def make(cls, encoding, src_h, src_w, step, channels, height, width) -> "_Plan":
        channels_in = ENCODINGS[encoding]
        rows = (np.arange(height) * src_h) // height  # nearest-neighbour, as before
        cols = (np.arange(width) * src_w) // width
        if channels_in == 1:  # mono: the same byte for every channel
            picks = [0] * channels
        else:  # rgb8: bytes R, G, B; bgr8: B, G, R -> channel c reads byte 2 - c
            picks = [2 - c for c in range(3)] if encoding == "bgr8" else [0, 1, 2]
        base = rows[:, None] * step + cols[None, :] * channels_in
        source = None if (src_h, src_w) == (height, width) else \
            np.stack([base + p for p in picks]).reshape(-1).astype(np.intp)
        if channels == 1:
            mean, std = np.array([np.mean(MEAN_RGB)]), np.array([np.mean(STD_RGB)])
        else:
            mean, std = np.asarray(MEAN_RGB), np.asarray(STD_RGB)
        scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(channels, 1, 1)
        offset = (-mean / std).astype(np.float32).reshape(channels, 1, 1)
        return cls(source, scale, offset, (1, channels, height, width),
                   (src_h, src_w, step, channels_in, encoding == "bgr8"))

    def apply(self, buffer: np.ndarray) -> np.ndarray:
        out = np.empty(self.shape, np.float32)
        if self.source is None:  # mono: its one channel broadcasts over the input's C
            height, width, step, channels_in, bgr = self.view
            pixels = np.lib.stride_tricks.as_strided(
                buffer, shape=(height, width * channels_in), strides=(step, 1)).reshape(
                height, width, channels_in)
            picked = (pixels[:, :, ::-1] if bgr else pixels).transpose(2, 0, 1)
        else:
            picked = buffer.take(self.source).reshape(self.shape[1:])
        np.multiply(picked, self.scale, out=out[0])
        out += self.offset
        return out


_PLANS: Dict[Tuple, _Plan] = {}


def _float_path(pixels: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    """Resize, scale and normalise in float arithmetic (a colour image for a gray DNN)."""
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


def _buffer(image: Image, lead: str) -> Tuple[np.ndarray, int]:
    """The image's bytes as a flat uint8 array, checked against its fields; and its channels."""
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
    return buffer, channels


def _pixels(image: Image, buffer: np.ndarray, channels: int) -> np.ndarray:
    height, width, step = int(image.height), int(image.width), int(image.step)
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, width * channels),
                                           strides=(step, 1))
    pixels = rows.reshape(height, width, channels)
    if image.encoding == "bgr8":
        pixels = pixels[:, :, ::-1]
    return pixels
