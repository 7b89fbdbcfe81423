"""The cuda-sm backend on the GPU machine: green-context partitions, CUDA-graph engines,
zero-copy hand-over between partitions, events, faults.

Needs torch with CUDA and cuda-python (the device tool's machine); elsewhere the module is
skipped. Run there with ``PYTHONPATH=. python3 -m pytest test/device/runtime -q``.
What needs no GPU is tested in test/core/runtime/backends/test_cuda_sm.py.

Tolerances: fp16 engines against onnxruntime fp32, max |logit diff| / max |logit| <= 0.1 for
the DNNs here (H100 torch run: at most 3.1e-2 for them, docs/execution.md); fp32 (TF32 off)
<= 1e-4; a split against the whole, both fp16 on cuda-sm, <= 2e-2.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():  # pragma: no cover - CPU-only torch
    pytest.skip("no CUDA device", allow_module_level=True)
pytest.importorskip("cuda.bindings")

from hax_conn_core.errors import BackendError, ConfigError  # noqa: E402
from hax_conn_core.graph.cuts import cut_tensor  # noqa: E402
from hax_conn_core.graph.grouping import group_layers  # noqa: E402
from hax_conn_core.graph.prototxt import load_prototxt  # noqa: E402
from hax_conn_core.models import get_model  # noqa: E402
from hax_conn_core.runtime.backends import get_backend  # noqa: E402
from hax_conn_core.runtime.backends.base import EngineSpec  # noqa: E402
from hax_conn_core.runtime.backends.cuda_sm import CudaEvent  # noqa: E402
from hax_conn_core.runtime.device import RuntimeDevice, load_runtime_device  # noqa: E402
from test.device.runtime.helpers import ort, seeded  # noqa: E402

FP16_RTOL = 0.1
FP32_RTOL = 1e-4
SPLIT_RTOL = 2e-2


@pytest.fixture(scope="module")
def backend():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    with get_backend("cuda-sm") as opened:
        yield opened
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


class Net:
    """A DNN with its weights, a seeded input, and onnxruntime's logits for it."""

    def __init__(self, model_id):
        self.id = model_id
        self.graph = load_prototxt(get_model(model_id).prototxt)
        self.weights = seeded(self.graph)
        (self.input,) = self.graph.inputs
        softmax = self.graph.producer(self.graph.outputs[0])
        self.logits = softmax.bottoms[0]
        self.last = softmax.index - 1  # engines here end at the logits
        self.x = np.random.default_rng(1234).standard_normal(self.graph.shape(self.input),
                                                             dtype=np.float32)
        self.reference = ort(self.graph, self.weights, {self.input: self.x},
                             extra_outputs=(self.logits,))[self.logits]

    def spec(self, first, last, acc, precision="fp16"):
        return EngineSpec(self.id, self.graph, self.weights, "seeded:0", first, last, acc,
                          precision)

    def rel(self, got, reference=None):
        reference = self.reference if reference is None else reference
        return float(np.abs(got - reference).max()) / float(np.abs(reference).max())


@pytest.fixture(scope="module", params=["googlenet", "resnet50"])
def net(request):
    return Net(request.param)


@pytest.fixture(scope="module")
def googlenet():
    return Net("googlenet")


def run_whole(backend, net, acc, precision="fp16"):
    engine = backend.build(net.spec(0, net.last, acc, precision))
    try:
        launch = engine.run({net.input: backend.from_host(net.x, acc)})
        assert launch.elapsed_ms() > 0
        return backend.to_host(launch.outputs[net.logits])
    finally:
        engine.release()


def test_describe_names_the_split(backend):
    info = backend.describe()
    assert info["backend"] == "cuda-sm" and info["device"] == "emulated-h200"
    assert info["split"] == "gpu 124 + dla 8 SMs"
    assert info["partition_sms"] == {"gpu": 124, "dla": 8}
    assert info["card_sms"] == torch.cuda.get_device_properties(0).multi_processor_count


@pytest.mark.parametrize("acc", ["gpu", "dla"])
def test_whole_fp16_on_each_partition_matches_onnxruntime(backend, net, acc):
    got = run_whole(backend, net, acc)
    assert got.dtype == np.float32 and np.all(np.isfinite(got))
    assert net.rel(got) <= FP16_RTOL
    assert np.argmax(got) == np.argmax(net.reference)


def test_whole_fp32_matches_onnxruntime(backend, googlenet):
    assert googlenet.rel(run_whole(backend, googlenet, "gpu", "fp32")) <= FP32_RTOL


def split_point(net):
    boundaries = [g.last for g in group_layers(net.graph)[:-1] if g.last < net.last]
    return boundaries[len(boundaries) // 2]


def test_split_across_partitions_reads_in_place(backend, net):
    cut = split_point(net)
    tensor = cut_tensor(net.graph, cut)
    whole = run_whole(backend, net, "gpu")
    part_a = backend.build(net.spec(0, cut, "gpu"), slots=2)
    part_b = backend.build(net.spec(cut + 1, net.last, "dla"), slots=2, inputs_from=part_a)
    copied = backend.build(net.spec(cut + 1, net.last, "dla"))
    assert part_b.bound == [(tensor,), (tensor,)] and copied.bound == [()]
    for slot in (0, 1):
        assert part_b.input_buffers(slot)[tensor] is part_a.output_buffers(slot)[tensor]
    la = part_a.run({net.input: backend.from_host(net.x, "gpu")}, slot=1)
    lb = part_b.run(la.outputs, slot=1, wait_for=[la.done])
    got = backend.to_host(lb.outputs[net.logits])
    assert net.rel(got, whole) <= SPLIT_RTOL and net.rel(got) <= FP16_RTOL
    # The same hand-over with a copy (no inputs_from) gives the same numbers.
    lc = copied.run(la.outputs, wait_for=[la.done])
    np.testing.assert_array_equal(backend.to_host(lc.outputs[net.logits]), got)
    for engine in (copied, part_b, part_a):
        engine.release()


def test_slots_keep_frames_apart(backend, googlenet):
    net = googlenet
    engine = backend.build(net.spec(0, net.last, "gpu"), slots=3)
    frames = [np.random.default_rng(seed).standard_normal(net.x.shape, dtype=np.float32)
              for seed in range(3)]
    launches = [engine.run({net.input: backend.from_host(frame, "gpu")}, slot=slot)
                for slot, frame in enumerate(frames)]
    got = [backend.to_host(launch.outputs[net.logits]) for launch in launches]
    for slot, frame in enumerate(frames):
        expected = ort(net.graph, net.weights, {net.input: frame},
                       extra_outputs=(net.logits,))[net.logits]
        assert net.rel(got[slot], expected) <= FP16_RTOL
    assert not np.array_equal(got[0], got[1])
    engine.release()


def test_partitions_overlap_in_time(backend, googlenet):
    """One engine per partition, each launched 5 times after a common reference event: the
    partitions' busy spans overlap (event timestamps, no host clock)."""
    net = googlenet
    engines = {acc: backend.build(net.spec(0, net.last, acc)) for acc in ("gpu", "dla")}
    inputs = {acc: {net.input: backend.from_host(net.x, acc)} for acc in engines}
    for acc, engine in engines.items():
        engine.run(inputs[acc]).done.wait()
    reference = torch.cuda.Event(enable_timing=True)
    reference.record(backend.stream("gpu"))
    ref = CudaEvent(reference, "gpu")
    launches = {acc: [] for acc in engines}
    for _ in range(5):
        for acc, engine in engines.items():
            launches[acc].append(engine.run(inputs[acc], wait_for=[ref]))
    spans = {}
    for acc, runs in launches.items():
        runs[-1].done.wait()
        spans[acc] = (runs[0].start.elapsed_ms_since(ref), runs[-1].done.elapsed_ms_since(ref))
    overlap = min(spans["gpu"][1], spans["dla"][1]) - max(spans["gpu"][0], spans["dla"][0])
    assert overlap > 0.5 * (spans["gpu"][1] - spans["gpu"][0]), spans
    for engine in engines.values():
        engine.release()


@pytest.mark.parametrize("fault", ["run:dla", "build:dla"])
def test_injected_fault_on_one_partition_leaves_the_other_running(backend, googlenet, fault):
    net = googlenet
    backend.close()  # one set of green contexts at a time
    try:
        with get_backend("cuda-sm", fault=fault) as faulty:
            gpu = faulty.build(net.spec(0, net.last, "gpu"))
            if fault.startswith("build"):
                with pytest.raises(BackendError, match="injected fault"):
                    faulty.build(net.spec(0, net.last, "dla"))
            else:
                dla = faulty.build(net.spec(0, net.last, "dla"))
                with pytest.raises(BackendError, match="dla.*injected fault"):
                    dla.run({net.input: faulty.from_host(net.x, "dla")})
            for _ in range(3):
                launch = gpu.run({net.input: faulty.from_host(net.x, "gpu")})
                assert net.rel(faulty.to_host(launch.outputs[net.logits])) <= FP16_RTOL
    finally:
        backend.open()


def test_split_larger_than_the_card_is_refused_at_open():
    base = load_runtime_device("emulated-h200")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    device = RuntimeDevice(id="too-big", accelerators=base.accelerators,
                           runtime={"cuda-sm": {"gpu": {"sms": sms}, "dla": {"sms": 8}}})
    backend = get_backend("cuda-sm", device=device)
    with pytest.raises(ConfigError, match=f"the card has {sms}"):
        backend.open()
    assert not backend.is_open
