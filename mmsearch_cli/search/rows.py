"""Result rows: ``Hit`` is what the engine returns; ``Row`` is the stable, documented
record built once from it and rendered as json, jsonl, tsv or paths (or a table by the CLI).

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
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NotRequired, TypedDict


@dataclass
class Hit:
    """One ranked file (or segment) as the engine found it."""

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
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)  # rank, score, matched
    size: int = 0
    mtime: float = 0.0
    segment_id: int = -1


class Row(TypedDict):
    """A result as every output format writes it (README, "Output formats")."""

    rank: int
    score: float
    path: str
    modality: str
    kind: str
    chunk: int | None
    t: float | None
    end: float | None
    segments_matched: int
    why: str
    text: str
    spaces: dict[str, dict[str, Any]]  # per space: rank, score (and matched words)
    size: int | None
    mtime: float | None
    path_b64: NotRequired[str]  # only for names that are not valid UTF-8
    # after reranking only
    rank_before: NotRequired[int]
    first_stage_score: NotRequired[float]
    rerank_score: NotRequired[float | None]


FORMATS = ("table", "json", "jsonl", "tsv", "paths")
_SURROGATE = re.compile("[\udc80-\udcff]")


def has_surrogates(path: str) -> bool:
    return bool(_SURROGATE.search(path))


def ref(row: Row) -> str:
    """``path#t=SS.s`` for time-based hits (media fragment URI syntax), else the path."""
    if row.get("t") is not None:
        return f"{row['path']}#t={row['t']:.1f}"
    return str(row["path"])


def to_row(hit: Hit) -> Row:
    row = Row(
        rank=hit.rank,
        score=hit.score,
        path=hit.path,
        modality=hit.modality,
        kind=hit.kind,
        chunk=hit.chunk,
        t=hit.start,
        end=hit.end,
        segments_matched=hit.segments_matched,
        why=hit.why,
        text=hit.text,
        spaces=hit.spaces,
        size=hit.size,
        mtime=hit.mtime,
    )
    if has_surrogates(row["path"]):
        row["path_b64"] = base64.b64encode(os.fsencode(row["path"])).decode()
    return row


def from_json(obj: object, where: str, rank: int) -> Row:
    """A row read back from ``--format jsonl`` (``mms rerank`` on piped results). Only
    ``path`` and a numeric ``score`` are required (``rank`` stands in for a missing one);
    ValueError names what is wrong."""
    if not isinstance(obj, dict) or "path" not in obj or "score" not in obj:
        raise ValueError(f"{where}: expected a `mms query --format jsonl` row with path and score")
    try:
        score = float(obj["score"])
    except (TypeError, ValueError):
        raise ValueError(f"{where}: score is not a number") from None
    row = Row(
        rank=int(obj.get("rank") or rank), score=score, path=str(obj["path"]),
        modality=str(obj.get("modality") or ""), kind=str(obj.get("kind") or ""),
        chunk=obj.get("chunk"), t=obj.get("t"), end=obj.get("end"),
        segments_matched=int(obj.get("segments_matched") or 1), why=str(obj.get("why") or ""),
        text=str(obj.get("text") or ""), spaces=dict(obj.get("spaces") or {}),
        size=obj.get("size"), mtime=obj.get("mtime"),
    )  # fmt: skip
    for key in ("path_b64", "rank_before", "first_stage_score", "rerank_score"):
        if key in obj:
            row[key] = obj[key]
    return row


def dumps(obj: Any, indent: int | None = None) -> str:
    text = json.dumps(obj, ensure_ascii=False, indent=indent)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def tsv_escape(value: Any) -> str:
    """Escape backslash, tab, CR and newline so a field never breaks a TSV row."""
    text = "" if value is None else str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def render(rows: Sequence[Row], fmt: str, out: BinaryIO, *, nul: bool = False) -> None:
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
