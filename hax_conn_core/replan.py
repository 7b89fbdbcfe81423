"""Re-planning a running DNN set: check a requested change, then plan it, from a cache if seen.

The planner node's logic without ROS. ``Replanner.check(request)`` validates a
:class:`PlanRequest` (the node's parameters) and raises ConfigError with a reason naming the
bad value and what is allowed; it has no side effect beyond reading (and caching) the profile.
``Replanner.plan(request)`` returns a :class:`Replan`. Plans are cached per (DNN set, objective,
max transitions, frames in flight, profile sha256), so switching back to a DNN set seen before
costs a dictionary look-up: the paper's dynamic variant, which keeps the plans of the sets a
robot switches between. A solver time-out is part of the request, not of the key (the plan it
gives is the best found within it; a longer time-out on a cached set reuses the cached plan).

A set not seen before is planned with a warm start (``reuse=True``, the default): the DNNs it
shares with the last plan under the same options keep that plan's assignment as a hint
(``planner.plan(hints=...)``), which seeds the search beside the baselines; the plan is still
searched and proven the same way, so a hint can only make it start from a better incumbent.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

from hax_conn_core.errors import ConfigError, HaxConnError

#: The shipped CPU profile (measured with onnxruntime): the embedded default.
DEFAULT_PROFILE = "cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"
DEFAULT_DNNS = ("alexnet", "resnet18")
#: Inclusive ranges of the numeric options (the ROS parameters declare the same).
MAX_TRANSITIONS_RANGE = (0, 8)
FRAMES_IN_FLIGHT_RANGE = (1, 16)
SOLVER_TIMEOUT_RANGE_S = (0.01, 600.0)
#: Plans kept (least recently used dropped first).
CACHE_SIZE = 64


@dataclass(frozen=True)
class PlanRequest:
    """What to plan. ``profile``: a path, or the file name of a shipped profile."""

    dnns: Tuple[str, ...] = DEFAULT_DNNS
    objective: str = "latency"
    max_transitions: int = 1
    profile: str = DEFAULT_PROFILE
    frames_in_flight: int = 2
    solver_timeout_s: float = 10.0


@dataclass(frozen=True)
class Replan:
    """A plan for a request: the schedule, the profile cut to its DNNs, and how it was got."""

    schedule: object  # hax_conn_core.schedule.Schedule
    profile: object  # hax_conn_core.profile.Profile, the subset planned
    profile_path: str  # resolved path of the profile file
    cached: bool
    time_s: float  # planning (or look-up) time
    status: str  # the planner's status ("optimal", "converged", "timeout", ...)
    words: Tuple[str, ...]  # describe_assignment per DNN, priority order
    reused: Tuple[str, ...] = ()  # DNNs whose previous assignment seeded the search (hints)


def resolve_profile(name: str) -> Path:
    """``name`` as a path; a bare file name not found there is looked up in the shipped
    profiles. ConfigError if neither exists."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError("profile: expected a path to a hax-conn-profile/1 file or a shipped "
                          f"profile's name, found {name!r}")
    path = Path(name).expanduser()
    if path.is_file():
        return path.resolve()
    if len(path.parts) == 1:
        from hax_conn_core.resources import data_dir

        shipped = data_dir("profiles") / path.name
        if shipped.is_file():
            return shipped
    raise ConfigError(f"profile {name!r}: no such file (a path, or one of the shipped "
                      f"profiles: {', '.join(_shipped_profiles())})")


def _shipped_profiles() -> Tuple[str, ...]:
    from hax_conn_core.resources import data_dir

    return tuple(sorted(p.name for p in data_dir("profiles").glob("*.json")))


class Replanner:
    """Checks and plans :class:`PlanRequest`s, caching profiles and plans (thread-safe enough
    for one caller at a time; the planner node calls it from one callback group)."""

    def __init__(self, cache_size: int = CACHE_SIZE, reuse: bool = True):
        self._profiles: Dict[Tuple[str, int, int], object] = {}
        self._plans: "OrderedDict[Tuple, object]" = OrderedDict()
        self._cache_size = cache_size
        self.reuse = reuse
        #: (objective, K, D, profile sha256) -> {dnn: assignment} of the latest plan: hints.
        self._last: Dict[Tuple, Dict[str, Tuple[str, ...]]] = {}
        self.hits = 0
        self.misses = 0

    def load_profile(self, name: str):
        """The profile ``name`` (resolve_profile), read once per file version."""
        from hax_conn_core.profile import load_profile

        path = resolve_profile(name)
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._profiles:
            self._profiles[key] = load_profile(path)
        return self._profiles[key]

    def check(self, request: PlanRequest):
        """Validate ``request``; return the profile cut to its DNNs. Raises ConfigError."""
        from hax_conn_core.graph.resolve import registered_models
        from hax_conn_core.models import known_ids
        from hax_conn_core.schedule import OBJECTIVES

        dnns = tuple(request.dnns)
        # Users' models count once registered (graph.resolve.register_model: their file read
        # by the nodes that run them), by the name they were registered under.
        known = known_ids() + tuple(m.id for m in registered_models())
        if not dnns:
            raise ConfigError(f"dnns: the list is empty; expected one or more of "
                              f"{', '.join(known)}")
        for name in dnns:
            if name not in known:
                raise ConfigError(f"dnns: unknown DNN {name!r}; expected one of "
                                  f"{', '.join(known)} (or a .onnx / .prototxt path)")
        if len(set(dnns)) != len(dnns):
            repeated = sorted({n for n in dnns if dnns.count(n) > 1})
            raise ConfigError(f"dnns: {', '.join(repeated)} listed twice; expected distinct "
                              "names")
        if request.objective not in OBJECTIVES:
            raise ConfigError(f"objective: {request.objective!r} is not one of "
                              f"{', '.join(OBJECTIVES)}")
        _check_int("max_transitions", request.max_transitions, MAX_TRANSITIONS_RANGE)
        _check_int("frames_in_flight", request.frames_in_flight, FRAMES_IN_FLIGHT_RANGE)
        low, high = SOLVER_TIMEOUT_RANGE_S
        timeout = request.solver_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not math.isfinite(timeout) or not low <= timeout <= high:
            raise ConfigError(f"solver_timeout_s: {timeout!r} is out of range; expected "
                              f"seconds from {low} to {high}")
        try:
            profile = self.load_profile(request.profile)
        except ConfigError:
            raise
        except HaxConnError as error:
            raise ConfigError(f"profile {request.profile!r}: {error}") from None
        missing = [n for n in dnns if n not in profile.dnns]
        if missing:
            raise ConfigError(f"dnns: {', '.join(missing)} not in the profile "
                              f"{request.profile!r}; it has {', '.join(profile.dnns)}")
        return profile.subset(list(dnns))

    def plan(self, request: PlanRequest) -> Replan:
        """Plan ``request`` (checked first), or return the cached plan of the same set."""
        from hax_conn_core.planner import plan
        from hax_conn_core.schedule import describe_assignment

        started = time.perf_counter()
        profile = self.check(request)
        key = (tuple(request.dnns), request.objective, int(request.max_transitions),
               int(request.frames_in_flight), profile.sha256)
        cached = self._plans.get(key)
        # The subset's sha256 differs per set: hints are kept per options and whole profile.
        options = key[1:4] + (self.load_profile(request.profile).sha256,)
        reused: Tuple[str, ...] = ()
        if cached is not None:
            self._plans.move_to_end(key)
            self.hits += 1
            schedule, status = cached
        else:
            last = self._last.get(options, {}) if self.reuse else {}
            hint = {n: last[n] for n in request.dnns if n in last}
            reused = tuple(hint)
            result = plan(profile, objective=request.objective,
                          max_transitions=int(request.max_transitions),
                          timeout_s=float(request.solver_timeout_s),
                          frames_in_flight=int(request.frames_in_flight),
                          hints=(hint,) if hint else ())
            schedule, status = result.schedule, result.status
            self.misses += 1
            if status not in ("timeout", "resource-limit", "candidate-limit"):
                self._plans[key] = (schedule, status)  # a cut-short plan is not kept
                while len(self._plans) > self._cache_size:
                    self._plans.popitem(last=False)
        self._last.setdefault(options, {}).update(
            {n: tuple(a) for n, a in schedule.assignments.items()})
        words = tuple(describe_assignment(profile.dnns[name], schedule.assignments[name])
                      for name in schedule.assignments)
        return Replan(schedule=schedule, profile=profile,
                      profile_path=str(resolve_profile(request.profile)),
                      cached=cached is not None, time_s=time.perf_counter() - started,
                      status=status, words=words, reused=reused)

    def cached(self, request: PlanRequest) -> Optional[object]:
        """The cached schedule of ``request`` or None (no planning, no check)."""
        try:
            profile = self.load_profile(request.profile).subset(list(request.dnns))
        except HaxConnError:
            return None
        key = (tuple(request.dnns), request.objective, int(request.max_transitions),
               int(request.frames_in_flight), profile.sha256)
        entry = self._plans.get(key)
        return None if entry is None else entry[0]


def _check_int(name: str, value, bounds: Tuple[int, int]) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}: {value!r} is out of range; expected an integer from {low} "
                          f"to {high}")
