"""CUDA for the ``tensorrt`` backend: device buffers, streams and events.

:func:`load_cuda` returns a :class:`CudaApi` over whichever bindings import: cuda-python's
runtime API (``cuda.bindings.runtime``, or ``cuda.cudart`` before cuda-python 12.6), else
pycuda (on the device's primary context, the one TensorRT uses). Every CUDA call's error
becomes a BackendError naming the call. On top of it:

* :class:`DeviceArray`: a tensor in device memory (pointer, shape, dtype), and the event
  after which its contents are valid. It is what engines take as inputs and return as
  outputs; on a Jetson the GPU and the DLAs read the same DRAM, so a receiving engine binds
  the sender's buffer as its input and reads it in place.
* :class:`CudaEvent`: the base interface's Event over a CUDA event (with its start event,
  for the elapsed time); a receiving stream waits on it with ``cudaStreamWaitEvent``, with
  no host round trip.
* :class:`BufferPool`: device buffers for frames (``Backend.from_host``), reused once every
  engine that read them has finished.

Nothing here imports a CUDA binding at module level.
"""

from __future__ import annotations

import contextlib
import importlib
import time
import weakref
from collections import defaultdict
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from hax_conn_core.errors import BackendError
from hax_conn_core.runtime.backends.base import Event

#: Poll interval of a CUDA event waited on with a timeout.
POLL_S = 0.0002


def import_cuda_bindings() -> Tuple[Optional[Callable[[], "CudaApi"]], Optional[str]]:
    """(a factory of the CudaApi, None) if some CUDA binding imports, else (None, why)."""
    errors = []
    for module in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            runtime = importlib.import_module(module)
        except ImportError as error:
            errors.append(str(error))
        else:
            return (lambda: CudaPythonApi(runtime, module)), None
    try:
        import pycuda.driver as driver
    except ImportError as error:
        errors.append(str(error))
        return None, ("none of cuda.bindings.runtime, cuda.cudart, pycuda.driver imports: "
                      f"{'; '.join(dict.fromkeys(errors))}")
    return (lambda: PyCudaApi(driver)), None


def load_cuda() -> "CudaApi":
    """A CudaApi over the first CUDA binding that imports (SetupError-free: the backend
    reports a missing binding together with a missing TensorRT)."""
    factory, why = import_cuda_bindings()
    if factory is None:
        raise BackendError(f"no CUDA Python bindings: {why}")
    return factory()


class CudaApi:
    """The few CUDA calls the backend makes. Streams and events are opaque handles."""

    name = ""

    def malloc(self, nbytes: int) -> int: raise NotImplementedError
    def free(self, pointer: int) -> None: raise NotImplementedError
    def stream(self) -> Any: raise NotImplementedError
    def stream_destroy(self, stream: Any) -> None: raise NotImplementedError
    def stream_int(self, stream: Any) -> int: raise NotImplementedError
    def stream_wait(self, stream: Any, event: Any) -> None: raise NotImplementedError
    def stream_synchronize(self, stream: Any) -> None: raise NotImplementedError
    def event(self) -> Any: raise NotImplementedError
    def event_destroy(self, event: Any) -> None: raise NotImplementedError
    def record(self, event: Any, stream: Any) -> None: raise NotImplementedError
    def query(self, event: Any) -> bool: raise NotImplementedError
    def synchronize(self, event: Any) -> None: raise NotImplementedError
    def elapsed_ms(self, start: Any, end: Any) -> float: raise NotImplementedError
    def copy_to_device(self, pointer, array, stream) -> None: raise NotImplementedError
    def copy_to_host(self, array, pointer) -> None: raise NotImplementedError
    def memory_info(self) -> Tuple[int, int]: raise NotImplementedError


class CudaPythonApi(CudaApi):
    """cuda-python's runtime API (the primary context, shared by every thread)."""

    def __init__(self, runtime, module: str):
        self.rt = runtime
        self.name = module
        self._not_ready = runtime.cudaError_t.cudaErrorNotReady

    def _call(self, what: str, result):
        error, rest = result[0], result[1:]
        if int(error) != 0:
            raise BackendError(f"CUDA {what} failed: {getattr(error, 'name', error)}")
        return rest[0] if len(rest) == 1 else rest

    def malloc(self, nbytes):
        return int(self._call("cudaMalloc", self.rt.cudaMalloc(max(1, int(nbytes)))))

    def free(self, pointer):
        self._call("cudaFree", self.rt.cudaFree(pointer))

    def stream(self):
        return self._call("cudaStreamCreateWithFlags",
                          self.rt.cudaStreamCreateWithFlags(self.rt.cudaStreamNonBlocking))

    def stream_destroy(self, stream):
        self._call("cudaStreamDestroy", self.rt.cudaStreamDestroy(stream))

    def stream_int(self, stream):
        return int(stream)

    def stream_wait(self, stream, event):
        self._call("cudaStreamWaitEvent", self.rt.cudaStreamWaitEvent(stream, event, 0))

    def stream_synchronize(self, stream):
        self._call("cudaStreamSynchronize", self.rt.cudaStreamSynchronize(stream))

    def event(self):
        # Blocking sync: a host wait sleeps instead of spinning a CPU core (a Jetson has few).
        return self._call("cudaEventCreateWithFlags",
                          self.rt.cudaEventCreateWithFlags(self.rt.cudaEventBlockingSync))

    def event_destroy(self, event):
        self._call("cudaEventDestroy", self.rt.cudaEventDestroy(event))

    def record(self, event, stream):
        self._call("cudaEventRecord", self.rt.cudaEventRecord(event, stream))

    def query(self, event):
        error = self.rt.cudaEventQuery(event)[0]
        if error == self._not_ready:
            return False
        self._call("cudaEventQuery", (error,))
        return True

    def synchronize(self, event):
        self._call("cudaEventSynchronize", self.rt.cudaEventSynchronize(event))

    def elapsed_ms(self, start, end):
        return float(self._call("cudaEventElapsedTime", self.rt.cudaEventElapsedTime(start, end)))

    def copy_to_device(self, pointer, array, stream):
        # From pageable memory the call returns once the source is staged: the caller may
        # drop ``array`` afterwards.
        self._call("cudaMemcpyAsync", self.rt.cudaMemcpyAsync(
            pointer, array.ctypes.data, array.nbytes,
            self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))

    def copy_to_host(self, array, pointer):
        self._call("cudaMemcpy", self.rt.cudaMemcpy(
            array.ctypes.data, pointer, array.nbytes,
            self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost))

    def memory_info(self):
        free, total = self._call("cudaMemGetInfo", self.rt.cudaMemGetInfo())
        return int(free), int(total)


class PyCudaApi(CudaApi):
    """pycuda on the device's primary context, pushed around each call (pycuda contexts are
    per thread; the executors call from their own threads)."""

    name = "pycuda"

    def __init__(self, driver):
        self.drv = driver
        driver.init()
        self._context = driver.Device(0).retain_primary_context()
        self._allocations: Dict[int, Any] = {}

    @contextlib.contextmanager
    def _on_device(self, what: str):
        self._context.push()
        try:
            yield
        except self.drv.Error as error:
            raise BackendError(f"CUDA {what} failed: {error}") from None
        finally:
            self.drv.Context.pop()

    def malloc(self, nbytes):
        with self._on_device("mem_alloc"):
            allocation = self.drv.mem_alloc(max(1, int(nbytes)))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def free(self, pointer):
        with self._on_device("free"):
            self._allocations.pop(pointer).free()

    def stream(self):
        with self._on_device("Stream"):
            return self.drv.Stream(flags=1)  # CU_STREAM_NON_BLOCKING

    def stream_destroy(self, stream):
        pass  # freed with the object

    def stream_int(self, stream):
        return int(stream.handle)

    def stream_wait(self, stream, event):
        with self._on_device("Stream.wait_for_event"):
            stream.wait_for_event(event)

    def stream_synchronize(self, stream):
        with self._on_device("Stream.synchronize"):
            stream.synchronize()

    def event(self):
        with self._on_device("Event"):
            return self.drv.Event(flags=self.drv.event_flags.BLOCKING_SYNC)

    def event_destroy(self, event):
        pass  # freed with the object

    def record(self, event, stream):
        with self._on_device("Event.record"):
            event.record(stream)

    def query(self, event):
        with self._on_device("Event.query"):
            return bool(event.query())

    def synchronize(self, event):
        with self._on_device("Event.synchronize"):
            event.synchronize()

    def elapsed_ms(self, start, end):
        with self._on_device("Event.time_since"):
            return float(end.time_since(start))

    def copy_to_device(self, pointer, array, stream):
        # pycuda's async copies need page-locked memory; a synchronous copy is safe here
        # because a slot's buffers are rewritten only after its previous frame-set ended.
        with self._on_device("memcpy_htod"):
            self.drv.memcpy_htod(pointer, array)

    def copy_to_host(self, array, pointer):
        with self._on_device("memcpy_dtoh"):
            self.drv.memcpy_dtoh(array, pointer)

    def memory_info(self):
        with self._on_device("mem_get_info"):
            free, total = self.drv.mem_get_info()
        return int(free), int(total)


# --- events and arrays -----------------------------------------------------------------------

def _destroy_quietly(cuda: CudaApi, *handles) -> None:
    for handle in handles:
        if handle is not None:
            try:
                cuda.event_destroy(handle)
            except Exception:  # at interpreter exit CUDA may be gone already
                pass


class CudaEvent(Event):
    """Completion of one engine run on its stream: ``end`` recorded after the run, ``start``
    before it (for :meth:`elapsed_ms`). The CUDA events are destroyed with this object."""

    def __init__(self, cuda: CudaApi, end: Any, start: Any = None, label: str = ""):
        self.cuda = cuda
        self.end = end
        self.start = start
        self.label = label
        weakref.finalize(self, _destroy_quietly, cuda, start, end)

    def wait(self, timeout_s: Optional[float] = None) -> None:
        if timeout_s is None:
            self.cuda.synchronize(self.end)
            return
        deadline = time.perf_counter() + timeout_s
        while not self.cuda.query(self.end):
            if time.perf_counter() > deadline:
                raise BackendError(f"timed out after {timeout_s} s waiting for "
                                   f"{self.label or 'a TensorRT engine'} to finish")
            time.sleep(POLL_S)

    def query(self) -> bool:
        return self.cuda.query(self.end)

    def elapsed_ms(self) -> float:
        """Milliseconds between the start and end events (waits for the end)."""
        self.wait()
        if self.start is None:
            return float("nan")
        return self.cuda.elapsed_ms(self.start, self.end)


class DeviceArray:
    """A tensor in device memory: ``pointer`` (an integer address), ``shape``, ``dtype``.

    ``ready`` is the event after which the contents are valid (None: valid now). ``uses``
    collects the events of the runs that read it, where its memory is recycled
    (:class:`BufferPool`); None where the owner keeps it (an engine's own buffers).
    """

    __slots__ = ("pointer", "shape", "dtype", "ready", "uses", "_base", "__weakref__")

    def __init__(self, pointer: int, shape, dtype=np.float32, ready: Optional[Event] = None,
                 uses: Optional[List[Event]] = None):
        self.pointer = int(pointer)
        self.shape = tuple(int(d) for d in shape)
        self.dtype = np.dtype(dtype)
        self.ready = ready
        self.uses = uses
        self._base: Optional["DeviceArray"] = None  # the array whose memory this one views

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def after(self, ready: Event) -> "DeviceArray":
        """The same memory, valid after ``ready`` (keeps the memory's owner alive)."""
        view = DeviceArray(self.pointer, self.shape, self.dtype, ready, self.uses)
        view._base = self._base if self._base is not None else self
        return view

    def read_by(self, event: Event) -> None:
        """Note that a run finishing at ``event`` reads this memory."""
        if self.uses is not None:
            self.uses[:] = [e for e in self.uses if not e.query()]
            self.uses.append(event)

    def __repr__(self) -> str:
        return f"DeviceArray(0x{self.pointer:x}, shape={self.shape}, dtype={self.dtype})"


class BufferPool:
    """Device buffers for frames, by size; a buffer returns to the pool when its
    DeviceArray is garbage-collected, and is handed out again only after every run that
    read it has finished."""

    def __init__(self, cuda: CudaApi):
        self.cuda = cuda
        self._free: Dict[int, List[Tuple[int, List[Event]]]] = defaultdict(list)
        self._owned: List[int] = []
        self.closed = False

    def array(self, shape, dtype=np.float32) -> DeviceArray:
        """A DeviceArray of ``shape`` from the pool (contents undefined); its memory returns
        to the pool when it and every view of it (:meth:`DeviceArray.after`) are gone."""
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if self._free[nbytes]:
            pointer, uses = self._free[nbytes].pop()
            for event in uses:
                event.wait()
        else:
            pointer = self.cuda.malloc(nbytes)
            self._owned.append(pointer)
        array = DeviceArray(pointer, shape, dtype, uses=[])
        weakref.finalize(array, self._give_back, nbytes, pointer, array.uses)
        return array

    def _give_back(self, nbytes: int, pointer: int, uses: List[Event]) -> None:
        if not self.closed:
            self._free[nbytes].append((pointer, uses))

    def bytes_held(self) -> int:
        return sum(n * len(entries) for n, entries in self._free.items())

    def close(self) -> None:
        """Free every buffer (arrays still referenced become invalid)."""
        self.closed = True
        for pointer in self._owned:
            try:
                self.cuda.free(pointer)
            except BackendError:
                pass
        self._owned.clear()
        self._free.clear()
