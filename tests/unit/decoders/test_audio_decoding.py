"""Audio decoding without models: stream info, tags, windows, soundtracks, damage,
bounded memory, and the log-mel patches YAMNet reads."""

from __future__ import annotations

import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.decoders.audio import (
    has_audio,
    iter_windows,
    probe,
    read_tags,
)
from mmsearch_cli.embedders.yamnet import (
    log_mel_patches,
)
from mmsearch_cli.errors import MediaError
from tests.conftest import SAMPLE

ANIMALS = sorted((SAMPLE / "audio" / "animals").glob("*.mp3"))
SPEECH = SAMPLE / "audio" / "speech"
CORRUPT = SAMPLE / "broken" / "corrupt_header.wav"


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
        assert "cannot decode audio" in str(exc) and "\n" not in str(
            exc
        )  # no file name: reasons aggregate


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


def test_log_mel_patches_shape() -> None:
    assert log_mel_patches(np.zeros(8000, np.float32)).shape == (1, 1, 96, 64)
    # 10 s: 998 frames of 10 ms, patches of 96 every 48.
    assert log_mel_patches(np.zeros(160000, np.float32)).shape == (19, 1, 96, 64)
