"""Output post-processing: top-k classes (indices or labels) and raw tensors; bad settings."""

import numpy as np
import pytest

from hax_conn_core.errors import ConfigError
from hax_conn_core.postprocess import (
    ClassifyResult, make_postprocessor, OutputsConfig, parse_outputs_config, RawOutputs)


def _scores(n=10, seed=0):
    return np.random.default_rng(seed).permutation(n).astype(np.float32).reshape(1, n)


def test_defaults_are_classify_top5_indices():
    assert parse_outputs_config(None, "x") == OutputsConfig("classify", 5, None)
    assert parse_outputs_config({"labels": ""}, "x") == OutputsConfig("classify", 5, None)


def test_classify_gives_the_k_best_best_first():
    scores = _scores()
    result = make_postprocessor({"top_k": 3}, "net")({"prob": scores})
    assert isinstance(result, ClassifyResult)
    flat = scores.reshape(-1)
    expected = sorted(range(flat.size), key=lambda i: -flat[i])[:3]
    assert list(result.class_ids) == expected
    assert list(result.scores) == [float(flat[i]) for i in expected]
    assert result.names == ()


def test_equal_scores_keep_the_lower_index_first():
    result = make_postprocessor({"top_k": 4}, "net")({"p": np.array([1, 3, 3, 1, 3], np.float32)})
    assert result.class_ids == (1, 2, 4, 0)


def test_labels_name_the_classes(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"class {i}\n" for i in range(10)) + "\n\n")
    scores = _scores(seed=3)
    result = make_postprocessor({"top_k": 2, "labels": str(labels)}, "net")({"prob": scores})
    assert result.names == tuple(f"class {i}" for i in result.class_ids)


def test_raw_carries_every_tensor_with_its_shape_and_values():
    rng = np.random.default_rng(1)
    outputs = {"boxes": rng.standard_normal((1, 4, 7)).astype(np.float32),
               "mask": rng.integers(0, 5, (1, 2, 3, 3)).astype(np.int64)}
    result = make_postprocessor({"kind": "raw"}, "det")(outputs)
    assert isinstance(result, RawOutputs)
    assert [t.name for t in result.tensors] == ["boxes", "mask"]
    for tensor, (name, array) in zip(result.tensors, outputs.items()):
        assert tensor.shape == array.shape and tensor.data.dtype == np.float32
        np.testing.assert_array_equal(tensor.data.reshape(tensor.shape), array)


@pytest.mark.parametrize("entry, message", [
    ({"kind": "detect"}, r"net: outputs: kind 'detect' is unknown; expected one of classify, raw"),
    ({"top_k": 0}, r"top_k 0; expected an integer >= 1"),
    ({"top_k": "5"}, r"top_k '5'; expected an integer >= 1"),
    ({"topk": 5}, r"unknown key\(s\) topk; expected kind, top_k, labels"),
    ({"labels": 3}, r"labels 3; expected a path"),
])
def test_bad_settings_are_one_config_error(entry, message):
    with pytest.raises(ConfigError, match=message):
        make_postprocessor(entry, "net")


@pytest.mark.parametrize("seed", range(40))
def test_top_k_equals_the_first_k_of_a_stable_full_sort(seed):
    from hax_conn_core.postprocess import top_k

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 1200))
    # few distinct values, so that ties at the k-th best are common; NaN and infinities too
    scores = rng.integers(0, 6, n).astype(np.float32)
    for special in (np.nan, np.inf, -np.inf):
        scores[rng.random(n) < 0.02] = special
    for k in (1, 5, n // 2 + 1, n):
        want = np.argsort(-scores, kind="stable")[:k]
        assert list(top_k(scores, k)) == list(want), (n, k)


def test_a_new_output_shape_is_checked_again():
    post = make_postprocessor({"top_k": 8}, "net")
    post({"prob": _scores(10)})
    with pytest.raises(ConfigError, match="top_k 8 exceeds the 5 classes"):
        post({"prob": _scores(5)})


def test_top_k_above_the_class_count_is_refused():
    post = make_postprocessor({"top_k": 11}, "net")
    with pytest.raises(ConfigError, match=r"top_k 11 exceeds the 10 classes of output 'prob' "
                                          r"\(1, 10\); expected 1 to 10"):
        post({"prob": _scores()})


def test_missing_short_and_empty_labels_files_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"cannot read labels file .*nope.txt"):
        make_postprocessor({"labels": str(tmp_path / "nope.txt")}, "net")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(ConfigError, match=r"is empty"):
        make_postprocessor({"labels": str(empty)}, "net")
    short = tmp_path / "short.txt"
    short.write_text("a\nb\nc\n")
    post = make_postprocessor({"labels": str(short)}, "net")
    with pytest.raises(ConfigError, match=r"names 3 classes, output 'prob' \(1, 10\) has 10; "
                                          r"expected one line per class"):
        post({"prob": _scores()})


def test_raw_ignores_labels_and_k():
    post = make_postprocessor({"kind": "raw", "top_k": 50, "labels": "/no/such/file"}, "net")
    assert isinstance(post({"prob": _scores()}), RawOutputs)


@pytest.mark.parametrize("seed", range(60))
def test_best_scores_equal_top_k_and_its_scores(seed):
    from hax_conn_core.postprocess import best_scores

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 1200))
    # distinct values (the partition's own path), few distinct values (ties), specials
    scores = (rng.permutation(n).astype(np.float32) if seed % 3 == 0
              else rng.integers(0, 6 if seed % 3 == 1 else 1000, n).astype(np.float32))
    if seed % 2:
        for special in (np.nan, np.inf, -np.inf, -0.0, 0.0):
            scores[rng.random(n) < 0.01] = special
    for k in (1, 2, 5, n // 2 + 1, n - 1, n):
        if k < 1:
            continue
        want = np.argsort(-scores, kind="stable")[:k]
        ids, values = best_scores(scores, k)
        assert ids == want.tolist(), (n, k)
        assert all(type(i) is int for i in ids) and all(type(v) is float for v in values)
        assert np.array_equal(np.asarray(values, np.float32), scores[want], equal_nan=True)
