"""Messages <-> hax_conn_core objects: the only place the nodes translate between the two."""

from __future__ import annotations

import math
from array import array
from typing import Dict, Iterable, Mapping, Optional

import numpy as np

from hax_conn_core.postprocess import ClassifyResult, make_postprocessor, Postprocessor
from hax_conn_core.preprocess import Image
from hax_conn_core.schedule import SCHEDULE_FORMAT
from hax_conn_core.schedule import Schedule as CoreSchedule

#: A model without an ``outputs`` setting: classify, top-5, indices (docs/outputs.md).
DEFAULT_POSTPROCESSOR = make_postprocessor(None, "default")


def image_from_msg(msg) -> Image:
    """sensor_msgs/Image -> preprocess.Image (no copy of the pixel data)."""
    return Image(encoding=msg.encoding, height=msg.height, width=msg.width, step=msg.step,
                 data=msg.data)


def schedule_to_msg(replan, sequence: int, stamp=None):
    """A replan.Replan -> hax_conn_ros/Schedule, every DNN in priority order."""
    from hax_conn_ros.msg import DnnAssignment, Schedule

    schedule, profile = replan.schedule, replan.profile
    msg = Schedule(format=SCHEDULE_FORMAT, objective=schedule.objective,
                   predicted_ms=float(schedule.predicted_ms or 0.0),
                   max_transitions=int(schedule.max_transitions or 0),
                   frames_in_flight=int(schedule.frames_in_flight),
                   profile_sha256=schedule.profile_sha256 or "", profile=replan.profile_path,
                   sequence=sequence, status=replan.status, cached=replan.cached,
                   planning_ms=replan.time_s * 1e3, summary="; ".join(replan.words))
    if stamp is not None:
        msg.header.stamp = stamp
    msg.dnns = [DnnAssignment(dnn=name, assignment=list(accs),
                              group_last_layer=[int(g.layers[1])
                                                for g in profile.dnns[name].groups])
                for name, accs in schedule.assignments.items()]
    return msg


def schedule_from_msg(msg) -> CoreSchedule:
    """hax_conn_ros/Schedule -> the core Schedule (the order of ``dnns`` is the priority)."""
    return CoreSchedule(objective=msg.objective,
                        assignments={d.dnn: tuple(d.assignment) for d in msg.dnns},
                        predicted_ms=msg.predicted_ms, max_transitions=msg.max_transitions,
                        frames_in_flight=msg.frames_in_flight,
                        profile_sha256=msg.profile_sha256 or None)


def result_to_msg(output, header, postprocessor: Optional[Postprocessor] = None, msg=None):
    """A feeder.Output and the input image's header -> hax_conn_ros/InferenceResult, the
    outputs as ``postprocessor`` makes them (default: classify, top-5, indices): classes and
    scores, or every tensor. Its ConfigError (e.g. top_k above the class count) passes on.

    ``msg``: an InferenceResult to fill (every field) instead of a new one: the executor node
    passes back the one it published last for the DNN (publish() has copied it out), since
    a new one costs its constructor (a Header and a Time made and dropped, 14 fields set) on
    top of the fields, twice the filling's time with cold caches (docs/bench-ros.md)."""
    post = postprocessor or DEFAULT_POSTPROCESSOR
    done = post(output.outputs)
    if msg is None:
        from hax_conn_ros.msg import InferenceResult

        msg = InferenceResult(header=header)
    else:
        msg.header = header
    msg.dnn, msg.frame_set = output.dnn, output.frame_set
    msg.schedule_sequence = int(output.label or 0)
    msg.accelerator, msg.weights = output.last_accelerator, output.weights
    msg.postprocess = post.config.kind
    msg.latency_ms = float(output.latency_ms)
    msg.gpu_ms = float(output.accelerator_ms.get("gpu", 0.0))
    msg.dla_ms = float(output.accelerator_ms.get("dla", 0.0))
    if isinstance(done, ClassifyResult):  # the setters make the array('i') and array('f')
        msg.class_ids, msg.scores = done.class_ids, done.scores
        msg.class_names = list(done.names)
        msg.outputs = []
    else:  # array('f') from the bytes: rosidl checks a list element by element
        from hax_conn_ros.msg import OutputTensor

        msg.class_ids, msg.scores, msg.class_names = (), (), []
        msg.outputs = [OutputTensor(name=t.name, shape=list(t.shape),
                                    data=array("f", t.data.tobytes()))
                       for t in done.tensors]
    return msg


def layer_timings_to_msg(medians: Mapping[tuple, float], profile, stamp=None):
    """{(dnn, first group, last group, accelerator): median ms} over a profile ->
    hax_conn_ros/LayerTimings: one entry per segment timed (a lone group, or groups run as one
    engine: their layers span first..last)."""
    from hax_conn_ros.msg import GroupTiming, LayerTimings

    msg = LayerTimings()
    if stamp is not None:
        msg.header.stamp = stamp
    for (dnn, group, last_group, acc), ms in sorted(medians.items()):
        layers = (-1, -1)
        demand = 0.0
        if profile is not None and dnn in profile.dnns and last_group < len(
                profile.dnns[dnn].groups):
            entries = profile.dnns[dnn].groups[group:last_group + 1]
            layers = (entries[0].layers[0], entries[-1].layers[1])
            # The segment's demand: its groups' traffic over their summed time.
            times = [e.time_ms.get(acc, 0.0) for e in entries]
            moved = sum(e.demand_gbps.get(acc, 0.0) * t for e, t in zip(entries, times))
            demand = float(moved / sum(times)) if sum(times) > 0 else 0.0
        msg.groups.append(GroupTiming(dnn=dnn, group=group, first_layer=int(layers[0]),
                                      last_layer=int(layers[1]), accelerator=acc,
                                      time_ms=float(ms), demand_gbps=demand))
    return msg


def emc_to_msg(sample: Mapping[str, object], stamp=None):
    """profiler's EMC sample {percent, gbps, source} -> hax_conn_ros/EmcUtilization."""
    from hax_conn_ros.msg import EmcUtilization

    msg = EmcUtilization(utilization_percent=float(sample.get("percent", math.nan)),
                         bandwidth_gbps=float(sample.get("gbps", math.nan)),
                         source=str(sample.get("source", "unavailable")))
    if stamp is not None:
        msg.header.stamp = stamp
    return msg


def diagnostic_status(name: str, hardware_id: str, stats: Mapping[str, object],
                      depth: Iterable[int], schedule: Optional[str]):
    """One executor's figures -> diagnostic_msgs/DiagnosticStatus (WARN on any error)."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    in_flight, waiting = depth
    totals: Dict[str, float] = {"received": 0, "dropped": 0, "frame_errors": 0,
                                "run_errors": 0, "results": 0}
    latencies = []
    last_error = ""
    for entry in stats.values():
        for key in totals:
            totals[key] += getattr(entry, key)
        latencies.extend(entry.latencies_ms)
        last_error = entry.last_error or last_error
    errors = totals["frame_errors"] + totals["run_errors"]
    values = {"queue_depth": in_flight + waiting, "frame_sets_in_flight": in_flight,
              "images_waiting": waiting, **{k: int(v) for k, v in totals.items()},
              "errors": int(errors),
              "latency_ms_median": (f"{float(np.median(latencies)):.3f}" if latencies else "-"),
              "schedule": schedule or "none yet", "last_error": last_error}
    for dnn, entry in sorted(stats.items()):
        values[f"{dnn}.dropped"] = entry.dropped
        values[f"{dnn}.errors"] = entry.frame_errors + entry.run_errors
    level = DiagnosticStatus.WARN if errors else DiagnosticStatus.OK
    message = f"{int(errors)} error(s), last: {last_error}" if errors else "running"
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()])
