"""The tensorrt backend's CUDA layer (tensorrt_cuda.py) on a real CUDA GPU, without TensorRT.

Skipped where no CUDA binding imports or no GPU answers (here, CI). On the device tool's
machine (an H200, cuda-bindings installed; no TensorRT, no DLA) it runs the cuda-python
path for real: buffers, copies, streams, events, the elapsed time, a stream waiting on
another's event, and the frame buffer pool. docs/runtime-tensorrt.md records the run.
"""

import time

import numpy as np
import pytest

from hax_conn_core.errors import BackendError
from hax_conn_core.runtime.backends.base import done_event
from hax_conn_core.runtime.backends.tensorrt_cuda import (BufferPool, CudaEvent, DeviceArray,
                                                          import_cuda_bindings)


def _cuda_or_skip():
    factory, why = import_cuda_bindings()
    if factory is None:
        pytest.skip(f"no CUDA bindings: {why}")
    try:
        cuda = factory()
        cuda.memory_info()
    except Exception as error:  # no driver or no GPU
        pytest.skip(f"no CUDA device: {error}")
    return cuda


@pytest.fixture(scope="module")
def cuda():
    return _cuda_or_skip()


def test_copy_round_trip_through_device_memory(cuda):
    stream = cuda.stream()
    handle = cuda.stream_int(stream)  # what execute_async_v2/v3 take as stream_handle
    assert isinstance(handle, int) and handle != 0
    data = np.arange(4096, dtype=np.float32).reshape(4, 32, 32)
    pointer = cuda.malloc(data.nbytes)
    try:
        cuda.copy_to_device(pointer, data, stream)
        cuda.stream_synchronize(stream)
        back = np.empty_like(data)
        cuda.copy_to_host(back, pointer)
        np.testing.assert_array_equal(back, data)
    finally:
        cuda.free(pointer)
        cuda.stream_destroy(stream)


def test_event_pair_gives_elapsed_time_and_a_second_stream_waits_on_it(cuda):
    first, second = cuda.stream(), cuda.stream()
    data = np.ones(1 << 22, np.float32)  # 16 MiB: a copy that takes measurable time
    pointer = cuda.malloc(data.nbytes)
    try:
        done = CudaEvent(cuda, cuda.event(), cuda.event(), "a copy")
        cuda.record(done.start, first)
        cuda.copy_to_device(pointer, data, first)
        cuda.record(done.end, first)
        cuda.stream_wait(second, done.end)  # on the device; the host does not wait here
        after = CudaEvent(cuda, cuda.event(), label="the waiting stream")
        cuda.record(after.end, second)
        after.wait(timeout_s=30)
        assert done.query()  # the waiting stream finished, so what it waited on had
        elapsed = done.elapsed_ms()
        assert 0 < elapsed < 10_000
    finally:
        cuda.free(pointer)
        cuda.stream_destroy(first)
        cuda.stream_destroy(second)


def test_pool_hands_a_buffer_out_again_only_after_its_readers(cuda):
    pool = BufferPool(cuda)
    stream = cuda.stream()
    try:
        array = pool.array((1, 3, 8, 8))
        pointer = array.pointer
        reader = CudaEvent(cuda, cuda.event(), label="a reader")
        cuda.record(reader.end, stream)
        array.read_by(reader)
        view = array.after(done_event())
        del array
        assert pool.bytes_held() == 0  # the view keeps the memory in use
        del view
        assert pool.bytes_held() == 1 * 3 * 8 * 8 * 4
        again = pool.array((1, 3, 8, 8))
        assert again.pointer == pointer and reader.query()
        other = pool.array((2, 3, 8, 8))
        assert other.pointer != pointer
    finally:
        pool.close()
        cuda.stream_destroy(stream)


def test_cuda_errors_are_backend_errors(cuda):
    with pytest.raises(BackendError, match="CUDA"):
        cuda.malloc(1 << 60)


def test_waiting_with_a_timeout_polls_until_done(cuda):
    stream = cuda.stream()
    try:
        event = CudaEvent(cuda, cuda.event())
        cuda.record(event.end, stream)
        start = time.perf_counter()
        event.wait(timeout_s=10)
        assert event.query() and time.perf_counter() - start < 10
        assert np.isnan(event.elapsed_ms())  # no start event recorded
    finally:
        cuda.stream_destroy(stream)


def test_device_array_shape_and_size():
    array = DeviceArray(0x1000, (1, 64, 56, 56))
    assert array.nbytes == 64 * 56 * 56 * 4 and array.dtype == np.float32
    assert "0x1000" in repr(array)
