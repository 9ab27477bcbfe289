"""Nothing is skipped silently: extensionless notes are sniffed and indexed as text, other
files are counted as unsupported by type (summary and `mms info`), and naming one
directly is a usage error. Sniffing's answers are remembered: an unchanged tree is not
read again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from unittest import mock

from mmsearch_cli.indexing import sniff
from tests.conftest import invoke

NOTE = "Release notes\n\nThis release fixes the frobnicator crash when the cache is cold.\n"


def _tree(root: Path) -> Path:
    root.mkdir()
    (root / "NEWS").write_text(NOTE)
    (root / "RECIPE").write_bytes("Café au lait with cardamom, the recipe.\n".encode("cp1252"))
    shutil.copy("/bin/true", root / "runme")  # an extensionless program
    (root / "data.xyz").write_text("x")
    (root / "table.parquet").write_bytes(b"PAR1\x00\x01")
    return root


def test_extensionless_text_is_indexed_and_the_rest_counted(tmp_path: Path) -> None:
    root, index = _tree(tmp_path / "notes"), tmp_path / "index"
    res = invoke("index", root, "--index", index, "--json", "-q")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["embedded_by_modality"] == {"text": 2}
    assert summary["unsupported_by_type"] == {"without extension": 1, ".xyz": 1, ".parquet": 1}
    found = invoke("query", "frobnicator crash", "--index", index, "--no-server",
                   "--format", "paths", "-k", "1")  # fmt: skip
    assert found.text.strip() == str(root / "NEWS")
    info = json.loads(invoke("info", "--index", index, "--json").out)
    assert info["unsupported_by_type"]["without extension"] == 1
    table = invoke("info", "--index", index).text
    assert "skipped    3 unsupported: 1 .parquet, 1 .xyz, 1 without extension" in table
    text_run = invoke("index", root, "--index", index)  # nothing changed: silent
    assert text_run.code == 0 and "unsupported" not in text_run.err


def test_an_unchanged_tree_is_not_sniffed_again(tmp_path: Path) -> None:
    root, index = _tree(tmp_path / "notes"), tmp_path / "index"
    assert invoke("index", root, "--index", index, "-q").code == 0
    with mock.patch.object(sniff, "looks_like_text", side_effect=AssertionError("read")):
        again = invoke("index", root, "--index", index, "--json", "-q")
    assert again.code == 0, again.err
    assert json.loads(again.out)["unchanged"] == 2
    (root / "runme").write_text("now a note about the frobnicator\n")  # changed: sniffed
    third = json.loads(invoke("index", root, "--index", index, "--json", "-q").out)
    assert third["added"] == 1 and "without extension" not in third["unsupported_by_type"]


def test_naming_an_unsupported_file_is_a_usage_error(tmp_path: Path) -> None:
    root, index = _tree(tmp_path / "notes"), tmp_path / "index"
    for name, words in (("data.xyz", ".xyz files"), ("runme", "without an extension")):
        res = invoke("index", root / name, "--index", index)
        assert res.code == 2 and words in res.err, res.err
        assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert invoke("index", root / "NEWS", "--index", index, "-q").code == 0


def test_indexing_one_root_keeps_what_another_root_taught(tmp_path: Path) -> None:
    """Sniffing answers are kept per root: a run over another root (or a watcher's batch)
    does not make the first root's binaries be read again."""
    first, second, index = _tree(tmp_path / "a"), tmp_path / "b", tmp_path / "index"
    second.mkdir()
    (second / "TODO").write_text("buy milk\n")
    assert invoke("index", first, "--index", index, "-q").code == 0
    assert invoke("index", second, "--index", index, "-q").code == 0
    with mock.patch.object(sniff, "looks_like_text", side_effect=AssertionError("read")):
        again = invoke("index", first, "--index", index, "--json", "-q")
    assert again.code == 0, again.err
