"""Per-layer cost: learned parameters, FLOPs and bytes moved (docs/graph.md, "Costs").

FLOPs count 2 per multiply-add for Convolution and InnerProduct (bias additions not counted,
the usual convention for published figures), and an element-wise estimate for the rest:
ReLU 1, BatchNorm 2 (subtract, multiply), Scale 1 (+1 with bias), Eltwise n-1 per output
element (+n with coefficients), Pooling kernel area, LRN ``2 local_size + 3``, Softmax 3.
Bytes moved = weights (every stored blob) + inputs read + outputs written, for an element size
``dtype_bytes``. Dropout, Flatten and Split are no-ops at inference (inference engines drop or
alias them): 0 FLOPs and 0 bytes. The rules per type live with each frontend:
:mod:`.frontends.caffe.ops` and :mod:`.frontends.onnx.ops`; this module adds up the bytes.
"""

from __future__ import annotations

from typing import Tuple

from hax_conn_core.graph.frontends.caffe.ops import OPS
from hax_conn_core.graph.model import Graph, Layer, LayerStats, OnnxNodeParams
from hax_conn_core.graph.shapes import count


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
    op = OPS[layer.type]
    params, stored = op.weights(graph, layer)
    if op.no_op:
        bytes_in = bytes_out = 0
        if layer.type == "Input":
            bytes_out = sum(count(graph.tensors[t].shape) for t in layer.tops) * dtype_bytes
    else:
        bytes_in = sum(count(graph.tensors[t].shape) for t in layer.bottoms) * dtype_bytes
        bytes_out = sum(count(graph.tensors[t].shape) for t in layer.tops) * dtype_bytes
    return LayerStats(index=layer.index, name=layer.name, type=layer.type, params=params,
                      flops=op.flops(graph, layer), weight_bytes=stored * dtype_bytes,
                      activation_bytes_in=bytes_in, activation_bytes_out=bytes_out)


def layer_stats(graph: Graph, dtype_bytes: int = 4) -> Tuple[LayerStats, ...]:
    """Cost of every layer, in index order."""
    if dtype_bytes < 1:
        from hax_conn_core.errors import ConfigError

        raise ConfigError(f"dtype_bytes {dtype_bytes}; expected a positive element size")
    return tuple(stats_of(graph, layer, dtype_bytes) for layer in graph.layers)
