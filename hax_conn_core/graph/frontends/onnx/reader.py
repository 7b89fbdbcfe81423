"""Reading an ONNX file into the typed graph (docs/graph.md, "Frontends").

``load_onnx(path, input_shape=...)`` checks the file (``onnx.checker``), fixes dynamic input
dimensions from ``input_shape``, infers every tensor's shape (``onnx.shape_inference`` with
data propagation) and makes one :class:`~hax_conn_core.graph.model.Layer` per node:

* layer index = the node's position in the graph's node list (docs/conventions.md, "Layer
  indices and cuts"); ``Layer.type`` is the op type, ``Layer.params`` an ``OnnxNodeParams``;
* ``bottoms`` are the node's non-constant inputs: initialisers, Constant-node outputs and
  anything computed from constants only are constants, never tensors crossing a cut;
* ``Layer.fused`` follows :func:`.ops.fuses_into_producer` (Conv -> BatchNormalization -> Relu,
  Conv -> Mul / Add by constants, MatMul -> Add of a constant stay on one accelerator);
* shapes behind shape arithmetic (``Shape -> Gather -> Concat -> Reshape``) are learnt by
  folding it on a copy (:mod:`.fold`);
* the graph keeps the shape-fixed, inferred ModelProto (``Graph.origin``), from which ranges
  are extracted as they are (:mod:`.extract`), the user's initialisers untouched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple, Union

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.model import Graph, Layer, OnnxNodeParams, TensorInfo

#: The default-domain opsets this reader and its extraction are tested with: 11 (Resize with
#: scales, Pad with inputs) up to 21.
OPSET_MIN = 11
OPSET_MAX = 21

InputShape = Union[None, Sequence[int], Mapping[str, Sequence[int]]]


def parse_input_shape(text: str) -> Tuple[int, ...]:
    """``"1x3x224x224"`` (or ``1,3,224,224``) as a shape; ModelError when malformed."""
    parts = text.replace(",", "x").lower().split("x")
    try:
        shape = tuple(int(part) for part in parts)
    except ValueError:
        shape = ()
    if not shape or any(dim < 1 for dim in shape):
        raise ModelError(f"input shape {text!r}; expected positive integers such as 1x3x224x224")
    return shape


def _read(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise ModelError(f"{path}: no such ONNX file")
    data = path.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise ModelError(f"{path}: not an ONNX model (the file does not parse as an ONNX "
                         f"protobuf, truncated or another format: {error})") from None
    if not model.ir_version or not model.graph.node:
        raise ModelError(f"{path}: not an ONNX model (no IR version or no nodes after parsing "
                         f"{len(data)} bytes; truncated or another format)")
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer):
        from onnx.external_data_helper import load_external_data_for_model

        try:
            load_external_data_for_model(model, str(path.parent))
        except (OSError, ValueError) as error:
            raise ModelError(f"{path}: its external weight data could not be read: "
                             f"{error}") from None
    return model


def _check_opset(path: Path, model) -> int:
    versions = {entry.domain: entry.version for entry in model.opset_import}
    version = versions.get("", versions.get("ai.onnx"))
    if version is None:
        raise ModelError(f"{path}: imports no default-domain (ai.onnx) opset; expected one in "
                         f"{OPSET_MIN}..{OPSET_MAX}")
    if not OPSET_MIN <= version <= OPSET_MAX:
        raise ModelError(f"{path}: opset {version}; hax_conn reads ONNX opsets "
                         f"{OPSET_MIN}..{OPSET_MAX} (convert it with "
                         "onnx.version_converter.convert_version)")
    return version


def _dims(value_info) -> List[Union[int, str]]:
    tensor_type = value_info.type.tensor_type
    if not tensor_type.HasField("shape"):
        return ["?"]
    return [dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else
            (dim.dim_param or "?") for dim in tensor_type.shape.dim]


def _shape_text(dims) -> str:
    return "x".join(str(d) for d in dims)


def _fix_inputs(path: Path, model, input_shape: InputShape) -> None:
    """Write concrete dimensions into the model's inputs, or say which need a shape."""
    initialisers = {init.name for init in model.graph.initializer}
    inputs = [vi for vi in model.graph.input if vi.name not in initialisers]
    if input_shape is None:
        wanted: Dict[str, Tuple[int, ...]] = {}
    elif isinstance(input_shape, Mapping):
        wanted = {name: tuple(shape) for name, shape in input_shape.items()}
        unknown = sorted(set(wanted) - {vi.name for vi in inputs})
        if unknown:
            raise ModelError(f"{path}: input shape given for {', '.join(unknown)}, which the "
                             f"model has no input called; its inputs: "
                             f"{', '.join(vi.name for vi in inputs)}")
    else:
        if len(inputs) != 1:
            raise ModelError(f"{path}: one input shape given, but the model has {len(inputs)} "
                             f"inputs ({', '.join(vi.name for vi in inputs)}); expected one "
                             "shape per input name")
        wanted = {inputs[0].name: tuple(input_shape)}
    for vi in inputs:
        dims = _dims(vi)
        shape = wanted.get(vi.name)
        if shape is None:
            if any(not isinstance(d, int) for d in dims):
                raise ModelError(f"{path}: input {vi.name!r} has dynamic dimensions "
                                 f"({_shape_text(dims)}); give its shape with --input-shape "
                                 f"(e.g. --input-shape "
                                 f"{_shape_text(d if isinstance(d, int) else 1 for d in dims)})"
                                 " or input_shape in the config")
            continue
        if dims != ["?"] and (len(dims) != len(shape) or any(
                isinstance(d, int) and d != s for d, s in zip(dims, shape))):
            raise ModelError(f"{path}: input shape {_shape_text(shape)} for {vi.name!r} does "
                             f"not fit the model's {_shape_text(dims)}")
        tensor_shape = vi.type.tensor_type.shape
        del tensor_shape.dim[:]
        for size in shape:
            tensor_shape.dim.add().dim_value = int(size)
    for vi in model.graph.output:  # declared dynamic output dims: let inference fill them
        for dim in vi.type.tensor_type.shape.dim:
            if dim.HasField("dim_param"):
                dim.ClearField("dim_param")


def _infer(path: Path, model):
    import onnx

    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        message = " ".join(str(error).split())
        raise ModelError(f"{path}: fails onnx.checker: {message[:400]}") from None
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True,
                                                 data_prop=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError,
            RuntimeError) as error:
        message = " ".join(str(error).split())
        raise ModelError(f"{path}: ONNX shape inference failed: {message[:400]}") from None


def _constant_values(model) -> Tuple[Dict[str, object], Set[str]]:
    """Initialiser and Constant-node values (name -> numpy array), and the names of every
    constant tensor (those, and outputs of nodes reading constants only)."""
    from onnx import helper, numpy_helper

    values: Dict[str, object] = {init.name: numpy_helper.to_array(init)
                                 for init in model.graph.initializer}
    constant: Set[str] = set(values)
    for node in model.graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attribute = node.attribute[0] if node.attribute else None
            if attribute is not None and attribute.name == "value":
                values[node.output[0]] = numpy_helper.to_array(attribute.t)
            elif attribute is not None:
                import numpy as np

                values[node.output[0]] = np.asarray(helper.get_attribute_value(attribute))
            constant.update(node.output)
        elif all(not name or name in constant for name in node.input) and node.input:
            constant.update(node.output)
    return values, constant


def _attributes(node) -> Dict[str, object]:
    from onnx import AttributeProto, helper, numpy_helper

    found: Dict[str, object] = {}
    for attribute in node.attribute:
        if attribute.type == AttributeProto.TENSOR:
            found[attribute.name] = numpy_helper.to_array(attribute.t)
        elif attribute.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            found[attribute.name] = attribute  # subgraphs (If, Loop) kept as protos
        else:
            value = helper.get_attribute_value(attribute)
            found[attribute.name] = value.decode() if isinstance(value, bytes) else value
    return found


def _dtypes(model) -> Dict[str, str]:
    """Tensor name -> numpy dtype name, where inference or the file says it."""
    from onnx import helper

    found: Dict[str, str] = {}
    graph = model.graph
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        elem = vi.type.tensor_type.elem_type
        if elem:
            try:
                found[vi.name] = helper.tensor_dtype_to_np_dtype(elem).name
            except (KeyError, TypeError, ValueError):
                found[vi.name] = f"onnx-type-{elem}"
    return found


def _shapes(model) -> Dict[str, Tuple[Union[int, str], ...]]:
    shapes: Dict[str, Tuple[Union[int, str], ...]] = {}
    graph = model.graph
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            shapes[vi.name] = tuple(_dims(vi))
    for init in graph.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _static(dims) -> bool:
    return dims is not None and all(isinstance(d, int) for d in dims)


def load_onnx(path: Union[str, Path], input_shape: InputShape = None,
              name: Optional[str] = None) -> Graph:
    """The ONNX model at ``path`` as a Graph (see the module docstring).

    ``input_shape``: one shape (a model with one input) or input name -> shape, needed where
    an input has dynamic dimensions. ``name`` defaults to the normalised file stem.
    """
    from hax_conn_core.graph.frontends.onnx.fold import infer_with_folding
    from hax_conn_core.graph.frontends.onnx.ops import fuses_into_producer

    path = Path(path)
    model = _read(path)
    opset = _check_opset(path, model)
    _fix_inputs(path, model, input_shape)
    model = infer_with_folding(model, lambda m: _infer(path, m), _constant_values(model)[0],
                               opset)
    values, constant = _constant_values(model)
    shapes = _shapes(model)
    dtypes = _dtypes(model)
    if name is None:
        from hax_conn_core.models import normalise_model_id

        name = normalise_model_id(path.stem)
    initialisers = {init.name for init in model.graph.initializer}
    inputs = tuple(vi.name for vi in model.graph.input if vi.name not in initialisers)
    tensors: Dict[str, TensorInfo] = {}

    def tensor(tensor_name: str, where: str) -> None:
        dims = shapes.get(tensor_name)
        if dims is None or any(not isinstance(d, int) for d in dims):
            known = f" (inferred {_shape_text(dims)})" if dims else ""
            raise ModelError(f"{path}: the shape of tensor {tensor_name!r}{known}, {where}, "
                             "is not known after shape inference; hax_conn needs static shapes "
                             "(fix the input shape, or the model's data-dependent shapes)")
        tensors[tensor_name] = TensorInfo(tensor_name, tuple(int(d) for d in dims),
                                          dtypes.get(tensor_name, "float32"))

    for input_name in inputs:
        tensor(input_name, "a model input")
    layers: List[Layer] = []
    producer: Dict[str, Layer] = {}
    consumers: Dict[str, int] = {}
    for node in model.graph.node:
        for input_name in dict.fromkeys(node.input):
            if input_name and input_name not in constant:
                consumers[input_name] = consumers.get(input_name, 0) + 1
    outputs = tuple(vi.name for vi in model.graph.output)
    used_names: Set[str] = set()
    for index, node in enumerate(model.graph.node):
        layer_name = node.name or f"{node.op_type}_{index}"
        if layer_name in used_names:
            layer_name = f"{layer_name}#{index}"
        used_names.add(layer_name)
        where = f"output of node {layer_name!r} (index {index}, {node.op_type})"
        bottoms = tuple(x for x in node.input if x and x not in constant)
        # An output nothing reads (a Dropout mask, BatchNormalization's training outputs)
        # is left out when its shape is unknown: it is no tensor between layers.
        tops = tuple(x for x in node.output if x and (
            x in consumers or x in outputs or x in constant or _static(shapes.get(x))))
        for top in tops:
            tensor(top, where)
        for bottom in bottoms:
            if bottom not in tensors:
                raise ModelError(f"{path}: node {layer_name!r} (index {index}) reads "
                                 f"{bottom!r} before any node produces it; expected the "
                                 "nodes in topological order")
        params = OnnxNodeParams(
            op_type=node.op_type, domain=node.domain, attributes=_attributes(node),
            inputs=tuple(node.input),
            constants={x: values[x] for x in node.input if x in values})
        source = producer.get(bottoms[0]) if len(bottoms) == 1 else None
        fused = (source is not None and consumers.get(bottoms[0], 0) == 1 and
                 node.domain in ("", "ai.onnx") and fuses_into_producer(
                     node.op_type, source, constant_operand=len([x for x in node.input if x]) > 1))
        layer = Layer(index=index, name=layer_name, type=node.op_type, bottoms=bottoms,
                      tops=tops, params=params, fused=fused)
        layers.append(layer)
        for top in tops:
            producer[top] = layer
    for output in outputs:
        if output not in tensors:
            raise ModelError(f"{path}: output {output!r} is not produced by any node")
    return Graph(name=name, layers=tuple(layers), tensors=tensors, inputs=inputs,
                 outputs=outputs, source=str(path), frontend="onnx", origin=model)
