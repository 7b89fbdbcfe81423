#!/usr/bin/env python3
"""The runtime on the emulated SoC (cuda-sm): lockstep overhead, and every split measured.

Run on the GPU machine (device tool) from the repository root:

    PYTHONPATH=. python3 scripts/device_runtime_check.py overhead --out $OUT/overhead.json
    PYTHONPATH=. python3 scripts/device_runtime_check.py splits --pair googlenet+resnet101 \\
        --out $OUT/splits_googlenet_resnet101.json

``overhead`` (issue 19, run 7): a schedule with no transitions (both DNNs on the gpu partition)
through the executors against the same engines launched directly from one thread, latency
mode, interleaved rounds; the ratio of medians.

``splits`` (issue 19, run 3, reduced): the pair's groups (``group_layers``) are timed in context
through the executors (each DNN alone, all on gpu, then on dla where the Xavier DLA rules let
it), which gives a contention-free profile (flat curves, transitions 0, demand from the graph's
bytes); then GPU-only, every whole-DNN mapping, Herald and H2H (on that profile) and every
single-transition split of the pair are measured through the executors, latency and
throughput: ``--frames`` frame-sets each, the best ``--top`` re-measured with ``--final``.
Results go to ``--out`` as they come (a run cut short still reports); ``--budget-s`` stops
starting new measurements of an objective.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import time

import numpy as np


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def write(path, data):
    with open(path, "w") as stream:
        json.dump(data, stream, indent=1, default=str)


BACKEND = "cuda-sm"


def open_backend():
    from hax_conn_core.runtime.backends import get_backend

    return get_backend(BACKEND).open()


def flat_profile(models, times, device="emulated-h200"):
    """A contention-free profile from measured group times: ``times[dnn][acc]`` per group."""
    from hax_conn_core.graph.grouping import group_costs, group_layers
    from hax_conn_core.profile import parse_profile

    dnns = {}
    for name, model in models.items():
        groups = group_layers(model.graph, capabilities=device)
        costs = group_costs(model.graph, groups, dtype_bytes=2)
        entries = []
        for g, (group, cost) in enumerate(zip(groups, costs)):
            time_ms = {"gpu": round(times[name]["gpu"][g], 4)}
            if group.dla_ok:
                time_ms["dla"] = round(times[name]["dla"][g], 4)
            moved = cost.bytes_moved
            entries.append({"layers": [group.first, group.last], "time_ms": time_ms,
                            "demand_gbps": {a: round(moved / (t * 1e6), 3) if t else 0.0
                                            for a, t in time_ms.items()},
                            "transition_ms": {a: 0.0 for a in time_ms}})
        dnns[name] = {"groups": entries}
    return parse_profile({
        "format": "hax-conn-profile/1",
        "device": {"name": device, "accelerators": ["gpu", "dla"],
                   "peak_bandwidth_gbps": 4800.0},
        "contention": {"gpu": [[0, 1]], "dla": [[0, 1]]}, "dnns": dnns})


def ranges_profile(models, device="emulated-h200"):
    """Unit times over the groups (for the first, in-context timing runs)."""
    from hax_conn_core.graph.grouping import group_layers

    times = {}
    for name, model in models.items():
        groups = group_layers(model.graph, capabilities=device)
        times[name] = {"gpu": [1.0] * len(groups), "dla": [1.0] * len(groups),
                       "dla_groups": [g for g, group in enumerate(groups) if group.dla_ok]}
    return flat_profile(models, times, device), times


def measure(backend, profile, schedule, models, frames, warmup, pool, seed=0,
            fuse_groups=True):
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.plan import frames_in_flight
    from hax_conn_core.runtime.results import group_medians, summarize
    from hax_conn_core.runtime.session import Runtime

    with Runtime(backend, profile, schedule, models, pool=pool,
                 fuse_groups=fuse_groups) as runtime:
        results = runtime.run(list(seeded_frames(models, frames + warmup, seed)))
    summary = summarize(results, warmup, frames_in_flight(schedule))
    value = (summary["ms_per_frame_set"] if schedule.objective == "throughput"
             else summary["latency_ms"]["median"])
    return value, summary, group_medians(results, warmup)


def overhead(args):
    from hax_conn_core.runtime.compare import direct_ms
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.schedule import Schedule

    names = args.pair.split("+")
    models = {n: load_model(n) for n in names}
    report = {"pair": names, "rounds": []}
    with open_backend() as backend:
        report["backend"] = backend.describe()
        profile, _ = ranges_profile(models)
        schedule = Schedule("latency", {n: ("gpu",) * len(profile.dnns[n].groups)
                                        for n in names})
        with Runtime(backend, profile, schedule, models) as runtime:
            frames = list(seeded_frames(models, args.frames))
            runtime.run(frames[:20])
            direct_ms(backend, runtime.plan, frames[:20])
            for r in range(args.rounds):
                through = [x.latency_ms for x in runtime.run(frames)]
                direct = direct_ms(backend, runtime.plan, frames)
                report["rounds"].append({"executors_ms": statistics.median(through),
                                         "direct_ms": statistics.median(direct)})
                log("round", r, report["rounds"][-1])
                write(args.out, report)
    ex = statistics.median(x["executors_ms"] for x in report["rounds"])
    di = statistics.median(x["direct_ms"] for x in report["rounds"])
    report.update(executors_median_ms=ex, direct_median_ms=di, overhead=ex / di - 1)
    write(args.out, report)
    log("overhead", report["overhead"])


def single_transition_variants(dnn_profile):
    n = len(dnn_profile.groups)
    accs = ("gpu", "dla")
    out = []
    for a in accs:
        out.append((a,) * n)
    for cut in range(1, n):
        for a, b in (("gpu", "dla"), ("dla", "gpu")):
            out.append((a,) * cut + (b,) * (n - cut))
    valid = []
    for v in out:
        if all(acc in g.time_ms for acc, g in zip(v, dnn_profile.groups)):
            valid.append(v)
    return valid


def measured_flat_profile(args, backend, names, models, pool, report, start):
    """Run 3's own contention-free profile: each DNN alone through the executors, all groups
    on gpu, then on dla where it can run, every group timed."""
    from hax_conn_core.profile import profile_to_dict
    from hax_conn_core.runtime.session import release_engines
    from hax_conn_core.schedule import Schedule

    profile, times = ranges_profile(models)
    for name in names:
        groups = profile.dnns[name].groups
        sub = profile.subset([name])
        for acc in ("gpu", "dla"):
            assignment = tuple(acc if acc in g.time_ms else "gpu" for g in groups)
            if acc == "dla" and "dla" not in assignment:
                continue
            schedule = Schedule("latency", {name: assignment},
                                max_transitions=len(groups))
            _, summary, medians = measure(backend, sub, schedule, {name: models[name]},
                                          args.profile_frames, 20, pool,
                                          fuse_groups=False)  # every group timed
            for g, a in enumerate(assignment):
                if a == acc:
                    times[name][acc][g] = medians[(name, g, g, acc)]
            report.setdefault("whole_alone_ms", {})[f"{name}:{acc}"] = \
                summary["latency_ms"]["median"]
    profile = flat_profile(models, times)
    report["profile"] = profile_to_dict(profile)
    write(args.out, report)
    release_engines(pool)
    log("profile measured", time.monotonic() - start)
    return profile


def splits(args):
    from hax_conn_core.baselines import all_baselines
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import release_engines
    from hax_conn_core.schedule import Schedule
    from hax_conn_core.simulator import simulate

    start = time.monotonic()
    names = args.pair.split("+")
    models = {n: load_model(n) for n in names}
    report = {"pair": names, "frames": args.frames, "final_frames": args.final}
    with open_backend() as backend:
        report["backend"] = backend.describe()
        pool = {}
        plans = {}
        if args.profile:
            # the profiler's profile (its groups, contention and transitions), and the plans a
            # bundle holds for this pair: the sweep then judges the planner's own choice
            from hax_conn_core.profile import load_profile
            from hax_conn_core.validation.bundle import load_bundle, PLAN_LABEL

            full = load_profile(args.profile)
            profile = full.subset(names)
            report["profile_path"] = args.profile
            for item in load_bundle(args.schedules, full) if args.schedules else ():
                if tuple(item.dnns) == tuple(names):
                    plans[item.objective] = item.schedules[PLAN_LABEL]
        else:
            profile = measured_flat_profile(args, backend, names, models, pool, report,
                                            start)
        # 2. candidates: baselines and every single-transition split
        for objective in args.objectives.split(","):
            start = time.monotonic()  # each objective has its own budget
            rows = {}
            candidates = {}
            if objective in plans:
                candidates["HaX-CoNN plan"] = plans[objective].assignments
            for baseline in all_baselines(profile, objective):
                candidates[baseline.name] = baseline.schedule.assignments
            variants = [single_transition_variants(profile.dnns[n]) for n in names]
            for combo in itertools.product(*variants):
                candidates["split " + " | ".join("".join(a[0] for a in v) for v in combo)] = \
                    dict(zip(names, combo))
            for label, assignment in candidates.items():
                if time.monotonic() - start > args.budget_s:
                    report["stopped"] = f"budget of {args.budget_s} s reached"
                    break
                schedule = Schedule(objective, dict(assignment), frames_in_flight=2,
                                    max_transitions=1 if label.startswith("split") else 99)
                try:
                    value, summary, _ = measure(backend, profile, schedule, models,
                                                args.frames, 5, pool)
                except Exception as error:  # noqa: BLE001 - record and go on
                    rows[label] = {"error": f"{type(error).__name__}: {error}"}
                    continue
                rows[label] = {"assignment": {k: list(v) for k, v in assignment.items()},
                               "measured_ms": value,
                               "predicted_ms": simulate(profile, schedule).predicted_ms}
                if len(pool) > 400:
                    release_engines(pool)
            release_engines(pool)
            measured = [(r["measured_ms"], label) for label, r in rows.items()
                        if "measured_ms" in r]
            finals = {label for _, label in sorted(measured)[:args.top]}
            finals |= {label for label in rows if not label.startswith("split")}
            for label in finals:
                if time.monotonic() - start > args.budget_s + 60 or "measured_ms" not in \
                        rows[label]:
                    continue
                schedule = Schedule(objective, {k: tuple(v) for k, v in
                                                rows[label]["assignment"].items()},
                                    frames_in_flight=2, max_transitions=99)
                value, summary, _ = measure(backend, profile, schedule, models, args.final,
                                            20, pool, seed=7)
                rows[label]["final_ms"] = value
                rows[label]["final_p95_ms"] = summary["latency_ms"]["p95"]
            release_engines(pool)
            report.setdefault("objectives", {})[objective] = rows
            write(args.out, report)
            log(objective, "done", time.monotonic() - start)
    write(args.out, report)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("overhead", "splits"))
    parser.add_argument("--pair", default="googlenet+resnet101")
    parser.add_argument("--out", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--profile-frames", type=int, default=100)
    parser.add_argument("--final", type=int, default=200)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--objectives", default="latency,throughput")
    parser.add_argument("--budget-s", type=float, default=200)
    parser.add_argument("--backend", default="cuda-sm", help="onnxruntime: a dry run on the CPU")
    parser.add_argument("--profile", help="splits: the profiler's profile instead of run 3's own")
    parser.add_argument("--schedules", help="splits with --profile: a bundle whose plans for "
                        "the pair join the candidates")
    args = parser.parse_args()
    global BACKEND
    BACKEND = args.backend
    np.random.seed(0)
    {"overhead": overhead, "splits": splits}[args.what](args)


if __name__ == "__main__":
    main()
