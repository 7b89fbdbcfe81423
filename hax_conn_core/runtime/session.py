"""``Runtime``: a schedule running over a stream of frame-sets, one executor per accelerator.

    with get_backend("onnxruntime") as backend:
        runtime = Runtime(backend, profile, schedule, models)
        with runtime:
            index = runtime.submit({"googlenet": frame_a, "alexnet": frame_b}, tags=...)
            result = runtime.get_result(timeout_s=30)   # FrameSetResult, in completion order

Each accelerator has an executor thread that walks the plan's lockstep order for it (the order
the simulator predicts, docs/runtime.md): for each ``(frame-set, dnn, segment)`` (a segment: the
groups that order runs back to back, one engine, :mod:`.plan`) it waits for the frame-set to be
admitted, for the previous segment's launch (its completion event is handed to the engine, so
on CUDA the wait stays on the device) and launches the segment's engine in the frame-set's
buffer slot. A collector thread waits for every launch, records the measured time,
copies each DNN's final outputs to the host and completes the frame-set, which frees its slot
for the next one. Latency schedules run one frame-set at a time; throughput schedules
``frames_in_flight``.

Faults stay in their frame: a frame of the wrong shape or dtype fails only its DNN's result in
that frame-set (the others run); an engine failing fails that DNN in that frame-set, and the
next frame-set runs normally. ``swap()`` builds the engines of a new schedule (or DNN set) while
the current one keeps running, then switches between frame-sets: nothing is dropped or mixed.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Any, Callable, Deque, Dict, List, Mapping, Optional, Tuple

from hax_conn_core.errors import ConfigError, HaxConnError
from hax_conn_core.runtime.backends.base import Backend
from hax_conn_core.runtime.frameset import Epoch, FrameSetState, POLL_S
from hax_conn_core.runtime.plan import build_run_plan, EPOCH_FRAME_SETS, RunPlan
from hax_conn_core.runtime.results import FrameSetResult, GroupTiming

#: Executed steps kept per accelerator for inspection (``executed_order``).
ORDER_HISTORY = 100_000


class Runtime:
    """Runs schedules on a backend (see the module docstring).

    ``models`` maps each DNN of the schedule to its :class:`~.models.RuntimeModel`.
    ``precision`` defaults to the backend's first precision on every accelerator (fp32 on the
    CPU, fp16 on CUDA partitions). ``on_result`` is called in the collector thread with each
    :class:`~.results.FrameSetResult`; results are also queued for :meth:`get_result`, unless
    ``queue_results=False`` (only with ``on_result``): then they go to the callback alone, and
    ``get_result``/``run`` refuse (a caller streaming through the callback polls no queue).
    ``pool``: a dict of engines shared with other runtimes run one after another (benches that
    measure many schedules of one DNN set); its owner releases them, not ``close()``.
    ``fuse_groups=False``: one engine per group, so that every group is timed on its own (the
    profiler); by default consecutive groups run as one engine where the order allows.
    """

    def __init__(self, backend: Backend, profile, schedule, models: Mapping[str, Any],
                 precision: Optional[str] = None,
                 on_result: Optional[Callable[[FrameSetResult], None]] = None,
                 epoch_frame_sets: int = EPOCH_FRAME_SETS,
                 pool: Optional[Dict[Tuple, Any]] = None, fuse_groups: bool = True,
                 queue_results: bool = True):
        if not queue_results and on_result is None:
            raise ConfigError("queue_results=False needs an on_result callback: without either "
                              "the results would go nowhere")
        self.backend = backend
        self.queue_results = queue_results
        self.precision = precision or _default_precision(backend)
        self.on_result = on_result
        self._epoch_frame_sets = epoch_frame_sets
        self._owns_pool = pool is None
        self._pool: Dict[Tuple, Any] = {} if pool is None else pool
        self._fuse_groups = fuse_groups
        self._plan = build_run_plan(backend, profile, schedule, models, 0, self.precision,
                                    self._pool, epoch_frame_sets, fuse_groups)
        self._profile = profile
        self._models = dict(models)
        self._epochs: List[Epoch] = [Epoch(self._plan, 0, epoch_frame_sets)]
        self._epochs_cond = threading.Condition()
        self._next_index = 0
        self._admit_lock = threading.Lock()  # one submitter at a time: frame-sets stay in order
        self._slots_cond = threading.Condition()
        self._free_slots: List[int] = list(range(self._plan.slots))
        self._in_flight = 0
        self._stop = threading.Event()
        self._collect: "queue.Queue" = queue.Queue()
        self._results: "queue.Queue[FrameSetResult]" = queue.Queue()
        self._executed: Dict[str, Deque[Tuple[int, str, int]]] = {
            a: deque(maxlen=ORDER_HISTORY) for a in backend.accelerators}
        self._threads: List[threading.Thread] = []
        self._complete_lock = threading.Lock()
        self.completed = 0

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> "Runtime":
        if self._threads:
            return self
        for acc in self.backend.accelerators:
            thread = threading.Thread(target=self._executor_loop, args=(acc,),
                                      name=f"hax-conn-{acc}", daemon=True)
            self._threads.append(thread)
        self._threads.append(threading.Thread(target=self._collector_loop,
                                              name="hax-conn-collector", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def close(self, drain: bool = True, timeout_s: Optional[float] = None) -> None:
        """Stop the executors: with ``drain``, after every admitted frame-set completed."""
        if drain:
            self.drain(timeout_s)
        self._stop.set()
        with self._epochs_cond:
            for epoch in self._epochs:
                epoch.close()
            self._epochs_cond.notify_all()
        self._collect.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads = []
        if self._owns_pool:
            release_engines(self._pool)

    def __enter__(self) -> "Runtime":
        return self.start()

    def __exit__(self, exc_type, *rest) -> None:
        # An exception (Ctrl-C included) leaves without waiting for frame-sets in flight.
        self.close(drain=exc_type is None)

    def drain(self, timeout_s: Optional[float] = None) -> None:
        """Wait until no frame-set is in flight."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._slots_cond:
            while self._in_flight:
                if deadline is not None and time.monotonic() > deadline:
                    raise ConfigError(f"{self._in_flight} frame-set(s) still in flight after "
                                      f"{timeout_s} s")
                self._slots_cond.wait(POLL_S)

    # --- what runs ---------------------------------------------------------------------------
    @property
    def plan(self) -> RunPlan:
        return self._plan

    @property
    def schedule(self):
        return self._plan.schedule

    def executed_order(self, accelerator: str) -> List[Tuple[int, str, int]]:
        """(frame-set, dnn, group) in the order ``accelerator``'s executor launched them."""
        return list(self._executed[accelerator])

    # --- frames in, results out --------------------------------------------------------------
    def submit(self, frames: Mapping[str, Any], tags: Optional[Mapping[str, Any]] = None,
               timeout_s: Optional[float] = None) -> int:
        """Admit one frame-set (one frame per DNN of the current schedule) once a buffer slot
        is free; returns its index. A frame that does not fit its DNN (or a DNN the schedule
        does not run) fails only that DNN's result; a DNN with no frame fails likewise."""
        if not self._threads:
            raise ConfigError("the runtime is not started: use 'with runtime:' or start()")
        with self._admit_lock:
            slot = self._take_slot(timeout_s)
            with self._epochs_cond:
                epoch = self._epochs[-1]
                if epoch.closed:
                    epoch = Epoch(self._plan, self._next_index, self._epoch_frame_sets)
                    self._epochs.append(epoch)
                    self._epochs_cond.notify_all()
            plan = epoch.plan
            checked, errors = {}, {}
            for name in plan.dnns:
                if name not in frames:
                    errors[name] = f"{name}: no frame given for this frame-set"
                    continue
                try:
                    checked[name] = plan.models[name].check_frame(frames[name])
                except HaxConnError as error:
                    errors[name] = str(error)
            for name in frames:
                if name not in plan.dnns:
                    errors[name] = (f"{name}: not in the current schedule; it runs "
                                    f"{', '.join(plan.dnns)}")
            index = self._next_index
            self._next_index += 1
            state = FrameSetState(index, index - epoch.base, slot, epoch, checked,
                                  dict(tags or {}), errors)
            epoch.admit(state)
            if state.resolved():  # every frame refused: nothing will run
                self._maybe_complete(state)
            return index

    def flush(self) -> None:
        """Say that no frame-set follows for now (the end of a stream, or a camera that has
        not sent the next image yet): the executors stop waiting for one and finish those
        admitted. The next submit() starts a new epoch of the same schedule.

        Lockstep follows the simulated order, in which frame-set ``k`` may start before the
        last groups of ``k - 1`` when frame-sets are in flight; without a flush, those groups
        wait for frame-set ``k`` to arrive."""
        with self._admit_lock, self._epochs_cond:
            epoch = self._epochs[-1]
            if epoch.frame_sets:
                epoch.close()

    def get_result(self, timeout_s: Optional[float] = None) -> FrameSetResult:
        """The next completed frame-set (completion order); ConfigError on timeout."""
        self._check_queued("get_result")
        try:
            return self._results.get(timeout=timeout_s)
        except queue.Empty:
            raise ConfigError(f"no frame-set completed within {timeout_s} s") from None

    def run(self, frame_sets, tags=None, progress: Optional[Callable[[int], None]] = None
            ) -> List[FrameSetResult]:
        """Submit every frame-set of the iterable ``frame_sets`` and return their results in
        index order (a convenience for benches and the CLI)."""
        self._check_queued("run")
        results: List[FrameSetResult] = []
        submitted = 0
        for frames in frame_sets:
            self.submit(frames, tags)
            submitted += 1
            while True:
                try:
                    results.append(self._results.get_nowait())
                except queue.Empty:
                    break
                if progress:
                    progress(len(results))
        self.flush()
        while len(results) < submitted:
            results.append(self.get_result(timeout_s=600))
            if progress:
                progress(len(results))
        return sorted(results, key=lambda r: r.index)

    # --- swapping ----------------------------------------------------------------------------
    def swap(self, schedule, models: Optional[Mapping[str, Any]] = None,
             profile=None, timeout_s: Optional[float] = None) -> int:
        """Run ``schedule`` (over ``models``, default the current ones, and ``profile``) from
        the next frame-set on; returns the frame-set index it starts at. Engines are built while
        the current schedule keeps running; then the frame-sets in flight complete under the
        old schedule and the next one is admitted under the new (nothing dropped or mixed)."""
        models = dict(self._models if models is None else models)
        profile = self._profile if profile is None else profile
        plan = build_run_plan(self.backend, profile, schedule, models,
                              self._plan.schedule_id + 1, self.precision, self._pool,
                              self._epoch_frame_sets, self._fuse_groups)
        with self._admit_lock:
            with self._epochs_cond:
                self._epochs[-1].close()  # no more frame-sets under the old schedule
            self.drain(timeout_s)  # slots belong to the old engines until their frames end
            with self._epochs_cond:
                self._epochs.append(Epoch(plan, self._next_index, self._epoch_frame_sets))
                self._epochs_cond.notify_all()
            with self._slots_cond:
                self._free_slots = list(range(plan.slots))
            self._plan, self._models, self._profile = plan, models, profile
            return self._next_index

    # --- internals ---------------------------------------------------------------------------
    def _check_queued(self, what: str) -> None:
        if not self.queue_results:
            raise ConfigError(f"{what}(): this runtime was made with queue_results=False; its "
                              "results go to on_result only")

    def _take_slot(self, timeout_s: Optional[float]) -> int:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._slots_cond:
            while not self._free_slots:
                if self._stop.is_set():
                    raise ConfigError("the runtime is closed")
                if deadline is not None and time.monotonic() > deadline:
                    raise ConfigError(f"no buffer slot became free within {timeout_s} s")
                self._slots_cond.wait(POLL_S)
            self._in_flight += 1
            return self._free_slots.pop(0)

    def _epoch(self, position: int) -> Optional[Epoch]:
        with self._epochs_cond:
            while position >= len(self._epochs):
                if self._stop.is_set():
                    return None
                self._epochs_cond.wait(POLL_S)
            return self._epochs[position]

    def _executor_loop(self, acc: str) -> None:
        position = 0
        while not self._stop.is_set():
            epoch = self._epoch(position)
            if epoch is None:
                return
            in_flight = epoch.plan.slots
            for local, dnn, segment in epoch.plan.steps[acc]:
                state = epoch.wait_frame_set(local, self._stop)
                if state is None:
                    if self._stop.is_set():
                        return
                    # Closed before frame-set `local`: nothing of it runs. Frame-set k starts
                    # only after k - D ended, so no entry of an admitted one comes later.
                    if local >= len(epoch.frame_sets) + in_flight:
                        break
                    continue
                self._run_step(state, dnn, segment, acc)
            position += 1

    def _run_step(self, state: FrameSetState, dnn: str, segment: int, acc: str) -> None:
        plan = state.epoch.plan
        if state.failed(dnn):
            return
        engine = plan.engines[(dnn, segment)]
        try:
            if segment == 0:
                inputs = {engine.input_names[0]: self.backend.from_host(state.frames[dnn], acc)}
                wait = ()
            else:
                previous = state.wait_launch(dnn, segment - 1, self._stop)
                if previous is None:
                    return
                inputs, wait = previous.outputs, (previous.done,)
            launch = engine.run(inputs, slot=state.slot, wait_for=wait)
        except Exception as error:  # noqa: BLE001 - one engine's failure fails one frame
            state.fail(dnn, _failure(plan, dnn, segment, acc, error))
            self._maybe_complete(state)
            return
        first, last = plan.segments[dnn][segment]
        self._executed[acc].extend((state.index, dnn, g) for g in range(first, last + 1))
        state.put(dnn, segment, launch)
        if launch.done.query():
            # Already finished (the CPU backend runs synchronously): collect it here rather
            # than wake the collector, whose thread would compete with the engines for cores.
            self._collect_launch(state, dnn, segment, acc, launch)
            self._maybe_complete(state)
        else:
            self._collect.put(("launch", state, dnn, segment, acc, launch))

    def _collector_loop(self) -> None:
        while True:
            item = self._collect.get()
            if item is None:
                return
            state = item[1]
            if item[0] == "launch":
                _, _, dnn, group, acc, launch = item
                self._collect_launch(state, dnn, group, acc, launch)
            self._maybe_complete(state)

    def _maybe_complete(self, state: FrameSetState) -> None:
        with self._complete_lock:  # executors and the collector may both get here
            if state.completed or not state.resolved():
                return
            state.completed = True
        self._complete(state)

    def _collect_launch(self, state: FrameSetState, dnn: str, segment: int, acc: str,
                        launch) -> None:
        plan = state.epoch.plan
        timing = None
        try:
            first, last = plan.segments[dnn][segment]
            timing = GroupTiming(state.index, dnn, first, acc, launch.elapsed_ms(),
                                 last_group=last)
            state.release_inputs_of(dnn, segment)
            if segment == plan.last_segment(dnn) and not state.failed(dnn):
                outputs = {name: self.backend.to_host(launch.outputs[name])
                           for name in plan.models[dnn].output_names}
                state.finish_dnn(dnn, outputs)
        except Exception as error:  # noqa: BLE001 - fails this frame of this DNN only
            state.fail(dnn, _failure(plan, dnn, segment, acc, error))
        finally:
            state.collected(timing)

    def _complete(self, state: FrameSetState) -> None:
        finished = max((r.finished_s for r in state.results.values() if r.ok),
                       default=time.perf_counter())
        result = FrameSetResult(index=state.index, schedule_id=state.epoch.plan.schedule_id,
                                results=state.results, released_s=state.released_s,
                                finished_s=finished,
                                timings=sorted(state.timings, key=lambda t: (t.dnn, t.group)))
        state.frames = {}
        with self._slots_cond:
            if state.epoch.plan is self._plan:
                self._free_slots.append(state.slot)
            self._in_flight -= 1
            self._slots_cond.notify_all()
        self.completed += 1
        if self.queue_results:
            self._results.put(result)
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception as error:  # noqa: BLE001 - a caller's callback never stops it
                import logging
                import os

                logging.getLogger(__name__).error(
                    "frame-set %d: the on_result callback failed: %s: %s", result.index,
                    type(error).__name__, error, exc_info=bool(os.environ.get("HAX_CONN_DEBUG")))


def release_engines(pool: Dict[Tuple, Any]) -> None:
    """Release every engine of ``pool`` and empty it."""
    for engine in pool.values():
        engine.release()
    pool.clear()


def _failure(plan: RunPlan, dnn: str, segment: int, acc: str, error: BaseException) -> str:
    first, last = plan.segments[dnn][segment]
    groups = f"group {first}" if first == last else f"groups {first}-{last}"
    layers = "layers {}-{}".format(*plan.segment_layers(dnn, segment))
    return f"{dnn}: {groups} ({layers}) on {acc} failed: {error}"


def _default_precision(backend: Backend) -> str:
    common = None
    for acc in backend.accelerators:
        allowed = backend.supported_precisions(acc)
        common = list(allowed) if common is None else [p for p in common if p in allowed]
    if not common:
        raise ConfigError(f"backend {backend.name!r} has no precision all its accelerators "
                          "run; name one with precision=")
    return common[0]
