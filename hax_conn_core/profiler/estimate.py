"""A profile without hardware: a roofline from the graph and the device description.

For every group and every accelerator that can run it, ``time_ms = max(FLOPs / peak compute,
bytes moved / peak bandwidth)`` (``graph.grouping.group_costs``: FLOPs = 2 x multiply-adds;
bytes = weights + inputs read + outputs written, at the precision's element size), with the
device description's ``peak_gflops`` per accelerator and ``peak_bandwidth_gbps``
(config/devices/*.yaml). ``demand_gbps`` is bytes / time; ``transition_ms`` the handed-over
tensor written and read once at peak bandwidth. The contention curve is bandwidth sharing,
``s = max(1, u)`` (when the accelerators together ask for more than the peak, each slows by
the oversubscription). Every figure is an upper bound on speed, not a measurement: the file
says ``estimated`` in ``source``, and a measured profile replaces it (docs/profiler.md).
"""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

from hax_conn_core.errors import ConfigError

#: Element size per precision.
DTYPE_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
#: Bandwidth-sharing curve: s = max(1, u) (clamped beyond u = 8).
SHARING_CURVE = [[0.0, 1.0], [1.0, 1.0], [8.0, 8.0]]


def device_peaks(capabilities) -> tuple:
    """(peak GB/s, acc -> peak GFLOP/s, source text) from a device description; ConfigError
    naming the file and the missing key when it has none."""
    where = capabilities.path or capabilities.id
    extra = capabilities.extra
    bandwidth = extra.get("peak_bandwidth_gbps")
    compute = extra.get("peak_gflops")
    if not _positive(bandwidth):
        raise ConfigError(f"{where}: peak_bandwidth_gbps: expected a positive number (GB/s) "
                          f"for --estimate, found {bandwidth!r}")
    if not isinstance(compute, dict):
        raise ConfigError(f"{where}: peak_gflops: expected a mapping of accelerator -> GFLOP/s "
                          f"for --estimate, found {compute!r}")
    for acc in capabilities.accelerators:
        if not _positive(compute.get(acc)):
            raise ConfigError(f"{where}: peak_gflops.{acc}: expected a positive number "
                              f"(GFLOP/s), found {compute.get(acc)!r}")
    return float(bandwidth), {a: float(compute[a]) for a in capabilities.accelerators}, \
        str(extra.get("peak_source", "the device description"))


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def estimate_profile(dnns: Sequence[str], device="xavier-agx", precision: Optional[str] = None,
                     target_groups: int = 10, graphs: Optional[Mapping[str, object]] = None
                     ) -> dict:
    """The estimated profile document of ``dnns`` on ``device`` (module docstring).

    ``precision`` defaults to the device description's ``estimate_precision`` (fp16 on the
    Jetsons, fp32 on the CPU). ``graphs`` may give a graph per DNN (else the shipped
    prototxt of each registered DNN is read).
    """
    from hax_conn_core.graph.capabilities import resolve_device
    from hax_conn_core.graph.grouping import group_costs, LayerGroup
    from hax_conn_core.profiler.groups import check_runnable, initial_groups

    caps = resolve_device(device)
    accelerators = tuple(caps.accelerators)
    bandwidth, compute, peak_source = device_peaks(caps)
    precision = precision or str(caps.extra.get("estimate_precision", "fp32"))
    if precision not in DTYPE_BYTES:
        raise ConfigError(f"precision {precision!r}: expected one of {', '.join(DTYPE_BYTES)}")
    size = DTYPE_BYTES[precision]
    out: Dict[str, dict] = {}
    for name in dnns:
        graph = (graphs or {}).get(name) or _graph(name)
        groups = initial_groups(graph, caps, accelerators, target_groups)
        check_runnable(name, graph, groups, caps, accelerators)
        costs = group_costs(graph, [LayerGroup(i, g.first, g.last, 0, True)
                                    for i, g in enumerate(groups)], dtype_bytes=size)
        rows = []
        for group, cost in zip(groups, costs):
            times = {a: max(1e-6, 1e3 * max(cost.flops / (compute[a] * 1e9),
                                            cost.bytes_moved / (bandwidth * 1e9)))
                     for a in group.accelerators}
            rows.append({"layers": [group.first, group.last],
                         "time_ms": {a: _round(t) for a, t in times.items()},
                         "demand_gbps": {a: _round(cost.bytes_moved / 1e9 / (t / 1e3))
                                         for a, t in times.items()},
                         "transition_ms": {a: _round(2e3 * cost.output_bytes / (bandwidth * 1e9))
                                           for a in group.accelerators}})
        out[name] = {"groups": rows}
    return {
        "format": "hax-conn-profile/1",
        "source": (f"estimated (roofline, no measurement) by hax-conn profile --estimate for "
                   f"{caps.id} at {precision}: time = max(FLOPs / peak_gflops, bytes / "
                   f"peak_bandwidth_gbps) per group; peaks from {peak_source}; contention "
                   "curve s = max(1, u) (bandwidth sharing); see docs/profiler.md"),
        "estimated": True,
        "device": {"name": caps.id, "accelerators": list(accelerators),
                   "peak_bandwidth_gbps": bandwidth,
                   "peak_bandwidth_source": f"device description ({peak_source})"},
        "contention": {a: [list(p) for p in SHARING_CURVE] for a in accelerators},
        "dnns": out,
    }


def _round(value: float) -> float:
    """Six significant digits (readable files; far below any estimate's error)."""
    return float(f"{value:.6g}")


def _graph(name: str):
    from pathlib import Path

    from hax_conn_core.graph.prototxt import load_prototxt
    from hax_conn_core.models import get_model

    if name.endswith(".prototxt") or Path(name).is_file():
        return load_prototxt(name)
    return load_prototxt(get_model(name).prototxt, name=name)
