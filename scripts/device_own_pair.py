#!/usr/bin/env python3
"""One pair of users' own models, profiled, planned and measured like the paper's pairs.

Run on the GPU machine from the repository root (torch with torchvision, onnx, onnxruntime,
cuda-bindings; z3 on sys.path for the planning step):

    PYTHONPATH=. python3 scripts/device_own_pair.py --out $OUT/own \\
        --models efficientnet_b0,regnet_y_400mf

Steps, each through the same commands a user runs (``hax-conn profile``, ``hax-conn validate``):

1. export each torchvision architecture with random weights to ``<out>/<name>.onnx``
   (scripts/device_own_models.py's ``export``: BatchNorm statistics from one random batch,
   the TorchScript exporter, opset 17);
2. ``hax-conn profile --backend cuda-sm --device emulated-h200 --model A.onnx --model B.onnx``;
3. ``hax-conn validate --write-schedules``: the plan and the four baselines, both objectives
   (the GPU machine has no z3: plan here first with ``--profile P --schedules BUNDLE`` given,
   which skip steps 2 and 3);
4. ``hax-conn validate --schedules`` on cuda-sm: predicted against measured, and the gains.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "scripts"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--models", default="efficientnet_b0,regnet_y_400mf")
    parser.add_argument("--device", default="emulated-h200")
    parser.add_argument("--backend", default="cuda-sm", help="onnxruntime: a CPU dry run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--max-transitions", type=int, default=1)
    parser.add_argument("--profile", help="a profile of these models made before: skip step 2")
    parser.add_argument("--schedules", help="a bundle planned before (on a machine with z3): "
                        "skip step 3")
    parser.add_argument("--export-only", action="store_true", help="step 1 alone")
    args = parser.parse_args(argv)

    from device_own_models import export, make_models

    from hax_conn_core.cli.main import main as hax_conn

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    builders, source = make_models(names)
    paths = []
    for name in names:
        # torchvision's name, or the plain-torch stand-in's (name_like) where it is absent
        key = next((k for k in builders if k == name or k.startswith(name + "_")), None)
        build = builders.get(key)
        if build is None:
            print(f"device_own_pair: {name}: not among {', '.join(builders)} ({source})",
                  file=sys.stderr)
            return 2
        path = out / f"{name}.onnx"
        path.write_bytes(export(build, (1, 3, 224, 224)))
        paths.append(str(path))
        print(f"device_own_pair: exported {path} ({source})", file=sys.stderr, flush=True)
    if args.export_only:
        return 0
    models = [w for p in paths for w in ("--model", p)]
    profile = args.profile or str(out / f"{args.device}_{'_'.join(names)}.json")
    bundle = args.schedules or str(out / "bundle")
    steps = [
        None if args.profile else
        ["profile", "--backend", args.backend, "--device", args.device, *models,
         "--out", profile, "--no-progress"],
        None if args.schedules else
        ["validate", "--profile", profile, *models, "--dnns", ",".join(names),
         "--max-transitions", str(args.max_transitions), "--write-schedules", bundle],
        ["validate", "--profile", profile, *models, "--backend", args.backend,
         "--schedules", bundle, "--dnns", ",".join(names), "--rounds", str(args.rounds),
         "--frames", str(args.frames), "--warmup", str(args.warmup), "--out-dir", str(out),
         "--name", f"validate-{args.backend}-{'-'.join(names)}",
         "--record-command", "PYTHONPATH=. python3 scripts/device_own_pair.py "
         + " ".join(sys.argv[1:] if argv is None else argv)],
    ]
    for step in filter(None, steps):
        started = time.monotonic()
        print(f"device_own_pair: hax-conn {' '.join(step)}", file=sys.stderr, flush=True)
        status = hax_conn(step)
        print(f"device_own_pair: exit {status} after {time.monotonic() - started:.1f} s",
              file=sys.stderr, flush=True)
        if status != 0:
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
