"""The layer groups a profile gets, which accelerators run each, and merging tiny groups.

Groups are ``graph.grouping.group_layers`` of each DNN's graph, with the device's DLA rules
deciding ``dla_ok`` (docs/graph.md). An accelerator other than the GPU gets a ``time_ms`` entry
for a group only where its rules run every layer of the group. A group *too small to time* is
one whose in-context time is not well above the cost of running an engine at all (measured as
the extra time per group boundary, docs/profiler.md): it is merged into a neighbour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

from hax_conn_core.errors import ConfigError


@dataclass(frozen=True)
class ProfGroup:
    """Layers ``first..last`` and the accelerators that can run all of them."""

    first: int
    last: int
    accelerators: Tuple[str, ...]

    @property
    def range(self) -> Tuple[int, int]:
        return (self.first, self.last)


def accelerator_rules(capabilities, accelerators: Sequence[str]):
    """acc -> rules (None: runs every layer) for the device's accelerators."""
    return {acc: capabilities.accelerator(acc) for acc in accelerators}


def initial_groups(graph, capabilities, accelerators: Sequence[str], target_groups: int
                   ) -> List[ProfGroup]:
    """``group_layers`` of ``graph`` with each group's capable accelerators (the device's
    rules for every accelerator; the DLA's rules fence the layers it cannot run)."""
    from hax_conn_core.graph.grouping import group_layers

    fence = "dla" if "dla" in accelerators else accelerators[0]
    groups = group_layers(graph, target_groups, capabilities=capabilities, accelerator=fence)
    rules = accelerator_rules(capabilities, accelerators)
    result = []
    for group in groups:
        layers = graph.layers[group.first:group.last + 1]
        accs = tuple(acc for acc in accelerators
                     if all(rules[acc].supports(graph, layer) for layer in layers))
        result.append(ProfGroup(group.first, group.last, accs))
    return result


def check_runnable(name: str, graph, groups: Sequence[ProfGroup], capabilities,
                   accelerators: Sequence[str]) -> None:
    """ConfigError when an accelerator of the device can run none of ``name``'s groups (or
    no accelerator can run some group): a profile of it would be of no use to the planner."""
    rules = accelerator_rules(capabilities, accelerators)
    for group in groups:
        if not group.accelerators:
            raise ConfigError(f"{name}: no accelerator of device {capabilities.id!r} can run "
                              f"layers {group.first}-{group.last}; leave {name} out or use a "
                              "device description whose GPU runs every layer")
    for acc in accelerators:
        if any(acc in g.accelerators for g in groups):
            continue
        reason = next((f"layer {layer.index} {layer.name!r}: {why}" for layer in graph.layers
                       for why in [rules[acc].check(graph, layer)] if why), "no layer fits")
        raise ConfigError(f"{name}: the {acc} of device {capabilities.id!r} cannot run any of "
                          f"its {len(groups)} layer group(s) ({reason}); leave {name} out, "
                          f"or profile it on a device whose {acc} runs it")


def merge_pair(groups: Sequence[ProfGroup], index: int) -> List[ProfGroup]:
    """Groups ``index`` and ``index + 1`` as one (run by the accelerators both can use)."""
    a, b = groups[index], groups[index + 1]
    accs = tuple(x for x in a.accelerators if x in b.accelerators)
    return list(groups[:index]) + [ProfGroup(a.first, b.last, accs)] + list(groups[index + 2:])


def merge_small(groups: Sequence[ProfGroup], times: Sequence[float], floor_ms: float
                ) -> Tuple[List[ProfGroup], List[Tuple[int, int]]]:
    """Merge each group under ``floor_ms`` into its smaller neighbour that keeps the same
    accelerators (never making a group lose an accelerator it had, so DLA cuts stay), until
    none is left under the floor or none can merge. Returns the groups and the merged layer
    ranges."""
    groups, times = list(groups), list(times)
    merged: List[Tuple[int, int]] = []
    while len(groups) > 1:
        order = sorted(range(len(groups)), key=lambda i: times[i])
        done = True
        for i in order:
            if times[i] >= floor_ms:
                break
            options = [j for j in (i - 1, i + 1) if 0 <= j < len(groups)
                       and groups[j].accelerators == groups[i].accelerators]
            if not options:
                continue
            j = min(options, key=lambda k: times[k])
            left = min(i, j)
            groups = merge_pair(groups, left)
            merged.append(groups[left].range)
            times[left:left + 2] = [times[left] + times[left + 1]]
            done = False
            break
        if done:
            break
    return groups, merged
