"""Words printed in a picture (labels, signs, screens), via RapidOCR (PP-OCRv4 on
onnxruntime; the models ship inside the ``rapidocr-onnxruntime`` wheel).

A full read costs ~100-600 ms per photo here (330 ms on average over sample_data), most of
it text detection. Most photos hold no text, so a cheap gate runs the detector alone on
a 224 px thumbnail (~10 ms) and only pictures where it finds a text box get the full
read: 8 of the corpus's 213 photos, whose text all passed (benchmarks/tune_conse.py).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from PIL import Image

from mmsearch_cli.errors import ModelUnavailableError

log = logging.getLogger(__name__)
_WORDLIKE = re.compile(r"[^\W_].*[^\W_]")  # two letters or digits at least, any script


def _shrink(img: Image.Image, side: int) -> Image.Image:
    if max(img.size) <= side:
        return img
    small = img.copy()
    small.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return small


class OcrReader:
    """Recognised words with their confidence, for words at or above ``min_confidence``."""

    def __init__(
        self,
        *,
        threads: int = 1,
        min_confidence: float = 0.6,
        gate_side: int = 224,
        read_side: int = 960,
    ) -> None:
        self.threads = threads
        self.min_confidence = min_confidence
        self.gate_side = gate_side  # 0 disables the gate
        self.read_side = read_side
        self._engine: Any = None

    def _load(self) -> Any:
        if self._engine is None:
            try:
                from rapidocr_onnxruntime import RapidOCR
            except ImportError as exc:
                raise ModelUnavailableError(
                    "OCR needs the rapidocr-onnxruntime package",
                    hint="pip install rapidocr-onnxruntime==1.4.4",
                ) from exc
            # limit_type "max": never upscale small pictures (the default "min" scales the
            # short side up to 736 px, 4-10x the work for a 320 px photo).
            self._engine = RapidOCR(
                intra_op_num_threads=self.threads,
                inter_op_num_threads=1,
                det_limit_type="max",
                print_verbose=False,
            )
        return self._engine

    def has_text(self, img: Image.Image) -> bool:
        """The cheap gate: does the text detector find any box on a small thumbnail?"""
        boxes, _ = self._load()(_shrink(img, self.gate_side), use_cls=False, use_rec=False)
        return bool(boxes)

    def read(self, img: Image.Image) -> list[tuple[str, float]]:
        """Words in reading order (top to bottom, left to right) with their confidence."""
        engine = self._load()
        if img.mode != "RGB":
            img = img.convert("RGB")
        try:
            if self.gate_side and not self.has_text(img):
                return []
            result, _ = engine(_shrink(img, self.read_side))
        except Exception as exc:  # OCR only enriches a picture; it must not cost the picture
            log.warning("OCR failed on a %sx%s image: %s", *img.size, exc)
            return []
        words: list[tuple[str, float]] = []
        for _box, text, score in result or []:
            text, score = str(text).strip(), float(score)
            if score >= self.min_confidence and _WORDLIKE.search(text):
                words.append((text, score))
        return words

    def text(self, img: Image.Image) -> str:
        return " ".join(word for word, _ in self.read(img))
