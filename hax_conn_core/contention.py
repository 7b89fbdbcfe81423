"""Slowdown from shared-memory contention (docs/timing-model.md, "Slowdown curves").

A curve is a tuple of breakpoints ``(u, s)`` sorted by strictly increasing ``u``: ``u`` is the
DRAM demand of everything running (the group's own plus the other accelerators') over the peak
bandwidth, ``s >= 1`` the factor by which the group's progress slows. Between breakpoints the
slowdown is interpolated linearly; outside them it is clamped to the first / last ``s``.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Sequence, Tuple


def slowdown(curve: Sequence[Tuple[float, float]], utilisation: float) -> float:
    """The slowdown factor of ``curve`` at ``utilisation`` (piecewise linear, clamped)."""
    if utilisation <= curve[0][0]:
        return curve[0][1]
    if utilisation >= curve[-1][0]:
        return curve[-1][1]
    # curve[i-1].u <= utilisation < curve[i].u
    i = bisect_right([u for u, _ in curve], utilisation)
    (u0, s0), (u1, s1) = curve[i - 1], curve[i]
    return s0 + (s1 - s0) * (utilisation - u0) / (u1 - u0)
