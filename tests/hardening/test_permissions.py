"""Files another user owns are not damage (issue 20, defect 2): `mms doctor` says so,
exits 3, and `--repair` leaves them alone. Run as a real other user (`setpriv`), since
root reads everything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, copy_tree, invoke

NOBODY = 65534


def _nobody_can_run_mms() -> bool:
    """The checkout must be readable by nobody: a clone made in a ``mktemp -d`` folder
    (mode 0700) is not, and every run as nobody would fail to import the package."""
    path = ROOT
    while path != path.parent:
        if not os.stat(path).st_mode & 0o001:  # others may not enter it
            return False
        path = path.parent
    return True


pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
    ),
    pytest.mark.skipif(
        not _nobody_can_run_mms(),
        reason="the checkout is not readable by other users (a mode-0700 folder)",
    ),
]


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
           sys.executable, "-m", "mmsearch_cli", *args]  # fmt: skip
    env = {**os.environ, "HOME": "/tmp", "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def nobodys_index() -> Iterator[Path]:
    """An index owned by nobody, in a folder nobody can reach."""
    base = Path(tempfile.mkdtemp(prefix="mms-perm-"))
    base.chmod(0o755)
    lib = copy_tree(["text/owls.txt", "images/tools/hammer1.webp"], base / "lib")
    index = base / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    for path in [index, *index.rglob("*")]:
        os.chown(path, NOBODY, NOBODY)
    yield index
    shutil.rmtree(base)


def test_a_vector_file_of_another_owner_is_reported_not_repaired(nobodys_index: Path) -> None:
    index = nobodys_index
    vec = sorted((index / "spaces").glob("*.vec"))[0]
    os.chown(vec, 0, 0)
    vec.chmod(0o600)
    before = vec.read_bytes()
    for args in (["doctor", "--index", str(index)], ["doctor", "--repair", "--index", str(index)]):
        res = as_nobody(*args)
        assert res.returncode == 3, res.stdout + res.stderr
        assert "may not read spaces/" in res.stdout and "not damage" in res.stdout
        assert "Traceback" not in res.stderr and "DAMAGED" not in res.stdout
    assert vec.read_bytes() == before  # untouched
    os.chown(vec, NOBODY, NOBODY)
    healthy = as_nobody("doctor", "--index", str(index))
    assert healthy.returncode == 0 and "healthy" in healthy.stdout


def test_an_unreadable_manifest_is_one_line_exit_3(nobodys_index: Path) -> None:
    sidecar = nobodys_index / "sidecar.json"
    os.chown(sidecar, 0, 0)
    sidecar.chmod(0o600)
    res = as_nobody("doctor", "--index", str(nobodys_index))
    assert res.returncode == 3 and "may not read sidecar.json" in res.stdout
    assert "Traceback" not in res.stderr
    query = as_nobody("info", "--index", str(nobodys_index))
    assert query.returncode == 3 and "Traceback" not in query.stderr
    assert len(query.stderr.strip().splitlines()) == 1
