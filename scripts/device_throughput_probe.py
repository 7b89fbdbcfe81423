#!/usr/bin/env python3
"""How a throughput schedule's rate evolves over a long run (issue 19: throughput drift).

On the GPU machine, from the repository root:

    PYTHONPATH=. python3 scripts/device_throughput_probe.py --profile P.json \\
        --schedules BUNDLE --dnns googlenet,resnet101 --frames 400 --out $OUT/probe.json

Runs the bundle's throughput plan (and GPU-only, for comparison) through the runtime for
``--frames`` frame-sets with the schedule's frames in flight, and writes, per window of 25
frame-sets, the median time between completions and the median latency, plus each
executor's idle time between its steps (from the engines' CUDA events and the wall clock).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WINDOW = 25


def windows(results):
    finished = [r.finished_s for r in sorted(results, key=lambda r: r.index)]
    out = []
    for start in range(0, len(results) - WINDOW + 1, WINDOW):
        part = results[start:start + WINDOW]
        stamps = finished[start:start + WINDOW]
        gaps = [1e3 * (b - a) for a, b in zip(stamps, stamps[1:])]
        out.append({"from": start, "gap_ms_median": round(statistics.median(gaps), 4),
                    "latency_ms_median": round(statistics.median(r.latency_ms for r in part),
                                               4)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--schedules", required=True)
    parser.add_argument("--dnns", required=True)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--out", required=True)
    parser.add_argument("--backend", default="cuda-sm")
    args = parser.parse_args()

    from hax_conn_core.profile import load_profile
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.validation.bundle import load_bundle

    profile = load_profile(args.profile)
    names = tuple(args.dnns.split(","))
    item = next(s for s in load_bundle(args.schedules, profile)
                if tuple(s.dnns) == names and s.objective == "throughput")
    models = {n: load_model(n) for n in names}
    frames = list(seeded_frames(models, args.frames))
    report = {"dnns": list(names), "frames": args.frames, "window": WINDOW, "runs": {}}
    with get_backend(args.backend) as backend:
        report["backend"] = backend.describe()
        for label in ("HaX-CoNN", "GPU-only", "HaX-CoNN"):
            schedule = item.schedules[label]
            with Runtime(backend, profile.subset(names), schedule, models) as runtime:
                runtime.run(frames[:20])
                results = runtime.run(frames)
            key = label if label not in report["runs"] else label + " (again)"
            report["runs"][key] = {
                "assignment": {k: "".join(a[0] for a in v)
                               for k, v in schedule.assignments.items()},
                "windows": windows(results),
                "ms_per_frame_set": round(1e3 * (max(r.finished_s for r in results)
                                                 - min(r.released_s for r in results))
                                          / len(results), 4)}
            print(key, json.dumps(report["runs"][key]), file=sys.stderr, flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
