"""Shapes that ONNX shape inference leaves open behind shape arithmetic.

Exporters with dynamic axes write ``Shape -> Gather -> Unsqueeze -> Concat -> Reshape``; once
the input shape is fixed, those values are known, but ``onnx.shape_inference`` (even with data
propagation) does not carry them through every op. Here the small integer tensors computed
from static shapes and constants are evaluated (``onnx.reference``, one node at a time) and the
shapes are inferred again on a copy of the model where they are initialisers. The user's model
itself is not changed: the copy serves only to learn shapes; the graph keeps the nodes.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from hax_conn_core.errors import ModelError

#: Ops evaluated when all their inputs are known: cheap shape arithmetic.
FOLDABLE = frozenset({"Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Add",
                      "Sub", "Mul", "Div", "Reshape", "ConstantOfShape", "Range", "Identity",
                      "Equal", "Where", "Expand", "ReduceProd", "Floor", "Ceil", "Neg", "Abs",
                      "Max", "Min", "Mod", "Not", "Less", "Greater"})
#: Largest tensor (elements) evaluated here: shape arithmetic is tiny; weights are not folded.
MAX_ELEMENTS = 4096
ROUNDS = 4


def _static_shapes(model) -> Dict[str, Tuple[int, ...]]:
    shapes: Dict[str, Tuple[int, ...]] = {}
    graph = model.graph
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        tensor_type = vi.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if None not in dims:
            shapes[vi.name] = tuple(dims)
    return shapes


def _evaluate(node, inputs: List[np.ndarray], opset: int):
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [f"in{i}" if name else "" for i, name in enumerate(node.input)]
    copy = helper.make_node(node.op_type, names, [f"out{i}" for i in range(len(node.output))],
                            domain=node.domain)
    copy.attribute.extend(node.attribute)
    evaluator = ReferenceEvaluator(copy, opsets={"": opset})
    feed = {name: value for name, value in zip(names, inputs) if name}
    return evaluator.run(None, feed)


def _fold(model, shapes, known: Dict[str, np.ndarray], opset: int) -> Dict[str, np.ndarray]:
    """Values of node outputs computable from ``known`` values and static shapes."""
    folded: Dict[str, np.ndarray] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx") or all(out in known for out in node.output):
            continue
        if node.op_type == "Shape" and node.input[0] in shapes:
            shape = np.array(shapes[node.input[0]], np.int64)
            attrs = {a.name: a.i for a in node.attribute}
            start, end = attrs.get("start", 0), attrs.get("end", len(shape))
            values = [shape[start:end]]
        elif node.op_type == "Size" and node.input[0] in shapes:
            values = [np.array(int(np.prod(shapes[node.input[0]])), np.int64)]
        elif node.op_type in FOLDABLE and node.input and all(
                not name or name in known for name in node.input):
            inputs = [known[name] if name else None for name in node.input]
            if any(value is not None and value.size > MAX_ELEMENTS for value in inputs):
                continue
            try:
                values = _evaluate(node, inputs, opset)
            except Exception:  # noqa: BLE001 - an op the reference cannot run stays open
                continue
        else:
            continue
        for name, value in zip(node.output, values):
            if name and np.asarray(value).size <= MAX_ELEMENTS:
                known[name] = folded[name] = np.asarray(value)
    return folded


def infer_with_folding(model, infer, constants: Dict[str, np.ndarray], opset: int):
    """``model`` inferred by ``infer``; where shapes stay open, the shapes learnt from a copy
    with shape arithmetic folded into initialisers are added to its ``value_info``."""
    from onnx import numpy_helper

    inferred = infer(model)
    known = {name: value for name, value in constants.items()
             if np.asarray(value).size <= MAX_ELEMENTS}
    for _ in range(ROUNDS):
        outputs = [name for node in inferred.graph.node for name in node.output if name]
        shapes = _static_shapes(inferred)
        if all(name in shapes for name in outputs):
            return inferred
        folded = _fold(inferred, shapes, known, opset)
        if not folded:
            return inferred
        copy = type(model)()
        copy.CopyFrom(model)
        kept = [node for node in copy.graph.node
                if not all(out in known or not out for out in node.output)]
        del copy.graph.node[:]
        copy.graph.node.extend(kept)
        present = {init.name for init in copy.graph.initializer}
        used = {name for node in kept for name in node.input}
        for name, value in known.items():
            if name in used and name not in present:
                copy.graph.initializer.append(numpy_helper.from_array(value, name))
        try:
            learnt = _static_shapes(infer(copy))
        except ModelError:  # the open shapes are reported by the reader
            return inferred
        for node in inferred.graph.node:
            for name in node.output:
                if name and name not in shapes and name in learnt:
                    _set_shape(inferred, name, learnt[name], copy)
    return inferred


def _set_shape(model, name: str, dims, source) -> None:
    """Write ``dims`` as ``name``'s shape in ``model.value_info`` (element type from
    ``source``'s inference)."""
    from onnx import helper

    elem = None
    for vi in list(source.graph.value_info) + list(source.graph.output):
        if vi.name == name:
            elem = vi.type.tensor_type.elem_type
    for vi in model.graph.output:
        if vi.name == name:
            made = helper.make_tensor_value_info(name, elem or vi.type.tensor_type.elem_type,
                                                 list(dims))
            vi.type.CopyFrom(made.type)
            return
    for vi in model.graph.value_info:
        if vi.name == name:
            model.graph.value_info.remove(vi)
            break
    model.graph.value_info.append(helper.make_tensor_value_info(name, elem or 1, list(dims)))
