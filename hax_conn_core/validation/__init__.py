"""Validation: does the simulator predict what the runtime measures? (``hax-conn validate``,
docs/validate.md).

For DNN sets and objectives, the planned schedule and the four baselines are predicted (with and
without the contention model) and measured through the runtime's executors side by side; the
report puts the figures and the prediction errors next to each other.

- ``predict``: a schedule's predicted latency and frame-sets/s, with or without contention.
- ``bundle``: pre-planned schedules in a directory (written where z3 is, read where it is not).
- ``measure``: one DNN set and objective measured through ``runtime.compare``.
- ``report``: the report document (``hax-conn-validate/1``), its error summary and its text.
- ``plot``: the report's chart (matplotlib, imported only there).

Nothing here imports z3 or ROS at module level: measuring runs on machines without either.
"""
