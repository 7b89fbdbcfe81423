"""ONNX export of a model graph, whole or any contiguous range of its layers (opset 17).

``export(graph)`` writes the whole DNN; ``export(graph, first=i + 1, last=j)`` writes the
layers ``i+1 .. j`` as a model of their own, whose inputs are the tensors those layers read
from outside the range and whose outputs are the tensors they produce that a later layer (or
the graph's output) needs. For a valid cut (``cuts.valid_cuts``) that is one tensor each way,
so running part A then part B gives the whole model's output.

Caffe semantics that ONNX spells differently (docs/execution.md, "Caffe semantics"):

* Pooling rounds the output size up and then drops a last window that would start in the
  padding; AVE divides by the window clipped to ``in + pad`` (padding counts, the ceil
  overhang does not). Exported as an explicit zero ``Pad`` + ``AveragePool`` with
  ``count_include_pad=0`` over the overhang only, and ``MaxPool`` with explicit asymmetric
  pads; never ``ceil_mode``.
* LRN ACROSS_CHANNELS is ONNX ``LRN`` (both divide alpha by ``local_size``); WITHIN_CHANNEL
  is decomposed (x^2 -> Caffe AVE pool -> (1 + alpha * .) ^ -beta -> * x; Caffe ignores ``k``
  there).
* BatchNorm divides its stored mean/var by the stored scale factor.

Initializers are named ``<layer>.weight|bias|mean|var|gamma|beta`` so that
``weights.load_onnx_weights`` can read them back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import (TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple)

import numpy as np

from hax_conn_core.errors import InternalError, ModelError
from hax_conn_core.graph.shapes import pool_output_size

if TYPE_CHECKING:  # pragma: no cover
    import onnx

    from hax_conn_core.graph.model import Graph, Layer
    from hax_conn_core.graph.weights import Weights

OPSET = 17
#: IR version 8 is what opset 17 shipped with: older runtimes (TensorRT 8.6's parser,
#: onnxruntime on JetPack) refuse newer IR versions.
IR_VERSION = 8
#: With ``export(..., external=...)``, initializers of at least this size stay outside the
#: model, under this (never written) location; the onnxruntime backend
#: (runtime/backends/onnxrt.py) supplies them in memory.
EXTERNAL_MIN_BYTES = 1024
EXTERNAL_LOCATION = "hax_conn_external_weights.bin"


# ---------------------------------------------------------------------------------------------
# Ranges of layers


@dataclass(frozen=True)
class LayerRange:
    """The layers ``first .. last`` (inclusive) of a graph and the tensors they exchange."""

    first: int
    last: int
    layers: Tuple["Layer", ...]  # the computing layers (Input layers left out)
    inputs: Tuple[str, ...]      # tensors read from outside the range, in first-use order
    outputs: Tuple[str, ...]     # tensors produced here that are needed later or are outputs


def layer_range(graph: "Graph", first: Optional[int] = None, last: Optional[int] = None,
                outputs: Optional[Sequence[str]] = None,
                extra_outputs: Sequence[str] = ()) -> LayerRange:
    """Select layers ``first .. last`` (defaults: the whole graph) and find their boundary.

    ``outputs`` replaces the default outputs; ``extra_outputs`` adds tensors (any tensor
    produced in the range, e.g. the logits before a Softmax).
    """
    count = len(graph.layers)
    first = 0 if first is None else first
    last = count - 1 if last is None else last
    if not (0 <= first <= last < count):
        raise ModelError(f"{graph.name}: layer range {first}..{last} is not within "
                         f"0..{count - 1} with first <= last")
    chosen = graph.layers[first:last + 1]
    produced: Dict[str, "Layer"] = {}
    inputs: List[str] = []
    computing = []
    for layer in chosen:
        if layer.type == "Input":
            continue
        computing.append(layer)
        for bottom in layer.bottoms:
            if bottom not in produced and bottom not in inputs:
                inputs.append(bottom)
        for top in layer.tops:
            produced[top] = layer
    if not computing:
        raise ModelError(f"{graph.name}: layers {first}..{last} hold no layer to run "
                         "(only Input layers)")
    if outputs is None:
        graph_outputs = set(graph.outputs)
        outputs = [top for top in produced
                   if top in graph_outputs
                   or any(consumer.index > last for consumer in graph.consumers(top))]
    selected = list(outputs)
    for name in extra_outputs:
        if name not in selected:
            selected.append(name)
    for name in selected:
        if name not in produced:
            raise ModelError(f"{graph.name}: tensor {name!r} is not produced by layers "
                             f"{first}..{last}; cannot make it an output")
    if not selected:
        raise InternalError(f"{graph.name}: layers {first}..{last} produce no needed tensor")
    return LayerRange(first, last, tuple(computing), tuple(inputs), tuple(selected))


# ---------------------------------------------------------------------------------------------
# Caffe pooling geometry (shared with the torch module)


@dataclass(frozen=True)
class PoolAxis:
    """One spatial axis of a Caffe pooling: how to reproduce it with floor-mode pooling."""

    size: int       # input size
    kernel: int
    stride: int
    pad: int        # Caffe's pad (both sides)
    output: int     # Caffe's output size
    overhang: int   # extra end padding so that floor-mode pooling covers the last window
    excess: int     # windows floor-mode pooling makes beyond ``output`` (sliced off)


def pool_axes(in_shape: Sequence[int], params, layer: "Layer",
              symmetric_pad: bool) -> Tuple[PoolAxis, PoolAxis]:
    """Geometry of a (non-global) Caffe pooling over the H and W axes of ``in_shape``.

    ``symmetric_pad``: the caller pads ``pad`` on both sides explicitly first (AVE), so the
    overhang is measured from ``size + 2 * pad``; otherwise (MAX) from ``size + pad``.
    """
    any_pad = any(params.pad)
    ceil = getattr(params, "round_mode", "CEIL") != "FLOOR"
    axes = []
    for size, kernel, stride, pad in zip(in_shape[2:], params.kernel, params.stride,
                                         params.pad):
        if pad >= kernel:
            raise ModelError(f"{layer.where()}: pad {pad} >= kernel {kernel}; Caffe requires "
                             "pad < kernel in pooling")
        output = pool_output_size(size, kernel, stride, pad, ceil, any_pad)
        if output < 1:
            raise ModelError(f"{layer.where()}: kernel {kernel} does not fit an input of "
                             f"size {size} with pad {pad}")
        start = size + 2 * pad if symmetric_pad else size + pad
        overhang = max(0, (output - 1) * stride + kernel - start)
        floor_output = (start + overhang - kernel) // stride + 1
        axes.append(PoolAxis(size, kernel, stride, pad, output, overhang,
                             floor_output - output))
    return axes[0], axes[1]


# ---------------------------------------------------------------------------------------------
# The exporter


def initializer_names(graph: "Graph", layer: "Layer") -> List[str]:
    """Names of ``layer``'s weight initializers, in Caffe blob order (BatchNorm: mean, var)."""
    from hax_conn_core.graph.weights import blob_shapes

    count = len(blob_shapes(graph, layer))
    if layer.type in ("Convolution", "InnerProduct"):
        return [f"{layer.name}.weight", f"{layer.name}.bias"][:count]
    if layer.type == "BatchNorm":
        return [f"{layer.name}.mean", f"{layer.name}.var"]
    if layer.type == "Scale":
        names = [f"{layer.name}.gamma"] if len(layer.bottoms) == 1 else []
        return names + ([f"{layer.name}.beta"] if layer.params.bias_term else [])
    return []


class _Builder:
    """Collects nodes and initializers; hands out fresh intermediate names."""

    def __init__(self, graph: "Graph", weights: "Weights", calibration: Optional[int],
                 external: Optional[Dict[str, np.ndarray]] = None):
        self.graph = graph
        self.external = external
        self.weights = weights
        self.nodes: list = []
        self.node_names: set = set()
        self.initializers: list = []
        self.calibration = calibration
        self.stat_outputs: Dict[str, Tuple[str, str]] = {}

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import TensorProto, numpy_helper

        array = np.ascontiguousarray(array)
        if self.external is None or array.nbytes < EXTERNAL_MIN_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        # A stub that names its data as external; the runner supplies the array itself.
        stub = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(array.shape),
                           data_location=TensorProto.EXTERNAL)
        for key, value in (("location", EXTERNAL_LOCATION), ("offset", "0"),
                           ("length", str(array.nbytes))):
            entry = stub.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(stub)
        self.external[name] = array
        return name

    def node(self, op: str, inputs: Sequence[str], output: str, name: str, **attrs) -> str:
        from onnx import helper

        # Node names must be unique; a layer made of several nodes numbers the repeats.
        unique, count = name, 1
        while unique in self.node_names:
            unique, count = f"{name}#{count}", count + 1
        self.node_names.add(unique)
        self.nodes.append(helper.make_node(op, list(inputs), [output], name=unique, **attrs))
        return output

    def shape(self, tensor: str) -> Tuple[int, ...]:
        return tuple(self.graph.shape(tensor))


def _tmp(layer: "Layer", what: str) -> str:
    # "#" does not occur in our tensor names (in-place tops are "<layer>:<n>").
    return f"{layer.name}#{what}"


def _emit_convolution(b: _Builder, layer: "Layer", blobs: List[np.ndarray]) -> None:
    p = layer.params
    if len(b.shape(layer.bottoms[0])) != 4:
        raise ModelError(f"{layer.where()}: only 2-D convolution (NCHW bottoms) is supported")
    names = initializer_names(b.graph, layer)
    inputs = [layer.bottoms[0]] + [b.const(name, blob) for name, blob in zip(names, blobs)]
    b.node("Conv", inputs, layer.tops[0], layer.name, kernel_shape=list(p.kernel),
           strides=list(p.stride), pads=[p.pad[0], p.pad[1], p.pad[0], p.pad[1]],
           dilations=list(p.dilation), group=p.group)


def _caffe_pool(b: _Builder, layer: "Layer", x: str, in_shape, params, method: str,
                out: str) -> str:
    """Caffe MAX/AVE pooling of ``x`` into ``out`` with floor-mode ONNX pooling."""
    symmetric = method == "AVE"
    ah, aw = pool_axes(in_shape, params, layer, symmetric_pad=symmetric)
    pooled = out if not (ah.excess or aw.excess) else _tmp(layer, "pooled")
    attrs = dict(kernel_shape=[ah.kernel, aw.kernel], strides=[ah.stride, aw.stride])
    if method == "MAX":
        b.node("MaxPool", [x], pooled, layer.name,
               pads=[ah.pad, aw.pad, ah.overhang, aw.overhang], **attrs)
    elif method == "AVE":
        source = x
        if ah.pad or aw.pad:
            # Caffe's divisor counts the pad zone but not the ceil overhang beyond it.
            pads = np.array([0, 0, ah.pad, aw.pad, 0, 0, ah.pad, aw.pad], np.int64)
            source = b.node("Pad", [x, b.const(_tmp(layer, "pads"), pads)],
                            _tmp(layer, "padded"), _tmp(layer, "pad"), mode="constant")
        b.node("AveragePool", [source], pooled, layer.name, count_include_pad=0,
               pads=[0, 0, ah.overhang, aw.overhang], **attrs)
    else:
        raise ModelError(f"{layer.where()}: pooling method {method!r} is not supported; "
                         "expected MAX or AVE")
    if pooled != out:
        b.node("Slice", [pooled, b.const(_tmp(layer, "starts"), np.zeros(2, np.int64)),
                         b.const(_tmp(layer, "ends"), np.array([ah.output, aw.output],
                                                               np.int64)),
                         b.const(_tmp(layer, "axes"), np.array([2, 3], np.int64))],
               out, _tmp(layer, "slice"))
    return out


def _emit_pooling(b: _Builder, layer: "Layer", blobs) -> None:
    p = layer.params
    in_shape = b.shape(layer.bottoms[0])
    if len(in_shape) != 4:
        raise ModelError(f"{layer.where()}: only 2-D pooling (NCHW bottoms) is supported")
    if p.global_pooling:
        op = {"MAX": "GlobalMaxPool", "AVE": "GlobalAveragePool"}.get(p.method)
        if op is None:
            raise ModelError(f"{layer.where()}: pooling method {p.method!r} is not "
                             "supported; expected MAX or AVE")
        b.node(op, [layer.bottoms[0]], layer.tops[0], layer.name)
        return
    _caffe_pool(b, layer, layer.bottoms[0], in_shape, p, p.method, layer.tops[0])
    expected = b.shape(layer.tops[0])
    ah, aw = pool_axes(in_shape, p, layer, symmetric_pad=p.method == "AVE")
    if expected[2:] != (ah.output, aw.output):
        raise InternalError(f"{layer.where()}: the graph says output {expected}, Caffe's "
                            f"pooling rule gives {(ah.output, aw.output)}")


def _emit_lrn(b: _Builder, layer: "Layer", blobs) -> None:
    p = layer.params
    if p.local_size % 2 != 1:
        raise ModelError(f"{layer.where()}: LRN local_size {p.local_size}; Caffe supports "
                         "only odd values")
    x = layer.bottoms[0]
    if p.norm_region == "ACROSS_CHANNELS":
        b.node("LRN", [x], layer.tops[0], layer.name, size=p.local_size, alpha=p.alpha,
               beta=p.beta, bias=p.k)
        return
    if p.norm_region != "WITHIN_CHANNEL":
        raise ModelError(f"{layer.where()}: LRN norm_region {p.norm_region!r}; expected "
                         "ACROSS_CHANNELS or WITHIN_CHANNEL")
    in_shape = b.shape(x)
    if len(in_shape) != 4:
        raise ModelError(f"{layer.where()}: WITHIN_CHANNEL LRN needs an NCHW bottom")
    # Caffe: x * (1 + alpha * avgpool(x^2, local_size, pad (n-1)/2)) ^ -beta (k unused).
    half = (p.local_size - 1) // 2
    window = _PoolWindow((p.local_size,) * 2, (1, 1), (half, half))
    square = b.node("Mul", [x, x], _tmp(layer, "square"), _tmp(layer, "square"))
    mean = _caffe_pool(b, layer, square, in_shape, window, "AVE", _tmp(layer, "mean"))
    scaled = b.node("Mul", [mean, b.const(_tmp(layer, "alpha"), np.float32(p.alpha))],
                    _tmp(layer, "scaled"), _tmp(layer, "scale"))
    shifted = b.node("Add", [scaled, b.const(_tmp(layer, "one"), np.float32(1.0))],
                     _tmp(layer, "shifted"), _tmp(layer, "shift"))
    power = b.node("Pow", [shifted, b.const(_tmp(layer, "exponent"), np.float32(-p.beta))],
                   _tmp(layer, "power"), _tmp(layer, "pow"))
    b.node("Mul", [x, power], layer.tops[0], layer.name)


@dataclass(frozen=True)
class _PoolWindow:
    kernel: Tuple[int, int]
    stride: Tuple[int, int]
    pad: Tuple[int, int]


def _emit_inner_product(b: _Builder, layer: "Layer", blobs) -> None:
    p = layer.params
    in_shape = b.shape(layer.bottoms[0])
    axis = p.axis % len(in_shape)
    names = initializer_names(b.graph, layer)
    flat = b.node("Flatten", [layer.bottoms[0]], _tmp(layer, "flat"), _tmp(layer, "flatten"),
                  axis=axis)
    out_shape = b.shape(layer.tops[0])
    gemm_out = layer.tops[0] if len(out_shape) == 2 else _tmp(layer, "gemm")
    inputs = [flat] + [b.const(name, blob) for name, blob in zip(names, blobs)]
    b.node("Gemm", inputs, gemm_out, layer.name, transB=1)
    if gemm_out != layer.tops[0]:
        b.node("Reshape", [gemm_out, b.const(_tmp(layer, "shape"),
                                             np.array(out_shape, np.int64))],
               layer.tops[0], _tmp(layer, "reshape"))


def _emit_batchnorm(b: _Builder, layer: "Layer", blobs) -> None:
    from hax_conn_core.graph.weights import batchnorm_statistics

    x = layer.bottoms[0]
    eps = float(layer.params.eps)
    in_shape = b.shape(x)
    channels = in_shape[1]
    if b.calibration is not None:
        _emit_batchnorm_calibration(b, layer, in_shape, eps)
        return
    mean, var = batchnorm_statistics(blobs)
    names = initializer_names(b.graph, layer)
    b.node("BatchNormalization",
           [x, b.const(_tmp(layer, "ones"), np.ones(channels, np.float32)),
            b.const(_tmp(layer, "zeros"), np.zeros(channels, np.float32)),
            b.const(names[0], mean), b.const(names[1], var)],
           layer.tops[0], layer.name, epsilon=eps)


def _emit_batchnorm_calibration(b: _Builder, layer: "Layer", in_shape, eps: float) -> None:
    """Normalise by the input's own statistics and expose them (weights.calibrate_batchnorm)."""
    x = layer.bottoms[0]
    per_channel = int(np.prod(in_shape)) // in_shape[1] >= b.calibration
    axes = [axis for axis in range(len(in_shape)) if axis != 1 or not per_channel]
    mean = b.node("ReduceMean", [x], _tmp(layer, "batch_mean"), _tmp(layer, "mean"),
                  axes=axes, keepdims=1)
    centred = b.node("Sub", [x, mean], _tmp(layer, "centred"), _tmp(layer, "centre"))
    square = b.node("Mul", [centred, centred], _tmp(layer, "square"), _tmp(layer, "square"))
    var = b.node("ReduceMean", [square], _tmp(layer, "batch_var"), _tmp(layer, "var"),
                 axes=axes, keepdims=1)
    shifted = b.node("Add", [var, b.const(_tmp(layer, "eps"), np.float32(eps))],
                     _tmp(layer, "var_eps"), _tmp(layer, "add_eps"))
    std = b.node("Sqrt", [shifted], _tmp(layer, "std"), _tmp(layer, "sqrt"))
    b.node("Div", [centred, std], layer.tops[0], layer.name)
    b.stat_outputs[layer.name] = (mean, var)


def _broadcast_shape(b: _Builder, layer: "Layer", blob_shape) -> Tuple[int, ...]:
    from hax_conn_core.graph.weights import scale_blob_shape

    rank = len(b.shape(layer.bottoms[0]))
    axis = layer.params.axis % rank
    return tuple(blob_shape) + (1,) * (rank - axis - len(scale_blob_shape(b.graph, layer)))


def _emit_scale(b: _Builder, layer: "Layer", blobs) -> None:
    from hax_conn_core.graph.weights import scale_blob_shape

    x = layer.bottoms[0]
    names = initializer_names(b.graph, layer)
    shape = _broadcast_shape(b, layer, scale_blob_shape(b.graph, layer))
    if len(layer.bottoms) > 1:
        gamma = b.node("Reshape", [layer.bottoms[1],
                                   b.const(_tmp(layer, "shape"), np.array(shape, np.int64))],
                       _tmp(layer, "gamma"), _tmp(layer, "reshape"))
    else:
        gamma = b.const(names[0], blobs[0].reshape(shape))
    scaled = layer.tops[0] if not layer.params.bias_term else _tmp(layer, "scaled")
    b.node("Mul", [x, gamma], scaled, layer.name)
    if layer.params.bias_term:
        beta = b.const(names[-1], blobs[-1].reshape(shape))
        b.node("Add", [scaled, beta], layer.tops[0], _tmp(layer, "bias"))


def _emit_eltwise(b: _Builder, layer: "Layer", blobs) -> None:
    p = layer.params
    inputs = list(layer.bottoms)
    if p.operation == "SUM":
        coeff = list(p.coeff)
        if coeff and len(coeff) != len(inputs):
            raise ModelError(f"{layer.where()}: {len(coeff)} coeff values for "
                             f"{len(inputs)} bottoms; expected one per bottom")
        if coeff and any(c != 1.0 for c in coeff):
            inputs = [name if c == 1.0 else
                      b.node("Mul", [name, b.const(_tmp(layer, f"coeff{i}"), np.float32(c))],
                             _tmp(layer, f"term{i}"), _tmp(layer, f"coeff{i}"))
                      for i, (name, c) in enumerate(zip(inputs, coeff))]
        op = "Sum"
    elif p.operation == "PROD":
        op = "Mul"
    elif p.operation == "MAX":
        op = "Max"
    else:
        raise ModelError(f"{layer.where()}: Eltwise operation {p.operation!r}; expected SUM, "
                         "PROD or MAX")
    if op == "Mul":
        while len(inputs) > 2:  # Mul is binary
            inputs = [b.node("Mul", inputs[:2], _tmp(layer, f"prod{len(inputs)}"),
                             _tmp(layer, f"prod{len(inputs)}"))] + inputs[2:]
    b.node(op, inputs, layer.tops[0], layer.name)


def _emit_simple(op: str, **attrs_of_params) -> Callable:
    def emit(b: _Builder, layer: "Layer", blobs) -> None:
        attrs = {key: read(layer.params) for key, read in attrs_of_params.items()}
        b.node(op, [layer.bottoms[0]], layer.tops[0], layer.name, **attrs)
    return emit


def _emit_relu(b: _Builder, layer: "Layer", blobs) -> None:
    slope = float(layer.params.negative_slope)
    if slope:
        b.node("LeakyRelu", [layer.bottoms[0]], layer.tops[0], layer.name, alpha=slope)
    else:
        b.node("Relu", [layer.bottoms[0]], layer.tops[0], layer.name)


def _emit_concat(b: _Builder, layer: "Layer", blobs) -> None:
    b.node("Concat", list(layer.bottoms), layer.tops[0], layer.name,
           axis=layer.params.axis % len(b.shape(layer.bottoms[0])))


def _emit_flatten(b: _Builder, layer: "Layer", blobs) -> None:
    shape = np.array(b.shape(layer.tops[0]), np.int64)
    b.node("Reshape", [layer.bottoms[0], b.const(_tmp(layer, "shape"), shape)],
           layer.tops[0], layer.name)


def _emit_split(b: _Builder, layer: "Layer", blobs) -> None:
    for position, top in enumerate(layer.tops):
        b.node("Identity", [layer.bottoms[0]], top, f"{layer.name}#{position}")


def _emit_softmax(b: _Builder, layer: "Layer", blobs) -> None:
    b.node("Softmax", [layer.bottoms[0]], layer.tops[0], layer.name,
           axis=layer.params.axis % len(b.shape(layer.bottoms[0])))


_EMITTERS: Dict[str, Callable] = {
    "Convolution": _emit_convolution,
    "Pooling": _emit_pooling,
    "LRN": _emit_lrn,
    "InnerProduct": _emit_inner_product,
    "BatchNorm": _emit_batchnorm,
    "Scale": _emit_scale,
    "Eltwise": _emit_eltwise,
    "Concat": _emit_concat,
    "ReLU": _emit_relu,
    "Dropout": _emit_simple("Identity"),
    "Softmax": _emit_softmax,
    "Flatten": _emit_flatten,
    "Split": _emit_split,
}


def _value_info(graph: "Graph", name: str):
    from onnx import TensorProto, helper

    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(graph.shape(name)))


def _build(graph: "Graph", weights: "Weights", chosen: LayerRange,
           calibration: Optional[int], model_name: str,
           external: Optional[Dict[str, np.ndarray]] = None
           ) -> Tuple["onnx.ModelProto", _Builder]:
    import onnx
    from onnx import helper

    from hax_conn_core.graph.weights import blob_shapes

    builder = _Builder(graph, weights, calibration, external)
    for layer in chosen.layers:
        emit = _EMITTERS.get(layer.type)
        if emit is None:
            raise ModelError(f"{graph.name}: {layer.where()} has type {layer.type!r}, which "
                             f"the ONNX exporter does not support; supported: "
                             f"{', '.join(sorted(_EMITTERS))}")
        shapes = blob_shapes(graph, layer)
        blobs = [np.asarray(blob, np.float32).reshape(shape)
                 for blob, shape in zip(weights.get(layer.name, []), shapes)]
        emit(builder, layer, blobs)
    outputs = [_value_info(graph, name) for name in chosen.outputs]
    for mean, var in builder.stat_outputs.values():
        outputs += [helper.make_tensor_value_info(mean, onnx.TensorProto.FLOAT, None),
                    helper.make_tensor_value_info(var, onnx.TensorProto.FLOAT, None)]
    onnx_graph = helper.make_graph(builder.nodes, model_name,
                                   [_value_info(graph, name) for name in chosen.inputs],
                                   outputs, initializer=builder.initializers)
    model = helper.make_model(onnx_graph, producer_name="hax_conn",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    return model, builder


def export(graph: "Graph", weights: Optional["Weights"] = None, seed: int = 0,
           first: Optional[int] = None, last: Optional[int] = None,
           outputs: Optional[Sequence[str]] = None, extra_outputs: Sequence[str] = (),
           check: bool = True, external: Optional[Dict[str, np.ndarray]] = None
           ) -> "onnx.ModelProto":
    """The layers ``first .. last`` of ``graph`` (default: all) as an ONNX model (opset 17).

    A graph read by the ONNX frontend is not re-emitted: its range is extracted from the
    user's model with its own initialisers (:mod:`.frontends.onnx.extract`; ``weights``,
    ``seed`` and ``external`` do not apply, ``external`` stays empty).

    ``weights`` (layer name -> Caffe blobs, see :mod:`.weights`) defaults to
    ``seeded_weights(graph, seed)``; pass the same dict to export several parts of one graph
    with the whole's weights without recomputing them. ``outputs`` / ``extra_outputs``: see
    :func:`layer_range`. ``check`` runs ``onnx.checker`` on the result.

    ``external``: a dict to receive the weight arrays instead of copying them into the model
    (initializer stubs marked external); give the same dict to ``OnnxRunner`` to run it. This
    is for in-process runs of big models (VGG's 550 MB): copying weights into protobuf and
    parsing them back costs seconds each time. Such a model cannot be saved as is, and is not
    passed to ``onnx.checker`` (which wants the external file).
    """
    import onnx

    from hax_conn_core.graph.weights import check_weights, seeded_weights

    if graph.frontend == "onnx":  # the user's own nodes and initialisers, as they are
        from hax_conn_core.graph.frontends.onnx.extract import extract_range

        return extract_range(graph, first, last, outputs, extra_outputs, check=check)
    chosen = layer_range(graph, first, last, outputs, extra_outputs)
    if weights is None:
        weights = seeded_weights(graph, seed)
    check_weights(graph, weights, chosen.layers)
    whole = chosen.first == 0 and chosen.last == len(graph.layers) - 1
    name = graph.name if whole else f"{graph.name}[{chosen.first}:{chosen.last}]"
    model, _ = _build(graph, weights, chosen, None, name, external)
    if check and external is None:
        try:
            onnx.checker.check_model(model, full_check=True)
        except onnx.checker.ValidationError as error:
            raise InternalError(f"{name}: exported ONNX model fails onnx.checker: "
                                f"{error}") from error
    return model


def export_calibration(graph: "Graph", weights: "Weights", min_elements_per_channel: int
                       ) -> Tuple["onnx.ModelProto", Dict[str, Tuple[str, str]],
                                  Dict[str, np.ndarray]]:
    """The whole graph with every BatchNorm normalising by its input's own statistics.

    Returns the model, per BatchNorm layer the names of its (mean, var) outputs (per
    channel, or per tensor where a channel has fewer than ``min_elements_per_channel``
    elements), and the external weights to run it with (see :func:`export`).
    """
    chosen = layer_range(graph)
    external: Dict[str, np.ndarray] = {}
    model, builder = _build(graph, weights, chosen, min_elements_per_channel,
                            f"{graph.name}-calibration", external)
    return model, builder.stat_outputs, external
