"""Hand-edited manifests that are valid JSON with wrong types (issue 20, defect 4): every
command gives one line and exit 3 with the doctor's hint, and `mms doctor --repair`
rewrites the manifest from the database, which holds the truth."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_tree
from tests.hardening.bounded import invoke

EDITS: dict[str, Callable[[dict[str, Any]], object]] = {
    "generation is text": lambda d: d.update(generation="x"),
    "negative next_id": lambda d: d.update(next_id=-5),
    "huge next_id": lambda d: d.update(next_id=10**30),
    "roots as an object": lambda d: d.update(roots={"a": 1}),
    "spaces as a list": lambda d: d.update(spaces=[1, 2]),
    "dim as text": lambda d: d["spaces"]["text"].update(dim="384"),
    "another database": lambda d: d.update(database="../../etc/passwd"),
    "schema as text": lambda d: d.update(schema="2"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("manifest-edits")
    lib = copy_tree(["text/owls.txt", "text/frogs.txt"], base / "lib")
    index = base / "index"
    assert invoke("index", lib, "--index", index, "-q").code == 0
    return lib, index


@pytest.mark.parametrize("edit", [*EDITS, "nested 100,000 deep"])
def test_a_hand_edited_manifest_is_damage_that_doctor_repairs(
    pristine: tuple[Path, Path], tmp_path: Path, edit: str
) -> None:
    lib, clean = pristine
    index = tmp_path / "index"
    shutil.copytree(clean, index)
    sidecar = index / "sidecar.json"
    if edit in EDITS:
        data = json.loads(sidecar.read_text())
        EDITS[edit](data)
        sidecar.write_text(json.dumps(data))
    else:
        sidecar.write_text("[" * 100_000 + "]" * 100_000)
    for args in (["info"], ["query", "owls", "-k", "1"], ["index", str(lib), "-q"]):
        res = invoke(*args, "--index", index)
        assert res.code == 3, (edit, args, res.err)
        assert res.err.count("\n") == 1 and "mms doctor" in res.err and "Traceback" not in res.err
    assert invoke("doctor", "--index", index).code == 3
    assert invoke("doctor", "--repair", "--index", index).code == 0
    found = invoke("query", "owls", "-k", "1", "--index", index, "-f", "paths")
    assert found.code == 0 and found.text.strip().endswith("owls.txt")


def test_a_field_that_disagrees_with_the_database_is_reported(
    pristine: tuple[Path, Path], tmp_path: Path
) -> None:
    _, clean = pristine
    index = tmp_path / "index"
    shutil.copytree(clean, index)
    data = json.loads((index / "sidecar.json").read_text())
    data["profile"] = "clip"  # a valid value, but not the index's
    (index / "sidecar.json").write_text(json.dumps(data))
    res = invoke("doctor", "--index", index)
    assert res.code == 3 and "profile differ from the database" in res.text
    assert invoke("doctor", "--repair", "--index", index).code == 0
    assert json.loads((index / "sidecar.json").read_text())["profile"] == "builtin"
