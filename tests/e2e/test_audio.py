"""Audio: decoding and tags, YAMNet sound tags and embeddings, Whisper transcripts.

Real files from sample_data/ and the real packaged models. YAMNet comes from a pinned
PyPI wheel; without network access to PyPI those tests are skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.decoders.audio import (
    iter_windows,
    load,
    probe,
    sound_items,
)
from mmsearch_cli.embedders.yamnet import (
    AudioEmbedder,
    SoundTagEmbedder,
    YamnetModel,
    speech_score,
)
from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.items import MediaItem
from mmsearch_cli.models import wheels
from mmsearch_cli.models.whisper import Transcriber
from tests.conftest import SAMPLE

ANIMALS = sorted((SAMPLE / "audio" / "animals").glob("*.mp3"))
SPEECH = SAMPLE / "audio" / "speech"
CORRUPT = SAMPLE / "broken" / "corrupt_header.wav"


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MMS_MODEL_DIR (conftest sets one) with YAMNet fetched into it."""
    env = os.environ.get("MMS_MODEL_DIR")
    path = Path(env) if env else tmp_path_factory.mktemp("models")
    try:
        wheels.fetch(path, "yamnet-int8")
    except ModelUnavailableError as exc:
        if "could not download" in exc.message:
            pytest.skip(f"YAMNet wheel not downloadable (no PyPI access?): {exc}")
        raise
    return path


@pytest.fixture(scope="session")
def yamnet(model_dir: Path) -> YamnetModel:
    return YamnetModel(model_dir=model_dir)


@pytest.fixture(scope="session")
def tagger(model_dir: Path, yamnet: YamnetModel) -> SoundTagEmbedder:
    return SoundTagEmbedder(model_dir=model_dir, yamnet=yamnet)


@pytest.fixture(scope="session")
def audio_embedder(model_dir: Path, yamnet: YamnetModel) -> AudioEmbedder:
    return AudioEmbedder(model_dir=model_dir, yamnet=yamnet)


@pytest.fixture(scope="session")
def animal_items() -> dict[str, MediaItem]:
    """One item per animal: each clip is under 10 s, so one window each."""
    return {path.stem: next(sound_items(path)) for path in ANIMALS}


@pytest.fixture(scope="session")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    return Transcriber(tmp_path_factory.mktemp("whisper"), model="tiny.en")


# --- decoding ---------------------------------------------------------------------------


# --- YAMNet -----------------------------------------------------------------------------


def test_yamnet_outputs_scores_and_embeddings(
    yamnet: YamnetModel, animal_items: dict[str, MediaItem]
) -> None:
    scores, embeddings = yamnet.analyse(animal_items["cow"].payload)
    assert scores.shape[1] == 521 and embeddings.shape == (len(scores), 1024)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    speech, _ = yamnet.analyse(next(iter_windows(SPEECH / "navigation.wav"))[1])
    assert speech_score(speech) > 0.9 > speech_score(scores)


def test_dog_tags_include_dog_or_bark(
    tagger: SoundTagEmbedder, animal_items: dict[str, MediaItem]
) -> None:
    (dog,) = tagger.embed([animal_items["dog"]])
    top3 = [name.lower() for name, _ in dog.why["tags"][:3]]
    assert any("dog" in n or "bark" in n or "bow-wow" in n for n in top3), dog.why
    assert len(dog.why["tags"]) == 5
    assert dog.vector.shape == (384,) and abs(np.linalg.norm(dog.vector) - 1) < 1e-5


def test_text_query_finds_the_barking_dog(
    tagger: SoundTagEmbedder, animal_items: dict[str, MediaItem]
) -> None:
    names = list(animal_items)
    vectors = np.stack([e.vector for e in tagger.embed(list(animal_items.values()))])
    query = tagger.embed_query_text("a dog barking")
    assert names[int(np.argmax(vectors @ query))] == "dog"


def test_embedders_share_one_yamnet_pass(
    tagger: SoundTagEmbedder, audio_embedder: AudioEmbedder
) -> None:
    item = next(sound_items(SAMPLE / "audio" / "animals" / "frog.mp3"))
    (tags,) = tagger.embed([item])
    memo = item.memo["yamnet"]
    (sound,) = audio_embedder.embed([item])
    assert item.memo["yamnet"] is memo
    assert sound.vector.shape == (1024,) and abs(np.linalg.norm(sound.vector) - 1) < 1e-5
    assert tags.vector.shape == (384,)
    assert sound.why["tags"] == tags.why["tags"][:3]  # same scores, same pooling


@pytest.mark.parametrize("animal", ["dog", "duck", "frog", "pig"])
def test_audio_window_finds_its_own_recording(audio_embedder: AudioEmbedder, animal: str) -> None:
    # Non-overlapping 2 s windows of all ten animals; the query is the first window.
    windows = [(p.stem, it) for p in ANIMALS for it in sound_items(p, window_s=2.0)]
    vectors = np.stack([e.vector for e in audio_embedder.embed([it for _, it in windows])])
    query = next(i for i, (name, _) in enumerate(windows) if name == animal)
    sims = vectors @ vectors[query]
    sims[query] = -np.inf
    assert windows[int(np.argmax(sims))][0] == animal


# --- Whisper ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clip", "phrase"),
    [
        ("weather.wav", "heavy rain in the north this morning"),
        ("diy.wav", "tap it gently with a hammer"),
    ],
)
def test_transcript_contains_the_spoken_phrase(
    transcriber: Transcriber, clip: str, phrase: str
) -> None:
    segments = transcriber.transcribe(load(SPEECH / clip))
    heard = set(_words(" ".join(s.text for s in segments)))
    wanted = _words(phrase)
    assert sum(w in heard for w in wanted) >= 0.8 * len(wanted), segments
    duration = probe(SPEECH / clip).duration
    assert all(0 <= s.start < s.end <= duration + 0.5 for s in segments)


def test_animal_sounds_give_no_transcript(transcriber: Transcriber) -> None:
    said = {p.stem: transcriber.transcribe(load(p)) for p in ANIMALS}
    assert said == {p.stem: [] for p in ANIMALS}
