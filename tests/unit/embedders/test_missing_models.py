"""Embedders without their model files: one clean error that says how to get them, and no
network access offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch_cli.decoders.audio import sound_items
from mmsearch_cli.embedders.clip import SentenceTransformersImageTextEmbedder
from mmsearch_cli.embedders.yamnet import AudioEmbedder
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models import hub
from tests.conftest import SAMPLE

CAT = SAMPLE / "audio" / "animals" / "cat.mp3"


def clip(model: str | Path, model_dir: Path) -> SentenceTransformersImageTextEmbedder:
    return SentenceTransformersImageTextEmbedder(str(model), model_dir=model_dir)


def test_missing_yamnet_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="mms models fetch"):
        AudioEmbedder(model_dir=tmp_path).embed([next(sound_items(CAT))])


def test_uncached_hub_id_offline_is_a_clean_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[object]
):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "user-hf-cache"))
    emb = clip("clip-ViT-B-32", tmp_path / "models")  # constructing costs nothing
    assert emb.space == "clip:clip-ViT-B-32"
    with pytest.raises(ModelUnavailableError) as err:
        emb.embed_query_text("a cat")
    assert "model 'clip-ViT-B-32' is not available offline" in err.value.message
    assert err.value.hint is not None
    assert "mms models download clip-ViT-B-32" in err.value.hint
    assert str(tmp_path / "models" / "hub") in err.value.hint
    assert "\n" not in str(err.value)
    # Even when downloads are allowed, HF_HUB_OFFLINE wins.
    with pytest.raises(ModelUnavailableError):
        hub.resolve_model("google/siglip-base-patch16-224", cache_dir=tmp_path, allow_download=True)
    assert no_network == []


def test_missing_local_folder_is_a_clean_error(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        clip(tmp_path / "nope", tmp_path).embed_query_text("x")
