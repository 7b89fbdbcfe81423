"""The typed model graph: layers, tensors and per-type layer parameters.

A :class:`Graph` is what a frontend produces (:mod:`hax_conn_core.graph.frontends`: the Caffe
prototxt reader, the ONNX reader) and what the rest of hax_conn reads: cut points, layer
groups, ONNX export, profiling. It is plain data, independent of Caffe's or ONNX's protobuf
classes (an ONNX graph keeps its model in ``Graph.origin`` for extraction only).

Conventions (docs/conventions.md, "Layer indices and cuts"):

* ``layers[i].index == i``: a layer's 0-based position among the prototxt's ``layer`` /
  ``layers`` entries in file order, counting every entry (Input, in-place ReLU, Dropout...);
  for ONNX, the node's position in the graph's node list.
* Every tensor has a unique name. An in-place layer (top == bottom in the prototxt) gets a fresh
  top name, ``"<layer name>:<top position>"``, and ``Layer.in_place`` is true.
* Shapes follow Caffe: NCHW for images, ``(N, C)`` after InnerProduct.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional, Tuple, Union

from hax_conn_core.errors import ModelError

Shape = Tuple[int, ...]
Pair = Tuple[int, int]


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the graph: unique name, inferred shape (Caffe axis order) and element type
    (numpy's name; Caffe tensors are all float32, ONNX ones say theirs)."""

    name: str
    shape: Shape
    dtype: str = "float32"


# ---------------------------------------------------------------------------------------------
# Per-type layer parameters (normalised: no Caffe defaults left implicit)


@dataclass(frozen=True)
class InputParams:
    """An Input layer: ``shape`` of its first top; ``top_shapes`` one shape per top."""

    shape: Shape
    top_shapes: Tuple[Shape, ...] = ()


@dataclass(frozen=True)
class ConvolutionParams:
    num_output: int
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Pair = (0, 0)
    dilation: Pair = (1, 1)
    group: int = 1
    bias_term: bool = True


@dataclass(frozen=True)
class PoolingParams:
    """Pooling; Caffe rounds the output size up (ceil), see :mod:`.shapes`."""

    method: str  # "MAX" | "AVE"
    kernel: Pair
    stride: Pair = (1, 1)
    pad: Pair = (0, 0)
    global_pooling: bool = False
    round_mode: str = "CEIL"  # | "FLOOR" (BVLC Caffe's PoolingParameter.round_mode)


@dataclass(frozen=True)
class LRNParams:
    local_size: int = 5
    alpha: float = 1.0
    beta: float = 0.75
    k: float = 1.0
    norm_region: str = "ACROSS_CHANNELS"  # | "WITHIN_CHANNEL"


@dataclass(frozen=True)
class InnerProductParams:
    num_output: int
    bias_term: bool = True
    axis: int = 1


@dataclass(frozen=True)
class BatchNormParams:
    eps: float = 1e-5
    use_global_stats: Optional[bool] = None


@dataclass(frozen=True)
class ScaleParams:
    bias_term: bool = False
    axis: int = 1
    num_axes: int = 1


@dataclass(frozen=True)
class EltwiseParams:
    operation: str = "SUM"  # "SUM" | "PROD" | "MAX"
    coeff: Tuple[float, ...] = ()


@dataclass(frozen=True)
class ConcatParams:
    axis: int = 1


@dataclass(frozen=True)
class SoftmaxParams:
    axis: int = 1


@dataclass(frozen=True)
class FlattenParams:
    axis: int = 1
    end_axis: int = -1


@dataclass(frozen=True)
class DropoutParams:
    ratio: float = 0.5


@dataclass(frozen=True)
class ReLUParams:
    negative_slope: float = 0.0


@dataclass(frozen=True)
class SplitParams:
    """Split (V1 ``SPLIT``): copies its bottom to every top."""


@dataclass(frozen=True)
class OnnxNodeParams:
    """An ONNX node as it is (:mod:`hax_conn_core.graph.frontends.onnx`): its attributes
    (name -> Python value, as ``onnx.helper.get_attribute_value`` gives them, tensors as numpy
    arrays), all its inputs in order ("" for an omitted optional one), and the constant ones
    among them (initialisers and Constant-node outputs: shape -> numpy array)."""

    op_type: str
    domain: str = ""
    attributes: Mapping[str, object] = field(default_factory=dict, compare=False)
    inputs: Tuple[str, ...] = ()
    constants: Mapping[str, object] = field(default_factory=dict, compare=False, repr=False)

    def attr(self, name: str, default=None):
        return self.attributes.get(name, default)


LayerParams = Union[InputParams, ConvolutionParams, PoolingParams, LRNParams,
                    InnerProductParams, BatchNormParams, ScaleParams, EltwiseParams,
                    ConcatParams, SoftmaxParams, FlattenParams, DropoutParams, ReLUParams,
                    SplitParams, OnnxNodeParams]

#: Normalised Caffe type name -> its parameter class. The reader supports exactly these types.
PARAMS_BY_TYPE: Dict[str, type] = {
    "Input": InputParams,
    "Convolution": ConvolutionParams,
    "Pooling": PoolingParams,
    "LRN": LRNParams,
    "InnerProduct": InnerProductParams,
    "BatchNorm": BatchNormParams,
    "Scale": ScaleParams,
    "Eltwise": EltwiseParams,
    "Concat": ConcatParams,
    "Softmax": SoftmaxParams,
    "Flatten": FlattenParams,
    "Dropout": DropoutParams,
    "ReLU": ReLUParams,
    "Split": SplitParams,
}

SUPPORTED_TYPES: Tuple[str, ...] = tuple(PARAMS_BY_TYPE)


@dataclass(frozen=True)
class Layer:
    """One layer entry of the prototxt."""

    index: int
    name: str
    type: str
    bottoms: Tuple[str, ...]
    tops: Tuple[str, ...]
    params: LayerParams
    source_line: Optional[int] = None
    #: True when the prototxt writes top == bottom (an in-place ReLU, BatchNorm, Scale,
    #: Dropout...). A Caffe idea: the cut rule reads ``fused``, which the Caffe frontend sets
    #: from it.
    in_place: bool = False
    #: Set by the frontend: every backend fuses this layer into the producers of its bottoms
    #: (Caffe: an in-place layer; ONNX: Relu/BatchNormalization... after a Conv), so no cut
    #: may separate them (:mod:`.cuts`).
    fused: bool = False

    def where(self) -> str:
        """``layer 'conv1' (index 3, line 12)``: for messages."""
        line = f", line {self.source_line}" if self.source_line else ""
        return f"layer {self.name!r} (index {self.index}{line})"


@dataclass(frozen=True)
class LayerStats:
    """Cost of one layer for a given element size (``dtype_bytes``; fp32 = 4).

    ``params`` counts learned parameters (BatchNorm's mean/variance are statistics, not
    parameters: 0); ``weight_bytes`` counts every stored blob, statistics included, since the
    hardware reads them. ``flops`` = 2 x multiply-adds for Convolution/InnerProduct, and an
    element-wise estimate for the others (docs/graph.md, "Costs").
    """

    index: int
    name: str
    type: str
    params: int
    flops: int
    weight_bytes: int
    activation_bytes_in: int
    activation_bytes_out: int

    @property
    def bytes_moved(self) -> int:
        """Weights read + inputs read + outputs written."""
        return self.weight_bytes + self.activation_bytes_in + self.activation_bytes_out


@dataclass
class Graph:
    """A DNN as an ordered list of layers over uniquely named, shaped tensors."""

    name: str
    layers: Tuple[Layer, ...]
    tensors: Mapping[str, TensorInfo]
    inputs: Tuple[str, ...]
    outputs: Tuple[str, ...]
    #: Where the graph came from (file path or "<string>"), for messages.
    source: str = "<string>"
    #: Which frontend read it: "caffe" (layers are Caffe types with Caffe parameters) or
    #: "onnx" (layers are ONNX nodes, ``OnnxNodeParams``; docs/graph.md, "Frontends").
    frontend: str = "caffe"
    #: The frontend's own model, kept for exporting ranges as they are (ONNX: the
    #: ``onnx.ModelProto`` with fixed input shapes and inferred shapes; None for Caffe).
    origin: object = field(default=None, repr=False, compare=False)
    _by_name: Dict[str, Layer] = field(default_factory=dict, init=False, repr=False,
                                       compare=False)
    _producer: Dict[str, Layer] = field(default_factory=dict, init=False, repr=False,
                                        compare=False)
    _consumers: Dict[str, Tuple[Layer, ...]] = field(default_factory=dict, init=False,
                                                     repr=False, compare=False)

    def __post_init__(self) -> None:
        self.layers = tuple(self.layers)
        self.inputs = tuple(self.inputs)
        self.outputs = tuple(self.outputs)
        consumers: Dict[str, list] = {}
        for position, layer in enumerate(self.layers):
            if layer.index != position:
                raise ModelError(f"{self.source}: {layer.where()} is at position {position}; "
                                 "expected layers[i].index == i")
            self._by_name.setdefault(layer.name, layer)
            for top in layer.tops:
                self._producer[top] = layer
            for bottom in dict.fromkeys(layer.bottoms):  # reading a tensor twice counts once
                consumers.setdefault(bottom, []).append(layer)
        self._consumers = {name: tuple(found) for name, found in consumers.items()}

    def __len__(self) -> int:
        return len(self.layers)

    def layer(self, key: Union[int, str]) -> Layer:
        """The layer at index ``key`` (int) or called ``key`` (str)."""
        if not isinstance(key, (str, bool)) and hasattr(key, "__index__"):  # int, numpy ints
            index = operator.index(key)
            if 0 <= index < len(self.layers):
                return self.layers[index]
            raise ModelError(f"{self.name}: no layer with index {index}; expected 0.."
                             f"{len(self.layers) - 1}")
        try:
            return self._by_name[key]
        except KeyError:
            raise ModelError(f"{self.name}: no layer named {key!r}") from None

    def producer(self, tensor: str) -> Optional[Layer]:
        """The layer whose top is ``tensor``; None for a graph input."""
        self._check_tensor(tensor)
        return self._producer.get(tensor)

    def consumers(self, tensor: str) -> Tuple[Layer, ...]:
        """The layers reading ``tensor``, in index order."""
        self._check_tensor(tensor)
        return self._consumers.get(tensor, ())

    def shape(self, tensor: str) -> Shape:
        self._check_tensor(tensor)
        return self.tensors[tensor].shape

    def layer_stats(self, dtype_bytes: int = 4) -> Tuple[LayerStats, ...]:
        """Per-layer parameters, FLOPs and bytes moved (see :class:`LayerStats`)."""
        from hax_conn_core.graph.stats import layer_stats

        return layer_stats(self, dtype_bytes)

    def param_count(self) -> int:
        """Learned parameters of the whole graph."""
        return sum(stats.params for stats in self.layer_stats())

    def flops(self) -> int:
        return sum(stats.flops for stats in self.layer_stats())

    def _check_tensor(self, tensor: str) -> None:
        if tensor not in self.tensors:
            raise ModelError(f"{self.name}: no tensor named {tensor!r}")
