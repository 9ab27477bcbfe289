"""Result rows: ``Hit`` is what the engine returns; ``Row`` is the stable, documented
record built once from it and rendered as json, jsonl, tsv or paths (or a table by the CLI).

The JSON schema is stable and documented in the README ("Output formats"). A path
that is not valid UTF-8 is written with ``\\udcXX`` escapes (Python's surrogateescape,
which ``os.fsencode`` reverses) and, exactly, as base64 bytes in ``path_b64``.
"""

from __future__ import annotations

import base64
import json
import math
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
    page: int | None = None  # 1-based page of a PDF hit
    section: str | None = None  # heading or chapter of a document hit


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
    page: NotRequired[int]  # documents only: the PDF page (1-based) of the hit
    section: NotRequired[str]  # documents only: the heading or chapter of the hit
    # after reranking only
    rank_before: NotRequired[int]
    first_stage_score: NotRequired[float]
    rerank_score: NotRequired[float | None]


# "html" is a page, not a stream of rows: search/sheet.py writes it, not ``render``.
FORMATS = ("table", "json", "jsonl", "tsv", "paths", "html")
_SURROGATE = re.compile("[\udc80-\udcff]")


def has_surrogates(path: str) -> bool:
    return bool(_SURROGATE.search(path))


def ref(row: Row) -> str:
    """``path#t=SS.s`` for time-based hits (media fragment URI syntax), ``path#page=N`` for
    a PDF page (what PDF viewers open), else the path."""
    if row.get("t") is not None:
        return f"{row['path']}#t={row['t']:.1f}"
    if row.get("page") is not None:
        return f"{row['path']}#page={row['page']}"
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
    if hit.page is not None:
        row["page"] = hit.page
    if hit.section:
        row["section"] = hit.section
    return row


def from_json(obj: object, where: str, rank: int) -> Row:
    """A row read back from ``--format jsonl`` (``mms rerank`` on piped results). Only
    ``path`` (a string) and a finite ``score`` are required (``rank`` stands in for a
    missing one); every other field read must have its documented type. ValueError
    names the line and the field."""
    if not isinstance(obj, dict) or "path" not in obj or "score" not in obj:
        raise ValueError(f"{where}: expected a `mms query --format jsonl` row with path and score")

    def bad(field: str, what: str) -> ValueError:
        return ValueError(f"{where}: {field} is not {what}")

    def number(field: str, *, required: bool = False) -> float | None:
        value = obj.get(field)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad(field, "a number")
        if not math.isfinite(value):
            raise bad(field, "a finite number")
        return float(value)

    def text(field: str) -> str:
        value = obj.get(field)
        if value is not None and not isinstance(value, str):
            raise bad(field, "a string")
        return value or ""

    def count(field: str, default: int) -> int:
        value = obj.get(field)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise bad(field, "a whole number")
        return value

    if not isinstance(obj["path"], str) or not obj["path"]:
        raise bad("path", "a non-empty string")
    spaces = obj.get("spaces")
    if spaces is not None and not isinstance(spaces, dict):
        raise bad("spaces", "an object")
    try:  # written back out as JSON: no NaN or infinity hidden inside
        json.dumps(spaces, allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        raise bad("spaces", "an object of finite values") from None
    chunk = count("chunk", -1)
    score = number("score", required=True)
    assert score is not None
    row = Row(
        rank=count("rank", 0) or rank, score=score, path=obj["path"],
        modality=text("modality"), kind=text("kind"), chunk=None if chunk < 0 else chunk,
        t=number("t"), end=number("end"), segments_matched=count("segments_matched", 1) or 1,
        why=text("why"), text=text("text"), spaces=dict(spaces or {}),
        size=None if obj.get("size") is None else count("size", 0), mtime=number("mtime"),
    )  # fmt: skip
    if "path_b64" in obj:
        if not isinstance(obj["path_b64"], str):
            raise bad("path_b64", "a string")
        row["path_b64"] = obj["path_b64"]
    if obj.get("page") is not None:
        row["page"] = count("page", 1)
    if obj.get("section") is not None:
        if not isinstance(obj["section"], str):
            raise bad("section", "a string")
        row["section"] = obj["section"]
    if "rank_before" in obj:
        row["rank_before"] = count("rank_before", 0)
    if "first_stage_score" in obj:
        row["first_stage_score"] = number("first_stage_score", required=True) or 0.0
    if "rerank_score" in obj:
        row["rerank_score"] = number("rerank_score")
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
