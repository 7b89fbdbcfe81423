"""The ROS layer's cost: per-frame overhead over the bare runtime, parameter change -> schedule,
planner time beside the artifact's solver, re-planning a one-DNN change. docs/bench-ros.md.

    .venv/bin/python bench/bench_ros.py [--frames 150] [--changes 20] [--executors single,multi]
        [--artifact PATH/TO/HaX-CoNN/src/z3_solver_multi_dnn.py] [--json out.json]

1. Per frame, for each rclpy executor named (nodes of `hax-conn bringup`, onnxruntime, the
   shipped CPU profile, alexnet + resnet18, one 224x224 rgb8 image at a time):
   - in the node: image callback entered -> last result's publish() returned, minus the
     runtime's own submit -> result time of the same frame-set (the ROS layer's overhead), and
     its hops (conversion + offer, hand-over to the feeder thread, preprocessing, result
     message built, publish);
   - end to end through DDS: image published -> both results received, by a probe in another
     process (what a user's camera node sees) and by a probe node in the nodes' process, beside
     the bare runtime on the same schedule (submit -> frame-set result; rounds after the ROS
     ones). The difference includes DDS transport both ways, which is not the layer's own;
   - parts alone, in the nodes' process with the runtime idle, back to back and after a pause
     as long as a frame's inference: preprocessing both DNNs (one input per distinct input
     shape, as the feeder shares it), building (into the last published message, as the node
     does) and publishing both results; an Image and an InferenceResult between two nodes.
2. Parameter change -> new schedule received, -> first result under it (SetParameters on the
   planner, two DNN sets alternating: after the first two, plans and engines are cached).
3. Planner time of the shipped pair (profiles/xavier_googlenet_alexnet.json) beside the HaX-CoNN
   artifact's Z3 script on the same inputs (run from its own path with runpy: whole script,
   model built and solved, output captured), runs interleaved; a one-DNN change of a 2- and a
   3-DNN set replanned with and without the warm start (replan.py).
4. Whether rclpy.experimental.EventsExecutor can serve the nodes (a child process with a
   publishing thread; a time-out is reported as starved).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import random
import runpy
import subprocess
import sys
import threading
import time
from collections import deque
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PAIR = ["alexnet", "resnet18"]
OTHER = ["alexnet", "mobilenet_v1"]
CPU_PROFILE = "cpu_alexnet_googlenet_resnet18_mobilenet_v1.json"


def _stats(values_ms):
    values = sorted(values_ms)
    return {"median": round(float(np.median(values)), 3),
            "p99": round(float(np.percentile(values, 99)), 3), "count": len(values)}


#: Notified by every callback that records something; waits sleep on it, rather than poll
#: (a polling thread takes the GIL and a core from the nodes it measures).
_CHANGED = threading.Condition()


def _noted(record):
    """``record`` (a callback), then wake the waits."""
    def callback(*args):
        record(*args)
        with _CHANGED:
            _CHANGED.notify_all()
    return callback


def _wait(predicate, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    with _CHANGED:  # re-checked every 10 ms for what no callback notes (discovery)
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("bench: waited too long")
            _CHANGED.wait(min(left, 0.01))


def _image_msg():
    from sensor_msgs.msg import Image

    pixels = np.random.default_rng(0).integers(0, 256, 224 * 224 * 3, dtype=np.uint8)
    return Image(height=224, width=224, encoding="rgb8", step=672, data=pixels.tobytes())


def probe_process(frames: int, dnns) -> None:
    """Child: publish ``frames`` images one at a time, print the end-to-end times (JSON)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from hax_conn_ros.msg import InferenceResult

    rclpy.init()
    node = Node("bench_camera")
    got = {}
    subs = [node.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                     _noted(lambda m: got.setdefault(m.header.frame_id, {})
                                            .__setitem__(m.dnn, time.perf_counter())), 50)
            for dnn in dnns]
    images = node.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    _wait(lambda: images.get_subscription_count() > 0
          and all(s.get_publisher_count() > 0 for s in subs), 60)
    image, out = _image_msg(), []
    for i in range(frames + 10):
        image.header.frame_id = f"p{i}"
        start = time.perf_counter()
        images.publish(image)
        try:
            _wait(lambda: len(got.get(image.header.frame_id, {})) == len(dnns), 10)
        except TimeoutError:
            continue  # best-effort image lost: not a sample
        if i >= 10:
            out.append((max(got[image.header.frame_id].values()) - start) * 1e3)
    print(json.dumps(out), flush=True)
    os._exit(0)  # rclpy's threads would abort a normal exit ("terminate called ...")


def listen_process(dnns) -> None:
    """Child: subscribe to the results of ``dnns`` (a user's node in another process) and spin
    until killed; prints ``ready`` once discovery matched."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from hax_conn_ros.msg import InferenceResult

    rclpy.init()
    node = Node("bench_listener_process")
    subs = [node.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                     lambda m: None, 50) for dnn in dnns]
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    while not all(s.get_publisher_count() > 0 for s in subs):
        executor.spin_once(timeout_sec=0.05)
    print("ready", flush=True)
    executor.spin()


def _node_figures(nodes):
    """Per frame-set, from the executor nodes' hop stamps (ms)."""
    by_set = {}
    for node in nodes:
        for dnn, frame_set, hops in getattr(node, "hops", ()):
            by_set.setdefault(frame_set, []).append(hops)
    parts = {k: [] for k in ("overhead", "node", "runtime", "convert_offer", "handover",
                             "preprocess", "submit_call", "build_publish", "build", "publish")}
    for entries in by_set.values():
        if len(entries) != len(PAIR):
            continue
        received = min(h["received"] for h in entries)
        published = max(h["published"] for h in entries)
        first = entries[0]
        runtime = first["result"] - first["submit"]
        node_ms = published - received
        parts["node"].append(node_ms * 1e3)
        parts["runtime"].append(runtime * 1e3)
        parts["overhead"].append((node_ms - runtime) * 1e3)
        parts["convert_offer"].append((max(h["offered"] for h in entries) - received) * 1e3)
        parts["handover"].append((first["preprocess"] - max(h["offered"] for h in entries))
                                 * 1e3)
        parts["preprocess"].append((first["submit"] - first["preprocess"]) * 1e3)
        returned = first.get("submitted", first["submit"])  # unset if the result came first
        parts["submit_call"].append((returned - first["submit"]) * 1e3)
        parts["build_publish"].append((published - first["result"]) * 1e3)
        publish = sum(h["published"] - h["built"] for h in entries)
        parts["publish"].append(publish * 1e3)
        parts["build"].append((published - first["result"] - publish) * 1e3)
    return {k: _stats(v) for k, v in parts.items() if v}


def bench(frames: int, changes: int, executor_kind: str):
    import rclpy
    from rcl_interfaces.srv import SetParameters
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from hax_conn_core import feeder as feeding
    from hax_conn_core.preprocess import to_input
    from hax_conn_ros import conversions
    from hax_conn_ros.bringup import make_nodes, spin
    from hax_conn_ros.msg import InferenceResult, Schedule
    from hax_conn_ros.planner_node import SCHEDULE_QOS

    os.environ["ROS_DOMAIN_ID"] = str(random.Random().randint(150, 200))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.context.Context()
    rclpy.init(context=context)
    nodes = make_nodes(ROOT / "config" / "perception.yaml", log_level="warn", context=context)
    executors = [n for n in nodes if hasattr(n, "hops")]
    probe = Node("bench_probe", context=context)
    got, schedules, echo = {}, [], []

    def listen_to_results():  # after the other process's round: no subscriber here before
        for dnn in PAIR + OTHER:
            probe.create_subscription(InferenceResult, f"/hax_conn/{dnn}/result",
                                      _noted(lambda m: got.setdefault(m.header.frame_id, {})
                                             .__setitem__(m.dnn, (time.perf_counter(), m))),
                                      50)

    probe.create_subscription(Schedule, "/planner/schedule",
                              _noted(lambda m: schedules.append((time.perf_counter(), m))),
                              SCHEDULE_QOS)
    images = probe.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
    echo_pub = probe.create_publisher(Image, "/bench/echo", qos_profile_sensor_data)
    result_pub = probe.create_publisher(InferenceResult, "/bench/result_echo", 10)
    listener = Node("bench_listener", context=context)
    listener.create_subscription(Image, "/bench/echo", _noted(lambda m: echo.append(
        ("image", time.perf_counter()))), qos_profile_sensor_data)
    listener.create_subscription(InferenceResult, "/bench/result_echo", _noted(
        lambda m: echo.append(("result", time.perf_counter()))), 10)
    spinner = threading.Thread(target=spin, args=(nodes + [probe, listener], context, None,
                                                  executor_kind), daemon=True)
    spinner.start()
    image = _image_msg()
    out = {"executor": executor_kind}
    try:
        _wait(lambda: feeding.shared() and feeding.shared()[0].runtime is not None, 120)
        feeder = feeding.shared()[0]
        runtime = feeder.runtime
        shapes = {n: m.input_shape for n, m in feeder._models.items()}
        out["input_shapes"] = {n: list(s) for n, s in shapes.items()}
        frame = {n: to_input(conversions.image_from_msg(image), s) for n, s in shapes.items()}
        count = 0

        def ros_frame():
            nonlocal count
            count += 1
            image.header.frame_id = f"b{count}"
            start = time.perf_counter()
            images.publish(image)
            _wait(lambda: len(got.get(image.header.frame_id, {})) == len(PAIR))
            return (max(t for t, _ in got[image.header.frame_id].values()) - start) * 1e3

        def bare_frame():
            # The runtime the nodes run, fed directly (the feeder is idle between frames; its
            # result callback counts the frame-set back down and publishes nothing: no tags).
            start = time.perf_counter()
            with feeder._cond:
                feeder._in_flight += 1
            runtime.submit(frame)
            runtime.flush()
            feeder.wait_idle(60)  # notified by the feeder's result callback
            return (time.perf_counter() - start) * 1e3

        for node in executors:
            node.hops = deque(maxlen=100_000)
        child = subprocess.run(
            [sys.executable, __file__, "--probe-process", str(frames), "--dnns", *PAIR],
            capture_output=True, text=True, timeout=600, env=dict(os.environ))
        if child.returncode != 0:
            raise RuntimeError(f"probe process failed: {child.stderr[-2000:]}")
        out["e2e_other_process_ms"] = _stats(json.loads(child.stdout.strip().splitlines()[-1]))
        out["in_node"] = _node_figures(executors)
        out["submitted_in_the_image_callback"] = (f"{feeder.inline_frame_sets} of "
                                                  f"{feeder.frame_sets} frame-sets")
        # The layer's work alone, in the nodes' process with the runtime idle: back to back
        # (warm caches), and after a pause as long as a frame's inference (as in the node); the
        # results' subscriber in another process, as in the in-node round.
        listener_child = subprocess.Popen(
            [sys.executable, __file__, "--listen-process", "--dnns", *PAIR],
            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        if listener_child.stdout.readline().strip() != "ready":
            raise RuntimeError("bench: the listening process did not start")
        publishers = {d: executors[0]._results[d] for d in PAIR}
        outputs = {d: feeding.Output(d, 0, 0, None, {"prob": np.random.default_rng(1).random(
            (1, 1000), np.float32)}, 1.0, {"gpu": 1.0}, "gpu", 1) for d in PAIR}
        pause_s = out["in_node"]["runtime"]["median"] / 1e3
        spare = {}  # as the node: each DNN's last published message, filled again
        inputs = sorted({tuple(s) for s in shapes.values()})  # as the feeder: one per shape
        for label, gap in (("", 0.0), ("_after_pause", pause_s)):
            prep, publish = [], []
            for _ in range(200):
                time.sleep(gap)
                start = time.perf_counter()
                frame_image = conversions.image_from_msg(image)
                for shape in inputs:
                    to_input(frame_image, shape)
                prep.append((time.perf_counter() - start) * 1e3)
                time.sleep(gap)
                start = time.perf_counter()
                for dnn, publisher in publishers.items():
                    spare[dnn] = conversions.result_to_msg(outputs[dnn], image.header, None,
                                                           spare.get(dnn))
                    publisher.publish(spare[dnn])
                publish.append((time.perf_counter() - start) * 1e3)
            out[f"preprocess_ms_both_dnns{label}"] = _stats(prep)
            out[f"build_publish_ms_both_results{label}"] = _stats(publish)
        listener_child.kill()
        listener_child.wait()
        listen_to_results()
        _wait(lambda: all(probe.count_publishers(f"/hax_conn/{d}/result") for d in PAIR), 30)
        time.sleep(1.0)  # discovery matched: let the subscriptions settle
        for _ in range(10):  # warm-up
            ros_frame()
            bare_frame()
        ros_ms, bare_ms = [], []
        for _ in range(0, frames, 10):  # in-process probe and bare runtime, interleaved
            for _ in range(10):
                ros_ms.append(ros_frame())
            for _ in range(10):
                bare_ms.append(bare_frame())
        out["e2e_same_process_ms"], out["bare_ms"] = _stats(ros_ms), _stats(bare_ms)
        for kind, publisher, msg in (("image", echo_pub, image),
                                     ("result", result_pub, InferenceResult(dnn="x"))):
            samples = []
            for _ in range(200):
                echo.clear()
                start = time.perf_counter()
                publisher.publish(msg)
                _wait(lambda: any(k == kind for k, _ in echo), 10)
                samples.append((echo[0][1] - start) * 1e3)
            out[f"dds_{kind}_ms"] = _stats(samples[20:])

        client = probe.create_client(SetParameters, "/planner/set_parameters")
        client.wait_for_service(timeout_sec=30)
        to_schedule, to_result, cached = [], [], []
        for i in range(changes):
            dnns = OTHER if i % 2 == 0 else PAIR
            seen = len(schedules)
            start = time.perf_counter()
            client.call_async(SetParameters.Request(parameters=[
                Parameter("dnns", value=dnns).to_parameter_msg()]))
            _wait(lambda: len(schedules) > seen)
            at, msg = schedules[-1]
            to_schedule.append((at - start) * 1e3)
            cached.append(msg.cached)
            while True:  # first result under it: publish until one carries the new sequence
                count += 1
                image.header.frame_id = f"c{count}"
                images.publish(image)
                _wait(lambda: len(got.get(image.header.frame_id, {})) >= 1, 60)
                results = got[image.header.frame_id].values()
                if any(m.schedule_sequence == msg.sequence for _, m in results):
                    break
            to_result.append((max(t for t, _ in results) - start) * 1e3)
        out["change_to_schedule_ms_cached"] = _stats([v for v, c in zip(to_schedule, cached)
                                                      if c])
        out["change_to_schedule_ms_planned"] = [round(v, 1) for v, c in zip(to_schedule, cached)
                                                if not c]
        out["change_to_first_result_ms_cached"] = _stats(
            [v for v, c in zip(to_result, cached) if c])
        out["change_to_first_result_ms_planned"] = [round(v, 1) for v, c in
                                                    zip(to_result, cached) if not c]
    finally:
        rclpy.try_shutdown(context=context)
        spinner.join(timeout=30)
    return out


def bench_planner(artifact, runs: int = 10):
    """Ours and (when given) the artifact's script on the shipped pair, interleaved."""
    from hax_conn_core.planner import plan
    from hax_conn_core.profile import load_profile
    from hax_conn_core.replan import PlanRequest, Replanner

    profile = load_profile(ROOT / "profiles" / "xavier_googlenet_alexnet.json")
    start = time.perf_counter()
    ours = plan(profile)
    out = {"ours_first_ms_with_z3_import": round((time.perf_counter() - start) * 1e3, 1),
           "ours_plan": {n: list(a) for n, a in ours.schedule.assignments.items()},
           "ours_status": ours.status}

    def run_artifact():
        text = io.StringIO()
        with contextlib.redirect_stdout(text):
            runpy.run_path(str(artifact), run_name="__main__")
        return text.getvalue()

    if artifact:
        out["artifact_script"] = str(artifact)
        out["artifact_output"] = run_artifact().strip().splitlines()  # warm-up
    else:
        out["artifact"] = ("not run: give --artifact PATH to the HaX-CoNN repository's "
                           "src/z3_solver_multi_dnn.py")
    times, theirs = [], []
    for _ in range(runs):
        start = time.perf_counter()
        plan(profile)
        times.append((time.perf_counter() - start) * 1e3)
        if artifact:
            start = time.perf_counter()
            run_artifact()
            theirs.append((time.perf_counter() - start) * 1e3)
    out["ours_ms"] = _stats(times)
    if theirs:
        out["artifact_ms"] = _stats(theirs)
    replanner = Replanner()
    request = PlanRequest(dnns=("googlenet", "alexnet"), profile="xavier_googlenet_alexnet.json")
    replanner.plan(request)
    out["cache_lookup_ms"] = _stats([replanner.plan(request).time_s * 1e3 for _ in range(runs)])
    out["one_dnn_change"] = {}
    for before, after in ((("alexnet", "googlenet", "resnet18"),
                           ("alexnet", "googlenet", "mobilenet_v1")),
                          (("alexnet", "resnet18"), ("alexnet", "mobilenet_v1"))):
        row = {}
        for reuse in (False, True):
            samples = []
            for _ in range(5):
                warm = Replanner(reuse=reuse)
                warm.plan(PlanRequest(dnns=before, profile=CPU_PROFILE))
                changed = warm.plan(PlanRequest(dnns=after, profile=CPU_PROFILE))
                samples.append(changed.time_s * 1e3)
            row["with_reuse" if reuse else "without_reuse"] = _stats(samples)
            row[f"predicted_ms_{'with' if reuse else 'without'}"] = round(
                changed.schedule.predicted_ms, 3)
        out["one_dnn_change"][f"{'+'.join(before)} -> {'+'.join(after)}"] = row
    return out


EVENTS_CHILD = """
import threading, time, rclpy
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from std_msgs.msg import String
rclpy.init()
a, b, got = Node("a"), Node("b"), []
b.create_subscription(String, "/t", lambda m: got.append(time.perf_counter()), 10)
pub = a.create_publisher(String, "/t", 10)
executor = EventsExecutor()
executor.add_node(a); executor.add_node(b)
def body():
    time.sleep(1.0)
    lat = []
    for _ in range(50):
        got.clear(); start = time.perf_counter(); pub.publish(String(data="x"))
        while not got: time.sleep(0.0002)
        lat.append((got[0] - start) * 1e3)
    print(sorted(lat)[25], flush=True)
    rclpy.try_shutdown()
threading.Thread(target=body, daemon=True).start()
executor.spin()
"""


def events_executor_check(timeout_s: float = 20.0):
    """Can EventsExecutor spin while another Python thread publishes? Child process."""
    try:
        import rclpy.experimental  # noqa: F401
    except ImportError:
        return "absent (rclpy has no rclpy.experimental: Humble)"
    env = dict(os.environ, ROS_DOMAIN_ID=str(random.Random().randint(201, 230)),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    try:
        child = subprocess.run([sys.executable, "-c", EVENTS_CHILD], capture_output=True,
                               text=True, timeout=timeout_s, env=env)
    except subprocess.TimeoutExpired:
        return (f"starved: a publishing thread beside EventsExecutor.spin() did not finish 50 "
                f"messages within {timeout_s:.0f} s (killed)")
    return f"median String delivery {child.stdout.strip()} ms (rc {child.returncode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--executors", default="single,multi",
                        help="rclpy executors to measure, comma-separated (single, multi)")
    parser.add_argument("--artifact", type=Path, default=None, metavar="Z3_SCRIPT.py",
                        help="the HaX-CoNN artifact's src/z3_solver_multi_dnn.py (not shipped: "
                             "clone github.com/ismetdagli/HaX-CoNN); without it, skipped")
    parser.add_argument("--switch-interval", type=float, default=None, metavar="S",
                        help="sys.setswitchinterval (Python's default: 0.005 s)")
    parser.add_argument("--json", metavar="OUT.json")
    parser.add_argument("--probe-process", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--listen-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dnns", nargs="*", default=PAIR, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe_process is not None:
        probe_process(args.probe_process, args.dnns)
        return 0
    if args.listen_process:
        listen_process(args.dnns)
        return 0
    if args.artifact is not None and not args.artifact.is_file():
        print(f"bench_ros: --artifact {args.artifact}: no such file; the artifact's solver is "
              "skipped", file=sys.stderr)
        args.artifact = None
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    import onnxruntime
    import rclpy  # noqa: F401

    report = {"date": date.today().isoformat(), "machine": f"{platform.machine()}, "
              f"{os.cpu_count()} cores, Python {platform.python_version()} (switch interval "
              f"{sys.getswitchinterval()} s), onnxruntime "
              f"{onnxruntime.__version__}", "commit": subprocess.run(
                  ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                  capture_output=True, text=True).stdout.strip(),
              "planner": bench_planner(args.artifact),
              "events_executor": events_executor_check(),
              "runs": [bench(args.frames, args.changes, kind)
                       for kind in args.executors.split(",")]}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
