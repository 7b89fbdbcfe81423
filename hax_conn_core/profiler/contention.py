"""PCCS-style slowdown curves: probes of known demand under a tunable stressor, on any backend.

For each accelerator ``a``: a probe (a memory stream of known standalone demand on ``a``: in
the thread that stands for it on the CPU, on its partition's stream on cuda-sm) runs alone,
then while a stressor (a memory stream on another accelerator, paced at several bandwidths)
runs. The streams come from a factory (``backend.memory_stream``, :mod:`.stressor`), so the
same code calibrates both backends. Each run gives a point ``(u, s)`` with ``u = (probe demand
+ the stressor's achieved bandwidth) / peak`` and ``s`` the probe's time over its standalone
time (docs/timing-model.md's ``u`` and ``S``). A piecewise-linear curve with four breakpoints
is fitted by least squares (then made >= 1 and non-decreasing); the fit error (relative RMS and
worst point) and the range of ``u`` the points reached are recorded: above it the curve is
clamped, i.e. extrapolated flat, and the metadata says so (on the emulated SoC the 8-SM
partition cannot load the big one much: its curve covers a narrow range).

``flat_curves`` is the documented alternative when no calibration is run: ``s = 1``
everywhere, marked as not calibrated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from hax_conn_core.profiler.stressor import host_streams, StreamFactory, StressorError

#: Stressor levels, as fractions of the stressor's maximum.
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Probe demands, as fractions of the probe stream's standalone maximum.
PROBE_FRACTIONS = (1.0, 0.5)
#: Seconds of probe traffic per point.
PROBE_S = 0.12
#: A stressor that reaches less than this share of the bandwidth asked of it has failed.
REACH = 0.9


@dataclass
class Calibration:
    """Curves per accelerator, and how they were made (written to the profile's metadata)."""

    curves: Dict[str, Tuple[Tuple[float, float], ...]]
    calibrated: bool
    info: Dict[str, dict] = field(default_factory=dict)

    def metadata(self) -> dict:
        extra = {"accelerators": self.info} if self.info else {}
        return {"calibrated": self.calibrated, **extra,
                "method": ("PCCS-style: memory-stream probes on one accelerator under a paced "
                           "memory-stream stressor on another (the backend's memory_stream); "
                           "piecewise-linear least-squares fit, clamped outside the range "
                           "reached" if self.calibrated else
                           "not calibrated: s = 1 everywhere (no contention modelled)")}


def flat_curves(accelerators: Sequence[str]) -> Calibration:
    return Calibration({acc: ((0.0, 1.0),) for acc in accelerators}, calibrated=False)


def stressor_of(accelerators: Sequence[str]) -> Dict[str, str]:
    """The accelerator whose stream stresses each one's probe: the next one, cyclically (the
    other one of two; the same one, a second thread, where there is only one)."""
    accs = list(accelerators)
    return {acc: accs[(i + 1) % len(accs)] for i, acc in enumerate(accs)}


def calibrate(accelerators: Sequence[str], peak_gbps: float, single_gbps: float,
              max_stress_gbps: Optional[float] = None, note=None,
              streams: Optional[StreamFactory] = None,
              alone_gbps: Optional[Mapping[str, float]] = None) -> Calibration:
    """Calibrate every accelerator's curve (module docstring).

    ``streams`` makes the memory streams (default: host copy loops); ``alone_gbps`` is what
    each accelerator's stream reaches alone (default ``single_gbps`` for all). The stressor's
    top level is what its accelerator reaches alone, or ``max_stress_gbps``; a StressorError
    says so when the stressor alone cannot reach that.
    """
    factory = streams or host_streams
    alone = {acc: float((alone_gbps or {}).get(acc, single_gbps)) for acc in accelerators}
    others = stressor_of(accelerators)
    made: Dict[str, object] = {}
    separate = len(set(accelerators)) < 2  # one accelerator: probe and stressor apart

    def stream(acc: str, role: str):
        key = f"{acc}:{role}" if separate else acc
        if key not in made:
            made[key] = factory(acc, None)
        return made[key]

    curves, info = {}, {}
    try:
        if max_stress_gbps is not None:
            top = float(max_stress_gbps)
            for acc in sorted(set(others.values())):
                check = stream(acc, "stress")
                check.target_gbps = top
                check.start()
                time.sleep(0.3)
                reached = check.stop()
                if reached < REACH * top:
                    raise StressorError(
                        f"the stressor reached {reached:.2f} GB/s of the {top:.2f} GB/s asked "
                        f"for (on {acc}; its stream alone reaches {alone[acc]:.2f} GB/s); ask "
                        f"for at most {alone[acc] * REACH:.1f} GB/s with --stress-gbps, or "
                        "leave it out")
        for acc in accelerators:
            other = others[acc]
            top = alone[other] if max_stress_gbps is None else float(max_stress_gbps)
            probe, stress = stream(acc, "probe"), stream(other, "stress")
            points: List[Tuple[float, float]] = []
            reached = 0.0
            for fraction in PROBE_FRACTIONS:
                demand = alone[acc] * fraction
                probe.target_gbps = None if fraction >= 1 else demand
                total = int(demand * 1e9 * PROBE_S)
                by_itself = probe.transfer(total)
                own = total / by_itself / 1e9
                for level in LEVELS:
                    if level == 0:
                        points.append((own / peak_gbps, 1.0))
                        continue
                    stress.target_gbps = (None if level >= 1 and max_stress_gbps is None
                                          else top * level)
                    stress.start()
                    time.sleep(0.03)
                    taken = probe.transfer(total)
                    achieved = stress.stop()
                    reached = max(reached, achieved)
                    points.append(((own + achieved) / peak_gbps, max(1.0, taken / by_itself)))
            curve, rms, worst = fit_piecewise(points)
            curves[acc] = curve
            us = [u for u, _ in points]
            info[acc] = {"points": [[round(u, 4), round(s, 4)] for u, s in points],
                         "fit_rms_rel": round(rms, 4), "fit_max_rel": round(worst, 4),
                         "u_range": [round(min(us), 4), round(max(us), 4)],
                         "stressor_on": other, "stressor_top_gbps": round(top, 3),
                         "stressor_reached_gbps": round(reached, 3),
                         "probe_gbps": round(alone[acc], 3),
                         "extrapolated": (f"above u = {max(us):.3f}: s is held at "
                                          f"{curve[-1][1]:.3f} (flat), not measured; the "
                                          f"stressor on {other} reached at most "
                                          f"{reached:.1f} GB/s")}
            if note:
                note(f"contention {acc} (stressor on {other}): {len(points)} points, u "
                     f"{min(us):.2f}..{max(us):.2f} (extrapolated flat above), fit error "
                     f"{100 * rms:.1f}% RMS ({100 * worst:.1f}% worst)")
    finally:
        for made_stream in made.values():
            made_stream.close()
    return Calibration(curves, calibrated=True, info=info)


def fit_piecewise(points: Sequence[Tuple[float, float]], knots: int = 4
                  ) -> Tuple[Tuple[Tuple[float, float], ...], float, float]:
    """Least-squares piecewise-linear fit of ``(u, s)`` points with ``knots`` breakpoints
    spread over ``[0, max u]``, plus the anchor ``(0, 1)``; then ``s >= 1`` and
    non-decreasing. Returns the curve and the relative RMS and worst residual."""
    import numpy as np

    us = np.array([0.0] + [p[0] for p in points])
    ss = np.array([1.0] + [p[1] for p in points])
    top = float(us.max()) if us.max() > 0 else 1.0
    grid = np.linspace(0.0, top, knots)
    basis = np.zeros((len(us), knots))
    for row, u in enumerate(us):
        k = min(int(np.searchsorted(grid, u, side="right")) - 1, knots - 2)
        k = max(k, 0)
        width = grid[k + 1] - grid[k]
        w = 0.0 if width <= 0 else min(1.0, max(0.0, (u - grid[k]) / width))
        basis[row, k] += 1 - w
        basis[row, k + 1] += w
    values, *_ = np.linalg.lstsq(basis, ss, rcond=None)
    values = np.maximum.accumulate(np.maximum(values, 1.0))
    predicted = np.interp(us, grid, values)
    residual = (predicted - ss) / ss
    curve = tuple((round(float(u), 4), round(float(s), 4)) for u, s in zip(grid, values))
    return curve, float(np.sqrt(np.mean(residual ** 2))), float(np.max(np.abs(residual)))
