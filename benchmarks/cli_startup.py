"""Start-up cost of the `mms` command: what a user pays for `--version` and `--help`.

    python benchmarks/cli_startup.py [--runs 20]

Times whole processes of the installed `mms` script (next to this Python) and prints a
markdown table: median and p90 wall milliseconds per command, and the ratio to
``python -c pass`` timed in the same run (the machine is shared, so the reference moves
with the load). Runs are interleaved so a burst of load hits every command alike. Goal
(issue 18): `mms --version` and `mms --help` at most 150 ms.

Help is timed twice: read back from the help cache (``cli/helpcache.py``; every run after
the first for a given code and width), and made afresh (a cache miss: the first run after
an install or upgrade, or with ``--debug``), each run then with an empty cache folder.
The runs get their own ``XDG_CACHE_HOME`` (your cache is not touched) and their own
``PYTHONPYCACHEPREFIX`` without ``PYTHONDONTWRITEBYTECODE``: bytecode is cached as an
installed package has it (pip compiles on install), or every run would compile our
sources again (~30 ms for ``--help``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [
    ["--version"],
    ["--help"],
    ["query", "--help"],
    ["index", "--help"],
    ["models", "fetch", "--help"],
]


def mms_script() -> list[str]:
    beside = Path(sys.executable).parent / "mms"
    found = str(beside) if beside.is_file() else shutil.which("mms")
    return [found] if found else [sys.executable, "-m", "mmsearch_cli"]


def wall(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="mms-bench-startup-"))
    env = {**os.environ, "COLUMNS": "80", "PYTHONPYCACHEPREFIX": str(scratch / "pycache"),
           "XDG_CACHE_HOME": str(scratch / "cache")}  # fmt: skip
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    mms = mms_script()
    cases: dict[str, tuple[list[str], bool]] = {
        "python -c pass": ([sys.executable, "-c", "pass"], False)
    }
    for c in COMMANDS:
        name = " ".join(["mms", *c])
        cases[name + (" (cached)" if "--help" in c else "")] = ([*mms, *c], False)
        if "--help" in c:
            cases[name + " (first run)"] = ([*mms, *c], True)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for cmd, _ in cases.values():  # warm the page cache and the help cache; not counted
        wall(cmd, env)
    for run in range(args.runs):
        for name, (cmd, fresh) in cases.items():
            fresh_env = {**env, "XDG_CACHE_HOME": str(scratch / f"fresh-{run}")}
            times[name].append(wall(cmd, fresh_env if fresh else env))
    ref = statistics.median(times["python -c pass"])
    print(f"`{' '.join(mms)}`, {args.runs} runs each, interleaved\n")
    print("| command | median ms | p90 ms | × python -c pass |")
    print("|---|---:|---:|---:|")
    for name, values in times.items():
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        med = statistics.median(values)
        print(f"| `{name}` | {med:.0f} | {p90:.0f} | {med / ref:.1f} |")
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
