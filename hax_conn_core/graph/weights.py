"""Layer weights for executing a model graph: seeded He initialisation, or loaded from a file.

Weights are a ``Dict[str, List[numpy.ndarray]]``: layer name -> its blobs in Caffe's order and
layout (what a ``.caffemodel`` stores), so that every backend (ONNX export, the torch module)
reads the same numbers:

==============  ====================================================================
Convolution     ``[W (O, I/group, kh, kw), b (O,)]`` (``b`` only with ``bias_term``)
InnerProduct    ``[W (O, K), b (O,)]``, K = product of the bottom's axes from ``axis``
BatchNorm       ``[mean (C,), var (C,), scale_factor (1,)]``; Caffe's statistics are
                ``mean / scale_factor`` and ``var / scale_factor`` (0 means factor 0)
Scale           ``[gamma, beta]`` shaped like the bottom's axes ``axis .. axis+num_axes``
                (no gamma when the scale is a second bottom; beta only with ``bias_term``)
==============  ====================================================================

Seeded weights are keyed by layer name: each layer draws from its own generator seeded by
``(seed, layer name)``, so a part of a graph and the whole get the same weights for the same
layers. BatchNorm statistics are then *calibrated* (given a run callable: the graph package
runs nothing itself): the whole graph is run once on a seeded random input with every
BatchNorm normalising by that input's own per-channel mean and variance, and those statistics
are stored, as a trained network's running averages would be. Activations therefore stay of
order one through 150+ layers (residual sums grow linearly, not exponentially), which keeps
fp32 comparisons meaningful and fp16 runs finite.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional,
                    Sequence, Tuple)

import numpy as np

from hax_conn_core.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from hax_conn_core.graph.model import Graph, Layer

Weights = Dict[str, List[np.ndarray]]
#: Runs an ONNX model: ``run(model, external_weights, inputs) -> outputs`` (name -> array).
RunModel = Callable[[Any, Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
                    Mapping[str, np.ndarray]]
Shape = Tuple[int, ...]

#: Caffe's moving-average scale factor as a trained model stores it (blobs[2]); the stored
#: mean/var are multiplied by it, which makes the exporters exercise the division.
CAFFE_BN_SCALE_FACTOR = 999.982
#: Standard deviation of seeded biases, Scale gamma noise (around 1) and Scale beta.
BIAS_STD = 0.05
GAMMA_STD = 0.1
BETA_STD = 0.1
#: Below this many elements per channel, BatchNorm calibration uses per-tensor statistics
#: (an FC output of batch 1 has one element per channel: its variance would be 0).
MIN_ELEMENTS_PER_CHANNEL = 16
#: Types that have blobs.
WEIGHTED_TYPES = ("Convolution", "InnerProduct", "BatchNorm", "Scale")


def layer_rng(seed: int, layer_name: str) -> np.random.Generator:
    """The generator of one layer: depends only on ``seed`` and the layer's name."""
    digest = hashlib.sha256(f"{int(seed)}/{layer_name}".encode("utf-8")).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _axis(axis: int, rank: int, layer: "Layer") -> int:
    if not -rank <= axis < rank:
        raise ModelError(f"{layer.where()}: axis {axis} is out of range for a bottom of "
                         f"rank {rank}")
    return axis % rank


def scale_blob_shape(graph: "Graph", layer: "Layer") -> Shape:
    """Shape of a Scale layer's gamma/beta: the bottom's axes ``axis .. axis+num_axes``."""
    shape = graph.shape(layer.bottoms[0])
    axis = _axis(layer.params.axis, len(shape), layer)
    num_axes = layer.params.num_axes
    end = len(shape) if num_axes < 0 else axis + num_axes
    if end > len(shape):
        raise ModelError(f"{layer.where()}: axis {axis} + num_axes {num_axes} exceeds the "
                         f"bottom's rank {len(shape)}")
    return tuple(shape[axis:end])


def blob_shapes(graph: "Graph", layer: "Layer") -> List[Shape]:
    """The Caffe blob shapes ``layer`` needs, in Caffe's order (empty for weightless types)."""
    params = layer.params
    if layer.type == "Convolution":
        in_channels = graph.shape(layer.bottoms[0])[1]
        if in_channels % params.group or params.num_output % params.group:
            raise ModelError(f"{layer.where()}: group {params.group} must divide the input "
                             f"channels ({in_channels}) and num_output ({params.num_output})")
        shapes = [(params.num_output, in_channels // params.group) + tuple(params.kernel)]
        return shapes + ([(params.num_output,)] if params.bias_term else [])
    if layer.type == "InnerProduct":
        shape = graph.shape(layer.bottoms[0])
        axis = _axis(params.axis, len(shape), layer)
        fan_in = int(np.prod(shape[axis:], dtype=np.int64))
        shapes = [(params.num_output, fan_in)]
        return shapes + ([(params.num_output,)] if params.bias_term else [])
    if layer.type == "BatchNorm":
        channels = graph.shape(layer.bottoms[0])[1]
        return [(channels,), (channels,), (1,)]
    if layer.type == "Scale":
        shape = scale_blob_shape(graph, layer)
        shapes = [] if len(layer.bottoms) > 1 else [shape]
        return shapes + ([shape] if params.bias_term else [])
    return []


def _seeded_layer_blobs(graph: "Graph", layer: "Layer", seed: int) -> List[np.ndarray]:
    shapes = blob_shapes(graph, layer)
    if not shapes:
        return []
    rng = layer_rng(seed, layer.name)
    if layer.type in ("Convolution", "InnerProduct"):
        weight_shape = shapes[0]
        fan_in = int(np.prod(weight_shape[1:], dtype=np.int64))
        # He (Kaiming) normal: keeps the second moment through conv + ReLU.
        std = np.float32(np.sqrt(2.0 / fan_in))
        blobs = [rng.standard_normal(weight_shape, dtype=np.float32) * std]
        if len(shapes) > 1:
            blobs.append(rng.standard_normal(shapes[1], dtype=np.float32) * np.float32(BIAS_STD))
        return blobs
    if layer.type == "BatchNorm":
        # Placeholder statistics (identity); calibrate_batchnorm() replaces them.
        channels = shapes[0][0]
        return [np.zeros(channels, np.float32), np.ones(channels, np.float32),
                np.ones(1, np.float32)]
    if layer.type == "Scale":
        blobs = []
        if len(layer.bottoms) == 1:
            gamma = 1.0 + rng.standard_normal(shapes[0], dtype=np.float32) * GAMMA_STD
            blobs.append(gamma.astype(np.float32))
        if layer.params.bias_term:
            blobs.append(rng.standard_normal(shapes[-1], dtype=np.float32) * np.float32(BETA_STD))
        return blobs
    raise AssertionError(layer.type)  # blob_shapes() returned shapes for no other type


def seeded_weights(graph: "Graph", seed: int = 0, run: Optional[RunModel] = None) -> Weights:
    """Deterministic He-initialised weights for every weighted layer of ``graph``.

    ``run`` calibrates the BatchNorm statistics (see the module docstring): a function that
    runs an ONNX model, ``run(model, external_weights, inputs) -> outputs``, e.g.
    ``hax_conn_core.runtime.backends.onnxrt.run_onnx``. The graph package runs nothing itself,
    so without ``run`` the statistics are the identity (mean 0, var 1), which lets activations
    of deep residual networks grow with depth; ``hax_conn_core.runtime.models`` gives every
    runtime calibrated weights. Calibrated statistics depend on the layers before each
    BatchNorm: for a part to share the whole's weights, take the whole graph's weights and
    export the part as a range of it (``export(graph, weights, first=..., last=...)``).
    """
    weights: Weights = {}
    for layer in graph.layers:
        blobs = _seeded_layer_blobs(graph, layer, seed)
        if blobs:
            weights[layer.name] = blobs
    if run is not None and any(layer.type == "BatchNorm" for layer in graph.layers):
        calibrate_batchnorm(graph, weights, run, seed=seed)
    return weights


def calibration_inputs(graph: "Graph", seed: int) -> Dict[str, np.ndarray]:
    """The seeded standard-normal inputs BatchNorm statistics are calibrated on."""
    return {name: layer_rng(seed, "calibration input " + name)
            .standard_normal(graph.shape(name), dtype=np.float32)
            for name in graph.inputs}


def calibrate_batchnorm(graph: "Graph", weights: Weights, run: RunModel, seed: int = 0) -> None:
    """Replace every BatchNorm's statistics in ``weights`` by those of a seeded input batch,
    computed by ``run`` (``run(model, external_weights, inputs) -> outputs``)."""
    from hax_conn_core.graph.onnx_export import export_calibration

    model, stat_outputs, external = export_calibration(graph, weights,
                                                       MIN_ELEMENTS_PER_CHANNEL)
    results = run(model, external, calibration_inputs(graph, seed))
    factor = np.float32(CAFFE_BN_SCALE_FACTOR)
    for layer_name, (mean_name, var_name) in stat_outputs.items():
        channels = weights[layer_name][0].shape[0]
        mean = np.broadcast_to(results[mean_name].reshape(-1), (channels,))
        var = np.broadcast_to(results[var_name].reshape(-1), (channels,))
        weights[layer_name] = [(mean * factor).astype(np.float32),
                               (var * factor).astype(np.float32),
                               np.array([factor], np.float32)]


def batchnorm_statistics(blobs: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Caffe BatchNorm blobs -> (mean, var) as used at inference (scale factor applied)."""
    factor = float(np.asarray(blobs[2]).reshape(-1)[0])
    inverse = 0.0 if factor == 0 else 1.0 / factor
    return ((np.asarray(blobs[0], np.float64) * inverse).astype(np.float32),
            (np.asarray(blobs[1], np.float64) * inverse).astype(np.float32))


def _strip_leading_ones(shape: Shape) -> Shape:
    # Legacy caffemodels pad blobs to 4-D with leading 1s: (1, 1, O, K), (1, 1, 1, C).
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def check_weights(graph: "Graph", weights: Weights,
                  layers: Optional[Iterable["Layer"]] = None) -> None:
    """Raise ModelError unless ``weights`` has every blob ``layers`` (default: all) need."""
    for layer in graph.layers if layers is None else layers:
        expected = blob_shapes(graph, layer)
        if not expected:
            continue
        blobs = weights.get(layer.name)
        if blobs is None:
            raise ModelError(f"{graph.name}: no weights for {layer.where()} "
                             f"({layer.type}); expected blobs of shapes {expected}")
        if len(blobs) != len(expected):
            raise ModelError(f"{graph.name}: {layer.where()} has {len(blobs)} weight blobs; "
                             f"expected {len(expected)} of shapes {expected}")
        for position, (blob, shape) in enumerate(zip(blobs, expected)):
            found = tuple(np.shape(blob))
            if _strip_leading_ones(found) != _strip_leading_ones(tuple(shape)):
                raise ModelError(f"{graph.name}: {layer.where()} blob {position} has shape "
                                 f"{found}; expected {tuple(shape)}")


def conform_weights(graph: "Graph", weights: Weights) -> Weights:
    """Weights of ``graph``'s layers as float32 in the expected shapes (after check_weights).

    Legacy caffemodels store 4-D ``(1, 1, O, K)`` InnerProduct weights and 1-D blobs as
    ``(1, 1, 1, C)``: the same shape after leading 1s, reshaped here.
    """
    check_weights(graph, weights)
    conformed: Weights = {}
    for layer in graph.layers:
        expected = blob_shapes(graph, layer)
        if expected:
            conformed[layer.name] = [np.ascontiguousarray(blob, np.float32).reshape(shape)
                                     for blob, shape in zip(weights[layer.name], expected)]
    return conformed


def load_weights(path, graph: "Graph") -> Weights:
    """Weights of ``graph`` from a ``.caffemodel`` or an ``.onnx`` file (by suffix)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such weights file; expected a .caffemodel or .onnx file")
    if path.suffix == ".caffemodel":
        from hax_conn_core.graph.caffemodel import load_caffemodel_weights

        return conform_weights(graph, load_caffemodel_weights(path, graph))
    if path.suffix == ".onnx":
        return load_onnx_weights(path, graph)
    raise ModelError(f"{path}: unknown weights file type {path.suffix!r}; "
                     "expected .caffemodel or .onnx")


def load_onnx_weights(path, graph: "Graph") -> Weights:
    """Weights of ``graph`` from the initializers of an ONNX file written by our exporter.

    Initializers are found by the names :func:`onnx_export.initializer_names` gives each
    layer's blobs; a missing one is reported with the layer and the names looked for.
    """
    import onnx
    from onnx import numpy_helper

    from hax_conn_core.graph.onnx_export import initializer_names

    try:
        model = onnx.load(str(path))
    except Exception as error:  # onnx raises DecodeError, OSError...
        raise ModelError(f"{path}: not a readable ONNX file ({error})") from None
    initializers = {init.name: init for init in model.graph.initializer}
    weights: Weights = {}
    for layer in graph.layers:
        names = initializer_names(graph, layer)
        if not names:
            continue
        missing = [name for name in names if name not in initializers]
        if missing:
            raise ModelError(f"{path}: no initializer {missing[0]!r} for {layer.where()} "
                             f"({layer.type}); expected initializers {names}")
        arrays = [numpy_helper.to_array(initializers[name]) for name in names]
        if layer.type == "BatchNorm":
            # The exporter stores inference statistics (scale factor applied): factor 1.
            arrays = [arrays[0], arrays[1], np.ones(1, np.float32)]
        if layer.type == "Scale":
            # Stored in broadcast form, (C, 1, 1) for NCHW; Caffe's blob is (C,).
            shape = scale_blob_shape(graph, layer)
            arrays = [array.reshape(shape) if array.size == int(np.prod(shape)) else array
                      for array in arrays]
        weights[layer.name] = arrays
    return conform_weights(graph, weights)
