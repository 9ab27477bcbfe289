"""Result rows: built once from hits, rendered as json, jsonl, tsv or paths.

The JSON schema is stable and documented in the README ("Output formats"). A path
that is not valid UTF-8 is written with ``\\udcXX`` escapes (Python's surrogateescape,
which ``os.fsencode`` reverses) and, exactly, as base64 bytes in ``path_b64``.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any, BinaryIO


@dataclass
class Hit:
    """One result row; rendered many ways (see ``results``)."""

    rank: int
    score: float
    path: str
    modality: str
    kind: str
    chunk: int | None
    start: float | None
    end: float | None
    why: str
    text: str
    segments_matched: int
    spaces: dict[str, dict[str, float]] = field(default_factory=dict)
    size: int = 0
    mtime: float = 0.0
    segment_id: int = -1


FORMATS = ("table", "json", "jsonl", "tsv", "paths")
_SURROGATE = re.compile("[\udc80-\udcff]")


def has_surrogates(path: str) -> bool:
    return bool(_SURROGATE.search(path))


def ref(row: dict[str, Any]) -> str:
    """``path#t=SS.s`` for time-based hits (media fragment URI syntax), else the path."""
    if row.get("t") is not None:
        return f"{row['path']}#t={row['t']:.1f}"
    return str(row["path"])


def to_row(hit: Any) -> dict[str, Any]:
    data = asdict(hit) if is_dataclass(hit) and not isinstance(hit, type) else dict(hit)
    row: dict[str, Any] = {
        "rank": data["rank"],
        "score": data["score"],
        "path": data["path"],
        "modality": data["modality"],
        "kind": data["kind"],
        "chunk": data.get("chunk"),
        "t": data.get("start"),
        "end": data.get("end"),
        "segments_matched": data.get("segments_matched", 1),
        "why": data.get("why", ""),
        "text": data.get("text", ""),
        "spaces": data.get("spaces", {}),
        "size": data.get("size"),
        "mtime": data.get("mtime"),
    }
    for key in ("rerank_score", "rank_before", "first_stage_score"):
        if key in data:
            row[key] = data[key]
    if has_surrogates(row["path"]):
        row["path_b64"] = base64.b64encode(os.fsencode(row["path"])).decode()
    return row


def dumps(obj: Any, indent: int | None = None) -> str:
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def tsv_escape(value: Any) -> str:
    """Escape backslash, tab, CR and newline so a field never breaks a TSV row."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def render(rows: Sequence[dict[str, Any]], fmt: str, out: BinaryIO, *, nul: bool = False) -> None:
    """Write rows to a binary stream (paths as their original bytes where it matters)."""
    if nul:
        for row in rows:
            out.write(os.fsencode(row["path"]) + b"\0")
    elif fmt == "json":
        out.write(dumps(list(rows), indent=2).encode() + b"\n")
    elif fmt == "jsonl":
        for row in rows:
            out.write(dumps(row).encode() + b"\n")
    elif fmt == "tsv":
        out.write(b"rank\tscore\tmodality\tpath\tt\twhy\n")
        for row in rows:
            fields: Iterable[Any] = (
                row["rank"], f"{row['score']:.4f}", row["modality"], row["path"],
                "" if row["t"] is None else f"{row['t']:.1f}", row["why"],
            )  # fmt: skip
            out.write(os.fsencode("\t".join(tsv_escape(f) for f in fields)) + b"\n")
    elif fmt == "paths":
        for row in rows:
            out.write(os.fsencode(ref(row)) + b"\n")
    else:
        raise ValueError(f"unknown format {fmt}")
    out.flush()
