"""``mms``: index and search your own media by meaning.

Commands parse their options, call the library and render; errors become one line on
stderr and a documented exit code here, at one edge (``main``). ``--version`` and help
(``helpcache``) are answered before typer and the commands are imported.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
from typing import Any

from mmsearch_cli import __version__
from mmsearch_cli.cli import console, helpcache
from mmsearch_cli.errors import ExitStatus, MmsError, NoResultsError, OutputError


def __getattr__(name: str) -> Any:
    if name == "app":  # ``app.app``: the typer app, built when first asked for
        from mmsearch_cli.cli.commands import app

        return app
    raise AttributeError(name)


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("MMS_DEBUG", "") not in ("", "0")


def main() -> None:
    """Console-script entry point."""
    _guard_streams()
    signal.signal(signal.SIGTERM, _terminated)  # `mms serve` installs its own
    _exit(run(sys.argv[1:]))


def _terminated(signum: int, frame: Any) -> None:
    """SIGTERM (systemd, timeout, kill) ends a command as Ctrl-C does: one line, exit
    130, and the index as crash-safe as ever (the journal keeps finished batches)."""
    raise KeyboardInterrupt


class _Stdout(io.RawIOBase):
    """fd 1, where a closed or full output is an ``OutputError`` (one line, exit 10) and a
    closed pipe stays a ``BrokenPipeError`` (the reader went away: not an error)."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self.fd is not None and os.isatty(self.fd)

    def fileno(self) -> int:
        if self.fd is None:
            raise OSError(errno.EBADF, "standard output is closed")
        return self.fd

    def write(self, data: Any) -> int:
        if self.fd is None:
            raise OutputError("standard output is closed: the results cannot be written")
        try:
            return os.write(self.fd, data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(f"cannot write the results: {exc.strerror}") from None


def _guard_streams() -> None:
    """Daemons, launchd and some cron set-ups start jobs with stdout or stderr closed, or
    send output to a full device: a one-line error and exit 10, never a traceback."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as we do)
    old = sys.stdout
    fd = old.fileno() if old is not None else None
    sys.stdout = io.TextIOWrapper(
        io.BufferedWriter(_Stdout(fd)), encoding=getattr(old, "encoding", None) or "utf-8",
        errors=getattr(old, "errors", None) or "strict", line_buffering=bool(fd and os.isatty(fd)),
    )  # fmt: skip


def run(argv: list[str]) -> int:
    """Run the app and map every failure to one line and an exit code (returned)."""
    args = list(argv)
    debug = _debug_requested(args)
    args = [a for a in args if a != "--debug"]  # accepted anywhere on the line
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        import warnings

        # Libraries' warnings (numpy on a WAV of NaN samples, with source lines) are not
        # for users: -q must be quiet, and --debug shows them.
        warnings.simplefilter("ignore")
    if args[:1] == ["--version"]:  # before typer and the commands are imported (~0.1 s)
        sys.stdout.write(f"mms {__version__}\n")
        return ExitStatus.OK
    if debug or not helpcache.wanted(args):
        return _run(args, debug)
    text = helpcache.load(args)
    if text is None:  # made once per code and width, then read back
        real, sys.stdout = sys.stdout, io.StringIO()
        try:
            status = _run(list(args), debug)  # click consumes the list it parses
        finally:
            text, sys.stdout = sys.stdout.getvalue(), real
        if status != ExitStatus.OK:  # `mms nosuchcommand --help`: said on stderr
            sys.stdout.write(text)
            return status
        helpcache.save(args, text)
    sys.stdout.write(text)
    return ExitStatus.OK


def _run(args: list[str], debug: bool) -> int:
    import typer.main

    from mmsearch_cli.cli.commands import app_for, readable_metavars

    command = readable_metavars(typer.main.get_command(app_for(args)))
    status: int = ExitStatus.OK
    try:
        with command.make_context("mms", args) as ctx:
            result = command.invoke(ctx)
        status = int(result) if isinstance(result, int) else ExitStatus.OK
    except NoResultsError as exc:  # not an error: a note and exit 5
        console.err.print(f"mms: {exc}", markup=False)
        status = exc.status
    except MmsError as exc:
        if debug:
            raise
        console.err.print(f"mms: error: {console.printable(str(exc))}", markup=False)
        status = exc.status
    except KeyboardInterrupt:
        console.err.print("mms: interrupted", markup=False)
        status = ExitStatus.INTERRUPTED
    except BrokenPipeError:
        status = _reader_gone()
    except SystemExit as exc:
        # Typer turns a closed pipe into sys.exit(1) before we see the BrokenPipeError.
        if not isinstance(exc.__context__, BrokenPipeError):
            raise
        status = _reader_gone()
    except Exception as exc:
        mapped = framework_exit_status(exc)
        if mapped is not None:
            return mapped
        if debug:
            raise
        console.err.print(
            f"mms: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            markup=False,
        )
        status = ExitStatus.ERROR
    return status


def framework_exit_status(exc: Exception) -> int | None:
    """Exit status for typer's and click's own exceptions (usage errors, --help, Ctrl-C),
    None for anything else. Typer 0.15 raises the ``click`` package's classes; later
    releases vendor click as ``typer._click``: both are matched, by their module."""
    import typer

    families = [sys.modules.get(name) for name in ("typer._click.exceptions", "click.exceptions")]
    exits: tuple[type[BaseException], ...] = (typer.Exit,)
    aborts: tuple[type[BaseException], ...] = (typer.Abort,)
    usage: tuple[type[BaseException], ...] = ()
    for module in filter(None, families):
        exits += tuple(getattr(module, "Exit", ()) and (module.Exit,))
        aborts += tuple(getattr(module, "Abort", ()) and (module.Abort,))
        usage += (module.ClickException,)
    if isinstance(exc, exits):
        return int(getattr(exc, "exit_code", 0))
    if isinstance(exc, aborts):
        console.err.print("mms: interrupted", markup=False)
        return ExitStatus.INTERRUPTED
    if not isinstance(exc, usage):
        return None
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        sys.stdout.write(ctx.get_help() + "\n")  # `mms` alone: the help, as --help gives it
        return ExitStatus.OK
    message = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
    console.err.print(f"mms: error: {message}{where}", markup=False)
    return ExitStatus.USAGE


def _reader_gone() -> ExitStatus:
    """The reader (head, less) went away: not an error for a pipeline. Later writes and the
    final flush go to /dev/null instead of failing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return ExitStatus.OK


def _exit(status: int) -> None:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    except OutputError as exc:  # buffered results that could not be written at the end
        if status != exc.status:  # not said already by `run`
            console.err.print(f"mms: error: {exc}", markup=False)
        status = exc.status
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(_Stdout(None)))  # nothing left to flush
    if "torch" in sys.modules:
        os._exit(status)  # torch's interpreter teardown costs ~0.9 s (measured here)
    sys.exit(status)
