"""Choosing a cross-encoder, and what it does without its model: no passages need none,
missing ones fail in one line offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.rerank.crossencoder import (
    OnnxCrossEncoder,
    SentenceTransformersCrossEncoder,
    get_reranker,
)

QUERY = "how do I measure voltage"


def test_no_passages_needs_no_model(tmp_path: Path) -> None:
    empty = OnnxCrossEncoder(tmp_path)  # nothing fetched here
    assert empty.score(QUERY, []).shape == (0,)
    with pytest.raises(ModelUnavailableError, match="mms models fetch"):
        empty.score(QUERY, ["a passage"])


def test_get_reranker_dispatch(tmp_path: Path) -> None:
    assert isinstance(get_reranker(None, tmp_path), OnnxCrossEncoder)
    assert isinstance(get_reranker("default", tmp_path), OnnxCrossEncoder)
    other = get_reranker(str(tmp_path), tmp_path)
    assert isinstance(other, SentenceTransformersCrossEncoder)
    assert other.name == str(tmp_path)


def test_unknown_model_offline_is_a_clean_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for spec in ("no-such-org/no-such-cross-encoder", str(tmp_path / "missing")):
        with pytest.raises(ModelUnavailableError) as info:
            get_reranker(spec, tmp_path).score(QUERY, ["a passage"])
        assert "\n" not in str(info.value) and info.value.hint
