"""``mms doctor``: check an index, and repair it with ``--repair``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mmsearch_cli import api
from mmsearch_cli.cli.options import BackendOpt, IndexOpt, JsonOpt, settings
from mmsearch_cli.errors import ExitStatus
from mmsearch_cli.search.rows import dumps


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


def doctor(
    index: IndexOpt = None,
    repair: Annotated[
        bool, typer.Option("--repair", help="Repair what can be repaired (takes the lock).")
    ] = False,
    json_out: JsonOpt = False,
    backend: BackendOpt = None,
) -> int:
    """Check an index for damage (sidecar, vector files, records, journal); exit 3 if damaged.

    Example: mms doctor --repair
    """
    report = api.doctor(settings=settings(index, backend), repair=repair)
    if json_out:
        sys.stdout.write(dumps(report.to_dict(), indent=2) + "\n")
    else:
        out = sys.stdout.write
        out(f"index     {report.index}\n")
        for f in report.findings:
            level = f.level.upper() if f.level in ("damaged", "fatal") else f.level
            todo = f"  (--repair: {f.repair})" if f.repair and not repair else ""
            out(f"{level:<9} {f.check:<14} {f.detail}{todo}\n")
        for action in report.repaired:
            out(f"repaired  {action}\n")
        if report.healthy:
            out("healthy\n")
        elif any(f.check == "permissions" for f in report.findings):
            out("unreadable: fix the permissions, then check again\n")
        elif any(f.level == "fatal" for f in report.findings):
            out("damaged: cannot be repaired by this mms\n")
        else:
            out("damaged: run `mms doctor --repair`\n")
    return ExitStatus.OK if report.healthy else ExitStatus.INDEX_MISSING
