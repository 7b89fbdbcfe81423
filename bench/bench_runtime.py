#!/usr/bin/env python3
"""Runtime benchmarks on the onnxruntime backend (CPU); results in docs/bench/.

1. Lockstep overhead: a schedule with no transitions (both DNNs on ``gpu``) run through the
   executors against the same engines called directly from one thread, latency mode,
   interleaved rounds, the same frames; the ratio of the medians (target <= 2 %).
2. HaX-CoNN against the baselines for two pairs, through ``hax-conn bench runtime``.

    .venv/bin/python bench/bench_runtime.py [--rounds 7] [--frames 20] [--skip-pairs]

Writes docs/bench/runtime-overhead-onnxruntime.{md,json} and (from 2)
docs/bench/runtime-onnxruntime.{md,json,png}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = ROOT / "profiles" / "cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"
PAIRS = "alexnet+resnet18,resnet18+mobilenet_v1"
OVERHEAD_PAIR = ("resnet18", "mobilenet_v1")


def lockstep_overhead(rounds: int, frames: int):
    from hax_conn_core.profile import load_profile
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.compare import direct_ms
    from hax_conn_core.runtime.measure import seeded_frames
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import Runtime
    from hax_conn_core.schedule import Schedule

    profile = load_profile(PROFILE).subset(list(OVERHEAD_PAIR))
    models = {name: load_model(name) for name in OVERHEAD_PAIR}
    schedule = Schedule("latency", {name: ("gpu",) * len(profile.dnns[name].groups)
                                    for name in OVERHEAD_PAIR})
    batch = list(seeded_frames(models, frames))
    rows = []
    with get_backend("onnxruntime") as backend, \
            Runtime(backend, profile, schedule, models) as runtime:
        runtime.run(batch[:3])
        direct_ms(backend, runtime.plan, batch[:3])  # warm both paths
        for r in range(rounds):
            if r % 2:  # alternate which goes first
                direct = direct_ms(backend, runtime.plan, batch)
                through = [x.latency_ms for x in runtime.run(batch)]
            else:
                through = [x.latency_ms for x in runtime.run(batch)]
                direct = direct_ms(backend, runtime.plan, batch)
            rows.append({"executors_ms": statistics.median(through),
                         "direct_ms": statistics.median(direct)})
            print(f"round {r}: {rows[-1]}", file=sys.stderr)
        info = backend.describe()
    executors = statistics.median(row["executors_ms"] for row in rows)
    direct = statistics.median(row["direct_ms"] for row in rows)
    return {"pair": list(OVERHEAD_PAIR), "backend": info, "rounds": rows,
            "frames_per_round": frames, "executors_median_ms": executors,
            "direct_median_ms": direct, "overhead": executors / direct - 1,
            "per_round_overhead": [row["executors_ms"] / row["direct_ms"] - 1 for row in rows]}


def write_overhead(report, out: Path, command: str) -> None:
    report["command"] = command
    report["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report["machine"] = f"{platform.machine()}, {len(__import__('os').sched_getaffinity(0))} cores"
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    spread = report["per_round_overhead"]
    lines = [
        "# Lockstep overhead on onnxruntime (CPU)", "",
        f"Command: `{command}`  ", f"Date: {report['date']}; machine: {report['machine']}; "
        f"backend: {report['backend']['backend']} {report['backend']['version']}, device "
        f"{report['backend']['device']}.", "",
        f"{' + '.join(report['pair'])}, every group on `gpu` (no transitions), latency mode: the "
        f"median frame-set latency through the executors (executor threads, lockstep order, "
        f"collector) against the same engines called one after another from one thread, "
        f"{len(report['rounds'])} interleaved rounds of {report['frames_per_round']} "
        "frame-sets, the same frames.", "",
        "| round | executors (ms) | direct (ms) | overhead |", "| --- | --- | --- | --- |"]
    for i, (row, over) in enumerate(zip(report["rounds"], spread)):
        lines.append(f"| {i} | {row['executors_ms']:.3f} | {row['direct_ms']:.3f} | "
                     f"{100 * over:+.2f}% |")
    lines += ["", f"Median over rounds: executors {report['executors_median_ms']:.3f} ms, direct "
                  f"{report['direct_median_ms']:.3f} ms: overhead "
                  f"**{100 * report['overhead']:+.2f}%** (target <= 2%; per-round spread "
                  f"{100 * min(spread):+.2f}% to {100 * max(spread):+.2f}%).", ""]
    out.with_suffix(".md").write_text("\n".join(lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--skip-pairs", action="store_true")
    args = parser.parse_args()
    out_dir = ROOT / "docs" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python bench/bench_runtime.py " + " ".join(sys.argv[1:])
    report = lockstep_overhead(args.rounds, args.frames)
    write_overhead(report, out_dir / "runtime-overhead-onnxruntime", command.strip())
    print(f"lockstep overhead: {100 * report['overhead']:+.2f}%")
    if not args.skip_pairs:
        hax_conn = str(Path(sys.executable).with_name("hax-conn"))
        subprocess.run([hax_conn, "bench", "runtime", "--backend", "onnxruntime", "--profile",
                        str(PROFILE.relative_to(ROOT)), "--pairs", PAIRS, "--rounds", "5",
                        "--frames", "10", "--out-dir", str(out_dir.relative_to(ROOT))],
                       check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
