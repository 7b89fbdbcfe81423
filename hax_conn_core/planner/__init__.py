"""The HaX-CoNN planner: which accelerator runs each layer group of each DNN (Z3 + simulation).

``plan(profile, ...)`` returns a :class:`PlanResult` whose schedule's ``predicted_ms`` is always
the simulator's value. docs/planner.md describes the formulation and the refinement loop.
z3 is imported only when a plan is made.
"""

from hax_conn_core.planner.api import plan, PlanResult

__all__ = ["plan", "PlanResult"]
