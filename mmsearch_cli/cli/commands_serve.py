"""``mms serve``: keep an index warm for fast queries (and fresh, with ``--watch``);
``mms serve status`` and ``mms serve stop`` talk to a running one."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mmsearch_cli import api
from mmsearch_cli.cli import console
from mmsearch_cli.cli.options import IndexOpt, JsonOpt, QuietOpt, settings
from mmsearch_cli.errors import ExitStatus, UsageError
from mmsearch_cli.search.rows import dumps
from mmsearch_cli.serve import client

serve_app = typer.Typer(
    name="serve",
    help="Answer queries from a warm server (and keep the index fresh with --watch).",
    invoke_without_command=True,
    rich_markup_mode=None,
)

UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app)


def parse_duration(value: str | None, flag: str) -> float | None:
    """``30m``, ``90s``, ``2h``, ``1d`` or plain seconds; ``0`` or nothing: never."""
    if not value:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value.lower())
    if match is None:
        raise UsageError(f"{flag} takes a duration like 90s, 30m or 2h")
    seconds = float(match.group(1)) * UNITS[match.group(2)]
    return seconds or None


@serve_app.callback()
def serve(
    ctx: typer.Context,
    index: IndexOpt = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            envvar="MMS_WATCH",
            help="Index files as they are created, changed, moved or deleted.",
        ),
    ] = False,
    idle_exit: Annotated[
        str | None,
        typer.Option(
            envvar="MMS_IDLE_EXIT",
            metavar="DURATION",
            help="Exit after this long without a request (e.g. 30m).",
        ),
    ] = None,
    log: Annotated[
        Path | None,
        typer.Option(
            envvar="MMS_SERVE_LOG",
            dir_okay=False,
            help="Append the log (one line per request) here [default: stderr].",
        ),
    ] = None,
    debounce: Annotated[
        float,
        typer.Option(
            min=0.1,
            metavar="SECONDS",
            help="--watch: seconds a file must be still before it is indexed.",
        ),
    ] = 1.0,
    rescan: Annotated[
        str,
        typer.Option(
            metavar="DURATION",
            help="--watch: rescan roots that give no events this often (e.g. 5m).",
        ),
    ] = "5m",
    quiet: QuietOpt = False,
) -> int | None:
    """Keep one index, its models and vectors in memory; `mms query`, `rerank` and `eval`
    use it automatically (answers in milliseconds). Runs in the foreground.

    Example: mms serve --watch --idle-exit 8h
    """
    if ctx.invoked_subcommand is not None:
        return None
    status = api.serve(
        settings=settings(index), idle_exit=parse_duration(idle_exit, "--idle-exit"), log=log,
        quiet=quiet, watch=watch, debounce=debounce,
        rescan=parse_duration(rescan, "--rescan") or 300.0,
    )  # fmt: skip
    raise typer.Exit(status)


def _ask(index: Path | None, op: str, *, quiet: bool = False) -> Any | None:
    """The running server's answer to ``op``, or None (with a note) when there is none."""
    conf = settings(index)
    found = client.call(conf.index_dir, op)
    if found is None:
        console.info(f"mms: no server for {conf.index_dir}", quiet=quiet)
    return found


@serve_app.command("status")
def status(index: IndexOpt = None, json_out: JsonOpt = False) -> int:
    """Is a server running for this index? Exit 0 if so, 3 if not."""
    found = _ask(index, "status")
    if found is None:
        return ExitStatus.INDEX_MISSING
    if json_out:
        sys.stdout.write(dumps(found, indent=2) + "\n")
        return ExitStatus.OK
    watching = found.get("watching")
    lines = [
        f"pid         {found['pid']}",
        f"index       {found['index']} (generation {found['generation']})",
        f"socket      {found['socket']}",
        f"uptime      {found['uptime_s']:.0f} s, {found['requests']} requests",
        f"peak RSS    {found['peak_rss_mib']:.0f} MiB",
    ]
    if watching:
        modes = ", ".join(f"{root} ({mode})" for root, mode in watching["roots"].items())
        lines.append(f"watching    {modes}; {watching['batches']} batches, "
                     f"{watching['pending']} pending")  # fmt: skip
    sys.stdout.write("\n".join(lines) + "\n")
    return ExitStatus.OK


@serve_app.command("stop")
def stop(index: IndexOpt = None, quiet: QuietOpt = False) -> int:
    """Stop the server of this index (it finishes a watch batch first). Exit 3 if none."""
    found = _ask(index, "stop", quiet=quiet)
    if found is None:
        return ExitStatus.INDEX_MISSING
    console.info(f"mms: server (pid {found['pid']}) is stopping", quiet=quiet)
    return ExitStatus.OK
