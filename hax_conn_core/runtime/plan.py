"""A schedule made runnable: its engines built, and each accelerator's lockstep order.

``build_run_plan(backend, profile, schedule, models)`` checks the profile's groups against the
DNNs' graphs (:mod:`.segments`), asks the simulator for the order in which each accelerator
runs its groups (docs/runtime.md, "Lockstep"), and builds the engines on the accelerators the
schedule names (taken from ``pool`` when an equal one exists, so that swapping back to a
schedule costs no build). The runtime makes no plans: the schedule comes from the caller.

Engines are per *segment*: consecutive groups of one DNN that the lockstep order always runs
back to back on one accelerator (the same frame-set, nothing of another DNN between them) are
one engine, launched once. Running them as separate engines would give the same order but pay
a launch and an executor step per group: on a CUDA partition that host work is longer than a
small group's kernels, so the accelerator would idle between groups (docs/runtime.md,
"Segments"). ``fuse_groups=False`` keeps one engine per group: the profiler times groups that way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Tuple

from hax_conn_core.errors import ScheduleError
from hax_conn_core.runtime.backends.base import Backend, Engine, EngineSpec
from hax_conn_core.runtime.models import RuntimeModel

#: Frame-sets per epoch: the lockstep order is computed for this many, then starts again
#: (an epoch boundary costs nothing but the simulation of the next order).
EPOCH_FRAME_SETS = 256

#: (dnn, first layer, last layer, accelerator, precision, slots, producer's key or None)
EngineKey = Tuple


@dataclass
class RunPlan:
    """Everything the executors need to run one schedule."""

    schedule_id: int
    schedule: object  # hax_conn_core.schedule.Schedule
    profile: object  # the profile, cut down to the schedule's DNNs
    models: Mapping[str, RuntimeModel]
    ranges: Mapping[str, List[Tuple[int, int]]]  # dnn -> (first, last) layer per group
    segments: Mapping[str, List[Tuple[int, int]]]  # dnn -> (first, last) group per segment
    engines: Mapping[Tuple[str, int], Engine]  # (dnn, segment) -> engine
    orders: Mapping[str, List[Tuple[int, str, int]]]  # acc -> (local frame-set, dnn, group)
    steps: Mapping[str, List[Tuple[int, str, int]]]  # acc -> (local frame-set, dnn, segment)
    slots: int  # buffer sets: frame-sets in flight
    epoch_frame_sets: int
    precision: str

    @property
    def dnns(self) -> Tuple[str, ...]:
        return tuple(self.schedule.assignments)

    def last_group(self, dnn: str) -> int:
        return len(self.ranges[dnn]) - 1

    def last_segment(self, dnn: str) -> int:
        return len(self.segments[dnn]) - 1

    def accelerator(self, dnn: str, group: int) -> str:
        return self.schedule.assignments[dnn][group]

    def segment_accelerator(self, dnn: str, segment: int) -> str:
        return self.accelerator(dnn, self.segments[dnn][segment][0])

    def segment_layers(self, dnn: str, segment: int) -> Tuple[int, int]:
        """(first, last) layer of ``segment``."""
        first, last = self.segments[dnn][segment]
        return self.ranges[dnn][first][0], self.ranges[dnn][last][1]


def frames_in_flight(schedule) -> int:
    """Latency: one frame-set at a time; throughput: the schedule's ``frames_in_flight``."""
    return 1 if schedule.objective == "latency" else int(schedule.frames_in_flight)


def build_run_plan(backend: Backend, profile, schedule, models: Mapping[str, RuntimeModel],
                   schedule_id: int = 0, precision: str = "fp32",
                   pool: Optional[Dict[EngineKey, Engine]] = None,
                   epoch_frame_sets: int = EPOCH_FRAME_SETS,
                   fuse_groups: bool = True) -> RunPlan:
    """Check, build and order ``schedule`` (see the module docstring)."""
    from hax_conn_core.runtime.segments import group_ranges
    from hax_conn_core.schedule import check_schedule_fits
    from hax_conn_core.simulator import lockstep_orders

    names = list(schedule.assignments)
    missing = [name for name in names if name not in models]
    if missing:
        raise ScheduleError(f"no model loaded for {', '.join(missing)}; the schedule runs "
                            f"{', '.join(names)}")
    sub = profile.subset(names)
    check_schedule_fits(schedule, sub)
    unknown = sorted({a for accs in schedule.assignments.values() for a in accs}
                     - set(backend.accelerators))
    if unknown:
        raise ScheduleError(f"the schedule uses {', '.join(unknown)}, which backend "
                            f"{backend.name!r} on device {backend.device.id!r} does not have; "
                            f"expected {', '.join(backend.accelerators)}")
    ranges = {name: group_ranges(sub.dnns[name], models[name].graph) for name in names}
    orders = lockstep_orders(sub, schedule, epoch_frame_sets)
    segments = (fused_segments(orders, schedule.assignments) if fuse_groups else
                {name: [(g, g) for g in range(len(ranges[name]))] for name in names})
    slots = frames_in_flight(schedule)
    pool = {} if pool is None else pool
    engines: Dict[Tuple[str, int], Engine] = {}
    for name in names:
        model = models[name]
        producer_key = None
        producer: Optional[Engine] = None
        for index, (first_group, last_group) in enumerate(segments[name]):
            first, last = ranges[name][first_group][0], ranges[name][last_group][1]
            acc = schedule.assignments[name][first_group]
            key = (name, model.weights_id, first, last, acc, precision, slots, producer_key)
            engine = pool.get(key)
            if engine is None or engine.released:
                spec = EngineSpec(dnn=name, graph=model.graph, weights=model.weights,
                                  weights_id=model.weights_id, first_layer=first,
                                  last_layer=last, accelerator=acc, precision=precision)
                engine = pool[key] = backend.build(spec, slots=slots, inputs_from=producer)
            engines[(name, index)] = engine
            producer, producer_key = engine, key
    return RunPlan(schedule_id=schedule_id, schedule=schedule, profile=sub, models=dict(models),
                   ranges=ranges, segments=segments, engines=engines, orders=orders,
                   steps=segment_steps(orders, segments), slots=slots,
                   epoch_frame_sets=epoch_frame_sets, precision=precision)


def fused_segments(orders: Mapping[str, List[Tuple[int, str, int]]],
                   assignments: Mapping[str, List[str]]) -> Dict[str, List[Tuple[int, int]]]:
    """Per DNN, its groups cut into segments: group ``g + 1`` joins ``g``'s segment when both
    run on one accelerator and, in every frame-set of ``orders``, right after it there."""
    position: Dict[Tuple[str, int, str, int], int] = {}
    for acc, order in orders.items():
        for at, (local, dnn, group) in enumerate(order):
            position[(acc, local, dnn, group)] = at
    frame_sets = {local for order in orders.values() for local, _, _ in order}
    segments: Dict[str, List[Tuple[int, int]]] = {}
    for dnn, accs in assignments.items():
        cuts = [0]
        for group in range(1, len(accs)):
            acc = accs[group]
            joined = acc == accs[group - 1] and all(
                position.get((acc, local, dnn, group)) is not None
                and position.get((acc, local, dnn, group))
                == position.get((acc, local, dnn, group - 1), -2) + 1
                for local in frame_sets)
            if not joined:
                cuts.append(group)
        cuts.append(len(accs))
        segments[dnn] = [(cuts[i], cuts[i + 1] - 1) for i in range(len(cuts) - 1)]
    return segments


def segment_steps(orders: Mapping[str, List[Tuple[int, str, int]]],
                  segments: Mapping[str, List[Tuple[int, int]]]
                  ) -> Dict[str, List[Tuple[int, str, int]]]:
    """``orders`` with each segment's groups as one step: its index, at its first group."""
    first_of = {(dnn, first): index for dnn, spans in segments.items()
                for index, (first, _) in enumerate(spans)}
    return {acc: [(local, dnn, first_of[(dnn, group)]) for local, dnn, group in order
                  if (dnn, group) in first_of]
            for acc, order in orders.items()}
