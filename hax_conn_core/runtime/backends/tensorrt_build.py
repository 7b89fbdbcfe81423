"""Building TensorRT plans for the ``tensorrt`` backend: ONNX range -> serialized plan.

:func:`build_serialized` parses the ONNX model of a layer range (``onnx_export.export``) with
``trt.OnnxParser``, configures the builder as :func:`~.tensorrt_config.build_plan` decided
(:func:`apply_plan`: precision flags, ``default_device_type`` and ``DLA_core`` for a DLA,
the workspace pool; never GPU fallback), checks that a DLA can run every layer, and returns
``builder.build_serialized_network``'s plan. int8 builds attach an
``IInt8EntropyCalibrator2`` (:func:`make_calibrator`) that reads and writes a calibration
cache file; :func:`calibration_inputs` makes its frames.

Every function takes the ``tensorrt`` module as its first argument (``trt``): nothing here
imports TensorRT, and the tests drive :func:`apply_plan` with a stand-in module.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from hax_conn_core.errors import BackendError, InternalError
from hax_conn_core.runtime.backends.tensorrt_config import FORBIDDEN_FLAGS, BuildPlan, TrtApi

if TYPE_CHECKING:  # pragma: no cover
    from hax_conn_core.runtime.backends.base import EngineSpec
    from hax_conn_core.runtime.backends.tensorrt_cuda import CudaApi

#: How many layers a "cannot run on the DLA" message names.
NAMED_LAYERS = 8


def make_logger(trt):
    """A ``trt.ILogger`` that keeps warnings and errors (the last 50) for messages."""

    class CollectingLogger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages: List[str] = []

        def log(self, severity, msg):
            if int(severity) <= int(trt.ILogger.Severity.WARNING):
                name = getattr(severity, "name", str(severity))
                self.messages = self.messages[-49:] + [f"{name}: {msg}"]

        def errors(self) -> str:
            chosen = [m for m in self.messages if not m.startswith("WARNING")] or self.messages
            return "; ".join(chosen[-5:]) or "no message from TensorRT"

    return CollectingLogger()


def apply_plan(trt, config, plan: BuildPlan) -> None:
    """Configure ``config`` (a ``trt.IBuilderConfig``) as ``plan`` says."""
    for name in plan.flags:
        if name in FORBIDDEN_FLAGS:
            raise InternalError(f"builder flag {name} must never be set (docs/conventions.md)")
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in plan.clear_flags:
        flag = getattr(trt.BuilderFlag, name, None)
        if flag is not None:  # TF32 exists from 7.1 on
            config.clear_flag(flag)
    for pool, size in plan.memory_pools.items():
        config.set_memory_pool_limit(getattr(trt.MemoryPoolType, pool), int(size))
    if plan.device_type == "dla":
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = int(plan.dla_core)
    else:
        config.default_device_type = trt.DeviceType.GPU


def network_flags(trt, api: TrtApi) -> int:
    """``create_network``'s flags: EXPLICIT_BATCH before 10.0, none from 10.0 on."""
    if api.explicit_batch:
        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    return 0


def layers_off_dla(config, network) -> List[str]:
    """Names of the network's layers that ``config`` says cannot run on its DLA."""
    names = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        if not config.can_run_on_DLA(layer):
            names.append(f"{layer.name} ({layer.type.name})")
    return names


def build_serialized(trt, api: TrtApi, spec: "EngineSpec", plan: BuildPlan,
                     onnx_bytes: bytes, logger, calibrator=None) -> bytes:
    """The serialized plan of ``spec``'s ONNX model, built as ``plan`` says.

    A parse failure, a layer the DLA cannot run (GPU fallback is off) and a failed build are
    each a BackendError naming the engine.
    """
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, api))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"{spec.label}: TensorRT's ONNX parser refused the range: "
                           f"{errors or logger.errors()}")
    config = builder.create_builder_config()
    apply_plan(trt, config, plan)
    if plan.device_type == "dla":
        if builder.num_DLA_cores <= plan.dla_core:
            raise BackendError(f"{spec.label}: DLA core {plan.dla_core} asked for; this device "
                               f"has {builder.num_DLA_cores} DLA core(s)")
        refused = layers_off_dla(config, network)
        if refused:
            more = len(refused) - NAMED_LAYERS
            listed = ", ".join(refused[:NAMED_LAYERS]) + (f" and {more} more" if more > 0 else "")
            raise BackendError(f"{spec.label}: the DLA cannot run {listed}; GPU fallback is off "
                               "(docs/conventions.md), so a DLA engine must cover only layers the "
                               "DLA runs: check the device description's dla rules or move "
                               "this group to the gpu")
    if plan.calibrate:
        if calibrator is None:
            raise InternalError(f"{spec.label}: an int8 build needs a calibrator")
        config.int8_calibrator = calibrator
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{spec.label}: TensorRT could not build the engine: "
                           f"{logger.errors()}")
    return bytes(serialized)


# --- int8 calibration ------------------------------------------------------------------------

def calibration_inputs(spec: "EngineSpec", count: int, seed: int = 0
                       ) -> List[Dict[str, np.ndarray]]:
    """``count`` sets of the range's inputs for the int8 calibrator.

    Frames are seeded N(0, 1) images at the graph's input; a range that starts inside the DNN
    gets the tensors the layers before it compute from those frames (onnxruntime on the
    CPU), so that its activation ranges are those it sees in a run. Pass your own data
    through the backend option ``calibration_inputs`` for accuracy work.
    """
    from hax_conn_core.graph.onnx_export import export

    graph = spec.graph
    inputs, _ = spec.io()
    rng = np.random.default_rng(seed)
    frames = [{name: rng.standard_normal(graph.shape(name), dtype=np.float32)
               for name in graph.inputs} for _ in range(count)]
    inner = [name for name in inputs if name not in graph.inputs]
    if not inner:
        return [{name: frame[name] for name in inputs} for frame in frames]
    from hax_conn_core.runtime.backends.onnxrt import OnnxRunner

    external: Dict[str, np.ndarray] = {}
    prefix = export(graph, spec.weights, first=0, last=spec.first_layer - 1, outputs=inner,
                    external=external)
    runner = OnnxRunner(prefix, external=external, optimize=False)
    result = []
    for frame in frames:
        computed = runner.run({name: frame[name] for name in runner.inputs})
        result.append({name: frame[name] if name in frame else computed[name]
                       for name in inputs})
    return result


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``."""
    from hax_conn_core.files import atomic_write

    atomic_write(path, data)


def make_calibrator(trt, cuda: "CudaApi", batches: Callable[[], Sequence[Dict[str, Any]]],
                    cache_path: Path):
    """An ``IInt8EntropyCalibrator2`` that reads the calibration cache at ``cache_path`` when
    it exists (TensorRT then skips calibration) and writes it after calibrating. Its frames
    (one per batch) are ``batches()``, called only if TensorRT asks for data. Call ``free()``
    on it after the build."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.cache_path = Path(cache_path)
            self._batches: Optional[List[Dict[str, Any]]] = None
            self._next = 0
            self._buffers: Dict[str, int] = {}
            self._stream = None

        def get_batch_size(self):
            return 1  # explicit-batch networks: the batch is in the input shape

        def get_batch(self, names):
            if self._batches is None:
                self._batches = list(batches())
                self._stream = cuda.stream()
            if self._next >= len(self._batches):
                return None
            batch = self._batches[self._next]
            self._next += 1
            for name in names:
                array = np.ascontiguousarray(batch[name], np.float32)
                if name not in self._buffers:
                    self._buffers[name] = cuda.malloc(array.nbytes)
                cuda.copy_to_device(self._buffers[name], array, self._stream)
            cuda.stream_synchronize(self._stream)
            return [int(self._buffers[name]) for name in names]

        def read_calibration_cache(self):
            try:
                return self.cache_path.read_bytes()
            except OSError:
                return None

        def write_calibration_cache(self, cache):
            write_atomically(self.cache_path, bytes(cache))

        def free(self):
            for pointer in self._buffers.values():
                cuda.free(pointer)
            self._buffers = {}
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
                self._stream = None

    return Calibrator()


def calibration_cache_path(directory: Optional[Path], default_root: Path, name: str) -> Path:
    """Where a range's calibration cache lives: ``directory`` if given, else
    ``<default_root>/calibration``."""
    return (Path(directory) if directory is not None else default_root / "calibration") / name
