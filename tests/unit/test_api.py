"""`import mmsearch_cli` is the Python API alone: the CLI stack stays out."""

from __future__ import annotations

import subprocess
import sys


def test_the_library_does_not_import_the_cli_stack() -> None:
    code = "import sys, mmsearch_cli; print(any(m in sys.modules for m in ('typer', 'rich')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "False"
