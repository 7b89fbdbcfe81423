#!/usr/bin/env python3
"""Users' own models on the emulated SoC (issue 19, run 6), and onnx2torch against our builder.

Run on the GPU machine (device tool) from the repository root:

    PYTHONPATH=. python3 scripts/device_own_models.py --out $OUT

and, to measure the onnx2torch converter beside our builder (onnx_torch.py), carry its
pure-python wheel and name it (a wheel imports from sys.path as it is, nothing installed):

    PYTHONPATH=. python3 scripts/device_own_models.py --out $OUT \
        --onnx2torch-wheel wheels/onnx2torch-1.5.15-py3-none-any.whl

Per model (torchvision's mobilenet_v3_large, efficientnet_b0, regnet_y_400mf,
lraspp_mobilenet_v3_large, shufflenet_v2_x1_0, none among the paper's twelve; where
torchvision is absent, plain-torch models of the same block structure, named ``*_like``):
random weights with BatchNorm statistics taken from a random batch (so that activations stay
O(1) and fp16 comparisons mean something), ``torch.onnx.export`` (TorchScript exporter,
opset 17), then

* import through the ONNX frontend (``graph.frontends.onnx.load_onnx``), layer groups, two
  group boundaries; part A then part B on onnxruntime fp32 against the whole (<= 1e-4);
* on the cuda-sm backend (the device description's split, default gpu 124 + dla 8 SMs):
  the whole at fp16 against onnxruntime fp32, and part A on gpu then part B on dla reading
  A's output in place against the whole fp16 (CUDA graphs, as every cuda-sm engine);
* each torch path (ours; onnx2torch on the exported model and on our folded one): op
  coverage, whether a CUDA graph captures, fp16 agreement with onnxruntime fp32, and the
  median of 200 CUDA-graph replays (and of eager runs) on the whole card.

Where the frontend is absent, ranges come from ``onnx.utils.Extractor`` at single-tensor cuts
found here, and run through onnx_torch on the default stream. Without CUDA (a CPU-only torch)
everything runs on the CPU in fp32, without CUDA graphs or cuda-sm: a local check of the
script and of coverage/agreement, not a measurement. Results: ``own_models.json`` and
``own_models.md`` under ``--out``, written as they come.
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np

#: fp16 against onnxruntime fp32: max |diff| / max |reference| of each output.
FP16_RTOL = 5e-2
#: fp32 (TF32 off; CPU runs) against onnxruntime fp32.
FP32_RTOL = 1e-4
#: onnxruntime: part A then part B against the whole, max abs diff.
ORT_SPLIT_ATOL = 1e-4
#: cuda-sm split against the whole, both fp16: relative to max |whole|.
SPLIT_RTOL = 2e-2
REPLAYS = 200
TORCHVISION = ("mobilenet_v3_large", "efficientnet_b0", "regnet_y_400mf",
               "lraspp_mobilenet_v3_large", "shufflenet_v2_x1_0")


# --- models ---------------------------------------------------------------------------------
def _torchvision():
    try:
        import torch

        # torchvision wheels built for another torch fail registering their C++ ops' fake
        # kernels; the models need none of them.
        saved = torch.library.register_fake
        torch.library.register_fake = lambda *a, **k: (lambda f: f)
        try:
            import torchvision
        finally:
            torch.library.register_fake = saved
        return torchvision
    except Exception:  # absent, or unusable with this torch
        return None


def plain_models():
    """Models of the torchvision architectures' block structure in plain torch."""
    import torch
    from torch import nn
    F = nn.functional

    def cba(cin, cout, k=3, s=1, groups=1, act=nn.ReLU):
        return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
                             nn.BatchNorm2d(cout), act() if act else nn.Identity())

    class SE(nn.Module):
        def __init__(self, c, squeeze, gate=nn.Hardsigmoid, act=nn.ReLU):
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
            self.act, self.gate = act(), gate()

        def forward(self, x):
            s = F.adaptive_avg_pool2d(x, 1)
            return x * self.gate(self.fc2(self.act(self.fc1(s))))

    class Inverted(nn.Module):
        def __init__(self, cin, mid, cout, k, s, se, act, gate=nn.Hardsigmoid):
            super().__init__()
            layers = [cba(cin, mid, 1, act=act)] if mid != cin else []
            layers += [cba(mid, mid, k, s, groups=mid, act=act)]
            if se:
                layers.append(SE(mid, max(8, mid // 4), gate=gate,
                                 act=nn.ReLU if gate is nn.Hardsigmoid else nn.SiLU))
            layers.append(cba(mid, cout, 1, act=None))
            self.block = nn.Sequential(*layers)
            self.residual = s == 1 and cin == cout

        def forward(self, x):
            y = self.block(x)
            return x + y if self.residual else y

    def mobilenet_v3_features():
        hs, re = nn.Hardswish, nn.ReLU
        spec = [(16, 16, 16, 3, 1, False, re), (16, 64, 24, 3, 2, False, re),
                (24, 72, 24, 3, 1, False, re), (24, 72, 40, 5, 2, True, re),
                (40, 120, 40, 5, 1, True, re), (40, 240, 80, 3, 2, False, hs),
                (80, 480, 112, 3, 1, True, hs), (112, 672, 160, 5, 2, True, hs),
                (160, 960, 160, 5, 1, True, hs)]
        return nn.Sequential(cba(3, 16, 3, 2, act=hs), *[Inverted(*row) for row in spec])

    class MobileNetV3(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = mobilenet_v3_features()
            self.last = cba(160, 960, 1, act=nn.Hardswish)
            self.head = nn.Sequential(nn.Linear(960, 1280), nn.Hardswish(), nn.Dropout(0.2),
                                      nn.Linear(1280, 1000))

        def forward(self, x):
            return self.head(torch.flatten(F.adaptive_avg_pool2d(self.last(self.features(x)),
                                                                 1), 1))

    class EfficientNet(nn.Module):
        def __init__(self):
            super().__init__()
            si = nn.SiLU
            spec = [(32, 32, 16, 3, 1), (16, 96, 24, 3, 2), (24, 144, 24, 3, 1),
                    (24, 144, 40, 5, 2), (40, 240, 80, 3, 2), (80, 480, 112, 5, 1),
                    (112, 672, 192, 5, 2), (192, 1152, 320, 3, 1)]
            self.stem = cba(3, 32, 3, 2, act=si)
            self.blocks = nn.Sequential(*[Inverted(*row, True, si, gate=nn.Sigmoid)
                                          for row in spec])
            self.last = cba(320, 1280, 1, act=si)
            self.fc = nn.Linear(1280, 1000)

        def forward(self, x):
            x = self.last(self.blocks(self.stem(x)))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    class RegNetBlock(nn.Module):
        def __init__(self, cin, cout, s, group_width=8):
            super().__init__()
            self.a = cba(cin, cout, 1)
            self.b = cba(cout, cout, 3, s, groups=cout // group_width)
            self.se = SE(cout, max(8, cin // 4), gate=nn.Sigmoid)
            self.c = cba(cout, cout, 1, act=None)
            self.proj = cba(cin, cout, 1, s, act=None) if (s != 1 or cin != cout) else None

        def forward(self, x):
            y = self.c(self.se(self.b(self.a(x))))
            return F.relu((x if self.proj is None else self.proj(x)) + y)

    class RegNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths, depths = (48, 104, 208, 440), (1, 3, 6, 6)
            layers, cin = [], 32
            for width, depth in zip(widths, depths):
                for i in range(depth):
                    layers.append(RegNetBlock(cin, width, 2 if i == 0 else 1))
                    cin = width
            self.stem, self.trunk = cba(3, 32, 3, 2), nn.Sequential(*layers)
            self.fc = nn.Linear(cin, 1000)

        def forward(self, x):
            x = self.trunk(self.stem(x))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    class LRASPP(nn.Module):
        def __init__(self, classes=21):
            super().__init__()
            self.features = mobilenet_v3_features()
            self.cbr = cba(160, 128, 1)
            self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(160, 128, 1),
                                       nn.Sigmoid())
            self.low_classifier = nn.Conv2d(40, classes, 1)
            self.high_classifier = nn.Conv2d(128, classes, 1)

        def forward(self, x):
            size = x.shape[-2:]
            low = self.features[:5](x)  # stride 8, 40 channels
            high = self.features[5:](low)
            y = self.cbr(high) * self.scale(high)
            y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
            y = self.low_classifier(low) + self.high_classifier(y)
            return F.interpolate(y, size=size, mode="bilinear", align_corners=False)

    class Shuffle(nn.Module):
        def __init__(self, c, s):
            super().__init__()
            half = c // 2
            self.s = s
            cin = c if s == 2 else half
            self.branch = nn.Sequential(cba(cin, half, 1), cba(half, half, 3, s, half, None),
                                        cba(half, half, 1))
            self.side = nn.Sequential(cba(c, c, 3, s, c, None), cba(c, half, 1)) \
                if s == 2 else None

        def forward(self, x):
            if self.s == 1:
                a, b = x.chunk(2, dim=1)
                y = torch.cat((a, self.branch(b)), dim=1)
            else:
                y = torch.cat((self.side(x), self.branch(x)), dim=1)
            n, c, h, w = y.shape
            return y.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)

    class ShuffleNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers, cin = [], 24
            for c, repeat in ((116, 4), (232, 8), (464, 4)):
                layers.append(nn.Sequential(cba(cin, c, 1), Shuffle(c, 2)))
                layers += [Shuffle(c, 1) for _ in range(repeat - 1)]
                cin = c
            self.stem = nn.Sequential(cba(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1))
            self.trunk = nn.Sequential(*layers)
            self.fc = nn.Linear(464, 1000)

        def forward(self, x):
            return self.fc(self.trunk(self.stem(x)).mean([2, 3]))

    return {"mobilenet_v3_large_like": MobileNetV3, "efficientnet_b0_like": EfficientNet,
            "regnet_y_400mf_like": RegNet, "lraspp_mobilenet_v3_large_like": LRASPP,
            "shufflenet_v2_like": ShuffleNet}


def make_models(names=None, plain=False):
    """name -> a constructor of a torch module with random weights; where it came from."""
    vision = None if plain else _torchvision()
    if vision is not None:
        def tv(name):
            if name.startswith("lraspp"):
                def build():
                    model = vision.models.segmentation.lraspp_mobilenet_v3_large(
                        weights=None, weights_backbone=None)
                    return _OutOnly(model)
                return build
            return lambda: getattr(vision.models, name)(weights=None)

        found = {name: tv(name) for name in TORCHVISION}
        source = f"torchvision {vision.__version__}"
    else:
        found = plain_models()
        source = "plain torch (torchvision absent)"
    if names:
        found = {k: v for k, v in found.items() if any(k.startswith(n) for n in names)}
    return found, source


class _OutOnly:
    """torchvision's segmentation models return {'out': ...}: export the tensor."""

    def __new__(cls, model):
        import torch

        class Wrapped(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.model = model

            def forward(self, x):
                return self.model(x)["out"]

        return Wrapped()


def export(build, shape, seed=0):
    """Random weights, BatchNorm statistics from one random batch, the ONNX model bytes."""
    import torch

    torch.manual_seed(seed)
    model = build()
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = 1.0  # running stats := this batch's
    model.train()
    with torch.no_grad():
        model(torch.randn((8,) + tuple(shape[1:])))
    model.eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        # the TorchScript exporter: the dynamo one needs onnxscript, absent on the GPU machine
        kwargs = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export
                                                                    ).parameters else {}
        torch.onnx.export(model, (torch.randn(shape),), buffer, opset_version=17,
                          input_names=["input"], output_names=["output"], **kwargs)
    return buffer.getvalue()


# --- ranges ---------------------------------------------------------------------------------
def onnx_cuts(model):
    """Node positions i after which exactly one non-constant tensor crosses (fallback when
    the frontend is absent): the cut's tensor name per position."""
    constants = {init.name for init in model.graph.initializer}
    constants |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    nodes = list(model.graph.node)
    last_use = {}
    for position, node in enumerate(nodes):
        for name in node.input:
            if name and name not in constants:
                last_use[name] = position
    outputs = {o.name for o in model.graph.output}
    live = {i.name for i in model.graph.input if i.name not in constants}
    cuts = {}
    for position, node in enumerate(nodes[:-1]):
        live |= {o for o in node.output if o and o not in constants}
        live = {t for t in live if last_use.get(t, -1) > position or t in outputs}
        if len(live) == 1:
            cuts[position] = next(iter(live))
    return cuts


def two_cuts(candidates):
    """Two cut positions at about a third and two thirds of the candidates."""
    candidates = sorted(candidates)
    if len(candidates) < 2:
        return candidates
    return sorted({candidates[len(candidates) // 3], candidates[(2 * len(candidates)) // 3]})


# --- torch paths ----------------------------------------------------------------------------
def load_onnx2torch(wheel):
    """onnx2torch, or why not. It imports torchvision (for its NMS and RoIAlign converters)
    when it loads; where torchvision is absent (the GPU machine) a stand-in module lets it
    load, and those two converters, which no model here needs, would fail."""
    if wheel:
        sys.path.insert(0, str(Path(wheel).resolve()))
    if _torchvision() is None:
        import types

        def missing(*args, **kwargs):
            raise NotImplementedError("torchvision is absent: a stand-in module")

        stand_in = types.ModuleType("torchvision")
        stand_in.ops = types.ModuleType("torchvision.ops")
        stand_in.ops.nms = stand_in.ops.roi_align = missing
        sys.modules["torchvision"], sys.modules["torchvision.ops"] = stand_in, stand_in.ops
    try:
        import onnx2torch

        return onnx2torch
    except Exception as error:
        return f"{type(error).__name__}: {error}"


def cuda_sm_backend():
    """The cuda-sm backend on the default device description; where pyyaml is absent (it
    reads config/devices/*.yaml), the same split (gpu 124 + dla 8 SMs) given in code."""
    from hax_conn_core.runtime.backends import get_backend

    try:
        import yaml  # noqa: F401
    except ImportError:
        from hax_conn_core.runtime.device import RuntimeDevice

        device = RuntimeDevice(id="emulated-h200", accelerators=("gpu", "dla"),
                               runtime={"cuda-sm": {"gpu": {"sms": 124}, "dla": {"sms": 8}}})
        return get_backend("cuda-sm", device=device)
    return get_backend("cuda-sm")


def frontend_cuts(graph):
    """Two group boundaries (layer groups need the device descriptions: pyyaml); without
    pyyaml, two of the graph's valid cuts."""
    from hax_conn_core.graph.cuts import valid_cuts

    last = len(graph.layers) - 1
    try:
        from hax_conn_core.graph.grouping import group_layers

        groups = group_layers(graph)
        return "group boundaries", len(groups), two_cuts([g.last for g in groups[:-1]])
    except ImportError:
        cuts = [i for i in valid_cuts(graph) if i < last]
        return "valid cuts (no pyyaml)", None, two_cuts(cuts)


def measure(module, x, device, dtype, replays=REPLAYS):
    """Outputs (float32 numpy), whether a CUDA graph captured (and why not), median ms of
    graph replays and of eager runs."""
    import torch

    result = {"capture": None}
    tx = torch.from_numpy(x).to(device=device, dtype=dtype)
    with torch.no_grad():
        eager = module(tx)
        outs = eager if isinstance(eager, (tuple, list)) else (eager,)
        result["outputs"] = [o.float().cpu().numpy() for o in outs]
        if device != "cuda":
            return result
        times = []
        for _ in range(20):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            module(tx)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        result["eager_ms"] = float(np.median(times[5:]))
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        try:
            with torch.cuda.stream(stream):
                module(tx)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=stream, capture_error_mode="thread_local"):
                    captured = module(tx)
            torch.cuda.synchronize()
        except Exception as error:
            result["capture"] = f"failed: {type(error).__name__}: {str(error)[:300]}"
            try:
                torch.cuda.synchronize()
            except Exception:  # the failed capture's own error again
                pass
            return result
        result["capture"] = "ok"
        graph.replay()
        torch.cuda.synchronize()
        captured = captured if isinstance(captured, (tuple, list)) else (captured,)
        result["graph_outputs"] = [o.float().cpu().numpy() for o in captured]
        times = []
        for _ in range(replays):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            graph.replay()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        result["graph_ms"] = float(np.median(times))
    return result


def rel_error(got, want):
    return float(np.abs(got - want).max() / max(float(np.abs(want).max()), 1e-30))


def torch_paths(name, data, x, reference, device, dtype, onnx2torch, report, ours=True):
    """Our torch path (``ours``) or onnx2torch's on the whole model: coverage, capture,
    agreement, speed."""
    import onnx
    import torch

    from hax_conn_core.runtime.backends.onnx_prepare import prepare, unsupported_ops
    from hax_conn_core.runtime.backends.onnx_torch import build_onnx_module

    model = onnx.load_from_string(data)
    entries = report.setdefault("torch_paths", {})
    tol = FP16_RTOL if dtype == torch.float16 else FP32_RTOL
    candidates = [("ours", lambda: build_onnx_module(
        model, dtype="float16" if dtype == torch.float16 else "float32",
        channels_last=device == "cuda", device=device))] if ours else []
    if not ours and not isinstance(onnx2torch, str):
        folded = prepare(model).model
        candidates += [
            ("onnx2torch", lambda: onnx2torch.convert(onnx.load_from_string(data))),
            ("onnx2torch on our folded model", lambda: onnx2torch.convert(folded))]
    for label, build in candidates:
        entry = {}
        if label == "ours":
            entry["unsupported"] = unsupported_ops(model)
        try:
            started = time.perf_counter()
            module = build()
            if label != "ours":
                module = module.eval().to(device=device, dtype=dtype)
                if device == "cuda":
                    module = module.to(memory_format=torch.channels_last)
            entry["build_s"] = round(time.perf_counter() - started, 2)
            entry.update(measure(module, x, device, dtype))
        except Exception as error:
            entry["error"] = f"{type(error).__name__}: {str(error)[:300]}"
            entries[label] = entry
            continue
        outputs = entry.pop("outputs")
        graph_outputs = entry.pop("graph_outputs", None)
        entry["rel_error"] = max(rel_error(o, r) for o, r in zip(outputs, reference))
        if graph_outputs is not None:
            entry["graph_rel_error"] = max(rel_error(o, r)
                                           for o, r in zip(graph_outputs, reference))
        entry["ok"] = entry["rel_error"] <= tol and entry.get("capture") in (None, "ok")
        entries[label] = entry
        del module
        if device == "cuda":
            torch.cuda.empty_cache()


def ort_split_check(data, graph, frontend, cuts, x, whole, report):
    """Part A then part B on onnxruntime fp32 against the whole, at each cut."""
    import onnx

    from hax_conn_core.runtime.backends.onnxrt import OnnxRunner

    model = onnx.load_from_string(data)
    checks = []
    for cut in cuts:
        if frontend is not None:
            a = frontend.extract_range(graph, 0, cut)
            b = frontend.extract_range(graph, cut + 1, len(graph.layers) - 1)
        else:
            inferred = onnx.shape_inference.infer_shapes(model)
            tensor = onnx_cuts(model)[cut]
            extractor = onnx.utils.Extractor(inferred)
            a = extractor.extract_model(["input"], [tensor])
            b = extractor.extract_model([tensor], ["output"])
        mid = OnnxRunner(a, threads=4).run({"input": x})
        out = OnnxRunner(b, threads=4).run(mid)
        error = float(np.abs(out["output"] - whole).max())
        checks.append({"cut_after": cut, "tensor": list(mid), "max_abs_diff": error,
                       "ok": error <= ORT_SPLIT_ATOL, "a": a, "b": b})
    report["ort_split"] = [{k: v for k, v in c.items() if k not in ("a", "b")}
                           for c in checks]
    return checks


def cuda_sm_check(name, graph, cuts, x, reference, report):
    """Whole and split engines on the cuda-sm partitions (fp16, CUDA graphs)."""
    from hax_conn_core.runtime.backends.base import EngineSpec

    last = len(graph.layers) - 1

    def spec(first, end, acc):
        return EngineSpec(name, graph, {}, "onnx:exported", first, end, acc, "fp16")

    result = {}
    with cuda_sm_backend() as backend:
        result["split"] = backend.split
        whole = backend.build(spec(0, last, "gpu"))
        frame = backend.from_host(x, "gpu")
        launch = whole.run({"input": frame})
        got = backend.to_host(launch.outputs["output"])
        result["whole_rel_error"] = rel_error(got, reference)
        result["whole_gpu_ms"] = launch.elapsed_ms()
        result["whole_ok"] = result["whole_rel_error"] <= FP16_RTOL
        splits = []
        for cut in cuts:
            a = backend.build(spec(0, cut, "gpu"))
            b = backend.build(spec(cut + 1, last, "dla"), inputs_from=a)
            first = a.run({"input": frame})
            second = b.run(first.outputs, wait_for=[first.done])
            out = backend.to_host(second.outputs["output"])
            error = float(np.abs(out - got).max() / max(float(np.abs(got).max()), 1e-30))
            splits.append({"cut_after": cut, "bound_in_place": list(b.bound[0]),
                           "vs_whole_rel": error, "vs_ort_rel": rel_error(out, reference),
                           "a_gpu_ms": first.elapsed_ms(), "b_dla_ms": second.elapsed_ms(),
                           "ok": error <= SPLIT_RTOL})
            a.release()
            b.release()
        result["splits"] = splits
    report["cuda_sm"] = result


def fallback_split(checks, x, reference, device, dtype, report):
    """Without the frontend: each extracted range through onnx_torch on one stream."""
    import torch

    from hax_conn_core.runtime.backends.onnx_torch import build_onnx_module

    half = dtype == torch.float16
    splits = []
    for check in checks:
        a = build_onnx_module(check["a"], "float16" if half else "float32", device=device)
        b = build_onnx_module(check["b"], "float16" if half else "float32", device=device)
        mid = measure(a, x, device, dtype, replays=20)
        (tensor,) = check["tensor"]
        out = measure(b, mid["outputs"][0], device, dtype, replays=20)
        splits.append({"cut_after": check["cut_after"], "capture_a": mid["capture"],
                       "capture_b": out["capture"],
                       "vs_ort_rel": rel_error(out["outputs"][0], reference)})
    report["range_modules"] = splits


def read_through_frontend(frontend, name, data, out, report):
    """The exported model through the ONNX frontend; where the reader refuses it (a shape it
    cannot infer without folding), the model folded by onnx_prepare, and the report says so."""
    from hax_conn_core.errors import ModelError
    from hax_conn_core.runtime.backends.onnx_prepare import prepare

    import onnx

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.onnx"
    path.write_bytes(data)
    try:
        return frontend.load_onnx(path)
    except ModelError as error:
        report["frontend_refused_unfolded"] = str(error)[:400]
        onnx.save(prepare(onnx.load_from_string(data)).model, str(path))
        return frontend.load_onnx(path)
    finally:
        path.unlink()


def write(out: Path, results, meta):
    out.mkdir(parents=True, exist_ok=True)
    (out / "own_models.json").write_text(json.dumps({"meta": meta, "models": results},
                                                    indent=1, default=str))

    def fmt(value, spec=".3g"):
        return "-" if value is None else format(value, spec)

    lines = [f"# Own models on {meta.get('card', 'the CPU')} ({meta['date']})", "",
             f"Models: {meta['models_from']}; torch {meta['torch']}; frontend: "
             f"{meta['frontend']}; onnx2torch: {meta['onnx2torch']}; cuda-sm split: "
             f"{meta.get('split', '-')}.", "",
             "## Torch paths, whole model on the whole card", "",
             "| model | path | unsupported ops | CUDA graph | rel err eager | rel err graph "
             "| eager ms | graph ms |", "|" + " --- |" * 8]
    for name, r in results.items():
        for label, e in r.get("torch_paths", {}).items():
            capture = e.get("capture") or ("-" if "error" not in e else e["error"][:120])
            unsupported = len(e["unsupported"]) if "unsupported" in e else "-"
            lines.append(f"| {name} | {label} | {unsupported} | {capture} | "
                         f"{fmt(e.get('rel_error'))} | {fmt(e.get('graph_rel_error'))} | "
                         f"{fmt(e.get('eager_ms'))} | {fmt(e.get('graph_ms'))} |")
    lines += ["", "## Imported, split, on cuda-sm (fp16, CUDA graphs)", "",
              "| model | nodes (folded) | cuts after | ORT split max abs | cuda-sm whole rel "
              "| whole gpu ms | split vs whole rel | split vs ORT rel | bound in place | "
              "error |", "|" + " --- |" * 10]
    for name, r in results.items():
        cuda = r.get("cuda_sm", {})
        splits = cuda.get("splits", [])
        ort = r.get("ort_split", [])
        lines.append(
            f"| {name} | {r.get('nodes', '-')} ({r.get('ops_after_folding', '-')}) | "
            f"{r.get('cuts_after', '-')} | "
            f"{', '.join(fmt(c['max_abs_diff']) for c in ort) or '-'} | "
            f"{fmt(cuda.get('whole_rel_error'))} | {fmt(cuda.get('whole_gpu_ms'))} | "
            f"{', '.join(fmt(c['vs_whole_rel']) for c in splits) or '-'} | "
            f"{', '.join(fmt(c['vs_ort_rel']) for c in splits) or '-'} | "
            f"{all(c['bound_in_place'] for c in splits) if splits else '-'} | "
            f"{r.get('error', '')[:200]} |")
    refused = [name for name, r in results.items() if "frontend_refused_unfolded" in r]
    if refused:
        lines += ["", f"The frontend refused {', '.join(refused)} as exported (a shape "
                  "inference cannot give without folding); they were read after onnx_prepare "
                  "folded them (the JSON has the message)."]
    lines += ["", f"Tolerances: fp16 vs onnxruntime fp32 rel <= {FP16_RTOL}; fp32 (CPU runs) "
              f"<= {FP32_RTOL}; ORT split max abs <= {ORT_SPLIT_ATOL}; cuda-sm split vs whole "
              f"rel <= {SPLIT_RTOL}. rel = max |diff| / max |reference|. graph ms: median of "
              f"{REPLAYS} CUDA-graph replays; eager ms: median of 15 runs."]
    (out / "own_models.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "."))
    parser.add_argument("--models", nargs="*", help="name prefixes (default: all)")
    parser.add_argument("--onnx2torch-wheel", help="onnx2torch's wheel, put on sys.path")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--max-seconds", type=float, default=210,
                        help="start no further model after this long (device budget)")
    parser.add_argument("--plain", action="store_true",
                        help="the plain-torch models even where torchvision is present")
    args = parser.parse_args(argv)
    import onnx
    import torch

    from hax_conn_core.runtime.backends.onnx_prepare import prepare
    from hax_conn_core.runtime.backends.onnxrt import OnnxRunner

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.float16 if device == "cuda" else torch.float32
    onnx2torch = load_onnx2torch(args.onnx2torch_wheel)
    try:
        from hax_conn_core.graph.frontends import onnx as frontend
    except ImportError:
        frontend = None
    builders, source = make_models(args.models, args.plain)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "torch": torch.__version__, "device": device, "models_from": source,
            "frontend": "graph.frontends.onnx" if frontend else "absent: onnx.utils.Extractor",
            "onnx2torch": onnx2torch if isinstance(onnx2torch, str) else
            getattr(onnx2torch, "__version__", "imported")}
    if device == "cuda":
        meta["card"] = torch.cuda.get_device_name(0)
    out = Path(args.out)
    results = {}
    shape = (1, 3, args.size, args.size)
    x = np.random.default_rng(1234).standard_normal(shape).astype(np.float32)
    began = time.perf_counter()
    for name, build in builders.items():
        report = results.setdefault(name, {})
        if time.perf_counter() - began > args.max_seconds:
            report["error"] = f"skipped: past --max-seconds {args.max_seconds:g}"
            write(out, results, meta)
            continue
        started = time.perf_counter()
        try:
            data = export(build, shape)
            model = onnx.load_from_string(data)
            report["nodes"] = len(model.graph.node)
            report["ops_after_folding"] = len(prepare(model).model.graph.node)
            reference = [OnnxRunner(data, threads=4).run({"input": x})["output"]]
            torch_paths(name, data, x, reference, device, dtype, onnx2torch, report)
            if frontend is not None:
                graph = read_through_frontend(frontend, name, data, out, report)
                report["cuts_from"], report["groups"], cuts = frontend_cuts(graph)
            else:
                graph, cuts = None, two_cuts(list(onnx_cuts(model)))
            report["cuts_after"] = cuts
            checks = ort_split_check(data, graph, frontend, cuts, x, reference[0], report)
            if device == "cuda" and frontend is not None:
                cuda_sm_check(name, graph, cuts, x, reference[0], report)
                meta["split"] = report["cuda_sm"].get("split")
            else:
                fallback_split(checks, x, reference[0], device, dtype, report)
            # last: a capture onnx2torch fails must not touch the checks above
            torch_paths(name, data, x, reference, device, dtype, onnx2torch, report,
                        ours=False)
        except Exception as error:
            report["error"] = f"{type(error).__name__}: {error}"
            report["traceback"] = traceback.format_exc()[-2000:]
        report["seconds"] = round(time.perf_counter() - started, 1)
        print(f"{name}: {report.get('error', 'done')} ({report['seconds']} s)", flush=True)
        write(out, results, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
