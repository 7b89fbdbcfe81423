"""`hax-conn simulate`: predict what a schedule costs on a profile."""

from __future__ import annotations

import argparse
import json
import sys

from hax_conn_core.cli.base import add_json_option, add_profile_option, Command

#: The JSON report of ``hax-conn simulate --json`` (docs/planner.md, "hax-conn simulate").
SIMULATION_FORMAT = "hax-conn-simulation/1"


class SimulateCommand(Command):
    """Predict what a schedule costs on a profile (contention-aware simulation).

    Prints the predicted latency (or time per frame-set and frame-sets per second for a
    throughput schedule) and when each DNN's frame of the first frame-set finishes. The
    simulation follows docs/timing-model.md; the schedule must fit the profile (and, when it
    names one, have been planned on it). A throughput schedule has 1 to 16 frame-sets in
    flight.

    Example:
      hax-conn simulate --profile profiles/xavier_googlenet_alexnet.json --schedule s.json
    """

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_profile_option(parser)
        parser.add_argument("--schedule", required=True, metavar="S.json",
                            help="schedule file (format hax-conn-schedule/1)")
        parser.add_argument("--plot", metavar="gantt.png",
                            help="draw a Gantt chart of the simulation (matplotlib)")
        add_json_option(parser)

    def run(self, args: argparse.Namespace) -> int:
        from hax_conn_core.profile import load_profile
        from hax_conn_core.schedule import check_schedule_fits, load_schedule
        from hax_conn_core.simulator import check_frames_in_flight, simulate

        profile = load_profile(args.profile)
        schedule = load_schedule(args.schedule)
        if schedule.objective == "throughput":
            # Before anything runs: a stream of 100,000 frame-sets in flight would take minutes.
            check_frames_in_flight(schedule.frames_in_flight,
                                   f"{args.schedule}: frames_in_flight")
        check_schedule_fits(schedule, profile, source=str(args.schedule))
        result = simulate(profile, schedule)
        chart = None
        if args.plot:
            from hax_conn_core.gantt import draw_gantt

            chart = draw_gantt(profile, schedule, args.plot)
        throughput = schedule.objective == "throughput"
        if args.json:
            report = {
                "format": SIMULATION_FORMAT,
                "objective": schedule.objective,
                "predicted_ms": result.predicted_ms,
                "dnn_finish_ms": dict(result.dnn_finish_ms),
                "profile_sha256": profile.sha256,
            }
            if throughput:
                report["frames_in_flight"] = schedule.frames_in_flight
                report["frame_sets_per_s"] = 1000.0 / result.predicted_ms
                report["frame_set_finish_ms"] = list(result.frame_set_finish_ms)
            if schedule.predicted_ms is not None:
                report["schedule_predicted_ms"] = schedule.predicted_ms
            print(json.dumps(report, indent=2))
            return 0
        if throughput:
            print(f"Predicted time per frame-set: {result.predicted_ms:.3f} ms "
                  f"({1000.0 / result.predicted_ms:.1f} frame-sets/s, "
                  f"{schedule.frames_in_flight} in flight)")
        else:
            print(f"Predicted latency: {result.predicted_ms:.3f} ms")
        print("Finish of each DNN's frame in the first frame-set:")
        width = max(len(n) for n in result.dnn_finish_ms)
        for name, ms in result.dnn_finish_ms.items():
            print(f"  {name:<{width}}  {ms:.3f} ms")
        if schedule.predicted_ms is not None and \
                abs(schedule.predicted_ms - result.predicted_ms) > 1e-6 * result.predicted_ms:
            print(f"hax-conn simulate: note: the schedule file says "
                  f"{schedule.predicted_ms:.3f} ms; this profile predicts "
                  f"{result.predicted_ms:.3f} ms", file=sys.stderr)
        if chart is not None:
            print(f"Gantt chart written to {chart}")
        return 0
