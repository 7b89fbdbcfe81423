"""``profile_dnns``: a measured profile of DNNs on a backend (docs/profiler.md).

    with get_backend("onnxruntime") as backend:
        run = profile_dnns(backend, ["alexnet", "mobilenet_v1"], repeats=50)
    run.profile                              # a Profile (hax_conn_core.profile)
    write_document(run.document, "P.json")   # .document: with the optional keys

Per DNN: its groups (:mod:`.groups`); in-context times from whole-DNN runs with every group
on one accelerator (where an accelerator cannot run a group, that group runs on the GPU), and
the same runs with each stretch of one accelerator as one engine, interleaved (:mod:`.measure`);
the check that the group times sum to within ``tolerance`` of those engines, merging groups
too small to time once when they do not; then one split run per boundary and sender
(:mod:`.transitions`). Per device: the peak bandwidth (measured) and the contention curves
(:mod:`.contention`). Everything measured is cached as it is measured (:mod:`.cache`).
"""

from __future__ import annotations

import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import BackendError, ConfigError
from hax_conn_core.profiler.groups import ProfGroup
from hax_conn_core.profiler.measure import RunConfig

#: Largest disagreement between the group times' sum and the engines' time (docs/profiler.md).
TOLERANCE = 0.03
#: Least repeats (timing model: median of >= 50).
MIN_REPEATS = 50
#: A group is too small to time below this many times the overhead per group boundary.
FLOOR_FACTOR = 4.0
#: ... and always below this (ms).
MIN_GROUP_MS = 0.05
#: Split runs measured together (interleaved with one reference run); bounds the engines held.
SPLIT_BATCH = 4


class ProfileInterrupted(BackendError):
    """The backend failed while measuring: ``kept`` measurements stay in the cache under
    ``cache_dir``; a rerun of the same profile measures only the rest."""

    def __init__(self, what: str, kept: int, cache_dir: Path):
        super().__init__(f"profiling stopped: {what}; {kept} measurement(s) kept in the cache "
                         f"({cache_dir})")
        self.what, self.kept, self.cache_dir = what, kept, cache_dir


def kept_measurements(caches) -> int:
    """Entries on disk in the caches' directories (this run's and earlier ones')."""
    return sum(len(list(Path(c.directory).glob("*.json"))) for c in caches
               if Path(c.directory).is_dir())


@dataclass
class ProfileRun:
    """What ``profile_dnns`` made: the document, the notes it printed, the cache counts."""

    document: Dict[str, Any]
    notes: List[str] = field(default_factory=list)
    within_tolerance: Dict[str, bool] = field(default_factory=dict)
    reused: int = 0
    rebuilt: int = 0

    @property
    def profile(self):
        """The document as a validated :class:`~hax_conn_core.profile.Profile`."""
        from hax_conn_core.profile import parse_profile

        return parse_profile(self.document, source="<measured profile>")


def resolve_model(name_or_model):
    """A RuntimeModel from a registered DNN id, a .prototxt path (seeded weights, named by
    its file stem) or a RuntimeModel as it is."""
    from hax_conn_core.runtime.models import load_model, RuntimeModel

    if isinstance(name_or_model, RuntimeModel):
        return name_or_model
    text = str(name_or_model)
    if text.endswith(".prototxt"):
        from hax_conn_core.graph.prototxt import load_prototxt
        from hax_conn_core.graph.weights import seeded_weights
        from hax_conn_core.models import normalise_model_id
        from hax_conn_core.runtime.backends.onnxrt import run_onnx

        name = normalise_model_id(Path(text).stem)
        graph = load_prototxt(text, name=name)
        return RuntimeModel(name=name, graph=graph,
                            weights=seeded_weights(graph, 0, run=run_onnx),
                            weights_id="seeded:0")
    return load_model(text)


def profile_dnns(backend, dnns: Sequence[Union[str, Any]], device=None, repeats: int = 50,
                 warmup: int = 5, progress: bool = True, target_groups: int = 10,
                 contention: bool = True, stress_gbps: Optional[float] = None,
                 cache_root: Optional[Path] = None, tolerance: float = TOLERANCE,
                 note: Optional[Callable[[str], None]] = None,
                 fold_run_costs: bool = True) -> ProfileRun:
    """Profile ``dnns`` (ids, .prototxt paths or RuntimeModels) on the open ``backend``.

    ``device`` names the device description whose rules say what each accelerator runs
    (default: the backend's device). ``repeats`` frames per run after ``warmup`` (at least 50,
    the timing model's figure). ``contention=False`` writes flat, uncalibrated curves;
    ``stress_gbps`` is the stressor's top level (a StressorError when it cannot reach it).
    ``note`` receives each line to show (default: stderr, above the progress bar).
    ``fold_run_costs`` (default) folds what a whole run costs beyond its groups into the group
    times (:mod:`.folding`); False writes the groups' own times as measured.
    """
    from hax_conn_core.graph.capabilities import load_device
    from hax_conn_core.profiler.cache import MeasurementCache
    from hax_conn_core.profiler.groups import check_runnable, initial_groups
    from hax_conn_core.profiler.progress import ProgressBar
    from hax_conn_core.runtime.cache import graph_sha256

    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < MIN_REPEATS:
        raise ConfigError(f"repeats: expected an integer >= {MIN_REPEATS} (median of at least "
                          f"{MIN_REPEATS} frames per run), found {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 1:
        raise ConfigError(f"warmup: expected an integer >= 1, found {warmup!r}")
    caps = load_device(device if device is not None else
                       (backend.device.path or backend.device.id))
    accelerators = tuple(backend.accelerators)
    missing = [a for a in accelerators if a not in caps.accelerators]
    if missing:
        raise ConfigError(f"device {caps.id!r} describes {', '.join(caps.accelerators)}; the "
                          f"backend's device has {', '.join(missing)} too")
    precision = _precision(backend)
    run = ProfileRun(document={})
    models = [resolve_model(d) for d in dnns]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"--dnns: a DNN is named twice ({', '.join(names)})")
    plans = []
    for model in models:
        groups = initial_groups(model.graph, caps, accelerators, target_groups)
        check_runnable(model.name, model.graph, groups, caps, accelerators)
        plans.append((model, groups))
    settings = {acc: dict(backend.device.settings(backend.name, acc)) for acc in accelerators}
    extra = {"settings": settings, "precision": precision}
    backend_id = f"{backend.name}-{backend.version}"
    with ProgressBar(progress) as bar:
        show = note or bar.note

        def say(line: str) -> None:
            run.notes.append(line)
            show(line)

        def cache_for(key: str) -> MeasurementCache:
            return MeasurementCache(cache_root, caps.id, backend_id, key, precision,
                                    warn=lambda line: say(f"warning: {line}"))

        caches: List[MeasurementCache] = []
        for model, groups in plans:
            bar.add_total(_frames_needed(groups, accelerators, repeats))
        memory_cache = cache_for("_memory")
        caches.append(memory_cache)
        out_dnns: Dict[str, dict] = {}
        meta: Dict[str, dict] = {}
        try:
            bar.describe("peak bandwidth and contention")
            peak, calibration = _memory(backend, memory_cache, accelerators, contention,
                                        stress_gbps, say)
            for model, groups in plans:
                key = f"{model.name}-{graph_sha256(model.graph)[:12]}-{model.weights_id}"
                cache = cache_for(key)
                caches.append(cache)
                bar.describe(model.name)
                out_dnns[model.name], meta[model.name] = _profile_one(
                    backend, model, groups, accelerators, repeats, warmup, cache, bar, extra,
                    tolerance, say, precision, fold_run_costs)
                run.within_tolerance[model.name] = meta[model.name]["within_tolerance"]
        except Exception as error:
            # The device failed mid-profile (a CUDA error, a lost device): what was measured
            # is in the cache; say how much, so that the caller can point at the rerun. A
            # cleanup that fails on the dead device (closing the runtime) raises from inside
            # the handling of the BackendError: report the BackendError.
            cause = error if isinstance(error, BackendError) else error.__context__
            if not isinstance(cause, BackendError):
                raise
            raise ProfileInterrupted(str(cause), kept_measurements(caches),
                                     caches[0].directory.parent.parent) from error
    run.reused = sum(c.reused for c in caches)
    run.rebuilt = sum(c.rebuilt for c in caches)
    today = datetime.date.today().isoformat()
    run.document = {
        "format": "hax-conn-profile/1",
        "source": (f"measured by hax-conn profile on {today}: backend {backend.name} "
                   f"{backend.version}, device {caps.id}, {precision}, median of {repeats} "
                   f"frames after {warmup} warm-up per run, in context (docs/profiler.md); "
                   "demand_gbps from the graph's bytes estimate / measured time"
                   + ("; group times fold the whole run's own costs (docs/profiler.md)"
                      if fold_run_costs else "; group times as measured, nothing folded")),
        "demand_source": "graph bytes estimate (grouping.group_costs bytes_moved) / measured "
                         "in-context time",
        "profiler": {"date": today, "backend": backend.name, "backend_version": backend.version,
                     "device": caps.id, "precision": precision, "repeats": repeats,
                     "warmup": warmup, "tolerance": tolerance,
                     "fold_run_costs": fold_run_costs,
                     "transition_ms": "split run minus the profile's prediction for it "
                                      "(docs/profiler.md)",
                     "contention": calibration.metadata(), "dnns": meta},
        "device": {"name": caps.id, "accelerators": list(accelerators),
                   "peak_bandwidth_gbps": round(peak.peak_gbps, 3),
                   "peak_bandwidth_source": peak.source()},
        "contention": {acc: [list(p) for p in calibration.curves[acc]] for acc in accelerators},
        "dnns": out_dnns,
    }
    return run


def _precision(backend) -> str:
    common = None
    for acc in backend.accelerators:
        allowed = list(backend.supported_precisions(acc))
        common = allowed if common is None else [p for p in common if p in allowed]
    if not common:
        raise ConfigError(f"backend {backend.name!r} has no precision all its accelerators run")
    return common[0]


def _frames_needed(groups: Sequence[ProfGroup], accelerators, repeats: int) -> int:
    runs = 2 * len(accelerators) + sum(len(g.accelerators) for g in groups[:-1])
    return runs * repeats


def _memory(backend, cache, accelerators, contention: bool, stress_gbps, say):
    """(peak, calibration), measured once per device/backend and cached, with the backend's
    memory streams (``backend.memory_stream``: whatever the backend is)."""
    from hax_conn_core.profiler.contention import Calibration, calibrate, flat_curves
    from hax_conn_core.profiler.stressor import measure_peak, PeakBandwidth

    descriptor = {"kind": "peak"}
    entry = cache.load(descriptor)
    if entry and entry["complete"]:
        peak = PeakBandwidth(**entry["samples"][0])
    else:
        peak = measure_peak(factory=backend.memory_stream, accelerators=accelerators)
        cache.store(descriptor, [peak.__dict__], True)
    say(f"peak bandwidth: {peak.source()}")
    if not contention:
        say("contention: not calibrated (--no-contention): flat curves, s = 1")
        return peak, flat_curves(accelerators)
    descriptor = {"kind": "contention", "accelerators": list(accelerators),
                  "stress_gbps": stress_gbps, "peak_gbps": peak.peak_gbps}
    entry = cache.load(descriptor)
    if entry and entry["complete"]:
        data = entry["samples"][0]
        return peak, Calibration({a: tuple(tuple(p) for p in c) for a, c in
                                  data["curves"].items()}, True, data["info"])
    calibration = calibrate(accelerators, peak.peak_gbps, peak.single_gbps, stress_gbps,
                            note=say, streams=backend.memory_stream,
                            alone_gbps={a: peak.alone(a) for a in accelerators})
    cache.store(descriptor, [{"curves": calibration.curves, "info": calibration.info}], True)
    return peak, calibration


def _single_configs(groups: Sequence[ProfGroup], accelerators) -> List[Tuple[RunConfig, ...]]:
    """Per accelerator: (fine config, coarse config). Fine: each group on ``acc`` where it can
    run there, else on the first accelerator that can; coarse: each stretch of one
    accelerator as one engine."""
    pairs = []
    for acc in accelerators:
        fine = tuple(acc if acc in g.accelerators else g.accelerators[0] for g in groups)
        ranges: List[Tuple[int, int]] = []
        coarse: List[str] = []
        for g, a in zip(groups, fine):
            if coarse and coarse[-1] == a:
                ranges[-1] = (ranges[-1][0], g.last)
            else:
                ranges.append(g.range)
                coarse.append(a)
        pairs.append((RunConfig(tuple(g.range for g in groups), fine, f"all on {acc}"),
                      RunConfig(tuple(ranges), tuple(coarse), f"{acc} as one engine")))
    return pairs


def _check(groups, accelerators, pairs, samples):
    """Per accelerator: (groups' sum, engines' time, boundaries) over the groups on it."""
    from hax_conn_core.profiler.measure import group_stats

    result = {}
    for acc, (fine, coarse) in zip(accelerators, pairs):
        fine_sum = sum(group_stats(samples[fine], g)[0]
                       for g, a in enumerate(fine.assignment) if a == acc)
        whole = sum(group_stats(samples[coarse], k)[0]
                    for k, a in enumerate(coarse.assignment) if a == acc)
        inside = sum(1 for g in range(len(groups) - 1)
                     if fine.assignment[g] == acc and fine.assignment[g + 1] == acc)
        result[acc] = (fine_sum, whole, inside)
    return result


def _profile_one(backend, model, groups, accelerators, repeats, warmup, cache, bar, extra,
                 tolerance, say, precision, fold_run_costs=True):
    from hax_conn_core.graph.grouping import group_costs, LayerGroup
    from hax_conn_core.profiler.groups import merge_small
    from hax_conn_core.profiler.measure import group_stats, measure_runs, median_gap
    from hax_conn_core.profiler.transitions import split_assignment, transition_figures

    name = model.name

    def phase_one(groups):
        pairs = _single_configs(groups, accelerators)
        configs = [c for pair in pairs for c in pair]
        samples = measure_runs(backend, model, configs, repeats, warmup, cache, bar, extra)
        return pairs, samples, _check(groups, accelerators, pairs, samples)

    pairs, samples, check = phase_one(groups)
    merged: List[Tuple[int, int]] = []
    if not _within(check, tolerance):
        overhead = max([(s - w) / n for s, w, n in check.values() if n] + [0.0])
        floor = max(MIN_GROUP_MS, FLOOR_FACTOR * overhead)
        times = [group_stats(samples[pairs[0][0]], g)[0] for g in range(len(groups))]
        fewer, merged = merge_small(groups, times, floor)
        if merged:
            say(f"{name}: group times sum {_words(check)}: outside {100 * tolerance:g}%; "
                f"merging {len(groups) - len(fewer)} group(s) under {floor:.3f} ms (too small "
                f"to time: {FLOOR_FACTOR:g} x the {overhead:.3f} ms each group boundary adds)")
            groups = fewer
            bar.add_total(_frames_needed(groups, accelerators, repeats))
            pairs, samples, check = phase_one(groups)
    within = _within(check, tolerance)
    say(f"{name}: {len(groups)} groups; group times sum {_words(check)}"
        + ("" if within else f": NOT within {100 * tolerance:g}% (each group boundary adds "
           "an engine's fixed cost: the session call, the executor hand-on; docs/profiler.md)"))
    # in-context times and spreads
    times: Dict[str, List[Optional[float]]] = {a: [None] * len(groups) for a in accelerators}
    spread: Dict[str, List[Optional[list]]] = {a: [None] * len(groups) for a in accelerators}
    for acc, (fine, _) in zip(accelerators, pairs):
        for g, a in enumerate(fine.assignment):
            if a == acc:
                median, low, high = group_stats(samples[fine], g)
                times[acc][g] = max(median, 1e-6)
                spread[acc][g] = [round(low, 4), round(high, 4)]
    from hax_conn_core.profiler.folding import fold, run_terms

    terms = run_terms(accelerators, pairs, samples, check)
    if fold_run_costs:
        fold(times, spread, terms)
        say(f"{name}: folded into the groups: "
            + "; ".join(f"{a} times x {terms.scale[a]:.3f}, first group + "
                        f"{terms.frame_ms[a]:.3f} ms" for a in accelerators))
    # transitions: split runs in batches, each batch with the reference run
    reference = pairs[0][0]
    wanted = []
    for i in range(len(groups) - 1):
        for a in groups[i].accelerators:
            b = next((x for x in accelerators if x != a and x in groups[i + 1].accelerators),
                     None)
            assignment = split_assignment(groups, i, a, b) if b else None
            if assignment is None:
                bar.advance(repeats)
                continue
            wanted.append(((i, a), RunConfig(tuple(g.range for g in groups), assignment,
                                             f"split after group {i}, {a} -> {b}")))
    excess: Dict[Tuple[int, str], Tuple[Tuple[str, ...], float]] = {}
    gaps = []
    for start in range(0, len(wanted), SPLIT_BATCH):
        batch = wanted[start:start + SPLIT_BATCH]
        ref = RunConfig(reference.ranges, reference.assignment,
                        f"reference for batch {start // SPLIT_BATCH}")
        ref_extra = dict(extra, batch=[list(c.assignment) for _, c in batch])
        bar.add_total(repeats)
        got = measure_runs(backend, model, [ref] + [c for _, c in batch], repeats, warmup,
                           cache, bar, ref_extra)
        gap = median_gap(got[ref])
        gaps.append(gap)
        for key, config in batch:
            excess[key] = (config.assignment, median_gap(got[config]) - gap)
    figures, raw = transition_figures(groups, excess)
    gap = median_gap(samples[reference]) if not gaps else float(sorted(gaps)[len(gaps) // 2])
    size = {"fp32": 4, "fp16": 2, "int8": 1}.get(precision, 4)
    costs = group_costs(model.graph, [LayerGroup(i, g.first, g.last, 0, True)
                                      for i, g in enumerate(groups)], dtype_bytes=size)
    rows = []
    for i, (group, cost) in enumerate(zip(groups, costs)):
        accs = [a for a in accelerators if a in group.accelerators]
        row = {"layers": [group.first, group.last],
               "time_ms": {a: round(times[a][i], 4) or 1e-4 for a in accs},
               "demand_gbps": {a: round(cost.bytes_moved / 1e9 / (times[a][i] / 1e3), 3)
                               for a in accs}}
        if i + 1 < len(groups):
            row["transition_ms"] = {a: round(figures[(i, a)], 4) for a in accs}
        row["time_ms_spread"] = {a: spread[a][i] for a in accs}
        rows.append(row)
    meta = {"within_tolerance": within,
            "sum_check": {acc: {"groups_sum_ms": round(s, 4), "engines_ms": round(w, 4),
                                "deviation": round((s - w) / w, 4) if w else None}
                          for acc, (s, w, _) in check.items()},
            "run_overhead_ms": round(gap, 4),
            "folding": dict(terms.metadata(), applied=fold_run_costs),
            "merged_groups": [list(r) for r in merged],
            "transition_raw_ms": {f"{i}:{a}": round(v, 4) for (i, a), v in raw.items()}}
    return {"groups": rows}, meta


def _within(check, tolerance: float) -> bool:
    return all(w > 0 and abs(s - w) / w <= tolerance for s, w, _ in check.values())


def _words(check) -> str:
    return "; ".join(f"{acc} {s:.3f} ms vs {w:.3f} ms as engines ({100 * (s - w) / w:+.1f}%)"
                     for acc, (s, w, _) in check.items() if w)


def stderr_note(line: str) -> None:
    print(line, file=sys.stderr)
