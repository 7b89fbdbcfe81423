"""A profile's layer groups as ranges of a DNN's graph, checked before anything runs.

The groups of a schedule are the profile's ``layers`` ranges (docs/formats.md). To run them,
each range must be a part of the DNN's graph that one tensor enters and one leaves: the ranges
start at layer 0, follow each other without gaps, end at the graph's last layer, and every
boundary is a valid cut (docs/conventions.md, "Layer indices and cuts"). A profile made for
another prototxt or another layer numbering fails this check, naming the range.
"""

from __future__ import annotations

from typing import List, Tuple

from hax_conn_core.errors import ProfileError


def group_ranges(dnn_profile, graph) -> List[Tuple[int, int]]:
    """The ``(first, last)`` layer range of every group of ``dnn_profile``, checked against
    ``graph``; a ProfileError names the first range that does not fit and why."""
    from hax_conn_core.graph.cuts import cut_report

    name = dnn_profile.name
    count = len(graph.layers)
    ranges = [tuple(group.layers) for group in dnn_profile.groups]
    where = f"profile DNN {name!r}"
    if ranges[0][0] != 0:
        raise ProfileError(f"{where}: group 0 starts at layer {ranges[0][0]}; expected 0")
    for i, ((_, last), (first, _)) in enumerate(zip(ranges, ranges[1:])):
        if first != last + 1:
            raise ProfileError(f"{where}: group {i + 1} starts at layer {first} but group {i} "
                               f"ends at {last}; expected consecutive ranges")
    if ranges[-1][1] != count - 1:
        raise ProfileError(f"{where}: the groups end at layer {ranges[-1][1]} but the graph "
                           f"{graph.name!r} ({graph.source}) has layers 0..{count - 1}: the "
                           "profile was made for another model or layer numbering")
    report = cut_report(graph)
    for i, (first, last) in enumerate(ranges[:-1]):
        index, valid, _, why = report[last]
        if not valid:
            raise ProfileError(f"{where}: group {i} (layers {first}-{last}) ends where the "
                               f"graph {graph.name!r} cannot be cut: {why}")
    return [(int(a), int(b)) for a, b in ranges]
