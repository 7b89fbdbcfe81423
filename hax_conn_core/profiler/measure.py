"""One DNN run through the Runtime under one assignment, frame by frame: the in-context times.

A :class:`RunConfig` is a DNN's layer ranges and the accelerator of each. ``measure_runs``
runs every config given for ``repeats`` frames (after ``warmup`` frames, left out, each time
it switches to a config), in rounds of ``chunk`` frames per config, so that a change of load on
the machine during the profile affects every config alike. After each chunk the samples are
stored in the cache; a config whose entry is complete is not run again. A sample is one frame:
``[latency_ms, [ms of group 0, ms of group 1, ...]]``, the group times as the runtime measured
them on their accelerator (``GroupTiming.ms``) in that whole-DNN run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.errors import BackendError

#: Frames per config per round (docs/profiler.md, "Interleaving").
DEFAULT_CHUNK = 10


@dataclass(frozen=True)
class RunConfig:
    """Layer ranges of one DNN and the accelerator of each: one whole-DNN run."""

    ranges: Tuple[Tuple[int, int], ...]
    assignment: Tuple[str, ...]
    label: str = ""

    def descriptor(self, repeats: int, warmup: int, extra: Mapping[str, Any]) -> Dict[str, Any]:
        return {"kind": "run", "ranges": [list(r) for r in self.ranges],
                "assignment": list(self.assignment), "repeats": repeats, "warmup": warmup,
                **extra}


def run_profile(name: str, ranges: Sequence[Tuple[int, int]], accelerators: Sequence[str]):
    """A placeholder profile whose groups are ``ranges``, runnable on every accelerator (the
    Runtime needs one to check and order a schedule; its numbers are never used)."""
    from hax_conn_core.profile import parse_profile

    ones = {acc: 1.0 for acc in accelerators}
    zeros = {acc: 0.0 for acc in accelerators}
    return parse_profile({
        "format": "hax-conn-profile/1",
        "device": {"name": "profiler", "accelerators": list(accelerators),
                   "peak_bandwidth_gbps": 1.0},
        "contention": {acc: [[0.0, 1.0]] for acc in accelerators},
        "dnns": {name: {"groups": [{"layers": list(r), "time_ms": ones, "demand_gbps": zeros,
                                    "transition_ms": zeros} for r in ranges]}}})


def measure_runs(backend, model, configs: Sequence[RunConfig], repeats: int, warmup: int,
                 cache, bar, extra: Optional[Mapping[str, Any]] = None,
                 chunk: int = DEFAULT_CHUNK) -> Dict[RunConfig, List[list]]:
    """Samples of every config (module docstring); cached entries are reused."""
    from hax_conn_core.schedule import Schedule

    extra = dict(extra or {})
    samples: Dict[RunConfig, List[list]] = {}
    todo: List[RunConfig] = []
    for config in configs:
        entry = cache.load(config.descriptor(repeats, warmup, extra))
        samples[config] = list(entry["samples"]) if entry else []
        if len(samples[config]) < repeats:
            todo.append(config)
    bar.advance(sum(min(repeats, len(v)) for v in samples.values()))
    if not todo:
        return samples
    from hax_conn_core.runtime.session import Runtime

    accs = tuple(backend.accelerators)
    models = {model.name: model}
    runtime = None
    current = None
    round_index = 0
    try:
        while todo:
            for config in list(todo):
                left = repeats - len(samples[config])
                count = min(chunk, left)
                schedule = Schedule("latency", {model.name: config.assignment})
                profile = run_profile(model.name, config.ranges, accs)
                skip = warmup if current is not config else 0
                if runtime is None:
                    runtime = Runtime(backend, profile, schedule, models,
                                      fuse_groups=False).start()
                elif current is not config:
                    runtime.swap(schedule, profile=profile)
                current = config
                frames = _frames(model, skip + count, seed=round_index)
                results = runtime.run(frames, progress=None)
                for result in results:
                    if not result.ok:
                        error = next(r.error for r in result.results.values() if not r.ok)
                        raise BackendError(f"{model.name}: profiling run {config.label or ''} "
                                           f"failed: {error}")
                for result in results[skip:]:
                    times = {t.group: t.ms for t in result.timings}
                    samples[config].append([result.latency_ms,
                                            [times[g] for g in range(len(config.ranges))]])
                bar.advance(count)
                done = len(samples[config]) >= repeats
                cache.store(config.descriptor(repeats, warmup, extra), samples[config], done)
                if done:
                    todo.remove(config)
            round_index += 1
    finally:
        if runtime is not None:
            runtime.close(drain=False)
    return samples


def _frames(model, count: int, seed: int):
    import numpy as np

    for index in range(count):
        yield {model.name: np.random.default_rng([seed, index]).standard_normal(
            model.input_shape, dtype=np.float32)}


def group_stats(samples: Sequence[list], group: int) -> Tuple[float, float, float]:
    """(median, p10, p90) of one group's ms over the samples."""
    import numpy as np

    values = [s[1][group] for s in samples]
    low, median, high = np.percentile(values, [10, 50, 90])
    return float(median), float(low), float(high)


def median_latency(samples: Sequence[list]) -> float:
    import numpy as np

    return float(np.median([s[0] for s in samples]))


def median_gap(samples: Sequence[list]) -> float:
    """Median over frames of latency minus the frame's own group times: the run's overhead
    outside the groups (frame in, executor hand-ons, outputs out)."""
    import numpy as np

    return float(np.median([s[0] - sum(s[1]) for s in samples]))
