"""What the rest of hax_conn needs to know about each ONNX op type, in one place.

Per op type (:data:`OPS`): its cost class (FLOPs per output element, or a rule of its own),
whether it is an alias (no compute, no bytes: inference engines drop or alias it), whether every
backend fuses it into its producer (the fusion rule the cut rule reads), and the facts the DLA
limits are checked against (:func:`dla_facts`, keys of ``onnx_ops`` in config/devices/*.yaml).
Shapes come from ONNX shape inference, not from rules here (:mod:`.reader`).

FLOPs (docs/graph.md, "Costs"): 2 per multiply-add for Conv, ConvTranspose, Gemm and MatMul
(biases not counted, as for Caffe); pools the window area per output element; element-wise ops a
small per-element count (:data:`ELEMENTWISE`); data movement (Concat, Transpose, Slice,
Resize nearest...) no FLOPs but their bytes; an op not listed here one FLOP per output element,
an estimate.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

from hax_conn_core.graph.model import Graph, Layer, OnnxNodeParams

#: FLOPs per output element of element-wise ops (and of normalisations done per element).
ELEMENTWISE: Dict[str, int] = {
    "Relu": 1, "LeakyRelu": 2, "PRelu": 2, "Clip": 2, "Sigmoid": 4, "Tanh": 4,
    "HardSigmoid": 3, "HardSwish": 4, "Elu": 4, "Selu": 4, "Softplus": 4, "Mish": 6,
    "Gelu": 8, "Erf": 4, "Exp": 1, "Log": 1, "Sqrt": 1, "Reciprocal": 1, "Neg": 1, "Abs": 1,
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Max": 1, "Min": 1, "Pow": 1, "Sum": 1,
    "Mean": 1, "BatchNormalization": 2, "InstanceNormalization": 5,
    "LayerNormalization": 5, "Softmax": 3, "LogSoftmax": 3, "LRN": 8,
}
#: No compute and no bytes moved: engines drop them or alias their input.
ALIASES = frozenset({"Reshape", "Flatten", "Identity", "Squeeze", "Unsqueeze", "Dropout",
                     "Constant", "Shape", "Size"})
#: Data movement: no FLOPs, but inputs read and outputs written.
MOVES = frozenset({"Concat", "Transpose", "Slice", "Split", "Gather", "Pad", "Expand",
                   "Tile", "Cast", "DepthToSpace", "SpaceToDepth", "Upsample"})
#: Ops every backend fuses into the producer of their input when that producer is one of
#: ``FUSING_PRODUCERS`` (or a layer itself fused into one) and reads nothing else: TensorRT
#: fuses Conv + BatchNorm + activation, onnxruntime Conv + BatchNormalization and Conv /
#: Gemm + activation, our torch path folds them the same way.
FUSED_ACTIVATIONS = frozenset({"Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh",
                               "HardSigmoid"})
FUSING_PRODUCERS = frozenset({"Conv", "ConvTranspose", "Gemm"})
#: Linear ops folded into a convolution's weights and bias (BatchNormalization; Mul / Add /
#: Sub / Div by a constant: TensorRT's scale fusion, onnxruntime's Conv-Mul / Conv-Add
#: fusions), and into MatMul / Gemm for a constant Add (onnxruntime's MatMul-Add fusion).
LINEAR_OPS = frozenset({"BatchNormalization", "Mul", "Add", "Sub", "Div"})


def params_of(layer: Layer) -> OnnxNodeParams:
    return layer.params  # type: ignore[return-value]


def _shape(graph: Graph, name: str) -> Tuple[int, ...]:
    return tuple(graph.tensors[name].shape) if name in graph.tensors else ()


def _first_shape(graph: Graph, layer: Layer) -> Tuple[int, ...]:
    return _shape(graph, layer.bottoms[0]) if layer.bottoms else ()


def _out_elements(graph: Graph, layer: Layer) -> int:
    return sum(math.prod(_shape(graph, top)) for top in layer.tops)


def _weight(p: OnnxNodeParams, position: int):
    if position < len(p.inputs):
        return p.constants.get(p.inputs[position])
    return None


def flops(graph: Graph, layer: Layer) -> int:
    """Estimated FLOPs of one ONNX node (see the module docstring)."""
    p = params_of(layer)
    op = p.op_type
    out = _out_elements(graph, layer)
    if op in ALIASES or op in MOVES or not layer.bottoms:
        return 0
    if op == "Conv":
        weight = _weight(p, 1)
        if weight is None:
            return out
        return 2 * out * math.prod(weight.shape[1:])  # (Cin / group) x kernel per output
    if op == "ConvTranspose":
        weight = _weight(p, 1)
        if weight is None:
            return out
        # every input element scatters (Cout / group) x kernel multiply-adds
        return 2 * math.prod(_first_shape(graph, layer)) * math.prod(weight.shape[1:])
    if op in ("Gemm", "MatMul"):
        a = _first_shape(graph, layer)
        if not a:
            return out
        transposed = op == "Gemm" and p.attr("transA", 0)
        inner = a[-2] if transposed and len(a) >= 2 else a[-1]
        return 2 * out * inner
    if op in ("MaxPool", "AveragePool", "LpPool"):
        return out * math.prod(p.attr("kernel_shape", [1]))
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        return math.prod(_first_shape(graph, layer))
    if op.startswith("Reduce"):
        return math.prod(_first_shape(graph, layer))
    if op == "Resize":
        mode = p.attr("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        return 0 if mode == "nearest" else out * (4 if mode == "linear" else 16)
    return out * ELEMENTWISE.get(op, 1)


#: Ops whose constant inputs are sizes, scales, bounds or indices, not weights.
SHAPE_INPUTS = frozenset({"Resize", "Upsample", "Reshape", "Slice", "Pad", "Expand", "Tile",
                          "Clip", "Split", "Squeeze", "Unsqueeze", "ConstantOfShape", "Gather",
                          "ReduceMean", "ReduceSum", "ReduceMax", "TopK", "Range"})


def weight_elements(layer: Layer) -> Tuple[int, int]:
    """(learned parameters, stored weight elements): the node's floating-point initialiser
    and Constant inputs (none for ops whose constants are shapes or scales, such as Resize);
    BatchNormalization's mean and variance are statistics (stored, not learned), as for
    Caffe's BatchNorm."""
    p = params_of(layer)
    learned = stored = 0
    if p.op_type in SHAPE_INPUTS:
        return 0, 0
    for position, name in enumerate(p.inputs):
        value = p.constants.get(name)
        if value is None or getattr(value, "dtype", None) is None or \
                value.dtype.kind != "f":
            continue
        size = int(value.size)
        stored += size
        if not (p.op_type == "BatchNormalization" and position >= 3):
            learned += size
    return learned, stored


def is_alias(layer: Layer) -> bool:
    return params_of(layer).op_type in ALIASES


def fuses_into_producer(op_type: str, producer: Optional[Layer],
                        constant_operand: bool = False) -> bool:
    """Whether a node of ``op_type`` reading ``producer``'s output (and, with
    ``constant_operand``, a constant as its other operand) is fused into it."""
    if producer is None:
        return False
    producer_op = params_of(producer).op_type
    # a convolution, or a linear op already folded into one
    after_conv = producer_op in ("Conv", "ConvTranspose") or (
        producer.fused and producer_op in LINEAR_OPS)
    if op_type == "BatchNormalization":
        return after_conv
    if op_type in ("Mul", "Div"):
        return constant_operand and after_conv
    if op_type in ("Add", "Sub"):
        return constant_operand and (after_conv or producer_op in ("MatMul", "Gemm"))
    if op_type in FUSED_ACTIVATIONS:
        return producer_op in FUSING_PRODUCERS or producer.fused
    return False


# ---------------------------------------------------------------------------------------------
# DLA facts: what the limits of config/devices/*.yaml "onnx_ops" are checked against


def _pairs(p: OnnxNodeParams, name: str, rank: int, default: int) -> Tuple[int, ...]:
    value = p.attr(name)
    return tuple(value) if value else (default,) * rank


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dla_facts(graph: Graph, layer: Layer) -> Dict[str, Any]:
    """The values an accelerator's limits are checked against, by limit key (the same keys
    as the Caffe frontend's :func:`hax_conn_core.graph.frontends.caffe.ops.dla_facts`):

    ``spatial`` (ordered ``kernel`` / ``window`` / ``pad`` / ``stride`` / ``dilation`` value
    tuples; ONNX pads list begins then ends), ``groups``, ``channels`` ((what, count) of the
    first input and output), ``axes`` (the op's axis, non-negative), ``modes`` (Resize mode),
    ``local_sizes`` (LRN), ``scales`` (Resize's per-axis output / input size ratios),
    ``ranks`` (rank of the first input), ``inputs`` (activation inputs) and
    ``constant_weights`` (Conv / Gemm weights are initialisers).
    """
    p = params_of(layer)
    op = p.op_type
    x = _first_shape(graph, layer)
    y = _shape(graph, layer.tops[0]) if layer.tops else ()
    spatial: Dict[str, Tuple[int, ...]] = {}
    facts: Dict[str, Any] = {"ranks": len(x), "inputs": len(layer.bottoms)}
    facts["channels"] = tuple((what, shape[1]) for what, shape in (("input", x), ("output", y))
                              if len(shape) >= 2)
    if op in ("Conv", "ConvTranspose"):
        weight = _weight(p, 1)
        shape = weight.shape[2:] if weight is not None else ()
        kernel = tuple(p.attr("kernel_shape") or shape)
        pads = _pairs(p, "pads", 2 * len(kernel), 0)
        if _text(p.attr("auto_pad", "NOTSET")) not in ("NOTSET", "VALID"):
            pads = tuple(max(k - 1, 0) for k in kernel)  # SAME: at most kernel - 1 a side
        spatial = {"kernel": kernel, "pad": pads, "stride": _pairs(p, "strides", len(kernel), 1),
                   "dilation": _pairs(p, "dilations", len(kernel), 1)}
        facts.update(groups=p.attr("group", 1), constant_weights=weight is not None)
    elif op in ("MaxPool", "AveragePool"):
        window = tuple(p.attr("kernel_shape", ()))
        spatial = {"window": window, "kernel": window,
                   "pad": _pairs(p, "pads", 2 * len(window), 0),
                   "stride": _pairs(p, "strides", len(window), 1)}
    elif op in ("GlobalAveragePool", "GlobalMaxPool"):
        spatial = {"window": tuple(x[2:]), "kernel": tuple(x[2:])}
    elif op == "Gemm":
        facts["constant_weights"] = _weight(p, 1) is not None
    elif op in ("Concat", "Softmax", "LogSoftmax", "Split", "Gather", "Flatten"):
        axis = p.attr("axis", -1 if op in ("Softmax", "LogSoftmax") else
                      (1 if op == "Flatten" else 0))
        facts["axes"] = (axis % len(x),) if x else (axis,)
    elif op == "LRN":
        facts["local_sizes"] = (p.attr("size", 0),)
    elif op == "Resize":
        facts["modes"] = (_text(p.attr("mode", "nearest")),)
        facts["scales"] = tuple(b / a if a else 0.0 for a, b in zip(x, y))
    facts["spatial"] = spatial
    return facts
