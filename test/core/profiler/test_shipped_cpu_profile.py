"""The shipped CPU profile plans and its plan runs on the runtime (onnxruntime)."""

import pytest

from hax_conn_core.profile import load_profile
from hax_conn_core.resources import data_dir

CPU_PROFILES = sorted(data_dir("profiles").glob("cpu_*.json"))


def test_a_cpu_profile_of_four_paper_dnns_is_shipped():
    assert CPU_PROFILES
    assert any(len(load_profile(p).dnns) >= 4 for p in CPU_PROFILES)


@pytest.mark.parametrize("path", CPU_PROFILES, ids=lambda p: p.name)
def test_its_plan_runs_on_the_runtime(path):
    from hax_conn_core.planner import plan
    from hax_conn_core.runtime.backends import get_backend
    from hax_conn_core.runtime.measure import measure
    from hax_conn_core.runtime.models import load_model
    from hax_conn_core.runtime.session import Runtime

    profile = load_profile(path)
    assert profile.device.name == "cpu"
    names = [n for n in ("mobilenet_v1", "resnet18") if n in profile.dnns][:2] or \
        list(profile.dnns)[:2]
    sub = profile.subset(names)
    result = plan(sub, objective="latency", max_transitions=1)
    models = {name: load_model(name) for name in names}
    with get_backend("onnxruntime") as backend:
        with Runtime(backend, sub, result.schedule, models) as runtime:
            measured = measure(runtime, frames=3, warmup=1)
    assert measured.summary["failed_frame_sets"] == 0
    assert measured.summary["frame_sets"] == 3
