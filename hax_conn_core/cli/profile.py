"""`hax-conn profile`: measure a profile on a backend, or estimate one from the graph alone."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List

from hax_conn_core.cli.base import Command
from hax_conn_core.errors import ConfigError


class ProfileCommand(Command):
    """Measure per-group times, transition costs and memory demand of DNNs on each accelerator.

    Writes a profile (hax-conn-profile/1, docs/formats.md) that `hax-conn plan` reads. With
    --backend it measures: every layer group of every DNN in context (whole-DNN runs through
    the runtime, median of --repeats frames), the check that the group times sum to the
    whole (3%), one split run per group boundary for the transition costs, the peak
    bandwidth and the contention curves (docs/profiler.md). Measurements are cached
    ($HAX_CONN_CACHE/profiles or ~/.cache/hax_conn/profiles): an interrupted run resumes.
    With --estimate it needs no hardware: a roofline from the graph's FLOPs and bytes and the
    device description's peaks, marked as estimated.

    Examples:
      hax-conn profile --backend onnxruntime --dnns alexnet,mobilenet_v1 --out P.json
      hax-conn profile --estimate --device orin-agx --dnns googlenet,resnet50 --out orin.json
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from hax_conn_core.cli.graph import add_model_options

        parser.add_argument("--dnns", metavar="a,b",
                            help="DNNs to profile: registered ids or .prototxt / .onnx paths")
        add_model_options(parser)
        mode = parser.add_mutually_exclusive_group(required=True)
        mode.add_argument("--backend", metavar="B",
                          help="measure on this backend (onnxruntime on the CPU)")
        mode.add_argument("--estimate", action="store_true",
                          help="no hardware: a roofline estimate from the device description")
        parser.add_argument("--device", metavar="D",
                            help="device description: id in config/devices/ or a .yaml path "
                                 "(default: the backend's device; with --estimate required)")
        parser.add_argument("--out", "-o", metavar="P.json",
                            help="profile to write (default: <device>_<dnns>.json here)")
        parser.add_argument("--repeats", type=int, default=50, metavar="N",
                            help="frames per run after warm-up, median taken (>= 50, "
                                 "default 50)")
        parser.add_argument("--warmup", type=int, default=5, metavar="N",
                            help="frames left out each time a run starts (default 5)")
        parser.add_argument("--groups", type=int, default=10, metavar="N",
                            help="target layer groups per DNN (default 10)")
        parser.add_argument("--precision", metavar="P",
                            help="--estimate only: fp32, fp16 or int8 (default: the device's)")
        parser.add_argument("--no-contention", action="store_true",
                            help="skip the contention calibration: flat curves, marked as not "
                                 "calibrated")
        parser.add_argument("--stress-gbps", type=float, metavar="G",
                            help="top bandwidth of the contention stressor (default: what one "
                                 "stream reaches alone)")
        parser.add_argument("--raw-group-times", action="store_true",
                            help="write the groups' own measured times; by default what a "
                                 "whole run costs beyond them (one engine per stretch, the "
                                 "frame's upload and download) is folded in (docs/profiler.md)")
        parser.add_argument("--plain", action="store_true",
                            help="write only the keys hax_conn's reader keeps (source, "
                                 "peak_bandwidth_source), in the shipped profiles' layout")
        parser.add_argument("--no-progress", action="store_true",
                            help="no progress bar on stderr")

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.profiler.document import write_document

        from hax_conn_core.cli.graph import register_cli_models

        if not args.dnns and not args.model_paths:
            raise ConfigError("give the DNNs to profile: --dnns a,b and/or --model PATH")
        listed = _names(args.dnns) if args.dnns else []
        names = register_cli_models(listed + args.model_paths, args.input_shape)
        # --dnns may name a --model by its name, to place it in the order: one DNN, not two
        names = names[:len(listed)] + [n for n in names[len(listed):]
                                       if n not in names[:len(listed)]]
        if args.groups < 1:
            raise ConfigError(f"--groups: expected an integer >= 1, found {args.groups}")
        if args.estimate:
            doc, device = self._estimate(args, names)
        else:
            doc, device = self._measure(args, names)
        out = Path(args.out or f"{device}_{'_'.join(Path(n).stem for n in names)}.json")
        if out.is_dir():
            raise ConfigError(f"--out {out}: is a directory; expected a .json file path")
        write_document(doc, out, plain=args.plain)
        print(f"Profile written to {out}")
        return 0

    def _estimate(self, args, names: List[str]):
        from hax_conn_core.profiler.estimate import estimate_profile

        if not args.device:
            raise ConfigError("--estimate needs --device (e.g. xavier-agx, orin-agx, cpu)")
        graphs = {}
        ids = []
        from hax_conn_core.graph.resolve import resolve_model

        for name in names:  # ids; user models registered by path above
            source = resolve_model(name)
            if not source.builtin:
                graphs[source.id] = source.load_graph()
            ids.append(source.id)
        doc = estimate_profile(ids, args.device, precision=args.precision,
                               target_groups=args.groups, graphs=graphs)
        for name, dnn in doc["dnns"].items():
            total = {}
            for group in dnn["groups"]:
                for acc, ms in group["time_ms"].items():
                    total[acc] = total.get(acc, 0.0) + ms
            print(f"{name}: {len(dnn['groups'])} groups, estimated "
                  + ", ".join(f"{acc} {ms:.3f} ms" for acc, ms in total.items())
                  + " (groups it runs)")
        return doc, doc["device"]["name"]

    def _measure(self, args, names: List[str]):
        from hax_conn_core.profiler import profile_dnns
        from hax_conn_core.runtime.backends import get_backend

        if args.precision:
            raise ConfigError("--precision applies to --estimate only; a measured profile "
                              "uses the backend's precision")
        device = None
        if args.device:
            from hax_conn_core.runtime.device import load_runtime_device

            device = load_runtime_device(args.device)
        from hax_conn_core.errors import BackendError
        from hax_conn_core.profiler.profiler import ProfileInterrupted

        started = time.monotonic()
        try:
            with get_backend(args.backend, device=device) as backend:
                run = profile_dnns(backend, names, device=args.device, repeats=args.repeats,
                                   warmup=args.warmup, target_groups=args.groups,
                                   progress=not args.no_progress and sys.stderr.isatty(),
                                   contention=not args.no_contention,
                                   stress_gbps=args.stress_gbps,
                                   fold_run_costs=not args.raw_group_times)
                device_id = backend.device.id
        except BackendError as error:
            # One line: what failed, what is kept, how to go on. Closing the backend may fail
            # too on a lost device: the measuring error is the one to report.
            stopped = error if isinstance(error, ProfileInterrupted) else error.__context__
            if not isinstance(stopped, ProfileInterrupted):
                raise
            raise BackendError(f"{stopped}; resume with: {_resume_command(args)}") from None
        took = time.monotonic() - started
        print(f"Measured in {took:.0f} s; {run.reused} cached measurement(s) reused"
              + (f", {run.rebuilt} corrupt one(s) measured again" if run.rebuilt else ""))
        for name, ok in run.within_tolerance.items():
            if not ok:
                print(f"Note: {name}: group times do not sum to within "
                      f"{100 * run.document['profiler']['tolerance']:g}% of the whole "
                      "(details on stderr and in the file's profiler.dnns)")
        if args.plain:
            run.document["source"] += _plain_summary(run.document)
        return run.document, device_id


def _resume_command(args) -> str:
    """The command line that continues this profile (same flags; the cache does the rest)."""
    import shlex

    words = ["hax-conn", "profile", "--backend", args.backend]
    if getattr(args, "dnns", None):
        words += ["--dnns", args.dnns]
    for path in getattr(args, "model_paths", None) or ():
        words += ["--model", str(path)]
    for shape in getattr(args, "input_shape", None) or ():
        words += ["--input-shape", str(shape)]
    for flag, value in (("--device", args.device), ("--out", args.out),
                        ("--stress-gbps", args.stress_gbps)):
        if value is not None:
            words += [flag, str(value)]
    for flag, value, default in (("--repeats", args.repeats, 50), ("--warmup", args.warmup, 5),
                                 ("--groups", args.groups, 10)):
        if value != default:
            words += [flag, str(value)]
    words += [flag for flag, on in (("--no-contention", args.no_contention),
                                    ("--plain", args.plain),
                                    ("--raw-group-times", args.raw_group_times),
                                    ("--no-progress", args.no_progress)) if on]
    return shlex.join(words)


def _names(text: str) -> List[str]:
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise ConfigError(f"--dnns {text!r}: expected comma-separated DNN names, e.g. "
                          "alexnet,googlenet")
    return names


def _plain_summary(doc) -> str:
    """What --plain leaves out, folded into ``source`` in a sentence."""
    meta = doc["profiler"]
    parts = []
    for name, info in meta["dnns"].items():
        checks = ", ".join(f"{acc} {100 * c['deviation']:+.1f}%"
                           for acc, c in info["sum_check"].items() if c["deviation"] is not None)
        parts.append(f"{name} group sum vs engines {checks}")
    calibrated = meta["contention"]["calibrated"]
    return ("; " + "; ".join(parts) + "; contention " +
            ("calibrated (PCCS-style copy-stream probes)" if calibrated else "not calibrated") +
            "; spreads and fit errors: docs/profiles.md")
