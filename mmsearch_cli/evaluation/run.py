"""``mms eval``: run labelled queries against an index and measure retrieval quality.

Query file format (one JSON object per line, as ``shared/corpus/queries.jsonl``)::

    {"id": "q01", "text": "a hammer", "relevant": {"images/tools/hammer1.webp": 2, ...}}
    {"id": "q28", "image": "images/monuments/colosseum.webp", "relevant": {...}}

Exactly one of ``text``, ``image``, ``audio``, ``video``; grades 2 (exact) and 1
(related). Relevant paths are relative to ``root`` (default: the query file's folder);
query media paths are relative to the query file's folder. A media query's own file is
not among its results (``search`` leaves it out).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.evaluation import metrics
from mmsearch_cli.evaluation.report import EvalReport
from mmsearch_cli.items import modality_of
from mmsearch_cli.search.engine import search
from mmsearch_cli.search.query import Query, SearchOptions
from mmsearch_cli.search.rows import Row, to_row
from mmsearch_cli.store.index import IndexReader

QUERY_FIELDS = ("text", "image", "audio", "video")
POOL = 100  # results scored per query; per-target metrics filter this list


@dataclass
class LabelledQuery:
    id: str
    modality: str
    query: Query
    relevant: dict[str, int]  # absolute path -> grade
    line: int


@dataclass
class QueryOutcome:
    query: LabelledQuery
    ranked: list[str]
    seconds: float
    first_relevant: int | None = None  # rank of the first grade>=1 hit, 1-based


@dataclass
class Report:
    systems: dict[str, list[QueryOutcome]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def load_queries(path: Path, root: Path | None = None) -> list[LabelledQuery]:
    base = path.resolve().parent
    root = (root or base).resolve()
    out: list[LabelledQuery] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read query file {path}: {exc}") from None
    seen: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
            raise UsageError(f"{where}: each line must be an object with a string 'id'")
        fields = [f for f in QUERY_FIELDS if f in obj]
        if len(fields) != 1:
            raise UsageError(f"{where}: needs exactly one of {', '.join(QUERY_FIELDS)}")
        rel = obj.get("relevant")
        if not isinstance(rel, dict) or not all(
            isinstance(g, int) and g in (0, 1, 2) for g in rel.values()
        ):
            raise UsageError(f"{where}: 'relevant' must map paths to grades 0, 1 or 2")
        if obj["id"] in seen:
            raise UsageError(f"{where}: duplicate id {obj['id']!r}")
        seen.add(obj["id"])
        kind = fields[0]
        value = obj[kind]
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}: '{kind}' must be a non-empty string")
        if kind == "text":
            query = Query(text=value)
        else:
            try:  # a NUL byte, a name too long, a symlink loop: the line's fault, exit 2
                media = (base / value).resolve(strict=True)
                found = media.is_file()
            except (OSError, ValueError, RuntimeError) as exc:
                raise UsageError(f"{where}: cannot use query file {value!r}: {exc}") from None
            if not found:
                raise UsageError(f"{where}: query file is not a file: {media}")
            query = Query(media=media)
        relevant = {os.path.abspath(root / p): int(g) for p, g in rel.items() if g > 0}
        out.append(LabelledQuery(obj["id"], kind, query, relevant, n))
    if not out:
        raise UsageError(f"{path}: no queries")
    return out


def run_queries(
    reader: IndexReader,
    queries: Sequence[LabelledQuery],
    settings: Settings,
    transform: Callable[[LabelledQuery, list[Row]], list[Row]] | None = None,
    **options: Any,
) -> list[QueryOutcome]:
    """Search each query (``options``: further ``SearchOptions`` fields, for sweeps)."""
    outcomes = []
    for lq in queries:
        opts = SearchOptions(k=POOL, pool=POOL, **options)
        started = time.perf_counter()
        rows = [to_row(h) for h in search(reader, lq.query, settings, opts)]
        if transform is not None:
            rows = transform(lq, rows)
        seconds = time.perf_counter() - started
        ranked = [r["path"] for r in rows]
        first = next((i for i, p in enumerate(ranked, 1) if lq.relevant.get(p, 0) >= 1), None)
        outcomes.append(QueryOutcome(lq, ranked, seconds, first))
    return outcomes


def _metrics(ranked: list[str], relevant: dict[str, int], k: int) -> dict[str, float]:
    return {
        "R@1": metrics.recall_at_k(ranked, relevant, 1),
        "R@5": metrics.recall_at_k(ranked, relevant, 5),
        f"R@{k}": metrics.recall_at_k(ranked, relevant, k),
        "R2@1": metrics.recall_at_k(ranked, relevant, 1, min_grade=2),
        "R2@5": metrics.recall_at_k(ranked, relevant, 5, min_grade=2),
        f"R2@{k}": metrics.recall_at_k(ranked, relevant, k, min_grade=2),
        f"MRR@{k}": metrics.mrr_at_k(ranked, relevant, k),
        f"nDCG@{k}": metrics.ndcg_at_k(ranked, relevant, k),
        "mAP": metrics.average_precision(ranked, relevant),
    }


def summarise(outcomes: list[QueryOutcome], indexed: set[str], k: int) -> dict[str, Any]:
    """Overall, per query modality, per target modality and per pair ("text->image"): for
    a target modality, both the results and the labels keep only files of that modality."""
    groups: dict[str, list[dict[str, float]]] = {}
    latency: dict[str, list[float]] = {}
    answerable = 0
    for o in outcomes:
        rel = {p: g for p, g in o.query.relevant.items() if p in indexed}
        if not metrics.is_answerable(rel, indexed):
            continue
        answerable += 1
        row = _metrics(o.ranked, rel, k)
        for key in ("all", f"query:{o.query.modality}"):
            groups.setdefault(key, []).append(row)
            latency.setdefault(key, []).append(o.seconds)
        for target in ("text", "image", "audio", "video"):
            sub_rel = {p: g for p, g in rel.items() if modality_of(p) == target}
            if not metrics.is_answerable(sub_rel, indexed):
                continue
            sub_ranked = [p for p in o.ranked if modality_of(p) == target]
            row = _metrics(sub_ranked, sub_rel, k)
            for key in (f"target:{target}", f"{o.query.modality}->{target}"):
                groups.setdefault(key, []).append(row)
                latency.setdefault(key, []).append(o.seconds)
    table: dict[str, Any] = {}
    for key, rows in groups.items():
        summary = metrics.summarise(rows)
        summary["queries"] = len(rows)
        summary["p50_ms"] = metrics.percentile(latency[key], 50) * 1000
        summary["p95_ms"] = metrics.percentile(latency[key], 95) * 1000
        table[key] = summary
    return {"queries": len(outcomes), "answerable": answerable, "groups": table}


@dataclass
class Evaluation:
    """What ``evaluate`` measured: per system (first stage, reranked) the outcome of every
    query and its summary; ``report()`` is what ``mms eval`` shows."""

    k: int
    queries: list[LabelledQuery]
    outcomes: dict[str, list[QueryOutcome]]
    summaries: dict[str, dict[str, Any]]

    def report(self) -> EvalReport:
        per_query = {name: per_query_rows(out) for name, out in self.outcomes.items()}
        return EvalReport(self.k, len(self.queries), self.summaries, per_query)

    def check_bars(self, **bars: float | None) -> None:
        self.report().check_bars(**bars)


def evaluate(
    reader: IndexReader,
    queries: list[LabelledQuery],
    settings: Settings,
    *,
    k: int = 10,
    first_stage: bool = True,
    rerank: bool = False,
    reranker: str | None = None,
    alpha: float | None = None,
    space: str | None = None,
) -> Evaluation:
    """Run the first stage and/or the reranked system over ``queries`` (``space``: one
    space alone, e.g. "lexical"); the cross-encoder reads text queries only, so media
    queries keep their first-stage order."""
    from mmsearch_cli.rerank.stage import rerank_rows

    def second_stage(lq: LabelledQuery, rows: list[Row]) -> list[Row]:
        if lq.query.text is None:
            return rows
        return rerank_rows(lq.query.text, rows, settings, spec=reranker, alpha=alpha)

    indexed = reader.ok_paths()
    outcomes: dict[str, list[QueryOutcome]] = {}
    if first_stage:
        outcomes["first-stage"] = run_queries(reader, queries, settings, space=space)
    if rerank:
        label = "rerank" if alpha is None else f"rerank(a={alpha:g})"
        outcomes[label] = run_queries(reader, queries, settings, second_stage, space=space)
    summaries = {name: summarise(out, indexed, k) for name, out in outcomes.items()}
    return Evaluation(k, queries, outcomes, summaries)


def per_query_rows(outcomes: list[QueryOutcome]) -> list[dict[str, Any]]:
    """Each query's id, modality, text or file, first relevant rank and top 3 paths."""
    return [
        {
            "id": o.query.id,
            "modality": o.query.modality,
            "query": o.query.query.text or str(o.query.query.media),
            "first_relevant": o.first_relevant,
            "top": o.ranked[:3],
        }
        for o in outcomes
    ]
