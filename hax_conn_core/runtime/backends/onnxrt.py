"""The ``onnxruntime`` backend (CPU): the embedded default, and the reference executor.

Two pieces:

* :class:`OnnxRunner`: one onnxruntime CPU session over one ONNX model, with checked named
  inputs and outputs (``OnnxRunner(model).run({"data": x})`` -> ``{"prob": y}``), and
  :func:`run_onnx`, the run callable that BatchNorm calibration takes
  (``graph.weights.seeded_weights(graph, run=run_onnx)``). Threads default to 2, or
  ``HAX_CONN_ORT_THREADS``, so that tests behave the same on CI's two cores as here.
* :class:`OnnxRuntimeBackend`: the backend interface (base.py) over such sessions. Each
  accelerator of the device (config/devices/cpu.yaml: ``gpu`` and ``dla``) is a set of
  sessions with their own intra-op thread pool of ``threads`` threads (device setting,
  default 1), run from that accelerator's executor thread; an engine is the ONNX model of its
  layer range. Outputs are numpy arrays that the next engine reads as they are (one process,
  one memory: no copy at a hand-over).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Sequence, Union

import numpy as np

from hax_conn_core.errors import BackendError, ConfigError, SetupError
from hax_conn_core.runtime.backends.base import Backend, Engine, EngineSpec, Launch, done_event

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


def run_onnx(model, external: Optional[Mapping[str, np.ndarray]],
             inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Run ``model`` once on ``inputs`` (basic optimisation: built for one run); the run
    callable that ``graph.weights.seeded_weights(..., run=run_onnx)`` calibrates with."""
    return OnnxRunner(model, external=external, optimize=False).run(inputs)


# --- the backend -----------------------------------------------------------------------------

#: Per-accelerator settings (config/devices/*.yaml, ``runtime: onnxruntime:``) and defaults.
SETTINGS = {"threads": 1, "optimize": True}


class OnnxRuntimeEngine(Engine):
    """A layer range as one onnxruntime session; runs in the calling (executor) thread."""

    def __init__(self, backend: "OnnxRuntimeBackend", spec: EngineSpec, slots: int,
                 runner: OnnxRunner, model_bytes: int):
        graph = spec.graph
        super().__init__(backend, spec, slots,
                         {name: tuple(graph.shape(name)) for name in runner.inputs},
                         {name: tuple(graph.shape(name)) for name in runner.outputs})
        self.runner = runner
        self._model_bytes = model_bytes

    def _run_impl(self, inputs, slot, wait_for) -> Launch:
        import time

        for event in wait_for:
            event.wait()
        start = time.perf_counter()
        outputs = self.runner.run(inputs)
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return Launch(outputs, done_event(), elapsed_ms)

    def _memory_bytes_impl(self) -> int:
        return self._model_bytes

    def _release_impl(self) -> None:
        self.runner = None


class OnnxRuntimeBackend(Backend):
    """onnxruntime on the CPU; each accelerator its own thread pool (module docstring)."""

    name = "onnxruntime"
    cacheable = True

    def _check_options_impl(self) -> None:
        super()._check_options_impl()
        for acc in self.accelerators:
            settings = self.device.settings(self.name, acc)
            unknown = sorted(set(settings) - set(SETTINGS))
            where = f"device {self.device.id!r}: runtime.onnxruntime.{acc}"
            if unknown:
                raise ConfigError(f"{where}: unknown setting(s) {', '.join(unknown)}; expected "
                                  f"{', '.join(SETTINGS)}")
            threads = settings.get("threads", SETTINGS["threads"])
            if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
                raise ConfigError(f"{where}.threads: {threads!r}; expected an integer >= 1")
            if not isinstance(settings.get("optimize", True), bool):
                raise ConfigError(f"{where}.optimize: expected true or false")

    def _setting(self, acc: str, key: str):
        return self.device.settings(self.name, acc).get(key, SETTINGS[key])

    def _version_impl(self) -> str:
        return _onnxruntime().__version__

    def _open_impl(self) -> None:
        _onnxruntime()  # a missing onnxruntime is a SetupError now, not at the first build

    def _memory_stream_impl(self, accelerator: str, target_gbps):
        # One process, one memory: a copy loop in a thread stands for the accelerator's traffic.
        from hax_conn_core.runtime.backends.host_memory import HostCopyStream

        return HostCopyStream(accelerator, target_gbps, name=f"stream-{accelerator}")

    def _build_impl(self, spec: EngineSpec, slots: int, inputs_from) -> Engine:
        from hax_conn_core.graph.onnx_export import export

        threads = self._setting(spec.accelerator, "threads")
        optimize = self._setting(spec.accelerator, "optimize")
        if self.cache is None:
            # In memory: the weights go to onnxruntime as they are, without a protobuf copy.
            external: Dict[str, np.ndarray] = {}
            model = export(spec.graph, spec.weights, first=spec.first_layer,
                           last=spec.last_layer, external=external)
            runner = OnnxRunner(model, threads=threads, optimize=optimize, external=external)
            size = model.ByteSize() + sum(a.nbytes for a in external.values())
            return OnnxRuntimeEngine(self, spec, slots, runner, size)
        from hax_conn_core.runtime.cache import engine_key

        key = engine_key(spec, self.name, self.version, {"optimize": optimize})
        payload = self.cache.load(key)
        if payload is None:
            model = export(spec.graph, spec.weights, first=spec.first_layer,
                           last=spec.last_layer, check=False)
            payload = model.SerializeToString()
            self.cache.store(key, payload)
        runner = OnnxRunner(payload, threads=threads, optimize=optimize)
        return OnnxRuntimeEngine(self, spec, slots, runner, len(payload))
