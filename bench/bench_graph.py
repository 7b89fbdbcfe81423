"""Benchmark: read and group every shipped prototxt (target: < 2 s for all twelve).

Usage:
    .venv/bin/python bench/bench_graph.py [--repeat 5] [--groups 10] [--write docs/bench-graph.md]
    .venv/bin/python bench/bench_graph.py --generated   # 1k to 160k layers (bench_scale.py)

Each round reads each prototxt from disk (text_format parse, checks, shape inference), then
computes the valid cuts and the FLOP-balanced groups with the default device's DLA rules.
Reports the median of ``--repeat`` rounds per DNN and for the whole set; the first round of a
fresh process (schema construction, YAML loading) is reported separately as "cold".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hax_conn_core.graph.cuts import valid_cuts  # noqa: E402
from hax_conn_core.graph.grouping import group_layers  # noqa: E402
from hax_conn_core.graph.prototxt import load_prototxt  # noqa: E402
from hax_conn_core.models import list_models  # noqa: E402

TARGET_S = 2.0


def one_round(paths: Dict[str, Path], groups: int) -> Dict[str, float]:
    times = {}
    for model_id, path in paths.items():
        start = time.perf_counter()
        graph = load_prototxt(path)
        group_layers(graph, groups)
        times[model_id] = time.perf_counter() - start
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--write", type=Path, help="write the Markdown report here")
    parser.add_argument("--generated", action="store_true",
                        help="instead: `hax-conn graph` on generated prototxts of 1k to 160k "
                             "layers, with the growth rate (bench/bench_scale.py --graph)")
    args = parser.parse_args(argv)
    if args.generated:
        sys.path.insert(0, str(REPO / "bench"))
        import bench_scale

        return bench_scale.main(["--graph"] + (["--write"] if args.write else []))
    paths = {info.id: info.prototxt for info in list_models() if info.prototxt.is_file()}
    if not paths:
        print("no prototxts in prototxts/; run scripts/generate_prototxts.py", file=sys.stderr)
        return 2
    start = time.perf_counter()
    one_round(paths, args.groups)
    cold = time.perf_counter() - start
    rounds: List[Dict[str, float]] = [one_round(paths, args.groups) for _ in range(args.repeat)]
    per_model = {m: statistics.median(r[m] for r in rounds) for m in paths}
    totals = [sum(r.values()) for r in rounds]
    total = statistics.median(totals)
    rows = []
    for model_id, path in paths.items():
        graph = load_prototxt(path)
        rows.append((model_id, len(graph.layers), len(valid_cuts(graph)),
                     len(group_layers(graph, args.groups)), per_model[model_id] * 1000))
    arguments = argv if argv is not None else sys.argv[1:]
    command = "python bench/bench_graph.py " + " ".join(arguments)
    lines = [
        "# Benchmark: reading and grouping the shipped prototxts",
        "",
        f"Command: `{command.strip()}` (from the repository root, `.venv/bin/python`).",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, Python "
        f"{platform.python_version()}, protobuf {_protobuf_version()}; "
        f"{len(paths)} prototxts, {args.groups} target groups, median of {args.repeat} rounds; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start (other "
        "jobs running make it slower, not faster).",
        "",
        "| DNN | layers | valid cuts | groups | read + group (ms) |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {m} | {n} | {c} | {g} | {ms:.1f} |" for m, n, c, g, ms in rows]
    verdict = "meets" if total < TARGET_S else "misses"
    lines += [
        "",
        f"Total (median round): **{total:.3f} s** ({verdict} the {TARGET_S:.0f} s target); "
        f"rounds: {', '.join(f'{t:.3f}' for t in totals)} s; cold first round in a fresh "
        f"process: {cold:.3f} s.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.write:
        args.write.write_text(report)
    return 0


def _protobuf_version() -> str:
    import google.protobuf

    return google.protobuf.__version__


if __name__ == "__main__":
    sys.exit(main())
