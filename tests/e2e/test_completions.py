"""Shell completions come from the running `mms` command, as a shell asks for them."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import MMS


def test_bash_completion_offers_the_commands_and_options() -> None:
    env = {
        **os.environ,
        "_MMS_COMPLETE": "complete_bash",
        "COMP_WORDS": "mms qu",
        "COMP_CWORD": "1",
    }
    out = subprocess.run(MMS, capture_output=True, text=True, env=env).stdout
    assert "query" in out.split()
    env.update(COMP_WORDS="mms query --for", COMP_CWORD="2")
    out = subprocess.run(MMS, capture_output=True, text=True, env=env).stdout
    assert "--format" in out.split()
