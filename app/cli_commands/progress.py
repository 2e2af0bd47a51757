"""Showing a followed sweep on stderr (stdout stays for results): a rich progress bar on a
terminal, one line per change otherwise, so a farm job's log reads as a history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from app.cli_commands.common import counts_text
from app.client.follow import Show, SweepProgress


@contextmanager
def progress_display(console: Console | None = None) -> Iterator[Show]:
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield _lines(console)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[note]}"),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("sweep", total=None, counts="", note="")
        yield lambda progress: _update(bar, task, progress)


def _update(bar: Progress, task: TaskID, progress: SweepProgress) -> None:
    bar.update(
        task,
        description=f"{progress.sweep_id[:8]} {progress.status}",
        total=progress.total or None,
        completed=progress.done,
        counts=counts_text(progress.counts),
        note=progress.note[:60],
    )


def _lines(console: Console) -> Show:
    shown = ""

    def show(progress: SweepProgress) -> None:
        nonlocal shown
        line = (
            f"sweep {progress.sweep_id[:8]} {progress.status}: {progress.done}/{progress.total}"
            f" ({counts_text(progress.counts)})"
        )
        if line != shown:
            console.print(line, markup=False, highlight=False)
            shown = line

    return show
