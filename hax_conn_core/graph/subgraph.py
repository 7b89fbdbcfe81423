"""A contiguous range of layers as a Graph of its own (split execution, per-group engines)."""

from __future__ import annotations

from dataclasses import replace
from typing import Dict, List

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.cuts import cut_report
from hax_conn_core.graph.model import Graph, Layer, TensorInfo


def subgraph(graph: Graph, first_layer: int, last_layer: int) -> Graph:
    """Layers ``first_layer..last_layer`` (inclusive) as a Graph.

    The range must start at 0 or right after a valid cut, and end at a valid cut or the last
    layer, so that one tensor enters it (the cut tensor, or the graph's inputs when it starts at
    0) and one leaves it (plus any graph outputs it produces). Layers keep their names and
    parameters; they are re-indexed from 0, and the original index is ``first_layer + index``.
    The part's inputs are its tensors produced outside the range; its outputs are the tensors
    it produces that are read after the range or are outputs of the whole graph.
    """
    count = len(graph.layers)
    if not (0 <= first_layer <= last_layer < count):
        raise ModelError(f"{graph.name}: layer range {first_layer}..{last_layer} is not inside "
                         f"0..{count - 1}; expected first <= last")
    report = cut_report(graph)
    if first_layer > 0 and not report[first_layer - 1][1]:
        raise ModelError(f"{graph.name}: a part cannot start at layer {first_layer}: the cut "
                         f"after layer {first_layer - 1} is not valid "
                         f"({report[first_layer - 1][3]})")
    if last_layer < count - 1 and not report[last_layer][1]:
        raise ModelError(f"{graph.name}: a part cannot end at layer {last_layer}: the cut after "
                         f"it is not valid ({report[last_layer][3]})")
    inside = graph.layers[first_layer:last_layer + 1]
    produced = {top for layer in inside for top in layer.tops}
    inputs: List[str] = []
    for layer in inside:
        for bottom in layer.bottoms:
            if bottom not in produced and bottom not in inputs:
                inputs.append(bottom)
    if first_layer == 0:  # the whole graph's inputs, Input-layer tops included
        inputs = list(graph.inputs) + [name for name in inputs if name not in graph.inputs]
    graph_outputs = set(graph.outputs)
    read_after = {b for layer in graph.layers[last_layer + 1:] for b in layer.bottoms}
    outputs = [top for layer in inside for top in layer.tops
               if top in read_after or top in graph_outputs]
    tensors: Dict[str, TensorInfo] = {name: graph.tensors[name] for name in inputs}
    for layer in inside:
        for top in layer.tops:
            tensors[top] = graph.tensors[top]
    layers: List[Layer] = [replace(layer, index=layer.index - first_layer) for layer in inside]
    return Graph(name=f"{graph.name}[{first_layer}:{last_layer}]", layers=tuple(layers),
                 tensors=tensors, inputs=tuple(inputs), outputs=tuple(outputs),
                 source=graph.source, frontend=graph.frontend, origin=graph.origin)
