"""Slowdown curves: piecewise-linear interpolation, clamped outside the breakpoints."""

import pytest

from hax_conn_core.contention import slowdown

CURVE = ((0.0, 1.0), (0.5, 1.05), (1.0, 1.6), (1.5, 2.2))  # timing-model.md's GPU example


@pytest.mark.parametrize("u, s", [(0.0, 1.0), (0.25, 1.025), (0.5, 1.05), (0.75, 1.325),
                                  (1.0, 1.6), (1.25, 1.9), (1.5, 2.2)])
def test_interpolates_between_breakpoints(u, s):
    assert slowdown(CURVE, u) == pytest.approx(s)


@pytest.mark.parametrize("u, s", [(-1.0, 1.0), (2.0, 2.2), (100.0, 2.2)])
def test_clamps_outside(u, s):
    assert slowdown(CURVE, u) == pytest.approx(s)


def test_first_breakpoint_above_zero_clamps_below_it():
    curve = ((0.3, 1.2), (1.0, 1.4))
    assert slowdown(curve, 0.1) == pytest.approx(1.2)
    assert slowdown(curve, 0.65) == pytest.approx(1.3)


def test_single_breakpoint_is_constant():
    assert slowdown(((0.4, 1.3),), 0.0) == 1.3
    assert slowdown(((0.4, 1.3),), 5.0) == 1.3
