"""The backend interface: engines for ranges of a model graph, each run on one accelerator.

A *backend* hides an accelerator runtime (onnxruntime on the CPU, torch on CUDA partitions,
TensorRT on a Jetson). It names its accelerators, builds an :class:`Engine` for a contiguous
range of layers of a graph on one of them at one precision, and runs it there. Code above this
interface (the executors, the profiler, the ROS nodes) never asks which backend it has.

The public methods check their arguments and state, then call the ``_..._impl`` methods each
backend overrides (the shape of Polygraphy's runners). docs/runtime.md describes the contract;
this docstring is its summary:

* ``Backend.open()`` / ``close()`` (or ``with backend:``) acquire and free the accelerators
  (thread pools, CUDA partitions, DLA cores).
* ``Backend.build(spec, slots=1, inputs_from=None)`` -> :class:`Engine`. ``slots`` is the number
  of buffer sets (one per frame-set in flight); ``inputs_from`` is the engine whose outputs feed
  this one: where both accelerators see the same memory, the backend binds this engine's inputs
  to those buffers so that a hand-over reads the tensor in place. A build failure is a
  :class:`BackendError` naming the engine.
* ``Engine.run(inputs, slot=0, wait_for=())`` launches the range on its accelerator after the
  events in ``wait_for`` (the sender's completion: no host round trip where the backend can
  avoid one) and returns a :class:`Launch`: the outputs (backend-native arrays: numpy on the
  CPU, device tensors on CUDA) and a completion :class:`Event`. ``Launch.elapsed_ms()`` is the
  time the range took on its accelerator, once the event is done.
* ``Backend.memory_stream(acc, target_gbps)`` -> :class:`MemoryStream`: memory traffic of a
  set bandwidth on ``acc`` (the profiler's stressor and probes).
* ``Backend.to_host(value)`` -> numpy array (for results); ``Backend.from_host(array, acc)``
  places a frame where an engine of ``acc`` reads it.
* Buffer slots: the caller never runs an engine in slot ``s`` again before the frame-set that
  last used slot ``s`` has completed (every launch in it done and its outputs read). In-place
  hand-overs rely on this: a receiver reads the sender's slot-``s`` buffers as they are.

Failures inside a backend's own code surface as :class:`BackendError`; the base class wraps any
other exception from an ``_impl`` method into one, naming the engine, so that one engine's
failure fails one frame and never the executor.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Any, ClassVar, Dict, List, Mapping, Optional, Sequence,
                    Tuple)

import numpy as np

from hax_conn_core.errors import BackendError, ConfigError, HaxConnError

if TYPE_CHECKING:  # pragma: no cover
    from hax_conn_core.graph.model import Graph
    from hax_conn_core.runtime.device import RuntimeDevice

#: Precisions an engine can be built for; a backend supports a subset per accelerator.
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class EngineSpec:
    """What to build: layers ``first_layer..last_layer`` of ``graph`` (inclusive, the DNN's
    layer indices, docs/conventions.md) on ``accelerator`` at ``precision``.

    ``weights`` is the whole graph's weights dict (layer name -> blobs, docs/execution.md); the
    range takes its layers' blobs from it. ``weights_id`` says which weights they are (e.g.
    ``seeded:0`` or a file's sha256) and enters the engine cache key.
    """

    dnn: str
    graph: "Graph" = field(repr=False, compare=False)
    weights: Mapping[str, List[np.ndarray]] = field(repr=False, compare=False)
    weights_id: str
    first_layer: int
    last_layer: int
    accelerator: str
    precision: str = "fp32"

    @property
    def label(self) -> str:
        """``googlenet layers 0-24 on dla (fp16)``: how messages name the engine."""
        return (f"{self.dnn} layers {self.first_layer}-{self.last_layer} on "
                f"{self.accelerator} ({self.precision})")

    def io(self) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
        """(input tensor names, output tensor names) of the range."""
        from hax_conn_core.graph.onnx_export import layer_range

        chosen = layer_range(self.graph, self.first_layer, self.last_layer)
        return tuple(chosen.inputs), tuple(chosen.outputs)


class Event:
    """Completion of work on one accelerator. ``wait()`` blocks the calling thread until the
    work is done and raises the work's error, if it failed; ``query()`` does not block."""

    def wait(self, timeout_s: Optional[float] = None) -> None:
        raise NotImplementedError

    def query(self) -> bool:
        raise NotImplementedError


class HostEvent(Event):
    """An event set from the host (CPU backends, and failures everywhere)."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._error: Optional[BaseException] = None
        self.time_s: Optional[float] = None  # perf_counter() when it was set

    def set(self, error: Optional[BaseException] = None) -> None:
        self._error = error
        self.time_s = time.perf_counter()
        self._flag.set()

    def wait(self, timeout_s: Optional[float] = None) -> None:
        if not self._flag.wait(timeout_s):
            raise BackendError(f"timed out after {timeout_s} s waiting for an engine to finish")
        if self._error is not None:
            raise self._error

    def query(self) -> bool:
        return self._flag.is_set()


def done_event() -> HostEvent:
    """An event that is already set."""
    event = HostEvent()
    event.set()
    return event


@dataclass
class Launch:
    """One run of an engine: its outputs (backend-native arrays, valid once ``done`` is),
    its completion event, and how to read the time it took on its accelerator."""

    outputs: Dict[str, Any]
    done: Event
    _elapsed: Any = field(default=None, repr=False)  # callable -> ms, or a number

    def elapsed_ms(self, timeout_s: Optional[float] = None) -> float:
        """Time the range took on its accelerator (waits for ``done`` first, at most
        ``timeout_s``: a BackendError after that)."""
        self.done.wait(timeout_s)
        value = self._elapsed() if callable(self._elapsed) else self._elapsed
        return float("nan") if value is None else float(value)


class MemoryStream:
    """Memory traffic of tunable bandwidth on one accelerator (:meth:`Backend.memory_stream`):
    the profiler's contention stressor and probes, and its peak bandwidth (docs/profiler.md).

    ``start()`` runs it in the background until ``stop()``, which returns the GB/s it achieved
    (bytes read + written per second, measured where the traffic runs: CUDA events on a GPU);
    ``transfer(total_bytes)`` moves that many bytes in the calling thread and returns the
    seconds it took. Both keep to ``target_gbps`` (None: as fast as it goes), which may be
    changed between runs. ``close()`` frees the buffers.
    """

    def __init__(self, accelerator: str, target_gbps: Optional[float] = None):
        self.accelerator = accelerator
        self.target_gbps = target_gbps

    def describe(self) -> str:
        """How it moves its bytes, for the profile's ``peak_bandwidth_source``."""
        return type(self).__name__

    def start(self) -> "MemoryStream":
        raise NotImplementedError

    def stop(self) -> float:
        raise NotImplementedError

    def transfer(self, total_bytes: int) -> float:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Engine:
    """A built range of layers on one accelerator. Made by :meth:`Backend.build` only."""

    def __init__(self, backend: "Backend", spec: EngineSpec, slots: int,
                 input_shapes: Mapping[str, Tuple[int, ...]],
                 output_shapes: Mapping[str, Tuple[int, ...]]):
        self.backend = backend
        self.spec = spec
        self.slots = slots
        self.input_shapes = dict(input_shapes)
        self.output_shapes = dict(output_shapes)
        self.released = False

    @property
    def input_names(self) -> Tuple[str, ...]:
        return tuple(self.input_shapes)

    @property
    def output_names(self) -> Tuple[str, ...]:
        return tuple(self.output_shapes)

    def run(self, inputs: Mapping[str, Any], slot: int = 0,
            wait_for: Sequence[Event] = ()) -> Launch:
        """Launch the range on its accelerator once every event in ``wait_for`` is done.

        ``inputs`` maps each input tensor name to a backend-native array (an output of another
        engine, or what :meth:`Backend.from_host` made of a frame) of the expected shape.
        """
        if self.released:
            raise BackendError(f"{self.spec.label}: engine already released")
        if not (isinstance(slot, int) and 0 <= slot < self.slots):
            raise BackendError(f"{self.spec.label}: buffer slot {slot!r}; expected 0.."
                               f"{self.slots - 1}")
        missing = [name for name in self.input_shapes if name not in inputs]
        if missing:
            raise BackendError(f"{self.spec.label}: missing inputs {missing}; expected "
                               f"{list(self.input_shapes)}")
        for name, expected in self.input_shapes.items():
            shape = tuple(getattr(inputs[name], "shape", ()))
            if shape != tuple(expected):
                raise BackendError(f"{self.spec.label}: input {name!r} has shape {shape}; "
                                   f"expected {tuple(expected)}")
        try:
            return self._run_impl({name: inputs[name] for name in self.input_shapes}, slot,
                                  tuple(wait_for))
        except HaxConnError:
            raise
        except Exception as error:  # a framework's own exception types
            raise BackendError(f"{self.spec.label} failed to run on "
                               f"{self.backend.name}: {type(error).__name__}: {error}") from error

    def layer_times_ms(self, slot: int = 0) -> Optional[Dict[str, float]]:
        """Per-layer times of the last run in ``slot`` where the backend measures them
        (TensorRT's IProfiler); None where it does not."""
        return None

    def output_buffers(self, slot: int = 0) -> Optional[Dict[str, Any]]:
        """The arrays this engine writes its outputs to in ``slot``, where they are fixed
        (CUDA graphs), so that a receiving engine can bind them as its inputs; else None."""
        return None

    def memory_bytes(self) -> int:
        """Device memory this engine holds (weights, buffers, workspace), as far as known."""
        return int(self._memory_bytes_impl())

    def release(self) -> None:
        """Free what the engine holds; further runs are refused."""
        if not self.released:
            self.released = True
            self._release_impl()

    # --- for backends ------------------------------------------------------------------------
    def _run_impl(self, inputs: Dict[str, Any], slot: int, wait_for: Tuple[Event, ...]
                  ) -> Launch:
        raise NotImplementedError

    def _memory_bytes_impl(self) -> int:
        return 0

    def _release_impl(self) -> None:
        pass


class Backend:
    """An accelerator runtime behind one interface (see the module docstring).

    ``device`` is the runtime device description (:mod:`hax_conn_core.runtime.device`): which
    accelerators there are and this backend's settings for each. ``cache`` is an
    :class:`~hax_conn_core.runtime.cache.EngineCache` (None: no on-disk cache).
    """

    #: The name users select the backend by (``--backend``).
    name: ClassVar[str] = ""
    #: Whether engines have a serialisable artefact the engine cache can keep.
    cacheable: ClassVar[bool] = False

    def __init__(self, device: Optional["RuntimeDevice"] = None, cache=None,
                 **options: Any) -> None:
        from hax_conn_core.runtime.device import default_device

        self.device = device if device is not None else default_device(self.name)
        self.cache = cache
        self.options = dict(options)
        self.is_open = False
        self._lock = threading.Lock()
        self._check_options_impl()

    # --- what it is --------------------------------------------------------------------------
    @property
    def accelerators(self) -> Tuple[str, ...]:
        return tuple(self.device.accelerators)

    @property
    def version(self) -> str:
        """Version of the framework underneath (enters the engine cache key)."""
        return str(self._version_impl())

    def describe(self) -> Dict[str, Any]:
        """Name, version, device and per-accelerator settings: what every result names."""
        info = {"backend": self.name, "version": self.version, "device": self.device.id,
                "accelerators": {a: dict(self.device.settings(self.name, a))
                                 for a in self.accelerators}}
        info.update(self._describe_impl())
        return info

    def supported_precisions(self, accelerator: str) -> Tuple[str, ...]:
        self._check_accelerator(accelerator)
        return tuple(self._precisions_impl(accelerator))

    # --- lifecycle ---------------------------------------------------------------------------
    def open(self) -> "Backend":
        with self._lock:
            if not self.is_open:
                self._open_impl()
                self.is_open = True
        return self

    def close(self) -> None:
        with self._lock:
            if self.is_open:
                self.is_open = False
                self._close_impl()

    def __enter__(self) -> "Backend":
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- engines -----------------------------------------------------------------------------
    def build(self, spec: EngineSpec, slots: int = 1,
              inputs_from: Optional[Engine] = None) -> Engine:
        """An engine for ``spec`` with ``slots`` buffer sets (see the module docstring)."""
        if not self.is_open:
            raise BackendError(f"backend {self.name!r} is not open: use 'with backend:' or "
                               "backend.open() before building engines")
        self._check_accelerator(spec.accelerator)
        if spec.precision not in PRECISIONS:
            raise ConfigError(f"precision {spec.precision!r}: expected one of "
                              f"{', '.join(PRECISIONS)}")
        allowed = self.supported_precisions(spec.accelerator)
        if spec.precision not in allowed:
            raise ConfigError(f"backend {self.name!r} runs {', '.join(allowed)} on "
                              f"{spec.accelerator}; {spec.precision} was asked for")
        if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
            raise ConfigError(f"slots: expected an integer >= 1, found {slots!r}")
        if not (0 <= spec.first_layer <= spec.last_layer < len(spec.graph.layers)):
            raise BackendError(f"{spec.label}: layer range outside 0.."
                               f"{len(spec.graph.layers) - 1}")
        try:
            return self._build_impl(spec, slots, inputs_from)
        except HaxConnError:
            raise
        except Exception as error:  # a framework's own exception types
            raise BackendError(f"{spec.label}: {self.name} could not build the engine: "
                               f"{type(error).__name__}: {error}") from error

    def to_host(self, value: Any) -> np.ndarray:
        """A backend-native array as a numpy array (waits for the data where needed)."""
        return self._to_host_impl(value)

    def from_host(self, array: np.ndarray, accelerator: str) -> Any:
        """A frame (numpy) placed where engines on ``accelerator`` read their inputs."""
        self._check_accelerator(accelerator)
        return self._from_host_impl(np.ascontiguousarray(array), accelerator)

    def memory_stream(self, accelerator: str,
                      target_gbps: Optional[float] = None) -> MemoryStream:
        """A :class:`MemoryStream` on ``accelerator`` (its cores, or its partition's stream)
        paced to ``target_gbps`` (None: flat out); a BackendError where the backend has none."""
        self._check_accelerator(accelerator)
        if not self.is_open:
            raise BackendError(f"backend {self.name!r} is not open: open it before making a "
                               "memory stream")
        if target_gbps is not None and not (isinstance(target_gbps, (int, float))
                                            and not isinstance(target_gbps, bool)
                                            and target_gbps > 0):
            raise ConfigError(f"memory stream target: expected a bandwidth > 0 in GB/s or "
                              f"None, found {target_gbps!r}")
        try:
            return self._memory_stream_impl(accelerator, target_gbps)
        except HaxConnError:
            raise
        except Exception as error:  # a framework's own exception types
            raise BackendError(f"{self.name}: could not make a memory stream on {accelerator}: "
                               f"{type(error).__name__}: {error}") from error

    def _check_accelerator(self, accelerator: str) -> None:
        if accelerator not in self.accelerators:
            raise ConfigError(f"backend {self.name!r} on device {self.device.id!r} has no "
                              f"accelerator {accelerator!r}; expected one of "
                              f"{', '.join(self.accelerators)}")

    # --- for backends ------------------------------------------------------------------------
    def _check_options_impl(self) -> None:
        if self.options:
            raise ConfigError(f"backend {self.name!r} takes no options; found "
                              f"{', '.join(sorted(self.options))}")

    def _version_impl(self) -> str:
        raise NotImplementedError

    def _describe_impl(self) -> Dict[str, Any]:
        return {}

    def _precisions_impl(self, accelerator: str) -> Sequence[str]:
        return ("fp32",)

    def _open_impl(self) -> None:
        pass

    def _close_impl(self) -> None:
        pass

    def _build_impl(self, spec: EngineSpec, slots: int, inputs_from: Optional[Engine]
                    ) -> Engine:
        raise NotImplementedError

    def _to_host_impl(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def _from_host_impl(self, array: np.ndarray, accelerator: str) -> Any:
        return array

    def _memory_stream_impl(self, accelerator: str, target_gbps: Optional[float]
                            ) -> MemoryStream:
        raise BackendError(f"backend {self.name!r} has no memory stream: the profiler cannot "
                           "measure the peak bandwidth or calibrate contention on it")
