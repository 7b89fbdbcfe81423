"""The ``tensorrt`` backend: layer ranges as TensorRT engines on a Jetson's GPU and DLAs.

docs/runtime-tensorrt.md describes it, its settings, and what of it was never executed
(everything that touches TensorRT: no Jetson was available). In short:

* Each accelerator of the device (config/devices/xavier-agx.yaml, orin-agx.yaml,
  ``runtime: tensorrt:``) is a device type (``gpu`` or ``dla``, a DLA with its
  ``dla_core``), a CUDA stream of its own, and a ``trt.Runtime`` (with ``DLA_core`` set for
  a DLA).
* An engine is the ONNX model of its range (``onnx_export.export``) built by TensorRT's
  builder (:mod:`.tensorrt_build`) with the flags :func:`.tensorrt_config.build_plan`
  decides: fp16 / int8 (calibrated, with a calibration cache file), ``default_device_type =
  DLA`` and ``DLA_core`` on a DLA, GPU fallback never (a layer the DLA cannot run fails the
  build naming the engine). Plans go into the engine cache; a cached plan that fails to
  deserialize is rebuilt.
* ``Engine.run`` enqueues on the accelerator's stream after ``cudaStreamWaitEvent`` on the
  CUDA events it is given (host waits only for HostEvents), between two CUDA events whose
  difference is the elapsed time. Each slot has its own I/O buffers; an engine built with
  ``inputs_from`` binds that engine's output buffers as its inputs (on a Jetson GPU and DLA
  share DRAM: the hand-over reads the tensor in place). TensorRT 8.x runs through binding
  indices and ``execute_async_v2``, 9.x and 10.x through tensor names,
  ``set_tensor_address`` and ``execute_async_v3`` (:func:`.tensorrt_config.trt_api`).
* With the backend option ``profile_layers=True`` an ``IProfiler`` collects per-layer times
  of every run (:meth:`TensorRTEngine.layer_times_ms`).

TensorRT, cuda-python and pycuda are imported when the backend is opened, never at import:
opening it without them is one SetupError that says what is missing and how to get it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional, Set, Tuple

import numpy as np

from hax_conn_core.errors import BackendError, ConfigError, SetupError
from hax_conn_core.runtime.backends.base import Backend, Engine, EngineSpec, Event, Launch
from hax_conn_core.runtime.backends.tensorrt_config import (
    BuildPlan, build_plan, cache_settings, calibration_file_name, check_options,
    check_settings, file_sha256, missing_frameworks_message, precisions_for, trt_api)
from hax_conn_core.runtime.backends.tensorrt_cuda import (BufferPool, CudaEvent, DeviceArray,
                                                          import_cuda_bindings)

log = logging.getLogger(__name__)

#: Longest host wait for another engine's HostEvent or an output's data.
HOST_WAIT_S = 60.0


def import_tensorrt() -> Tuple[Any, Optional[str]]:
    """(the tensorrt module, None), or (None, why it does not import)."""
    try:
        import tensorrt
    except ImportError as error:
        return None, str(error)
    return tensorrt, None


def make_profiler(trt):
    """A ``trt.IProfiler`` that sums the per-layer times TensorRT reports until taken."""

    class LayerProfiler(trt.IProfiler):
        def __init__(self):
            trt.IProfiler.__init__(self)
            self.times: Dict[str, float] = {}

        def report_layer_time(self, layer_name, ms):
            self.times[layer_name] = self.times.get(layer_name, 0.0) + float(ms)

        def take(self) -> Dict[str, float]:
            times, self.times = self.times, {}
            return times

    return LayerProfiler()


def engine_io(trt, api, engine) -> List[Tuple[str, bool, Tuple[int, ...], Any]]:
    """(name, is_input, shape, numpy dtype) of each I/O tensor, in binding order."""
    result = []
    if api.io == "bindings":
        for index in range(engine.num_bindings):
            result.append((engine.get_binding_name(index), bool(engine.binding_is_input(index)),
                           tuple(engine.get_binding_shape(index)),
                           np.dtype(trt.nptype(engine.get_binding_dtype(index)))))
    else:
        for index in range(engine.num_io_tensors):
            name = engine.get_tensor_name(index)
            result.append((name, engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                           tuple(engine.get_tensor_shape(name)),
                           np.dtype(trt.nptype(engine.get_tensor_dtype(name)))))
    return result


class _Accelerator:
    """One accelerator while the backend is open: settings, stream, TensorRT runtime."""

    def __init__(self, name: str, settings: Dict[str, Any], stream: Any, runtime: Any):
        self.name = name
        self.settings = settings
        self.stream = stream
        self.runtime = runtime


class TensorRTEngine(Engine):
    """A range as a TensorRT engine on one accelerator's stream (module docstring)."""

    def __init__(self, backend: "TensorRTBackend", spec: EngineSpec, slots: int,
                 acc: _Accelerator, trt_engine: Any, plan_bytes: int,
                 inputs_from: Optional[Engine]):
        inputs, outputs = spec.io()
        io = engine_io(backend.trt, backend.api, trt_engine)
        found = {name: (is_input, shape, dtype) for name, is_input, shape, dtype in io}
        for names, is_input in ((inputs, True), (outputs, False)):
            for name in names:
                expected = tuple(spec.graph.shape(name))
                if found.get(name, (None, None, None))[:2] != (is_input, expected):
                    raise BackendError(f"{spec.label}: the TensorRT engine's tensors "
                                       f"{sorted(found)} do not match the range's "
                                       f"({name!r} {'in' if is_input else 'out'}put of "
                                       f"shape {expected})")
                if found[name][2] != np.float32:
                    raise BackendError(f"{spec.label}: {name!r} is {found[name][2]} in the "
                                       "engine; expected float32 I/O")
        super().__init__(backend, spec, slots,
                         {name: tuple(spec.graph.shape(name)) for name in inputs},
                         {name: tuple(spec.graph.shape(name)) for name in outputs})
        self.acc = acc
        self.cuda = backend.cuda
        self._trt_engine = trt_engine
        self._plan_bytes = plan_bytes
        self._order = [name for name, _, _, _ in io]
        self._context = trt_engine.create_execution_context()
        if self._context is None:
            raise BackendError(f"{spec.label}: TensorRT could not create an execution "
                               "context (out of device memory?)")
        self._profiler = None
        if backend.config["profile_layers"]:
            self._profiler = make_profiler(backend.trt)
            self._context.profiler = self._profiler
        self._layer_times: List[Dict[str, float]] = [{} for _ in range(slots)]
        self._lock = threading.Lock()
        self._owned: Set[int] = set()
        shared = inputs_from.output_buffers if inputs_from is not None else (lambda slot: None)
        self._buffers: List[Dict[str, DeviceArray]] = []
        for slot in range(slots):
            given = shared(slot) or {}
            buffers = {name: given[name] for name in inputs if name in given}
            for name in list(inputs) + list(outputs):
                if name not in buffers:
                    buffers[name] = self._allocate(name)
            self._buffers.append(buffers)

    def _allocate(self, name: str) -> DeviceArray:
        shape = tuple(self.spec.graph.shape(name))
        array = DeviceArray(0, shape, np.float32)
        array.pointer = self.cuda.malloc(array.nbytes)
        self._owned.add(array.pointer)
        return array

    # --- what other engines and the profiler read ---------------------------------------------
    def output_buffers(self, slot: int = 0) -> Optional[Dict[str, DeviceArray]]:
        """The device buffers this engine writes its outputs to in ``slot`` (fixed for the
        engine's life): a receiving engine built with ``inputs_from=`` binds them."""
        return {name: self._buffers[slot][name] for name in self.output_names}

    def layer_times_ms(self, slot: int = 0) -> Dict[str, float]:
        """TensorRT layer name -> milliseconds, of the last run in ``slot``
        (needs the backend option ``profile_layers=True``)."""
        if self._profiler is None:
            raise ConfigError(f"{self.spec.label}: per-layer times need the tensorrt backend "
                              "option profile_layers=True")
        return dict(self._layer_times[slot])

    # --- running ------------------------------------------------------------------------------
    def _wait(self, event: Event, stream: Any) -> None:
        if isinstance(event, CudaEvent):
            self.cuda.stream_wait(stream, event.end)  # on the device: no host round trip
        else:
            event.wait(HOST_WAIT_S)

    def _run_impl(self, inputs, slot, wait_for) -> Launch:
        with self._lock:
            stream = self.acc.stream
            for event in wait_for:
                self._wait(event, stream)
            addresses: Dict[str, int] = {}
            readers: List[DeviceArray] = []
            for name, value in inputs.items():
                if isinstance(value, DeviceArray):
                    if value.dtype != np.float32:
                        raise BackendError(f"{self.spec.label}: input {name!r} is "
                                           f"{value.dtype}; expected float32")
                    if value.ready is not None and value.ready not in wait_for:
                        self._wait(value.ready, stream)
                    addresses[name] = value.pointer
                    readers.append(value)
                else:  # a host frame: copied into this slot's own input buffer
                    target = self._buffers[slot][name]
                    if target.pointer not in self._owned:  # the sender's: never overwrite it
                        target = self._buffers[slot][name] = self._allocate(name)
                    self.cuda.copy_to_device(target.pointer,
                                             np.ascontiguousarray(value, np.float32), stream)
                    addresses[name] = target.pointer
            for name in self.output_names:
                addresses[name] = self._buffers[slot][name].pointer
            done = CudaEvent(self.cuda, self.cuda.event(), self.cuda.event(), self.spec.label)
            self.cuda.record(done.start, stream)
            if not self._enqueue(addresses, stream):
                raise BackendError(f"{self.spec.label}: TensorRT refused to enqueue the run")
            self.cuda.record(done.end, stream)
            if self._profiler is not None:
                self._layer_times[slot] = self._profiler.take()
            for value in readers:
                value.read_by(done)
            outputs = {name: self._buffers[slot][name].after(done) for name in self.output_names}
            return Launch(outputs, done, done.elapsed_ms)

    def _enqueue(self, addresses: Dict[str, int], stream: Any) -> bool:
        handle = self.cuda.stream_int(stream)
        if self.backend.api.io == "bindings":  # TensorRT 8.x
            bindings = [int(addresses[name]) for name in self._order]
            return bool(self._context.execute_async_v2(bindings=bindings, stream_handle=handle))
        for name in self._order:  # TensorRT 9.x, 10.x
            self._context.set_tensor_address(name, int(addresses[name]))
        return bool(self._context.execute_async_v3(stream_handle=handle))

    def _memory_bytes_impl(self) -> int:
        owned = sum(array.nbytes for buffers in self._buffers for array in buffers.values()
                    if array.pointer in self._owned)
        return self._plan_bytes + int(self._trt_engine.device_memory_size) + owned

    def _release_impl(self) -> None:
        if self.backend.is_open:
            self.cuda.stream_synchronize(self.acc.stream)  # nothing in flight reads them
        for pointer in self._owned:
            self.cuda.free(pointer)
        self._owned.clear()
        self._context = None
        self._trt_engine = None


class TensorRTBackend(Backend):
    """TensorRT on a Jetson's GPU and DLAs (module docstring; docs/runtime-tensorrt.md)."""

    name = "tensorrt"
    cacheable = True

    def _check_options_impl(self) -> None:
        self.settings = check_settings(self.device.id, self.accelerators,
                                       self.device.runtime.get(self.name, {}))
        self.config = check_options(self.options)
        self.trt = self.api = self.cuda = self.pool = self.logger = None
        self._accs: Dict[str, _Accelerator] = {}

    def _version_impl(self) -> str:
        trt, _ = import_tensorrt()
        return "not installed" if trt is None else str(trt.__version__)

    def _describe_impl(self) -> Dict[str, Any]:
        return {"settings": self.settings,
                "api": None if self.api is None else self.api.io,
                "cuda": None if self.cuda is None else self.cuda.name,
                "profile_layers": self.config["profile_layers"]}

    def _precisions_impl(self, accelerator: str):
        return precisions_for(self.settings[accelerator]["device_type"])

    # --- lifecycle ----------------------------------------------------------------------------
    def _open_impl(self) -> None:
        trt, trt_error = import_tensorrt()
        cuda_factory, cuda_error = import_cuda_bindings()
        message = missing_frameworks_message(trt_error, cuda_error)
        if message is not None:
            raise SetupError(message)
        from hax_conn_core.runtime.backends.tensorrt_build import make_logger

        self.api = trt_api(trt.__version__)
        self.trt = trt
        self.logger = make_logger(trt)
        cores = trt.Builder(self.logger).num_DLA_cores
        for acc, settings in self.settings.items():
            core = settings["dla_core"]
            if core is not None and core >= cores:
                raise SetupError(f"device {self.device.id!r}: runtime.tensorrt.{acc}.dla_core "
                                 f"is {core}, but this machine has {cores} DLA core(s); is it "
                                 "the Jetson the device description names?")
        self.cuda = cuda_factory()
        self.pool = BufferPool(self.cuda)
        for acc, settings in self.settings.items():
            runtime = trt.Runtime(self.logger)
            if settings["dla_core"] is not None:
                runtime.DLA_core = settings["dla_core"]
            self._accs[acc] = _Accelerator(acc, settings, self.cuda.stream(), runtime)

    def _close_impl(self) -> None:
        for acc in self._accs.values():
            self.cuda.stream_synchronize(acc.stream)
            self.cuda.stream_destroy(acc.stream)
        self._accs.clear()
        if self.pool is not None:
            self.pool.close()

    # --- engines ------------------------------------------------------------------------------
    def _build_impl(self, spec: EngineSpec, slots: int, inputs_from) -> Engine:
        acc = self._accs[spec.accelerator]
        plan = build_plan(acc.settings, spec.precision)
        trt_engine, size = self._engine(spec, acc, plan)
        return TensorRTEngine(self, spec, slots, acc, trt_engine, size, inputs_from)

    def _engine(self, spec: EngineSpec, acc: _Accelerator, plan: BuildPlan):
        """(deserialized engine, plan size): from the cache where a good entry exists, else
        built (and stored)."""
        from hax_conn_core.runtime.cache import engine_key

        calibration = self._calibration_path(spec) if plan.calibrate else None
        if self.cache is not None and (calibration is None or file_sha256(calibration)):
            key = engine_key(spec, self.name, self.version,
                             cache_settings(self.device.id, acc.settings, spec.precision,
                                            file_sha256(calibration)))
            payload = self.cache.load(key)
            if payload is not None:
                engine = self._deserialize(acc, payload)
                if engine is not None:
                    return engine, len(payload)
                self.cache.rejected += 1
                log.warning("%s: the cached TensorRT plan %s does not deserialize (%s); "
                            "rebuilding it", spec.label, key.digest[:12], self.logger.errors())
        payload = self._build_plan(spec, acc, plan, calibration)
        if self.cache is not None:
            digest = file_sha256(calibration)
            if calibration is None or digest is not None:
                self.cache.store(engine_key(spec, self.name, self.version,
                                            cache_settings(self.device.id, acc.settings,
                                                           spec.precision, digest)), payload)
        engine = self._deserialize(acc, payload)
        if engine is None:
            raise BackendError(f"{spec.label}: TensorRT could not load the plan it just built: "
                               f"{self.logger.errors()}")
        return engine, len(payload)

    def _deserialize(self, acc: _Accelerator, payload: bytes):
        try:
            return acc.runtime.deserialize_cuda_engine(payload)
        except Exception:  # TensorRT raises its own types for a corrupt plan
            return None

    def _calibration_path(self, spec: EngineSpec):
        from hax_conn_core.runtime.backends.tensorrt_build import calibration_cache_path
        from hax_conn_core.runtime.cache import default_cache_dir, graph_sha256

        root = (self.cache.directory if self.cache is not None else default_cache_dir()).parent
        name = calibration_file_name(spec.dnn, spec.first_layer, spec.last_layer,
                                     spec.weights_id, graph_sha256(spec.graph))
        return calibration_cache_path(self.config["calibration_dir"], root, name)

    def _build_plan(self, spec: EngineSpec, acc: _Accelerator, plan: BuildPlan,
                    calibration) -> bytes:
        from hax_conn_core.graph.onnx_export import export
        from hax_conn_core.runtime.backends import tensorrt_build as build

        onnx_bytes = export(spec.graph, spec.weights, first=spec.first_layer,
                            last=spec.last_layer, check=False).SerializeToString()
        calibrator = None
        if plan.calibrate:
            count = self.config["calibration_batches"]
            make = self.config["calibration_inputs"] or build.calibration_inputs
            calibrator = build.make_calibrator(self.trt, self.cuda,
                                               lambda: list(make(spec, count)), calibration)
        try:
            return build.build_serialized(self.trt, self.api, spec, plan, onnx_bytes,
                                          self.logger, calibrator)
        finally:
            if calibrator is not None:
                calibrator.free()

    # --- host transfers -----------------------------------------------------------------------
    def _to_host_impl(self, value: Any) -> np.ndarray:
        if not isinstance(value, DeviceArray):
            return np.asarray(value)
        if value.ready is not None:
            value.ready.wait(HOST_WAIT_S)
        out = np.empty(value.shape, value.dtype)
        self.cuda.copy_to_host(out, value.pointer)
        return out

    def _from_host_impl(self, array: np.ndarray, accelerator: str) -> Any:
        if not self.is_open:
            raise BackendError("backend 'tensorrt' is not open: open it before placing frames")
        array = np.ascontiguousarray(array, np.float32)
        acc = self._accs[accelerator]
        target = self.pool.array(array.shape, np.float32)
        self.cuda.copy_to_device(target.pointer, array, acc.stream)
        target.ready = CudaEvent(self.cuda, self.cuda.event(), label=f"a frame for {accelerator}")
        self.cuda.record(target.ready.end, acc.stream)
        return target
