"""Options shared by several commands, declared once (typer ``Annotated`` types with env
vars), and the parsers that turn their strings into the library's types."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from mmsearch_cli.config import Settings, load_settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.items import FILE_MODALITIES
from mmsearch_cli.search.rows import FORMATS

IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index", envvar="MMS_INDEX", show_envvar=True, file_okay=False, metavar="DIR",
        help="Index directory [default: $XDG_DATA_HOME/mms/index].",
    ),
]  # fmt: skip
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr.")]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        envvar="MMS_FORMAT",
        metavar="FORMAT",
        help=f"Output format: {', '.join(FORMATS)}.",
    ),
]
NullOpt = Annotated[bool, typer.Option("-0", "--null", help="NUL-separated paths, for xargs -0.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")]
WaitOpt = Annotated[
    float,
    typer.Option(
        metavar="SECONDS", help="Seconds to wait if another run holds the index (-1: forever)."
    ),
]
TopOpt = Annotated[
    int,
    typer.Option("--top", "-k", min=1, envvar="MMS_TOP", metavar="N", help="Number of results."),
]
NoServerOpt = Annotated[
    bool,
    typer.Option(
        "--no-server", envvar="MMS_NO_SERVER",
        help="Answer in this process even if `mms serve` runs for the index.",
    ),
]  # fmt: skip
RerankerOpt = Annotated[
    str | None,
    typer.Option(
        envvar="MMS_RERANKER",
        metavar="MODEL",
        help="Cross-encoder: a sentence-transformers id or folder [default: packaged].",
    ),
]


BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend", metavar="URL", show_default=False,
        help="A postgresql:// database to index into or search, shared by several "
        "machines [env: MMS_BACKEND; config: backend].",
    ),
]  # fmt: skip


def settings(index: Path | None = None, backend: str | None = None) -> Settings:
    """Settings for a command: its flags win over env vars, the config file and defaults."""
    return load_settings(index_dir=index, backend=backend)


def parse_types(value: str | None) -> frozenset[str] | None:
    """``--type image,text`` as a set of file modalities (None: no filter)."""
    if not value:
        return None
    parts = frozenset(p.strip() for p in value.split(",") if p.strip())
    if bad := parts - set(FILE_MODALITIES):
        raise UsageError(
            f"unknown type(s) {', '.join(sorted(bad))}; use {', '.join(sorted(FILE_MODALITIES))}"
        )
    return parts


def check_fraction(flag: str, value: float | None) -> None:
    """A weight or a quality bar: a finite number from 0 to 1 (typer's range check lets
    NaN through, and a NaN bar would never fail)."""
    if value is not None and not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UsageError(f"{flag} takes a number from 0 to 1, not {value}")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    return fmt


def parse_date(value: str | None, flag: str) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
        when.timestamp()  # year 1 east of UTC has no timestamp: say so here, not later
        return when
    except (ValueError, OverflowError, OSError):
        raise UsageError(
            f"{flag} takes a date like 2024-05-31 or 2024-05-31T12:00 (years 1970-9999 are safe)"
        ) from None


def parse_size(value: str | None, flag: str) -> int | None:
    """``500k``, ``20M``, ``1G`` (decimal units) or plain bytes."""
    if not value:
        return None
    units = {"k": 1e3, "m": 1e6, "g": 1e9}
    v = value.strip().lower().rstrip("b")
    try:
        size = int(float(v[:-1]) * units[v[-1]]) if v and v[-1] in units else int(v)
    except (ValueError, OverflowError):  # "infk" overflows
        raise UsageError(f"{flag} takes a size like 500k, 20M or 1G") from None
    if size < 0:
        raise UsageError(f"{flag} takes a size of 0 or more, not {value}")
    return size


def parse_people(value: str | None) -> tuple[int, int | None] | None:
    """``--people``: ``0`` (none), ``2`` (exactly two), ``2+`` (two or more), ``1-3``."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    try:
        if v.endswith("+"):
            return int(v[:-1]), None
        low, sep, high = v.partition("-")
        people = (int(low), int(high)) if sep else (int(v), int(v))
    except ValueError:
        raise UsageError(f"--people takes a count like 0, 2, 2+ or 1-3, not {value!r}") from None
    if people[0] < 0 or (people[1] is not None and people[1] < people[0]):
        raise UsageError(f"--people takes a count like 0, 2, 2+ or 1-3, not {value!r}")
    return people


def check_wait(wait: float) -> float:
    """``--wait``: seconds, or -1 for forever (NaN and other negatives are mistakes)."""
    if wait != -1 and not (math.isfinite(wait) and wait >= 0):
        raise UsageError(f"--wait takes seconds (0 or more) or -1 for forever, not {wait}")
    return wait
