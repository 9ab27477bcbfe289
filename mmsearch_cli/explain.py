"""Human-readable "why" lines from what the embedders recorded about a segment."""

from __future__ import annotations

from typing import Any


def _pairs(values: Any, n: int) -> str:
    out = []
    for item in list(values)[:n]:
        if isinstance(item, list | tuple) and len(item) == 2:
            out.append(f"{item[0]} {float(item[1]):.2f}")
        else:
            out.append(str(item))
    return ", ".join(out)


def describe(why: dict[str, Any], text: str = "", *, kind: str = "") -> str:
    """One line: labels, colours, OCR words, sound tags, file tags, or the text itself."""
    parts: list[str] = []
    if why.get("labels"):
        parts.append(_pairs(why["labels"], 3))
    if why.get("colours"):
        names = [c[0] if isinstance(c, list | tuple) else c for c in why["colours"]]
        parts.append("colours: " + ", ".join(map(str, names[:3])))
    if why.get("ocr"):
        parts.append(f"text: '{_clip(str(why['ocr']), 60)}'")
    if why.get("tags"):
        parts.append("sounds: " + _pairs(why["tags"], 3))
    meta = why.get("file_tags") or {}
    tag_text = ", ".join(f"{k}: {v}" for k, v in meta.items() if v)
    if tag_text:
        parts.append(tag_text)
    if kind in ("chunk", "speech") and text:
        parts.insert(0, f"“{_clip(text, 100)}”")
    return "; ".join(parts) if parts else _clip(text, 100)


def surrogate(why: dict[str, Any], text: str) -> str:
    """The text a cross-encoder reads for this segment (reranking)."""
    if text:
        return text
    bits: list[str] = []
    if why.get("labels"):
        bits.append("a photo of " + ", ".join(str(p[0]) for p in why["labels"][:3]))
    if why.get("colours"):
        names = [c[0] if isinstance(c, list | tuple) else c for c in why["colours"]]
        bits.append("colours " + " and ".join(map(str, names[:3])))
    if why.get("ocr"):
        bits.append(f"with the text {why['ocr']}")
    if why.get("tags"):
        bits.append("sound of " + ", ".join(str(p[0]) for p in why["tags"][:3]))
    for value in (why.get("file_tags") or {}).values():
        if value:
            bits.append(str(value))
    return "; ".join(bits)


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
