"""`hax-conn plan`: plan a schedule with Z3 and compare it with the baselines."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from hax_conn_core.cli.base import add_json_option, add_profile_option, Command
from hax_conn_core.errors import ConfigError
from hax_conn_core.schedule import DEFAULT_FRAMES_IN_FLIGHT, MAX_FRAMES_IN_FLIGHT, OBJECTIVES

#: Longest --timeout, in seconds (about 11.5 days): beyond it the solver's millisecond timer
#: would overflow; no search needs it.
MAX_TIMEOUT_S = 1e6


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
    parser.add_argument("--frames-in-flight", type=int, default=None, metavar="D",
                        help="throughput only: frame-sets in flight at once, 1 to "
                             f"{MAX_FRAMES_IN_FLIGHT} (default: {DEFAULT_FRAMES_IN_FLIGHT})")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="wall-clock safety net in seconds (> 0, finite): past it the best "
                             "schedule so far is returned with a warning (default: none; Z3 "
                             "resource limits bound the search deterministically)")
    from hax_conn_core.planner.api import PROVE_LIMIT

    prove = parser.add_mutually_exclusive_group()
    prove.add_argument("--prove", dest="prove", action="store_true", default=None,
                       help="prove the plan within 1%% of the best schedule even on large "
                            f"problems (default: only up to {PROVE_LIMIT:,} possible "
                            "schedules; the search limits still apply)")
    prove.add_argument("--no-prove", dest="prove", action="store_false",
                       help="stop when the refinement converges, without a proof")


def check_plan_options(args: argparse.Namespace) -> None:
    """Refuse bad planning options (ConfigError, one line) before any work is done.

    ``--frames-in-flight`` is refused for the latency objective (one frame-set, so it would
    be ignored) and filled in with its default for throughput. A ``--plot`` path that cannot
    be a chart file (a directory) is refused here too, not after the search.
    """
    import math

    if args.max_transitions < 0:
        raise ConfigError(f"--max-transitions: expected an integer >= 0, found "
                          f"{args.max_transitions}")
    if args.frames_in_flight is not None:
        if args.objective != "throughput":
            raise ConfigError(f"--frames-in-flight {args.frames_in_flight}: applies to "
                              f"--objective throughput only (the {args.objective} objective "
                              "runs one frame-set); leave it out or add --objective throughput")
        if not 1 <= args.frames_in_flight <= MAX_FRAMES_IN_FLIGHT:
            raise ConfigError(f"--frames-in-flight: expected an integer from 1 to "
                              f"{MAX_FRAMES_IN_FLIGHT}, found {args.frames_in_flight}")
    else:
        args.frames_in_flight = DEFAULT_FRAMES_IN_FLIGHT
    if args.timeout is not None and not (math.isfinite(args.timeout)
                                         and 0 < args.timeout <= MAX_TIMEOUT_S):
        raise ConfigError(f"--timeout: expected a finite number of seconds > 0 and <= "
                          f"{MAX_TIMEOUT_S:g}, found {args.timeout}")
    if getattr(args, "plot", None):
        from hax_conn_core.gantt import chart_path

        chart_path(args.plot)


def select_dnns(profile, dnns: Optional[str]):
    """The profile cut down to ``--dnns a,b`` (ProfileError for an unknown name)."""
    if dnns is None:
        return profile
    from hax_conn_core.graph.resolve import is_model_path
    from hax_conn_core.models import normalise_model_id

    names: List[str] = [n.strip() for n in dnns.split(",")]
    # A model file stands for its id (its normalised stem), as the profile names it.
    names = [normalise_model_id(Path(n).stem) if is_model_path(n) else n for n in names]
    if not all(names):
        raise ConfigError(f"--dnns {dnns!r}: expected comma-separated DNN names, e.g. "
                          f"{','.join(list(profile.dnns)[:2])}")
    return profile.subset(names)


def make_plan(profile, args: argparse.Namespace):
    from hax_conn_core.planner import plan

    # A DNN of n groups can change accelerator at most n - 1 times: a larger budget plans the
    # same schedules (and would make counting them needlessly long).
    usable = max(len(dnn.groups) for dnn in profile.dnns.values()) - 1
    if args.max_transitions > usable:
        print(f"hax-conn {args.command}: note: --max-transitions {args.max_transitions} is more "
              f"than any DNN here can use (at most {usable}: the most groups of a DNN is "
              f"{usable + 1}); planning with {usable}", file=sys.stderr)
        args.max_transitions = usable
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
    chart = None
    if getattr(args, "plot", None):
        from hax_conn_core.gantt import draw_gantt

        chart = draw_gantt(profile, result.schedule, args.plot)
    if args.json:
        print(document)
        return 0
    print_plan(profile, result)
    if getattr(args, "output", None):
        print(f"Schedule written to {args.output}")
    if chart is not None:
        print(f"Gantt chart written to {chart}")
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
    table.add_column("HaX-CoNN saves", justify="right")

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
    console.print("HaX-CoNN saves: how much shorter the plan's time is than the row's, in "
                  "percent of the row's (negative: longer)")
    for note in _baseline_notes(profile, result):
        console.print(f"Note: {note}")
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
    console.print(f"Search: {search_sentence(result.status)} ({_count(result.checks, 'Z3 check')}"
                  f", {_count(result.candidates, 'schedule')} simulated, "
                  f"{result.time_s:.2f} s)")
    for note in result.notes:
        console.print(f"Note: {note}")


#: The planner's status, in words (PlanResult.status).
SEARCH_SENTENCES = {
    "optimal": "proven within 1% of the best schedule the simulator can find",
    "converged": "converged (Z3 re-solving two DNNs at a time improves nothing more), "
                 "not proven",
    "timeout": "stopped at the time limit (--timeout): the best schedule found so far, "
               "not proven",
    "resource-limit": "stopped at Z3's resource limit: the best schedule found so far, "
                      "not proven",
    "candidate-limit": "stopped at the limit on simulated schedules: the best schedule found "
                       "so far, not proven",
}


def search_sentence(status: str) -> str:
    """The ``Search:`` line's words for a planner status (an unknown one is quoted)."""
    return SEARCH_SENTENCES.get(status, f"ended with status {status!r}")


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _baseline_notes(profile, result):
    """Why a baseline row says what it does, where the table alone would puzzle a reader."""
    gpu_dla = next((b for b in result.baselines if b.name == "GPU&DLA"), None)
    if gpu_dla is None:
        return
    used = {a for accs in gpu_dla.schedule.assignments.values() for a in accs}
    if len(used) > 1:
        return
    (only,) = used
    others = [a for a in profile.device.accelerators if a != only]
    blocked = []
    for name in gpu_dla.schedule.assignments:
        groups = profile.dnns[name].groups
        for acc in others:
            missing = [str(i) for i, g in enumerate(groups) if not g.runs_on(acc)]
            if not missing:
                # only with a single DNN: two DNNs, one of them movable, would be split
                yield (f"GPU&DLA maps {name} whole to the {only.upper()}, as GPU-only does: "
                       f"with a single DNN there is nothing to run beside it, and the "
                       f"{only.upper()} is its faster whole mapping")
                return
            shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
            blocked.append(f"{acc.upper()} cannot run {name}'s group"
                           f"{'s' if len(missing) > 1 else ''} {shown}")
    yield (f"GPU&DLA is the same mapping as GPU-only (every DNN whole on the {only.upper()}): "
           f"no DNN can run whole on {' or '.join(a.upper() for a in others)} "
           f"({'; '.join(blocked)})")
