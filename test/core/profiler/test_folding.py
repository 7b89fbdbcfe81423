"""Folding a whole run's own costs into the group times (hax_conn_core/profiler/folding.py)."""

import pytest

from hax_conn_core.profiler.folding import fold, run_terms
from hax_conn_core.profiler.measure import RunConfig
from test.core.profiler.nets import SMALL


def test_scale_and_frame_cost_from_the_coarse_runs():
    # gpu runs all 3 groups; the dla cannot run group 1, so its coarse run is not one engine
    gpu_fine, gpu_coarse = (RunConfig(((0, 0), (1, 1), (2, 2)), ("gpu",) * 3),
                            RunConfig(((0, 2),), ("gpu",)))
    dla_fine = RunConfig(((0, 0), (1, 1), (2, 2)), ("dla", "gpu", "dla"))
    dla_coarse = RunConfig(((0, 0), (1, 1), (2, 2)), ("dla", "gpu", "dla"))
    samples = {gpu_coarse: [[3.5 + 0.01 * k, [3.0]] for k in range(-5, 6)],
               dla_coarse: [[9.0, [4.0, 1.0, 3.0]]] * 5}
    check = {"gpu": (4.0, 3.0, 2), "dla": (7.0, 7.0, 0)}
    terms = run_terms(("gpu", "dla"), [(gpu_fine, gpu_coarse), (dla_fine, dla_coarse)],
                      samples, check)
    assert terms.scale == {"gpu": pytest.approx(0.75), "dla": pytest.approx(1.0)}
    assert terms.frame_ms["gpu"] == pytest.approx(0.5)
    # the dla has no single-engine run: it takes the gpu's figure and says so
    assert terms.frame_ms["dla"] == pytest.approx(0.5)
    assert terms.frame_from == {"gpu": "gpu as one engine", "dla": "gpu as one engine"}
    times = {"gpu": [1.0, 2.0, 1.0], "dla": [4.0, None, 3.0]}
    spread = {"gpu": [[0.9, 1.1], [1.8, 2.2], [0.9, 1.1]], "dla": [[3.9, 4.1], None, [2.9, 3.1]]}
    fold(times, spread, terms)
    # the gpu's groups now sum to its single engine plus the frame: the coarse run's latency
    assert sum(times["gpu"]) == pytest.approx(3.5)
    assert times["gpu"] == pytest.approx([1.25, 1.5, 0.75])
    assert spread["gpu"][0] == pytest.approx([1.175, 1.325])
    assert times["dla"] == pytest.approx([4.5, None, 3.0]) and spread["dla"][1] is None


def test_a_profile_measured_on_onnxruntime_folds_and_keeps_the_raw_terms(tmp_path):
    from hax_conn_core.profiler import profile_dnns
    from hax_conn_core.runtime.backends import get_backend
    from test.core.runtime.helpers import tiny_model

    model = tiny_model("tiny", SMALL)
    with get_backend("onnxruntime") as backend:
        folded = profile_dnns(backend, [model], repeats=50, warmup=2, progress=False,
                              target_groups=3, contention=False, cache_root=tmp_path,
                              note=lambda line: None)
        # the same measurements (the cache), nothing folded
        raw = profile_dnns(backend, [model], repeats=50, warmup=2, progress=False,
                           target_groups=3, contention=False, cache_root=tmp_path,
                           note=lambda line: None, fold_run_costs=False)
    assert raw.rebuilt == 0 and raw.reused > 0
    meta = folded.document["profiler"]["dnns"]["tiny"]
    terms = meta["folding"]
    assert terms["applied"] is True
    assert raw.document["profiler"]["dnns"]["tiny"]["folding"]["applied"] is False
    rows_f = folded.document["dnns"]["tiny"]["groups"]
    rows_r = raw.document["dnns"]["tiny"]["groups"]
    for acc in ("gpu", "dla"):
        scale, frame = terms["group_scale"][acc], terms["frame_ms"][acc]
        assert frame >= 0 and scale > 0
        for g, (f, r) in enumerate(zip(rows_f, rows_r)):
            if acc in r["time_ms"]:
                expect = r["time_ms"][acc] * scale + (frame if g == 0 else 0.0)
                assert f["time_ms"][acc] == pytest.approx(expect, rel=2e-3, abs=2e-4)
        # what the planner sees for the whole DNN on acc: its engine time plus the frame
        engines = meta["sum_check"][acc]["engines_ms"]
        total = sum(row["time_ms"][acc] for row in rows_f if acc in row["time_ms"])
        starts_here = acc in rows_f[0]["time_ms"]
        assert total == pytest.approx(engines + (frame if starts_here else 0.0), rel=5e-3,
                                      abs=1e-3)
    assert "fold the whole run's own costs" in folded.document["source"]
    assert "nothing folded" in raw.document["source"]
    folded.profile, raw.profile  # both parse as profiles
