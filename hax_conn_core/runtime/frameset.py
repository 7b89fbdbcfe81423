"""Frame-sets in flight and the epochs they belong to (shared state of the executors).

A :class:`FrameSetState` is one frame-set being run: its frames, its buffer slot, the launch of
every segment (engine) launched so far, and which DNNs are finished or failed. An
:class:`Epoch` is a stretch of frame-sets run under one
:class:`~hax_conn_core.runtime.plan.RunPlan`; the executors walk its lockstep order, waiting
for frame-sets to be admitted. Every wait polls a stop flag at
``POLL_S`` so that closing never hangs on a thread that waits for work.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from hax_conn_core.runtime.backends.base import Launch
from hax_conn_core.runtime.results import DnnResult, GroupTiming

#: How often a waiting thread looks at the stop flag (s).
POLL_S = 0.05


class FrameSetState:
    """One frame-set in flight (see the module docstring)."""

    def __init__(self, index: int, local: int, slot: int, epoch: "Epoch",
                 frames: Dict[str, Any], tags: Dict[str, Any], errors: Dict[str, str]):
        self.index = index
        self.local = local
        self.slot = slot
        self.epoch = epoch
        self.frames = frames
        self.released_s = time.perf_counter()
        self.results: Dict[str, DnnResult] = {
            name: DnnResult(dnn=name, frame_set=index, tag=tags.get(name),
                            weights=_weights_id(epoch.plan, name))
            for name in list(epoch.plan.dnns) + [n for n in errors if n not in epoch.plan.dnns]}
        self.timings: List[GroupTiming] = []
        self._launches: Dict[Tuple[str, int], Launch] = {}
        self._outstanding = 0  # launches the collector has not waited for yet
        self._cond = threading.Condition()
        self.completed = False
        for name, error in errors.items():
            self.results[name].error = error

    # --- executors ---------------------------------------------------------------------------
    def failed(self, dnn: str) -> bool:
        return self.results[dnn].error is not None

    def put(self, dnn: str, group: int, launch: Launch) -> None:
        with self._cond:
            self._launches[(dnn, group)] = launch
            self._outstanding += 1
            self._cond.notify_all()

    def wait_launch(self, dnn: str, group: int, stop: threading.Event) -> Optional[Launch]:
        """The launch of ``group`` of ``dnn`` once it is made; None if the DNN failed first or
        the runtime is stopping."""
        with self._cond:
            while True:
                launch = self._launches.get((dnn, group))
                if launch is not None:
                    return launch
                if self.results[dnn].error is not None or stop.is_set():
                    return None
                self._cond.wait(POLL_S)

    def fail(self, dnn: str, error: str) -> None:
        with self._cond:
            if self.results[dnn].error is None and self.results[dnn].outputs is None:
                self.results[dnn].error = error
            self._cond.notify_all()

    # --- collector ---------------------------------------------------------------------------
    def release_inputs_of(self, dnn: str, segment: int) -> None:
        """Drop this frame-set's reference to what ``segment`` read (the previous segment's
        outputs) once ``segment`` is done, so that memory is reused while it is warm."""
        with self._cond:
            previous = self._launches.get((dnn, segment - 1))
            if previous is not None:
                previous.outputs = {}

    def collected(self, timing: Optional[GroupTiming]) -> None:
        with self._cond:
            self._outstanding -= 1
            if timing is not None:
                self.timings.append(timing)

    def finish_dnn(self, dnn: str, outputs: Dict[str, Any]) -> None:
        with self._cond:
            result = self.results[dnn]
            if result.error is None:
                result.outputs = outputs
                result.finished_s = time.perf_counter()

    def resolved(self) -> bool:
        """Every DNN finished or failed and no launch of it still runs (its slot is free)."""
        with self._cond:
            return self._outstanding == 0 and all(
                r.error is not None or r.outputs is not None for r in self.results.values())


class Epoch:
    """Frame-sets ``base .. base + capacity - 1`` run under one plan, admitted in order."""

    def __init__(self, plan, base: int, capacity: int):
        self.plan = plan
        self.base = base
        self.capacity = capacity
        self.frame_sets: List[FrameSetState] = []
        self.closed = False
        self._cond = threading.Condition()

    def full(self) -> bool:
        return len(self.frame_sets) >= self.capacity

    def admit(self, state: FrameSetState) -> None:
        with self._cond:
            self.frame_sets.append(state)
            if self.full():
                self.closed = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def wait_frame_set(self, local: int, stop: threading.Event) -> Optional[FrameSetState]:
        """Frame-set ``local`` of this epoch once admitted; None if the epoch closed without
        it (or the runtime is stopping)."""
        with self._cond:
            while True:
                if local < len(self.frame_sets):
                    return self.frame_sets[local]
                if self.closed or stop.is_set():
                    return None
                self._cond.wait(POLL_S)


def _weights_id(plan, dnn: str) -> str:
    model = plan.models.get(dnn)
    return "" if model is None else model.weights_id
