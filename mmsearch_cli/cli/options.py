"""Options shared by several commands (typer ``Annotated`` types with env vars)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mmsearch_cli.cli import console
from mmsearch_cli.config import Settings, load_settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.search.rows import FORMATS

IndexOpt = Annotated[
    Path | None,
    typer.Option(
        "--index", envvar="MMS_INDEX", show_envvar=True, file_okay=False,
        help="Index directory [default: $XDG_DATA_HOME/mms/index].",
    ),
]  # fmt: skip
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress or notes on stderr.")]
DebugOpt = Annotated[
    bool, typer.Option("--debug", envvar="MMS_DEBUG", help="Show tracebacks on errors.")
]


FormatOpt = Annotated[
    str,
    typer.Option(
        "--format", "-f", envvar="MMS_FORMAT", help=f"Output format: {', '.join(FORMATS)}."
    ),
]


def settings(index: Path | None, quiet: bool = False, **kw: object) -> Settings:
    console.QUIET = quiet
    return load_settings(index_dir=index, **kw)  # type: ignore[arg-type]


def parse_types(value: str | None) -> frozenset[str] | None:
    if not value:
        return None
    allowed = {"text", "image", "audio", "video"}
    parts = frozenset(p.strip() for p in value.split(",") if p.strip())
    bad = parts - allowed
    if bad:
        raise UsageError(
            f"unknown type(s) {', '.join(sorted(bad))}; use {', '.join(sorted(allowed))}"
        )
    return parts


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UsageError(f"unknown format '{fmt}'; use one of {', '.join(FORMATS)}")
    return fmt
