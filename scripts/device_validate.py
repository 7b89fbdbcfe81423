#!/usr/bin/env python3
"""Predicted vs measured on the GPU machine: ``hax-conn validate`` over a schedule bundle.

The GPU machine has no z3, so the schedules are planned here first (docs/validate.md):

    hax-conn validate --profile P.json --dnns "a,b;c,d;e,f,g" --write-schedules bundles/P

and then, on the GPU machine from the repository root (torch, cupy, onnx, onnxruntime, numpy;
no z3, no ROS, pyyaml/rich/matplotlib not needed):

    PYTHONPATH=. python3 scripts/device_validate.py --profile P.json --schedules bundles/P \\
        --out $OUT [--backend cuda-sm] [--rounds 5] [--frames 200] [--warmup 20]

Each DNN set of the bundle is measured (both objectives it holds) and written as it finishes,
``$OUT/validate-<backend>-<a>-<b>.json`` (and .md; .png where matplotlib is installed), so a run
cut short keeps the sets it measured; at the end every set's rows are joined into
``$OUT/validate-<backend>.json`` and .md with the summary over all of them. Back here, draw the
chart and the page from it:

    hax-conn validate --from-json validate-cuda-sm.json --out-dir docs/bench
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", required=True)
    parser.add_argument("--schedules", required=True, help="a bundle written by "
                        "'hax-conn validate --write-schedules DIR'")
    parser.add_argument("--out", required=True, help="output folder ($OUT)")
    parser.add_argument("--backend", default="cuda-sm")
    parser.add_argument("--dnns", help="only these sets of the bundle ('a,b;c,d')")
    parser.add_argument("--objectives", help="default: those the bundle has")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--precision")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no new set after this many seconds")
    args = parser.parse_args()

    from hax_conn_core.cli.main import main as hax_conn
    from hax_conn_core.errors import SetupError
    from hax_conn_core.profile import load_profile
    from hax_conn_core.validation import bundle
    from hax_conn_core.validation.report import load_report, make_report, write_report

    profile = load_profile(args.profile)
    sets = bundle.load_bundle(args.schedules, profile)
    wanted = bundle.parse_sets(args.dnns) if args.dnns else []
    names = []
    for item in sets:
        if item.dnns not in names and (not wanted or item.dnns in wanted):
            names.append(item.dnns)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    reports = []
    for dnns in names:
        if args.budget_s is not None and time.monotonic() - started > args.budget_s:
            print(f"device_validate: budget spent; not measured: {'+'.join(dnns)}",
                  file=sys.stderr)
            continue
        stem = f"validate-{args.backend}-{'-'.join(dnns)}"  # no '+': $OUT keeps plain names
        argv = ["validate", "--profile", args.profile, "--backend", args.backend,
                "--schedules", args.schedules, "--dnns", ",".join(dnns),
                "--rounds", str(args.rounds),
                "--frames", str(args.frames), "--warmup", str(args.warmup),
                "--out-dir", str(out), "--name", stem]
        if args.precision:
            argv += ["--precision", args.precision]
        if args.objectives:
            argv += ["--objectives", args.objectives]
        argv += ["--record-command", "PYTHONPATH=. python3 scripts/device_validate.py "
                 + " ".join(shlex.quote(a) for a in sys.argv[1:]) + f"  # set {'+'.join(dnns)}"]
        print(f"device_validate: {'+'.join(dnns)}", file=sys.stderr, flush=True)
        status = hax_conn(argv)
        if status != 0:
            print(f"device_validate: {'+'.join(dnns)} failed (exit {status})", file=sys.stderr)
            continue
        reports.append(load_report(out / f"{stem}.json"))
    if not reports:
        return 1
    first = reports[0]
    joined = make_report(
        [row for r in reports for row in r["rows"]],
        command="PYTHONPATH=. python3 scripts/device_validate.py "
        + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        backend=first["backend"], profile_path=first["profile"],
        profile_sha256=first["profile_sha256"], rounds=first["rounds"],
        frames=first["frames_per_round"], warmup=first["warmup"], seed=first["seed"],
        precision=first["precision"],
        load_before=(first.get("machine_load") or {}).get("load_1m_before"))
    written = write_report(joined, out / f"validate-{args.backend}")
    try:
        from hax_conn_core.validation.plot import draw_report

        written.append(draw_report(joined, out / f"validate-{args.backend}.png"))
    except SetupError as exc:  # no matplotlib there: the chart is drawn back home
        print(f"device_validate: note: {exc}", file=sys.stderr)
    print("device_validate: written " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0 if len(reports) == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
