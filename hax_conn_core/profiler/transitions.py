"""Transition costs: split runs against the profile's own prediction for them.

For the boundary after group ``i`` and a sender ``a`` that runs group ``i``, the split run
puts group ``i`` on ``a`` and group ``i + 1`` on the other accelerator ``b``; the groups
before ``i`` stay on ``a`` while ``a`` can run them (else ``b``), those after ``i + 1`` on ``b``
while ``b`` can (else ``a``), so that as few other hand-overs as possible enter the run.

Split runs are measured in batches, interleaved with the single-accelerator run (the
*reference*: every group on the first accelerator, where it can), frame by frame. The figure::

    transition_ms[a] of group i = median over frames of (split run latency - the frame's
                                  own group times)
                                - median over frames of (reference latency - its group times)
                                - the transitions of the split run's other hand-overs

is the split run minus the whole run (what the HaX-CoNN artifact measures), each less the
compute measured in the same frames, so that a change of load on the machine cancels. It
contains the hand-over itself: the receiver's executor waking on the sender's completion and
the wait for it. Not in it: the receiver's first group reading a tensor another core wrote
(that stays in the group's own time in the split run, and is in no figure of the profile).
Clamped at 0 (the unclamped values are kept in the file's metadata). Where the next group
cannot run on any other accelerator, no hand-over can happen and the figure is 0
(``transition_ms`` is required).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple


def split_assignment(groups, i: int, a: str, b: str) -> Optional[Tuple[str, ...]]:
    """The split run's assignment for boundary ``i`` from ``a`` to ``b`` (module docstring),
    or None when group ``i + 1`` cannot run on ``b``."""
    if b not in groups[i + 1].accelerators or a not in groups[i].accelerators:
        return None
    x: List[str] = [""] * len(groups)
    x[i], x[i + 1] = a, b
    for g in range(i - 1, -1, -1):
        x[g] = a if a in groups[g].accelerators else b
    for g in range(i + 2, len(groups)):
        x[g] = b if b in groups[g].accelerators else a
    return tuple(x)


def changes(assignment: Sequence[str]) -> List[Tuple[int, str]]:
    """(boundary, sender) of every change of accelerator."""
    return [(g, assignment[g]) for g in range(len(assignment) - 1)
            if assignment[g] != assignment[g + 1]]


def transition_figures(groups, excess: Dict[Tuple[int, str], Tuple[Tuple[str, ...], float]]
                       ) -> Tuple[Dict[Tuple[int, str], float], Dict[Tuple[int, str], float]]:
    """(figures, raw) per (boundary, sender) from each split run's excess over the reference
    (module docstring). Runs with one hand-over are solved first; a run's other hand-overs
    use the figures already known (unknown ones share the excess equally)."""
    figures: Dict[Tuple[int, str], float] = {}
    raw: Dict[Tuple[int, str], float] = {}
    order = sorted(excess, key=lambda key: (len(changes(excess[key][0])), key))
    for key in order:
        assignment, value = excess[key]
        others = [c for c in changes(assignment) if c != key]
        known = sum(figures[c] for c in others if c in figures)
        unknown = [c for c in others if c not in figures]
        share = (value - known) / (1 + len(unknown))
        raw[key] = share
        figures[key] = max(0.0, share)
    for i in range(len(groups) - 1):
        for acc in groups[i].accelerators:
            figures.setdefault((i, acc), 0.0)
    return figures, raw
