"""Waiting for a run the API started (a replay, a reconcile) to end: poll its view with a growing
pause, and on a terminal show one live line (a spinner, what the run reports, a bar once its total
is known) on stderr, so --json output and pipes stay clean."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from evreplay.cli.output import Output

# The execution statuses Step Functions ends in, and a replay's PAUSED (docs/design.md §4.13: its
# execution ended at a pause); a run's view reports its execution's status.
FINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PAUSED"})

View = dict[str, Any]


class WaitTimeout(RuntimeError):
    def __init__(self, what: str, view: View, seconds: float) -> None:
        super().__init__(f"{what} still {view.get('status')} after {seconds:.0f}s")
        self.view = view


@dataclass(frozen=True)
class Shown:
    """What the live line shows of one poll: a text, and a bar when the run reports a total."""

    text: str
    completed: int = 0
    total: int | None = None


def is_final(view: View) -> bool:
    return str(view.get("status")) in FINAL_STATES


def poll(
    fetch: Callable[[], View],
    what: str,
    timeout: float,
    interval: float = 0.5,
    on_update: Callable[[View, float], None] | None = None,
) -> View:
    """fetch() until the view's status is final; WaitTimeout (naming `what`) after `timeout` seconds.
    The pause grows from `interval` to 2 s: a long run is not polled twice a second for an hour."""
    began = time.monotonic()
    while True:
        view = fetch()
        elapsed = time.monotonic() - began
        if on_update:
            on_update(view, elapsed)
        if is_final(view):
            return view
        if elapsed >= timeout:
            raise WaitTimeout(what, view, elapsed)
        time.sleep(min(interval * (1 + elapsed / 10), 2.0))


def wait_with_progress(
    out: Output,
    fetch: Callable[[], View],
    what: str,
    timeout: float,
    describe: Callable[[View, float], Shown],
) -> View:
    """poll(), with the live line on a terminal (none for --json or when stderr is not a terminal)."""
    if out.as_json or not out.err.is_terminal:
        return poll(fetch, what, timeout)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=out.err, transient=True) as bar:
        task = bar.add_task(what, total=None)

        def show(view: View, elapsed: float) -> None:
            shown = describe(view, elapsed)
            bar.update(task, description=shown.text, completed=shown.completed, total=shown.total)

        return poll(fetch, what, timeout, on_update=show)
