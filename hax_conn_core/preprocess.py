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

A geometry seen before costs one dict look-up before the plan's own work: its fields were
checked when the plan was made, so only the data's length is checked per image, and the view
of an image of the input's size is one ndarray constructor call (after a frame's pause, with
cold caches, the checks and numpy's as_strided of every call took 0.05-0.09 ms, about half
the multiply-add of a 224x224 image; docs/bench-ros.md).
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
    plan = _PLANS.get((image.encoding, image.height, image.width, image.step, input_shape)) \
        if type(input_shape) is tuple else None
    if plan is not None:  # this geometry was checked when its plan was made
        return plan.apply(_flat(image.data), name)
    lead = f"{name}: " if name else ""
    buffer, channels_in = _buffer(image, lead)
    if len(input_shape) != 4 or input_shape[0] != 1 or input_shape[1] not in (1, 3):
        raise FrameError(f"{lead}input shape {tuple(input_shape)}: expected (1, C, H, W) "
                         f"with C 1 or 3")
    _, channels, height, width = (int(v) for v in input_shape)
    if channels == 1 and channels_in == 3:  # the gray of a colour pixel: not one lookup
        return _float_path(_pixels(image, buffer, channels_in), channels, height, width)
    if len(_PLANS) >= PLANS_KEPT:
        _PLANS.clear()
    plan = _Plan.make(image.encoding, int(image.height), int(image.width), int(image.step),
                      channels, height, width)
    # Keyed by the fields as given (what the look-up above sees); a list shape is not kept.
    if type(input_shape) is tuple:
        _PLANS[(image.encoding, image.height, image.width, image.step, input_shape)] = plan
    return plan.apply(buffer, name)


@dataclass(frozen=True)
class _Plan:
    """One image geometry -> one input shape: ``source`` holds, for input value ``(c, y, x)``,
    the index of the image byte it comes from; the value is that byte times ``scale[c]`` plus
    ``offset[c]``. ``source`` is None for an image of the input's size: the bytes are then
    read in place through a view of ``view`` ((shape, strides, offset): channel order and mono
    repetition in the channel stride). ``need``: the bytes an image must have; ``geometry``
    (encoding, height, width, step) for the error saying it has fewer."""

    source: Optional[np.ndarray]  # (1, C, H, W) intp into the image's bytes
    scale: np.ndarray  # (1, C, 1, 1) float32
    offset: np.ndarray  # (1, C, 1, 1) float32
    shape: Tuple[int, int, int, int]
    view: Tuple[Tuple[int, ...], Tuple[int, ...], int]
    need: int
    geometry: Tuple[str, int, int, int]

    @classmethod
    def make(cls, encoding, src_h, src_w, step, channels, height, width) -> "_Plan":
        channels_in = ENCODINGS[encoding]
        rows = (np.arange(height) * src_h) // height  # nearest-neighbour, as before
        cols = (np.arange(width) * src_w) // width
        if channels_in == 1:  # mono: the same byte for every channel
            picks = [0] * channels
        else:  # rgb8: bytes R, G, B; bgr8: B, G, R -> channel c reads byte 2 - c
            picks = [2 - c for c in range(3)] if encoding == "bgr8" else [0, 1, 2]
        shape = (1, channels, height, width)
        base = rows[:, None] * step + cols[None, :] * channels_in
        source = None if (src_h, src_w) == (height, width) else \
            np.stack([base + p for p in picks]).reshape(shape).astype(np.intp)
        # The same-size view: channel c at byte picks[c] of a pixel (stride 0 for mono).
        channel_stride = 0 if channels == 1 or channels_in == 1 else picks[1] - picks[0]
        view = (shape, (0, channel_stride, step, channels_in), picks[0])
        if channels == 1:
            mean, std = np.array([np.mean(MEAN_RGB)]), np.array([np.mean(STD_RGB)])
        else:
            mean, std = np.asarray(MEAN_RGB), np.asarray(STD_RGB)
        scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(1, channels, 1, 1)
        offset = (-mean / std).astype(np.float32).reshape(1, channels, 1, 1)
        return cls(source, scale, offset, shape, view, step * (src_h - 1) + src_w * channels_in,
                   (encoding, src_h, src_w, step))

    def apply(self, buffer: np.ndarray, name: str = "") -> np.ndarray:
        if buffer.size < self.need:
            encoding, height, width, step = self.geometry
            lead = f"{name}: " if name else ""
            raise FrameError(f"{lead}image data truncated: {buffer.size} bytes for a "
                             f"{width}x{height} {encoding} image with row step {step} "
                             f"(expected {step * height})")
        out = np.empty(self.shape, np.float32)
        if self.source is None:
            shape, strides, offset = self.view
            picked = np.ndarray(shape, np.uint8, buffer, offset, strides)
        else:
            picked = buffer.take(self.source)
        np.multiply(picked, self.scale, out=out)
        np.add(out, self.offset, out=out)
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
    buffer = _flat(image.data)
    need = step * (height - 1) + row
    if buffer.size < need:
        raise FrameError(f"{lead}image data truncated: {buffer.size} bytes for a "
                         f"{width}x{height} {image.encoding} image with row step {step} "
                         f"(expected {step * height})")
    return buffer, channels


def _flat(data) -> np.ndarray:
    """An image's data as a flat uint8 array (no copy, but of a list)."""
    if isinstance(data, np.ndarray):
        return data.reshape(-1).view(np.uint8)
    return np.frombuffer(bytes(data) if isinstance(data, list) else data, dtype=np.uint8)


def _pixels(image: Image, buffer: np.ndarray, channels: int) -> np.ndarray:
    height, width, step = int(image.height), int(image.width), int(image.step)
    rows = np.lib.stride_tricks.as_strided(buffer, shape=(height, width * channels),
                                           strides=(step, 1))
    pixels = rows.reshape(height, width, channels)
    if image.encoding == "bgr8":
        pixels = pixels[:, :, ::-1]
    return pixels
