"""A live table of pilot runs: what is queued, running, done (with accuracy), cached or failed."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

STATES = ("queued", "running", "done", "cached", "failed")
_STYLE = {"queued": "dim", "running": "bold yellow", "done": "green", "cached": "cyan", "failed": "bold red"}


@dataclass
class _Row:
    label: str
    state: str = "queued"
    accuracy: float | None = None
    started: float | None = None
    seconds: float | None = None
    note: str = ""


@dataclass
class PilotBoard:
    """The state of every pilot of one batch; `render()` gives a rich renderable."""

    title: str
    rows: dict[str, _Row] = field(default_factory=dict)
    t0: float = field(default_factory=time.perf_counter)

    def add(self, key: str, label: str) -> None:
        self.rows[key] = _Row(label)

    def set(self, key: str, state: str, *, accuracy: float | None = None, seconds: float | None = None,
            note: str = "") -> None:
        if state not in STATES:
            raise ValueError(f"unknown pilot state {state!r}; known: {STATES}")
        r = self.rows[key]
        r.state = state
        if state == "running":
            r.started = time.perf_counter()
        if accuracy is not None:
            r.accuracy = accuracy
        if seconds is not None:
            r.seconds = seconds
        r.note = note

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATES, 0)
        for r in self.rows.values():
            out[r.state] += 1
        return out

    def summary(self) -> str:
        c = self.counts()
        parts = [f"{c[s]} {s}" for s in STATES if c[s]]
        return f"{self.title}: " + " · ".join(parts) + f"  ({time.perf_counter() - self.t0:.0f}s)"

    def render(self) -> Group:
        table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        table.add_column("pilot")
        table.add_column("state")
        table.add_column("accuracy", justify="right")
        table.add_column("time", justify="right")
        table.add_column("note", overflow="fold")
        now = time.perf_counter()
        for r in self.rows.values():
            acc = "" if r.accuracy is None or math.isnan(r.accuracy) else f"{100 * r.accuracy:.1f}%"
            if r.state == "running" and r.started is not None:
                secs = f"{now - r.started:.0f}s"
            else:
                secs = "" if r.seconds is None else f"{r.seconds:.0f}s"
            table.add_row(r.label, Text(r.state, style=_STYLE[r.state]), acc, secs, r.note)
        return Group(Text(self.summary(), style="bold"), table)


class PilotProgress:
    """Context manager around a :class:`PilotBoard`: a rich Live display when enabled (refreshed
    four times a second), nothing otherwise; the final table is left on screen."""

    def __init__(self, board: PilotBoard, *, enabled: bool = True, console: Console | None = None):
        self.board = board
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self._live: Live | None = None

    def __enter__(self) -> PilotProgress:
        if self.enabled:
            self._live = Live(self.board.render(), console=self.console, refresh_per_second=4,
                              get_renderable=self.board.render, transient=False)
            self._live.__enter__()
        return self

    def refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.__exit__(*exc)
            self._live = None
