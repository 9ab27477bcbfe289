"""`mms models`: what is installed, fetched or cached, with sizes, licences and dims."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import invoke


def test_models_lists_embedders_assets_hub_models_and_profiles(tmp_path: Path) -> None:
    res = invoke("models", "--json")
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in json.loads(res.out)}
    assert rows["minilm"]["dim"] == 384 and rows["minilm"]["available"]
    assert rows["effnet-lite0-features"]["dim"] == 1280
    assert rows["reranker-ms-marco-minilm-l12-int8"]["available"]
    assert rows["reranker-ms-marco-minilm-l12-int8"]["bytes"] > 10_000_000
    assert {"profile:builtin", "profile:clip", "profile:clip-only"} <= set(rows)
    # A hub model copied into the cache (the air-gapped route) is listed as such.
    snap = tmp_path / "hub/models--sentence-transformers--clip-ViT-B-32/snapshots/abc"
    snap.mkdir(parents=True)
    (snap / "config.json").write_text("{}")
    res = invoke("models", "--json", env={"MMS_MODEL_DIR": str(tmp_path)})
    listed = {r["name"]: r for r in json.loads(res.out)}
    assert listed["sentence-transformers/clip-ViT-B-32"]["kind"] == "hub-model"
    assert not listed["reranker-ms-marco-minilm-l12-int8"]["available"]  # not fetched there
