"""Layer groups: contiguous ranges of layers ending at valid cuts, balanced by FLOPs.

The units are the stretches between consecutive valid cuts (a group can only end at a valid
cut). ``group_layers`` picks ``target_groups - 1`` of the cuts (all of them when there are
fewer) in two exact, deterministic steps:

1. the smallest possible largest-group FLOPs ``M`` (binary search with a greedy check);
2. among the choices whose groups all stay within ``M``, the one with the least sum of squared
   group FLOPs (dynamic programming, filled by divide and conquer), so the other groups are
   balanced too. Ties go to the earliest cut.

Near-linear in the layers (``O(n log n)`` for a fixed number of groups): a 160,000-layer
prototxt groups in seconds (docs/bench-graph.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import FrozenSet, List, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import ConfigError
from hax_conn_core.graph.cuts import valid_cuts
from hax_conn_core.graph.model import Graph

DEFAULT_TARGET_GROUPS = 10


@dataclass(frozen=True)
class LayerGroup:
    """Layers ``first..last`` (inclusive indices) of one graph."""

    index: int
    first: int
    last: int
    flops: int
    dla_ok: bool

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def _min_max(units: Sequence[int], groups: int, forced: FrozenSet[int] = frozenset()) -> int:
    """Smallest M such that ``units`` split into at most ``groups`` runs each <= M, with a run
    boundary at every position in ``forced``."""
    def needed(limit: int) -> int:
        runs, current = 1, 0
        for position, value in enumerate(units):
            if position in forced or current + value > limit:
                runs, current = runs + 1, value
            else:
                current += value
        return runs

    low, high = max(units), sum(units)
    while low < high:
        middle = (low + high) // 2
        if needed(middle) <= groups:
            high = middle
        else:
            low = middle + 1
    return low


def _balanced_split(units: Sequence[int], groups: int,
                    forced: FrozenSet[int] = frozenset()) -> List[int]:
    """End positions (exclusive) of ``groups`` runs of ``units``: max first, then squares.

    Every position in ``forced`` (0 < f < len(units)) is a run boundary.

    The squares step is a dynamic programme over (runs, prefix): ``cost[g][j]`` is the least sum
    of squares splitting ``units[:j]`` into ``g`` runs each within the limit, the last run
    ``units[i:j]``. For each ``g`` the row is filled by divide and conquer, not by trying every
    ``i`` for every ``j`` (which is quadratic in the units): the cost of a run, the square of a
    difference of prefix sums of non-negative numbers, satisfies the quadrangle inequality, and
    the allowed ``i`` for ``j`` form an interval whose ends never decrease with ``j`` (the
    limit's window, the last forced boundary, ``i >= g - 1``, ``i < j``), so the leftmost best
    ``i`` never decreases with ``j`` either. ``O(groups * n log n)``; the same choice (exact
    integer costs, ties to the earliest cut) as trying every ``i``.
    """
    n = len(units)
    limit = _min_max(units, groups, forced)
    prefix = [0]
    for value in units:
        prefix.append(prefix[-1] + value)
    floor = [0] * (n + 1)  # floor[j]: the last forced boundary before j (a run cannot span it)
    for j in range(1, n + 1):
        floor[j] = j - 1 if (j - 1) in forced else floor[j - 1]
    start = [0] * (n + 1)  # start[j]: the smallest i with units[i:j] within the limit
    i = 0
    for j in range(n + 1):
        while prefix[j] - prefix[i] > limit:
            i += 1
        start[j] = i
    inf = float("inf")
    # cost[g][j]: least sum of squares splitting units[:j] into g runs each <= limit
    cost = [[inf] * (n + 1) for _ in range(groups + 1)]
    back = [[-1] * (n + 1) for _ in range(groups + 1)]
    cost[0][0] = 0
    for g in range(1, groups + 1):
        previous, row, links = cost[g - 1], cost[g], back[g]
        # Where previous[i] is finite: an interval (fewest runs needed only grows with i).
        finite = [i for i in range(n + 1) if previous[i] != inf]
        if not finite:
            continue
        low_i, high_i = finite[0], finite[-1]
        stack = [(g, n - (groups - g), low_i, high_i)]
        while stack:
            j_lo, j_hi, opt_lo, opt_hi = stack.pop()
            if j_lo > j_hi:
                continue
            j = (j_lo + j_hi) // 2
            p_j = prefix[j]
            first = max(opt_lo, start[j], g - 1, floor[j], low_i)
            last = min(opt_hi, j - 1, high_i)
            best, best_i = inf, -1
            for i in range(first, last + 1):
                size = p_j - prefix[i]
                value = previous[i] + size * size
                if value < best:
                    best, best_i = value, i
            row[j], links[j] = best, best_i
            if best_i < 0:  # no run can end at j: no bound on the neighbours' choices
                stack.append((j_lo, j - 1, opt_lo, opt_hi))
                stack.append((j + 1, j_hi, opt_lo, opt_hi))
            else:
                stack.append((j_lo, j - 1, opt_lo, best_i))
                stack.append((j + 1, j_hi, best_i, opt_hi))
    ends, j = [], n
    for g in range(groups, 0, -1):
        ends.append(j)
        j = back[g][j]
    return ends[::-1]


def group_layers(graph: Graph, target_groups: int = DEFAULT_TARGET_GROUPS,
                 capabilities: Union[None, str, "object"] = None,
                 accelerator: str = "dla", isolate_unsupported: bool = True
                 ) -> Tuple[LayerGroup, ...]:
    """Split ``graph`` into about ``target_groups`` FLOP-balanced groups at valid cuts.

    ``capabilities`` decides ``dla_ok``: a device id (``"xavier-agx"``), a loaded
    :class:`~hax_conn_core.graph.capabilities.DeviceCapabilities`, or None for the default
    device (Jetson AGX Xavier's DLA rules, docs/conventions.md). Fewer groups come back when
    the graph has fewer valid cuts than ``target_groups - 1``.

    With ``isolate_unsupported`` (default), each run of layers ``accelerator`` cannot run is
    fenced by the nearest valid cuts around it, so that a GPU-only group holds as little as
    the cuts allow (a final Softmax on Xavier becomes its own group instead of taking the
    classifier with it); the fences count toward ``target_groups`` (more groups come back
    only if the fences alone need more).
    """
    if isinstance(target_groups, bool) or not isinstance(target_groups, int) or \
            target_groups < 1:
        raise ConfigError(f"target_groups {target_groups!r}; expected an integer >= 1")
    from hax_conn_core.graph.capabilities import resolve_device

    rules = resolve_device(capabilities).accelerator(accelerator)
    stats = graph.layer_stats()
    cuts = valid_cuts(graph)
    bounds = list(cuts) + [len(graph.layers) - 1]  # last layer index of each unit
    units: List[int] = []
    first = 0
    for last in bounds:
        units.append(sum(s.flops for s in stats[first:last + 1]))
        first = last + 1
    forced = _fences(graph, rules, bounds) if isolate_unsupported else frozenset()
    groups = min(max(target_groups, len(forced) + 1), len(units))
    ends = _balanced_split(units, groups, forced) if groups < len(units) else \
        list(range(1, len(units) + 1))
    result: List[LayerGroup] = []
    start_unit, first = 0, 0
    for number, end_unit in enumerate(ends):
        last = bounds[end_unit - 1]
        flops = sum(units[start_unit:end_unit])
        dla_ok = all(rules.supports(graph, layer) for layer in graph.layers[first:last + 1])
        result.append(LayerGroup(index=number, first=first, last=last, flops=flops,
                                 dla_ok=dla_ok))
        start_unit, first = end_unit, last + 1
    return tuple(result)


def _fences(graph: Graph, rules, bounds: Sequence[int]) -> FrozenSet[int]:
    """Unit positions to force as boundaries around runs of unsupported layers."""
    import bisect

    cuts = list(bounds[:-1])  # ascending cut indices; cut k ends unit k, position k + 1
    forced = set()
    index, count = 0, len(graph.layers)
    while index < count:
        if rules.supports(graph, graph.layers[index]):
            index += 1
            continue
        end = index
        while end + 1 < count and not rules.supports(graph, graph.layers[end + 1]):
            end += 1
        before = bisect.bisect_left(cuts, index) - 1  # the last cut < index
        after = bisect.bisect_left(cuts, end)  # the first cut >= end
        if before >= 0:
            forced.add(before + 1)
        if after < len(cuts):
            forced.add(after + 1)
        index = end + 1
    return frozenset(forced)


@dataclass(frozen=True)
class GroupCost:
    """What one group computes and moves, for an element size ``dtype_bytes``.

    ``bytes_moved`` sums its layers' weights, inputs read and outputs written (as
    :class:`~hax_conn_core.graph.model.LayerStats`); ``input_bytes`` / ``output_bytes`` are the
    tensors entering / leaving the group (at a transition, what is handed over).
    """

    index: int
    params: int
    flops: int
    weight_bytes: int
    bytes_moved: int
    input_bytes: int
    output_bytes: int


def group_costs(graph: Graph, groups: Sequence[LayerGroup], dtype_bytes: int = 4
                ) -> Tuple[GroupCost, ...]:
    """Aggregate layer costs per group, plus the bytes entering and leaving each group."""
    from hax_conn_core.graph.shapes import count

    stats = graph.layer_stats(dtype_bytes)
    last_read = {}  # tensor -> index of the last layer reading it
    for layer in graph.layers:
        for bottom in layer.bottoms:
            last_read[bottom] = layer.index
    outputs = set(graph.outputs)
    costs = []
    for group in groups:
        inside = graph.layers[group.first:group.last + 1]
        produced = {t for layer in inside for t in layer.tops}
        entering = {b for layer in inside for b in layer.bottoms if b not in produced}
        if group.first == 0:
            entering |= set(graph.inputs)
        leaving = {t for t in produced if last_read.get(t, -1) > group.last or t in outputs}
        part = stats[group.first:group.last + 1]
        costs.append(GroupCost(
            index=group.index, params=sum(s.params for s in part),
            flops=sum(s.flops for s in part),
            weight_bytes=sum(s.weight_bytes for s in part),
            bytes_moved=sum(s.bytes_moved for s in part),
            input_bytes=sum(count(graph.tensors[t].shape) for t in entering) * dtype_bytes,
            output_bytes=sum(count(graph.tensors[t].shape) for t in leaving) * dtype_bytes))
    return tuple(costs)


def group_of(groups: Sequence[LayerGroup], layer_index: int) -> Optional[LayerGroup]:
    """The group holding layer ``layer_index``, or None."""
    for group in groups:
        if group.first <= layer_index <= group.last:
            return group
    return None
