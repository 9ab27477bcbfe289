"""The committed shell completions are what the generator makes from the typer app
(the completion a shell asks the running command for: tests/e2e/test_completions.py)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_committed_completions_match_the_generator() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_completions.py"), "--check"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
