"""What the CLI prints: rich tables and panels for people, one JSON document for scripts (--json).

Results go to stdout, errors and progress to stderr, so `evreplay ... --json | jq` always works.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from evreplay.cli.client import ApiError


class Output:
    def __init__(self, as_json: bool = False, stdout: TextIO | None = None, stderr: TextIO | None = None) -> None:
        self.as_json = as_json
        self._stdout = stdout or sys.stdout
        self.console = Console(file=self._stdout, highlight=False)
        if not self.console.is_terminal:
            # Piped or captured: no terminal width to respect; do not fold ids and keys at 80 columns.
            self.console.width = 200
        self.err = Console(file=stderr or sys.stderr, highlight=False, soft_wrap=True)

    # ---------------------------------------------------------------- scripts
    def json(self, value: Any) -> None:
        self._stdout.write(json.dumps(value, ensure_ascii=False, indent=2, sort_keys=False) + "\n")
        self._stdout.flush()

    # ---------------------------------------------------------------- people
    def line(self, text: str = "", style: str | None = None) -> None:
        if not self.as_json:
            self.console.print(text, style=style, markup=False)

    def markup(self, text: str) -> None:
        if not self.as_json:
            self.console.print(text)

    def info(self, text: str) -> None:
        """A progress note on stderr (kept out of stdout so --json output stays clean)."""
        self.err.print(text, style="dim", markup=False)

    def error(self, error: ApiError | str) -> None:
        self.err.print(f"error: {error}", style="bold red", markup=False)

    def fields(self, title: str, values: dict[str, Any]) -> None:
        table = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for name, value in values.items():
            table.add_row(name, _cell(value))
        self.console.print(table)

    def table(
        self, title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], caption: str | None = None
    ) -> None:
        table = Table(title=title, caption=caption, title_justify="left", caption_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(value) for value in row))
        self.console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)
