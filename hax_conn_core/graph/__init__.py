"""The model graph: reading Caffe prototxts and ONNX files, shapes, costs, cut points and
layer groups.

Modules: :mod:`.model` (types), :mod:`.frontends` (the Caffe reader, :mod:`.prototxt` its old
path, and the ONNX one), :mod:`.resolve` (model ids and paths), :mod:`.shapes`, :mod:`.stats`,
:mod:`.cuts`, :mod:`.grouping`, :mod:`.capabilities`, :mod:`.subgraph`, :mod:`.caffemodel`
(docs/graph.md). The plain types are imported here; the main functions are also reachable
from this package, imported on first use so that ``import hax_conn_core.graph`` stays light
(``subgraph`` is both a module and its function: import it from :mod:`.subgraph`).
"""

from importlib import import_module
from typing import Any

from hax_conn_core.graph.model import (  # noqa: F401
    SUPPORTED_TYPES, BatchNormParams, ConcatParams, ConvolutionParams, DropoutParams,
    EltwiseParams, FlattenParams, Graph, InnerProductParams, InputParams, Layer, LayerParams,
    LayerStats, LRNParams, OnnxNodeParams, PoolingParams, ReLUParams, ScaleParams, SoftmaxParams,
    SplitParams, TensorInfo)

_LAZY = {
    "load_prototxt": "prototxt", "parse_prototxt": "prototxt",
    "valid_cuts": "cuts", "cut_tensor": "cuts",
    "group_layers": "grouping", "LayerGroup": "grouping",
    "load_device": "capabilities",
    "load_caffemodel_weights": "caffemodel",
    "resolve_model": "resolve", "register_model": "resolve", "ModelSource": "resolve",
    "load_onnx": "frontends.onnx",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
