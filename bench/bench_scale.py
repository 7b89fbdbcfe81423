"""Scale benchmark: `hax-conn plan --timeout 5` on 2 to 50 DNNs, and `hax-conn graph` on
generated prototxts of 1k to 160k layers.

Usage (from the repository root):
    .venv/bin/python bench/bench_scale.py [--plan] [--graph] [--timeout 5] [--write]

Plan: for 2, 4, 8, 16 and 50 DNNs of 30 groups each (every group runnable on both
accelerators: the worst case for the GPU&DLA baseline, 2^n whole-DNN combinations), K = 1 and
2, objective latency and throughput (2 frame-sets in flight), the real command is run as a
subprocess; its wall time (from start to exit, Python start-up included) and peak resident
memory (``os.wait4``) are recorded. Target: never more than 10 % past the timeout.

Graph: chains (Input, then convolution / in-place ReLU pairs) and residual nets (blocks of
conv, ReLU, conv, Eltwise, ReLU) of 1k, 2k, 4k, ..., 160k layers, ``hax-conn graph X --json``
to /dev/null; wall time, peak memory and the growth exponent between consecutive sizes
(log(t2 / t1) / log(n2 / n1): 1 is linear, 2 quadratic).

``--write`` writes docs/bench-scale.md (plan) and the generated-prototxt part of
docs/bench-graph.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from test.core.graph.big_nets import chain_prototxt, residual_prototxt  # noqa: E402
from test.core.planner.test_budget_and_deadline import generated_profile  # noqa: E402

HAX_CONN = str(REPO / ".venv" / "bin" / "hax-conn")
PLAN_SIZES = (2, 4, 8, 16, 50)
GRAPH_SIZES = (1000, 2000, 4000, 8000, 16000, 32000, 64000, 160000)
GROUPS = 30


def run_measured(argv: List[str]) -> Tuple[float, int, int, str]:
    """(wall s, peak RSS MiB, exit status, stderr) of one subprocess.

    The peak comes from GNU time (``/usr/bin/time -f %M``) when it is installed: ``os.wait4``
    of a direct child would also count the pages the child shared with this process between
    fork and exec (this process holds the generated prototxt text).
    """
    gnu_time = Path("/usr/bin/time")
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        wrapped = ([str(gnu_time), "-f", "%M", "-o", str(peak_file)] + argv
                   if gnu_time.exists() else argv)
        with open(Path(tmp) / "stderr", "w+b") as err:
            started = time.monotonic()
            child = subprocess.Popen(wrapped, stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
            _, status, usage = os.wait4(child.pid, 0)
            wall = time.monotonic() - started
            err.seek(0)
            text = err.read().decode("utf-8", "replace")
        peak_kib = usage.ru_maxrss
        if peak_file.exists():
            peak_kib = int(peak_file.read_text().strip().splitlines()[-1])
    return wall, peak_kib // 1024, os.waitstatus_to_exitcode(status), text


def bench_plan(timeout: float) -> List[Dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in PLAN_SIZES:
            doc, _ = generated_profile(0, n, GROUPS)
            path = Path(tmp) / f"p{n}.json"
            path.write_text(json.dumps(doc))
            for k in (1, 2):
                for objective in ("latency", "throughput"):
                    wall, rss, rc, err = run_measured([
                        HAX_CONN, "plan", "--profile", str(path), "--objective", objective,
                        "--max-transitions", str(k), "--timeout", str(timeout), "--json"])
                    row = {"dnns": n, "k": k, "objective": objective, "wall_s": wall,
                           "rss_mib": rss, "rc": rc,
                           "stopped": "time limit" in err, "over_pct":
                           100.0 * (wall / timeout - 1.0)}
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return rows


def bench_graph(sizes=GRAPH_SIZES) -> List[Dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, make in (("chain", chain_prototxt), ("residual", residual_prototxt)):
            for n in sizes:
                path = Path(tmp) / f"{kind}{n}.prototxt"
                path.write_text(make(n))
                wall, rss, rc, err = run_measured([HAX_CONN, "graph", str(path), "--json"])
                row = {"kind": kind, "layers": n, "wall_s": wall, "rss_mib": rss, "rc": rc,
                       "mb": path.stat().st_size / 1e6}
                rows.append(row)
                print(json.dumps(row), flush=True)
                path.unlink()
    return rows


def _machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at the end")


def plan_report(rows: List[Dict], timeout: float, command: str) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    worst = max(rows, key=lambda r: r["wall_s"])
    lines = [
        "# Benchmark: planning at scale with `--timeout`",
        "",
        f"Command: `{command}` (repository root), run {when}; {_machine()}.",
        "",
        f"Profiles: `generated_profile(0, n, {GROUPS})` of `test/core/planner/"
        "test_budget_and_deadline.py`: n DNNs x 30 groups on the Xavier device and curves,",
        "GPU time 0.1-2 ms per group, DLA 1-3x, demand 5-80 GB/s, transition 0-0.2 ms, every",
        "group runnable on the DLA (so GPU&DLA has 2^n whole-DNN combinations: 2^50 for 50).",
        "Each row is one `hax-conn plan --profile P --objective O --max-transitions K "
        f"--timeout {timeout:g} --json` subprocess: wall time from start to exit (Python "
        "start-up, imports and the report included), peak resident memory (`os.wait4`).",
        "",
        "| DNNs | K | objective | wall (s) | past the timeout | peak memory (MiB) | stopped at "
        "the limit | exit |",
        "|---:|---:|---|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['dnns']} | {r['k']} | {r['objective']} | {r['wall_s']:.2f} | "
                     f"{max(0.0, r['over_pct']):.1f} % | {r['rss_mib']} | "
                     f"{'yes' if r['stopped'] else 'no'} | {r['rc']} |")
    verdict = "within" if worst["wall_s"] <= 1.1 * timeout else "NOT within"
    lines += ["", f"Longest: {worst['wall_s']:.2f} s ({worst['dnns']} DNNs, K = {worst['k']}, "
              f"{worst['objective']}): {verdict} 10 % past the {timeout:g} s timeout; largest "
              f"peak memory {max(r['rss_mib'] for r in rows)} MiB."]
    return "\n".join(lines) + "\n"


def graph_report(rows: List[Dict], command: str) -> str:
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "## Generated prototxts, 1k to 160k layers",
        "",
        f"Command: `{command}` (repository root), run {when}; {_machine()}.",
        "",
        "Each row: `hax-conn graph X.prototxt --json > /dev/null` as a subprocess (read, "
        "shapes, valid cuts, 10 groups, the JSON document), wall time and peak memory; "
        "growth = log(t / t_prev) / log(n / n_prev) against the row above (1: linear, "
        "2: quadratic). Chains: `chain_prototxt(n)`, residual nets: `residual_prototxt(n)` "
        "(`test/core/graph/big_nets.py`).",
        "",
        "| net | layers | file (MB) | wall (s) | peak memory (MiB) | growth |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    previous = None
    for r in rows:
        growth = "-"
        if previous is not None and previous["kind"] == r["kind"]:
            growth = f"{math.log(r['wall_s'] / previous['wall_s']) / math.log(r['layers'] / previous['layers']):.2f}"  # noqa: E501
        lines.append(f"| {r['kind']} | {r['layers']:,} | {r['mb']:.1f} | {r['wall_s']:.2f} | "
                     f"{r['rss_mib']} | {growth} |")
        previous = r
    return "\n".join(lines) + "\n"


GRAPH_MARKER = "## Generated prototxts, 1k to 160k layers"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", action="store_true", help="only the planner part")
    parser.add_argument("--graph", action="store_true", help="only the graph part")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--write", action="store_true",
                        help="write docs/bench-scale.md and the end of docs/bench-graph.md")
    args = parser.parse_args(argv)
    both = not args.plan and not args.graph
    command = ".venv/bin/python bench/bench_scale.py " + " ".join(
        argv if argv is not None else sys.argv[1:])
    if args.plan or both:
        report = plan_report(bench_plan(args.timeout), args.timeout, command.strip())
        print(report)
        if args.write:
            (REPO / "docs" / "bench-scale.md").write_text(report)
    if args.graph or both:
        report = graph_report(bench_graph(), command.strip())
        print(report)
        if args.write:
            target = REPO / "docs" / "bench-graph.md"
            text = target.read_text() if target.exists() else ""
            if GRAPH_MARKER in text:
                text = text[:text.index(GRAPH_MARKER)]
            target.write_text(text.rstrip("\n") + "\n\n" + report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
