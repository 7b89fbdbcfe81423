"""Schedules to validate, per DNN set and objective: planned here, or read from a bundle.

The planner needs z3; the machine that measures may not have it (the GPU machine has not). So
the schedules can be planned where z3 is and written as a *bundle*: a directory holding one
``hax-conn-schedule/1`` file per schedule (docs/formats.md) and ``bundle.json``, the manifest
(``hax-conn-schedule-bundle/1``, docs/validate.md) that says which file is which DNN set,
objective and schedule. The baselines need only the simulator: a bundle that leaves one out
gets it computed where it is read.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import ScheduleError
from hax_conn_core.jsonpath import join, load_json, Reader
from hax_conn_core.profile import Profile
from hax_conn_core.schedule import (check_schedule_fits, dump_schedule, load_schedule,
                                    OBJECTIVES, Schedule)

BUNDLE_FORMAT = "hax-conn-schedule-bundle/1"
_FAMILY = "hax-conn-schedule-bundle"
MANIFEST = "bundle.json"
#: The planned schedule's label, beside the baselines' names (baselines.BASELINE_NAMES).
PLAN_LABEL = "HaX-CoNN"
#: Schedule labels as file-name parts (``GPU&DLA`` has no place in a file name).
_SLUGS = {PLAN_LABEL: "hax-conn", "GPU-only": "gpu-only", "GPU&DLA": "gpu-dla",
          "Herald": "herald", "H2H": "h2h"}


@dataclass(frozen=True)
class ScheduleSet:
    """The schedules of one DNN set and objective: the plan first, then the baselines."""

    dnns: Tuple[str, ...]
    objective: str
    schedules: Mapping[str, Schedule]  # label -> schedule, PLAN_LABEL first

    @property
    def key(self) -> str:
        """``a-b.latency``: a file-name part (DNN ids have no ``-``; no ``+``, which not every
        file transfer keeps)."""
        return f"{'-'.join(self.dnns)}.{self.objective}"


def parse_sets(text: str, what: str = "--dnns") -> List[Tuple[str, ...]]:
    """``a,b`` or ``a,b;c,d,e``: DNN sets (``;`` separates sets, ``,`` the DNNs of a set)."""
    from hax_conn_core.errors import ConfigError

    sets = []
    for item in text.split(";"):
        names = tuple(n.strip() for n in item.split(","))
        if not all(names):
            raise ConfigError(f"{what} {text!r}: expected comma-separated DNN names, sets "
                              "separated by ';' (e.g. resnet18,mobilenet_v1)")
        sets.append(names)
    return sets


def plan_sets(profile: Profile, sets: Sequence[Sequence[str]], objectives: Sequence[str],
              max_transitions: int = 1, frames_in_flight: int = 2,
              timeout_s: Optional[float] = None, log=None) -> List[ScheduleSet]:
    """Plan every set for every objective (z3) and take the baselines the planner judged."""
    from hax_conn_core.planner import plan

    out = []
    for names in sets:
        sub = profile.subset(list(names))
        for objective in objectives:
            result = plan(sub, objective=objective, max_transitions=max_transitions,
                          timeout_s=timeout_s,
                          frames_in_flight=frames_in_flight if objective == "throughput"
                          else 2)
            for warning in result.warnings:
                if log:
                    log(f"{'+'.join(names)} {objective}: warning: {warning}")
            schedules = {PLAN_LABEL: result.schedule}
            schedules.update((b.name, b.schedule) for b in result.baselines)
            out.append(ScheduleSet(tuple(names), objective, schedules))
    return out


def with_baselines(profile: Profile, planned: ScheduleSet) -> ScheduleSet:
    """``planned`` with every baseline that applies and is missing computed (no z3 needed)."""
    from hax_conn_core.baselines import all_baselines

    plan_schedule = planned.schedules[PLAN_LABEL]
    missing = [b for b in all_baselines(profile.subset(list(planned.dnns)),
                                        objective=planned.objective,
                                        frames_in_flight=plan_schedule.frames_in_flight)
               if b.name not in planned.schedules]
    if not missing:
        return planned
    schedules = dict(planned.schedules)
    schedules.update((b.name, b.schedule) for b in missing)
    return ScheduleSet(planned.dnns, planned.objective, schedules)


def write_bundle(directory: Union[str, Path], profile: Profile, sets: Sequence[ScheduleSet],
                 command: str = "") -> Path:
    """Write every schedule of ``sets`` and the manifest into ``directory``; its path."""
    from hax_conn_core.files import atomic_write

    directory = Path(directory)
    entries = []
    try:
        for item in sets:
            files = {}
            for label, schedule in item.schedules.items():
                name = f"{item.key}.{_SLUGS.get(label, label.lower())}.json"
                atomic_write(directory / name, dump_schedule(schedule).encode("utf-8"))
                files[label] = name
            entries.append({"dnns": list(item.dnns), "objective": item.objective,
                            "schedules": files})
        manifest = {
            "format": BUNDLE_FORMAT,
            "profile_sha256": profile.sha256,
            "command": command,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "sets": entries,
        }
        atomic_write(directory / MANIFEST, (json.dumps(manifest, indent=2) + "\n")
                     .encode("utf-8"))
    except OSError as exc:
        raise ScheduleError(f"{directory}: cannot write the schedule bundle: "
                            f"{exc.strerror or exc}") from None
    return directory / MANIFEST


def load_bundle(path: Union[str, Path], profile: Profile) -> List[ScheduleSet]:
    """The schedule sets of the bundle at ``path`` (its directory or its ``bundle.json``),
    each schedule checked against ``profile`` (ScheduleError naming the file otherwise)."""
    path = Path(path)
    manifest_path = path / MANIFEST if path.is_dir() else path
    if not manifest_path.exists():
        raise ScheduleError(f"{path}: no {MANIFEST} there; expected a schedule bundle "
                            "written by 'hax-conn validate --write-schedules DIR'")
    r = Reader(str(manifest_path), ScheduleError)
    top = r.obj(load_json(manifest_path, ScheduleError, "schedule bundle"), "",
                "a JSON object with keys format, profile_sha256, sets")
    r.format_tag(top, BUNDLE_FORMAT, _FAMILY)
    # The manifest's profile_sha256 is a record; each schedule's own hash (of the whole
    # profile or of its DNNs' subset) is what is checked, so that a profile that gained DNNs
    # since still takes the plans of those it had.
    r.string(r.required(top, "profile_sha256", ""), "profile_sha256")
    entries = r.lst(r.required(top, "sets", ""), "sets", "a non-empty list of DNN sets",
                    non_empty=True)
    out = []
    for i, raw in enumerate(entries):
        at = join("sets", i)
        entry = r.obj(raw, at, "an object with keys dnns, objective, schedules")
        dnns = tuple(r.ident(n, join(join(at, "dnns"), j), "a DNN name") for j, n in
                     enumerate(r.lst(r.required(entry, "dnns", at), join(at, "dnns"),
                                     "a non-empty list of DNN names", non_empty=True)))
        objective = r.required(entry, "objective", at)
        if objective not in OBJECTIVES:
            raise r.expect(join(at, "objective"), " or ".join(OBJECTIVES), objective)
        files = r.obj(r.required(entry, "schedules", at), join(at, "schedules"),
                      "an object of label -> schedule file name")
        if PLAN_LABEL not in files:
            raise r.fail(join(at, "schedules"), f"expected a {PLAN_LABEL!r} schedule (the "
                                                "plan); found " + (", ".join(files) or "none"))
        schedules: Dict[str, Schedule] = {}
        for label, name in files.items():
            file = manifest_path.parent / r.string(name, join(join(at, "schedules"), label),
                                                   "a schedule file name")
            schedule = load_schedule(file)
            if tuple(schedule.assignments) != dnns or schedule.objective != objective:
                raise ScheduleError(f"{file}: a {schedule.objective} schedule of "
                                    f"{'+'.join(schedule.assignments)}; the bundle lists it "
                                    f"as {objective} of {'+'.join(dnns)}")
            check_schedule_fits(schedule, profile, source=str(file))
            schedules[label] = schedule
        ordered = {PLAN_LABEL: schedules.pop(PLAN_LABEL), **schedules}
        out.append(ScheduleSet(dnns, objective, ordered))
    return out


def select(sets: Sequence[ScheduleSet], wanted: Sequence[Sequence[str]],
           objectives: Optional[Sequence[str]] = None) -> List[ScheduleSet]:
    """The sets of ``sets`` asked for (all when ``wanted`` is empty), per objective asked
    (``None``: every objective the bundle has for the set); one asked for and not in the
    bundle is a ScheduleError listing what the bundle has."""
    if not wanted:
        chosen = [s for s in sets if objectives is None or s.objective in objectives]
        if not chosen:
            raise ScheduleError(f"the bundle has no {' or '.join(objectives or ())} schedules")
        return chosen
    have = {(s.dnns, s.objective): s for s in sets}
    out = []
    for names in wanted:
        if not any(dnns == tuple(names) for dnns, _ in have):
            raise ScheduleError(f"the bundle has no schedules for {'+'.join(names)}: it has "
                                + ", ".join(f"{'+'.join(d)} {o}" for d, o in have))
        for objective in objectives or [o for d, o in have if d == tuple(names)]:
            found = have.get((tuple(names), objective))
            if found is None:
                raise ScheduleError(
                    f"the bundle has no {objective} schedules for {'+'.join(names)}: it has "
                    + ", ".join(f"{'+'.join(d)} {o}" for d, o in have))
            out.append(found)
    return out
