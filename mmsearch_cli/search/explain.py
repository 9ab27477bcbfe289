"""Human-readable "why" lines, and the text surrogates a cross-encoder reads.

Both come from what the embedders recorded about a segment (``SegmentRecord.why``):
ImageNet labels with probabilities (or, for drawings, the adapter's nearest words),
Places365 scenes, dominant colours, OCR words and the file's facts (XMP sidecar title,
description and keywords, people, place, date, camera) for pictures, AudioSet
tags for sounds, file tags (ID3/Vorbis title, artist, genre) for media files.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

TEXT_KINDS = ("chunk", "speech")  # segments whose own text is what was embedded
MIN_LABEL = 0.05  # labels/tags below this probability are noise (the first always shows)
# What a photo's file says of it (decoders/photo.py), in the order "why" lists them.
FACTS = ("xmp", "document", "people", "place", "date", "camera")
SURROGATE_MIN = 0.1  # the cross-encoder reads fewer, surer labels (measured, rerank/stage.py)


def _pairs(values: Any, n: int, floor: float = MIN_LABEL) -> str:
    out = []
    for i, item in enumerate(list(values)):
        if isinstance(item, list | tuple) and len(item) == 2:
            if i > 0 and float(item[1]) < floor:
                break  # best first: the rest is lower still
            out.append(f"{item[0]} {float(item[1]):.2f}")
        else:
            out.append(str(item))
        if len(out) == n:
            break
    return ", ".join(out)


def _names(values: Any, n: int, floor: float) -> list[str]:
    """Label names, best first: the first always, the next ones at ``floor`` or above."""
    out: list[str] = []
    for i, item in enumerate(list(values)):
        name, prob = (item[0], float(item[1])) if isinstance(item, list | tuple) else (item, 1.0)
        if i > 0 and prob < floor:
            break
        out.append(str(name))
        if len(out) == n:
            break
    return out


def _colours(why: dict[str, Any], n: int) -> list[str]:
    return [str(c[0] if isinstance(c, list | tuple) else c) for c in why.get("colours") or []][:n]


def _scene(why: dict[str, Any], *, with_probability: bool) -> str:
    """ "beach 0.81, coast 0.12 (outdoors: sunny, ocean)" from the Places365 reading."""
    scenes = why.get("scenes")
    if not scenes:
        return ""
    names = _pairs(scenes, 2, floor=0.0) if with_probability else _names(scenes, 2, 0.15)
    if not isinstance(names, str):
        names = " or ".join(names)
    extra = [str(why["io"])] if why.get("io") else []
    attributes = ", ".join(str(a) for a in why.get("attributes") or [])
    detail = f"{extra[0]}: {attributes}" if extra and attributes else (extra or [attributes])[0]
    return f"{names} ({detail})" if detail else names


def _drawing(why: dict[str, Any]) -> bool:
    """A picture the learned adapter read (a drawing), not ConSE's ImageNet labels: the
    adapter records ``seen`` words only for those (``adapter.SEEN_FROM_TRUST``)."""
    return bool(why.get("seen"))


def why_line(why: dict[str, Any], text: str = "", *, kind: str = "") -> str:
    """One line: labels (for a drawing, the adapter's nearest words), colours, OCR words,
    sound tags, file tags, or the text itself."""
    parts: list[str] = []
    if _drawing(why):
        parts.append(f"drawing of {_pairs(why['seen'], 3, floor=0.0)} (adapter "
                     f"{float(why['adapter']):.2f})")  # fmt: skip
    elif why.get("labels"):
        parts.append(_pairs(why["labels"], 3))
    if scene := _scene(why, with_probability=True):
        parts.append("scene: " + scene)
    if colours := _colours(why, 3):
        parts.append("colours: " + ", ".join(colours))
    if why.get("ocr"):
        parts.append(f"text: '{_clip(str(why['ocr']), 60)}'")
    if why.get("tags"):
        tags = _pairs(why["tags"], 3)
        parts.append("sounds: " + tags if float(why["tags"][0][1]) >= 0.01 else "near silence")
    facts = why.get("facts") or {}
    parts += [str(facts[k]) for k in FACTS if facts.get(k)]
    meta = why.get("file_tags") or {}
    tag_text = ", ".join(f"{k}: {v}" for k, v in meta.items() if v)
    if tag_text:
        parts.append(tag_text)
    if kind in TEXT_KINDS and text:
        parts.insert(0, f"“{_clip(text, 100)}”")
    return "; ".join(parts) if parts else _clip(text, 100)


@functools.cache
def _class_descriptions() -> dict[str, str]:
    data = resources.files("mmsearch_cli").joinpath("data/imagenet_classes.json").read_text()
    return {c["name"]: c["description"] for c in json.loads(data)}


def _article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def surrogate(why: dict[str, Any], text: str) -> str:
    """The text a cross-encoder reads for a segment: its own text when it has one, else a
    sentence made from its labels, e.g. "a photo of a hammer or a hatchet. A hand tool
    with a heavy metal head...; coloured brown, grey" or "the sound of Dog, Bark"."""
    if text:
        return text
    bits: list[str] = []
    if _drawing(why):
        names = [str(w[0]) for w in why["seen"][:2]]
        bits.append("a drawing of " + " or ".join(_article(n) for n in names))
    elif why.get("labels"):
        names = _names(why["labels"], 3, SURROGATE_MIN)
        photo = "a photo of " + " or ".join(_article(n) for n in names)
        # The top class's dictionary sentence gives the cross-encoder words a query uses.
        description = _class_descriptions().get(names[0], "")
        bits.append(f"{photo}. {description.rstrip('.')}" if description else photo)
    if scene := _scene(why, with_probability=False):
        bits.append("in a " + scene)
    facts = why.get("facts") or {}
    if facts.get("people"):
        bits.append(f"with {facts['people']}")
    if facts.get("place"):
        bits.append(f"in {facts['place']}")
    if colours := _colours(why, 2):
        bits.append("coloured " + ", ".join(colours))
    if why.get("ocr"):
        bits.append(f"with the text {why['ocr']}")
    if why.get("tags") and float(why["tags"][0][1]) >= 0.01:
        bits.append("the sound of " + ", ".join(_names(why["tags"], 3, SURROGATE_MIN)))
    title = (why.get("file_tags") or {}).get("title")
    if title:
        bits.append(f"titled {title}")
    return "; ".join(bits)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
