"""Streams of camera images -> frame-sets on one :class:`~.runtime.session.Runtime`.

``Feeder`` is what the executor nodes share (one per process, :func:`acquire`): it keeps the
newest image of each DNN (an image replaced before it was used counts as dropped), and when the
runtime can accept a frame-set it takes them, preprocesses them (hax_conn_core.preprocess) and
submits them, with each image's tag. An offer that completes a frame-set while a slot is free
and no schedule change waits is preprocessed and submitted in the offering thread (an image
callback), without waking the feeder thread; otherwise the feeder thread does it. One of the two
at a time (``_busy``), so frame-sets stay in order and a swap never meets a half-made one.
A DNN whose image is unusable fails alone (counted as a frame error); a DNN with no image after
``gather_s`` is left out of that frame-set. When no newer image waits, the submitter calls
``runtime.flush()``, so lockstep never waits for a frame-set that is not coming.
``set_schedule`` takes effect between frame-sets (``Runtime.swap``). Results go to the
listeners as :class:`Output` in the runtime's thread that completed the frame-set. No ROS here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Deque, Dict, List, Optional, Tuple

from hax_conn_core.errors import HaxConnError

#: Recent latencies and group timings kept for statistics and the profiler node.
HISTORY = 200
TIMING_HISTORY = 2000


@dataclass
class Output:
    """One DNN's result of one frame-set, as the executor nodes publish it."""

    dnn: str
    frame_set: int
    schedule_id: int
    tag: Any
    outputs: Dict[str, Any]
    latency_ms: float  # image offered -> outputs on the host
    accelerator_ms: Dict[str, float]  # measured time per accelerator
    last_accelerator: str
    label: Any = None  # what set_schedule was given with the schedule it ran under
    weights: str = ""  # which weights computed the outputs (RuntimeModel.weights_id)
    #: perf_counter() stamps of its way through the feeder (docs/bench-ros.md): ``offered``,
    #: ``preprocess`` (its frame-set's preprocessing began), ``submit`` (runtime.submit called),
    #: ``submitted`` (it returned), ``result`` (the runtime handed the frame-set back).
    hops: Dict[str, float] = field(default_factory=dict)


@dataclass
class DnnStats:
    received: int = 0
    dropped: int = 0
    frame_errors: int = 0
    run_errors: int = 0
    results: int = 0
    last_error: str = ""
    latencies_ms: Deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))


class Unpublished:
    """Results computed but not published, per DNN: the first error and how many, so that a
    caller logs the first once and diagnostics count them all (e.g. an outputs setting that
    does not fit the model's output)."""

    def __init__(self) -> None:
        self._errors: Dict[str, Tuple[str, int]] = {}

    def add(self, dnn: str, error: str) -> bool:
        """Count one more of ``dnn``'s; True for its first (the one to log)."""
        previous = self._errors.get(dnn, ("", 0))[1]
        self._errors[dnn] = (error, previous + 1)
        return previous == 0

    def items(self) -> List[Tuple[str, Tuple[str, int]]]:
        return list(self._errors.items())


def with_errors(stats: Dict[str, DnnStats], unpublished: Unpublished,
                not_loaded: Dict[str, str]) -> Dict[str, DnnStats]:
    """``stats`` (DNN -> its figures) with the results not published counted as run errors
    and the models that could not be loaded as one error each, as diagnostics report them."""
    out = dict(stats)
    for dnn, (error, count) in unpublished.items():
        base = out.get(dnn) or DnnStats()
        out[dnn] = replace(base, run_errors=base.run_errors + count, last_error=error)
    for name, error in list(not_loaded.items()):
        out[name] = replace(out.get(name) or DnnStats(), run_errors=1,
                            last_error=f"model {name} not loaded: {error}")
    return out


class Feeder:
    """See the module docstring. ``backend``: a backend name (get_backend), opened on start."""

    def __init__(self, backend: str = "onnxruntime", device: Optional[str] = None,
                 gather_s: float = 0.1, seed: int = 0, log=None,
                 weights: Optional[Dict[str, str]] = None, freeze_gc: bool = False):
        self.backend_name, self.device, self.gather_s, self.seed = backend, device, gather_s, seed
        #: After each schedule took effect (models loaded, engines built), freeze what the
        #: process holds out of the garbage collector's generations (runtime/gc_pause.py):
        #: for a process that owns its collector, as the ROS executables do.
        self.freeze_gc = freeze_gc
        #: DNN -> its weights file (.caffemodel / .onnx); DNNs not named run seeded weights.
        self.weights: Dict[str, str] = dict(weights or {})
        # Anything with info/warning/error (a logging.Logger, an rclpy node's logger).
        self.log = log or logging.getLogger(__name__)
        lock = threading.RLock()
        self._cond = threading.Condition(lock)
        # Notified when no frame-set is left in flight (wait_idle); apart from _cond, so that
        # the feeder thread is not woken for it.
        self._idle = threading.Condition(lock)
        self._pending: Dict[str, Tuple[Any, Any, float]] = {}  # dnn -> (image, tag, offered_s)
        self._wanted: Optional[Tuple[Any, Any, Any]] = None  # (schedule, profile, label)
        self._labels: Dict[int, Any] = {}  # runtime schedule_id -> label
        self._listeners: List[Callable[[Output], None]] = []
        self._stats: Dict[str, DnnStats] = {}
        self.timings: Deque[Any] = deque(maxlen=TIMING_HISTORY)
        self.schedule = self.profile = None
        self.runtime = self._backend = None
        self._models: Dict[str, Any] = {}
        self._shapes: Dict[str, Tuple[int, ...]] = {}  # the models' input shapes, read once
        self._in_flight = 0
        # A submission (inline or the feeder thread's) or a swap is under way; and whether the
        # runtime was flushed since the last frame-set submitted.
        self._busy = False
        self._flushed = True
        self.frame_sets = 0
        #: Frame-sets submitted in an offering thread (the rest by the feeder thread).
        self.inline_frame_sets = 0
        self.users = 0
        #: Accelerators whose executor node is in this process (they split the topics).
        self.hosts: set = set()
        self._last_wanted: Optional[Tuple[Any, Any]] = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="hax-conn-feeder", daemon=True)

    # --- what the nodes call -----------------------------------------------------------------
    def start(self) -> "Feeder":
        from hax_conn_core.runtime.backends import get_backend
        from hax_conn_core.runtime.cache import EngineCache
        from hax_conn_core.runtime.device import load_runtime_device

        if self._backend is None:
            device = load_runtime_device(self.device) if self.device else None
            self._backend = get_backend(self.backend_name, device=device,
                                        cache=EngineCache()).open()
            self._thread.start()
        return self

    def add_listener(self, listener: Callable[[Output], None]) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[Output], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def set_schedule(self, schedule, profile, label: Any = None) -> None:
        """Run ``schedule`` (over ``profile``, cut to its DNNs) from the next frame-set on;
        its results carry ``label`` (the planner's schedule number)."""
        with self._cond:
            if self._last_wanted == (schedule, label):
                return  # the other executor node passed on the same schedule
            self._last_wanted = (schedule, label)
            self._wanted = (schedule, profile, label)
            self._cond.notify_all()

    def offer(self, dnn: str, image, tag: Any = None) -> None:
        """The newest image of ``dnn`` (a preprocess.Image); replaces one not yet used."""
        self.offer_many((dnn,), image, tag)

    def offer_many(self, dnns, image, tag: Any = None) -> None:
        """One camera image as the newest of each of ``dnns`` (see :meth:`offer`). When it
        completes a frame-set that the runtime can take now, it is preprocessed and submitted
        here, in the caller's thread (see the module docstring)."""
        offered = time.perf_counter()
        with self._cond:
            for dnn in dnns:
                stats = self._stats_of(dnn)
                stats.received += 1
                if dnn in self._pending:
                    stats.dropped += 1
                self._pending[dnn] = (image, tag, offered)
            taken = self._take_complete()
            if taken is None:
                self._cond.notify_all()
                return
        try:
            if self._prepare_and_submit(taken):
                self.inline_frame_sets += 1
            self._flush_if_idle()
        except Exception:  # noqa: BLE001 - our bug: say so loudly, the caller keeps running
            logging.getLogger(__name__).exception("hax_conn feeder: submitting failed (a bug)")
            self.log.error("a frame-set could not be submitted (a bug: report it)")
        finally:
            with self._cond:
                self._busy = False
                self._wake_if_needed()

    def owner(self, accelerator: str) -> str:
        """The hosted accelerator that handles a DNN whose first (or last) group runs on
        ``accelerator``: itself when its node is here, else the first one here."""
        return accelerator if accelerator in self.hosts or not self.hosts else min(self.hosts)

    def stats(self) -> Dict[str, DnnStats]:
        with self._cond:
            return dict(self._stats)

    def depth(self) -> Tuple[int, int]:
        """(frame-sets in flight, images waiting)."""
        with self._cond:
            return self._in_flight, len(self._pending)

    def wait_idle(self, timeout_s: Optional[float] = None) -> bool:
        """Wait until no frame-set is in flight; False on timeout (benches, tests)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout_s)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._busy, timeout=30)  # an inline submission
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self.runtime is not None:
            self.runtime.close(drain=False)
            self.runtime = None
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    # --- the loop ----------------------------------------------------------------------------
    def _loop(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - our bug: say so loudly, the nodes keep running
            logging.getLogger(__name__).exception("hax_conn feeder stopped (a bug: report it)")
            self.log.error("the feeder stopped on an internal error (a bug: report it)")

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._stop.is_set() or not self._busy and (
                    self._wanted is not None or self._ready()), timeout=0.05)
                if self._stop.is_set():
                    return
                if self._busy:  # timed out behind an inline submission
                    continue
                wanted, self._wanted = self._wanted, None
                ready = wanted is None and self._ready()
                if wanted is None and not ready:
                    continue
                self._busy = True
            try:
                if wanted is not None:
                    self._apply(*wanted)
                elif ready:
                    self._submit()
                self._flush_if_idle()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _ready(self) -> bool:
        """(Under the lock.) Images wait and the runtime has a free slot."""
        return self.runtime is not None and bool(self._pending) \
            and self._in_flight < self.runtime.plan.slots

    def _take_complete(self):
        """(Under the lock.) The images of a whole frame-set, marked busy, when the runtime can
        take it now and no submission or schedule change is under way; else None."""
        if self._busy or self._stop.is_set() or self._wanted is not None or not self._ready() \
                or not all(n in self._pending for n in self._models):
            return None
        self._busy = True
        return self._take()

    def _take(self):
        """(Under the lock.) The running DNNs' images; images of DNNs not running are not kept."""
        taken = {n: self._pending.pop(n) for n in self._models if n in self._pending}
        self._pending.clear()
        return taken

    def _flush_if_idle(self) -> None:
        """(Busy, not under the lock.) Flush the runtime when a frame-set was submitted since
        the last flush and no image waits."""
        with self._cond:
            idle = not self._flushed and not self._pending
        if idle and self.runtime is not None:
            self.runtime.flush()
            with self._cond:
                self._flushed = True

    def _apply(self, schedule, profile, label) -> None:
        from hax_conn_core.runtime.models import load_model
        from hax_conn_core.runtime.session import Runtime

        try:
            models = {name: load_model(name, seed=self.seed, weights=self.weights.get(name))
                      for name in schedule.assignments}
            if self.runtime is None:
                # Results straight to _on_result, not also into a queue nobody reads.
                self.runtime = Runtime(self._backend, profile, schedule, models,
                                       on_result=self._on_result,
                                       queue_results=False).start()
                start = 0
            else:
                start = self.runtime.swap(schedule, models, profile, timeout_s=60)
        except HaxConnError as error:
            self.log.error(f"schedule not applied, the previous one stays: {error}")
            return
        with self._cond:
            self._labels[self.runtime.plan.schedule_id] = label
            self.schedule, self.profile, self._models = schedule, profile, models
            self._shapes = {name: tuple(model.input_shape) for name, model in models.items()}
            for name in [n for n in self._pending if n not in models]:
                del self._pending[name]
            self._flushed = True  # a swap closes the previous epoch
        if self.freeze_gc:
            from hax_conn_core.runtime.gc_pause import freeze_startup_objects

            freeze_startup_objects()
        self.log.info(f"running {', '.join(schedule.assignments)} from frame-set {start}")

    def _submit(self) -> None:
        names = list(self._models)
        with self._cond:  # wait a little for the DNNs whose image has not come yet
            first = min(offered for _, _, offered in self._pending.values())
            self._cond.wait_for(lambda: self._stop.is_set() or self._wanted is not None
                                or all(n in self._pending for n in names),
                                timeout=max(0.0, first + self.gather_s - time.perf_counter()))
            taken = self._take()
        self._prepare_and_submit(taken)

    def _prepare_and_submit(self, taken) -> bool:
        """(Busy.) Preprocess ``taken`` ({dnn: (image, tag, offered)}) and submit it; False
        when every image was refused (nothing submitted)."""
        from hax_conn_core.preprocess import to_input

        frames, tags = {}, {}
        hops = {"preprocess": time.perf_counter()}  # one per frame-set, shared by its DNNs
        made = {}  # (image, input shape) -> array: DNNs fed one camera image share it
        for name, (image, tag, offered) in taken.items():
            shape = self._shapes[name]
            try:
                key = (id(image), shape)
                if key not in made:  # engines only read their inputs: one array serves all
                    made[key] = to_input(image, shape, name=name)
                frames[name] = made[key]
                tags[name] = (tag, offered, hops)
            except HaxConnError as error:
                with self._cond:
                    stats = self._stats_of(name)
                    stats.frame_errors += 1
                    stats.last_error = str(error)
                self.log.warning(f"frame refused: {error}")
        if not frames:
            return False
        with self._cond:
            self._in_flight += 1
            self._flushed = False
        hops["submit"] = time.perf_counter()
        self.runtime.submit(frames, tags)
        hops["submitted"] = time.perf_counter()
        self.frame_sets += 1
        return True

    def _on_result(self, result) -> None:
        # The runtime freed the frame-set's slot before calling this, so the count goes down
        # first: an image that comes while the results go out (a camera reacting to them) can
        # be submitted in its callback. The feeder thread is woken only after the results are
        # out: woken earlier, it competes (for the GIL, for the cores) with publishing them.
        returned = time.perf_counter()
        with self._cond:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.notify_all()
        try:
            self._hand_out(result, returned)
        finally:
            with self._cond:
                self._wake_if_needed()

    def _wake_if_needed(self) -> None:
        """(Under the lock.) Wake the feeder thread (and a closing one) only when it has
        something to do: woken for nothing, it takes the GIL from the next image's callback."""
        if self._pending or self._wanted is not None or self._stop.is_set():
            self._cond.notify_all()

    def _stats_of(self, name: str) -> DnnStats:
        """``name``'s figures, made on first use: not a DnnStats and its deque built on every
        call to be dropped, as ``setdefault(name, DnnStats())`` alone would."""
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats.setdefault(name, DnnStats())
        return stats

    def _hand_out(self, result, returned: float) -> None:
        self.timings.extend(result.timings)
        # Time per accelerator and the last one, per DNN, in one pass over the timings
        # (sorted by DNN and group, so the last seen is the last group's).
        spent: Dict[str, Dict[str, float]] = {}
        last: Dict[str, str] = {}
        for timing in result.timings:
            per_acc = spent.get(timing.dnn)
            if per_acc is None:
                per_acc = spent[timing.dnn] = {}
            per_acc[timing.accelerator] = per_acc.get(timing.accelerator, 0.0) + timing.ms
            last[timing.dnn] = timing.accelerator
        for name, item in result.results.items():
            if item.tag is None:  # left out of this frame-set (no image): not an error
                continue
            tag, offered, hops = item.tag
            stats = self._stats_of(name)
            if not item.ok:
                stats.run_errors += 1
                stats.last_error = item.error
                self.log.warning(f"inference failed: {item.error}")
                continue
            latency = (item.finished_s - offered) * 1e3
            stats.results += 1
            stats.latencies_ms.append(latency)
            output = Output(name, result.index, result.schedule_id, tag, item.outputs, latency,
                            spent.get(name, {}), last.get(name, ""),
                            self._labels.get(result.schedule_id), weights=item.weights,
                            hops={"offered": offered, **hops, "result": returned})
            for listener in list(self._listeners):
                listener(output)


_SHARED: Dict[Tuple[str, Optional[str]], Feeder] = {}
_SHARED_LOCK = threading.Lock()


def acquire(backend: str = "onnxruntime", device: Optional[str] = None, **options) -> Feeder:
    """The process's Feeder for ``backend`` and ``device`` (started), shared by the executor
    nodes of one process so that they share one runtime; :func:`release` when done."""
    with _SHARED_LOCK:
        key = (backend, device or None)
        feeder = _SHARED.get(key)
        if feeder is None:
            feeder = _SHARED[key] = Feeder(backend, device, **options).start()
        feeder.users += 1
        return feeder


def shared() -> List[Feeder]:
    """The Feeders this process has (for the profiler node; creates none)."""
    with _SHARED_LOCK:
        return list(_SHARED.values())


def release(feeder: Feeder) -> None:
    """Give back a Feeder from :func:`acquire`; the last user closes it."""
    with _SHARED_LOCK:
        feeder.users -= 1
        if feeder.users > 0:
            return
        for key, value in list(_SHARED.items()):
            if value is feeder:
                del _SHARED[key]
    feeder.close()
