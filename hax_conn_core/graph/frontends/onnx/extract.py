"""Any contiguous range of an ONNX-read graph as an ONNX model of its own.

The range's nodes come from the user's model as they are, with their own initialisers
(``onnx.utils.Extractor`` over the shape-fixed model the reader kept in ``Graph.origin``); its
inputs and outputs are those of :func:`hax_conn_core.graph.onnx_export.layer_range` (the
tensors entering and leaving it), so for a valid cut part A then part B gives the whole.
Nothing goes through the Caffe exporter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Optional, Sequence

from hax_conn_core.errors import InternalError, ModelError
from hax_conn_core.graph.model import Graph


#: Extractors of the last few models (building one walks and re-infers the whole model; a
#: graph's parts, ``subgraph`` results included, share their origin).
_EXTRACTORS: "OrderedDict[int, tuple]" = OrderedDict()
_KEPT = 8
_LOCK = threading.Lock()


def _extractor(graph: Graph):
    import onnx.utils

    key = id(graph.origin)
    with _LOCK:
        found = _EXTRACTORS.get(key)
        if found is not None and found[0] is graph.origin:
            _EXTRACTORS.move_to_end(key)
            return found[1]
    extractor = onnx.utils.Extractor(graph.origin)
    with _LOCK:
        _EXTRACTORS[key] = (graph.origin, extractor)  # the origin kept: its id stays unique
        while len(_EXTRACTORS) > _KEPT:
            _EXTRACTORS.popitem(last=False)
    return extractor


def extract_range(graph: Graph, first: Optional[int] = None, last: Optional[int] = None,
                  outputs: Optional[Sequence[str]] = None, extra_outputs: Sequence[str] = (),
                  check: bool = True):
    """Layers ``first .. last`` (defaults: all) of an ONNX-read ``graph`` as a ModelProto."""
    import onnx

    from hax_conn_core.graph.onnx_export import layer_range

    if graph.frontend != "onnx" or graph.origin is None:
        raise ModelError(f"{graph.name}: extract_range needs a graph read from an ONNX file; "
                         f"this one came from the {graph.frontend} frontend")
    chosen = layer_range(graph, first, last, outputs, extra_outputs)
    whole = chosen.first == 0 and chosen.last == len(graph.layers) - 1
    name = graph.name if whole else f"{graph.name}[{chosen.first}:{chosen.last}]"
    model = _extractor(graph).extract_model(list(chosen.inputs), list(chosen.outputs))
    model.ir_version = graph.origin.ir_version
    model.graph.name = name
    model.producer_name = graph.origin.producer_name or "hax_conn"
    if check:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as error:
            raise InternalError(f"{name}: the extracted ONNX model fails onnx.checker: "
                                f"{error}") from error
    return model
