"""``profile_dnns`` and ``calibrate`` called directly (small and quick)."""

import pytest

from hax_conn_core.profile import parse_profile
from test.core.profiler.nets import SMALL


def test_calibration_gives_valid_curves_with_fit_error_and_range(monkeypatch):
    from hax_conn_core.profiler import contention
    from hax_conn_core.profiler.stressor import measure_peak

    monkeypatch.setattr(contention, "PROBE_S", 0.03)
    monkeypatch.setattr(contention, "LEVELS", (0.0, 0.5, 1.0))
    peak = measure_peak(duration_s=0.1)
    assert peak.peak_gbps >= peak.single_gbps > 0 and "measured" in peak.source()
    result = contention.calibrate(("gpu", "dla"), peak.peak_gbps, peak.single_gbps)
    assert result.calibrated
    for acc in ("gpu", "dla"):
        info = result.info[acc]
        assert len(info["points"]) == 6 and 0 <= info["fit_rms_rel"] <= info["fit_max_rel"]
        low, high = info["u_range"]
        assert 0 < low < high
    doc = {"format": "hax-conn-profile/1",
           "device": {"name": "cpu", "accelerators": ["gpu", "dla"],
                      "peak_bandwidth_gbps": peak.peak_gbps},
           "contention": {a: [list(p) for p in c] for a, c in result.curves.items()},
           "dnns": {"x": {"groups": [{"layers": [0, 0], "time_ms": {"gpu": 1.0},
                                      "demand_gbps": {"gpu": 0.0}}]}}}
    parse_profile(doc)


def test_profile_dnns_of_a_model_object(tmp_path):
    from hax_conn_core.errors import ConfigError
    from hax_conn_core.profiler import profile_dnns
    from hax_conn_core.runtime.backends import get_backend
    from test.core.runtime.helpers import tiny_model

    model = tiny_model("tiny", SMALL)
    with get_backend("onnxruntime") as backend:
        run = profile_dnns(backend, [model], repeats=50, warmup=2, progress=False,
                           target_groups=3, contention=False, cache_root=tmp_path,
                           note=lambda line: None)
        with pytest.raises(ConfigError, match="named twice"):
            profile_dnns(backend, [model, model], progress=False, cache_root=tmp_path)
    profile = run.profile
    groups = profile.dnns["tiny"].groups
    assert groups[0].layers[0] == 0 and all(g.runs_on("gpu") for g in groups)
    rows = run.document["dnns"]["tiny"]["groups"]
    for row in rows:
        for acc, (low, high) in row["time_ms_spread"].items():
            assert low <= row["time_ms"][acc] <= high
    meta = run.document["profiler"]["dnns"]["tiny"]
    assert set(meta["sum_check"]) == {"gpu", "dla"}
    assert any("group times sum" in line for line in run.notes)
