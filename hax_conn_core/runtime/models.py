"""The DNNs a runtime runs: each one's graph, weights and what its frames look like.

``load_model("googlenet")`` reads the shipped prototxt (or a path to one) and gives it weights:
from a ``.caffemodel`` / ``.onnx`` file when one is named, else seeded (docs/execution.md) with
BatchNorm statistics calibrated by one onnxruntime run. ``load_model("net.onnx")`` (or the id
of a model registered by path, ``graph.resolve.register_model``) reads a user's ONNX model with
its own weights; its ranges are extracted from it, never re-exported (``onnx_export.export``).
Every result names the weights
(``weights_id``). Loaded models are kept for the process (reading and calibrating a deep DNN
takes a second or more), so swapping back to a DNN set costs nothing here.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from hax_conn_core.errors import ModelError


@dataclass(frozen=True)
class RuntimeModel:
    """A DNN ready to build engines from: its graph, weights, and frame layout."""

    name: str
    graph: object = field(repr=False)  # hax_conn_core.graph.model.Graph
    weights: Dict[str, list] = field(repr=False)
    weights_id: str

    @property
    def input_name(self) -> str:
        return self.graph.inputs[0]

    @property
    def input_shape(self) -> Tuple[int, ...]:
        return tuple(self.graph.shape(self.input_name))

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(self.graph.outputs)

    def check_frame(self, frame) -> np.ndarray:
        """``frame`` as the model's input array, or FrameError naming the DNN and what was
        expected (float32 of the input shape)."""
        from hax_conn_core.errors import FrameError

        shape = tuple(getattr(frame, "shape", ()))
        dtype = getattr(frame, "dtype", None)
        if not isinstance(frame, np.ndarray):
            raise FrameError(f"{self.name}: frame is a {type(frame).__name__}; expected a "
                             f"numpy float32 array of shape {self.input_shape}")
        if dtype != np.float32 or shape != self.input_shape:
            raise FrameError(f"{self.name}: frame of shape {shape} and dtype {dtype}; expected "
                             f"float32 of shape {self.input_shape}")
        return frame


_LOCK = threading.Lock()
_LOADED: Dict[tuple, RuntimeModel] = {}


def load_model(name: str, seed: int = 0,
               weights: Optional[Union[str, Path]] = None,
               input_shape: Optional[Sequence[int]] = None) -> RuntimeModel:
    """The DNN ``name`` with its weights: a registered id (docs/conventions.md), a model
    registered with ``graph.resolve.register_model``, or a .prototxt / .onnx path
    (``graph.resolve.resolve_model``; an ONNX model's weights are its own initialisers)."""
    from hax_conn_core.graph.resolve import resolve_model

    source = resolve_model(name, input_shape=input_shape)
    key = (source.id, str(source.path), seed,
           None if weights is None else str(Path(weights).resolve()), source.input_shape)
    with _LOCK:
        cached = _LOADED.get(key)
    if cached is not None:
        return cached
    graph = source.load_graph()  # a built-in's input shape checked against the registry
    if source.frontend == "onnx":
        if weights is not None:
            raise ModelError(f"{source.path}: an ONNX model carries its own weights; leave "
                             f"out the weights file {weights}")
        model = RuntimeModel(name=source.id, graph=graph, weights=_onnx_weights(graph),
                             weights_id=f"file:{source.path.name}:"
                                        f"{_file_sha256(source.path)[:16]}")
    else:
        model = model_with_weights(source.id, graph, seed, weights)
    with _LOCK:
        _LOADED.setdefault(key, model)
        return _LOADED[key]


def model_with_weights(name: str, graph, seed: int = 0,
                       weights: Optional[Union[str, Path]] = None) -> RuntimeModel:
    """``graph`` as a RuntimeModel: with the weights of the file ``weights`` (.caffemodel or
    .onnx, checked against the graph), seeded ones only when none is given; ``weights_id``
    says which (``file:<name>:<sha256 prefix>`` or ``seeded:<seed>``)."""
    from hax_conn_core.graph.weights import load_weights, seeded_weights
    from hax_conn_core.runtime.backends.onnxrt import run_onnx

    if weights is None:
        return RuntimeModel(name=name, graph=graph,
                            weights=seeded_weights(graph, seed, run=run_onnx),
                            weights_id=f"seeded:{seed}")
    path = Path(weights)
    blobs = load_weights(path, graph)
    return RuntimeModel(name=name, graph=graph, weights=blobs,
                        weights_id=f"file:{path.name}:{_file_sha256(path)[:16]}")


def _onnx_weights(graph) -> Dict[str, list]:
    """Layer name -> its constant inputs (initialisers, Constant values) in input order:
    the ONNX model's own weights, keyed like Caffe blobs (docs/execution.md)."""
    found: Dict[str, list] = {}
    for layer in graph.layers:
        params = layer.params
        blobs = [params.constants[x] for x in params.inputs if x in params.constants]
        if blobs:
            found[layer.name] = blobs
    return found


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
