"""Choosing a backend: unknown names, missing frameworks, options and the device settings."""

import pytest

from hax_conn_core.errors import ConfigError, SetupError
from hax_conn_core.runtime.backends import get_backend, known_backends
from hax_conn_core.runtime.device import load_runtime_device, RuntimeDevice


def test_an_unknown_backend_lists_the_known_ones():
    with pytest.raises(ConfigError, match="unknown backend 'tpu'; expected one of "
                                          "onnxruntime, cuda-sm, tensorrt"):
        get_backend("tpu")
    assert known_backends() == ("onnxruntime", "cuda-sm", "tensorrt")


def test_tensorrt_without_tensorrt_is_one_setup_error():
    backend = get_backend("tensorrt")
    with pytest.raises(SetupError, match="TensorRT"):
        backend.open()


@pytest.mark.parametrize("settings, message", [
    ({"threads": 0}, "threads: 0; expected an integer >= 1"),
    ({"threads": "two"}, "threads: 'two'"),
    ({"optimise": True}, "unknown setting\\(s\\) optimise"),
    ({"optimize": "yes"}, "optimize: expected true or false"),
])
def test_bad_onnxruntime_settings_are_refused(settings, message):
    device = RuntimeDevice(id="d", accelerators=("gpu", "dla"),
                           runtime={"onnxruntime": {"gpu": settings}})
    with pytest.raises(ConfigError, match=message):
        get_backend("onnxruntime", device=device)


def test_options_a_backend_does_not_take_are_refused():
    with pytest.raises(ConfigError, match="takes no options; found colour"):
        get_backend("onnxruntime", colour="red")


def test_the_cpu_device_has_two_accelerators_with_their_own_threads():
    device = load_runtime_device("cpu")
    assert device.accelerators == ("gpu", "dla")
    backend = get_backend("onnxruntime")
    assert backend.device.id == "cpu"
    info = backend.describe()
    assert info["accelerators"] == {"gpu": {"threads": 1}, "dla": {"threads": 1}}
    assert backend.supported_precisions("dla") == ("fp32",)


def test_a_device_runtime_section_that_names_unknown_things_is_refused(tmp_path):
    for body, message in [
        ("runtime:\n  npu-rt:\n    gpu: {}\n", "runtime.npu-rt: unknown backend"),
        ("runtime:\n  onnxruntime:\n    npu: {}\n", "runtime.onnxruntime.npu: the device has "
                                                    "no such accelerator"),
        ("runtime:\n  onnxruntime:\n    gpu: 3\n", "expected a mapping of settings"),
    ]:
        path = tmp_path / "d.yaml"
        path.write_text("format: hax-conn-device/1\nid: d\naccelerators:\n  gpu:\n"
                        "    layers: all\n" + body)
        with pytest.raises(ConfigError, match=message):
            load_runtime_device(path)
