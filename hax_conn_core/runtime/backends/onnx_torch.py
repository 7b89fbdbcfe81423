"""A torch ``nn.Module`` that runs an imported ONNX model (whole, or an extracted layer range).

The torch path of the cuda-sm backend for graphs that came from ONNX (cuda_sm.py builds their
engines here; Caffe-style graphs go through torch_module.py). ``build_onnx_module(model)``:

1. :func:`onnx_prepare.prepare`: static shapes everywhere, shape computations folded into
   constants (what CUDA-graph capture needs: nothing computed on, or read back to, the host
   while an engine runs);
2. a node the torch path lacks is a BackendError naming the node and op type, before any
   torch work (``onnx_prepare.check_supported``);
3. one step per node, in node order, each a small ``nn.Module``: its build-time arguments
   (reshape targets, slice bounds, resize sizes, pads, axes) are Python values taken from the
   folded constants and the inferred shapes; tensor constants it computes with (weights,
   biases, broadcast operands) are buffers, so that ``.half()`` / ``.to()`` move them.

The module has the interface of torch_module.GraphModule: ``input_names``, ``output_names``,
``forward(*inputs)`` -> tuple in ``output_names`` order, ``run({name: array})``; plus
``input_shapes`` / ``output_shapes`` (static, from ONNX shape inference). torch is imported
inside the functions, so importing this module needs none (CI).
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from hax_conn_core.errors import BackendError, ModelError, SetupError
from hax_conn_core.runtime.backends.onnx_prepare import (PreparedModel, _attr, _text,
                                                         check_supported, prepare)
from hax_conn_core.runtime.backends.torch_module import run_on_numpy

DTYPES = ("float32", "float16")


def _torch():
    try:
        import torch
    except ImportError as error:
        raise SetupError("torch is not installed; the cuda-sm backend needs it "
                         f"(pip install torch) ({error})") from None
    return torch


class _Node:
    """What a builder reads of one ONNX node: attributes, shapes and constant inputs."""

    def __init__(self, node, prepared: PreparedModel):
        self.node, self.prepared = node, prepared
        self.op = node.op_type
        self.opset = prepared.opset

    def attr(self, name, default=None):
        value = _attr(self.node, name, default)
        return _text(value) if isinstance(value, bytes) else value

    def has(self, k: int) -> bool:
        return len(self.node.input) > k and bool(self.node.input[k])

    def const(self, k: int, default=None) -> Optional[np.ndarray]:
        """Input ``k`` as a constant (a build-time argument); ``default`` where absent."""
        if not self.has(k):
            return default
        name = self.node.input[k]
        if name not in self.prepared.constants:
            raise BackendError(f"node {self.node.name!r} ({self.op}): input {k} ({name!r}) "
                               "is computed at run time; the torch path needs it constant "
                               "(static shapes, CUDA graphs)")
        return self.prepared.constants[name]

    def shape(self, name_or_k) -> Tuple[int, ...]:
        name = self.node.input[name_or_k] if isinstance(name_or_k, int) else name_or_k
        return self.prepared.shapes[name]

    @property
    def out_shape(self) -> Tuple[int, ...]:
        return self.prepared.shapes[self.node.output[0]]

    @property
    def rank(self) -> int:
        return len(self.shape(0))


@functools.lru_cache(maxsize=1)
def _classes() -> SimpleNamespace:
    torch = _torch()
    nn = torch.nn

    class Step(nn.Module):
        """One node: ``fn(*operands)``; operands are run-time tensors or constant buffers."""

        def __init__(self, fn, operands: Sequence, constants: Mapping[int, np.ndarray]):
            super().__init__()
            self.fn = fn
            self.operands = tuple(operands)  # per operand: ("x", k) run-time, ("c", name)
            for index, value in constants.items():
                array = np.ascontiguousarray(value)
                if array.dtype.kind == "f":
                    array = array.astype(np.float32)
                self.register_buffer(f"c{index}", torch.from_numpy(array.copy()))

        def forward(self, *xs):
            return self.fn(*[xs[k] if kind == "x" else getattr(self, k)
                             for kind, k in self.operands])

    class OnnxModule(nn.Module):
        """Steps in node order over a name -> tensor table (torch_module.GraphModule's shape)."""

        def __init__(self, steps, wiring, prepared: PreparedModel, channels_last: bool):
            super().__init__()
            self.steps = nn.ModuleList(steps)
            self.wiring = wiring  # per step: (run-time inputs, outputs, tensors to free)
            self.input_names = tuple(prepared.inputs)
            self.output_names = tuple(prepared.outputs)
            self.input_shapes = {n: prepared.shapes[n] for n in self.input_names}
            self.output_shapes = {n: prepared.shapes[n] for n in self.output_names}
            self.channels_last = channels_last
            self.register_buffer("placement", torch.zeros(0))
            # Graph outputs that folding made constants (rare): returned as buffers.
            self.constant_outputs = [n for n in self.output_names if n in prepared.constants]
            for index, name in enumerate(self.constant_outputs):
                self.register_buffer(f"out{index}", torch.from_numpy(
                    np.ascontiguousarray(prepared.constants[name]).copy()))

        def forward(self, *inputs):
            if len(inputs) != len(self.input_names):
                raise ValueError(f"expected {len(self.input_names)} inputs "
                                 f"{self.input_names}; got {len(inputs)}")
            table = {}
            for name, x in zip(self.input_names, inputs):
                if self.channels_last and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                table[name] = x
            for index, name in enumerate(self.constant_outputs):
                table[name] = getattr(self, f"out{index}")
            for step, (names, tops, free) in zip(self.steps, self.wiring):
                result = step(*[table[name] for name in names])
                if len(tops) == 1:
                    table[tops[0]] = result
                else:
                    table.update(zip(tops, result))
                for name in free:
                    del table[name]
            return tuple(table[name] for name in self.output_names)

        def run(self, inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
            """Dict form: name -> numpy array in, name -> float32 numpy array out."""
            return run_on_numpy(self, inputs)

    return SimpleNamespace(Step=Step, OnnxModule=OnnxModule)


# --- builders: node -> (fn, operand input positions) ----------------------------------------
# A builder returns ``fn`` and the positions of the node's inputs that ``fn`` takes as
# tensors (the others it read at build time through ``n.const``). Default: input 0 only.

def _pairs(pads: Sequence[int]) -> List[Tuple[int, int]]:
    half = len(pads) // 2
    return [(int(pads[i]), int(pads[i + half])) for i in range(half)]


def _torch_pad(pairs: Sequence[Tuple[int, int]]) -> Tuple[int, ...]:
    """ONNX per-axis (begin, end) pairs, first spatial axis first -> F.pad's order (last
    axis first)."""
    out: List[int] = []
    for begin, end in reversed(list(pairs)):
        out += [begin, end]
    return tuple(out)


def _spatial_pads(n: _Node, kernel, strides, dilations) -> List[Tuple[int, int]]:
    auto = n.attr("auto_pad", "NOTSET")
    spatial = n.shape(0)[2:]
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pairs = []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-size // s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, large = total // 2, total - total // 2
            pairs.append((small, large) if auto == "SAME_UPPER" else (large, small))
        return pairs
    if auto == "VALID":
        return [(0, 0)] * len(spatial)
    return _pairs(n.attr("pads", [0] * (2 * len(spatial))))


def _conv_attributes(n: _Node):
    """(spatial dims, kernel, strides, dilations, groups) of a Conv or ConvTranspose node."""
    weight = n.const(1)
    spatial = weight.ndim - 2
    return (spatial, tuple(weight.shape[2:]), tuple(n.attr("strides", [1] * spatial)),
            tuple(n.attr("dilations", [1] * spatial)), int(n.attr("group", 1)))


def _conv(n: _Node):
    F = _torch().nn.functional
    spatial, kernel, strides, dilations, groups = _conv_attributes(n)
    pairs = _spatial_pads(n, kernel, strides, dilations)
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[spatial]
    symmetric = all(b == e for b, e in pairs)
    padding = tuple(b for b, _ in pairs) if symmetric else 0
    extra = None if symmetric else _torch_pad(pairs)

    def fn(x, w, b=None):
        if extra is not None:
            x = F.pad(x, extra)
        return conv(x, w, b, strides, padding, dilations, groups)

    return fn, [0, 1, 2] if n.has(2) else [0, 1]


def _conv_transpose(n: _Node):
    F = _torch().nn.functional
    spatial, kernel, strides, dilations, groups = _conv_attributes(n)
    conv = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[spatial]
    if n.attr("auto_pad", "NOTSET") in ("NOTSET", "VALID"):
        pairs = _pairs(n.attr("pads", [0] * (2 * spatial)))
    else:  # SAME_*: the output is input * stride; where the pads go is cropped below
        pairs = [(0, 0)] * spatial
    padding, output_padding, crop = [], [], []
    for size, out, k, s, d, (begin, _) in zip(n.shape(0)[2:], n.out_shape[2:], kernel,
                                              strides, dilations, pairs):
        natural = (size - 1) * s - 2 * begin + d * (k - 1) + 1
        if n.attr("auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
            total = natural - out
            begin = total // 2 if n.attr("auto_pad") == "SAME_UPPER" else total - total // 2
            natural, begin = natural, begin
            padding.append(0)
            output_padding.append(0)
            crop.append((begin, begin + out))
            continue
        delta = out - natural
        padding.append(begin)
        if 0 <= delta < max(s, d):
            output_padding.append(delta)
            crop.append(None)
        else:
            output_padding.append(0)
            crop.append((0, out))
    index = tuple(slice(None) if c is None else slice(*c) for c in crop)

    def fn(x, w, b=None):
        y = conv(x, w, b, strides, tuple(padding), tuple(output_padding), groups, dilations)
        return y[(slice(None), slice(None)) + index] if any(c is not None for c in crop) \
            else y

    return fn, [0, 1, 2] if n.has(2) else [0, 1]


def _batchnorm(n: _Node):
    scale, bias, mean, var = (n.const(k).astype(np.float64) for k in (1, 2, 3, 4))
    factor = scale / np.sqrt(var + float(n.attr("epsilon", 1e-5)))
    shape = (-1,) + (1,) * (n.rank - 2)
    n.prepared.constants[f"{n.node.output[0]}:scale"] = factor.reshape(shape)
    n.prepared.constants[f"{n.node.output[0]}:shift"] = (bias - mean * factor).reshape(shape)
    return (lambda x, a, b: x * a + b), [0, f"{n.node.output[0]}:scale",
                                         f"{n.node.output[0]}:shift"]


def _pool(n: _Node):
    torch = _torch()
    F = torch.nn.functional
    kernel = tuple(n.attr("kernel_shape"))
    spatial = len(kernel)
    strides = tuple(n.attr("strides", [1] * spatial))
    dilations = tuple(n.attr("dilations", [1] * spatial))
    pairs = _spatial_pads(n, kernel, strides, dilations)
    # Extra padding at the end so that floor-mode pooling gives ONNX's output size (ceil_mode
    # and asymmetric pads alike); the output is cut to that size.
    full = []
    for size, out, k, s, d, (begin, end) in zip(n.shape(0)[2:], n.out_shape[2:], kernel,
                                                strides, dilations, pairs):
        needed = (out - 1) * s + (k - 1) * d + 1
        full.append((begin, max(end, needed - size - begin)))
    cut = tuple(slice(0, out) for out in n.out_shape[2:])
    index = (slice(None), slice(None)) + cut
    if n.op == "MaxPool":
        pool = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[spatial]
        pad = _torch_pad(full)
        return (lambda x: pool(F.pad(x, pad, value=float("-inf")), kernel, strides, 0,
                               dilations)[index]), [0]
    if any(d != 1 for d in dilations):
        raise BackendError(f"node {n.node.name!r} (AveragePool): dilations {dilations}; the "
                           "torch path averages undilated windows only")
    pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[spatial]
    pad = _torch_pad(full)
    # Divisor per output position: windows counted over the input (count_include_pad=0) or
    # the input and its declared pads (=1), never the extra end padding.
    mask = np.zeros(tuple(s + b + e for s, (b, e) in zip(n.shape(0)[2:], full)), np.float32)
    counted = tuple(slice(0 if n.attr("count_include_pad", 0) else b,
                          b + s + (p[1] if n.attr("count_include_pad", 0) else 0))
                    for s, (b, _), p in zip(n.shape(0)[2:], full, pairs))
    mask[counted] = 1.0
    with torch.no_grad():
        share = pool(torch.from_numpy(mask)[None, None], kernel, strides, 0)[index]
    name = f"{n.node.output[0]}:divisor"
    n.prepared.constants[name] = (1.0 / share.numpy().astype(np.float64))
    return (lambda x, r: pool(F.pad(x, pad), kernel, strides, 0)[index] * r), [0, name]


def _lrn(n: _Node):
    F = _torch().nn.functional
    size = int(n.attr("size"))
    alpha, beta = float(n.attr("alpha", 1e-4)), float(n.attr("beta", 0.75))
    bias = float(n.attr("bias", 1.0))
    front, back = (size - 1) // 2, size - 1 - (size - 1) // 2
    pad = (0, 0) * (n.rank - 2) + (front, back)

    def fn(x):
        square = F.pad(x * x, pad)
        window = F.avg_pool1d(square.flatten(2).transpose(1, 2), size, 1).transpose(1, 2)
        return x * (bias + alpha * window.reshape(x.shape)) ** -beta

    return fn, [0]


def _resize(n: _Node):
    torch = _torch()
    F = torch.nn.functional
    rank = n.rank
    in_shape, out_shape = n.shape(0), n.out_shape
    if tuple(in_shape[:2]) != tuple(out_shape[:2]):
        raise BackendError(f"node {n.node.name!r} ({n.op}): resizes the batch or channel axis "
                           f"({in_shape} -> {out_shape}); the torch path resizes spatial axes")
    if n.op == "Upsample":
        scales = n.const(1) if n.has(1) else np.array(n.attr("scales"), np.float32)
        transform, nearest = "asymmetric", "floor"
    else:
        if n.opset < 11:
            scales = n.const(1)
        else:
            scales = n.const(2, np.zeros(0, np.float32))
        transform = n.attr("coordinate_transformation_mode", "half_pixel")
        nearest = n.attr("nearest_mode", "round_prefer_floor")
    scales = np.asarray(scales, np.float64).ravel()
    if scales.size == 0:  # sizes given: the scale is out / in
        scales = np.array([o / i for o, i in zip(out_shape, in_shape)], np.float64)
    size = tuple(out_shape[2:])
    spatial_scales = [float(s) for s in scales[2:]]
    mode = n.attr("mode", "nearest")
    if mode == "linear":
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[rank - 2]
        if transform == "align_corners":
            return (lambda x: F.interpolate(x, size=size, mode=torch_mode,
                                            align_corners=True)), [0]
        # torch's align_corners=False is half_pixel (also for an output of size 1, where
        # pytorch_half_pixel differs): from the sizes when they give ONNX's scales, else
        # from the scales themselves.
        if transform == "half_pixel" or (transform == "pytorch_half_pixel"
                                         and 1 not in size):
            if _scales_match(in_shape, out_shape, spatial_scales):
                return (lambda x: F.interpolate(x, size=size, mode=torch_mode,
                                                align_corners=False)), [0]
            return (lambda x: F.interpolate(x, scale_factor=spatial_scales, mode=torch_mode,
                                            align_corners=False,
                                            recompute_scale_factor=False)), [0]
        return _separable_linear(n, in_shape, out_shape, scales, transform)
    # nearest: source index per output position along each spatial axis, exactly as ONNX
    # defines it (every coordinate transform and rounding mode), gathered with index_select.
    indices = []
    for axis in range(2, rank):
        source = _source_coordinates(out_shape[axis], in_shape[axis], scales[axis], transform)
        rounded = {"round_prefer_floor": np.ceil(source - 0.5),
                   "round_prefer_ceil": np.floor(source + 0.5),
                   "floor": np.floor(source), "ceil": np.ceil(source)}[nearest]
        indices.append(np.clip(rounded, 0, in_shape[axis] - 1).astype(np.int64))
    integer = [out_shape[a] % in_shape[a] == 0 and np.array_equal(
        indices[a - 2], np.arange(out_shape[a]) // (out_shape[a] // in_shape[a]))
        for a in range(2, rank)]
    if all(integer):  # a whole-number upsample: torch's own nearest is that exactly
        return (lambda x: F.interpolate(x, size=size, mode="nearest")), [0]
    names = []
    for axis, index in zip(range(2, rank), indices):
        name = f"{n.node.output[0]}:index{axis}"
        n.prepared.constants[name] = index
        names.append(name)
    axes = tuple(range(2, rank))

    def fn(x, *index):
        for axis, idx in zip(axes, index):
            x = x.index_select(axis, idx)
        return x

    return fn, [0] + names


def _scales_match(in_shape, out_shape, scales) -> bool:
    """Whether torch's size-based scale (in / out) is ONNX's 1 / scale on every axis."""
    return all(abs(o / i - s) < 1e-9 for i, o, s in zip(in_shape[2:], out_shape[2:], scales))


def _source_coordinates(out: int, size: int, scale: float, transform: str) -> np.ndarray:
    x = np.arange(out, dtype=np.float64)
    if transform == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if transform == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out > 1 else np.zeros(out)
    if transform == "align_corners":
        return x * (size - 1) / (out - 1) if out > 1 else np.zeros(out)
    if transform == "half_pixel_symmetric":
        adjustment = out / (scale * size)
        center = size / 2
        offset = center * (1 - adjustment)
        return offset + (x + 0.5) / scale - 0.5
    return x / scale  # asymmetric


def _separable_linear(n: _Node, in_shape, out_shape, scales, transform):
    """Linear resize for the transforms torch lacks: one interpolation matrix per axis."""
    names = []
    for axis in range(2, len(in_shape)):
        source = np.clip(_source_coordinates(out_shape[axis], in_shape[axis], scales[axis],
                                             transform), 0, in_shape[axis] - 1)
        low = np.floor(source).astype(np.int64)
        high = np.minimum(low + 1, in_shape[axis] - 1)
        weight = source - low
        matrix = np.zeros((out_shape[axis], in_shape[axis]), np.float64)
        matrix[np.arange(out_shape[axis]), low] += 1 - weight
        matrix[np.arange(out_shape[axis]), high] += weight
        name = f"{n.node.output[0]}:linear{axis}"
        n.prepared.constants[name] = matrix
        names.append(name)
    rank = len(in_shape)

    def fn(x, *matrices):
        for axis, matrix in zip(range(2, rank), matrices):
            x = (x.movedim(axis, -1) @ matrix.t()).movedim(-1, axis)
        return x

    return fn, [0] + names


def _slice(n: _Node):
    shape = n.shape(0)
    if n.opset < 10:
        starts, ends = n.attr("starts"), n.attr("ends")
        axes, steps = n.attr("axes", list(range(len(starts)))), [1] * len(starts)
    else:
        starts, ends = n.const(1).tolist(), n.const(2).tolist()
        axes = n.const(3, np.arange(len(starts))).tolist()
        steps = n.const(4, np.ones(len(starts), np.int64)).tolist()
    index: List = [slice(None)] * len(shape)
    gathers = []
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = int(axis) % len(shape)
        chosen = np.arange(shape[axis])[slice(int(start), int(end), int(step))]
        if step > 0:
            index[axis] = slice(int(chosen[0]), int(chosen[-1]) + 1, int(step)) \
                if len(chosen) else slice(0, 0)
        else:  # torch has no negative steps: gather the indices
            name = f"{n.node.output[0]}:index{axis}"
            n.prepared.constants[name] = chosen.astype(np.int64)
            gathers.append((axis, name))
    index_t = tuple(index)

    def fn(x, *indices):
        x = x[index_t]
        for (axis, _), idx in zip(gathers, indices):
            x = x.index_select(axis, idx)
        return x

    return fn, [0] + [name for _, name in gathers]


def _split(n: _Node):
    torch = _torch()
    axis = int(n.attr("axis", 0)) % n.rank
    sizes = [n.prepared.shapes[name][axis] for name in n.node.output]
    return (lambda x: torch.split(x, sizes, dim=axis)), [0]


def _pad(n: _Node):
    F = _torch().nn.functional
    rank = n.rank
    if n.opset < 11:
        pads, value = n.attr("pads"), float(n.attr("value", 0.0))
        axes = list(range(rank))
    else:
        pads = n.const(1).tolist()
        value = float(n.const(2, np.zeros(1)).ravel()[0]) if n.has(2) else 0.0
        axes = [int(a) % rank for a in n.const(3, np.arange(rank)).tolist()]
    pairs = dict(zip(axes, _pairs(pads)))
    full = [pairs.get(a, (0, 0)) for a in range(rank)]
    first = next((a for a in range(rank) if full[a] != (0, 0)), rank)
    pad = _torch_pad(full[first:])
    mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[
        n.attr("mode", "constant")]
    if mode == "constant":
        return (lambda x: F.pad(x, pad, value=value)), [0]
    return (lambda x: F.pad(x, pad, mode=mode)), [0]


def _reduce(n: _Node):
    torch = _torch()
    rank = n.rank
    if n.opset >= 18 or (n.op == "ReduceSum" and n.opset >= 13):
        axes = n.const(1, None)
        axes = None if axes is None else axes.tolist()
    else:
        axes = n.attr("axes")
    if not axes:
        if n.attr("noop_with_empty_axes", 0):
            return (lambda x: x), [0]
        axes = list(range(rank))
    dims = tuple(int(a) % rank for a in axes)
    keep = bool(n.attr("keepdims", 1))
    fn = {"ReduceMean": lambda x: torch.mean(x, dim=dims, keepdim=keep),
          "ReduceSum": lambda x: torch.sum(x, dim=dims, keepdim=keep),
          "ReduceMax": lambda x: torch.amax(x, dim=dims, keepdim=keep)}[n.op]
    return fn, [0]


def _softmax(n: _Node):
    torch = _torch()
    rank = n.rank
    default = -1 if n.opset >= 13 else 1
    axis = int(n.attr("axis", default)) % rank
    op = torch.softmax if n.op == "Softmax" else torch.log_softmax
    if n.opset >= 13 or axis == rank - 1:
        return (lambda x: op(x, dim=axis)), [0]
    # opset < 13: the input coerced to 2-D at axis
    shape = n.shape(0)
    flat = (int(np.prod(shape[:axis])), -1)
    return (lambda x: op(x.reshape(flat), dim=1).reshape(shape)), [0]


def _gemm(n: _Node):
    torch = _torch()
    alpha, beta = float(n.attr("alpha", 1.0)), float(n.attr("beta", 1.0))
    trans_a, trans_b = bool(n.attr("transA", 0)), bool(n.attr("transB", 0))
    F = torch.nn.functional
    if not trans_a and trans_b and alpha == 1.0 and beta == 1.0:  # torch.nn.Linear's form
        return (lambda a, b, c=None: F.linear(a, b, c)), [0, 1, 2] if n.has(2) else [0, 1]

    def fn(a, b, c=None):
        y = (a.t() if trans_a else a) @ (b.t() if trans_b else b)
        y = y * alpha if alpha != 1.0 else y
        return y if c is None else y + (c * beta if beta != 1.0 else c)

    return fn, [0, 1, 2] if n.has(2) else [0, 1]


def _clip(n: _Node):
    torch = _torch()
    if n.opset < 11:
        low, high = n.attr("min", None), n.attr("max", None)
    else:
        low = n.const(1).item() if n.has(1) else None
        high = n.const(2).item() if n.has(2) else None
    if low == 0.0 and high == 6.0:
        return torch.nn.functional.relu6, [0]
    return (lambda x: torch.clamp(x, low, high)), [0]


def _gather(n: _Node):
    indices = n.const(1).astype(np.int64)
    axis = int(n.attr("axis", 0)) % n.rank
    size = n.shape(0)[axis]
    name = f"{n.node.output[0]}:indices"
    n.prepared.constants[name] = np.where(indices < 0, indices + size, indices).ravel()
    out = n.out_shape
    return (lambda x, idx: x.index_select(axis, idx).reshape(out)), [0, name]


def _reshaped(n: _Node):
    out = n.out_shape
    return (lambda x: x.reshape(out)), [0]


def _transpose(n: _Node):
    perm = tuple(n.attr("perm", list(reversed(range(n.rank)))))
    return (lambda x: x.permute(perm)), [0]


def _expand(n: _Node):
    out = n.out_shape
    return (lambda x: x.expand(out)), [0]


def _tile(n: _Node):
    repeats = tuple(int(r) for r in n.const(1).tolist())
    return (lambda x: x.repeat(repeats)), [0]


def _concat(n: _Node):
    torch = _torch()
    axis = int(n.attr("axis")) % len(n.out_shape)
    return (lambda *xs: torch.cat(xs, dim=axis)), list(range(len(n.node.input)))


def _cast(n: _Node):
    return (lambda x: x), [0]  # float -> float: the module computes in one float type


def _layer_norm(n: _Node):
    F = _torch().nn.functional
    axis = int(n.attr("axis", -1)) % n.rank
    eps = float(n.attr("epsilon", 1e-5))
    shape = tuple(n.shape(0)[axis:])
    return (lambda x, w, b=None: F.layer_norm(x, shape, w.reshape(shape),
                                              None if b is None else b.reshape(shape), eps)), \
        [0, 1, 2] if n.has(2) else [0, 1]


def _simple(fn: Callable, operands=(0,)):
    return lambda n: (fn(n), list(operands) if operands != "all" else
                      list(range(len(n.node.input))))


def _elementwise(name: str):
    def build(n: _Node):
        torch = _torch()
        op = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div,
              "Pow": torch.pow, "Max": torch.maximum, "Min": torch.minimum,
              "Sum": torch.add}[name]
        count = len(n.node.input)
        if count == 2:
            return op, [0, 1]

        def fold(*xs):
            y = xs[0]
            for x in xs[1:]:
                y = op(y, x)
            return y

        return fold, list(range(count))

    return build


def _builders() -> Dict[str, Callable]:
    torch = _torch()
    F = torch.nn.functional
    return {
        "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batchnorm,
        "MaxPool": _pool, "AveragePool": _pool, "LRN": _lrn, "Resize": _resize,
        "Upsample": _resize, "Slice": _slice, "Split": _split, "Pad": _pad,
        "ReduceMean": _reduce, "ReduceSum": _reduce, "ReduceMax": _reduce,
        "Softmax": _softmax, "LogSoftmax": _softmax, "Gemm": _gemm, "Clip": _clip,
        "Gather": _gather, "Reshape": _reshaped, "Flatten": _reshaped, "Squeeze": _reshaped,
        "Unsqueeze": _reshaped, "Transpose": _transpose, "Expand": _expand, "Tile": _tile,
        "Concat": _concat, "Cast": _cast, "LayerNormalization": _layer_norm,
        **{op: _elementwise(op) for op in ("Add", "Sub", "Mul", "Div", "Pow", "Max", "Min",
                                           "Sum")},
        "MatMul": _simple(lambda n: torch.matmul, (0, 1)),
        "PRelu": _simple(lambda n: lambda x, s: torch.where(x >= 0, x, x * s), (0, 1)),
        "Relu": _simple(lambda n: torch.relu),
        "LeakyRelu": _simple(lambda n: functools.partial(
            F.leaky_relu, negative_slope=float(n.attr("alpha", 0.01)))),
        "Sigmoid": _simple(lambda n: torch.sigmoid), "Tanh": _simple(lambda n: torch.tanh),
        "HardSigmoid": _simple(lambda n: _hard_sigmoid(float(n.attr("alpha", 0.2)),
                                                       float(n.attr("beta", 0.5)))),
        "HardSwish": _simple(lambda n: F.hardswish),
        "Elu": _simple(lambda n: functools.partial(F.elu, alpha=float(n.attr("alpha", 1.0)))),
        "Softplus": _simple(lambda n: F.softplus), "Erf": _simple(lambda n: torch.erf),
        "Exp": _simple(lambda n: torch.exp), "Log": _simple(lambda n: torch.log),
        "Sqrt": _simple(lambda n: torch.sqrt), "Neg": _simple(lambda n: torch.neg),
        "Abs": _simple(lambda n: torch.abs), "Reciprocal": _simple(lambda n: torch.reciprocal),
        "GlobalAveragePool": _simple(lambda n: _global(torch.mean, n.rank)),
        "GlobalMaxPool": _simple(lambda n: _global(torch.amax, n.rank)),
        "Identity": _simple(lambda n: _identity), "Dropout": _simple(lambda n: _identity),
    }


def _identity(x):
    return x


def _hard_sigmoid(alpha: float, beta: float):
    F = _torch().nn.functional
    if abs(alpha - 1 / 6) < 1e-7 and beta == 0.5:
        return F.hardsigmoid  # torch's own: exactly ONNX's with alpha 1/6

    return lambda x: (x * alpha + beta).clamp(0.0, 1.0)


def _global(reduce, rank: int):
    dims = tuple(range(2, rank))
    return lambda x: reduce(x, dim=dims, keepdim=True)


def builder_ops() -> Tuple[str, ...]:
    """The op types with a torch builder (must equal onnx_prepare.TORCH_OPS)."""
    return tuple(sorted(_builders()))


def build_onnx_module(model, dtype: str = "float32", channels_last: bool = False,
                      device=None, input_shapes: Optional[Mapping[str, Sequence[int]]] = None,
                      label: str = ""):
    """An eval-mode ``nn.Module`` computing ONNX ``model`` (a ModelProto; whole or an
    extracted range). ``dtype`` ``"float32"`` or ``"float16"``; ``channels_last`` stores 4-D
    weights and activations NHWC; ``device`` e.g. ``"cuda"``; ``input_shapes`` fixes dynamic
    input dimensions. A node outside the torch path is a BackendError naming it (``label``,
    e.g. the engine, starts the message)."""
    if dtype not in DTYPES:
        raise ModelError(f"dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    label = label or (model.graph.name or "onnx model")
    prepared = prepare(model, input_shapes, where=label)
    check_supported(prepared.model, label)  # refused before any torch work
    torch = _torch()
    builders = _builders()
    classes = _classes()
    graph = prepared.model.graph
    nodes = list(graph.node)
    last_use: Dict[str, int] = {}
    for position, node in enumerate(nodes):
        for name in node.input:
            last_use[name] = position
    keep = set(prepared.outputs)
    steps, wiring = [], []
    for position, node in enumerate(nodes):
        n = _Node(node, prepared)
        try:
            fn, operands = builders[node.op_type](n)
        except BackendError:
            raise
        except (KeyError, ValueError, TypeError, IndexError) as error:
            raise BackendError(f"{label}: node {node.name!r} ({node.op_type}) could not be "
                               f"built for the torch path: {type(error).__name__}: "
                               f"{error}") from error
        runtime, slots, constants = [], [], {}
        for operand in operands:
            name = node.input[operand] if isinstance(operand, int) else operand
            if isinstance(operand, int) and (operand >= len(node.input) or not name):
                continue
            if name in prepared.constants:
                constants[len(slots)] = prepared.constants[name]
                slots.append(("c", f"c{len(slots)}"))
            else:
                slots.append(("x", len(runtime)))
                runtime.append(name)
        steps.append(classes.Step(fn, slots, constants))
        free = tuple(sorted({name for name in runtime
                             if last_use.get(name) == position and name not in keep}))
        wiring.append((tuple(runtime), tuple(o for o in node.output if o), free))
    module = classes.OnnxModule(steps, wiring, prepared, channels_last)
    module.eval()
    if dtype == "float16":
        module = module.half()
    if channels_last:
        module = module.to(memory_format=torch.channels_last)
    if device is not None:
        module = module.to(device)
    return module


def range_model(spec):
    """The ONNX model of an engine spec's layer range over an ONNX-read graph, with the
    user's own initialisers (the frontend's extraction: a range as it is, not re-emitted)."""
    from hax_conn_core.graph.frontends.onnx import extract_range

    return extract_range(spec.graph, spec.first_layer, spec.last_layer)


def build_range_module(spec, dtype: str = "float32", channels_last: bool = False,
                       device=None):
    """:func:`build_onnx_module` for an EngineSpec whose graph the ONNX frontend read (the
    cuda-sm backend's hook). A node outside the torch path: a BackendError naming the
    engine, the node and its op type, before any torch work."""
    return build_onnx_module(range_model(spec), dtype=dtype, channels_last=channels_last,
                             device=device, label=spec.label)
