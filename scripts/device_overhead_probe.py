"""Where the runtime's time goes on cuda-sm (issue 19, run 5 fidelity): per frame-set latency
through the executors against the event-timed engine time, fused vs one engine per group, the
same engines launched from one thread (``direct_ms``), the host transfers alone, and one
engine's frame taken apart step by step (host time of from_host, run, the wait, to_host; GPU
time from before from_host to the engine's start event). Each for both host paths of the
backend: ``staging: false`` (every frame pinned anew, synchronous download: the path before)
and the default staging (reused pinned buffers, outputs copied right after the graph),
docs/runtime-cuda-sm.md.

    PYTHONPATH=. python3 scripts/device_overhead_probe.py \\
        --profile profiles/emulated-h200_12.json --bundle docs/bench/bundles/emulated-h200 \\
        --out $OUT/probe.json [--fused-only] [--staging both|on|off] \\
        [--dnns a,b --model a.onnx --model b.onnx] [--skip-breakdown]

``--dnns`` names the pair (default googlenet,resnet101; users' models by ``--model PATH``, as
hax-conn takes them): each DNN alone on ``gpu``, fused and one engine per group, then both on
``gpu`` at once (the lockstep order interleaves them group by group, so one engine per group
whatever ``fuse`` says), then the bundle's latency plan where it has one for the pair.

The JSON is rewritten after every case (a run cut short keeps what it measured).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import time
from pathlib import Path

PATHS = {"off": False, "on": True}  # report key -> the backend's `staging` setting


def device_with_staging(staging: bool):
    """The default cuda-sm device with ``staging`` set on every accelerator."""
    from hax_conn_core.runtime.device import RuntimeDevice, default_device

    base = default_device("cuda-sm")
    settings = {acc: dict(base.settings("cuda-sm", acc), staging=staging)
                for acc in base.accelerators}
    return RuntimeDevice(id=base.id, accelerators=base.accelerators,
                         runtime={"cuda-sm": settings}, path=base.path)


def median_after(values, warmup):
    return statistics.median(values[warmup:])


def breakdown(backend, model, frame, count, warmup):
    """One whole-model engine on gpu, frame after frame from this thread: medians of each
    step's host time and of the GPU's time from a marker recorded before from_host to the
    engine's start event (upload, input copy, and any wait for the host)."""
    import torch

    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.backends.cuda_sm import CudaEvent

    graph = model.graph
    spec = EngineSpec(model.name, graph, model.weights, model.weights_id, 0,
                      len(graph.layers) - 1, "gpu", "fp16")
    engine = backend.build(spec)
    stream = backend.stream("gpu")
    steps = {k: [] for k in ("from_host", "run", "wait", "to_host", "total", "event",
                             "gpu_before_start", "total_minus_event")}
    try:
        for _ in range(count):
            marker = torch.cuda.Event(enable_timing=True)
            marker.record(stream)
            t0 = time.perf_counter()
            x = backend.from_host(frame, "gpu")
            t1 = time.perf_counter()
            launch = engine.run({model.input_name: x})
            t2 = time.perf_counter()
            launch.done.wait()
            t3 = time.perf_counter()
            for name in model.output_names:
                backend.to_host(launch.outputs[name])
            t4 = time.perf_counter()
            event = launch.elapsed_ms()
            for key, value in (("from_host", t1 - t0), ("run", t2 - t1), ("wait", t3 - t2),
                               ("to_host", t4 - t3), ("total", t4 - t0)):
                steps[key].append(value * 1e3)
            steps["event"].append(event)
            steps["gpu_before_start"].append(
                launch.start.elapsed_ms_since(CudaEvent(marker, "gpu")))
            steps["total_minus_event"].append((t4 - t0) * 1e3 - event)
    finally:
        engine.release()
    return {f"{key}_ms": median_after(values, warmup) for key, values in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--staging", choices=("both", "on", "off"), default="both",
                        help="which host path(s) of cuda-sm to measure (both: off, then on)")
    parser.add_argument("--fused-only", action="store_true",
                        help="leave out the one-engine-per-group cases (fewer engines to build)")
    parser.add_argument("--dnns", default="googlenet,resnet101", help="the pair, 'a,b'")
    parser.add_argument("--model", action="append", default=[],
                        help="a users' model file (.onnx / .prototxt) named in --dnns by its stem")
    parser.add_argument("--skip-breakdown", action="store_true",
                        help="leave out the host round trip and the one-engine breakdown")
    args = parser.parse_args()

    import numpy as np

    from hax_conn_core.profile import load_profile
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.compare import direct_ms
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.results import summarize
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.schedule import Schedule, load_schedule

    from hax_conn_core.graph.resolve import register_model

    for path in args.model:
        register_model(path)
    profile = load_profile(args.profile)
    report = {"cases": [], "paths": {}, "dnns": args.dnns}
    names = [n.strip() for n in args.dnns.split(",") if n.strip()]
    models = {n: load_model(n) for n in names}
    fuses = (True,) if args.fused_only else (True, False)

    def save():
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=1)

    def measure(backend, path, label, sched, subset, fuse):
        sub = profile.subset(subset)
        ms = {n: models[n] for n in subset}
        frames = list(seeded_frames(ms, args.frames + args.warmup, 0))
        with Runtime(backend, sub, sched, ms, fuse_groups=fuse) as runtime:
            results = runtime.run(frames)
            plan = runtime.plan
            kept = results[args.warmup:]
            busy = {a: statistics.median(sum(t.ms for t in r.timings if t.accelerator == a)
                                         for r in kept) for a in ("gpu", "dla")}
            steps = sum(len(plan.segments[n]) for n in subset)
            direct = direct_ms(backend, plan, frames)[args.warmup:]
        summary = summarize(results, args.warmup)
        case = {"label": label, "staging": path, "fuse": fuse,
                "engines_per_frame_set": steps,
                "latency_ms": summary["latency_ms"]["median"],
                "ms_per_frame_set": summary["ms_per_frame_set"],
                "event_busy_ms": busy, "direct_ms": statistics.median(direct)}
        report["cases"].append(case)
        print(json.dumps(case), flush=True)
        save()

    paths = list(PATHS) if args.staging == "both" else [args.staging]
    frame = np.random.default_rng(0).standard_normal(models[names[0]].input_shape,
                                                     dtype=np.float32)
    # Both backends open at once (two sets of partitions on the card, one working at a time),
    # so that each case is measured on both paths back to back.
    with contextlib.ExitStack() as stack:
        backends = {path: stack.enter_context(get_backend(
            "cuda-sm", device=device_with_staging(PATHS[path])).open()) for path in paths}
        for path, backend in backends.items():
            info = report["paths"][path] = {"describe": backend.describe()}
            if args.skip_breakdown:
                continue
            times = []
            for _ in range(200):
                t0 = time.perf_counter()
                x = backend.from_host(frame, "gpu")
                backend.to_host(x[:, :10])
                times.append((time.perf_counter() - t0) * 1e3)
            info["host_round_trip_ms"] = median_after(times, 20)
            print(path, "host round trip", info["host_round_trip_ms"], flush=True)
            info[f"breakdown_{names[0]}_gpu"] = breakdown(backend, models[names[0]], frame,
                                                          args.frames + args.warmup, args.warmup)
            print(path, "breakdown", json.dumps(info[f"breakdown_{names[0]}_gpu"]), flush=True)
            save()
        cases = []
        for name in names:
            groups = len(profile.dnns[name].groups)
            sched = Schedule("latency", {name: ("gpu",) * groups})
            cases += [(f"{name} gpu-only", sched, [name], fuse) for fuse in fuses]
        pair = "+".join(names)
        both = Schedule("latency", {n: ("gpu",) * len(profile.dnns[n].groups) for n in names})
        cases.append((f"{pair} gpu-only", both, names, True))
        plan_file = Path(args.bundle) / f"{'-'.join(names)}.latency.hax-conn.json"
        if plan_file.exists():
            plan = load_schedule(plan_file)
            cases += [(f"{pair} hax-conn", plan, names, fuse) for fuse in fuses]
        for label, sched, subset, fuse in cases:
            for path, backend in backends.items():
                measure(backend, path, label, sched, subset, fuse)
    save()
    print_comparison(report)


def print_comparison(report) -> None:
    """Old path (staging off) against the new (on), per case: latency, one thread, events."""
    by = {(c["label"], c["fuse"], c["staging"]): c for c in report["cases"]}
    print("\ncase | fuse | latency off -> on (ms) | one thread off -> on | event busy on")
    for (label, fuse, path), case in by.items():
        if path != "on":
            continue
        old = by.get((label, fuse, "off"), {})
        print(f"{label} | {fuse} | {old.get('latency_ms', float('nan')):.3f} -> "
              f"{case['latency_ms']:.3f} | {old.get('direct_ms', float('nan')):.3f} -> "
              f"{case['direct_ms']:.3f} | {case['event_busy_ms']}")
    for path, info in report["paths"].items():
        for key, value in info.items():
            if key.startswith("breakdown_"):
                print(path, "round trip", round(info["host_round_trip_ms"], 3), key,
                      {k: round(v, 3) for k, v in value.items()})


if __name__ == "__main__":
    main()
