#!/usr/bin/env python3
"""Compare the torch module (CUDA) with onnxruntime (CPU) on the 12 DNNs, whole and split.

Run on the GPU machine from the repository root:

    PYTHONPATH=. python3 scripts/device_check_torch.py --out results.json

``--fused-only`` needs no torch (runs here): onnxruntime's fused vs unfused kernels.

For each DNN (seeded weights, fixed random input): onnxruntime fp32 is the reference; the
torch module runs in fp32 (TF32 off) NCHW and channels_last, in fp16, and split at two group
boundaries (torch A -> torch B, and onnxruntime A -> torch B). Prints one line per check and
writes every figure to ``--out`` (JSON) as it goes, so a run cut short still reports.
"""

import argparse
import json
import os
import sys
import time
import traceback

import numpy as np


def seeded_weights(graph, seed=0):
    """Seeded weights, BatchNorm calibrated by onnxruntime (the graph package runs nothing)."""
    from hax_conn_core.graph.weights import seeded_weights as seeded
    from hax_conn_core.runtime.backends.onnxrt import run_onnx

    return seeded(graph, seed, run=run_onnx)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="DNN ids (default: all 12)")
    parser.add_argument("--out", default="device_check_torch.json", help="JSON results")
    parser.add_argument("--cuts", type=int, default=2, help="group boundaries to split at")
    parser.add_argument("--fused-only", action="store_true",
                        help="no torch: compare onnxruntime's fused (full optimisation) and "
                             "unfused (basic) kernels on the whole DNNs, on the CPU")
    args = parser.parse_args(argv)
    if args.fused_only:
        return compare_fused(args)

    import torch

    from hax_conn_core.graph.cuts import cut_tensor
    from hax_conn_core.graph.grouping import group_layers
    from hax_conn_core.graph.onnx_export import export
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.models import get_model, known_ids
    from hax_conn_core.runtime.backends.onnxrt import OnnxRunner
    from hax_conn_core.runtime.backends.torch_module import build_module

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    threads = os.cpu_count() or 2
    results = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
               "torch": torch.__version__, "models": {}}

    def ort(graph, weights, inputs, **kwargs):
        external = {}
        model = export(graph, weights, check=False, external=external, **kwargs)
        return OnnxRunner(model, external=external, optimize=False,
                          threads=threads).run(inputs)

    def diffs(got, reference, output, logits):
        scale = float(np.abs(reference[logits]).max())
        return {"prob_abs": float(np.abs(got[output] - reference[output]).max()),
                "logit_rel": float(np.abs(got[logits] - reference[logits]).max()) / scale,
                "finite": bool(np.all(np.isfinite(got[logits]))),
                "top1_same": bool(np.argmax(got[output]) == np.argmax(reference[output]))}

    failures = 0
    for model_id in args.models or known_ids():
        started = time.time()
        entry = results["models"].setdefault(model_id, {})
        try:
            graph = load_prototxt(get_model(model_id).prototxt)
            weights = seeded_weights(graph)
            (name,) = graph.inputs
            (output,) = graph.outputs
            logits = graph.producer(output).bottoms[0]
            x = np.random.default_rng(1234).standard_normal(graph.shape(name),
                                                            dtype=np.float32)
            reference = ort(graph, weights, {name: x}, extra_outputs=(logits,))
            entry["logit_scale"] = float(np.abs(reference[logits]).max())
            for label, options in (("fp32", {}), ("fp32_channels_last",
                                                  {"channels_last": True}),
                                   ("fp16", {"dtype": "float16"}),
                                   ("fp16_channels_last", {"dtype": "float16",
                                                           "channels_last": True})):
                module = build_module(graph, weights, extra_outputs=(logits,), device=device,
                                      **options)
                entry[label] = diffs(module.run({name: x}), reference, output, logits)
                del module
            boundaries = [group.last for group in group_layers(graph)[:-1]]
            step = max(1, len(boundaries) // max(1, args.cuts))
            for cut in boundaries[step // 2::step][:args.cuts]:
                tensor = cut_tensor(graph, cut)
                part_a = build_module(graph, weights, last=cut, device=device)
                part_b = build_module(graph, weights, first=cut + 1, extra_outputs=(logits,),
                                      device=device)
                entry[f"split_{cut}_torch_torch"] = diffs(
                    part_b.run(part_a.run({name: x})), reference, output, logits)
                entry[f"split_{cut}_ort_torch"] = diffs(
                    part_b.run(ort(graph, weights, {name: x}, last=cut)), reference, output,
                    logits)
                entry[f"split_{cut}_tensor"] = tensor
                del part_a, part_b
            torch.cuda.empty_cache() if device == "cuda" else None
        except Exception:  # report and go on with the next DNN
            failures += 1
            entry["error"] = traceback.format_exc()
            print(entry["error"], file=sys.stderr)
        entry["seconds"] = round(time.time() - started, 1)
        for key, value in entry.items():
            if isinstance(value, dict):
                print(f"{model_id:20s} {key:28s} prob_abs {value['prob_abs']:.2e} "
                      f"logit_rel {value['logit_rel']:.2e} finite {value['finite']} "
                      f"top1_same {value['top1_same']}", flush=True)
        with open(args.out, "w") as stream:
            json.dump(results, stream, indent=1)
    return 1 if failures else 0


def compare_fused(args) -> int:
    """onnxruntime full vs basic optimisation: how far two fp32 kernel sets drift apart."""
    from hax_conn_core.graph.onnx_export import export
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.models import get_model, known_ids
    from hax_conn_core.runtime.backends.onnxrt import OnnxRunner

    results = {}
    for model_id in args.models or known_ids():
        graph = load_prototxt(get_model(model_id).prototxt)
        weights = seeded_weights(graph)
        (name,) = graph.inputs
        (output,) = graph.outputs
        logits = graph.producer(output).bottoms[0]
        x = np.random.default_rng(1234).standard_normal(graph.shape(name), dtype=np.float32)
        runs = []
        for optimize in (True, False):
            external = {}
            model = export(graph, weights, extra_outputs=(logits,), check=False,
                           external=external)
            runs.append(OnnxRunner(model, external=external, optimize=optimize)
                        .run({name: x}))
        fused, basic = runs
        scale = float(np.abs(basic[logits]).max())
        results[model_id] = {
            "logit_rel": float(np.abs(fused[logits] - basic[logits]).max()) / scale,
            "prob_abs": float(np.abs(fused[output] - basic[output]).max())}
        print(f"{model_id:20s} fused vs basic: logit_rel {results[model_id]['logit_rel']:.1e} "
              f"prob_abs {results[model_id]['prob_abs']:.1e}", flush=True)
        with open(args.out, "w") as stream:
            json.dump(results, stream, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
