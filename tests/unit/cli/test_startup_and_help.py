"""`mms --version` and `--help` stay cheap (their timings: benchmarks/cli_startup.py),
and help names values by what they are, never by a Python type."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import invoke


def imported(*args: str, cache: Path | None = None) -> set[str]:
    """Modules a `mms ARGS` process imports (python -X importtime); ``cache``: its
    XDG_CACHE_HOME."""
    code = f"import sys; from mmsearch_cli.cli.app import run; sys.exit(run({list(args)!r}))"
    env = {**os.environ, **({"XDG_CACHE_HOME": str(cache)} if cache else {})}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code],
                          capture_output=True, text=True, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if "|" in line}


def test_version_is_answered_before_typer_rich_or_the_library_load() -> None:
    modules = imported("--version")
    assert not modules & {"typer", "click", "rich", "mmsearch_cli.api", "platformdirs"}


@pytest.mark.parametrize("args", [["--help"], ["query", "--help"], ["models", "fetch", "-h"]])
def test_help_loads_no_numpy_rich_or_models(args: list[str], tmp_path: Path) -> None:
    modules = imported(*args, cache=tmp_path)  # an empty cache: the help is made
    assert "typer" in modules
    assert not modules & {"numpy", "rich", "onnxruntime", "torch", "PIL", "textual_image"}


def test_the_package_imports_its_api_on_first_use() -> None:
    code = (
        "import sys, mmsearch_cli as m; assert 'mmsearch_cli.api' not in sys.modules; "
        "assert m.query is sys.modules['mmsearch_cli.api'].query; print(m.__version__)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr


def commands() -> list[list[str]]:
    """Every command and group, walked from the app itself (a new one is checked too)."""
    import typer.main

    from mmsearch_cli.cli.commands import app

    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        found.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


PYTHON_TYPES = re.compile(r"<(str|int|float|bool|path|file|directory|[a-z ]*range)>|"
                          r"\[[A-Z][a-z]+\]|list\[|dict\[|<class|typing\.|NoneType")  # fmt: skip


def test_every_help_shows_readable_value_names() -> None:
    paths = commands()
    assert ["query"] in paths and ["models", "fetch"] in paths and ["serve", "stop"] in paths
    for path in paths:
        res = invoke(*path, "--help", env={"COLUMNS": "100"})
        assert res.code == 0, (path, res.err)
        assert not PYTHON_TYPES.search(res.text), (path, PYTHON_TYPES.search(res.text), res.text)
        for line in res.text.splitlines():  # every option that takes a value names it
            if m := re.match(r"\s+(-\w, )?--[\w-]+ ([^\s/]+)\s", line):
                name = m.group(2)  # FILE, auto|SCORE, or choices as <a|b>
                assert re.search("[A-Z]", name) or name.startswith("<"), (path, line)


def test_query_help_names_dates_sizes_and_files() -> None:
    text = invoke("query", "--help", env={"COLUMNS": "100"}).text
    for option in ("--after DATE", "--max-size SIZE", "--image FILE", "-k, --top N",
                   "--format FORMAT", "--index DIR", "--path GLOB"):  # fmt: skip
        assert option in text, option


def test_help_read_back_from_the_cache_is_the_help_made_afresh(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path), "COLUMNS": "90"}
    for path in [[], *commands()]:
        fresh = invoke(*path, "--help", "--debug", env=env)  # --debug: never cached
        first = invoke(*path, "--help", env=env)
        again = invoke(*path, "--help", env=env)
        assert fresh.code == first.code == again.code == 0
        assert fresh.out == first.out == again.out, path
    assert invoke(env=env).out == invoke("--help", env=env).out  # `mms` alone
    entries = list((tmp_path / "mms" / "help").glob("*/*.txt"))
    assert len(entries) == len(commands()) + 1  # `mms` alone and `mms --help` differ in key
    narrow = invoke("query", "--help", env={**env, "COLUMNS": "60"}).text
    assert max(map(len, narrow.splitlines())) <= 60  # another width, another entry


def test_cached_help_imports_no_typer_and_old_entries_are_dropped(tmp_path: Path) -> None:
    stale = tmp_path / "mms" / "help" / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "old.txt").write_text("help of another version")
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert invoke("query", "--help", env=env).code == 0
    assert not stale.exists()
    assert "typer" not in imported("query", "--help", cache=tmp_path)


def test_errors_and_completion_requests_are_not_cached(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert invoke("nosuchcommand", "--help", env=env).code == 2
    assert invoke("query", "--top", "-h", env=env).code == 2  # -h is --top's value here
    assert not list(tmp_path.glob("mms/help/*/*.txt"))
