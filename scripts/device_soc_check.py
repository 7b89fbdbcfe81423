#!/usr/bin/env python3
"""The emulated SoC on the GPU machine: the green-context recipe and cuda-sm correctness.

Run on the GPU machine (device tool) from the repository root, one section per process:

    PYTHONPATH=. python3 scripts/device_soc_check.py recipe --out $OUT/recipe.json
    PYTHONPATH=. python3 scripts/device_soc_check.py correctness --out $OUT/correctness.json

``recipe`` (issue 19, run 1): the card, the driver's split granularity, green contexts at the
device description's split (default 124 + 8 SMs) and at 64 + 8, copy bandwidth of each
partition alone and together, each one's slowdown under the other's copy stress, googlenet
and resnet101 (our graphs, seeded weights, fp16) on each partition alone, next to the
other's copy stress, and both at once.

``correctness`` (run 2): all 12 DNNs on the cuda-sm backend against onnxruntime fp32 (CPU):
whole on each partition (fp16; fp32 with TF32 off on the gpu partition), split at two group
boundaries (part A on gpu, part B on dla reading A's output in place), logits compared; a
pair run at once on both partitions with event timestamps; an injected engine failure on one
partition while the other keeps running.

Results are written to ``--out`` (JSON) as they come, so a run cut short still reports.
docs/bench/emulated-soc-h200.md reads them.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
import traceback

import numpy as np

#: fp16 engines against onnxruntime fp32: max |logit diff| / max |logit| (the H100 torch run,
#: docs/execution.md, saw up to 0.19 for Inception-v4 with random weights) and the top-1 class.
FP16_LOGIT_RTOL = 0.25
#: fp32 engines (TF32 off) against onnxruntime fp32 (H100: at most 4.6e-4).
FP32_LOGIT_RTOL = 1e-3
#: A split against the whole DNN, both fp16 on cuda-sm.
SPLIT_VS_WHOLE_RTOL = 2e-2


def seeded(graph, seed=0):
    """Seeded weights, BatchNorm calibrated with onnxruntime (both signatures of
    graph.weights.seeded_weights: with a ``run`` callable, and the older one)."""
    from hax_conn_core.graph.weights import seeded_weights

    if "run" in inspect.signature(seeded_weights).parameters:
        from hax_conn_core.runtime.backends.onnxrt import run_onnx

        return seeded_weights(graph, seed, run=run_onnx)
    return seeded_weights(graph, seed)


def onnx_runner():
    try:
        from hax_conn_core.runtime.backends.onnxrt import OnnxRunner
    except ImportError:
        from hax_conn_core.graph.onnx_run import OnnxRunner
    return OnnxRunner


def ort(graph, weights, inputs, **kwargs):
    from hax_conn_core.graph.onnx_export import export

    external = {}
    model = export(graph, weights, check=False, external=external, **kwargs)
    return onnx_runner()(model, external=external, optimize=False,
                         threads=os.cpu_count()).run(inputs)


def load(model_id):
    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.models import get_model

    graph = load_prototxt(get_model(model_id).prototxt)
    return graph, seeded(graph, 0)


def write(path, results):
    with open(path, "w") as stream:
        json.dump(results, stream, indent=1, default=str)


def median(values):
    return float(np.median(np.asarray(values, dtype=np.float64)))


# --- run 1: the recipe -----------------------------------------------------------------------

def recipe(args) -> int:
    import torch

    from hax_conn_core.errors import ConfigError
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.backends import green_context as gc
    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.device import RuntimeDevice, load_runtime_device

    results = {"section": "recipe", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
               "torch": torch.__version__, "cuda": torch.version.cuda}
    props = torch.cuda.get_device_properties(0)
    results["card"] = {"name": props.name, "sms": props.multi_processor_count,
                       "memory_gib": round(props.total_memory / 2**30, 1),
                       "l2_mib": round(getattr(props, "L2_cache_size", 0) / 2**20, 1)}
    try:
        import cuda.bindings
        results["cuda_bindings"] = getattr(cuda.bindings, "__version__", "?")
        results["driver_sms"] = gc.card_sms(0)
    except Exception as error:
        results["cuda_bindings_error"] = repr(error)
    print(results, flush=True)
    write(args.out, results)

    torch.zeros(1, device="cuda")
    probe = {}
    for count in (1, 4, 8, 12, 16, 24, 64, 124, 128, 132):
        try:
            groups, rest = gc.split_groups(0, count, 1)
            probe[count] = {"group_sms": groups, "remaining_sms": rest}
        except Exception as error:
            probe[count] = {"error": str(error)}
    try:
        groups, rest = gc.split_groups(0, 8, 32)
        probe["8x32"] = {"group_sms": groups, "remaining_sms": rest}
    except Exception as error:
        probe["8x32"] = {"error": str(error)}
    results["split_probe"] = probe
    print("split probe", probe, flush=True)

    def device_with(gpu, dla):
        base = load_runtime_device(args.device)
        return RuntimeDevice(id=f"{base.id}-{gpu}+{dla}", accelerators=base.accelerators,
                             runtime={"cuda-sm": {"gpu": {"sms": gpu}, "dla": {"sms": dla}}})

    splits = {}
    for gpu, dla in ((64, 8), (116, 16), (120, 8), (12, 8)):
        key = f"{gpu}+{dla}"
        try:
            with get_backend("cuda-sm", device=device_with(gpu, dla)) as other:
                splits[key] = other.describe()
        except ConfigError as error:
            splits[key] = {"config_error": str(error)}
        except Exception as error:
            splits[key] = {"error": f"{type(error).__name__}: {error}"}
    results["other_splits"] = splits
    print("other splits", splits, flush=True)
    write(args.out, results)

    backend = get_backend("cuda-sm", device=load_runtime_device(args.device))
    backend.open()
    results["backend"] = backend.describe()
    print(results["backend"], flush=True)
    streams = {acc: backend.stream(acc) for acc in backend.accelerators}

    # Copy kernels (an elementwise add: SMs do it, not the copy engines), bytes read + written.
    n = 512 * 2**20  # fp16 elements: 1 GiB each way
    bufs = {acc: (torch.randn(n, device="cuda", dtype=torch.float16),
                  torch.empty(n, device="cuda", dtype=torch.float16))
            for acc in streams}
    torch.cuda.synchronize()

    def copies(acc, reps):
        src, dst = bufs[acc]
        s = streams[acc]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(s):
            start.record(s)
            for _ in range(reps):
                torch.add(src, 1, out=dst)
            end.record(s)
        return start, end

    def rate(events, reps):
        start, end = events
        end.synchronize()
        ms = start.elapsed_time(end)
        return 2 * n * 2 * reps / (ms / 1e3) / 1e9, ms

    for acc in streams:
        rate(copies(acc, 3), 3)  # warm-up
    alone = {}
    for acc in streams:
        reps = 20 if acc == "gpu" else 4
        gbs, ms = rate(copies(acc, reps), reps)
        alone[acc] = {"gb_s": round(gbs, 1), "ms_per_copy": round(ms / reps, 3)}
    results["copy_alone"] = alone
    print("copy alone", alone, flush=True)
    # Together: the stressor runs longer than the measured copies on the other partition.
    together = {}
    for measured, stressor in (("gpu", "dla"), ("dla", "gpu")):
        reps = 20 if measured == "gpu" else 4
        span_ms = alone[measured]["ms_per_copy"] * reps * 1.5 + 20
        stress_reps = int(span_ms / alone[stressor]["ms_per_copy"]) + 2
        stress = copies(stressor, stress_reps)
        gbs, ms = rate(copies(measured, reps), reps)
        stress_gbs, _ = rate(stress, stress_reps)
        together[measured] = {"gb_s": round(gbs, 1), "stressor_gb_s": round(stress_gbs, 1),
                              "slowdown": round(alone[measured]["gb_s"] / gbs, 3)}
    results["copy_under_other_copy"] = together
    print("copy under the other's copy", together, flush=True)
    write(args.out, results)

    # The DNNs on each partition.
    nets = {}
    engines = {}
    for model_id in ("googlenet", "resnet101"):
        graph, weights = load(model_id)
        for acc in streams:
            spec = EngineSpec(model_id, graph, weights, "seeded:0", 0, len(graph.layers) - 1,
                              acc, "fp16")
            try:
                engines[model_id, acc] = backend.build(spec)
            except Exception as error:
                nets[f"{model_id}@{acc}"] = {"error": str(error)}
        x = np.random.default_rng(1234).standard_normal(graph.shape(graph.inputs[0]),
                                                        dtype=np.float32)
        for acc in streams:
            engine = engines.get((model_id, acc))
            if engine is not None:
                engine.inputs_host = {graph.inputs[0]: backend.from_host(x, acc)}

    # Stress for the DNNs: 4 GiB copies (few, long kernels: a stream's launch queue holds about
    # a thousand, and a host blocked on a full queue would start the measurement late).
    big = 2048 * 2**20
    stress_bufs = {acc: (torch.zeros(big, device="cuda", dtype=torch.float16),
                         torch.empty(big, device="cuda", dtype=torch.float16))
                   for acc in streams}
    torch.cuda.synchronize()

    def stress(acc, span_ms):
        src, dst = stress_bufs[acc]
        s = streams[acc]
        ms_per = alone[acc]["ms_per_copy"] * big / n
        reps = int(span_ms / ms_per) + 2
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.stream(s):
            start.record(s)
            for _ in range(reps):
                torch.add(src, 1, out=dst)
            end.record(s)
        return start, end, reps

    def timed(engine, frames):
        launches = [engine.run(engine.inputs_host) for _ in range(frames)]
        return [launch.elapsed_ms() for launch in launches], launches

    for (model_id, acc), engine in engines.items():
        timed(engine, 20)
        times, _ = timed(engine, args.frames)
        entry = {"alone_ms": round(median(times), 3)}
        other = "dla" if acc == "gpu" else "gpu"
        s_start, s_end, reps = stress(other, entry["alone_ms"] * args.frames * 4 + 30)
        times, launches = timed(engine, args.frames)
        s_end.synchronize()
        entry["under_copy_stress_ms"] = round(median(times), 3)
        entry["slowdown"] = round(entry["under_copy_stress_ms"] / entry["alone_ms"], 3)
        # The stress covered the whole measurement (event timestamps, both streams).
        first, last = launches[0].start.event, launches[-1].done.event
        entry["stress_covered"] = bool(s_start.elapsed_time(first) >= 0
                                       and last.elapsed_time(s_end) >= 0)
        entry["frames_under_stress"] = sum(
            1 for launch in launches if launch.done.event.elapsed_time(s_end) >= 0)
        entry["stress_gb_s"] = round(2 * big * 2 * reps / (s_start.elapsed_time(s_end) / 1e3)
                                     / 1e9, 1)
        nets[f"{model_id}@{acc}"] = entry
        print(model_id, acc, entry, flush=True)
    results["dnns"] = nets
    write(args.out, results)
    # Both at once: resnet101 on gpu, googlenet on dla (the note's concurrent pair), and the
    # reverse; each measured over frames launched back to back on its own stream.
    pairs = {}
    for big_acc, small_acc in (("gpu", "dla"), ("dla", "gpu")):
        a, b = engines.get(("resnet101", big_acc)), engines.get(("googlenet", small_acc))
        if a is None or b is None:
            continue
        frames_a = args.frames
        frames_b = max(1, int(frames_a * nets[f"resnet101@{big_acc}"]["alone_ms"]
                              / nets[f"googlenet@{small_acc}"]["alone_ms"]))
        la = [a.run(a.inputs_host) for _ in range(frames_a)]
        lb = [b.run(b.inputs_host) for _ in range(frames_b)]
        pairs[f"resnet101@{big_acc}+googlenet@{small_acc}"] = {
            "resnet101_ms": round(median([x.elapsed_ms() for x in la]), 3),
            "googlenet_ms": round(median([x.elapsed_ms() for x in lb]), 3)}
    results["concurrent"] = pairs
    print("concurrent", pairs, flush=True)
    backend.close()
    write(args.out, results)
    return 0


# --- run 2: correctness ----------------------------------------------------------------------

def logit_diffs(got, reference):
    scale = float(np.abs(reference).max())
    return {"logit_rel": float(np.abs(got - reference).max()) / scale,
            "top1_same": bool(np.argmax(got) == np.argmax(reference)),
            "finite": bool(np.all(np.isfinite(got)))}


def correctness(args) -> int:
    import torch

    from hax_conn_core.errors import BackendError
    from hax_conn_core.graph.cuts import cut_tensor
    from hax_conn_core.graph.grouping import group_layers
    from hax_conn_core.models import known_ids
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.device import load_runtime_device

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = load_runtime_device(args.device)
    results = {"section": "correctness", "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
               "torch": torch.__version__, "card": torch.cuda.get_device_name(0),
               "tolerances": {"fp16_logit_rel": FP16_LOGIT_RTOL,
                              "fp32_logit_rel": FP32_LOGIT_RTOL,
                              "split_vs_whole_fp16_logit_rel": SPLIT_VS_WHOLE_RTOL},
               "models": {}}
    backend = get_backend("cuda-sm", device=device).open()
    results["backend"] = backend.describe()
    print(results["backend"], flush=True)
    failures = 0
    for model_id in args.models or known_ids():
        started = time.time()
        entry = results["models"].setdefault(model_id, {})
        try:
            graph, weights = load(model_id)
            (name,) = graph.inputs
            (output,) = graph.outputs
            softmax = graph.producer(output)
            logits = softmax.bottoms[0]
            assert softmax.index == len(graph.layers) - 1, "softmax is not the last layer"
            last = softmax.index - 1  # engines end at the logits
            x = np.random.default_rng(1234).standard_normal(graph.shape(name),
                                                            dtype=np.float32)
            reference = ort(graph, weights, {name: x}, extra_outputs=(logits,))[logits]
            entry["logit_scale"] = float(np.abs(reference).max())

            def spec(first, end, acc, precision="fp16"):
                return EngineSpec(model_id, graph, weights, "seeded:0", first, end, acc,
                                  precision)

            def run_one(engine, acc):
                launch = engine.run({n_: backend.from_host(x, acc)
                                     for n_ in engine.input_names})
                return backend.to_host(launch.outputs[logits]), launch.elapsed_ms()

            whole = {}
            for acc, precision in (("gpu", "fp16"), ("dla", "fp16"), ("gpu", "fp32")):
                label = f"whole_{acc}_{precision}"
                try:
                    engine = backend.build(spec(0, last, acc, precision))
                    got, ms = run_one(engine, acc)
                    entry[label] = dict(logit_diffs(got, reference), ms=round(ms, 3))
                    whole[acc, precision] = got
                    engine.release()
                except BackendError as error:
                    entry[label] = {"error": str(error)}
                    failures += 1
            boundaries = [group.last for group in group_layers(graph)[:-1]
                          if group.last < last]
            step = max(1, len(boundaries) // 2)
            for cut in boundaries[step // 2::step][:2]:
                label = f"split_{cut}"
                try:
                    part_a = backend.build(spec(0, cut, "gpu"))
                    part_b = backend.build(spec(cut + 1, last, "dla"), inputs_from=part_a)
                    tensor = cut_tensor(graph, cut)
                    la = part_a.run({name: backend.from_host(x, "gpu")})
                    lb = part_b.run(la.outputs, wait_for=[la.done])
                    got = backend.to_host(lb.outputs[logits])
                    item = logit_diffs(got, reference)
                    item.update(tensor=tensor, zero_copy=part_b.bound[0] == (tensor,),
                                ms_a=round(la.elapsed_ms(), 3), ms_b=round(lb.elapsed_ms(), 3))
                    if ("gpu", "fp16") in whole:
                        item["vs_whole_fp16_rel"] = logit_diffs(
                            got, whole["gpu", "fp16"])["logit_rel"]
                    entry[label] = item
                    part_b.release()
                    part_a.release()
                except BackendError as error:
                    entry[label] = {"error": str(error)}
                    failures += 1
            torch.cuda.empty_cache()
        except Exception:
            failures += 1
            entry["error"] = traceback.format_exc()
            print(entry["error"], file=sys.stderr)
        entry["seconds"] = round(time.time() - started, 1)
        checks = []
        for key, value in entry.items():
            if isinstance(value, dict) and "logit_rel" in value:
                bound = FP32_LOGIT_RTOL if key.endswith("fp32") else FP16_LOGIT_RTOL
                ok = value["logit_rel"] <= bound and value["finite"]
                if "vs_whole_fp16_rel" in value:
                    ok = ok and value["vs_whole_fp16_rel"] <= SPLIT_VS_WHOLE_RTOL
                value["within_tolerance"] = ok
                checks.append(ok)
                print(f"{model_id:20s} {key:18s} logit_rel {value['logit_rel']:.2e} "
                      f"top1_same {value['top1_same']} ok {ok}", flush=True)
            elif isinstance(value, dict):
                print(f"{model_id:20s} {key:18s} {value}", flush=True)
        entry["all_within_tolerance"] = bool(checks) and all(checks)
        write(args.out, results)

    results["pair"] = pair_overlap(backend, args)
    write(args.out, results)
    backend.close()
    results["fault"] = injected_fault(device, args)
    write(args.out, results)
    return 1 if failures else 0


def pair_overlap(backend, args):
    """googlenet on dla and resnet101 on gpu launched together: event timestamps (ms after a
    common reference event) show both partitions busy at once."""
    import torch

    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.backends.cuda_sm import CudaEvent

    out = {}
    engines = {}
    for model_id, acc in (("resnet101", "gpu"), ("googlenet", "dla")):
        graph, weights = load(model_id)
        engine = backend.build(EngineSpec(model_id, graph, weights, "seeded:0", 0,
                                          len(graph.layers) - 1, acc, "fp16"), slots=2)
        x = np.random.default_rng(7).standard_normal(graph.shape(graph.inputs[0]),
                                                     dtype=np.float32)
        engines[acc] = (engine, {graph.inputs[0]: backend.from_host(x, acc)})
    for engine, inputs in engines.values():  # warm
        engine.run(inputs).done.wait()
    serial = {acc: median([engine.run(inputs).elapsed_ms() for _ in range(20)])
              for acc, (engine, inputs) in engines.items()}
    frames = 5
    ref_event = torch.cuda.Event(enable_timing=True)
    ref_event.record(backend.stream("gpu"))
    ref = CudaEvent(ref_event, "gpu")
    launches = {acc: [] for acc in engines}
    for frame in range(frames):  # every run waits (on the GPU) for the common reference
        for acc, (engine, inputs) in engines.items():
            launches[acc].append(engine.run(inputs, slot=frame % 2, wait_for=[ref]))
    timeline = {acc: [] for acc in engines}
    for acc in engines:
        for launch in launches[acc]:
            launch.done.wait()
            timeline[acc].append([round(launch.start.elapsed_ms_since(ref), 3),
                                  round(launch.done.elapsed_ms_since(ref), 3)])
    gpu_span = (timeline["gpu"][0][0], timeline["gpu"][-1][1])
    dla_span = (timeline["dla"][0][0], timeline["dla"][-1][1])
    overlap = max(0.0, min(gpu_span[1], dla_span[1]) - max(gpu_span[0], dla_span[0]))
    out.update(dnns={"gpu": "resnet101", "dla": "googlenet"}, frames=frames,
               timeline_ms=timeline, overlap_ms=round(overlap, 3),
               serial_one_frame_ms={acc: round(v, 3) for acc, v in serial.items()},
               makespan_ms=round(max(gpu_span[1], dla_span[1]), 3),
               serial_sum_ms=round(frames * sum(serial.values()), 3))
    print("pair", out, flush=True)
    for engine, _ in engines.values():
        engine.release()
    return out


def injected_fault(device, args):
    """fault='run:dla': every dla engine fails to run; the gpu engine keeps producing the same
    result. fault='build:dla': the dla build fails; gpu builds and runs."""
    from hax_conn_core.errors import BackendError
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.backends.base import EngineSpec

    out = {}
    graph, weights = load("googlenet")
    x = np.random.default_rng(3).standard_normal(graph.shape(graph.inputs[0]),
                                                 dtype=np.float32)
    last = len(graph.layers) - 1
    for fault in ("run:dla", "build:dla"):
        entry = out.setdefault(fault, {})
        with get_backend("cuda-sm", device=device, fault=fault) as backend:
            gpu = backend.build(EngineSpec("googlenet", graph, weights, "seeded:0", 0, last,
                                           "gpu", "fp16"))
            try:
                dla = backend.build(EngineSpec("googlenet", graph, weights, "seeded:0", 0,
                                               last, "dla", "fp16"))
            except BackendError as error:
                entry["dla_build_error"] = str(error)
                dla = None
            errors, outputs = [], []
            for frame in range(10):
                if dla is not None:
                    try:
                        dla.run({graph.inputs[0]: backend.from_host(x, "dla")})
                    except BackendError as error:
                        errors.append(str(error))
                launch = gpu.run({graph.inputs[0]: backend.from_host(x, "gpu")})
                outputs.append(backend.to_host(launch.outputs[graph.outputs[0]]))
            entry["dla_run_errors"] = len(errors)
            entry["dla_first_error"] = errors[0] if errors else None
            entry["gpu_frames_ok"] = len(outputs)
            entry["gpu_outputs_identical"] = bool(all(np.array_equal(o, outputs[0])
                                                      for o in outputs))
        print("fault", fault, entry, flush=True)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("section", choices=("recipe", "correctness"))
    parser.add_argument("--out", required=True, help="JSON results")
    parser.add_argument("--device", default="emulated-h200",
                        help="device description (config/devices/); default emulated-h200")
    parser.add_argument("--models", nargs="*", help="DNN ids (correctness; default: all 12)")
    parser.add_argument("--frames", type=int, default=100,
                        help="frames per timing (recipe); default 100")
    args = parser.parse_args(argv)
    return recipe(args) if args.section == "recipe" else correctness(args)


if __name__ == "__main__":
    sys.exit(main())
