"""Audio decoding: stream info and tags, and fixed-length mono windows for the embedders.

PyAV (FFmpeg) is the one backend: it reads wav/flac/ogg/mp3/m4a and video soundtracks,
decodes in packets, and its resampler downmixes and resamples on the fly, so a long file
never sits whole in memory. Three minutes of 44.1 kHz stereo to 16 kHz mono took: wav
0.12-0.19 s, flac 0.27-0.34 s, mp3 0.27-0.74 s, m4a 0.23-0.28 s. soundfile + soxr was no
faster (0.22-0.37, 0.36-0.56, 0.27-0.56 s) and cannot read mp4/m4a
(benchmarks/bench_audio.py). librosa is avoided: its first call costs ~1.6 s of imports.

Tags come from mutagen, which understands ID3, Vorbis comments and MP4 atoms.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.errors import CodecUnavailableError, MediaError
from mmsearch_cli.items import MediaItem

TAG_KEYS = ("title", "artist", "album", "comment", "genre")
# A trailing window shorter than this is dropped (unless it is the only one): too short
# for YAMNet's 0.96 s patches to say anything about it.
MIN_TAIL_S = 0.5


@dataclass(frozen=True)
class AudioInfo:
    duration: float  # seconds; 0.0 when the container does not say
    sample_rate: int
    channels: int
    tags: dict[str, str] = field(default_factory=dict)


def _open(path: Path, max_bytes: int | None = None) -> Any:
    import av

    try:
        if max_bytes is None or max_bytes >= path.stat().st_size:
            return av.open(str(path))
        return av.open(_Capped(path, max_bytes), format=None)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"cannot decode audio: {_reason(exc)}") from exc


class _Capped(io.RawIOBase):
    """A file that ends after ``cap`` bytes. FFmpeg's mp3 demuxer, hunting for frames
    through a zero-padded file (a preallocated download), kept about as many bytes in
    memory as it read: 1 GB of padding cost 0.9 GB."""

    def __init__(self, path: Path, cap: int) -> None:
        self._fh = open(path, "rb")  # noqa: SIM115 (closed with this object)
        self._cap = cap
        self.name = str(path)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        room = self._cap - self._fh.tell()
        if room <= 0:
            return 0
        view = memoryview(buf)[: min(len(buf), room)]
        return self._fh.readinto(view)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            return self._fh.seek(min(self._cap, os.fstat(self._fh.fileno()).st_size) + offset)
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def close(self) -> None:
        self._fh.close()
        super().close()


def byte_budget(path: Path, max_seconds: float | None) -> int | None:
    """How much of an audio file ``max_seconds`` of it can take (at its own bit rate,
    twice over, and at least 16 MB): what the decoder may read. None: no bound."""
    if max_seconds is None:
        return None
    try:
        with _open(path) as container:
            rate = int(container.bit_rate or 0)
    except MediaError:
        return None
    if rate <= 0:
        return None
    return max(16 << 20, int(2 * rate / 8 * max_seconds))


def _reason(exc: BaseException) -> str:
    # FFmpeg errors carry "[Errno N] message: 'path'"; keep only the message.
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0] if text else type(exc).__name__


# Where each tag lives in the three tag families mutagen exposes.
_ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "genre": "TCON"}
_MP4_ATOMS = {
    "title": "\xa9nam", "artist": "\xa9ART", "album": "\xa9alb", "comment": "\xa9cmt",
    "genre": "\xa9gen",
}  # fmt: skip


def read_tags(path: str | Path) -> dict[str, str]:
    """Title, artist, album, comment and genre from ID3 (mp3, wav, aiff), Vorbis
    comments (ogg, flac, opus) or MP4 atoms (m4a, mp4). Unreadable tags give ``{}``."""
    import mutagen
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    try:
        tags = getattr(mutagen.File(str(path)), "tags", None)
    except Exception:  # mutagen raises many private error types for odd files
        return {}
    if tags is None:
        return {}
    found: dict[str, list[Any]] = {}
    if isinstance(tags, ID3):
        for key, frame_id in _ID3_FRAMES.items():
            found[key] = [t for f in tags.getall(frame_id) for t in f.text]
        # Described COMM frames ("iTunNORM", "iTunSMPB", ...) are encoder data.
        found["comment"] = [t for c in tags.getall("COMM") if not c.desc for t in c.text]
    elif isinstance(tags, MP4Tags):
        found = {key: list(tags.get(atom, [])) for key, atom in _MP4_ATOMS.items()}
    else:  # Vorbis comments: case-insensitive keys, list values
        for key in TAG_KEYS:
            try:
                found[key] = list(tags.get(key) or [])
            except (KeyError, ValueError, TypeError):
                found[key] = []
    cleaned = {k: "; ".join(s for v in vs if (s := str(v).strip())) for k, vs in found.items()}
    return {k: v for k, v in cleaned.items() if v}


def probe(path: str | Path) -> AudioInfo:
    """Duration, native rate, channels and tags of the first audio stream.

    Raises ``MediaError`` if the file cannot be opened or has no audio stream.
    """
    path = Path(path)
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError("no audio stream")
        stream = container.streams.audio[0]
        if stream.codec_context is None:  # PyAV found no decoder for it in this FFmpeg
            raise CodecUnavailableError(
                f"this machine's FFmpeg has no decoder for its codec ({stream.codec_tag or '?'})"
            )
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE is microseconds
        sample_rate = int(stream.sample_rate or stream.codec_context.sample_rate or 0)
        channels = int(stream.channels or stream.codec_context.channels or 0)
    return AudioInfo(duration, sample_rate, channels, read_tags(path))


def has_audio(path: str | Path) -> bool:
    with _open(Path(path)) as container:
        return bool(container.streams.audio)


def iter_blocks(
    path: str | Path, sr: int = 16000, max_seconds: float | None = None
) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sr``, as the decoder produces them (a few ms each).

    Yields nothing for a file without an audio stream (a silent-film mp4).
    """
    import av

    path = Path(path)
    limit = None if max_seconds is None else int(max_seconds * sr)
    done = 0
    with _open(path, byte_budget(path, max_seconds)) as container:
        if not container.streams.audio:
            return
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    block = out.to_ndarray().reshape(-1)
                    if limit is not None and done + len(block) >= limit:
                        yield block[: limit - done]
                        return
                    done += len(block)
                    yield block
            for out in resampler.resample(None):  # flush the resampler's delay line
                yield out.to_ndarray().reshape(-1)
        except (av.FFmpegError, ValueError) as exc:
            raise MediaError(f"cannot decode audio: {_reason(exc)}") from exc


def iter_windows(
    path: str | Path,
    sr: int = 16000,
    window_s: float = 10.0,
    hop_s: float | None = None,
    max_seconds: float | None = None,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(start_seconds, waveform)`` windows of ``window_s`` every ``hop_s`` seconds.

    Only about one window of samples is held at a time. The last window may be shorter;
    a file shorter than one window gives a single short window. Raises ``MediaError``
    for a file that cannot be decoded.
    """
    win = max(1, round(window_s * sr))
    hop = max(1, round((hop_s or window_s) * sr))
    pending: list[np.ndarray] = []
    buffered = 0
    offset = 0  # sample index of the buffer's first sample
    skip = 0  # samples still to drop when hop > window (gaps between windows)
    emitted = False
    for block in iter_blocks(path, sr, max_seconds):
        if skip:
            dropped = min(skip, len(block))
            block, skip = block[dropped:], skip - dropped
        pending.append(block)
        buffered += len(block)
        if buffered < win:
            continue
        buf = np.concatenate(pending)
        while len(buf) >= win:
            # A copy, so the window does not pin the whole concatenated buffer.
            yield offset / sr, buf[:win].copy()
            emitted = True
            skip = max(0, hop - len(buf))
            buf = buf[hop:]
            offset += hop
        pending, buffered = [buf], len(buf)
    if buffered == 0:
        return
    tail = np.concatenate(pending)
    # With overlapping windows the head of the tail was in the last window already.
    fresh = len(tail) - (max(0, win - hop) if emitted else 0)
    if not emitted or fresh >= MIN_TAIL_S * sr:
        yield offset / sr, tail


def load(path: str | Path, sr: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """The whole (capped) waveform as mono float32 at ``sr``: for short clips only."""
    blocks = list(iter_blocks(path, sr, max_seconds))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)


def sound_items(
    path: str | Path,
    window_s: float = 10.0,
    hop_s: float | None = None,
    max_seconds: float | None = None,
    tags: dict[str, str] | None = None,
) -> Iterator[MediaItem]:
    """``iter_windows`` at 16 kHz as the audio items YAMNet's embedders take; the file's
    ``tags`` ride along for "why" lines and the lexical space."""
    for start, wave in iter_windows(path, 16000, window_s, hop_s, max_seconds):
        yield MediaItem(
            modality="audio", payload=wave, kind="sound", start=round(start, 2),
            end=round(start + len(wave) / 16000, 2), sample_rate=16000,
            meta={"file_tags": tags} if tags else {},
        )  # fmt: skip
