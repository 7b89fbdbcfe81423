"""One place that turns what a user names a model into where it comes from.

``resolve_model(text)`` takes a built-in DNN id (``googlenet``, docs/conventions.md "DNN
names"), a ``.prototxt`` path (optionally with a ``.caffemodel`` as ``weights``) or a ``.onnx``
path, and gives a :class:`ModelSource`: the model's id (a file's normalised stem, e.g.
``YOLO-v8n.onnx`` -> ``yolo_v8n``), its frontend and file. ``register_model`` also remembers a
path's source under its id, so that later lookups by that id (a profile's or schedule's DNN
names, ``runtime.models.load_model``) find the user's file. ``hax-conn graph|profile|plan|run``
(``--model PATH``, or paths in ``--dnns``) and ``runtime.models.load_model`` use it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

from hax_conn_core.errors import ConfigError, ModelError

#: File suffixes a model path may have, by frontend.
SUFFIXES = {".prototxt": "caffe", ".onnx": "onnx"}


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``id`` (its name everywhere), ``frontend`` ("caffe" or
    "onnx"), ``path`` (the prototxt or ONNX file), ``weights`` (a .caffemodel, or None),
    ``input_shape`` (for a dynamic ONNX model), ``builtin`` (a shipped DNN)."""

    id: str
    frontend: str
    path: Path
    weights: Optional[Path] = None
    input_shape: Optional[Tuple[int, ...]] = None
    builtin: bool = False

    def load_graph(self):
        """The model's Graph, read by its frontend and named ``id``."""
        if self.frontend == "onnx":
            from hax_conn_core.graph.frontends.onnx import load_onnx

            return load_onnx(self.path, input_shape=self.input_shape, name=self.id)
        from hax_conn_core.graph.prototxt import load_prototxt

        if self.input_shape is not None:
            raise ModelError(f"{self.path}: an input shape is for dynamic ONNX models; a "
                             "prototxt states its own")
        graph = load_prototxt(self.path, name=self.id)
        if self.builtin:
            from hax_conn_core.models import get_model

            expected = tuple(get_model(self.id).input_shape)
            if tuple(graph.shape(graph.inputs[0])) != expected:
                raise ModelError(f"{self.path}: input shape {graph.shape(graph.inputs[0])}; "
                                 f"the registry says {expected}")
        return graph


_LOCK = threading.Lock()
_REGISTERED: Dict[str, ModelSource] = {}


def _as_shape(input_shape) -> Optional[Tuple[int, ...]]:
    if input_shape is None:
        return None
    if isinstance(input_shape, str):
        from hax_conn_core.graph.frontends.onnx.reader import parse_input_shape

        return parse_input_shape(input_shape)
    return tuple(int(d) for d in input_shape)


def is_model_path(text: str) -> bool:
    """Whether ``text`` names a model file rather than an id."""
    return Path(text).suffix.lower() in SUFFIXES


def resolve_model(name: Union[str, Path], weights: Optional[Union[str, Path]] = None,
                  input_shape: Union[None, str, Sequence[int]] = None) -> ModelSource:
    """The source of the model ``name`` (an id, or a .prototxt / .onnx path)."""
    from hax_conn_core.models import get_model, known_ids, normalise_model_id

    text = str(name)
    path = Path(text)
    shape = _as_shape(input_shape)
    weights_path = Path(weights) if weights is not None else None
    if weights_path is not None and not weights_path.is_file():
        raise ConfigError(f"{weights_path}: no such weights file")
    suffix = path.suffix.lower()
    if suffix in SUFFIXES or path.is_file():
        kind = "ONNX" if suffix == ".onnx" else "prototxt"
        if path.is_dir():
            raise ConfigError(f"{text}: is a directory; expected a {kind} file")
        if not path.is_file():
            raise ConfigError(f"{text}: no such {kind} file")
        if suffix == ".caffemodel":
            raise ConfigError(f"{text}: a .caffemodel holds weights only; give the .prototxt "
                              "and the .caffemodel as its weights")
        if suffix not in SUFFIXES:
            raise ConfigError(f"{text}: unknown model file type {path.suffix or '(none)'}; "
                              "expected .prototxt or .onnx")
        frontend = SUFFIXES[suffix]
        if frontend == "onnx" and weights_path is not None:
            raise ConfigError(f"{text}: an ONNX model carries its own weights (initialisers); "
                              f"leave out the weights file {weights_path}")
        return ModelSource(id=normalise_model_id(path.stem), frontend=frontend,
                           path=path.resolve(), weights=weights_path, input_shape=shape)
    with _LOCK:
        registered = _REGISTERED.get(text)
    if registered is not None:
        if weights_path is not None or shape is not None:
            from dataclasses import replace

            registered = replace(registered, weights=weights_path or registered.weights,
                                 input_shape=shape or registered.input_shape)
        return registered
    if text in known_ids():
        return ModelSource(id=text, frontend="caffe", path=get_model(text).prototxt,
                           weights=weights_path, input_shape=shape, builtin=True)
    raise ConfigError(f"unknown DNN {text!r}: neither a prototxt file nor a known DNN; "
                      f"expected a path or one of {', '.join(known_ids())} (a path: .prototxt "
                      "or .onnx)")


def register_model(name: Union[str, Path], weights: Optional[Union[str, Path]] = None,
                   input_shape: Union[None, str, Sequence[int]] = None) -> ModelSource:
    """Resolve ``name`` and remember a path's source under its id for this process.

    An id already registered for another file, or a built-in id, is refused: a model is named
    by its file stem, so two files called ``net.onnx`` need renaming.
    """
    from hax_conn_core.models import known_ids

    source = resolve_model(name, weights, input_shape)
    if source.builtin:
        return source
    if source.id in known_ids():
        raise ConfigError(f"{name}: its name {source.id!r} is a built-in DNN's; rename the "
                          "file")
    with _LOCK:
        other = _REGISTERED.get(source.id)
        if other is not None and other.path != source.path:
            raise ConfigError(f"{name}: its name {source.id!r} is already taken by "
                              f"{other.path}; rename one of the files")
        _REGISTERED[source.id] = source
    return source


def registered_models() -> Tuple[ModelSource, ...]:
    with _LOCK:
        return tuple(_REGISTERED.values())
