"""`hax-conn bench runtime`: HaX-CoNN's plan and the baselines measured side by side."""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path
from typing import Any, Dict, List

from hax_conn_core.cli.base import add_profile_option, Command
from hax_conn_core.errors import ConfigError


class BenchCommand(Command):
    """Benchmarks that run DNNs: 'hax-conn bench runtime' (results go to docs/bench/).

    'runtime': for each DNN pair and objective, plans the pair (Z3), then runs HaX-CoNN's plan
    and the four baselines (GPU-only, GPU&DLA, Herald, H2H) on the backend, side by side in one
    process: interleaved rounds, the same frames for every schedule. Writes
    <out-dir>/runtime-<backend>.md, .json and a bar chart (.png) with the predicted and measured
    figure of every schedule, the spread over rounds, and HaX-CoNN's measured gain over the
    best baseline (a gain inside the spread is a tie).

    Example:
      hax-conn bench runtime --backend onnxruntime --profile P.json \\
          --pairs alexnet+resnet18,googlenet+mobilenet_v1
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from hax_conn_core.cli.run import add_backend_options

        sub = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
        runtime = sub.add_parser("runtime", help="HaX-CoNN and the baselines, measured",
                                 description=self.help_text(),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        add_profile_option(runtime)
        add_backend_options(runtime)
        runtime.add_argument("--pairs", required=True, metavar="a+b,c+d",
                             help="DNN sets to measure: '+' joins the DNNs of a set, ',' "
                                  "separates sets")
        runtime.add_argument("--objectives", default="latency,throughput", metavar="O",
                             help="comma-separated objectives (default: latency,throughput)")
        runtime.add_argument("--rounds", type=int, default=5,
                             help="interleaved rounds (default: 5)")
        runtime.add_argument("--frames", type=int, default=20,
                             help="frame-sets per schedule per round (default: 20)")
        runtime.add_argument("--out-dir", default="docs/bench", metavar="DIR",
                             help="where the report goes (default: docs/bench)")

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.profile import load_profile
        from hax_conn_core.schedule import OBJECTIVES

        if args.rounds < 1 or args.frames < 1:
            raise ConfigError("--rounds and --frames: expected integers >= 1")
        sets = [tuple(n.strip() for n in item.split("+")) for item in args.pairs.split(",")]
        if not all(all(names) for names in sets):
            raise ConfigError(f"--pairs {args.pairs!r}: expected e.g. alexnet+resnet18")
        objectives = [o.strip() for o in args.objectives.split(",")]
        for objective in objectives:
            if objective not in OBJECTIVES:
                raise ConfigError(f"--objectives: {objective!r}; expected "
                                  f"{' or '.join(OBJECTIVES)}")
        profile = load_profile(args.profile)
        for names in sets:
            profile.subset(list(names))  # an unknown DNN is refused before anything runs
        out_dir = Path(args.out_dir)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out-dir {out_dir}: {exc.strerror or exc}") from None
        report = run_runtime_bench(profile, sets, objectives, args)
        stem = out_dir / f"runtime-{args.backend}"
        stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n",
                                             encoding="utf-8")
        stem.with_suffix(".md").write_text(markdown(report, stem.name), encoding="utf-8")
        draw_bars(report, stem.with_suffix(".png"))
        print(f"Written {stem}.md, .json and .png")
        return 0


def run_runtime_bench(profile, sets, objectives, args) -> Dict[str, Any]:
    from hax_conn_core.cli.run import open_backend
    from hax_conn_core.planner import plan
    from hax_conn_core.runtime.compare import compare_schedules, versus_best
    from hax_conn_core.runtime.models import load_model

    backend = open_backend(args)
    rows: List[Dict[str, Any]] = []
    try:
        for names in sets:
            sub = profile.subset(list(names))
            models = {name: load_model(name) for name in names}
            for objective in objectives:
                result = plan(sub, objective=objective)
                schedules = {"HaX-CoNN": result.schedule}
                transitions = {"HaX-CoNN": result.schedule.max_transitions_used()}
                for baseline in result.baselines:
                    schedules[baseline.name] = baseline.schedule
                    transitions[baseline.name] = baseline.transitions
                print(f"{'+'.join(names)} {objective}: measuring {', '.join(schedules)}",
                      file=sys.stderr)
                measured = compare_schedules(backend, sub, schedules, models,
                                             rounds=args.rounds, frames=args.frames)
                best, gain, tie = versus_best(measured, "HaX-CoNN")
                rows.append({
                    "dnns": list(names), "objective": objective,
                    "schedules": {label: {
                        "predicted_ms": schedules[label].predicted_ms,
                        "transitions": transitions[label],
                        "assignment": {k: list(v) for k, v in
                                       schedules[label].assignments.items()},
                        **measured[label]} for label in schedules},
                    "best_baseline": best, "gain_over_best_baseline": gain, "tie": tie,
                })
    finally:
        backend.close()
    return {
        "format": "hax-conn-bench-runtime/1",
        "command": "hax-conn " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} ({platform.machine()}, {platform.processor() or '?'})",
        "backend": backend.describe(),
        "profile": str(args.profile),
        "rounds": args.rounds, "frames_per_round": args.frames,
        "rows": rows,
    }


def markdown(report: Dict[str, Any], name: str) -> str:
    lines = [f"# Runtime bench: {report['backend']['backend']}", "",
             f"Command: `{report['command']}`  ",
             f"Date: {report['date']}; machine: {report['machine']}  ",
             f"Backend: {json.dumps(report['backend'])}  ",
             f"Profile: `{report['profile']}`; {report['rounds']} interleaved rounds of "
             f"{report['frames_per_round']} frame-sets per schedule (same frames for all).",
             "",
             "Measured: per round the median frame-set latency (latency) or the time per "
             "frame-set (throughput); the table gives the median over rounds and the spread "
             "(min-max). Predicted: the simulator on the profile.", ""]
    for row in report["rows"]:
        lines += [f"## {' + '.join(row['dnns'])}, {row['objective']}", "",
                  "| schedule | transitions | predicted (ms) | measured median (ms) | "
                  "spread (ms) |", "| --- | --- | --- | --- | --- |"]
        for label, entry in row["schedules"].items():
            lines.append(f"| {label} | {entry['transitions']} | {entry['predicted_ms']:.3f} | "
                         f"{entry['median_ms']:.3f} | {entry['min_ms']:.3f}-"
                         f"{entry['max_ms']:.3f} |")
        verdict = ("a tie (inside the spread)" if row["tie"] else
                   f"{100 * row['gain_over_best_baseline']:+.1f}%")
        lines += ["", f"HaX-CoNN vs the best measured baseline ({row['best_baseline']}): "
                      f"{verdict}.", ""]
    lines += [f"Chart: `{name}.png`.", ""]
    return "\n".join(lines)


def draw_bars(report: Dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rows"]
    labels = list(rows[0]["schedules"]) if rows else []
    fig, axes = plt.subplots(1, max(1, len(rows)), figsize=(3.2 * max(1, len(rows)), 3.4),
                             squeeze=False)
    for ax, row in zip(axes[0], rows):
        entries = [row["schedules"][label] for label in labels if label in row["schedules"]]
        medians = [e["median_ms"] for e in entries]
        errors = [[m - e["min_ms"] for m, e in zip(medians, entries)],
                  [e["max_ms"] - m for m, e in zip(medians, entries)]]
        ax.bar(range(len(entries)), medians, yerr=errors, capsize=3,
               color=["tab:red"] + ["tab:gray"] * (len(entries) - 1))
        ax.set_xticks(range(len(entries)))
        ax.set_xticklabels(labels[:len(entries)], rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{'+'.join(row['dnns'])}\n{row['objective']}", fontsize=9)
        ax.set_ylabel("ms" if ax is axes[0][0] else "")
    fig.suptitle(f"measured on {report['backend']['backend']} (median, min-max over rounds)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
