"""An imported ONNX model made static for the cuda-sm torch path, and what that path covers.

The cuda-sm backend captures every engine as CUDA graphs, which replay fixed kernels on fixed
addresses: no shape may be computed, and no value read back to the host, while the engine
runs. :func:`prepare` therefore fixes the model before torch sees it:

* input shapes: every dimension fixed (``input_shapes`` for the symbolic ones, else a
  ModelError naming the input);
* shape inference (``onnx.shape_inference`` with data propagation) gives every tensor a
  static shape; one left unknown is a ModelError naming it;
* constant folding: every node whose inputs are all constants (initialisers, ``Constant``
  outputs, already folded tensors) is evaluated with onnx's reference evaluator, and
  ``Shape`` / ``Size`` of a tensor of static shape become constants, repeated with fresh
  shape inference until nothing changes. The shape-computing subgraphs that torch exports
  carry (``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``) thus vanish before building.

:data:`TORCH_OPS` lists the op types the torch builder (onnx_torch.py) runs on tensors, each
with its attribute rules; :func:`unsupported_ops` reports the nodes of a prepared model
outside them, as ``(node name, op type)``. All of this needs onnx and numpy only, no torch,
so CI tests it (test/core/runtime/backends/test_onnx_prepare.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from hax_conn_core.errors import BackendError, ModelError

Shape = Tuple[int, ...]
#: Nodes never folded even with constant inputs: their value differs run to run.
NONDETERMINISTIC = frozenset({"RandomNormal", "RandomNormalLike", "RandomUniform",
                              "RandomUniformLike", "Multinomial", "Bernoulli"})
#: Passes of fold-then-infer before giving up (each pass folds at least one node).
MAX_PASSES = 64


def _onnx():
    from hax_conn_core.imports import required

    return required("onnx", "onnx", "an imported ONNX model")


def _attr(node, name: str, default=None):
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- coverage: per op type, None when the torch builder runs the node, else why not -------
def _always(node, opset) -> Optional[str]:
    return None


def _resize_rule(node, opset) -> Optional[str]:
    mode = _text(_attr(node, "mode", "nearest"))
    if mode not in ("nearest", "linear"):
        return f"mode {mode!r} (nearest and linear are supported)"
    if node.op_type == "Upsample":
        return None if mode == "nearest" else "Upsample mode 'linear' (use Resize)"
    transform = _text(_attr(node, "coordinate_transformation_mode", "half_pixel"))
    if mode == "linear" and transform not in ("half_pixel", "pytorch_half_pixel",
                                              "align_corners", "asymmetric"):
        return f"linear coordinate_transformation_mode {transform!r}"
    if mode == "nearest" and transform == "tf_crop_and_resize":
        return "coordinate_transformation_mode 'tf_crop_and_resize'"
    if _attr(node, "antialias", 0):
        return "antialias=1"
    if _attr(node, "axes") is not None:
        return "the axes attribute"
    return None


def _pad_rule(node, opset) -> Optional[str]:
    mode = _text(_attr(node, "mode", "constant"))
    return None if mode in ("constant", "reflect", "edge") else f"mode {mode!r}"


def _auto_pad_rule(node, opset) -> Optional[str]:
    auto = _text(_attr(node, "auto_pad", "NOTSET"))
    return None if auto in ("NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER") else \
        f"auto_pad {auto!r}"


def _pool_rule(node, opset) -> Optional[str]:
    if node.op_type == "MaxPool" and len(node.output) > 1 and node.output[1]:
        return "the Indices output"
    if _attr(node, "storage_order", 0):
        return "storage_order=1"
    return _auto_pad_rule(node, opset)


def _dropout_rule(node, opset) -> Optional[str]:
    return "the mask output" if len(node.output) > 1 and node.output[1] else None


def _cast_rule(node, opset) -> Optional[str]:
    from onnx import TensorProto

    to = _attr(node, "to")
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.BFLOAT16)
    return None if to in floats else "a cast of a computed tensor to a non-float type"


def _gemm_rule(node, opset) -> Optional[str]:
    return None


#: Op type -> attribute rule (None: runs). The torch builder has one builder per key
#: (onnx_torch.BUILDERS; a device test checks the two agree).
TORCH_OPS: Dict[str, Callable] = {
    **{op: _always for op in (
        "Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish", "Clip", "Elu",
        "PRelu", "Softplus", "Erf", "Exp", "Log", "Sqrt", "Neg", "Abs", "Reciprocal", "Pow",
        "Add", "Sub", "Mul", "Div", "Max", "Min", "Sum", "Concat", "Split", "Slice",
        "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Expand", "Softmax",
        "LogSoftmax", "GlobalAveragePool", "GlobalMaxPool", "Gemm", "MatMul", "LRN",
        "Identity", "BatchNormalization", "LayerNormalization", "ReduceMean", "ReduceSum",
        "ReduceMax", "Gather", "Tile")},
    "Conv": _auto_pad_rule, "ConvTranspose": _auto_pad_rule,
    "MaxPool": _pool_rule, "AveragePool": _pool_rule,
    "Resize": _resize_rule, "Upsample": _resize_rule, "Pad": _pad_rule,
    "Dropout": _dropout_rule, "Cast": _cast_rule,
}


def refusals(model) -> List[Tuple[str, str, str]]:
    """``(node name, op type, why)`` for each node the torch path cannot run (in node
    order; the name is ``#<position>`` for an unnamed node)."""
    opset = opset_of(model)
    found = []
    for position, node in enumerate(model.graph.node):
        name = node.name or f"#{position}"
        rule = TORCH_OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
        if rule is None:
            domain = f" (domain {node.domain!r})" if node.domain not in ("", "ai.onnx") else ""
            found.append((name, node.op_type, f"op type {node.op_type!r}{domain} is not in "
                                              "the torch path"))
            continue
        why = rule(node, opset)
        if why:
            found.append((name, node.op_type, why))
    return found


def unsupported_ops(model, input_shapes: Optional[Mapping[str, Sequence[int]]] = None
                    ) -> List[Tuple[str, str]]:
    """``(node name, op type)`` of every node the cuda-sm torch path cannot run, after
    folding shape computations (:func:`prepare`). Needs no torch. A model whose shapes
    cannot be made static is returned unfolded: its Shape nodes are then listed too."""
    try:
        model = prepare(model, input_shapes).model
    except ModelError:
        pass
    return [(name, op) for name, op, _ in refusals(model)]


def check_supported(model, label: str) -> None:
    """A BackendError naming every node of ``model`` the torch path lacks (``label``: the
    engine, for the message)."""
    found = refusals(model)
    if found:
        listed = "; ".join(f"node {name!r} ({op}): {why}" for name, op, why in found[:8])
        more = f"; and {len(found) - 8} more" if len(found) > 8 else ""
        raise BackendError(f"{label}: the cuda-sm torch path cannot run {len(found)} node(s) "
                           f"of this model: {listed}{more}; onnxruntime and TensorRT take "
                           "ONNX natively")


# --- static shapes and folding --------------------------------------------------------------
@dataclass
class PreparedModel:
    """A folded model with every tensor's static shape and every constant's value."""

    model: object  # onnx.ModelProto
    shapes: Dict[str, Shape]
    constants: Dict[str, np.ndarray]
    opset: int
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]

    def ops(self) -> List[str]:
        return [node.op_type for node in self.model.graph.node]


def opset_of(model) -> int:
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return int(entry.version)
    return 1


def _dims(value_info) -> Optional[List]:
    kind = value_info.type.WhichOneof("value")
    if kind != "tensor_type" or not value_info.type.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def _fix_inputs(model, input_shapes, where: str) -> None:
    initialisers = {init.name for init in model.graph.initializer}
    given = dict(input_shapes or {})
    names = [i.name for i in model.graph.input if i.name not in initialisers]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ModelError(f"{where}: input_shapes names {unknown}; the model's inputs are "
                         f"{names}")
    for value in model.graph.input:
        if value.name in initialisers:
            continue
        dims = _dims(value)
        if value.name in given:
            shape = [int(d) for d in given[value.name]]
            if dims is not None and len(dims) != len(shape):
                raise ModelError(f"{where}: input {value.name!r} has rank {len(dims)}; "
                                 f"input_shapes gives {tuple(shape)}")
        elif dims is None or any(not isinstance(d, int) or d <= 0 for d in dims):
            raise ModelError(f"{where}: input {value.name!r} has dynamic shape {dims}; the "
                             "cuda-sm torch path needs static shapes (give --input-shape)")
        else:
            shape = dims
        tensor_shape = value.type.tensor_type.shape
        del tensor_shape.dim[:]
        for size in shape:
            tensor_shape.dim.add().dim_value = size


def _evaluate(node, feeds: Dict[str, np.ndarray], opsets) -> List[np.ndarray]:
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype),
                                            a.shape) for name, a in feeds.items()]
    outputs = [helper.make_empty_tensor_value_info(name) for name in node.output if name]
    graph = helper.make_graph([node], "fold", inputs, outputs)
    model = helper.make_model(graph, opset_imports=list(opsets))
    del numpy_helper  # values come back as numpy arrays already
    return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, feeds)]


def _fold_pass(model, shapes: Dict[str, Shape]) -> int:
    """Folds what it can in place; returns how many nodes it folded."""
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept, folded = [], 0
    for node in graph.node:
        value = None
        if node.op_type in ("Shape", "Size") and node.domain in ("", "ai.onnx") \
                and node.input[0] in shapes:
            shape = shapes[node.input[0]]
            if node.op_type == "Size":
                value = [np.array(int(np.prod(shape, dtype=np.int64)), np.int64)]
            else:
                rank = len(shape)
                start, end = _attr(node, "start", 0), _attr(node, "end", rank)
                value = [np.array(shape[slice(start, end)], np.int64)]
        elif node.domain in ("", "ai.onnx") and node.op_type not in NONDETERMINISTIC \
                and all(not name or name in constants for name in node.input) \
                and not any(a.type in (helper.AttributeProto.GRAPH,
                                       helper.AttributeProto.GRAPHS)
                            for a in node.attribute):
            feeds = {name: constants[name] for name in node.input if name}
            value = _evaluate(node, feeds, model.opset_import)
        if value is None:
            kept.append(node)
            continue
        folded += 1
        for name, array in zip([n for n in node.output if n], value):
            constants[name] = array
            graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    if folded:
        del graph.node[:]
        graph.node.extend(kept)
        used = {name for node in kept for name in node.input} | {o.name for o in graph.output}
        keep = [init for init in graph.initializer if init.name in used]
        del graph.initializer[:]
        graph.initializer.extend(keep)
        names = {init.name for init in keep}
        inputs = [i for i in graph.input if i.name not in names or i.name in used]
        del graph.input[:]
        graph.input.extend(inputs)
    return folded


def _static_shapes(model) -> Dict[str, Shape]:
    graph = model.graph
    shapes: Dict[str, Shape] = {}
    for value in list(graph.input) + list(graph.value_info) + list(graph.output):
        dims = _dims(value)
        if dims is not None and all(isinstance(d, int) and d >= 0 for d in dims):
            shapes[value.name] = tuple(int(d) for d in dims)
    from onnx import numpy_helper

    for init in graph.initializer:
        shapes[init.name] = tuple(numpy_helper.to_array(init).shape)
    return shapes


def prepare(model, input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
            where: str = "") -> PreparedModel:
    """``model`` (a ModelProto, whole or an extracted range) with fixed input shapes, folded
    constants and static shapes everywhere (module docstring). The caller's model is not
    changed. A shape left unknown is a ModelError naming the tensor."""
    onnx = _onnx()
    where = where or (model.graph.name or "onnx model")
    work = onnx.ModelProto()
    work.CopyFrom(model)
    graph = work.graph
    initialisers = {init.name for init in graph.initializer}
    # Old exporters list initialisers among the inputs; they are constants here.
    real_inputs = [i for i in graph.input if i.name not in initialisers]
    del graph.input[:]
    graph.input.extend(real_inputs)
    _fix_inputs(work, input_shapes, where)
    for _ in range(MAX_PASSES):
        graph = work.graph  # CopyFrom below replaces the message: never hold it across
        del graph.value_info[:]
        for output in graph.output:  # re-inferred: a stale output shape would stick
            output.type.tensor_type.ClearField("shape")
        try:
            inferred = onnx.shape_inference.infer_shapes(work, strict_mode=True,
                                                         data_prop=True)
        except Exception as error:  # onnx's InferenceError and friends
            raise ModelError(f"{where}: ONNX shape inference failed: {error}") from None
        work.CopyFrom(inferred)
        shapes = _static_shapes(work)
        if not _fold_pass(work, shapes):
            break
    shapes = _static_shapes(work)
    graph = work.graph
    for node in graph.node:
        for name in node.output:
            if name and name not in shapes:
                raise ModelError(f"{where}: tensor {name!r} (output of node "
                                 f"{node.name or node.op_type!r}, {node.op_type}) has no "
                                 "static shape after shape inference; the cuda-sm torch "
                                 "path needs one")
    from onnx import numpy_helper

    constants = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    return PreparedModel(work, shapes, constants, opset_of(work),
                         tuple(i.name for i in graph.input), tuple(o.name for o in graph.output))
