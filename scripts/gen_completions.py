"""Write completions/ for bash, zsh and fish from the typer app (``--check``: fail if stale).

Usage: python scripts/gen_completions.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

from typer.completion import get_completion_script

OUT = Path(__file__).resolve().parent.parent / "completions"
SHELLS = {"bash": "mms.bash", "zsh": "_mms", "fish": "mms.fish"}


def generate() -> dict[str, str]:
    return {
        name: get_completion_script(prog_name="mms", complete_var="_MMS_COMPLETE", shell=shell)
        for shell, name in SHELLS.items()
    }


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for name, text in generate().items():
        path = OUT / name
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            OUT.mkdir(exist_ok=True)
            path.write_text(text)
    if stale:
        print(f"stale completions: {', '.join(stale)}; run python scripts/gen_completions.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
