"""What the rest of hax_conn needs to know about each Caffe layer type's cost, in one place.

Per type (:data:`OPS`): its FLOPs, its (learned parameters, stored weight elements), and whether
it is a no-op at inference (engines drop or alias it: no bytes moved). The counting rules are
those of docs/graph.md, "Costs": 2 per multiply-add for Convolution and InnerProduct (biases
not counted), an element-wise estimate for the rest (ReLU 1, BatchNorm 2, Scale 1 (+1 with
bias), Eltwise n-1 (+n with coefficients), Pooling the window area, LRN ``2 local_size + 3``,
Softmax 3). Shapes are the reader's (:mod:`hax_conn_core.graph.shapes`); the DLA limits of
each type are read in :mod:`hax_conn_core.graph.capabilities`. The ONNX counterpart is
:mod:`hax_conn_core.graph.frontends.onnx.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from hax_conn_core.graph.model import Graph, Layer
from hax_conn_core.graph.shapes import count


def _bottom(graph: Graph, layer: Layer) -> Tuple[int, ...]:
    return graph.tensors[layer.bottoms[0]].shape if layer.bottoms else ()


def _out(graph: Graph, layer: Layer) -> int:
    return count(graph.tensors[layer.tops[0]].shape) if layer.tops else 0


def _none(graph: Graph, layer: Layer) -> Tuple[int, int]:
    return 0, 0


def _zero(graph: Graph, layer: Layer) -> int:
    return 0


def _convolution_weights(graph: Graph, layer: Layer) -> Tuple[int, int]:
    p = layer.params
    weights = p.num_output * (_bottom(graph, layer)[1] // p.group) * p.kernel[0] * p.kernel[1]
    total = weights + (p.num_output if p.bias_term else 0)
    return total, total


def _convolution_flops(graph: Graph, layer: Layer) -> int:
    p = layer.params
    cin = _bottom(graph, layer)[1]
    return 2 * _out(graph, layer) * (cin // p.group) * p.kernel[0] * p.kernel[1]


def _inner_product_weights(graph: Graph, layer: Layer) -> Tuple[int, int]:
    p, bottom = layer.params, _bottom(graph, layer)
    axis = p.axis % len(bottom)
    total = count(bottom[axis:]) * p.num_output + (p.num_output if p.bias_term else 0)
    return total, total


def _inner_product_flops(graph: Graph, layer: Layer) -> int:
    p, bottom = layer.params, _bottom(graph, layer)
    axis = p.axis % len(bottom)
    return 2 * count(bottom[:axis]) * count(bottom[axis:]) * p.num_output


def _pooling_flops(graph: Graph, layer: Layer) -> int:
    p = layer.params
    if p.global_pooling:
        bottom = _bottom(graph, layer)
        return _out(graph, layer) * bottom[2] * bottom[3]
    return _out(graph, layer) * p.kernel[0] * p.kernel[1]


def _batchnorm_weights(graph: Graph, layer: Layer) -> Tuple[int, int]:
    bottom = _bottom(graph, layer)
    channels = bottom[1] if len(bottom) > 1 else 1
    return 0, 2 * channels + 1  # mean, variance, moving-average scale factor: statistics


def _scale_weights(graph: Graph, layer: Layer) -> Tuple[int, int]:
    if len(layer.bottoms) != 1:  # the scale is the second bottom, not a blob
        return 0, 0
    p, bottom = layer.params, _bottom(graph, layer)
    axis = p.axis % len(bottom) if bottom else 0
    end = len(bottom) if p.num_axes == -1 else axis + p.num_axes
    total = count(bottom[axis:end]) * (2 if p.bias_term else 1)
    return total, total


def _eltwise_flops(graph: Graph, layer: Layer) -> int:
    n = len(layer.bottoms)
    return _out(graph, layer) * ((n - 1) + (n if layer.params.coeff else 0))


def _per_element(factor: int) -> Callable[[Graph, Layer], int]:
    return lambda graph, layer: factor * _out(graph, layer)


@dataclass(frozen=True)
class CaffeOp:
    """The cost rules of one Caffe layer type."""

    flops: Callable[[Graph, Layer], int] = _zero
    weights: Callable[[Graph, Layer], Tuple[int, int]] = _none
    #: Dropout, Flatten, Split: inference engines drop or alias them (no bytes moved).
    #: Input writes its tensor (see :mod:`hax_conn_core.graph.stats`).
    no_op: bool = False


OPS: Dict[str, CaffeOp] = {
    "Input": CaffeOp(no_op=True),
    "Convolution": CaffeOp(_convolution_flops, _convolution_weights),
    "Pooling": CaffeOp(_pooling_flops),
    "LRN": CaffeOp(lambda g, layer: _out(g, layer) * (2 * layer.params.local_size + 3)),
    "InnerProduct": CaffeOp(_inner_product_flops, _inner_product_weights),
    "BatchNorm": CaffeOp(_per_element(2), _batchnorm_weights),
    "Scale": CaffeOp(lambda g, layer: _out(g, layer) * (2 if layer.params.bias_term else 1),
                     _scale_weights),
    "Eltwise": CaffeOp(_eltwise_flops),
    "Concat": CaffeOp(),
    "Softmax": CaffeOp(_per_element(3)),
    "Flatten": CaffeOp(no_op=True),
    "Dropout": CaffeOp(no_op=True),
    "ReLU": CaffeOp(_per_element(1)),
    "Split": CaffeOp(no_op=True),
}


# ---------------------------------------------------------------------------------------------
# DLA facts: what the limits of config/devices/*.yaml "layers" are checked against


def dla_facts(graph: Graph, layer: Layer) -> Dict[str, object]:
    """The values an accelerator's limits are checked against, by limit key (the same keys
    as the ONNX frontend's :func:`hax_conn_core.graph.frontends.onnx.ops.dla_facts`):

    ``spatial`` (ordered ``kernel`` / ``window`` / ``pad`` / ``stride`` / ``dilation`` value
    tuples: Pooling's window is its kernel, the input's H x W for global pooling;
    InnerProduct's kernel is its input's H x W, as the DLA runs it as a convolution),
    ``channels`` ((what, count) of the first input and output), ``groups``, the enum values
    (``methods``, ``local_sizes``, ``norm_regions``, ``operations``), ``axes`` and
    ``inputs``.
    """
    from hax_conn_core.graph.model import (
        ConcatParams, ConvolutionParams, EltwiseParams, LRNParams, PoolingParams,
        SoftmaxParams)

    p = layer.params
    bottom = _bottom(graph, layer)
    top = graph.tensors[layer.tops[0]].shape if layer.tops else ()
    spatial: Dict[str, Tuple[int, ...]] = {}
    facts: Dict[str, object] = {"inputs": len(layer.bottoms)}
    if isinstance(p, ConvolutionParams):
        spatial = {"kernel": p.kernel, "pad": p.pad, "stride": p.stride,
                   "dilation": p.dilation}
        facts["groups"] = p.group
    elif isinstance(p, PoolingParams):
        window = tuple(bottom[2:4]) if p.global_pooling and len(bottom) == 4 else p.kernel
        spatial = {"window": window, "kernel": window, "pad": p.pad, "stride": p.stride}
        facts["methods"] = (p.method,)
    elif layer.type == "InnerProduct" and len(bottom) == 4:
        spatial = {"kernel": tuple(bottom[2:4])}
    elif isinstance(p, LRNParams):
        facts["local_sizes"] = (p.local_size,)
        facts["norm_regions"] = (p.norm_region,)
    elif isinstance(p, EltwiseParams):
        facts["operations"] = (p.operation,)
    elif isinstance(p, (ConcatParams, SoftmaxParams)) and bottom:
        facts["axes"] = (p.axis % len(bottom),)
    facts["spatial"] = spatial
    facts["channels"] = tuple((what, shape[1]) for what, shape in (("input", bottom),
                                                                   ("output", top))
                              if len(shape) >= 2)
    return facts
