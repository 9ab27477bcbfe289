"""The typer app: the root options and every command, registered once.

Imported only when a command runs or help is asked for (``app.run``): ``mms --version``
is answered before typer is imported.
"""

from __future__ import annotations

import os
from typing import Annotated, Any

import typer

from mmsearch_cli import __version__
from mmsearch_cli.cli import (
    commands_doctor,
    commands_eval,
    commands_index,
    commands_models,
    commands_query,
    commands_serve,
)

SETTINGS = {
    "name": "mms",
    "help": "Search your own photos, documents, audio and video by meaning, offline.",
    "no_args_is_help": True,
    "add_completion": True,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}
app = typer.Typer(**SETTINGS)  # type: ignore[arg-type]


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
commands_serve.register(app)


def app_for(args: list[str]) -> typer.Typer:
    """The app with only the command being run: typer reads every command's signature
    when it builds the app (~40 ms for all of them), and a query answered by a warm
    server costs ~100 ms in all. Help and completion get the whole app."""
    name = args[0] if args else ""
    if not name or name.startswith("-") or "_MMS_COMPLETE" in os.environ:
        return app
    one = typer.Typer(**SETTINGS)  # type: ignore[arg-type]
    one.registered_callback = app.registered_callback
    one.registered_commands = [c for c in app.registered_commands if c.name == name]
    one.registered_groups = [
        g for g in app.registered_groups
        if g.typer_instance is not None and g.typer_instance.info.name == name
    ]  # fmt: skip
    return one if one.registered_commands or one.registered_groups else app


# Help names a value by what it is, not by its Python type: typer 0.28 prints <str>,
# <int range>, <float>; earlier releases TEXT, INTEGER or <list[Path]>.
METAVARS = {
    "str": "TEXT", "text": "TEXT", "int": "N", "integer": "N", "int range": "N",
    "integer range": "N", "float": "NUMBER", "float range": "NUMBER", "path": "PATH",
    "directory": "DIR", "file": "FILE", "filename": "FILE", "datetime": "DATE",
}  # fmt: skip


def readable_metavars(command: Any) -> Any:
    """Give every option that takes a value and names none a readable metavar (commands
    name their own where a word says more: DATE, SIZE, GLOB). Choices keep theirs, which
    list the choices. Works on typer's vendored click and on click alike (duck-typed)."""
    for param in command.params:
        if param.param_type_name != "option" or param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "count", False):
            continue
        readable = METAVARS.get(getattr(param.type, "name", ""))
        if readable is not None:
            param.metavar = readable
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    return command
