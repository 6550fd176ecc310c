"""Rich progress bars for the statistics engine: items done, items/s and tokens/s."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text


class _RateColumn(ProgressColumn):
    """Items per second (from completed) and tokens per second (from the task's `tokens` field)."""

    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        if elapsed <= 0:
            return Text("-", style="progress.data.speed")
        tok = task.fields.get("tokens", 0)
        return Text(f"{task.completed / elapsed:.1f} {self.unit}/s  {tok / elapsed:,.0f} tok/s",
                    style="progress.data.speed")


class Reporter:
    """Progress of one job: advance(items, tokens). A no-op when disabled."""

    def __init__(self, progress: Progress | None, task_id=None):
        self._p, self._t, self.tokens = progress, task_id, 0

    def advance(self, items: int, tokens: int) -> None:
        self.tokens += tokens
        if self._p is not None:
            self._p.update(self._t, advance=items, tokens=self.tokens)


@contextmanager
def reporter(description: str, total: int, unit: str, enabled: bool,
             console: Console | None = None) -> Iterator[Reporter]:
    if not enabled or total == 0:
        yield Reporter(None)
        return
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               _RateColumn(unit), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as p:
        yield Reporter(p, p.add_task(description, total=total, tokens=0))
