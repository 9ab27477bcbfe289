"""``mms``: index and search your own media by meaning.

Commands parse their options, call the library and render; errors become one line on
stderr and a documented exit code here, at one edge (``main``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from mmsearch_cli import __version__
from mmsearch_cli.cli import (
    commands_doctor,
    commands_eval,
    commands_index,
    commands_models,
    commands_query,
    console,
)
from mmsearch_cli.errors import ExitStatus, MmsError, NoResultsError

app = typer.Typer(
    name="mms",
    help="Search your own photos, documents, audio and video by meaning, offline.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mms {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Search your own photos, documents, audio and video by meaning, offline.

    Example: mms index ~/Pictures ~/notes && mms query "red dress"
    """


commands_index.register(app)
commands_query.register(app)
commands_models.register(app)
commands_eval.register(app)
commands_doctor.register(app)


def _debug_requested(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("MMS_DEBUG", "") not in ("", "0")


def main() -> None:
    """Console-script entry point."""
    _exit(run(sys.argv[1:]))


def run(argv: list[str]) -> int:
    """Run the app and map every failure to one line and an exit code (returned)."""
    import click

    args = list(argv)
    debug = _debug_requested(args)
    args = [a for a in args if a != "--debug"]  # accepted anywhere on the line
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    status: int = ExitStatus.OK
    try:
        command = typer.main.get_command(app)
        result = command.main(args=args, prog_name="mms", standalone_mode=False)
        status = int(result) if isinstance(result, int) else ExitStatus.OK
    except NoResultsError as exc:
        if not console.QUIET:
            console.err.print(f"mms: {exc}", markup=False)
        status = exc.status
    except MmsError as exc:
        if debug:
            raise
        console.err.print(f"mms: error: {exc}", markup=False)
        status = exc.status
    except click.exceptions.Exit as exc:
        status = exc.exit_code
    except click.exceptions.Abort:
        status = ExitStatus.INTERRUPTED
    except click.ClickException as exc:
        exc.show(file=sys.stderr)
        status = ExitStatus.USAGE
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
        if debug:
            raise
        console.err.print(
            f"mms: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            markup=False,
        )
        status = ExitStatus.ERROR
    return status


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
    if "torch" in sys.modules:
        os._exit(status)  # torch's interpreter teardown costs ~0.9 s (performance.md)
    sys.exit(status)
