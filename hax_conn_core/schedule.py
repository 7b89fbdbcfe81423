"""Schedules: which accelerator runs each layer group of each DNN (``hax-conn-schedule/1``).

The format and its meaning are in docs/formats.md and docs/timing-model.md. The order of the
DNNs is their priority (ties in the simulation go to the DNN listed first), so it is kept
everywhere: in the dataclass, in the JSON and in conversions.

``profile_sha256`` names the profile a schedule was planned on (``Profile.sha256``, the hash of
its canonical content). ``check_schedule_fits`` accepts the hash of the whole profile or of the
profile cut down to the schedule's DNNs in any order (``Profile.subset``), since a plan for two
DNNs out of a profile of twelve is made on that subset.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import ScheduleError
from hax_conn_core.jsonpath import describe, join, load_json, Reader, write_text
from hax_conn_core.profile import DnnProfile, Profile

SCHEDULE_FORMAT = "hax-conn-schedule/1"
_FAMILY = "hax-conn-schedule"
OBJECTIVES = ("latency", "throughput")
DEFAULT_FRAMES_IN_FLIGHT = 2
#: Most frame-sets in flight (docs/timing-model.md: ``D`` from 1 to 16).
MAX_FRAMES_IN_FLIGHT = 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Schedule:
    objective: str  # "latency" | "throughput"
    # DNN -> accelerator of each group; the order of the DNNs is their priority.
    assignments: Mapping[str, Tuple[str, ...]]
    predicted_ms: Optional[float] = None
    max_transitions: Optional[int] = None
    frames_in_flight: int = DEFAULT_FRAMES_IN_FLIGHT
    profile_sha256: Optional[str] = None
    solver: Optional[Mapping[str, Any]] = None

    def transitions(self, dnn: str) -> int:
        """How many times ``dnn`` changes accelerator."""
        return count_transitions(self.assignments[dnn])

    def max_transitions_used(self) -> int:
        """The largest number of transitions of any DNN."""
        return max((self.transitions(name) for name in self.assignments), default=0)

    def with_prediction(self, ms: float) -> "Schedule":
        return dataclasses.replace(self, predicted_ms=ms)


def count_transitions(assignment: Sequence[str]) -> int:
    return sum(1 for a, b in zip(assignment, assignment[1:]) if a != b)


# --- reading ---------------------------------------------------------------------------------

def load_schedule(path: Union[str, Path]) -> Schedule:
    """Read and validate a schedule file; any problem raises ScheduleError naming file and path."""
    return parse_schedule(load_json(path, ScheduleError, "schedule"), source=str(path))


def parse_schedule(obj: Any, source: str = "<schedule>") -> Schedule:
    """Validate a decoded JSON document as ``hax-conn-schedule/1`` (on its own, no profile).

    The transition budget ``max_transitions`` is checked by ``check_schedule_fits``, after the
    accelerators are known to be the profile's: a misspelt accelerator (``npu``) adds changes
    of accelerator, and is reported as what it is, not as a budget overrun.
    """
    r = Reader(source, ScheduleError)
    top = r.obj(obj, "", "a JSON object with keys format, objective, dnns")
    r.format_tag(top, SCHEDULE_FORMAT, _FAMILY)
    objective = r.required(top, "objective", "")
    if objective not in OBJECTIVES:
        raise r.expect("objective", " or ".join(f'"{o}"' for o in OBJECTIVES), objective)
    raw_dnns = r.obj(r.required(top, "dnns", ""), "dnns",
                     'an object of DNN name -> {"assignment": [...]}')
    if not raw_dnns:
        raise r.fail("dnns", "expected at least one DNN, found an empty object")
    assignments: Dict[str, Tuple[str, ...]] = {}
    for name, raw in raw_dnns.items():
        r.key_ident(name, "dnns", "a DNN name")
        path = join("dnns", name)
        entry = r.obj(raw, path, 'an object with key "assignment"')
        a_path = join(path, "assignment")
        accs = r.lst(r.required(entry, "assignment", path), a_path,
                     "a non-empty list of accelerator names, one per layer group",
                     non_empty=True)
        for i, acc in enumerate(accs):
            r.ident(acc, join(a_path, i), "an accelerator name")
        assignments[name] = tuple(accs)

    predicted = top.get("predicted_ms")
    if predicted is not None:
        predicted = r.number(predicted, "predicted_ms", minimum=0.0, unit="(ms)")
    max_transitions = top.get("max_transitions")
    if max_transitions is not None:
        max_transitions = r.integer(max_transitions, "max_transitions", minimum=0)
    frames = top.get("frames_in_flight")
    frames = (DEFAULT_FRAMES_IN_FLIGHT if frames is None
              else r.integer(frames, "frames_in_flight", minimum=1,
                             maximum=MAX_FRAMES_IN_FLIGHT))
    sha = top.get("profile_sha256")
    if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha)):
        raise r.expect("profile_sha256", "64 lowercase hexadecimal digits (a SHA-256)", sha)
    solver = top.get("solver")
    if solver is not None:
        solver = dict(r.obj(solver, "solver", "an object (time, status, ...)"))
    return Schedule(objective=objective, assignments=assignments, predicted_ms=predicted,
                    max_transitions=max_transitions, frames_in_flight=frames,
                    profile_sha256=sha, solver=solver)


def schedule_to_dict(schedule: Schedule) -> Dict[str, Any]:
    """The JSON document of ``schedule``; optional keys only where set (priority order kept)."""
    doc: Dict[str, Any] = {
        "format": SCHEDULE_FORMAT,
        "objective": schedule.objective,
        "dnns": {name: {"assignment": list(accs)} for name, accs in schedule.assignments.items()},
    }
    if schedule.predicted_ms is not None:
        doc["predicted_ms"] = schedule.predicted_ms
    if schedule.max_transitions is not None:
        doc["max_transitions"] = schedule.max_transitions
    if schedule.objective == "throughput" or schedule.frames_in_flight != DEFAULT_FRAMES_IN_FLIGHT:
        doc["frames_in_flight"] = schedule.frames_in_flight
    if schedule.profile_sha256 is not None:
        doc["profile_sha256"] = schedule.profile_sha256
    if schedule.solver is not None:
        doc["solver"] = dict(schedule.solver)
    return doc


def dump_schedule(schedule: Schedule) -> str:
    """The schedule as JSON text, one DNN per line (validated on the way)."""
    doc = schedule_to_dict(schedule)
    source = "<schedule being written>"
    check_budget(parse_schedule(json.loads(json.dumps(doc)), source=source),
                 Reader(source, ScheduleError))
    c = json.dumps
    lines = ["{"]
    for key, value in doc.items():
        if key == "dnns":
            lines.append('  "dnns": {')
            items = list(value.items())
            for i, (name, entry) in enumerate(items):
                lines.append(f"    {c(name)}: {c(entry)}" + ("," if i + 1 < len(items) else ""))
            lines.append("  },")
        else:
            lines.append(f"  {c(key)}: {c(value)},")
    lines[-1] = lines[-1].rstrip(",")
    return "\n".join(lines + ["}"]) + "\n"


def write_schedule(schedule: Schedule, path: Union[str, Path]) -> None:
    """Write ``dump_schedule(schedule)`` to ``path``."""
    write_text(path, dump_schedule(schedule), ScheduleError, "schedule")


# --- against a profile -----------------------------------------------------------------------

def check_schedule_fits(schedule: Schedule, profile: Profile,
                        source: str = "<schedule>") -> Profile:
    """Check that ``schedule`` can run on ``profile``; return the profile cut to its DNNs.

    Every DNN must be in the profile, every assignment must have one accelerator per group, and
    each accelerator must be able to run its group; then every DNN must keep within
    ``max_transitions`` (``check_budget``). A ``profile_sha256`` must match the profile
    or its subset of the schedule's DNNs. Raises ScheduleError naming the JSON path.
    """
    r = Reader(source, ScheduleError)
    for name, accs in schedule.assignments.items():
        a_path = join(join("dnns", name), "assignment")
        if name not in profile.dnns:
            raise r.fail(join("dnns", name), f"DNN {name!r} is not in the profile: expected "
                                             f"one of {', '.join(profile.dnns)}")
        check_assignment(profile, profile.dnns[name], accs, r, a_path)
    check_budget(schedule, r)
    subset = profile.subset(list(schedule.assignments))
    if (schedule.profile_sha256 is not None
            and schedule.profile_sha256 not in (profile.sha256, subset.sha256)):
        raise r.fail("profile_sha256", f"the schedule was planned on another profile (sha256 "
                                       f"{schedule.profile_sha256[:12]}..., this profile "
                                       f"{profile.sha256[:12]}..., its subset of the schedule's "
                                       f"DNNs {subset.sha256[:12]}...): re-plan on this profile")
    return subset


def check_budget(schedule: Schedule, r: Optional[Reader] = None) -> None:
    """Every DNN within ``schedule.max_transitions`` changes of accelerator (when it is set)."""
    r = r or Reader("<schedule>", ScheduleError)
    if schedule.max_transitions is None:
        return
    for name, accs in schedule.assignments.items():
        used = count_transitions(accs)
        if used > schedule.max_transitions:
            raise r.fail(join(join("dnns", name), "assignment"),
                         f"expected at most max_transitions = {schedule.max_transitions} "
                         f"changes of accelerator, found {used}")


def check_assignment(profile: Profile, dnn: DnnProfile, accs: Sequence[str],
                     r: Optional[Reader] = None, path: Optional[str] = None) -> None:
    """One DNN's assignment against its profile (length, known and capable accelerators)."""
    r = r or Reader("<schedule>", ScheduleError)
    path = path or join(join("dnns", dnn.name), "assignment")
    if len(accs) != len(dnn.groups):
        raise r.fail(path, f"expected {len(dnn.groups)} accelerators (one per layer group of "
                           f"{dnn.name} in the profile), found {len(accs)}")
    for i, (acc, group) in enumerate(zip(accs, dnn.groups)):
        if acc not in profile.device.accelerators:
            raise r.fail(join(path, i), f"unknown accelerator {acc!r}: expected one of "
                                        f"{', '.join(profile.device.accelerators)}")
        if not group.runs_on(acc):
            raise r.fail(join(path, i), f"{acc!r} cannot run group {i} of {dnn.name} (layers "
                                        f"{group.layers[0]}-{group.layers[1]}): expected one "
                                        f"of {', '.join(group.time_ms)}")


def describe_assignment(dnn_profile: DnnProfile, assignment: Sequence[str]) -> str:
    """The artifact's words for an assignment.

    ``googlenet starts on GPU, transitions to DLA after layer 52``; several transitions are
    listed in order (``..., then to GPU after layer 80``); none: ``googlenet runs on GPU only``.
    The layer is the last layer of the last group before the switch (docs/conventions.md).
    """
    if len(assignment) != len(dnn_profile.groups):
        raise ScheduleError(f"{dnn_profile.name}: expected {len(dnn_profile.groups)} "
                            f"accelerators, found {describe(list(assignment))}")
    name = dnn_profile.name
    if count_transitions(assignment) == 0:
        return f"{name} runs on {assignment[0].upper()} only"
    parts = [f"{name} starts on {assignment[0].upper()}"]
    first = True
    for i in range(1, len(assignment)):
        if assignment[i] != assignment[i - 1]:
            layer = dnn_profile.groups[i - 1].layers[1]
            lead = "transitions to" if first else "then to"
            parts.append(f"{lead} {assignment[i].upper()} after layer {layer}")
            first = False
    return ", ".join(parts)
