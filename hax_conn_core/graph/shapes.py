"""Output shapes of each layer type, with Caffe's semantics.

* Convolution: ``out = floor((in + 2 pad - (dilation (kernel - 1) + 1)) / stride) + 1``.
* Pooling: ``out = ceil((in + 2 pad - kernel) / stride) + 1`` (``FLOOR`` round mode: floor),
  then Caffe's clip: with padding, the last window must start inside the image, so
  ``if pad > 0 and (out - 1) * stride >= in + pad: out -= 1``. Global pooling gives 1x1.
* InnerProduct flattens the axes from ``axis`` on; Flatten merges ``axis..end_axis``; Concat
  adds up its axis; Eltwise needs equal shapes.

Every mismatch raises :class:`ModelError` naming the layer, its index and what was expected.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.model import (
    ConcatParams, ConvolutionParams, EltwiseParams, FlattenParams, InnerProductParams,
    InputParams, Layer, PoolingParams, ScaleParams, Shape, SoftmaxParams)


def conv_output_size(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Caffe's convolution output size along one axis (floor)."""
    extent = dilation * (kernel - 1) + 1
    return (size + 2 * pad - extent) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, pad: int, ceil: bool = True,
                     any_pad: Optional[bool] = None) -> int:
    """Caffe's pooling output size along one axis (ceil by default, with the clip rule).

    Caffe applies the clip rule on both axes as soon as *either* axis is padded
    (``if (pad_h_ || pad_w_)`` in pooling_layer.cpp): pass ``any_pad`` for a 2-D window;
    it defaults to this axis's own ``pad > 0``.
    """
    span = size + 2 * pad - kernel
    out = (-(-span // stride) if ceil else span // stride) + 1
    if (pad > 0 if any_pad is None else any_pad) and (out - 1) * stride >= size + pad:
        out -= 1  # the last window would start in the padding: Caffe drops it
    return out


def count(shape: Sequence[int]) -> int:
    """Number of elements of a shape."""
    return math.prod(shape)


def canonical_axis(layer: Layer, axis: int, rank: int, what: str = "axis") -> int:
    """Caffe's CanonicalAxisIndex: ``-rank <= axis < rank``; negative counts from the end."""
    if not -rank <= axis < rank:
        raise ModelError(f"{layer.where()}: {what} {axis} is out of range for an input of "
                         f"{rank} axes; expected {-rank}..{rank - 1}")
    return axis % rank


def _need_rank(layer: Layer, shape: Shape, rank: int) -> None:
    if len(shape) != rank:
        raise ModelError(f"{layer.where()}: expected a {rank}-axis (NCHW) input, got shape "
                         f"{_fmt(shape)}")


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(str(d) for d in shape) if shape else "(scalar)"


def _positive(layer: Layer, shape: Shape, detail: str) -> Shape:
    if any(d <= 0 for d in shape):
        raise ModelError(f"{layer.where()}: output shape {_fmt(shape)} is empty ({detail}); "
                         "expected every dimension >= 1: the input is too small")
    return shape


def _convolution(layer: Layer, p: ConvolutionParams, bottom: Shape) -> Shape:
    _need_rank(layer, bottom, 4)
    n, c, h, w = bottom
    if c % p.group:
        raise ModelError(f"{layer.where()}: {c} input channels are not divisible by group "
                         f"{p.group}; expected a multiple of the group")
    if p.num_output % p.group:
        raise ModelError(f"{layer.where()}: num_output {p.num_output} is not divisible by "
                         f"group {p.group}; expected a multiple of the group")
    oh = conv_output_size(h, p.kernel[0], p.stride[0], p.pad[0], p.dilation[0])
    ow = conv_output_size(w, p.kernel[1], p.stride[1], p.pad[1], p.dilation[1])
    return _positive(layer, (n, p.num_output, oh, ow),
                     f"input {h}x{w}, kernel {p.kernel}, stride {p.stride}, pad {p.pad}")


def _pooling(layer: Layer, p: PoolingParams, bottom: Shape) -> Shape:
    _need_rank(layer, bottom, 4)
    n, c, h, w = bottom
    if p.global_pooling:
        return (n, c, 1, 1)
    ceil = p.round_mode == "CEIL"
    any_pad = p.pad[0] > 0 or p.pad[1] > 0
    oh = pool_output_size(h, p.kernel[0], p.stride[0], p.pad[0], ceil, any_pad)
    ow = pool_output_size(w, p.kernel[1], p.stride[1], p.pad[1], ceil, any_pad)
    return _positive(layer, (n, c, oh, ow),
                     f"input {h}x{w}, kernel {p.kernel}, stride {p.stride}, pad {p.pad}")


def _inner_product(layer: Layer, p: InnerProductParams, bottom: Shape) -> Shape:
    axis = canonical_axis(layer, p.axis, len(bottom))
    return tuple(bottom[:axis]) + (p.num_output,)


def _scale(layer: Layer, p: ScaleParams, bottoms: Sequence[Shape]) -> Shape:
    bottom = bottoms[0]
    if len(bottoms) == 2:
        factor = bottoms[1]
        # Caffe: a scalar factor, or factor.shape == bottom.shape[axis:axis + factor rank]
        if len(factor) == 0 or (len(factor) == 1 and factor[0] == 1):
            return bottom
        axis = canonical_axis(layer, p.axis, len(bottom))
        if tuple(bottom[axis:axis + len(factor)]) != tuple(factor):
            raise ModelError(f"{layer.where()}: scale factor of shape {_fmt(factor)} does not "
                             f"match input {_fmt(bottom)} from axis {axis}; expected "
                             f"{_fmt(bottom[axis:axis + len(factor)])}")
        return bottom
    axis = canonical_axis(layer, p.axis, len(bottom)) if bottom else 0
    if p.num_axes < -1 or (p.num_axes >= 0 and axis + p.num_axes > len(bottom)):
        raise ModelError(f"{layer.where()}: scale num_axes {p.num_axes} with axis {axis} "
                         f"does not fit an input of {len(bottom)} axes; expected -1 or "
                         f"0..{len(bottom) - axis}")
    return bottom


def _eltwise(layer: Layer, p: EltwiseParams, bottoms: Sequence[Shape]) -> Shape:
    first = bottoms[0]
    for position, shape in enumerate(bottoms[1:], start=1):
        if tuple(shape) != tuple(first):
            raise ModelError(
                f"{layer.where()}: bottom {position} ({layer.bottoms[position]!r}) has shape "
                f"{_fmt(shape)}; expected {_fmt(first)} like bottom 0 "
                f"({layer.bottoms[0]!r}): Eltwise needs equal shapes")
    if p.coeff and len(p.coeff) != len(bottoms):
        raise ModelError(f"{layer.where()}: {len(p.coeff)} coeff values for {len(bottoms)} "
                         "bottoms; expected one per bottom")
    return first


def _concat(layer: Layer, p: ConcatParams, bottoms: Sequence[Shape]) -> Shape:
    first = bottoms[0]
    axis = canonical_axis(layer, p.axis, len(first))
    total = 0
    for position, shape in enumerate(bottoms):
        others = tuple(d for i, d in enumerate(shape) if i != axis)
        expected = tuple(d for i, d in enumerate(first) if i != axis)
        if len(shape) != len(first) or others != expected:
            want = list(first)
            want[axis] = "*"
            raise ModelError(
                f"{layer.where()}: bottom {position} ({layer.bottoms[position]!r}) has shape "
                f"{_fmt(shape)}; expected {'x'.join(map(str, want))} (all axes but the "
                f"concat axis {axis} equal)")
        total += shape[axis]
    out = list(first)
    out[axis] = total
    return tuple(out)


def _flatten(layer: Layer, p: FlattenParams, bottom: Shape) -> Shape:
    start = canonical_axis(layer, p.axis, len(bottom))
    end = canonical_axis(layer, p.end_axis, len(bottom), "end_axis")
    if end < start:
        raise ModelError(f"{layer.where()}: end_axis {p.end_axis} is before axis {p.axis}; "
                         "expected axis <= end_axis")
    return tuple(bottom[:start]) + (count(bottom[start:end + 1]),) + tuple(bottom[end + 1:])


def output_shapes(layer: Layer, bottoms: Sequence[Shape]) -> Tuple[Shape, ...]:
    """Shapes of ``layer``'s tops given its bottoms' shapes (bottom counts already checked)."""
    p = layer.params
    kind = layer.type
    if kind == "Input":
        assert isinstance(p, InputParams)
        return tuple(p.top_shapes) if p.top_shapes else (p.shape,) * len(layer.tops)
    if kind == "Convolution":
        return (_convolution(layer, p, bottoms[0]),)
    if kind == "Pooling":
        return (_pooling(layer, p, bottoms[0]),)
    if kind == "InnerProduct":
        return (_inner_product(layer, p, bottoms[0]),)
    if kind == "Scale":
        return (_scale(layer, p, bottoms),)
    if kind == "Eltwise":
        return (_eltwise(layer, p, bottoms),)
    if kind == "Concat":
        return (_concat(layer, p, bottoms),)
    if kind == "Flatten":
        return (_flatten(layer, p, bottoms[0]),)
    if kind == "Softmax":
        assert isinstance(p, SoftmaxParams)
        canonical_axis(layer, p.axis, len(bottoms[0]))
        return (bottoms[0],)
    if kind == "LRN":
        _need_rank(layer, bottoms[0], 4)
        return (bottoms[0],)
    if kind == "BatchNorm":
        # Caffe normalises per channel (axis 1) of an input of any rank >= 2, e.g. the (N, C)
        # output of an InnerProduct.
        if len(bottoms[0]) < 2:
            raise ModelError(f"{layer.where()}: expected an input with a channel axis "
                             f"(N, C, ...), got shape {_fmt(bottoms[0])}")
        return (bottoms[0],)
    if kind in ("ReLU", "Dropout"):
        return (bottoms[0],)
    if kind == "Split":
        return (bottoms[0],) * len(layer.tops)
    raise ModelError(f"{layer.where()}: no shape rule for type {kind!r}")
