"""Device descriptions and the DLA layer rules."""

import pytest

from hax_conn_core.errors import ConfigError
from hax_conn_core.graph.capabilities import (
    device_ids, load_device, resolve_device, unsupported_layers)
from hax_conn_core.graph.prototxt import parse_prototxt

from . import nets


def _reasons(body, shape=(1, 8, 16, 16), device="xavier-agx"):
    graph = parse_prototxt(nets.input_layer(shape) + body)
    return {layer.name: why for layer, why in unsupported_layers(graph, device)}


def test_shipped_devices_load():
    assert {"xavier-agx", "orin-agx", "emulated-h100"} <= set(device_ids())
    for device in device_ids():
        described = load_device(device)
        assert set(described.accelerators) == {"gpu", "dla"}
        assert described.accelerator("gpu").layers is None


@pytest.mark.parametrize("body,name,pattern", [
    ('layer { name: "p" type: "Pooling" bottom: "data" top: "p" '
     'pooling_param { kernel_size: 9 stride: 1 } }', "p", r"window 9x9 is outside .* \[1, 8\]"),
    ('layer { name: "g" type: "Pooling" bottom: "data" top: "g" '
     'pooling_param { pool: AVE global_pooling: true } }', "g", r"window 16x16"),
    ('layer { name: "l" type: "LRN" bottom: "data" top: "l" lrn_param { local_size: 11 } }',
     "l", r"local size 11 is not one of"),
    ('layer { name: "l" type: "LRN" bottom: "data" top: "l" '
     'lrn_param { norm_region: WITHIN_CHANNEL } }', "l", r"norm region WITHIN_CHANNEL"),
    (nets.conv("c", "data", kernel=3, stride=9, pad=1), "c", r"stride 9x9 is outside"),
    ('layer { name: "cat" type: "Concat" bottom: "data" bottom: "data" top: "cat" '
     'concat_param { axis: 2 } }', "cat", r"along axis 2"),
    ('layer { name: "cat" type: "Concat" bottom: "data" top: "cat" }', "cat",
     r"with 1 input\(s\)"),
    ('layer { name: "f" type: "Flatten" bottom: "data" top: "f" }', "f",
     r"does not run Flatten"),
    ('layer { name: "s" type: "Softmax" bottom: "data" top: "s" }', "s",
     r"does not run Softmax"),
    ('layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
     'inner_product_param { num_output: 9000 } }', "fc",
     r"shape \(1, 9000\) exceeds the dla limit of 8192"),
])
def test_xavier_dla_refuses_with_a_reason(body, name, pattern):
    reasons = _reasons(body)
    assert name in reasons
    assert __import__("re").search(pattern, reasons[name]), reasons[name]


def test_xavier_dla_accepts_the_usual_layers():
    body = (nets.conv("c", "data", kernel=3) + nets.relu("r", "c") +
            'layer { name: "p" type: "Pooling" bottom: "c" top: "p" '
            'pooling_param { kernel_size: 3 stride: 2 } }\n'
            'layer { name: "l" type: "LRN" bottom: "p" top: "l" lrn_param { local_size: 5 } }\n'
            'layer { name: "g" type: "Pooling" bottom: "l" top: "g" '
            'pooling_param { pool: AVE global_pooling: true } }\n'
            'layer { name: "fc" type: "InnerProduct" bottom: "g" top: "fc" '
            'inner_product_param { num_output: 10 } }\n')
    assert _reasons(body, shape=(1, 3, 14, 14)) == {}


def test_orin_runs_softmax_and_emulated_soc_uses_xavier_rules():
    body = 'layer { name: "s" type: "Softmax" bottom: "data" top: "s" }'
    assert _reasons(body, device="orin-agx") == {}
    assert "s" in _reasons(body, device="emulated-h100")


def _write(tmp_path, text, name="dev.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,pattern", [
    ("format: other/1\naccelerators: {gpu: {layers: all}}", r"format 'other/1'; expected"),
    ("format: hax-conn-device/1\n", r"'accelerators' must map"),
    ("format: hax-conn-device/1\naccelerators: {dla: {layers: {Conv: {}}}}",
     r"accelerators.dla.layers: unknown layer type 'Conv'"),
    ("format: hax-conn-device/1\naccelerators: {dla: {layers: {Pooling: {size: [1, 2]}}}}",
     r"accelerators.dla.layers.Pooling.size: unknown limit"),
    ("format: hax-conn-device/1\naccelerators: {dla: {layers: {Pooling: {window: [8, 1]}}}}",
     r"Pooling.window: \[8, 1\]; expected \[low, high\]"),
    ("format: hax-conn-device/1\naccelerators: {dla: {layers: some}}",
     r"accelerators.dla.layers: 'some'; expected 'all'"),
    ("format: hax-conn-device/1\naccelerators: {dla: {layer: all}}",
     r"unknown key\(s\) layer"),
    ("format: hax-conn-device/1\naccelerators: {dla: {rules_from: nowhere}}",
     r"unknown device 'nowhere'; expected one of .*xavier-agx"),
    ("format: [unclosed\n", r"not valid YAML"),
])
def test_bad_device_descriptions_are_config_errors(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_device(_write(tmp_path, text))


def test_rules_from_loop_is_refused(tmp_path):
    _write(tmp_path, "format: hax-conn-device/1\nid: a\naccelerators: {dla: {rules_from: b}}",
           "a.yaml")
    _write(tmp_path, "format: hax-conn-device/1\nid: b\naccelerators: {dla: {rules_from: a}}",
           "b.yaml")
    with pytest.raises(ConfigError, match="loops back"):
        load_device("a", directory=tmp_path)


def test_unknown_device_lists_known_ones():
    with pytest.raises(ConfigError, match=r"unknown device 'tx2'; expected one of .*orin-agx"):
        resolve_device("tx2")
    with pytest.raises(ConfigError, match=r"has no accelerator 'npu'"):
        resolve_device("xavier-agx").accelerator("npu")


def test_without_pyyaml_a_device_description_is_one_setup_error(monkeypatch):
    import sys

    from hax_conn_core.errors import SetupError
    from hax_conn_core.graph.capabilities import device_dir, load_device

    monkeypatch.setitem(sys.modules, "yaml", None)  # `import yaml` raises ImportError
    with pytest.raises(SetupError, match=r"device descriptions.*pip install PyYAML"):
        load_device(device_dir() / "orin-agx.yaml")
