"""The engine cache: keyed by content, atomic, and a corrupt entry is rebuilt, never trusted."""

import json

import numpy as np

from hax_conn_core.runtime.backends.base import EngineSpec
from hax_conn_core.runtime.backends.onnxrt import OnnxRuntimeBackend
from hax_conn_core.runtime.cache import EngineCache, engine_key, graph_sha256
from test.core.graph import nets
from test.core.runtime.helpers import tiny_model


def spec_of(model, first=0, last=None, acc="gpu"):
    last = len(model.graph.layers) - 1 if last is None else last
    return EngineSpec(dnn=model.name, graph=model.graph, weights=model.weights,
                      weights_id=model.weights_id, first_layer=first, last_layer=last,
                      accelerator=acc)


def run_once(engine, model):
    x = np.random.default_rng(0).standard_normal(model.input_shape, dtype=np.float32)
    return engine.run({model.input_name: x}).outputs


def test_the_key_changes_with_everything_that_changes_the_engine():
    model = tiny_model("chain", nets.CHAIN)
    other_weights = tiny_model("chain", nets.CHAIN, seed=1)
    base = engine_key(spec_of(model), "onnxruntime", "1.0").digest
    assert engine_key(spec_of(model), "onnxruntime", "1.0").digest == base
    assert engine_key(spec_of(model, acc="dla"), "onnxruntime", "1.0").digest != base
    assert engine_key(spec_of(model, last=2), "onnxruntime", "1.0").digest != base
    assert engine_key(spec_of(model), "onnxruntime", "1.1").digest != base
    assert engine_key(spec_of(model), "tensorrt", "1.0").digest != base
    assert engine_key(spec_of(model), "onnxruntime", "1.0", {"dla_core": 1}).digest != base
    assert engine_key(spec_of(other_weights), "onnxruntime", "1.0").digest != base
    assert graph_sha256(model.graph) == graph_sha256(tiny_model("chain", nets.CHAIN).graph)
    assert graph_sha256(model.graph) != graph_sha256(tiny_model("r", nets.RESIDUAL).graph)


def test_a_cached_engine_is_reused_and_a_corrupt_one_rebuilt(tmp_path):
    model = tiny_model("chain", nets.CHAIN)
    cache = EngineCache(tmp_path)
    with OnnxRuntimeBackend(cache=cache) as backend:
        expected = run_once(backend.build(spec_of(model)), model)
        assert (cache.hits, cache.misses) == (0, 1)
        again = run_once(backend.build(spec_of(model)), model)
        assert cache.hits == 1
        np.testing.assert_array_equal(again["prob"], expected["prob"])
        (payload,) = tmp_path.glob("*.bin")
        for damage in (lambda b: b[:len(b) // 2], lambda b: b[:100] + b"\x00" + b[101:],
                       lambda b: b"garbage"):
            payload.write_bytes(damage(payload.read_bytes()))
            rejected = cache.rejected
            rebuilt = run_once(backend.build(spec_of(model)), model)
            assert cache.rejected == rejected + 1
            np.testing.assert_array_equal(rebuilt["prob"], expected["prob"])
        (manifest,) = tmp_path.glob("*.json")
        manifest.write_text("{not json")
        run_once(backend.build(spec_of(model)), model)
        assert cache.rejected == 4
        data = json.loads(manifest.read_text())
        data["fields"]["layers"] = [0, 1]  # an entry that names another engine
        manifest.write_text(json.dumps(data))
        run_once(backend.build(spec_of(model)), model)
        assert cache.rejected == 5
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]  # atomic writes: none left
