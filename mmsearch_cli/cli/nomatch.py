"""``--min-score`` in ``mms query``: the rows kept, or "no good match" and the nearest rows,
dimmed (table output only; a machine format just gets fewer rows, or none and exit 5).

The table cuts at ``auto`` unless told otherwise; machine formats cut only when asked, so a
pipeline reads what it read before calibrated scores existed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from mmsearch_cli import api
from mmsearch_cli.cli import console
from mmsearch_cli.search.rows import Row

AUTO = "auto"
NEAREST = 3


def parse(value: str | None) -> str | float | None:
    """``--min-score auto|SCORE`` (or MMS_MIN_SCORE), checked before the query runs: a bad
    value is a usage error."""
    if value is None or not value.strip():
        return None
    api.cut_rows([], value)  # cutting no rows checks the value (UsageError, exit 2)
    return AUTO if value.strip().lower() == AUTO else float(value)


def limit(
    rows: list[Row], given: str | float | None, *, table: bool, quiet: bool,
    roots: Sequence[str] = (),
) -> list[Row] | None:  # fmt: skip
    """The rows to show. None when none passed and the table said so ("no good match" and
    the nearest rows, dimmed): the caller exits 5. ``given`` is the parsed option; the
    table's default is ``auto``."""
    wanted = given if given is not None else (AUTO if table else None)
    if wanted is None or not rows:
        return rows
    cut = api.cut_rows(rows, wanted, nearest=NEAREST if table else 0)
    if not cut.calibrated and given == AUTO:
        console.info(
            "mms: --min-score auto needs calibrated scores, which this index lacks: run "
            "`mms index` on its folders once",
            quiet=quiet,
        )
    if cut.rows or not cut.nearest:
        return list(cut.rows)
    show(cut.nearest, wanted, roots)
    return None


def show(nearest: list[Row], wanted: str | float, roots: Sequence[str] = ()) -> None:
    """Say "no good match" on stdout, then show the nearest rows as the table does, dimmed."""
    from rich.console import Console

    bar = "0.500 (a good match)" if wanted == AUTO else f"{float(wanted):.3f}"
    sys.stdout.write(f"no good match: nothing scored {bar}; the nearest:\n")
    sys.stdout.flush()
    fixed = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    out = Console(highlight=False, soft_wrap=False, width=None if fixed else 160, style="dim")
    console.print_table(nearest, out=out, roots=roots)
