"""stderr console, progress and table rendering (rich lives only in the CLI layer).

rich is imported on first use: a command answered by ``mms serve`` in JSON never needs it
(30 ms of a client's ~100 ms)."""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mmsearch_cli.search.rows import Row, ref

if TYPE_CHECKING:
    from rich.console import Console

    err: Console


@functools.cache
def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True)


def __getattr__(name: str) -> Any:
    if name == "err":  # ``console.err``: the stderr console, made when first used
        return _stderr()
    raise AttributeError(name)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters as visible escapes: a crafted file name must not recolour the
    terminal or move its cursor (JSON escapes them already)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def info(message: str, *, quiet: bool = False) -> None:
    """A note on stderr; ``--quiet`` silences it."""
    if not quiet:
        _stderr().print(printable(message), markup=False, highlight=False)


def warn(message: str) -> None:
    _stderr().print(f"mms: warning: {printable(message)}", markup=False, style="yellow")


@contextmanager
def progress(label: str, *, quiet: bool = False) -> Iterator[Callable[[int, int, str], None]]:
    """A progress bar on stderr, only when stderr is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        yield lambda done, total, path: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("[dim]{task.fields[name]}"), console=_stderr(), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None, name="")

        def update(done: int, total: int, path: str) -> None:
            bar.update(task, completed=done, total=total, name=os.path.basename(path)[:40])

        yield update


def print_table(rows: Sequence[Row]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Piped into less or a file there is no width to fit: do not wrap paths at 80.
    out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("type")
    table.add_column("path", overflow="fold")
    table.add_column("why", overflow="fold", ratio=1)
    home = os.path.expanduser("~")
    for row in rows:
        shown = ref(row)
        if shown.startswith(home + os.sep):
            shown = "~" + shown[len(home) :]
        extra = (
            f" ({row['segments_matched']} segments)" if row.get("segments_matched", 1) > 1 else ""
        )
        path = shown.encode("utf-8", "backslashreplace").decode()
        cells = (str(row["rank"]), f"{row['score']:.3f}", row["modality"], path, row["why"] + extra)
        table.add_row(*(Text(printable(c)) for c in cells))  # Text: no markup in names
    out.print(table)
