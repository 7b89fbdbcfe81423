#!/usr/bin/env python3
"""How a throughput schedule's rate evolves over a long run (issue 19: throughput drift).

On the GPU machine, from the repository root:

    PYTHONPATH=. python3 scripts/device_throughput_probe.py --profile P.json \\
        --schedules BUNDLE --dnns googlenet,resnet101 --frames 400 --out $OUT/probe.json

Runs the bundle's throughput plan (and GPU-only, for comparison) through the runtime for
``--frames`` frame-sets with the schedule's frames in flight, and writes, per window of 25
frame-sets, the median time between completions and the median latency; over the run, the
gaps' median, mean, p99 and maximum, and Python's garbage collections (count and time per
generation, through ``gc.callbacks``), with the collector as it is or frozen after warm-up.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

WINDOW = 25


class GcPauses:
    """Python's collections while a run goes on: count and total ms per generation."""

    def __init__(self):
        import gc

        self.gc, self.started, self.pauses = gc, None, {0: [], 1: [], 2: []}

    def __call__(self, phase, info):
        now = time.perf_counter()
        if phase == "start":
            self.started = now
        elif self.started is not None:
            self.pauses[info["generation"]].append(1e3 * (now - self.started))

    def __enter__(self):
        self.gc.callbacks.append(self)
        return self

    def __exit__(self, *exc):
        self.gc.callbacks.remove(self)

    def summary(self):
        return {f"gen{g}": {"count": len(v), "total_ms": round(sum(v), 3),
                            "max_ms": round(max(v), 3) if v else 0.0}
                for g, v in self.pauses.items()}


def gap_stats(results):
    finished = sorted(r.finished_s for r in results)
    gaps = sorted(1e3 * (b - a) for a, b in zip(finished, finished[1:]))
    return {"median_ms": round(statistics.median(gaps), 4),
            "mean_ms": round(statistics.fmean(gaps), 4),
            "p99_ms": round(gaps[int(0.99 * (len(gaps) - 1))], 4),
            "max_ms": round(gaps[-1], 4),
            "over_2x_median": sum(1 for g in gaps if g > 2 * statistics.median(gaps))}


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


def runs(mode: str):
    """(schedule label, collector setting) in the order measured."""
    if mode == "both":
        return [("HaX-CoNN", "default"), ("HaX-CoNN", "freeze"), ("GPU-only", "default"),
                ("GPU-only", "freeze"), ("HaX-CoNN", "default"), ("HaX-CoNN", "freeze")]
    return [("HaX-CoNN", mode), ("GPU-only", mode), ("HaX-CoNN", mode)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--schedules", required=True)
    parser.add_argument("--dnns", required=True)
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--out", required=True)
    parser.add_argument("--backend", default="cuda-sm")
    parser.add_argument("--gc", default="default", choices=("default", "freeze", "both"),
                        help="freeze: gc.freeze() after the warm-up (start-up objects leave "
                             "the collector's generations)")
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
        import gc

        for label, collector in runs(args.gc):
            schedule = item.schedules[label]
            with Runtime(backend, profile.subset(names), schedule, models) as runtime:
                runtime.run(frames[:20])
                if collector == "freeze":
                    gc.collect()
                    gc.freeze()
                with GcPauses() as pauses:
                    results = runtime.run(frames)
                gc.unfreeze()
            key = f"{label}, gc {collector}"
            key = key if key not in report["runs"] else key + " (again)"
            report["runs"][key] = {
                "gaps": gap_stats(results), "gc": pauses.summary(),
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
