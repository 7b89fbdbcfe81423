"""`hax-conn run`: run a schedule on a backend and measure it beside the prediction."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Dict

from hax_conn_core.cli.base import add_json_option, add_profile_option, Command
from hax_conn_core.errors import ConfigError


def add_backend_options(parser: argparse.ArgumentParser) -> None:
    """``--backend``, ``--device``, ``--precision``, ``--cache``: shared by run and bench."""
    from hax_conn_core.runtime.backends import DEFAULT_BACKEND, known_backends

    parser.add_argument("--backend", default=DEFAULT_BACKEND, metavar="B",
                        help=f"accelerator runtime: {', '.join(known_backends())} "
                             f"(default: {DEFAULT_BACKEND}, the CPU)")
    parser.add_argument("--device", metavar="D",
                        help="device description id or .yaml path (default: the backend's: "
                             "cpu for onnxruntime, see docs/runtime.md)")
    parser.add_argument("--precision", metavar="P",
                        help="fp32, fp16 or int8 (default: the backend's first: fp32 on the "
                             "CPU, fp16 on CUDA)")
    parser.add_argument("--no-cache", action="store_true",
                        help="build every engine afresh instead of using the engine cache "
                             "($HAX_CONN_CACHE/engines or ~/.cache/hax_conn/engines)")


def open_backend(args: argparse.Namespace):
    """The backend the options name, opened (the caller closes it)."""
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.cache import EngineCache
    from hax_conn_core.runtime.device import load_runtime_device

    device = load_runtime_device(args.device) if args.device else None
    backend = get_backend(args.backend, device=device,
                          cache=None if args.no_cache else EngineCache())
    return backend.open()


class RunCommand(Command):
    """Run a schedule: the split engines on both accelerators, in lockstep, measured.

    Each DNN's layer groups run on the accelerator the schedule names, both accelerators at
    once, the tensor handed over at each transition (docs/runtime.md). Without --schedule the
    profile is planned first (as 'hax-conn plan' would). Prints per-DNN and per-frame-set
    latency (median, p95, p99), frame-sets/s, and the simulator's prediction beside the
    measured figure. Frames are seeded random images, distinct per frame-set and DNN.

    Examples:
      hax-conn run --profile profiles/cpu_alexnet_googlenet_resnet18_mobilenet_v1.json \\
          --dnns alexnet,resnet18 --frames 50
      hax-conn run --profile P.json --schedule S.json --objective throughput --json
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from hax_conn_core.cli.plan import add_plan_options

        add_profile_option(parser)
        add_backend_options(parser)
        parser.add_argument("--schedule", metavar="S.json",
                            help="schedule file to run (default: plan the profile first)")
        add_plan_options(parser)
        parser.add_argument("--frames", type=int, default=50, metavar="N",
                            help="frame-sets to measure (default: 50)")
        parser.add_argument("--warmup", type=int, default=None, metavar="W",
                            help="frame-sets run first and left out (default: N/10, at least 2)")
        parser.add_argument("--seed", type=int, default=0,
                            help="seed of the weights and the input frames (default: 0)")
        from hax_conn_core.cli.graph import add_model_options

        add_model_options(parser)
        parser.add_argument("--weights", action="append", default=[], metavar="DNN=FILE",
                            help="run DNN with the weights of FILE (.caffemodel or .onnx) "
                                 "instead of seeded ones; repeat per DNN")
        add_json_option(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.cli.plan import check_plan_options, make_plan, select_dnns
        from hax_conn_core.profile import load_profile
        from hax_conn_core.runtime.measure import measure
        from hax_conn_core.runtime.models import load_model
        from hax_conn_core.runtime.session import Runtime
        from hax_conn_core.schedule import load_schedule

        if args.frames < 1:
            raise ConfigError(f"--frames: expected an integer >= 1, found {args.frames}")
        warmup = max(2, args.frames // 10) if args.warmup is None else args.warmup
        if warmup < 0:
            raise ConfigError(f"--warmup: expected an integer >= 0, found {warmup}")
        profile = load_profile(args.profile)
        if args.schedule:
            schedule = load_schedule(args.schedule)
            if args.dnns and [n.strip() for n in args.dnns.split(",")] != \
                    list(schedule.assignments):
                raise ConfigError(f"--dnns {args.dnns} differs from the schedule's DNNs "
                                  f"({','.join(schedule.assignments)}); leave --dnns out")
            profile = profile.subset(list(schedule.assignments))
        else:
            check_plan_options(args)
            profile = select_dnns(profile, args.dnns)
            schedule = make_plan(profile, args).schedule
        from hax_conn_core.cli.graph import register_cli_models

        paths = [n.strip() for n in (args.dnns or "").split(",") if n.strip().endswith(
            (".onnx", ".prototxt"))]
        register_cli_models(args.model_paths + paths, args.input_shape)  # the profile names them
        files = _weights_files(args.weights, list(schedule.assignments))
        models = {name: load_model(name, seed=args.seed, weights=files.get(name))
                  for name in schedule.assignments}
        backend = open_backend(args)
        runtime = None
        try:
            runtime = Runtime(backend, profile, schedule, models, precision=args.precision)
            with runtime, _progress(args.frames + warmup, quiet=args.json) as advance:
                from hax_conn_core.runtime.gc_pause import freeze_startup_objects

                freeze_startup_objects()  # engines built; see runtime/gc_pause.py
                measured = measure(runtime, args.frames, warmup, args.seed, progress=advance)
        except KeyboardInterrupt:
            done = runtime.completed if runtime is not None else 0
            print(f"hax-conn run: interrupted; {done} frame-set(s) had completed",
                  file=sys.stderr)
            return 130
        finally:
            backend.close()
        report = _report(backend, schedule, measured)
        report["weights"] = {name: model.weights_id for name, model in models.items()}
        if args.json:
            from hax_conn_core.runtime.results import finite_for_json

            print(json.dumps(finite_for_json(report), indent=2, default=str))
        else:
            from hax_conn_core.schedule import describe_assignment

            report["profile_device"] = profile.device.name
            report["words"] = [describe_assignment(profile.dnns[name], accs)
                               for name, accs in schedule.assignments.items()]
            _print_report(report)
        return 0 if report["failed_frame_sets"] == 0 else 1


def _weights_files(entries, dnns) -> Dict[str, str]:
    """``--weights DNN=FILE`` entries -> {dnn: file}; DNNs not given keep seeded weights."""
    files: Dict[str, str] = {}
    for entry in entries:
        dnn, sep, path = entry.partition("=")
        if not sep or not dnn or not path:
            raise ConfigError(f"--weights {entry}: expected DNN=FILE, e.g. "
                              "resnet18=resnet18.caffemodel")
        if dnn not in dnns:
            raise ConfigError(f"--weights {entry}: {dnn} is not run; expected one of "
                              f"{', '.join(dnns)}")
        files[dnn] = path
    return files


def _report(backend, schedule, measured) -> Dict[str, Any]:
    from hax_conn_core.schedule import schedule_to_dict

    summary = measured.summary
    return {
        "backend": backend.describe(),
        "schedule": schedule_to_dict(schedule),
        "objective": schedule.objective,
        "measured_ms": measured.measured_ms,
        "predicted_ms": measured.predicted_ms,
        "predicted_no_contention_ms": measured.predicted_no_contention_ms,
        "frame_sets": summary["frame_sets"],
        "failed_frame_sets": summary["failed_frame_sets"],
        "latency_ms": summary["latency_ms"],
        "ms_per_frame_set": summary["ms_per_frame_set"],
        "frame_sets_per_s": summary["frame_sets_per_s"],
        "dnns": summary["dnns"],
    }


def _print_report(report: Dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, highlight=False, soft_wrap=True)
    if not console.is_terminal:
        console.width = 120
    info = report["backend"]
    console.print(f"Ran {' + '.join(report['schedule']['dnns'])} on {info['backend']} "
                  f"{info['version']} (device {info['device']}), objective "
                  f"{report['objective']}, {report['frame_sets']} frame-sets measured:")
    for line in report.get("words", ()):
        console.print(f"  {line}")
    console.print("Weights: " + ", ".join(f"{name} {weights}"
                                          for name, weights in report["weights"].items()))
    if report.get("profile_device") and report["profile_device"] != info["device"]:
        console.print(f"Note: the profile is of device {report['profile_device']!r}; the "
                      "prediction is for that device, the measurement for this one.")
    table = Table(show_edge=False)
    for column in ("", "median (ms)", "p95 (ms)", "p99 (ms)", "failed"):
        table.add_column(column, justify="right" if column else "left")
    whole = report["latency_ms"]
    table.add_row("frame-set latency", _ms(whole["median"]), _ms(whole["p95"]),
                  _ms(whole["p99"]), str(report["failed_frame_sets"]))
    for name, entry in report["dnns"].items():
        stats = entry["latency_ms"]
        table.add_row(f"{name} latency", _ms(stats["median"]), _ms(stats["p95"]),
                      _ms(stats["p99"]), str(entry["errors"]))
    console.print(table)
    what = ("time per frame-set" if report["objective"] == "throughput" else
            "median frame-set latency")
    console.print(f"Measured {what}: {_ms(report['measured_ms'])} ms "
                  f"({report['frame_sets_per_s']:.1f} frame-sets/s); predicted "
                  f"{_ms(report['predicted_ms'])} ms (without contention "
                  f"{_ms(report['predicted_no_contention_ms'])} ms)")
    for name, entry in report["dnns"].items():
        if entry["first_error"]:
            console.print(f"{name}: {entry['errors']} failed frame(s); first: "
                          f"{entry['first_error']}")


def _ms(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.3f}"


class _progress:
    """A progress bar on stderr (rich), quiet when asked or when stderr is not a terminal."""

    def __init__(self, total: int, quiet: bool = False):
        self.total = total
        self.quiet = quiet or not sys.stderr.isatty()
        self._bar = None

    def __enter__(self):
        if self.quiet:
            return lambda done: None
        from rich.console import Console
        from rich.progress import Progress

        self._bar = Progress(transient=True, console=Console(stderr=True))
        self._bar.start()
        task = self._bar.add_task("frame-sets", total=self.total)
        return lambda done: self._bar.update(task, completed=done)

    def __exit__(self, *exc_info) -> None:
        if self._bar is not None:
            self._bar.stop()
