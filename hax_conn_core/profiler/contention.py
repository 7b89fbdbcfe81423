"""PCCS-style slowdown curves on the CPU: probes of known demand under a tunable stressor.

For each accelerator ``a``: a probe (a copy stream of known standalone demand, in the thread
that stands for ``a``) runs alone, then while a :class:`~.stressor.CopyStream` paced at several
bandwidths runs in another thread (the other accelerator). Each run gives a point ``(u, s)``
with ``u = (probe demand + the stressor's achieved bandwidth) / peak`` and ``s`` the probe's
time over its standalone time (docs/timing-model.md's ``u`` and ``S``). A piecewise-linear
curve with four breakpoints is fitted by least squares (then made >= 1 and non-decreasing);
the fit error (relative RMS and worst point) and the range of ``u`` the points reached are
recorded: outside it the curve is clamped, i.e. extrapolated flat.

``flat_curves`` is the documented alternative when no calibration is run: ``s = 1``
everywhere, marked as not calibrated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from hax_conn_core.profiler.stressor import CopyStream, make_buffers, probe, StressorError

#: Stressor levels, as fractions of the stressor's maximum.
LEVELS = (0.0, 0.25, 0.5, 0.75, 1.0)
#: Probe demands, as fractions of one stream's standalone maximum.
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
                "method": ("PCCS-style: copy-stream probes on one accelerator's thread under a "
                           "paced copy-stream stressor on another; piecewise-linear "
                           "least-squares fit, clamped outside the range reached"
                           if self.calibrated else
                           "not calibrated: s = 1 everywhere (no contention modelled)")}


def flat_curves(accelerators: Sequence[str]) -> Calibration:
    return Calibration({acc: ((0.0, 1.0),) for acc in accelerators}, calibrated=False)


def calibrate(accelerators: Sequence[str], peak_gbps: float, single_gbps: float,
              max_stress_gbps: Optional[float] = None, note=None) -> Calibration:
    """Calibrate every accelerator's curve (module docstring).

    ``max_stress_gbps`` is the stressor's top level (default: what one stream reaches alone);
    a StressorError says so when the stressor alone cannot reach it.
    """
    top = single_gbps if max_stress_gbps is None else float(max_stress_gbps)
    if max_stress_gbps is not None:
        check = CopyStream(target_gbps=top, name="stress-check").start()
        time.sleep(0.3)
        reached = check.stop()
        if reached < REACH * top:
            raise StressorError(
                f"the stressor reached {reached:.2f} GB/s of the {top:.2f} GB/s asked for "
                f"(one copy stream alone on this machine: {single_gbps:.2f} GB/s); ask for "
                f"at most {single_gbps * REACH:.1f} GB/s with --stress-gbps, or leave it out")
    curves, info = {}, {}
    probe_buffers, stress_buffers = make_buffers(), make_buffers()
    for acc in accelerators:
        points: List[Tuple[float, float]] = []
        for fraction in PROBE_FRACTIONS:
            demand = single_gbps * fraction
            total = int(demand * 1e9 * PROBE_S)
            alone = probe(None if fraction >= 1 else demand, total, probe_buffers)
            own = total / alone / 1e9
            for level in LEVELS:
                if level == 0:
                    points.append((own / peak_gbps, 1.0))
                    continue
                stress = CopyStream(target_gbps=None if level >= 1 and max_stress_gbps is None
                                    else top * level, name="stressor",
                                    buffers=stress_buffers).start()
                time.sleep(0.03)
                taken = probe(None if fraction >= 1 else demand, total, probe_buffers)
                achieved = stress.stop()
                points.append(((own + achieved) / peak_gbps, max(1.0, taken / alone)))
        curve, rms, worst = fit_piecewise(points)
        curves[acc] = curve
        us = [u for u, _ in points]
        info[acc] = {"points": [[round(u, 4), round(s, 4)] for u, s in points],
                     "fit_rms_rel": round(rms, 4), "fit_max_rel": round(worst, 4),
                     "u_range": [round(min(us), 4), round(max(us), 4)],
                     "stressor_top_gbps": round(top, 3)}
        if note:
            note(f"contention {acc}: {len(points)} points, u {min(us):.2f}..{max(us):.2f}, "
                 f"fit error {100 * rms:.1f}% RMS ({100 * worst:.1f}% worst)")
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
