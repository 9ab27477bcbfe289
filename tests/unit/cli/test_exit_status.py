"""The one edge maps both click families' exceptions: ``click`` and ``typer._click``."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest
import typer

from mmsearch_cli.cli.app import framework_exit_status
from mmsearch_cli.errors import ExitStatus


def families() -> list[ModuleType]:
    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


@pytest.mark.parametrize("module", families(), ids=lambda m: m.__name__)
def test_each_family_s_usage_errors_map_to_exit_2(
    module: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    for exc in (
        module.NoSuchOption("--typo"),
        module.BadParameter("0 is not in the range x>=1"),
        module.UsageError("No such command 'quer'."),
    ):
        assert framework_exit_status(exc) == ExitStatus.USAGE
        line = capsys.readouterr().err
        assert line.startswith("mms: error: ") and line.count("\n") == 1, line


def test_exit_and_abort_keep_their_meaning() -> None:
    assert framework_exit_status(typer.Exit(3)) == 3
    assert framework_exit_status(typer.Abort()) == ExitStatus.INTERRUPTED


def test_other_exceptions_are_not_the_framework_s() -> None:
    assert framework_exit_status(ValueError("a bug")) is None
