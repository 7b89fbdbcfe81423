"""A torch ``nn.Module`` that runs a model graph, whole or a range of its layers.

The torch execution of the ``cuda-sm`` backend (cuda_sm.py builds its engines with it); it
lives with the backends because the graph package imports no backend.
``build_module(graph, weights, first=i + 1, last=j)`` computes exactly what
``onnx_export.export(graph, weights, first=i + 1, last=j)`` does, with the same ``weights``
dict (the caller passes it: ``seeded_weights`` or loaded ones), and the same Caffe semantics
(ceil-mode pooling with Caffe's clip rule and divisor, LRN, BatchNorm scale factor).
``forward(*inputs)`` takes the range's input tensors in ``module.input_names`` order and
returns a tuple in ``module.output_names`` order; ``module.run({name: array})`` is the dict form.

torch is imported inside the functions here, so importing this module costs nothing where
torch is absent (CI); it is tested on the GPU machine
(test/device/runtime/test_torch_module.py).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence

import numpy as np

from hax_conn_core.errors import ModelError, SetupError

if TYPE_CHECKING:  # pragma: no cover
    from hax_conn_core.graph.model import Graph, Layer
    from hax_conn_core.graph.weights import Weights

DTYPES = ("float32", "float16")


def run_on_numpy(module, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Run a graph module (this one's or onnx_torch's: ``input_names``, ``output_names``,
    ``placement``) on numpy inputs: float32 in, placed on its device and dtype; float32 out."""
    torch = _torch()
    device, dtype = module.placement.device, module.placement.dtype
    with torch.no_grad():
        xs = [torch.from_numpy(np.ascontiguousarray(inputs[name], np.float32))
              .to(device=device, dtype=dtype) for name in module.input_names]
        return {name: y.float().cpu().numpy()
                for name, y in zip(module.output_names, module(*xs))}


def _torch():
    try:
        import torch
    except ImportError as error:
        raise SetupError("torch is not installed; the cuda-sm backend needs it "
                         f"(pip install torch) ({error})") from None
    return torch


@functools.lru_cache(maxsize=1)
def _layer_classes() -> SimpleNamespace:
    """The torch module classes, defined on first use so that torch loads only then."""
    torch = _torch()
    F = torch.nn.functional
    nn = torch.nn

    def buffer(module, name, array):
        tensor = None
        if array is not None:
            tensor = torch.from_numpy(np.ascontiguousarray(array, np.float32))
        module.register_buffer(name, tensor)

    class Conv(nn.Module):
        def __init__(self, params, blobs):
            super().__init__()
            buffer(self, "weight", blobs[0])
            buffer(self, "bias", blobs[1] if len(blobs) > 1 else None)
            self.stride, self.pad = tuple(params.stride), tuple(params.pad)
            self.dilation, self.groups = tuple(params.dilation), params.group

        def forward(self, x):
            return F.conv2d(x, self.weight, self.bias, self.stride, self.pad, self.dilation,
                            self.groups)

    class CaffePool(nn.Module):
        """Caffe MAX/AVE pooling: explicit pads, floor-mode pooling, Caffe's AVE divisor."""

        def __init__(self, axes, method):
            super().__init__()
            ah, aw = axes
            self.method = method
            self.kernel, self.stride = (ah.kernel, aw.kernel), (ah.stride, aw.stride)
            self.output = (ah.output, aw.output)
            if method == "MAX":
                # F.pad order: (left, right, top, bottom).
                self.pads = (aw.pad, aw.overhang, ah.pad, ah.overhang)
            else:
                self.pads = (aw.pad, aw.pad + aw.overhang, ah.pad, ah.pad + ah.overhang)
                # avg_pool2d divides by kh*kw; Caffe by the window clipped to in + pad.
                rows = _window_sizes(ah)
                cols = _window_sizes(aw)
                buffer(self, "rescale", (ah.kernel * aw.kernel)
                       / np.outer(rows, cols)[None, None])

        def forward(self, x):
            if self.method == "MAX":
                padded = F.pad(x, self.pads, value=float("-inf"))
                y = F.max_pool2d(padded, self.kernel, self.stride)
            else:
                y = F.avg_pool2d(F.pad(x, self.pads), self.kernel, self.stride)
            y = y[:, :, :self.output[0], :self.output[1]]
            return y if self.method == "MAX" else y * self.rescale

    class GlobalPool(nn.Module):
        def __init__(self, method):
            super().__init__()
            self.method = method

        def forward(self, x):
            if self.method == "MAX":
                return torch.amax(x, dim=(2, 3), keepdim=True)
            return torch.mean(x, dim=(2, 3), keepdim=True)

    class LRNAcross(nn.Module):
        def __init__(self, params):
            super().__init__()
            self.size, self.alpha, self.beta, self.k = (params.local_size, params.alpha,
                                                        params.beta, params.k)

        def forward(self, x):
            half = (self.size - 1) // 2
            square = F.pad(x * x, (0, 0, 0, 0, half, self.size - 1 - half))
            # Sum over a window of `size` channels: avg_pool3d over the channel axis.
            # Mean over a window of `size` channels (avg_pool3d over the channel axis): Caffe's
            # alpha / size * sum.
            mean = F.avg_pool3d(square.unsqueeze(1), (self.size, 1, 1), stride=1).squeeze(1)
            return x * torch.pow(self.k + self.alpha * mean, -self.beta)

    class LRNWithin(nn.Module):
        def __init__(self, params, pool):
            super().__init__()
            self.alpha, self.beta, self.pool = params.alpha, params.beta, pool

        def forward(self, x):
            return x * torch.pow(1.0 + self.alpha * self.pool(x * x), -self.beta)

    class InnerProduct(nn.Module):
        def __init__(self, axis, blobs, out_shape):
            super().__init__()
            buffer(self, "weight", blobs[0])
            buffer(self, "bias", blobs[1] if len(blobs) > 1 else None)
            self.axis, self.out_tail = axis, tuple(out_shape[1:])

        def forward(self, x):
            y = F.linear(torch.flatten(x, self.axis), self.weight, self.bias)
            if self.axis != 1:
                y = y.reshape((x.shape[0],) + self.out_tail)
            return y

    class Affine(nn.Module):
        """x * scale (+ shift), both broadcast: BatchNorm at inference, Scale."""

        def __init__(self, scale, shift, input_scale_shape=None):
            super().__init__()
            buffer(self, "scale", scale)
            buffer(self, "shift", shift)
            self.input_scale_shape = input_scale_shape  # Scale with the scale as a bottom

        def forward(self, x, scale_input=None):
            scale = self.scale if scale_input is None else scale_input.reshape(
                self.input_scale_shape)
            y = x if scale is None else x * scale
            return y if self.shift is None else y + self.shift

    class Eltwise(nn.Module):
        def __init__(self, operation, coeff):
            super().__init__()
            self.operation, self.coeff = operation, tuple(coeff)

        def forward(self, *xs):
            if self.operation == "SUM":
                coeff = self.coeff or (1.0,) * len(xs)
                y = xs[0] * coeff[0] if coeff[0] != 1.0 else xs[0]
                for x, c in zip(xs[1:], coeff[1:]):
                    y = y + (x * c if c != 1.0 else x)
                return y
            y = xs[0]
            for x in xs[1:]:
                y = y * x if self.operation == "PROD" else torch.maximum(y, x)
            return y

    class Lambda(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, *xs):
            return self.fn(*xs)

    class GraphModule(nn.Module):
        """Runs layer modules in graph order over a name -> tensor table."""

        def __init__(self, steps, wiring, input_names, output_names, channels_last):
            super().__init__()
            self.steps = nn.ModuleList(steps)
            self.wiring = wiring  # per step: (bottoms, tops, tensors to free after it)
            self.input_names = tuple(input_names)
            self.output_names = tuple(output_names)
            self.channels_last = channels_last
            # Follows .to() / .half(): where and in what dtype run() puts its inputs, also
            # for a range without weights (pooling only).
            self.register_buffer("placement", torch.zeros(0))

        def forward(self, *inputs):
            if len(inputs) != len(self.input_names):
                raise ValueError(f"expected {len(self.input_names)} inputs "
                                 f"{self.input_names}; got {len(inputs)}")
            table = {}
            for name, x in zip(self.input_names, inputs):
                if self.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                table[name] = x
            for step, (bottoms, tops, free) in zip(self.steps, self.wiring):
                result = step(*[table[name] for name in bottoms])
                for top in tops:
                    table[top] = result
                for name in free:
                    del table[name]
            return tuple(table[name] for name in self.output_names)

        def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
            """Dict form: name -> numpy array in, name -> float32 numpy array out."""
            return run_on_numpy(self, inputs)

    return SimpleNamespace(**{cls.__name__: cls for cls in (
        Conv, CaffePool, GlobalPool, LRNAcross, LRNWithin, InnerProduct, Affine, Eltwise,
        Lambda, GraphModule)})


def _window_sizes(axis) -> np.ndarray:
    """Caffe AVE divisor along one axis: each window clipped to ``size + pad``."""
    starts = np.arange(axis.output) * axis.stride - axis.pad
    ends = np.minimum(starts + axis.kernel, axis.size + axis.pad)
    return (ends - starts).astype(np.float64)


def _layer_module(graph: "Graph", layer: "Layer", blobs: List[np.ndarray]):
    from hax_conn_core.graph.onnx_export import pool_axes
    from hax_conn_core.graph.weights import batchnorm_statistics, scale_blob_shape

    torch = _torch()
    classes = _layer_classes()
    p = layer.params
    kind = layer.type
    in_shape = tuple(graph.shape(layer.bottoms[0])) if layer.bottoms else ()
    if kind == "Convolution":
        if len(in_shape) != 4:
            raise ModelError(f"{layer.where()}: only 2-D convolution is supported")
        return classes.Conv(p, blobs)
    if kind == "Pooling":
        if p.method not in ("MAX", "AVE"):
            raise ModelError(f"{layer.where()}: pooling method {p.method!r}; expected MAX "
                             "or AVE")
        if p.global_pooling:
            return classes.GlobalPool(p.method)
        return classes.CaffePool(pool_axes(in_shape, p, layer, p.method == "AVE"), p.method)
    if kind == "LRN":
        if p.local_size % 2 != 1:
            raise ModelError(f"{layer.where()}: LRN local_size {p.local_size}; Caffe "
                             "supports only odd values")
        if p.norm_region == "ACROSS_CHANNELS":
            return classes.LRNAcross(p)
        if p.norm_region == "WITHIN_CHANNEL":
            half = (p.local_size - 1) // 2
            window = SimpleNamespace(kernel=(p.local_size,) * 2, stride=(1, 1),
                                     pad=(half, half))
            pool = classes.CaffePool(pool_axes(in_shape, window, layer, True), "AVE")
            return classes.LRNWithin(p, pool)
        raise ModelError(f"{layer.where()}: LRN norm_region {p.norm_region!r}; expected "
                         "ACROSS_CHANNELS or WITHIN_CHANNEL")
    if kind == "InnerProduct":
        return classes.InnerProduct(p.axis % len(in_shape), blobs,
                                    graph.shape(layer.tops[0]))
    if kind == "BatchNorm":
        mean, var = batchnorm_statistics(blobs)
        scale = 1.0 / np.sqrt(var.astype(np.float64) + float(p.eps))
        shape = (len(mean),) + (1,) * (len(in_shape) - 2)
        return classes.Affine(scale.reshape(shape), (-mean * scale).reshape(shape))
    if kind == "Scale":
        rank = len(in_shape)
        blob_shape = scale_blob_shape(graph, layer)
        shape = tuple(blob_shape) + (1,) * (rank - p.axis % rank - len(blob_shape))
        gamma = blobs[0].reshape(shape) if len(layer.bottoms) == 1 else None
        beta = blobs[-1].reshape(shape) if p.bias_term else None
        return classes.Affine(gamma, beta, shape)
    if kind == "Eltwise":
        if p.operation not in ("SUM", "PROD", "MAX"):
            raise ModelError(f"{layer.where()}: Eltwise operation {p.operation!r}; expected "
                             "SUM, PROD or MAX")
        if p.coeff and (p.operation != "SUM" or len(p.coeff) != len(layer.bottoms)):
            raise ModelError(f"{layer.where()}: coeff needs operation SUM and one value per "
                             "bottom")
        return classes.Eltwise(p.operation, p.coeff)
    if kind == "Concat":
        axis = p.axis % len(in_shape)
        return classes.Lambda(lambda *xs: torch.cat(xs, dim=axis))
    if kind == "ReLU":
        slope = float(p.negative_slope)
        if slope:
            return classes.Lambda(lambda x: torch.nn.functional.leaky_relu(x, slope))
        return classes.Lambda(torch.relu)
    if kind in ("Dropout", "Split"):
        return classes.Lambda(lambda x: x)
    if kind == "Softmax":
        axis = p.axis % len(in_shape)
        return classes.Lambda(lambda x: torch.softmax(x, dim=axis))
    if kind == "Flatten":
        tail = tuple(graph.shape(layer.tops[0])[1:])
        return classes.Lambda(lambda x: x.reshape((x.shape[0],) + tail))
    raise ModelError(f"{graph.name}: {layer.where()} has type {kind!r}, which the torch "
                     "module builder does not support")


def build_module(graph: "Graph", weights: "Weights",
                 first: Optional[int] = None, last: Optional[int] = None,
                 outputs: Optional[Sequence[str]] = None, extra_outputs: Sequence[str] = (),
                 dtype: str = "float32", channels_last: bool = False, device=None):
    """An eval-mode ``nn.Module`` for layers ``first .. last`` of ``graph`` (default: all).

    Same arguments and defaults as :func:`onnx_export.export` for the range; ``weights`` is
    the whole graph's weights dict (required: seeded or loaded by the caller); ``dtype`` is
    ``"float32"`` or ``"float16"``; ``channels_last`` stores 4-D weights and activations NHWC
    (faster convolutions on tensor cores); ``device`` e.g. ``"cuda"``.
    """
    from hax_conn_core.graph.onnx_export import layer_range
    from hax_conn_core.graph.weights import blob_shapes, check_weights

    if dtype not in DTYPES:
        raise ModelError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if weights is None:
        raise ModelError(f"{graph.name}: build_module needs the graph's weights, e.g. "
                         "graph.weights.seeded_weights(graph, 0, run=run_onnx) or "
                         "graph.weights.load_weights(path, graph)")
    torch = _torch()
    chosen = layer_range(graph, first, last, outputs, extra_outputs)
    check_weights(graph, weights, chosen.layers)
    last_use: Dict[str, int] = {}
    for position, layer in enumerate(chosen.layers):
        for name in layer.bottoms:
            last_use[name] = position
    keep = set(chosen.outputs)
    steps, wiring = [], []
    for position, layer in enumerate(chosen.layers):
        shapes = blob_shapes(graph, layer)
        blobs = [np.asarray(blob, np.float32).reshape(shape)
                 for blob, shape in zip(weights.get(layer.name, []), shapes)]
        steps.append(_layer_module(graph, layer, blobs))
        free = tuple(sorted({name for name in layer.bottoms
                             if last_use[name] == position and name not in keep}))
        wiring.append((tuple(layer.bottoms), tuple(layer.tops), free))
    module = _layer_classes().GraphModule(steps, wiring, chosen.inputs, chosen.outputs,
                                          channels_last)
    module.eval()
    if dtype == "float16":
        module = module.half()
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if device is not None:
        module = module.to(device)
    return module
