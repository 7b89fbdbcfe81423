"""A schedule made runnable: its engines built, and each accelerator's lockstep order.

``build_run_plan(backend, profile, schedule, models)`` checks the profile's groups against the
DNNs' graphs (:mod:`.segments`), builds one engine per group on the accelerator the schedule
names (taken from ``pool`` when an equal one exists, so that swapping back to a schedule costs
no build), and asks the simulator for the order in which each accelerator runs its groups
(docs/runtime.md, "Lockstep"). The runtime makes no plans: the schedule comes from the caller.
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
    engines: Mapping[Tuple[str, int], Engine]  # (dnn, group) -> engine
    orders: Mapping[str, List[Tuple[int, str, int]]]  # acc -> (local frame-set, dnn, group)
    slots: int  # buffer sets: frame-sets in flight
    epoch_frame_sets: int
    precision: str

    @property
    def dnns(self) -> Tuple[str, ...]:
        return tuple(self.schedule.assignments)

    def last_group(self, dnn: str) -> int:
        return len(self.ranges[dnn]) - 1

    def accelerator(self, dnn: str, group: int) -> str:
        return self.schedule.assignments[dnn][group]


def frames_in_flight(schedule) -> int:
    """Latency: one frame-set at a time; throughput: the schedule's ``frames_in_flight``."""
    return 1 if schedule.objective == "latency" else int(schedule.frames_in_flight)


def build_run_plan(backend: Backend, profile, schedule, models: Mapping[str, RuntimeModel],
                   schedule_id: int = 0, precision: str = "fp32",
                   pool: Optional[Dict[EngineKey, Engine]] = None,
                   epoch_frame_sets: int = EPOCH_FRAME_SETS) -> RunPlan:
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
    slots = frames_in_flight(schedule)
    pool = {} if pool is None else pool
    engines: Dict[Tuple[str, int], Engine] = {}
    for name in names:
        model = models[name]
        producer_key = None
        producer: Optional[Engine] = None
        for group, ((first, last), acc) in enumerate(zip(ranges[name],
                                                         schedule.assignments[name])):
            key = (name, model.weights_id, first, last, acc, precision, slots, producer_key)
            engine = pool.get(key)
            if engine is None or engine.released:
                spec = EngineSpec(dnn=name, graph=model.graph, weights=model.weights,
                                  weights_id=model.weights_id, first_layer=first,
                                  last_layer=last, accelerator=acc, precision=precision)
                engine = pool[key] = backend.build(spec, slots=slots, inputs_from=producer)
            engines[(name, group)] = engine
            producer, producer_key = engine, key
    orders = lockstep_orders(sub, schedule, epoch_frame_sets)
    return RunPlan(schedule_id=schedule_id, schedule=schedule, profile=sub, models=dict(models),
                   ranges=ranges, engines=engines, orders=orders, slots=slots,
                   epoch_frame_sets=epoch_frame_sets, precision=precision)
