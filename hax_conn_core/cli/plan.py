"""`hax-conn plan`: plan a schedule with Z3 and compare it with the baselines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from hax_conn_core.cli.base import add_json_option, add_profile_option, Command
from hax_conn_core.errors import ConfigError
from hax_conn_core.schedule import OBJECTIVES


class PlanCommand(Command):
    """Plan where each DNN runs and transitions, contention included (Z3).

    Reads a profile (hax-conn-profile/1), searches the assignment of layer groups to
    accelerators with the smallest predicted latency (or time per frame-set) with at most K
    transitions per DNN, and prints it in the artifact's words with the baselines beside it.
    Every figure is the simulator's (docs/planner.md).

    Examples:
      hax-conn plan --profile profiles/xavier_googlenet_alexnet.json
      hax-conn plan --profile P.json --dnns googlenet,alexnet --max-transitions 2 --json > s.json
      hax-conn plan --profile P.json --objective throughput --plot gantt.png
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_profile_option(parser)
        add_plan_options(parser)
        add_json_option(parser)
        parser.add_argument("--output", "-o", metavar="S.json",
                            help="also write the schedule file (hax-conn-schedule/1) here")
        parser.add_argument("--plot", metavar="gantt.png",
                            help="draw a Gantt chart of the plan (matplotlib)")

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.profile import load_profile

        check_plan_options(args)
        profile = select_dnns(load_profile(args.profile), args.dnns)
        result = make_plan(profile, args)
        return report_plan(profile, result, args)


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """The planning options shared by ``plan`` and ``demo``."""
    parser.add_argument("--dnns", metavar="a,b",
                        help="plan only these DNNs of the profile, in this priority order "
                             "(default: all, in the file's order)")
    parser.add_argument("--objective", default="latency", choices=OBJECTIVES,
                        help="latency: one frame-set; throughput: frame-sets streaming "
                             "(default: latency)")
    parser.add_argument("--max-transitions", type=int, default=1, metavar="K",
                        help="most accelerator changes per DNN (default: 1, as in the paper)")
    parser.add_argument("--frames-in-flight", type=int, default=2, metavar="D",
                        help="throughput: frame-sets in flight at once (default: 2)")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="wall-clock safety net in seconds: past it the best schedule so far "
                             "is returned with a warning (default: none; Z3 resource limits "
                             "bound the search deterministically)")
    from hax_conn_core.planner.api import PROVE_LIMIT

    prove = parser.add_mutually_exclusive_group()
    prove.add_argument("--prove", dest="prove", action="store_true", default=None,
                       help="prove the plan within 1%% of the best schedule even on large "
                            f"problems (default: only up to {PROVE_LIMIT:,} possible "
                            "schedules; the search limits still apply)")
    prove.add_argument("--no-prove", dest="prove", action="store_false",
                       help="stop when the refinement converges, without a proof")


def check_plan_options(args: argparse.Namespace) -> None:
    if args.max_transitions < 0:
        raise ConfigError(f"--max-transitions: expected an integer >= 0, found "
                          f"{args.max_transitions}")
    if args.frames_in_flight < 1:
        raise ConfigError(f"--frames-in-flight: expected an integer >= 1, found "
                          f"{args.frames_in_flight}")
    if args.timeout is not None and not args.timeout > 0:
        raise ConfigError(f"--timeout: expected a number of seconds > 0, found {args.timeout}")


def select_dnns(profile, dnns: Optional[str]):
    """The profile cut down to ``--dnns a,b`` (ProfileError for an unknown name)."""
    if dnns is None:
        return profile
    names: List[str] = [n.strip() for n in dnns.split(",")]
    if not all(names):
        raise ConfigError(f"--dnns {dnns!r}: expected comma-separated DNN names, e.g. "
                          f"{','.join(list(profile.dnns)[:2])}")
    return profile.subset(names)


def make_plan(profile, args: argparse.Namespace):
    from hax_conn_core.planner import plan

    result = plan(profile, objective=args.objective, max_transitions=args.max_transitions,
                  timeout_s=args.timeout, frames_in_flight=args.frames_in_flight,
                  prove=getattr(args, "prove", None))
    for warning in result.warnings:
        print(f"hax-conn {args.command}: warning: {warning}", file=sys.stderr)
    return result


def report_plan(profile, result, args: argparse.Namespace) -> int:
    from hax_conn_core.schedule import schedule_to_dict

    document = json.dumps(schedule_to_dict(result.schedule), indent=2)
    if getattr(args, "output", None):
        try:
            Path(args.output).write_text(document + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--output {args.output}: cannot write: "
                              f"{exc.strerror or exc}") from None
    if getattr(args, "plot", None):
        from hax_conn_core.gantt import draw_gantt

        draw_gantt(profile, result.schedule, args.plot)
    if args.json:
        print(document)
        return 0
    print_plan(profile, result)
    if getattr(args, "output", None):
        print(f"Schedule written to {args.output}")
    if getattr(args, "plot", None):
        print(f"Gantt chart written to {args.plot}")
    return 0


def print_plan(profile, result) -> None:
    """The human report: the plan in words, then HaX-CoNN and every baseline in a table."""
    from rich.console import Console
    from rich.table import Table

    from hax_conn_core.schedule import describe_assignment

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 120  # piped or captured: keep table headers on one line
    schedule = result.schedule
    throughput = schedule.objective == "throughput"
    k = result.max_transitions
    console.print(f"HaX-CoNN plan for {' + '.join(schedule.assignments)} on "
                  f"{profile.device.name} (objective {schedule.objective}, at most {k} "
                  f"transition{'s' if k != 1 else ''} per DNN"
                  + (f", {schedule.frames_in_flight} frame-sets in flight" if throughput
                     else "") + "):")
    for name, accs in schedule.assignments.items():
        console.print(f"  {describe_assignment(profile.dnns[name], accs)}")
    table = Table(show_edge=False)
    table.add_column("Schedule")
    table.add_column("Transitions", justify="right")
    if throughput:
        table.add_column("Time per frame-set (ms)", justify="right")
        table.add_column("Frame-sets/s", justify="right")
    else:
        table.add_column("Latency (ms)", justify="right")
    table.add_column("HaX-CoNN vs it", justify="right")

    def row(name: str, transitions: int, ms: float, versus: str) -> None:
        cells = [name, str(transitions), f"{ms:.3f}"]
        if throughput:
            cells.append(f"{1000.0 / ms:.1f}")
        table.add_row(*cells, versus)

    row("HaX-CoNN", schedule.max_transitions_used(), result.predicted_ms, "")
    for b in result.baselines:
        ref = b.schedule.predicted_ms
        row(b.name, b.transitions, ref, f"{100.0 * (ref - result.predicted_ms) / ref:+.1f}%")
    console.print(table)
    best = result.best_baseline()
    if best is not None:
        gain = result.improvement_pct()
        line = (f"Improvement over the best baseline ({best.name}, "
                f"{best.schedule.predicted_ms:.3f} ms): {gain:.1f}%")
        if best.transitions > k:
            fair = result.best_baseline(within_budget=True)
            if fair is not None:
                line += (f"; over the best within {k} transition(s) ({fair.name}): "
                         f"{result.improvement_pct(within_budget=True):.1f}%")
        console.print(line)
    status = {"optimal": "proven within 1% of the best schedule the simulator can find",
              "converged": "converged (Z3 re-solving two DNNs at a time improves nothing "
                           "more), not proven"}
    console.print(f"Search: {status.get(result.status, result.status)} "
                  f"({result.checks} Z3 checks, {result.candidates} schedules simulated, "
                  f"{result.time_s:.2f} s)")
    for note in result.notes:
        console.print(f"Note: {note}")
