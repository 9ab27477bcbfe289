"""Time-based media into items: sound windows, speech transcripts, video keyframes.

Speech is transcribed only where YAMNet hears it (its "Speech" class), so music and
animal sounds do not produce Whisper's hallucinated text; faster-whisper's own VAD
then trims silences inside the speech.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.items import MediaItem

WINDOW_S = 10.0  # one "sound" segment per 10 s: YAMNet tags and the audio embedding
SPEECH_GATE = 0.5  # highest per-patch YAMNet Speech score that triggers transcription


def _transcriber(settings: Settings) -> Any:
    return _shared_transcriber(
        settings.model_dir, settings.threads, settings.limits.max_file_seconds
    )


@functools.cache
def _shared_transcriber(model_dir: Path, threads: int, max_seconds: float) -> Any:
    """One Whisper model per process (its load costs seconds)."""
    from mmsearch_cli.models.whisper import Transcriber

    return Transcriber(model_dir, threads, max_seconds=max_seconds)


def _sound_items(path: Path, settings: Settings, tags: dict[str, str]) -> list[MediaItem]:
    from mmsearch_cli.decoders.audio import sound_items

    limit = settings.limits.max_file_seconds
    return list(sound_items(path, window_s=WINDOW_S, max_seconds=limit, tags=tags))


def _speech_items(path: Path, sounds: list[MediaItem], settings: Settings) -> list[MediaItem]:
    import numpy as np

    from mmsearch_cli.embedders.yamnet import shared_model, speech_score

    yamnet = shared_model(settings.model_dir, settings.threads)
    speechy = [s for s in sounds if speech_score(yamnet.analyse_item(s)[0]) >= SPEECH_GATE]
    if not speechy:
        return []
    transcriber = _transcriber(settings)
    items = []
    for window in speechy:
        offset = float(window.start or 0.0)
        for seg in transcriber.transcribe(np.asarray(window.payload)):
            text = seg.text.strip()
            if text:
                items.append(
                    MediaItem(
                        modality="text", payload=text, kind="speech", text=text,
                        start=round(offset + seg.start, 2), end=round(offset + seg.end, 2),
                    )
                )  # fmt: skip
    return items


def decode_audio(path: Path, settings: Settings) -> tuple[dict[str, Any], list[MediaItem]]:
    from mmsearch_cli.decoders.audio import probe

    info = probe(path)
    sounds = _sound_items(path, settings, info.tags)
    speech = _speech_items(path, sounds, settings)
    meta: dict[str, Any] = {"duration": info.duration, "speech_segments": len(speech)}
    if info.tags:
        meta["tags"] = info.tags
    return meta, sounds + speech


def decode_video(path: Path, settings: Settings) -> tuple[dict[str, Any], list[MediaItem]]:
    """Keyframes, sounds and speech, each stream decoded on its own: a damaged audio frame
    costs the sound, not the pictures (and the reverse), with a ``partial`` note. A video
    file with no picture (an audio-only .mp4/.webm) is indexed as audio."""
    from mmsearch_cli.decoders.audio import has_audio
    from mmsearch_cli.decoders.video import keyframes, probe
    from mmsearch_cli.errors import MediaError

    limits = settings.limits
    try:
        info = probe(path)
    except MediaError as exc:
        if "no video stream" in exc.message and has_audio(path):
            heard, sounds = decode_audio(path, settings)
            return {**heard, "audio_only": True}, sounds
        raise
    problems: list[str] = []
    items: list[MediaItem] = []
    try:
        frames = keyframes(
            path, min_interval=limits.video_min_interval,
            max_interval=limits.video_max_interval, max_frames=limits.video_max_keyframes,
            max_seconds=limits.max_file_seconds, threads=settings.threads,
        )  # fmt: skip
        items += [
            MediaItem(modality="image", payload=kf.image, kind="keyframe", start=round(kf.t, 2))
            for kf in frames
        ]
    except MediaError as exc:
        problems.append(f"pictures: {exc.message}")
    meta: dict[str, Any] = {"duration": info.duration, "keyframes": len(items)}
    if info.has_audio and has_audio(path):
        try:
            sounds = _sound_items(path, settings, {})
            speech = _speech_items(path, sounds, settings)
            items += sounds + speech
            meta["speech_segments"] = len(speech)
        except MediaError as exc:
            problems.append(f"sound: {exc.message}")
    if problems and not items:
        raise MediaError("; ".join(problems))
    if problems:
        meta["partial"] = "; ".join(problems)
    return meta, items
