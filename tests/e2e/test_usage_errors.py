"""Usage errors through the installed ``mms`` script: exit 2 and one plain line.

Typer 0.15 raised the ``click`` package's exceptions; later releases vendor click as
``typer._click``, and an edge that matched only one family reported every usage error as
an internal error with exit 1. These run the real entry point a user's shell runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import MMS

SCRIPT = Path(sys.executable).with_name("mms")  # the console script pip installed

USAGE_ERRORS = {
    "unknown option": (["query", "--typo", "x"], "No such option: --typo"),
    "unknown command": (["quer", "cats"], "No such command 'quer'"),
    "bad value": (["query", "cats", "-k", "0"], "'--top'"),
    "missing argument": (["rerank"], "Missing argument"),
    "unknown subcommand": (["models", "bogus"], "No such command 'bogus'"),
}


def run_mms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize("case", sorted(USAGE_ERRORS))
def test_a_usage_error_exits_2_with_one_plain_line(case: str) -> None:
    args, words = USAGE_ERRORS[case]
    proc = run_mms(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("mms: error: "), lines[0]
    assert words in lines[0]
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


def test_mms_alone_prints_the_help_and_exits_0() -> None:
    proc = run_mms()
    assert proc.returncode == 0, proc.stderr
    assert "Usage: mms" in proc.stdout and "query" in proc.stdout
    assert proc.stderr == ""


def test_python_dash_m_runs_the_same_command() -> None:
    proc = subprocess.run([*MMS, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mms ")
