"""Profiles and models for the runtime tests: real graphs, profile ranges from their groups."""

from __future__ import annotations

import random
from typing import Dict, Mapping, Optional, Sequence

from hax_conn_core.graph.grouping import group_layers
from hax_conn_core.graph.prototxt import parse_prototxt
from hax_conn_core.graph.weights import seeded_weights
from hax_conn_core.profile import parse_profile
from hax_conn_core.runtime.backends.onnxrt import run_onnx
from hax_conn_core.runtime.models import RuntimeModel


def tiny_model(name: str, text: str, seed: int = 0) -> RuntimeModel:
    """A hand-written prototxt as a runnable model (seeded, calibrated weights)."""
    graph = parse_prototxt(text, name=name)
    return RuntimeModel(name=name, graph=graph, weights=seeded_weights(graph, seed, run=run_onnx),
                        weights_id=f"seeded:{seed}")


def profile_for(models: Mapping[str, RuntimeModel], seed: Optional[int] = None,
                dla_everywhere: bool = True, target_groups: int = 10,
                contention: Sequence = ((0.0, 1.0), (1.0, 1.5))):
    """A profile whose groups are ``group_layers`` of each model's graph. Times and demands are
    1 ms / 1 GB/s, or random (``seed``) so that schedules interleave in varied orders. With
    ``dla_everywhere`` the DLA may run every group (the CPU's two sessions run anything)."""
    rng = random.Random(seed)
    dnns: Dict[str, dict] = {}
    for name, model in models.items():
        groups = []
        for group in group_layers(model.graph, target_groups):
            accs = ("gpu", "dla") if (dla_everywhere or group.dla_ok) else ("gpu",)

            def value(low, high):
                return round(rng.uniform(low, high), 3) if seed is not None else 1.0

            groups.append({"layers": [group.first, group.last],
                           "time_ms": {a: value(0.2, 3.0) for a in accs},
                           "demand_gbps": {a: value(1.0, 20.0) for a in accs},
                           "transition_ms": {a: value(0.0, 0.5) for a in accs}})
        dnns[name] = {"groups": groups}
    return parse_profile({
        "format": "hax-conn-profile/1",
        "device": {"name": "cpu", "accelerators": ["gpu", "dla"], "peak_bandwidth_gbps": 20.0},
        "contention": {"gpu": [list(p) for p in contention], "dla": [list(p) for p in contention]},
        "dnns": dnns})
