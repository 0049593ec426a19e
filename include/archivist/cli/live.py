"""A live progress display on a terminal: one line per running step (a job's dump or restore, an
index, the bundle's verification) with its bytes or documents so far, its rate and its time.

It reads the counts every Progress already keeps (archivist.progress), a few times a second, so
the work itself does nothing more for it. Shown only when stdout and stderr are both terminals;
with --json or --quiet, or when either is a file or a pipe, nothing is drawn and logs stay clean.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console, RenderableType
from rich.progress import BarColumn, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

from archivist import progress
from archivist.cli.output import Output, human_size

LABEL_WIDTH = 40  # a step's name, cut with an ellipsis beyond
ROWS = 12  # lines drawn at most: every running step, then the latest finished ones
REFRESH_PER_SECOND = 4


def wanted(out: Output) -> bool:
    """Whether to draw: people reading both streams on a terminal that can redraw a line."""
    return out.text and sys.stdout.isatty() and sys.stderr.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


def _amount(n: float, unit: str) -> str:
    return human_size(n) if unit == "B" else f"{n:,.0f} {unit}"


class _CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "B")
        done = _amount(task.completed, unit)
        if task.fields.get("known_total") and task.total is not None:
            return Text(f"{done} of {_amount(task.total, unit)}")
        return Text(done)


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        return Text(f"{_amount(task.fields.get('rate', 0), task.fields.get('unit', 'B'))}/s")


class _Bars(RichProgress):
    """rich's progress display, fed from a Board of archivist Progress objects at each refresh."""

    def __init__(self, board: progress.Board, skip: int, console: Console):
        self._board, self._skip = board, skip  # before rich's own setup, which may draw already
        self._rows: dict[progress.Progress, TaskID] = {}
        self._syncing = True  # rich draws once while it sets up, before it can take rows
        super().__init__(
            TextColumn(
                "{task.description}", table_column=Column(max_width=LABEL_WIDTH, overflow="ellipsis", no_wrap=True)
            ),
            BarColumn(bar_width=24),
            _CountColumn(),
            _RateColumn(),
            TimeElapsedColumn(),
            console=console,
            refresh_per_second=REFRESH_PER_SECOND,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._syncing = False

    def get_renderables(self) -> Iterable[RenderableType]:
        # Called under rich's display lock, by its refresh thread and by stop(): that lock keeps
        # one sync at a time. A sync's add_task draws again, which lands here: skip that one.
        if not self._syncing:
            self._syncing = True
            try:
                self._sync()
            finally:
                self._syncing = False
        yield from super().get_renderables()

    def _sync(self) -> None:
        items = self._board.items()[self._skip :]
        now = time.monotonic()
        for item in items:
            row = self._rows.get(item)
            if row is None:
                row = self._rows[item] = self.add_task(
                    item.label, total=item.total, unit=item.unit, known_total=item.total is not None
                )
            finished = item.elapsed is not None
            seconds = item.elapsed if finished else now - item.started
            self.update(
                row,
                completed=item.count,
                total=item.count if finished and not item.total else item.total,
                rate=item.count / seconds if seconds else 0,
            )
        running = [i for i in items if i.elapsed is None]
        ended = [i for i in items if i.elapsed is not None]
        room = max(ROWS - len(running), 0)
        shown = set(running) | set(ended[len(ended) - room :] if room else [])
        for item, row in self._rows.items():
            self.update(row, visible=item in shown)


class Display:
    """The display of one command; `paused()` takes it off the terminal while the user is asked."""

    def __init__(self, board: progress.Board, handler: logging.StreamHandler | None):
        self.board, self._handler = board, handler
        self._bars: _Bars | None = None
        self._stream: Any = None

    def start(self) -> None:
        self._bars = _Bars(self.board, len(self.board.items()), Console(file=sys.stderr))
        self._bars.start()
        if self._handler is not None:  # log lines print above the bars, through rich's stderr
            self._stream = self._handler.setStream(sys.stderr)

    def stop(self) -> None:
        if self._bars is None:
            return
        self._bars.stop()  # draws the last counts
        if self._handler is not None and self._stream is not None:
            self._handler.setStream(self._stream)
        self._bars = None

    @contextmanager
    def paused(self) -> Iterator[None]:
        running = self._bars is not None
        self.stop()
        try:
            yield
        finally:
            if running:
                self.start()


@contextmanager
def showing(out: Output, handler: logging.StreamHandler | None) -> Iterator[Display | None]:
    """Draws the progress of everything inside the block, when `wanted`; yields the display."""
    if not wanted(out):
        yield None
        return
    progress_log = logging.getLogger("archivist.progress")
    level = progress_log.level
    progress_log.setLevel(logging.WARNING)  # the bars say what these lines would
    display = Display(progress.Board(), handler)
    try:
        with progress.watching(display.board):
            display.start()
            try:
                yield display
            finally:
                display.stop()
    finally:
        progress_log.setLevel(level)
