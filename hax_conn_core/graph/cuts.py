"""Valid cut points: where a DNN can move from one accelerator to the other.

"Transition after layer i" means layers ``0..i`` run on the first accelerator and ``i+1..`` on
the second (docs/conventions.md, "Layer indices and cuts"). It is valid when

* exactly one tensor crosses it: a tensor crosses when it is produced at index ``<= i`` (or is a
  graph input) and read at an index ``> i``; a graph output produced at ``<= i`` crosses too
  (it must still be delivered), unless ``i`` is the last layer;
* it does not separate a fused layer from the producers of its bottoms, since every backend
  fuses them: the frontend marks them (``Layer.fused``; Caffe: an in-place ReLU, BatchNorm,
  Scale, Dropout written with top == bottom; ONNX: an activation or BatchNormalization right
  after a Conv, see :mod:`.frontends.onnx.ops`);
* something ran before it: a cut after nothing but Input layers (ONNX: nodes that read only
  constants) is no transition;
* the crossing tensor is a floating-point activation (an ONNX model's integer tensors, shapes
  and indices, stay with the layers that use them);
* ``i`` is not the last layer.
"""

from __future__ import annotations

import itertools
from typing import Dict, Iterator, List, Optional, Tuple

from hax_conn_core.errors import ModelError
from hax_conn_core.graph.model import Graph


def _producer_index(graph: Graph) -> Dict[str, int]:
    index = {name: -1 for name in graph.inputs}
    for layer in graph.layers:
        for top in layer.tops:
            index[top] = layer.index
    return index


#: ``cut_report`` lists at most this many of the tensors crossing a cut (the count is exact).
CROSSING_LISTED = 8


def _lifetimes(graph: Graph) -> List[Tuple[str, int, int]]:
    """(tensor, first, end) in producer order: it crosses the cuts after layers
    ``first .. end - 1`` (produced at ``<= i``, read or delivered after ``i``)."""
    count = len(graph.layers)
    produced = _producer_index(graph)
    last_use: Dict[str, int] = {}
    for layer in graph.layers:
        for bottom in layer.bottoms:
            last_use[bottom] = layer.index  # layers come in index order: the last wins
    outputs = set(graph.outputs)
    out = []
    for tensor, start in produced.items():
        end = last_use.get(tensor, -1)
        if tensor in outputs:
            end = max(end, count)  # delivered after the last layer
        first, end = max(start, 0), min(end, count)
        if first < end:
            out.append((tensor, first, end))
    return out


def _sweep(graph: Graph, listed: Optional[int]) -> Iterator[Tuple[int, Tuple[str, ...]]]:
    """For every ``i``: (number of tensors crossing the cut after layer ``i``, the first
    ``listed`` of them in producer order; all of them when ``listed`` is None).

    One pass over the layers with the crossing tensors kept in an insertion-ordered dict
    (added when produced, removed after their last reader): linear in layers plus tensors,
    however many tensors cross each cut, when ``listed`` is bounded.
    """
    count = len(graph.layers)
    starting: List[List[str]] = [[] for _ in range(count)]
    ending: List[List[str]] = [[] for _ in range(count + 1)]
    for tensor, first, end in _lifetimes(graph):
        starting[first].append(tensor)
        ending[end].append(tensor)
    active: Dict[str, None] = {}
    for i in range(count):
        for tensor in ending[i]:
            del active[tensor]
        for tensor in starting[i]:
            active[tensor] = None
        names = tuple(active) if listed is None else tuple(itertools.islice(active, listed))
        yield len(active), names


def crossing_tensors(graph: Graph) -> List[List[str]]:
    """For every ``i`` in ``0..len-1``: the tensors crossing the cut after layer ``i``.

    The whole lists: as large as layers x crossing tensors (a densely connected block has
    many at every cut); ``cut_report`` counts them all and lists only the first few.
    """
    return [list(names) for _, names in _sweep(graph, None)]


def _fused_spans(graph: Graph) -> List[Tuple[int, int]]:
    """(producer index, fused layer index) pairs that must stay on one accelerator."""
    produced = _producer_index(graph)
    spans = []
    for layer in graph.layers:
        if layer.fused:
            for bottom in layer.bottoms:
                start = produced.get(bottom, -1)
                if start >= 0:
                    spans.append((start, layer.index))
    return spans


def _blocked(graph: Graph) -> List[str]:
    """For every ``i``: why the cut after ``i`` would separate an in-place layer from its
    producer ("" if it does not): the first such span in layer order.

    Each index is written once (``following`` skips filled ones, with path halving), so long
    or overlapping spans cost no more than short ones.
    """
    count = len(graph.layers)
    blocked = [""] * count
    kind = "in-place" if graph.frontend == "caffe" else "fused"
    following = list(range(count + 1))  # following[i]: the first unfilled index >= i (lazily)

    def find(i: int) -> int:
        while following[i] != i:
            following[i] = following[following[i]]
            i = following[i]
        return i

    for start, end in _fused_spans(graph):
        i = find(start)
        while i < end:
            blocked[i] = (f"would separate {kind} layer {graph.layers[end].name!r} "
                          f"(index {end}) from its producer (index {start})")
            following[i] = i + 1
            i = find(i + 1)
    return blocked


def _not_an_activation(graph: Graph, tensor: str) -> str:
    """Why ``tensor`` cannot be handed over at a cut ("" if it can): the accelerators
    exchange floating-point activations (an ONNX model's int64 shape or index tensors are
    computed where they are used)."""
    dtype = graph.tensors[tensor].dtype
    if dtype.startswith("float"):
        return ""
    return f"the tensor crossing it, {tensor!r}, is {dtype}; expected a floating-point activation"


def cut_report(graph: Graph) -> List[Tuple[int, bool, Tuple[str, ...], str]]:
    """For every layer index: (index, valid, crossing tensors, why not valid or "").

    The crossing tensors are listed in producer order, at most ``CROSSING_LISTED`` of them;
    the reason gives their exact number. Linear in layers plus tensors.
    """
    count = len(graph.layers)
    blocked = _blocked(graph)
    report = []
    only_inputs = True
    for (i, layer), (crossing, tensors) in zip(enumerate(graph.layers),
                                               _sweep(graph, CROSSING_LISTED)):
        only_inputs = only_inputs and (layer.type == "Input" if graph.frontend == "caffe"
                                       else not layer.bottoms)
        if i == count - 1:
            why = "it is the last layer"
        elif only_inputs:
            why = ("only Input layers come before it" if graph.frontend == "caffe" else
                   "only constants come before it")
        elif crossing != 1:
            more = f", and {crossing - len(tensors)} more" if crossing > len(tensors) else ""
            why = (f"{crossing} tensors cross it ({', '.join(tensors)}{more}); expected "
                   "exactly one") if crossing else "no tensor crosses it"
        else:
            why = blocked[i] or _not_an_activation(graph, tensors[0])
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
