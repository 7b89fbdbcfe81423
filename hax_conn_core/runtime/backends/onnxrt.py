"""Run an ONNX model with onnxruntime on the CPU: the reference executor.

``OnnxRunner(model).run({"data": x})`` -> ``{"prob": y}``. Threads are limited (default 2,
or ``HAX_CONN_ORT_THREADS``) so that tests behave the same on CI's two cores as here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from hax_conn_core.errors import BackendError, SetupError

if TYPE_CHECKING:  # pragma: no cover
    import onnx

#: Default intra-op threads: CI has two cores.
DEFAULT_THREADS = 2


def default_threads() -> int:
    """``HAX_CONN_ORT_THREADS`` if set, else 2 (never more than the machine's cores)."""
    value = os.environ.get("HAX_CONN_ORT_THREADS")
    if value:
        try:
            threads = int(value)
        except ValueError:
            raise SetupError(f"HAX_CONN_ORT_THREADS={value!r}: expected a positive "
                             "integer") from None
        if threads < 1:
            raise SetupError(f"HAX_CONN_ORT_THREADS={value!r}: expected a positive integer")
        return threads
    return max(1, min(DEFAULT_THREADS, os.cpu_count() or 1))


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:
        raise SetupError("onnxruntime is not installed; it runs models on the CPU: "
                         f"pip install onnxruntime ({error})") from None
    return onnxruntime


class OnnxRunner:
    """An onnxruntime CPU session over one model, with checked named inputs and outputs.

    ``model`` is a ModelProto, its serialised bytes or a path. ``threads`` defaults to
    :func:`default_threads`. ``optimize`` selects onnxruntime's full graph optimisation
    (fusions, weight pre-packing); off, it keeps the basic level and skips pre-packing,
    which builds a session faster for a run or two. ``external``: the weights of a model
    exported with ``export(..., external=...)``, supplied from memory.
    """

    def __init__(self, model: Union["onnx.ModelProto", bytes, str, os.PathLike],
                 threads: Optional[int] = None, optimize: bool = True,
                 external: Optional[Mapping[str, np.ndarray]] = None):
        ort = _onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                                            if optimize else
                                            ort.GraphOptimizationLevel.ORT_ENABLE_BASIC)
        options.log_severity_level = 3
        if not optimize:
            options.add_session_config_entry("session.disable_prepacking", "1")
        # OrtValues wrap the arrays; keep them alive as long as the session.
        self._external = {name: ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array))
                          for name, array in (external or {}).items()}
        if self._external:
            options.add_external_initializers(list(self._external),
                                              list(self._external.values()))
        source = model if isinstance(model, (bytes, str, os.PathLike)) else None
        if source is None:
            source = model.SerializeToString()
        try:
            self.session = ort.InferenceSession(
                os.fspath(source) if isinstance(source, os.PathLike) else source,
                sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime could not load the model: {error}") from None
        self.inputs = {arg.name: tuple(arg.shape) for arg in self.session.get_inputs()}
        self.outputs = tuple(arg.name for arg in self.session.get_outputs())

    def run(self, inputs: Mapping[str, np.ndarray],
            outputs: Optional[Sequence[str]] = None) -> Dict[str, np.ndarray]:
        """Run once: ``inputs`` name -> array (float32); returns output name -> array."""
        missing = [name for name in self.inputs if name not in inputs]
        unknown = [name for name in inputs if name not in self.inputs]
        if missing or unknown:
            raise BackendError(f"model inputs are {list(self.inputs)}; missing {missing}, "
                               f"unknown {unknown}")
        feed = {}
        for name, expected in self.inputs.items():
            array = np.ascontiguousarray(inputs[name], dtype=np.float32)
            static = all(isinstance(dim, int) for dim in expected)
            if static and tuple(array.shape) != expected:
                raise BackendError(f"input {name!r} has shape {tuple(array.shape)}; "
                                   f"expected {expected}")
            feed[name] = array
        wanted = list(outputs) if outputs is not None else list(self.outputs)
        try:
            results = self.session.run(wanted, feed)
        except Exception as error:  # onnxruntime raises its own exception types
            raise BackendError(f"onnxruntime failed to run the model: {error}") from None
        return dict(zip(wanted, results))


def run_model(model, inputs: Mapping[str, np.ndarray],
              threads: Optional[int] = None) -> Dict[str, np.ndarray]:
    """One-shot convenience: build a session for ``model`` and run ``inputs`` through it."""
    return OnnxRunner(model, threads=threads).run(inputs)
