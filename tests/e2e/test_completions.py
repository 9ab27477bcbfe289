"""Shell completions are generated from the typer app and must not go stale."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import MMS, ROOT


def test_committed_completions_match_the_generator() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts/gen_completions.py"), "--check"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bash_completion_offers_the_commands_and_options() -> None:
    env = {
        **os.environ,
        "_MMS_COMPLETE": "complete_bash",
        "COMP_WORDS": "mms qu",
        "COMP_CWORD": "1",
    }
    cmd = MMS
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    assert "query" in out.split()
    env.update(COMP_WORDS="mms query --for", COMP_CWORD="2")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env).stdout
    assert "--format" in out.split()
