"""`hax-conn validate`: predicted vs measured for the plan and the baselines (docs/validate.md)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Sequence

from hax_conn_core.cli.base import add_json_option, add_profile_option, Command
from hax_conn_core.errors import ConfigError


class ValidateCommand(Command):
    """Check the simulator against the runtime: predicted vs measured, plan and baselines.

    For each DNN set and objective, the planned schedule (Z3) and the four baselines (GPU-only,
    GPU&DLA, Herald, H2H) are predicted by the simulator, with the contention model and
    without it (flat curves), then measured through the runtime's executors side by side:
    interleaved rounds, the same frames, medians over rounds with the spread. Prints a table
    per set and objective (latency and frame-sets/s, predicted / no contention / measured,
    the errors) and the summary: median and worst relative error, with and without
    contention. Writes <out-dir>/<name>.json (everything), .md and .png.

    Where z3 is missing (the GPU machine), plan elsewhere and bring the schedules:
      hax-conn validate --profile P.json --dnns a,b --write-schedules S/   (here: plans only)
      hax-conn validate --profile P.json --backend cuda-sm --schedules S/  (there: measures)
      hax-conn validate --from-json R.json                                 (here: md + png)

    Examples:
      hax-conn validate --profile profiles/cpu_alexnet_googlenet_resnet18_mobilenet_v1.json \\
          --dnns resnet18,mobilenet_v1 --frames 20
      hax-conn validate --profile P.json --dnns "a,b;c,d,e" --objectives throughput
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from hax_conn_core.cli.run import add_backend_options

        add_profile_option(parser, required=False)
        add_backend_options(parser)
        parser.add_argument("--dnns", metavar="a,b[;c,d,e]",
                            help="DNN sets: ',' joins the DNNs of a set (priority order), ';' "
                                 "separates sets (default with --schedules: every set there)")
        parser.add_argument("--objectives", metavar="O",
                            help="comma-separated: latency, throughput (default: both; with "
                                 "--schedules: those the bundle has)")
        parser.add_argument("--max-transitions", type=int, default=1, metavar="K",
                            help="planning: most accelerator changes per DNN (default: 1)")
        parser.add_argument("--frames-in-flight", type=int, default=2, metavar="D",
                            help="throughput: frame-sets in flight, 1 to 16 (default: 2)")
        parser.add_argument("--timeout", type=float, metavar="S",
                            help="planning: wall-clock safety net per plan in seconds")
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--schedules", metavar="DIR",
                           help="measure the schedules of this bundle instead of planning "
                                "(needs no z3)")
        where.add_argument("--write-schedules", metavar="DIR",
                           help="plan (z3) and write the schedules with the baselines as a "
                                "bundle here, then stop: nothing is measured")
        where.add_argument("--from-json", metavar="R.json",
                           help="measure nothing: write the .md and .png of this report and "
                                "print its table")
        parser.add_argument("--rounds", type=int, default=5,
                            help="interleaved rounds (default: 5)")
        parser.add_argument("--frames", type=int, default=40,
                            help="frame-sets per schedule per round (default: 40)")
        parser.add_argument("--warmup", type=int, default=5,
                            help="frame-sets per round run first and left out (default: 5)")
        parser.add_argument("--seed", type=int, default=0,
                            help="seed of the weights and the frames (default: 0)")
        parser.add_argument("--out-dir", default=".", metavar="DIR",
                            help="where the report goes (default: the current directory)")
        parser.add_argument("--name", metavar="STEM",
                            help="file name of the report, without suffix (default: "
                                 "validate-<backend>)")
        from hax_conn_core.cli.graph import add_model_options

        add_model_options(parser)  # users' models the profile names
        add_json_option(parser)
        # The command recorded in the report, for callers that are not the command line
        # (scripts/device_validate.py): not a user option.
        parser.add_argument("--record-command", help=argparse.SUPPRESS)

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.validation.report import load_report

        if args.from_json:
            report = load_report(args.from_json)
            stem = Path(args.out_dir) / (args.name or Path(args.from_json).stem)
            return self._finish(report, stem, args, write_json=False)
        if not args.profile:
            raise ConfigError("--profile: required (except with --from-json)")
        from hax_conn_core.cli.graph import register_cli_models

        register_cli_models(args.model_paths, args.input_shape)
        objectives = parse_objectives(args.objectives) if args.objectives else None
        self._check_numbers(args)
        from hax_conn_core.profile import load_profile
        from hax_conn_core.schedule import OBJECTIVES
        from hax_conn_core.validation import bundle

        profile = load_profile(args.profile)
        wanted = bundle.parse_sets(args.dnns) if args.dnns else []
        for names in wanted:
            check_dnns(profile, names)
        if args.schedules:
            sets = bundle.select(bundle.load_bundle(args.schedules, profile), wanted,
                                 objectives)
            sets = [bundle.with_baselines(profile, s) for s in sets]
        else:
            if not wanted:
                raise ConfigError("--dnns: required unless --schedules names a bundle")
            sets = bundle.plan_sets(profile, wanted, objectives or list(OBJECTIVES),
                                    args.max_transitions,
                                    args.frames_in_flight, args.timeout, log=_log)
            if args.write_schedules:
                written = bundle.write_bundle(args.write_schedules, profile, sets,
                                              command=_command(args))
                count = sum(len(s.schedules) for s in sets)
                print(f"Written {len(sets)} schedule set(s) ({count} schedules) and {written}")
                return 0
        stem = Path(args.out_dir) / (args.name or f"validate-{args.backend}")
        _make_dir(stem.parent)  # a bad --out-dir is refused before minutes of measuring
        report = measure(profile, sets, args)
        return self._finish(report, stem, args, write_json=True)

    @staticmethod
    def _check_numbers(args: argparse.Namespace) -> None:
        if args.rounds < 1 or args.frames < 2 or args.warmup < 0:
            raise ConfigError("--rounds >= 1, --frames >= 2 and --warmup >= 0: expected "
                              f"integers, found {args.rounds}, {args.frames}, {args.warmup}")
        if args.max_transitions < 0:
            raise ConfigError(f"--max-transitions: expected an integer >= 0, found "
                              f"{args.max_transitions}")
        if not 1 <= args.frames_in_flight <= 16:
            raise ConfigError(f"--frames-in-flight: expected an integer from 1 to 16, found "
                              f"{args.frames_in_flight}")

    @staticmethod
    def _finish(report, stem: Path, args: argparse.Namespace, write_json: bool) -> int:
        from hax_conn_core.errors import SetupError
        from hax_conn_core.validation.plot import draw_report
        from hax_conn_core.validation.report import markdown, write_report

        _make_dir(stem.parent)
        if write_json:
            written = write_report(report, stem)
        else:
            md = stem.with_name(stem.name + ".md")
            md.write_text(markdown(report, chart=stem.name + ".png"), encoding="utf-8")
            written = [md]
        try:
            written.append(draw_report(report, stem.with_name(stem.name + ".png")))
        except SetupError as exc:
            print(f"hax-conn validate: note: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps(json.loads(written[0].read_text()) if write_json else report,
                             indent=2))
        else:
            print_tables(report)
            print(f"Written {', '.join(str(p) for p in written)}")
        return 0


def parse_objectives(text: str) -> List[str]:
    from hax_conn_core.schedule import OBJECTIVES

    objectives = [o.strip() for o in text.split(",")]
    for objective in objectives:
        if objective not in OBJECTIVES:
            raise ConfigError(f"--objectives: {objective!r}; expected a comma-separated list "
                              f"of {' and '.join(OBJECTIVES)}")
    if len(set(objectives)) != len(objectives):
        raise ConfigError(f"--objectives {text!r}: an objective is named twice")
    return objectives


def check_dnns(profile, names: Sequence[str]) -> None:
    """A DNN unknown to hax_conn, or known but not in the profile: one clear error each."""
    from hax_conn_core.errors import ProfileError
    from hax_conn_core.models import known_ids

    for name in names:
        if name in profile.dnns:
            continue
        if name not in known_ids():
            raise ConfigError(f"--dnns: unknown DNN {name!r}: expected one of the profile's "
                              f"({', '.join(profile.dnns)})")
        raise ProfileError(f"--dnns: {name!r} is not in the profile {profile.source or ''}: "
                           f"profile it first, or choose among {', '.join(profile.dnns)}")
    profile.subset(list(names))  # a DNN named twice


def measure(profile, sets, args: argparse.Namespace):
    from hax_conn_core.cli.run import open_backend
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.validation.measure import measure_set
    from hax_conn_core.validation.report import load_average, make_report

    load_before = load_average()
    backend = open_backend(args)
    rows = []
    try:
        for item in sets:
            models = {name: load_model(name, seed=args.seed) for name in item.dnns}
            _log(f"{'+'.join(item.dnns)} {item.objective}: measuring "
                 f"{', '.join(item.schedules)} ({args.rounds} rounds of {args.frames})")
            rows.append(measure_set(backend, profile, item, models, rounds=args.rounds,
                                    frames=args.frames, warmup=args.warmup, seed=args.seed,
                                    precision=args.precision))
        info = backend.describe()
    finally:
        backend.close()
    return make_report(rows, command=_command(args), backend=info,
                       profile_path=str(args.profile), profile_sha256=profile.sha256,
                       rounds=args.rounds, frames=args.frames, warmup=args.warmup,
                       seed=args.seed, precision=args.precision, load_before=load_before)


def print_tables(report) -> None:
    """The tables and the summary on stdout: rich where installed, plain text otherwise."""
    from hax_conn_core.validation.report import (COLUMNS, row_title, summary_lines,
                                                 table_cells, verdict)

    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None
    if Console is None:
        for row in report["rows"]:
            cells = [list(COLUMNS)] + table_cells(row)
            widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
            print(row_title(row))
            for line in cells:
                print("  " + "  ".join(c.rjust(w) for c, w in zip(line, widths)))
            print(verdict(row))
        for line in summary_lines(report):
            print(f"Error, {line}")
        return
    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 200
    for row in report["rows"]:
        table = Table(title=row_title(row), show_edge=False)
        for i, column in enumerate(COLUMNS):
            table.add_column(column, justify="left" if i == 0 else "right")
        for cells in table_cells(row):
            table.add_row(*cells)
        console.print(table)
        console.print(verdict(row))
    for line in summary_lines(report):
        console.print(f"Error, {line}")


def _make_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out-dir {path}: {exc.strerror or exc}") from None


def _command(args: argparse.Namespace) -> str:
    import shlex

    if args.record_command:
        return args.record_command
    return "hax-conn " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _log(message: str) -> None:
    print(f"hax-conn validate: {message}", file=sys.stderr, flush=True)
