"""Valid cut points: where a DNN can move from one accelerator to the other.

"Transition after layer i" means layers ``0..i`` run on the first accelerator and ``i+1..`` on
the second (docs/conventions.md, "Layer indices and cuts"). It is valid when

* exactly one tensor crosses it: a tensor crosses when it is produced at index ``<= i`` (or is a
  graph input) and read at an index ``> i``; a graph output produced at ``<= i`` crosses too
  (it must still be delivered), unless ``i`` is the last layer;
* it does not separate an in-place layer (ReLU, BatchNorm, Scale, Dropout written with
  top == bottom) from the producer of its bottom, since every backend fuses them;
* something ran before it: a cut after nothing but Input layers is no transition;
* ``i`` is not the last layer.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.model import Graph


def _producer_index(graph: Graph) -> Dict[str, int]:
    index = {name: -1 for name in graph.inputs}
    for layer in graph.layers:
        for top in layer.tops:
            index[top] = layer.index
    return index


def crossing_tensors(graph: Graph) -> List[List[str]]:
    """For every ``i`` in ``0..len-1``: the tensors crossing the cut after layer ``i``."""
    count = len(graph.layers)
    produced = _producer_index(graph)
    last_use: Dict[str, int] = {}
    for layer in graph.layers:
        for bottom in layer.bottoms:
            last_use[bottom] = max(last_use.get(bottom, -1), layer.index)
    outputs = set(graph.outputs)
    crossing: List[List[str]] = [[] for _ in range(count)]
    for tensor, start in produced.items():
        end = last_use.get(tensor, -1)
        if tensor in outputs:
            end = max(end, count)  # delivered after the last layer
        for i in range(max(start, 0), min(end, count)):
            crossing[i].append(tensor)
    return crossing


def _fused_spans(graph: Graph) -> List[Tuple[int, int]]:
    """(producer index, in-place layer index) pairs that must stay on one accelerator."""
    produced = _producer_index(graph)
    spans = []
    for layer in graph.layers:
        if layer.in_place:
            for bottom in layer.bottoms:
                start = produced.get(bottom, -1)
                if start >= 0:
                    spans.append((start, layer.index))
    return spans


def cut_report(graph: Graph) -> List[Tuple[int, bool, Tuple[str, ...], str]]:
    """For every layer index: (index, valid, crossing tensors, why not valid or "")."""
    count = len(graph.layers)
    crossing = crossing_tensors(graph)
    blocked = [""] * count
    for start, end in _fused_spans(graph):
        for i in range(start, end):
            if not blocked[i]:
                blocked[i] = (f"would separate in-place layer {graph.layers[end].name!r} "
                              f"(index {end}) from its producer (index {start})")
    report = []
    only_inputs = True
    for i, layer in enumerate(graph.layers):
        only_inputs = only_inputs and layer.type == "Input"
        tensors = tuple(crossing[i])
        if i == count - 1:
            why = "it is the last layer"
        elif only_inputs:
            why = "only Input layers come before it"
        elif len(tensors) != 1:
            why = (f"{len(tensors)} tensors cross it ({', '.join(tensors)}); expected exactly "
                   "one") if tensors else "no tensor crosses it"
        else:
            why = blocked[i]
        report.append((i, not why, tensors, why))
    return report


def valid_cuts(graph: Graph) -> Tuple[int, ...]:
    """Indices ``i`` such that a transition after layer ``i`` is valid, ascending."""
    return tuple(i for i, valid, _, _ in cut_report(graph) if valid)


def cut_tensor(graph: Graph, i: int) -> str:
    """The single tensor crossing the (valid) cut after layer ``i``."""
    if not 0 <= i < len(graph.layers):
        raise ModelError(f"{graph.name}: no layer with index {i}; expected 0.."
                         f"{len(graph.layers) - 1}")
    _, valid, tensors, why = cut_report(graph)[i]
    if not valid:
        layer = graph.layers[i]
        raise ModelError(f"{graph.name}: the cut after layer {layer.name!r} (index {i}) is not "
                         f"valid: {why}")
    return tensors[0]
