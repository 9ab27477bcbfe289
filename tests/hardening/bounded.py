"""Run ``mms`` as a real process bounded in time and memory (issue 20: every hardening case
within 60 s and 1.2 GB resident). The peak is the child's own VmHWM, reported as it
exits by either way out of ``main`` (ru_maxrss would start at the parent's size)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.conftest import Result

DEADLINE_S = 60  # every case of this file: a real process, bounded in time...
CEILING_MIB = 1200  # ...and in memory (issue 20)
# The console script's own entry point, reporting the process's peak (VmHWM: ru_maxrss
# would start at this test process's size) as it exits, on either way out of `main`.
BOUNDED = """
import os, sys
def report():
    with open('/proc/self/status') as fh:
        peak = next(l.split()[1] for l in fh if l.startswith('VmHWM'))
    with open(os.environ['MMS_TEST_PEAK'], 'w') as out:
        out.write(peak)
real_exit = os._exit
def exit_reporting(code):
    report()
    real_exit(code)
os._exit = exit_reporting
import atexit
atexit.register(report)
sys.argv[0] = 'mms'
from mmsearch_cli.cli.app import main
main()
"""


def mms(
    *args: str, env: dict[str, str] | None = None, **kw: object
) -> subprocess.CompletedProcess[bytes]:
    """``mms ARGS`` through the real entry point, within ``DEADLINE_S`` seconds and
    ``CEILING_MIB`` of resident memory (asserted)."""
    kw.setdefault("capture_output", True)
    with tempfile.NamedTemporaryFile(prefix="mms-peak-") as peak:
        full_env = {**os.environ, "MMS_NO_SERVER": "1", "MMS_TEST_PEAK": peak.name, **(env or {})}
        res = subprocess.run([sys.executable, "-c", BOUNDED, *args], env=full_env,
                             timeout=DEADLINE_S, check=False, **kw)  # type: ignore[call-overload]  # fmt: skip
        text = Path(peak.name).read_text().strip()
    if text:  # empty only if the process was killed before it could say
        assert int(text) / 1024 < CEILING_MIB, f"mms {' '.join(args)}: peak {text} KiB"
    return res  # type: ignore[no-any-return]


def invoke(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Result:
    """``tests.conftest.invoke``, but in a bounded process of its own."""
    res = mms(*map(os.fspath, args), env=env)
    return Result(res.returncode, res.stdout, res.stderr.decode("utf-8", "replace"))
