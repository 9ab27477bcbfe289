"""Every command documents itself with an example; --version works."""

from __future__ import annotations

import pytest

from mmsearch_cli import __version__
from tests.conftest import invoke

COMMANDS = ["index", "query", "rerank", "eval", "info", "stats", "doctor", "forget", "models",
            "models fetch", "models prepare", "models download"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_an_example(command: str) -> None:
    res = invoke(*command.split(), "--help")
    assert res.code == 0 and "Example: mms" in res.text, res.text


def test_version() -> None:
    res = invoke("--version")
    assert res.code == 0 and res.text.strip() == f"mms {__version__}"
