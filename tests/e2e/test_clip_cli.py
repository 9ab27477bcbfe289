"""A CLIP space end to end through `mms`, on a tiny randomly initialised CLIP built here."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import copy_tree, invoke, mms_process
from tests.support.clip_fixture import build_tiny_clip

FILES = ["images/tools/hammer1.webp", "images/fishes/fish1.webp", "text/hand_tools.md"]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip")


def test_clip_space_is_indexed_recorded_reloaded_and_guarded(
    tiny_clip: Path, tmp_path: Path
) -> None:
    root = copy_tree(FILES, tmp_path / "media")
    index = tmp_path / "index"
    res = invoke("index", root, "--index", index, "--model", tiny_clip, "--json", "-q")
    assert res.code == 0, res.err
    info = json.loads(invoke("info", "--index", index, "--json").out)
    spaces = {s["name"]: s for s in info["spaces"]}
    assert "clip:tiny-clip" in spaces and {"text", "visual"} <= set(spaces)  # builtin stays
    clip = spaces["clip:tiny-clip"]
    assert clip["vectors"] >= 3 and clip["options"]["model"] == str(tiny_clip)
    fingerprint = clip["fingerprints"]["st-clip"]
    assert fingerprint["dim"] == clip["dim"] and fingerprint.get("content_sha256")

    # Queries load the recorded model by themselves; --space restricts to it.
    res = invoke("query", "a hammer", "--space", "clip:tiny-clip", "--format", "jsonl",
                 "--index", index)  # fmt: skip
    rows = [json.loads(x) for x in res.out.splitlines()]
    assert res.code == 0 and len(rows) == 3
    assert all(set(r["spaces"]) == {"clip:tiny-clip"} for r in rows)
    both = [json.loads(x) for x in invoke("query", "a hammer", "--format", "jsonl",
                                          "--index", index).out.splitlines()]  # fmt: skip
    assert any("clip:tiny-clip" in r["spaces"] and "text" in r["spaces"] for r in both)

    # A re-run without --model keeps the index's own spaces: nothing to embed.
    again = json.loads(invoke("index", root, "--index", index, "--json", "-q").out)
    assert again["unchanged"] == 3 and again["segments_embedded"] == 0

    # Other weights in the same folder: refused, never mixed.
    shutil.rmtree(tiny_clip)
    build_tiny_clip(tiny_clip, seed=1)
    # (fresh processes: one process keeps the model it loaded)
    proc = mms_process("query", "a hammer", "--index", index)
    assert proc.returncode == 8 and b"re-index" in proc.stderr, proc.stderr
    assert mms_process("index", root, "--index", index).returncode == 8
    shutil.rmtree(tiny_clip)
    build_tiny_clip(tiny_clip, seed=0)  # restore for other tests


def test_an_uncached_hub_model_offline_is_one_clean_line(tmp_path: Path) -> None:
    root = copy_tree(FILES[:1], tmp_path / "media")
    res = invoke("index", root, "--index", tmp_path / "i", "--model", "nobody/no-such-clip",
                 env={"HF_HUB_OFFLINE": "1"})  # fmt: skip
    assert res.code == 7, res.err
    assert res.err.count("\n") == 1 and "Traceback" not in res.err
    assert "offline" in res.err or "not available" in res.err
