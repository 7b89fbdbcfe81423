"""Where the runtime's time goes on cuda-sm (issue 19, run 5 fidelity): per frame-set latency
through the executors against the event-timed engine time, fused vs one engine per group, the
same engines launched from one thread (``direct_ms``), and the host transfers alone.

    PYTHONPATH=. python3 scripts/device_overhead_probe.py --profile profiles/emulated-h200_12.json \
        --bundle bundles/emulated-h200 --out $OUT/probe.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--backend", default="cuda-sm")
    args = parser.parse_args()

    from hax_conn_core.profile import load_profile
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.compare import direct_ms
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.results import summarize
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.schedule import Schedule, load_schedule

    profile = load_profile(args.profile)
    report = {"cases": []}
    names = ["googlenet", "resnet101"]
    models = {n: load_model(n) for n in names}

    def measure(label, sched, subset, fuse):
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
        case = {"label": label, "fuse": fuse, "engines_per_frame_set": steps,
                "latency_ms": summary["latency_ms"]["median"],
                "ms_per_frame_set": summary["ms_per_frame_set"],
                "event_busy_ms": busy, "direct_ms": statistics.median(direct)}
        report["cases"].append(case)
        print(json.dumps(case), flush=True)

    with get_backend(args.backend).open() as backend:
        import numpy as np
        frame = np.zeros(models["googlenet"].input_shape, np.float32)
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            x = backend.from_host(frame, "gpu")
            backend.to_host(x[:, :10])
            times.append((time.perf_counter() - t0) * 1e3)
        report["host_round_trip_ms"] = statistics.median(times[20:])
        print("host round trip", report["host_round_trip_ms"], flush=True)
        for name in names:
            groups = len(profile.dnns[name].groups)
            sched = Schedule("latency", {name: ("gpu",) * groups})
            for fuse in (True, False):
                measure(f"{name} gpu-only", sched, [name], fuse)
        both = Schedule("latency", {n: ("gpu",) * len(profile.dnns[n].groups) for n in names})
        measure("googlenet+resnet101 gpu-only", both, names, True)
        plan = load_schedule(f"{args.bundle}/googlenet-resnet101.latency.hax-conn.json")
        for fuse in (True, False):
            measure("googlenet+resnet101 hax-conn", plan, names, fuse)
    with open(args.out, "w") as handle:
        json.dump(report, handle, indent=1)


if __name__ == "__main__":
    main()
