"""The tensorrt backend where there is no TensorRT (here, CI, any machine but a Jetson).

What runs for real: importing the modules, selecting and opening the backend without
TensorRT, describe(), settings and options validation, the version dispatch, the builder
plan (flags, DLA core, pools), the engine cache key fields, the calibration file names and
the calibrator's input data (onnxruntime).

The tests marked "STAND-IN" drive our TensorRT-facing functions (apply_plan, build_serialized,
the logger, the calibrator's cache file, engine_io) with ``FakeTrt``, a small module written
here that records what our code asks of it. It is NOT TensorRT and proves nothing about
TensorRT's behaviour: it checks our decisions (GPU fallback never set, the DLA core applied,
a DLA-refused layer named in the error), not that TensorRT accepts them.
docs/runtime-tensorrt.md lists what was never executed.
"""

import importlib.util
import json
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from hax_conn_core.errors import BackendError, ConfigError, InternalError, SetupError
from hax_conn_core.graph.onnx_export import export
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.weights import seeded_weights
from hax_conn_core.runtime.backends import backend_class, get_backend
from hax_conn_core.runtime.backends import tensorrt_build as build
from hax_conn_core.runtime.backends import tensorrt_config as cfg
from hax_conn_core.runtime.backends.base import EngineSpec
from hax_conn_core.runtime.backends.onnxrt import run_model
from hax_conn_core.runtime.backends.tensorrt import TensorRTBackend, engine_io
from hax_conn_core.runtime.cache import engine_key
from hax_conn_core.runtime.device import RuntimeDevice, load_runtime_device
from test.core.graph import nets

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def chain_spec(first=1, last=4, accelerator="dla", precision="fp16", weights_id="seeded:0"):
    graph = parse_prototxt(nets.CHAIN, name="chain")
    return EngineSpec(dnn="chain", graph=graph, weights=seeded_weights(graph),
                      weights_id=weights_id, first_layer=first, last_layer=last,
                      accelerator=accelerator, precision=precision)


def device(runtime):
    return RuntimeDevice(id="soc", accelerators=("gpu", "dla"), runtime={"tensorrt": runtime})


# --- importing and selecting -----------------------------------------------------------------

def test_modules_import_without_any_framework():
    probe = textwrap.dedent("""
        import json, sys
        import hax_conn_core.runtime.backends.tensorrt
        import hax_conn_core.runtime.backends.tensorrt_build
        import hax_conn_core.runtime.backends.tensorrt_config
        import hax_conn_core.runtime.backends.tensorrt_cuda
        from hax_conn_core.runtime.backends import get_backend
        get_backend("tensorrt").describe()
        print(json.dumps(sorted(n for n in sys.modules if n.split(".")[0] in
                                ("tensorrt", "cuda", "pycuda", "onnx", "onnxruntime"))))
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_registry_names_this_class():
    assert backend_class("tensorrt") is TensorRTBackend
    assert TensorRTBackend.cacheable


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_opening_without_tensorrt_is_one_setup_error_saying_what_to_do():
    backend = get_backend("tensorrt")
    with pytest.raises(SetupError) as caught:
        with backend:
            pass
    message = str(caught.value)
    assert "import tensorrt" in message and "JetPack" in message
    assert "--backend onnxruntime" in message
    assert not backend.is_open


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed here")
def test_building_on_the_unopened_backend_says_to_open_it():
    with pytest.raises(BackendError, match="not open"):
        get_backend("tensorrt").build(chain_spec())


def test_missing_frameworks_message_names_each_missing_piece():
    assert cfg.missing_frameworks_message(None, None) is None
    only_cuda = cfg.missing_frameworks_message(None, "no cuda")
    assert "cuda-python" in only_cuda and "pycuda" in only_cuda and "tensorrt:" not in only_cuda
    both = cfg.missing_frameworks_message("No module named 'tensorrt'", "no cuda")
    assert "python3-libnvinfer" in both and "cuda-python" in both


def test_describe_names_device_settings_and_missing_version():
    info = get_backend("tensorrt", device=load_runtime_device("xavier-agx")).describe()
    assert info["backend"] == "tensorrt" and info["device"] == "xavier-agx"
    if not HAS_TENSORRT:
        assert info["version"] == "not installed"
    assert info["settings"]["dla"] == {"device_type": "dla", "dla_core": 0, "workspace_mb": 1024}
    assert info["settings"]["gpu"]["dla_core"] is None
    assert info["accelerators"]["dla"]["dla_core"] == 0  # as the device description says


@pytest.mark.parametrize("name", ["xavier-agx", "orin-agx"])
def test_shipped_jetson_descriptions_have_a_dla_on_core_0(name):
    backend = get_backend("tensorrt", device=load_runtime_device(name))
    assert backend.supported_precisions("gpu") == ("fp32", "fp16", "int8")
    assert backend.supported_precisions("dla") == ("fp16", "int8")
    assert backend.settings["dla"]["dla_core"] == 0


# --- settings and options --------------------------------------------------------------------

@pytest.mark.parametrize("runtime, match", [
    ({"dla": {"cores": 1}}, r"runtime.tensorrt.dla: unknown setting\(s\) cores"),
    ({"dla": {"device_type": "npu"}}, r"device_type: 'npu'; expected one of gpu, dla"),
    ({"gpu": {"dla_core": 0}}, r"gpu.dla_core: set on a GPU accelerator"),
    ({"dla": {"dla_core": -1}}, r"dla.dla_core: -1; expected an integer >= 0"),
    ({"dla": {"dla_core": True}}, r"dla.dla_core: True"),
    ({"gpu": {"workspace_mb": 0}}, r"gpu.workspace_mb: 0; expected an integer >= 1"),
    ({"gpu": {"device_type": "dla"}, "dla": {}}, r"core 0 is already gpu's"),
])
def test_bad_device_settings_are_refused_naming_them(runtime, match):
    with pytest.raises(ConfigError, match=match):
        get_backend("tensorrt", device=device(runtime))


def test_device_type_defaults_from_the_accelerator_name():
    settings = cfg.check_settings("soc", ("gpu", "dla", "dla1"), {"dla1": {"dla_core": 1}})
    assert [settings[a]["device_type"] for a in ("gpu", "dla", "dla1")] == ["gpu", "dla", "dla"]
    assert [settings[a]["dla_core"] for a in ("gpu", "dla", "dla1")] == [None, 0, 1]


@pytest.mark.parametrize("options, match", [
    ({"threads": 2}, r"unknown option\(s\) threads"),
    ({"profile_layers": "yes"}, r"profile_layers: expected true or false"),
    ({"calibration_batches": 0}, r"calibration_batches: 0"),
    ({"calibration_inputs": "frames/"}, r"calibration_inputs: expected a callable"),
])
def test_bad_options_are_refused_naming_them(options, match):
    with pytest.raises(ConfigError, match=match):
        get_backend("tensorrt", **options)


def test_options_get_defaults():
    backend = get_backend("tensorrt", profile_layers=True, calibration_dir="/tmp/calib")
    assert backend.config["profile_layers"] is True
    assert str(backend.config["calibration_dir"]) == "/tmp/calib"
    assert backend.config["calibration_batches"] == cfg.OPTIONS["calibration_batches"]


# --- versions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("version, io, explicit_batch", [
    ("8.4.1.5", "bindings", True),      # JetPack 5.0.2
    ("8.5.2.2", "bindings", True),      # JetPack 5.1
    ("8.6.2.3", "bindings", True),      # JetPack 6.0
    ("9.3.0.1", "tensors", True),
    ("10.3.0.30", "tensors", False),    # JetPack 6.1 / 6.2
    ("10.7", "tensors", False),
])
def test_version_dispatch(version, io, explicit_batch):
    api = cfg.trt_api(version)
    assert (api.io, api.explicit_batch) == (io, explicit_batch)


@pytest.mark.parametrize("version, match", [
    ("8.2.1.8", r"too old: .* 8.4 or newer"),
    ("7.1.3", r"too old"),
    ("11.0.0", r"not supported: .* 8.4 to 10.x"),
    ("unknown", r"not of the form"),
])
def test_unsupported_versions_are_setup_errors(version, match):
    with pytest.raises(SetupError, match=match):
        cfg.trt_api(version)


# --- the builder plan --------------------------------------------------------------------------

@pytest.mark.parametrize("device_type", cfg.DEVICE_TYPES)
def test_gpu_fallback_is_never_planned(device_type):
    settings = cfg.accelerator_settings(device_type, {"device_type": device_type})
    for precision in cfg.precisions_for(device_type):
        plan = cfg.build_plan(settings, precision)
        assert "GPU_FALLBACK" not in plan.flags + plan.clear_flags


def test_plan_for_each_accelerator_and_precision():
    dla = cfg.accelerator_settings("dla", {"dla_core": 1, "workspace_mb": 64})
    gpu = cfg.accelerator_settings("gpu", {})
    fp16 = cfg.build_plan(dla, "fp16")
    assert (fp16.device_type, fp16.dla_core, fp16.flags) == ("dla", 1, ("FP16",))
    assert fp16.memory_pools == {"WORKSPACE": 64 << 20} and not fp16.calibrate
    int8 = cfg.build_plan(dla, "int8")
    assert set(int8.flags) == {"INT8", "FP16"} and int8.calibrate
    fp32 = cfg.build_plan(gpu, "fp32")
    assert (fp32.device_type, fp32.dla_core, fp32.flags) == ("gpu", None, ())
    assert fp32.clear_flags == ("TF32",)
    with pytest.raises(ConfigError, match="fp16, int8 on a DLA; fp32 was asked for"):
        cfg.build_plan(dla, "fp32")


# --- the engine cache key ----------------------------------------------------------------------

def key_of(spec, settings, version="8.6.2.3", calibration=None, device_id="orin-agx"):
    fields = cfg.cache_settings(device_id, settings, spec.precision, calibration)
    return engine_key(spec, "tensorrt", version, fields)


def test_cache_key_changes_with_every_setting_that_changes_the_plan():
    spec = chain_spec()
    core0 = cfg.accelerator_settings("dla", {"dla_core": 0})
    core1 = cfg.accelerator_settings("dla", {"dla_core": 1})
    base = key_of(spec, core0)
    assert base.fields["settings"]["dla_core"] == 0
    assert base.fields["settings"]["flags"] == ["FP16"]
    others = [key_of(spec, core1), key_of(spec, core0, version="10.3.0.30"),
              key_of(spec, core0, device_id="xavier-agx"),
              key_of(chain_spec(precision="int8"), core0, calibration="ab" * 32),
              key_of(spec, cfg.accelerator_settings("dla", {"workspace_mb": 8}))]
    digests = {base.digest} | {key.digest for key in others}
    assert len(digests) == 1 + len(others)
    assert key_of(spec, core0).digest == base.digest  # deterministic


def test_int8_key_carries_the_calibration_cache_hash():
    spec = chain_spec(precision="int8")
    settings = cfg.accelerator_settings("dla", {})
    first, second = key_of(spec, settings, calibration="1" * 64), key_of(spec, settings,
                                                                         calibration="2" * 64)
    assert first.fields["settings"]["calibration_sha256"] == "1" * 64
    assert first.digest != second.digest
    with pytest.raises(InternalError, match="calibration cache's hash"):
        key_of(spec, settings)


def test_calibration_files_are_per_range_graph_and_weights(tmp_path):
    a = cfg.calibration_file_name("chain", 1, 4, "seeded:0", "g" * 64)
    assert a == cfg.calibration_file_name("chain", 1, 4, "seeded:0", "g" * 64)
    assert a.startswith("chain-1-4-") and a.endswith(".calib")
    assert a != cfg.calibration_file_name("chain", 1, 4, "seeded:1", "g" * 64)
    assert a != cfg.calibration_file_name("chain", 1, 5, "seeded:0", "g" * 64)
    assert build.calibration_cache_path(None, tmp_path, a) == tmp_path / "calibration" / a
    assert build.calibration_cache_path(tmp_path / "c", tmp_path, a) == tmp_path / "c" / a
    path = tmp_path / a
    assert cfg.file_sha256(path) is None
    path.write_bytes(b"scales")
    assert cfg.file_sha256(path) == cfg.file_sha256(path) and len(cfg.file_sha256(path)) == 64


def test_calibration_inputs_of_an_inner_range_are_what_the_layers_before_compute():
    spec = chain_spec(first=3, last=6, accelerator="gpu", precision="int8")
    batches = build.calibration_inputs(spec, 3, seed=5)
    inputs, _ = spec.io()
    assert len(batches) == 3 and all(set(batch) == set(inputs) for batch in batches)
    (name,) = inputs
    frames = np.random.default_rng(5).standard_normal((3,) + tuple(spec.graph.shape("data")),
                                                      dtype=np.float32)
    whole = export(spec.graph, spec.weights, extra_outputs=[name])
    for frame, batch in zip(frames, batches):
        expected = run_model(whole, {"data": frame})[name]
        np.testing.assert_allclose(batch[name], expected, rtol=1e-5, atol=1e-5)
    assert len({batch[name].tobytes() for batch in batches}) == 3  # distinct frames


def test_calibration_inputs_of_a_first_range_are_the_frames():
    spec = chain_spec(first=0, last=2, accelerator="gpu", precision="int8")
    (batch,) = build.calibration_inputs(spec, 1)
    assert list(batch) == ["data"] and batch["data"].shape == tuple(spec.graph.shape("data"))


# --- STAND-IN: our TensorRT-facing code against FakeTrt (NOT TensorRT; see the docstring) -------

class FakeFlag:
    """Enum members as FakeTrt has them: a name and an int."""

    def __init__(self, name, value):
        self.name, self.value = name, value

    def __int__(self):
        return self.value

    def __repr__(self):
        return self.name


def fake_enum(*names):
    return types.SimpleNamespace(**{name: FakeFlag(name, i) for i, name in enumerate(names)})


class FakeConfig:
    def __init__(self, dla_refuses=()):
        self.flags, self.cleared, self.pools = set(), set(), {}
        self.default_device_type = self.DLA_core = self.int8_calibrator = None
        self.dla_refuses = set(dla_refuses)

    def set_flag(self, flag):
        self.flags.add(flag.name)

    def clear_flag(self, flag):
        self.cleared.add(flag.name)

    def set_memory_pool_limit(self, pool, size):
        self.pools[pool.name] = size

    def can_run_on_DLA(self, layer):
        return layer.name not in self.dla_refuses


class FakeNetwork:
    def __init__(self, layer_names):
        self.layers = [types.SimpleNamespace(name=n, type=FakeFlag("CONVOLUTION", 0))
                       for n in layer_names]
        self.num_layers = len(self.layers)

    def get_layer(self, index):
        return self.layers[index]


def fake_trt(layers=("conv1", "fc"), dla_refuses=(), parses=True, builds=True, dla_cores=2):
    """A stand-in for the ``tensorrt`` module: records what our build code asks of it."""
    trt = types.SimpleNamespace(
        BuilderFlag=fake_enum("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "TF32"),
        DeviceType=fake_enum("GPU", "DLA"), MemoryPoolType=fake_enum("WORKSPACE"),
        NetworkDefinitionCreationFlag=fake_enum("EXPLICIT_BATCH"), made={})
    trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH.value = 0

    class Builder:
        num_DLA_cores = dla_cores

        def __init__(self, logger):
            pass

        def create_network(self, flags):
            trt.made["network_flags"] = flags
            return FakeNetwork(layers)

        def create_builder_config(self):
            trt.made["config"] = FakeConfig(dla_refuses)
            return trt.made["config"]

        def build_serialized_network(self, network, config):
            return b"plan" if builds else None

    class OnnxParser:
        num_errors = 0 if parses else 1

        def __init__(self, network, logger):
            pass

        def parse(self, data):
            return parses

        def get_error(self, index):
            return "In node 3 (Conv): unsupported attribute"

    class Severity:
        INTERNAL_ERROR, ERROR, WARNING, INFO = (FakeFlag(n, i) for i, n in enumerate(
            ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO")))

    class ILogger:
        def __init__(self):
            pass

    ILogger.Severity = Severity

    class IInt8EntropyCalibrator2:
        def __init__(self):
            pass

    trt.Builder, trt.OnnxParser, trt.ILogger = Builder, OnnxParser, ILogger
    trt.IInt8EntropyCalibrator2 = IInt8EntropyCalibrator2
    return trt


def stand_in_build(trt, spec, settings, version="8.6.2.3", calibrator=None):
    plan = cfg.build_plan(cfg.accelerator_settings(spec.accelerator, settings), spec.precision)
    return build.build_serialized(trt, cfg.trt_api(version), spec, plan, b"onnx",
                                  build.make_logger(trt), calibrator)


def test_stand_in_dla_build_sets_dla_core_and_never_gpu_fallback():
    trt = fake_trt()
    assert stand_in_build(trt, chain_spec(), {"dla_core": 1, "workspace_mb": 16}) == b"plan"
    config = trt.made["config"]
    assert config.default_device_type is trt.DeviceType.DLA and config.DLA_core == 1
    assert config.flags == {"FP16"} and "GPU_FALLBACK" not in config.flags
    assert config.pools == {"WORKSPACE": 16 << 20}
    assert trt.made["network_flags"] == 1  # 1 << EXPLICIT_BATCH before TensorRT 10


def test_stand_in_gpu_int8_build_attaches_the_calibrator():
    trt = fake_trt()
    calibrator = object()
    spec = chain_spec(accelerator="gpu", precision="int8")
    stand_in_build(trt, spec, {}, version="10.3.0", calibrator=calibrator)
    config = trt.made["config"]
    assert config.default_device_type is trt.DeviceType.GPU and config.DLA_core is None
    assert config.flags == {"INT8", "FP16"} and config.int8_calibrator is calibrator
    assert trt.made["network_flags"] == 0  # no EXPLICIT_BATCH from TensorRT 10 on


def test_stand_in_fp32_build_clears_tf32():
    trt = fake_trt()
    stand_in_build(trt, chain_spec(accelerator="gpu", precision="fp32"), {})
    assert trt.made["config"].flags == set() and trt.made["config"].cleared == {"TF32"}


def test_stand_in_apply_plan_refuses_gpu_fallback_even_if_a_plan_asks():
    plan = cfg.BuildPlan(flags=("FP16", "GPU_FALLBACK"), clear_flags=(), device_type="dla",
                         dla_core=0, memory_pools={}, calibrate=False)
    with pytest.raises(InternalError, match="GPU_FALLBACK must never be set"):
        build.apply_plan(fake_trt(), FakeConfig(), plan)


def test_stand_in_a_layer_the_dla_refuses_fails_the_build_naming_engine_and_layer():
    trt = fake_trt(layers=["conv1", "prob"], dla_refuses=["prob"])
    spec = chain_spec()
    with pytest.raises(BackendError) as caught:
        stand_in_build(trt, spec, {})
    message = str(caught.value)
    assert message.startswith(spec.label) and "prob (CONVOLUTION)" in message
    assert "conv1" not in message and "GPU fallback is off" in message


def test_stand_in_parse_build_and_core_failures_name_the_engine():
    spec = chain_spec()
    with pytest.raises(BackendError, match=r"ONNX parser refused the range: In node 3"):
        stand_in_build(fake_trt(parses=False), spec, {})
    with pytest.raises(BackendError, match=r"TensorRT could not build the engine"):
        stand_in_build(fake_trt(builds=False), spec, {})
    with pytest.raises(BackendError, match=r"DLA core 1 asked for; this device has 1"):
        stand_in_build(fake_trt(dla_cores=1), spec, {"dla_core": 1})


def test_stand_in_logger_keeps_warnings_and_errors_for_messages():
    trt = fake_trt()
    logger = build.make_logger(trt)
    assert logger.errors() == "no message from TensorRT"
    logger.log(trt.ILogger.Severity.INFO, "chatter")
    logger.log(trt.ILogger.Severity.WARNING, "slow tactic")
    assert logger.errors() == "WARNING: slow tactic"
    logger.log(trt.ILogger.Severity.ERROR, "DLA rejects layer prob")
    assert logger.errors() == "ERROR: DLA rejects layer prob"


def test_stand_in_calibrator_reads_and_writes_its_cache_file(tmp_path):
    path = tmp_path / "calibration" / "chain.calib"

    def never():
        raise AssertionError("batches are made only when TensorRT asks for data")

    calibrator = build.make_calibrator(fake_trt(), None, never, path)
    assert calibrator.get_batch_size() == 1
    assert calibrator.read_calibration_cache() is None
    calibrator.write_calibration_cache(memoryview(b"TRT-8602-EntropyCalibration2\n"))
    assert path.read_bytes() == b"TRT-8602-EntropyCalibration2\n"
    assert calibrator.read_calibration_cache() == path.read_bytes()
    calibrator.free()
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_stand_in_engine_io_follows_the_version_dispatch():
    trt = types.SimpleNamespace(nptype=lambda dtype: np.float32,
                                TensorIOMode=types.SimpleNamespace(INPUT="in"))
    v8 = types.SimpleNamespace(num_bindings=2, get_binding_name=["x", "y"].__getitem__,
                               binding_is_input=lambda i: i == 0,
                               get_binding_shape=lambda i: (1, 4), get_binding_dtype=lambda i: 0)
    v10 = types.SimpleNamespace(num_io_tensors=2, get_tensor_name=["x", "y"].__getitem__,
                                get_tensor_mode={"x": "in", "y": "out"}.__getitem__,
                                get_tensor_shape=lambda n: (1, 4), get_tensor_dtype=lambda n: 0)
    expected = [("x", True, (1, 4), np.float32), ("y", False, (1, 4), np.float32)]
    assert engine_io(trt, cfg.trt_api("8.6.1"), v8) == expected
    assert engine_io(trt, cfg.trt_api("10.3.0"), v10) == expected
