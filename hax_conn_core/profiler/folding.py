"""What a whole run costs beyond its groups' times, folded into the groups (docs/profiler.md,
"Folding the run's own costs").

The groups are timed one engine per group, each on its accelerator's clock (CUDA events on
cuda-sm). The runtime runs each stretch of one accelerator as one engine (segments) and does
work per frame outside any engine: the frame's upload and conversion, the result's download,
the executors' hand-ons. A profile of event times alone predicts every measured latency too
low by that work (0.4-0.7 ms per DNN on the emulated H200, docs/bench/). Two terms, both from
the runs the profiler makes anyway, put it back:

- ``scale[acc]``: the engines' time over the groups' summed time on ``acc`` (the coarse run
  against the fine run), so that the groups of a stretch sum to what its single engine takes;
- ``frame_ms[acc]``: the median over frames of latency minus engine time in ``acc``'s coarse
  run, when that run is a single engine on ``acc``: the frame's cost outside the engines when
  the DNN starts on ``acc``; it is added to the first group's time on ``acc``. An accelerator
  whose coarse run is not a single engine (it cannot run every group) takes the figure of the
  first accelerator that has one.

The raw event times stay in the file's metadata (``folding``), with both terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence


@dataclass(frozen=True)
class RunTerms:
    """Per accelerator: the factor on its group times and the frame's cost on its first group."""

    scale: Dict[str, float]
    frame_ms: Dict[str, float]
    frame_from: Dict[str, str]

    def metadata(self) -> Dict[str, object]:
        return {"group_scale": {a: round(s, 4) for a, s in self.scale.items()},
                "frame_ms": {a: round(v, 4) for a, v in self.frame_ms.items()},
                "frame_ms_from": dict(self.frame_from)}


def run_terms(accelerators: Sequence[str], pairs, samples, check) -> RunTerms:
    """The two terms from each accelerator's (fine, coarse) runs and the sum check."""
    from hax_conn_core.profiler.measure import median_gap

    scale: Dict[str, float] = {}
    own: Dict[str, Optional[float]] = {}
    for acc, (_, coarse) in zip(accelerators, pairs):
        groups_sum, engines, _ = check[acc]
        scale[acc] = engines / groups_sum if groups_sum > 0 and engines > 0 else 1.0
        single = len(coarse.assignment) == 1 and coarse.assignment[0] == acc
        own[acc] = max(0.0, median_gap(samples[coarse])) if single else None
    donor = next((a for a in accelerators if own[a] is not None), None)
    frame_ms, frame_from = {}, {}
    for acc in accelerators:
        source = acc if own[acc] is not None else donor
        frame_ms[acc] = own[source] if source is not None else 0.0
        frame_from[acc] = (f"{source} as one engine" if source is not None
                           else "none: no accelerator runs the whole DNN as one engine")
    return RunTerms(scale, frame_ms, frame_from)


def fold(times: Dict[str, List[Optional[float]]], spread: Dict[str, List[Optional[list]]],
         terms: RunTerms) -> None:
    """Apply ``terms`` in place to the per-accelerator group times and their spreads."""
    for acc, row in times.items():
        factor, extra = terms.scale[acc], terms.frame_ms[acc]
        for g, value in enumerate(row):
            if value is None:
                continue
            add = extra if g == 0 else 0.0
            row[g] = value * factor + add
            if spread[acc][g] is not None:
                low, high = spread[acc][g]
                spread[acc][g] = [round(low * factor + add, 4), round(high * factor + add, 4)]
