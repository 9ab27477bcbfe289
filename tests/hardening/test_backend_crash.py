"""The kill harness against the PostgreSQL backend (``benchmarks/crash_loop_backend.py``):
`mms index --backend` SIGKILLed at random moments (embedding, committing locally,
publishing), and the database ends identical in content to a clean run's. Three kills
here; the issue's twenty in the slow test and in the benchmark."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT


def _harness() -> Any:  # benchmarks/ is not a package
    spec = importlib.util.spec_from_file_location(
        "crash_loop_backend", ROOT / "benchmarks/crash_loop_backend.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_loop_backend"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _loop(pg_server: Any, tmp_path: Path, kills: int, seed: int, **more: Any) -> None:
    harness = _harness()
    made: list[str] = []

    def make_db(name: str) -> str:
        made.append(pg_server.new_database(name))
        return made[-1]

    tally, diffs, strict = harness.crash_loop(kills, tmp_path, make_db, seed=seed,
                                              log=lambda _: None, **more)  # fmt: skip
    assert tally.kills == kills and tally.recoveries == kills, tally
    assert not tally.problems, tally.problems
    assert not diffs and not strict, (diffs, strict)
    held = harness.content(made[0])
    files = [v for k, v in held.items() if isinstance(k, tuple)]
    assert len(files) >= 5 and any(seg["postings"] for f in files for seg in f["segments"])


def test_a_short_kill_loop_against_the_backend_ends_as_a_clean_run(
    pg_server: Any, tmp_path: Path
) -> None:
    _loop(pg_server, tmp_path, 3, seed=5, n_images=2, n_texts=6)


@pytest.mark.slow
def test_twenty_kills_against_the_backend_end_as_a_clean_run(
    pg_server: Any, tmp_path: Path
) -> None:
    _loop(pg_server, tmp_path, 20, seed=1, n_images=10)
