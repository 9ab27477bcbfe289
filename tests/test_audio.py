"""Audio: decoding and tags, YAMNet sound tags and embeddings, Whisper transcripts.

Real files from sample_data/ and the real packaged models. YAMNet comes from a pinned
PyPI wheel; without network access to PyPI those tests are skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.decoders.audio import (
    has_audio,
    iter_windows,
    load,
    probe,
    read_tags,
    sound_items,
)
from mmsearch_cli.embedders.yamnet import (
    AudioEmbedder,
    SoundTagEmbedder,
    YamnetModel,
    log_mel_patches,
    speech_score,
)
from mmsearch_cli.errors import MediaError, ModelUnavailableError
from mmsearch_cli.items import MediaItem
from mmsearch_cli.models import wheels as model_cache
from mmsearch_cli.models.whisper import Transcriber

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
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
        model_cache.fetch(path, "yamnet-int8")
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


def test_probe_reads_stream_info() -> None:
    dog = probe(SAMPLE / "audio" / "animals" / "dog.mp3")
    assert dog.sample_rate == 48000 and dog.channels == 1
    assert 5.9 < dog.duration < 6.1
    video = probe(SAMPLE / "video" / "bigbuckbunny.mp4")
    assert video.channels >= 1 and 5.0 < video.duration < 5.6


def test_tags_from_id3_vorbis_and_mp4(tmp_path: Path) -> None:
    import mutagen
    from mutagen.id3 import COMM, ID3, TIT2, TPE1

    mp3 = shutil.copy(SAMPLE / "audio" / "animals" / "rooster.mp3", tmp_path / "r.mp3")
    id3 = ID3(mp3)
    id3.add(TIT2(encoding=3, text="Dawn chorus"))
    id3.add(TPE1(encoding=3, text="A. Farmer"))
    id3.add(COMM(encoding=3, lang="eng", desc="", text="recorded at six"))
    id3.save()
    tags = probe(mp3).tags
    assert tags["title"] == "Dawn chorus" and tags["artist"] == "A. Farmer"
    # The rooster's own iTunNORM/iTunSMPB COMM frames are encoder data, not comments.
    assert tags["comment"] == "recorded at six"

    ogg = shutil.copy(SPEECH / "space.ogg", tmp_path / "s.ogg")
    vorbis = mutagen.File(ogg)
    vorbis["title"] = "Earth at night"
    vorbis["genre"] = "Documentary"
    vorbis.save()
    assert read_tags(ogg) == {"title": "Earth at night", "genre": "Documentary"}

    mp4 = shutil.copy(SAMPLE / "video" / "bigbuckbunny.mp4", tmp_path / "b.mp4")
    atoms = mutagen.File(mp4)
    atoms["\xa9nam"] = ["Big Buck Bunny"]
    atoms["\xa9cmt"] = ["(c) Blender Foundation"]
    atoms.save()
    assert read_tags(mp4) == {"title": "Big Buck Bunny", "comment": "(c) Blender Foundation"}


def test_corrupt_file_raises_media_error() -> None:
    with pytest.raises(MediaError) as probed:
        probe(CORRUPT)
    with pytest.raises(MediaError) as decoded:
        list(iter_windows(CORRUPT))
    for exc in (probed.value, decoded.value):
        assert "corrupt_header.wav" in str(exc) and "\n" not in str(exc)


def test_windows_cover_the_file() -> None:
    # weather.wav is 11.14 s: 5 s windows every 2.5 s, plus a tail with new audio.
    windows = list(iter_windows(SPEECH / "weather.wav", window_s=5.0, hop_s=2.5))
    assert [start for start, _ in windows] == [0.0, 2.5, 5.0, 7.5]
    assert all(w.dtype == np.float32 and w.ndim == 1 for _, w in windows)
    assert [len(w) for _, w in windows[:3]] == [80000] * 3
    assert abs(7.5 + len(windows[-1][1]) / 16000 - 11.14) < 0.05
    # A clip shorter than a window is one short window, resampled from 48 kHz.
    ((start, sheep),) = iter_windows(SAMPLE / "audio" / "animals" / "sheep.mp3")
    assert start == 0.0 and 0.85 < len(sheep) / 16000 < 0.95


def test_video_soundtrack_and_video_without_audio(tmp_path: Path) -> None:
    import av

    bunny = list(iter_windows(SAMPLE / "video" / "bigbuckbunny.mp4", window_s=2.0))
    assert len(bunny) == 3 and np.abs(bunny[0][1]).max() > 0.01
    # Remux earth.mp4's video stream alone: a file with no audio stream at all.
    silent = tmp_path / "video_only.mp4"
    with av.open(str(SAMPLE / "video" / "earth.mp4")) as src, av.open(str(silent), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    assert not has_audio(silent)
    assert list(iter_windows(silent)) == []


def test_long_file_streams_in_bounded_memory(tmp_path: Path) -> None:
    import soundfile as sf

    rate, minutes = 16000, 10
    path = tmp_path / "tone.wav"
    with sf.SoundFile(path, "w", rate, 1, subtype="PCM_16") as fh:
        t = np.arange(rate * 60) / rate
        for _ in range(minutes):
            fh.write((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32))
    tracemalloc.start()
    try:
        starts = []
        for start, window in iter_windows(path, window_s=10.0):
            starts.append(start)
            assert len(window) == 10 * rate
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert starts == [10.0 * i for i in range(minutes * 6)]
    whole = minutes * 60 * rate * 4  # the file as float32: 38 MB
    assert peak < whole / 10, f"peak {peak / 1e6:.1f} MB"
    # max_seconds stops decoding early.
    capped = list(iter_windows(path, window_s=10.0, max_seconds=25.0))
    assert [s for s, _ in capped] == [0.0, 10.0, 20.0] and len(capped[-1][1]) == 5 * rate


# --- YAMNet -----------------------------------------------------------------------------


def test_log_mel_patches_shape() -> None:
    assert log_mel_patches(np.zeros(8000, np.float32)).shape == (1, 1, 96, 64)
    # 10 s: 998 frames of 10 ms, patches of 96 every 48.
    assert log_mel_patches(np.zeros(160000, np.float32)).shape == (19, 1, 96, 64)


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


def test_missing_yamnet_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="mms models fetch"):
        AudioEmbedder(model_dir=tmp_path).embed([next(sound_items(ANIMALS[0]))])


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


def test_base_model_without_fetch_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="mms models fetch"):
        Transcriber(tmp_path, model="base").transcribe(load(SPEECH / "navigation.wav"))
