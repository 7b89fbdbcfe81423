"""Per-layer cost: learned parameters, FLOPs and bytes moved (docs/graph.md, "Costs").

FLOPs count 2 per multiply-add for Convolution and InnerProduct (bias additions not counted,
the usual convention for published figures), and an element-wise estimate for the rest:
ReLU 1, BatchNorm 2 (subtract, multiply), Scale 1 (+1 with bias), Eltwise n-1 per output
element (+n with coefficients), Pooling kernel area, LRN ``2 local_size + 3``, Softmax 3.
Bytes moved = weights (every stored blob) + inputs read + outputs written, for an element size
``dtype_bytes``. Dropout, Flatten and Split are no-ops at inference (inference engines drop or
alias them): 0 FLOPs and 0 bytes. ONNX nodes follow :mod:`.frontends.onnx.ops`.
"""

from __future__ import annotations

from typing import Tuple

from hax_conn_core.graph.model import (
    ConvolutionParams, EltwiseParams, Graph, InnerProductParams, Layer, LayerStats, LRNParams,
    OnnxNodeParams, PoolingParams, ScaleParams)
from hax_conn_core.graph.shapes import count

_NO_OPS = ("Dropout", "Flatten", "Split", "Input")


def _weights(graph: Graph, layer: Layer) -> Tuple[int, int]:
    """(learned parameters, stored weight elements) of one layer."""
    p = layer.params
    bottom = graph.tensors[layer.bottoms[0]].shape if layer.bottoms else ()
    if isinstance(p, ConvolutionParams):
        weights = p.num_output * (bottom[1] // p.group) * p.kernel[0] * p.kernel[1]
        total = weights + (p.num_output if p.bias_term else 0)
        return total, total
    if isinstance(p, InnerProductParams):
        axis = p.axis % len(bottom)
        total = count(bottom[axis:]) * p.num_output + (p.num_output if p.bias_term else 0)
        return total, total
    if layer.type == "BatchNorm":
        channels = bottom[1] if len(bottom) > 1 else 1
        return 0, 2 * channels + 1  # mean, variance, moving-average scale factor
    if isinstance(p, ScaleParams) and len(layer.bottoms) == 1:
        axis = p.axis % len(bottom) if bottom else 0
        end = len(bottom) if p.num_axes == -1 else axis + p.num_axes
        size = count(bottom[axis:end])
        total = size * (2 if p.bias_term else 1)
        return total, total
    return 0, 0


def _flops(graph: Graph, layer: Layer) -> int:
    p = layer.params
    out = count(graph.tensors[layer.tops[0]].shape) if layer.tops else 0
    if isinstance(p, ConvolutionParams):
        cin = graph.tensors[layer.bottoms[0]].shape[1]
        return 2 * out * (cin // p.group) * p.kernel[0] * p.kernel[1]
    if isinstance(p, InnerProductParams):
        bottom = graph.tensors[layer.bottoms[0]].shape
        axis = p.axis % len(bottom)
        return 2 * count(bottom[:axis]) * count(bottom[axis:]) * p.num_output
    if isinstance(p, PoolingParams):
        if p.global_pooling:
            bottom = graph.tensors[layer.bottoms[0]].shape
            return out * bottom[2] * bottom[3]
        return out * p.kernel[0] * p.kernel[1]
    if isinstance(p, LRNParams):
        return out * (2 * p.local_size + 3)
    if isinstance(p, EltwiseParams):
        n = len(layer.bottoms)
        return out * ((n - 1) + (n if p.coeff else 0))
    if isinstance(p, ScaleParams):
        return out * (2 if p.bias_term else 1)
    if layer.type == "BatchNorm":
        return 2 * out
    if layer.type == "ReLU":
        return out
    if layer.type == "Softmax":
        return 3 * out
    return 0


def _onnx_stats(graph: Graph, layer: Layer, dtype_bytes: int) -> LayerStats:
    """Cost of one ONNX node: the per-op rules of :mod:`.frontends.onnx.ops`."""
    from hax_conn_core.graph.frontends.onnx import ops

    params, stored = ops.weight_elements(layer)
    bytes_in = bytes_out = 0
    if not ops.is_alias(layer) and layer.bottoms:
        bytes_in = sum(count(graph.tensors[t].shape) for t in layer.bottoms) * dtype_bytes
        bytes_out = sum(count(graph.tensors[t].shape) for t in layer.tops) * dtype_bytes
    return LayerStats(index=layer.index, name=layer.name, type=layer.type, params=params,
                      flops=ops.flops(graph, layer), weight_bytes=stored * dtype_bytes,
                      activation_bytes_in=bytes_in, activation_bytes_out=bytes_out)


def stats_of(graph: Graph, layer: Layer, dtype_bytes: int = 4) -> LayerStats:
    """Cost of one layer of ``graph``."""
    if isinstance(layer.params, OnnxNodeParams):
        return _onnx_stats(graph, layer, dtype_bytes)
    params, stored = _weights(graph, layer)
    if layer.type in _NO_OPS:
        bytes_in = bytes_out = 0
        if layer.type == "Input":
            bytes_out = sum(count(graph.tensors[t].shape) for t in layer.tops) * dtype_bytes
    else:
        bytes_in = sum(count(graph.tensors[t].shape) for t in layer.bottoms) * dtype_bytes
        bytes_out = sum(count(graph.tensors[t].shape) for t in layer.tops) * dtype_bytes
    return LayerStats(index=layer.index, name=layer.name, type=layer.type, params=params,
                      flops=_flops(graph, layer), weight_bytes=stored * dtype_bytes,
                      activation_bytes_in=bytes_in, activation_bytes_out=bytes_out)


def layer_stats(graph: Graph, dtype_bytes: int = 4) -> Tuple[LayerStats, ...]:
    """Cost of every layer, in index order."""
    if dtype_bytes < 1:
        from hax_conn_core.errors import ConfigError

        raise ConfigError(f"dtype_bytes {dtype_bytes}; expected a positive element size")
    return tuple(stats_of(graph, layer, dtype_bytes) for layer in graph.layers)
