"""The profiler's progress bar: rich, on stderr; silent when ``enabled`` is false."""

from __future__ import annotations

import sys
from typing import Optional


class ProgressBar:
    """One bar over every frame the profile needs; ``advance(n)`` after each frame."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self._progress = None
        self._task = None

    def __enter__(self) -> "ProgressBar":
        if self.enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      TimeRemainingColumn(),
                                      console=Console(file=sys.stderr), transient=False)
            self._progress.__enter__()
            self._task = self._progress.add_task("profiling", total=None)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc_info)
            self._progress = None

    def add_total(self, frames: int) -> None:
        if self._progress is not None:
            task = self._progress.tasks[0]
            self._progress.update(self._task, total=(task.total or 0) + frames)

    def describe(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self, frames: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, frames)

    def note(self, line: str, stream: Optional[object] = None) -> None:
        """A line above the bar (or on stderr without one)."""
        if self._progress is not None:
            self._progress.console.print(line, highlight=False, markup=False)
        else:
            print(line, file=stream or sys.stderr)
