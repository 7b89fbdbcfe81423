"""`hax-conn demo --own-model`: a user's ONNX model planned and run beside a paper DNN (CPU).

The flow of docs/own-models.md, as the commands a user types: write the example detector
(hax_conn_core.example_models, dynamic batch), show what the graph reader makes of it, estimate
a profile of it and the paper DNN on the ``cpu`` device (a roofline, no measuring: seconds),
plan the pair, and run frames through the runtime on onnxruntime (the CPU's two sessions stand
in for GPU and DLA). Each step is printed as its ``hax-conn`` command line and run through the
same code, so the output is what those commands print.
"""

from __future__ import annotations

import shlex
import tempfile
from pathlib import Path
from typing import List, Optional

from hax_conn_core.errors import ConfigError

#: Paper DNNs the demo pairs the model with (small enough to run quickly on a CPU).
PAPER_DNNS = ("alexnet", "mobilenet_v1")
MODEL_FILE = "own_detector.onnx"


def run_own_model_demo(paper_dnn: str = "alexnet", frames: int = 30,
                       workdir: Optional[str] = None) -> int:
    """Run the demo; the exit status of the first step that fails, else 0."""
    from hax_conn_core.example_models import INPUT_SHAPE, write_detector

    if paper_dnn not in PAPER_DNNS:
        raise ConfigError(f"--paper-dnn {paper_dnn}: expected one of {', '.join(PAPER_DNNS)}")
    if frames < 1:
        raise ConfigError(f"--frames: expected an integer >= 1, found {frames}")
    with tempfile.TemporaryDirectory(prefix="hax-conn-own-") as scratch:
        folder = Path(workdir or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        model = write_detector(folder / MODEL_FILE)
        shape = "x".join(str(d) for d in INPUT_SHAPE)
        profile = folder / "own_profile.json"
        print(f"Wrote {model}: a detector-style ONNX model (backbone, Resize + Concat head, "
              "Reshape/Transpose output), batch dimension dynamic, so it is read with "
              f"--input-shape {shape}.")
        _graph_summary(model, shape)
        steps = [
            ["profile", "--estimate", "--device", "cpu", "--dnns", paper_dnn, "--model",
             str(model), "--input-shape", shape, "--out", str(profile)],
            ["plan", "--profile", str(profile)],
            ["run", "--profile", str(profile), "--backend", "onnxruntime", "--model",
             str(model), "--input-shape", shape, "--frames", str(frames)],
        ]
        for argv in steps:
            status = _step(argv)
            if status:
                return status
        print("\nThe profile was estimated (a roofline of the cpu device description), so "
              "the prediction is the roofline's, not a measurement; `hax-conn profile "
              f"--backend onnxruntime --dnns {paper_dnn} --model MODEL --input-shape {shape}` "
              "measures one (minutes on a small CPU). docs/own-models.md has the whole flow, "
              "ROS included.")
        if workdir:
            print(f"The model and its profile are in {folder}.")
    return 0


def _step(argv: List[str]) -> int:
    from hax_conn_core.cli.main import main

    print(f"\n$ hax-conn {' '.join(shlex.quote(a) for a in argv)}", flush=True)
    return main(argv)


def _graph_summary(model: Path, shape: str) -> None:
    """One paragraph of what `hax-conn graph` would list at length."""
    from hax_conn_core.graph.cuts import valid_cuts
    from hax_conn_core.graph.resolve import resolve_model

    graph = resolve_model(model, input_shape=shape).load_graph()
    cuts = valid_cuts(graph)
    print(f"`hax-conn graph {model.name} --input-shape {shape}` reads it as {len(graph.layers)} "
          f"layers ({', '.join(sorted({layer.type for layer in graph.layers}))}) with "
          f"{len(cuts)} valid cut points: the planner may move it between accelerators there.")
