"""Where models come from, without fetching any: hub downloads skip shadowed weights, and
an unfetched Whisper model says how to get it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmsearch_cli.decoders.audio import load
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models import hub
from mmsearch_cli.models.whisper import Transcriber
from tests.conftest import SAMPLE


def test_download_skips_bins_shadowed_by_safetensors():
    files = [
        "0_CLIPModel/pytorch_model.bin",
        "0_CLIPModel/model.safetensors",
        "pytorch_model.bin",
        "2_Dense/pytorch_model.bin",
        "2_Dense/model.safetensors",
    ]
    assert sorted(hub.shadowed_bins(files)) == [
        "0_CLIPModel/pytorch_model.bin",
        "2_Dense/pytorch_model.bin",
    ]


def test_base_model_without_fetch_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="mms models fetch"):
        Transcriber(tmp_path, model="base").transcribe(
            load(SAMPLE / "audio" / "speech" / "navigation.wav")
        )
