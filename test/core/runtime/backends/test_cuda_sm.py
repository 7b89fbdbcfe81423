"""The cuda-sm backend where there is no GPU (here, CI): the split's validation, the device
descriptions, describe(), options, and the errors of opening it without torch or CUDA.

The GPU half (partitions, CUDA graphs, hand-over, events) is test/device/runtime/test_cuda_sm.py,
run on the device tool's machine.
"""

import importlib.util
import subprocess
import sys
import textwrap

import pytest

from hax_conn_core.errors import BackendError, ConfigError, ModelError, SetupError
from hax_conn_core.graph.prototxt import load_prototxt
from hax_conn_core.models import get_model
from hax_conn_core.runtime.backends import backend_class, get_backend
from hax_conn_core.runtime.backends.base import EngineSpec
from hax_conn_core.runtime.backends.cuda_sm import CudaSmBackend
from hax_conn_core.runtime.backends.green_context import SM_GRANULARITY, plan_split
from hax_conn_core.runtime.device import DEFAULT_DEVICES, load_runtime_device

H200_SMS = 132


def device_file(tmp_path, runtime):
    path = tmp_path / "soc.yaml"
    path.write_text(textwrap.dedent("""\
        format: hax-conn-device/1
        id: soc-under-test
        accelerators:
          gpu:
            layers: all
          dla:
            rules_from: xavier-agx
        """) + runtime)
    return load_runtime_device(path)


def cuda_available():
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


# --- the split -------------------------------------------------------------------------------

def test_default_split_is_the_remainder_recipe():
    plan = plan_split({"gpu": 124, "dla": 8}, H200_SMS)
    assert plan.rest == "gpu" and plan.recipe == "one-group"
    assert plan.describe() == "gpu 124 + dla 8 SMs"
    assert SM_GRANULARITY == 8


@pytest.mark.parametrize("sizes,rest,recipe", [
    ({"gpu": 64, "dla": 8}, None, "groups"),        # leaves 60 SMs idle
    ({"gpu": 116, "dla": 16}, "gpu", "one-group"),  # the note's first split
    ({"gpu": 120, "dla": 8}, None, "groups"),       # multiples of 8, 4 SMs idle
    ({"gpu": 16, "dla": 16}, None, "groups"),
])
def test_valid_splits(sizes, rest, recipe):
    plan = plan_split(sizes, H200_SMS)
    assert (plan.rest, plan.recipe) == (rest, recipe)
    assert plan.sizes == sizes


def test_card_unknown_accepts_a_remainder_and_checks_it_later():
    assert plan_split({"gpu": 124, "dla": 8}).rest == "gpu"
    with pytest.raises(ConfigError, match=r"rest of the card: 132 - 8 = 124"):
        plan_split({"gpu": 123, "dla": 8}, H200_SMS)


@pytest.mark.parametrize("sizes,message", [
    ({"gpu": 120, "dla": 12}, r"dla.sms: 12; partitions come in multiples of 8 SMs.*try 8 or 16"),
    ({"gpu": 124, "dla": 4}, r"dla.sms: 4; a green-context partition has at least 8 SMs"),
    ({"gpu": 132, "dla": 8}, r"ask for 140 SMs \(gpu 132 \+ dla 8\); the card has 132"),
    ({"gpu": 100, "dla": 8}, r"gpu.sms: 100; not a multiple of 8 SMs, so it must be the rest "
                             r"of the card: 132 - 8 = 124 \(or a multiple of 8: 96 or 104\)"),
    ({"gpu": "124", "dla": 8}, r"gpu.sms: '124'; expected an integer"),
    ({"gpu": True, "dla": 8}, r"gpu.sms: True; expected an integer"),
    ({}, r"no partitions"),
])
def test_invalid_splits_say_what_would_do(sizes, message):
    with pytest.raises(ConfigError, match=message):
        plan_split(sizes, H200_SMS)


# --- device descriptions ---------------------------------------------------------------------

@pytest.mark.parametrize("device_id", ["emulated-h200", "emulated-h100"])
def test_shipped_devices_give_124_plus_8(device_id):
    device = load_runtime_device(device_id)
    assert device.accelerators == ("gpu", "dla")
    assert device.settings("cuda-sm", "gpu") == {"sms": 124}
    assert device.settings("cuda-sm", "dla") == {"sms": 8}
    backend = get_backend("cuda-sm", device=device)
    assert backend.split == "gpu 124 + dla 8 SMs"


def test_default_device_is_the_h200():
    assert DEFAULT_DEVICES["cuda-sm"] == "emulated-h200"
    assert backend_class("cuda-sm") is CudaSmBackend
    backend = get_backend("cuda-sm")
    assert backend.device.id == "emulated-h200" and not backend.is_open


def test_describe_names_the_split_without_a_gpu():
    info = get_backend("cuda-sm").describe()
    assert info["backend"] == "cuda-sm" and info["device"] == "emulated-h200"
    assert info["split"] == "gpu 124 + dla 8 SMs"
    assert info["sms"] == {"gpu": 124, "dla": 8} and info["granularity_sms"] == 8
    assert info["accelerators"] == {"gpu": {"sms": 124}, "dla": {"sms": 8}}
    assert info["version"].startswith("torch ")


def test_a_split_from_a_device_file(tmp_path):
    device = device_file(tmp_path, "runtime:\n  cuda-sm:\n    gpu: {sms: 64}\n"
                                   "    dla: {sms: 16}\n")
    assert get_backend("cuda-sm", device=device).describe()["split"] == "gpu 64 + dla 16 SMs"


def test_host_staging_is_on_unless_an_accelerator_turns_it_off(tmp_path):
    assert get_backend("cuda-sm").describe()["staging"] == {"gpu": True, "dla": True}
    device = device_file(tmp_path, "runtime:\n  cuda-sm:\n    gpu: {sms: 124, staging: false}\n"
                                   "    dla: {sms: 8}\n")
    assert get_backend("cuda-sm", device=device).describe()["staging"] == {"gpu": False,
                                                                           "dla": True}


@pytest.mark.parametrize("runtime,message", [
    ("runtime:\n  cuda-sm:\n    gpu: {sms: 120}\n    dla: {sms: 12}\n",
     r"device 'soc-under-test': runtime.cuda-sm.dla.sms: 12; partitions come in multiples"),
    ("runtime:\n  cuda-sm:\n    gpu: {sms: 124}\n",
     r"runtime.cuda-sm.dla: no 'sms'"),
    ("", r"runtime.cuda-sm.gpu: no 'sms'"),
    ("runtime:\n  cuda-sm:\n    gpu: {sms: 124, threads: 2}\n    dla: {sms: 8}\n",
     r"runtime.cuda-sm.gpu: unknown setting\(s\) threads; expected sms"),
    ("runtime:\n  cuda-sm:\n    gpu: {sms: 124}\n    npu: {sms: 8}\n",
     r"runtime.cuda-sm.npu: the device has no such accelerator"),
    ("runtime:\n  cuda-sm:\n    gpu: {sms: 124, staging: 'no'}\n    dla: {sms: 8}\n",
     r"runtime.cuda-sm.gpu.staging: 'no'; expected true .* or false"),
])
def test_bad_device_settings_are_refused_when_the_backend_is_made(tmp_path, runtime, message):
    with pytest.raises(ConfigError, match=message):
        get_backend("cuda-sm", device=device_file(tmp_path, runtime))


@pytest.mark.parametrize("options,message", [
    ({"threads": 2}, r"unknown option\(s\) threads; expected fault, device_index"),
    ({"fault": "run:npu"}, r"fault='run:npu'; expected '<build\|run>:<accelerator>'"),
    ({"fault": "crash:dla"}, r"fault='crash:dla'"),
    ({"device_index": -1}, r"device_index=-1"),
])
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        get_backend("cuda-sm", **options)


def test_fault_option_is_accepted():
    assert get_backend("cuda-sm", fault="run:dla").describe()["split"] == "gpu 124 + dla 8 SMs"


def test_precisions():
    backend = get_backend("cuda-sm")
    assert backend.supported_precisions("dla") == ("fp16", "fp32")
    assert CudaSmBackend.default_precision == "fp16"
    with pytest.raises(ConfigError, match="no accelerator 'npu'"):
        backend.supported_precisions("npu")


# --- without torch / CUDA --------------------------------------------------------------------

def test_importing_the_backend_loads_neither_torch_nor_cuda_bindings():
    code = ("import sys, hax_conn_core.runtime.backends.cuda_sm, "
            "hax_conn_core.runtime.backends.torch_module; "
            "from hax_conn_core.runtime.backends import get_backend; "
            "get_backend('cuda-sm').describe(); "
            "print(sorted(m for m in ('torch', 'cuda', 'cuda.bindings') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.mark.skipif(cuda_available(), reason="CUDA is here: the device tests open it")
def test_open_without_torch_or_cuda_is_one_setup_error():
    backend = get_backend("cuda-sm")
    with pytest.raises(SetupError, match="cuda-sm backend"):
        backend.open()
    assert not backend.is_open
    with pytest.raises(SetupError):
        with get_backend("cuda-sm"):
            pass


def test_build_before_open_is_refused():
    graph = load_prototxt(get_model("alexnet").prototxt)
    spec = EngineSpec("alexnet", graph, {}, "none", 0, 3, "gpu", "fp16")
    with pytest.raises(BackendError, match="not open"):
        get_backend("cuda-sm").build(spec)


def test_build_module_requires_weights():
    from hax_conn_core.runtime.backends.torch_module import build_module

    graph = load_prototxt(get_model("alexnet").prototxt)
    with pytest.raises(ModelError, match="needs the graph's weights"):
        build_module(graph, None)
