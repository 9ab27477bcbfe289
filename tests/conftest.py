"""Shared fixtures: the real packaged models, sample_data indexes, and a CLI runner."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The `mms` command as a process, for tests that need real exit codes and signals.
MMS = [sys.executable, "-m", "mmsearch_cli"]
SAMPLE = ROOT / "sample_data"
CORPUS = ROOT.parent / "shared" / "corpus"

os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
# Where the packaged models are (tests/e2e and tests/hardening read them; tests/unit must not).
MODEL_DIR = Path(os.environ["MMS_MODEL_DIR"]).expanduser()
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("MMS_INDEX", None)
os.environ.pop("MMS_CONFIG", None)


@dataclass
class Result:
    code: int
    out: bytes
    err: str

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "surrogateescape")


def invoke(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> Result:
    """Run ``mms`` in-process (models stay loaded between calls), capturing stdout bytes."""
    from mmsearch_cli.cli.app import run

    out, err = io.BytesIO(), io.BytesIO()
    w_out = io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", write_through=True)
    w_err = io.TextIOWrapper(err, encoding="utf-8", errors="replace", write_through=True)
    with (
        mock.patch.object(sys, "stdout", w_out),
        mock.patch.object(sys, "stderr", w_err),
        mock.patch.dict(os.environ, env or {}),
    ):
        code = run([os.fspath(a) for a in args])
        w_out.flush()
        w_err.flush()
    return Result(int(code), out.getvalue(), err.getvalue().decode())


def mms_process(
    *args: str | os.PathLike[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[bytes]:
    """Run ``mms`` as a real process: real exit codes, real stdout/stderr separation."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*MMS, *map(os.fspath, args)], capture_output=True, env=full_env, timeout=timeout
    )


def copy_tree(names: list[str], dest: Path) -> Path:
    """Copy files from sample_data (relative names) into dest, keeping their folders."""
    for name in names:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SAMPLE / name, target)
    return dest


@pytest.fixture(scope="session")
def sample_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """sample_data/ indexed once per session with the builtin profile: (root, index_dir)."""
    index_dir = tmp_path_factory.mktemp("sample-index")
    res = invoke("index", SAMPLE, "--index", index_dir, "--json", "-q")
    assert res.code in (0, 6), res.err  # 6: partial (sample_data/broken fails by design)
    yield SAMPLE, index_dir


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Record (and refuse) every attempt to resolve a host or open a connection."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise RuntimeError("network access attempted")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    yield attempts


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A real PostgreSQL (with pgvector) from the pgserver wheel, for the whole session; run
    as an unprivileged user when we are root (``tests/support/pg.py``). Each test makes
    its own database with ``pg_server.new_database()``."""
    from tests.support.pg import pg_bin
    from tests.support.pg import pg_server as start

    if pg_bin() is None:
        pytest.skip("the pgserver wheel is not installed (pip install -e '.[dev]')")
    with start() as server:
        yield server
