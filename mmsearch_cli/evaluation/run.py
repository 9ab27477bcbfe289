"""``mms eval``: run labelled queries against an index and measure retrieval quality.

Query file format (one JSON object per line, as ``shared/corpus/queries.jsonl``)::

    {"id": "q01", "text": "a hammer", "relevant": {"images/tools/hammer1.webp": 2, ...}}
    {"id": "q28", "image": "images/monuments/colosseum.webp", "relevant": {...}}

Exactly one of ``text``, ``image``, ``audio``, ``video``; grades 2 (exact) and 1
(related). Relevant paths are relative to ``root`` (default: the query file's folder);
query media paths are relative to the query file's folder. A media query's own file is
not among its results (``search`` leaves it out).

``"relevant": {}`` marks a query the collection has no answer for: it is left out of the
means, and counts for abstention (``--min-score auto`` leaving nothing: precision over the
queries that abstained, recall over the no-answer ones). ``"first": "text"`` asks that the
first result be a relevant file of that modality (a question a document answers, asked
without ``--type``): the report counts how many are.
"""

from __future__ import annotations

import json
import os
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmsearch_cli.config import Settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.evaluation import metrics
from mmsearch_cli.evaluation.report import EvalReport
from mmsearch_cli.items import modality_of
from mmsearch_cli.search import cutoff
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
    first: str | None = None  # the modality the first result should have ("first": "text")


@dataclass
class QueryOutcome:
    query: LabelledQuery
    ranked: list[str]
    seconds: float
    first_relevant: int | None = None  # rank of the first grade>=1 hit, 1-based
    kept: list[str] | None = None  # ``ranked`` after ``--min-score auto`` (None: no calibration)
    top_modality: str | None = None  # the first result's modality


@dataclass
class Report:
    systems: dict[str, list[QueryOutcome]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def load_queries(path: Path, root: Path | None = None) -> list[LabelledQuery]:
    return list(iter_queries(path, root))


def iter_queries(path: Path, root: Path | None = None) -> Iterator[LabelledQuery]:
    """The queries of a JSONL file, one line at a time (a million-line file is never held
    whole); a bad line is a ``UsageError`` naming it."""
    base = path.resolve().parent
    root = (root or base).resolve()
    try:
        fh = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read query file {path}: {exc}") from None
    seen: set[int] = set()  # hashes of the ids: duplicates caught in bounded memory
    found = 0
    with fh:
        for n, line in _lines(fh, path):
            lq = _parse_line(line, n, path, base, root, seen)
            if lq is not None:
                found += 1
                yield lq
    if not found:
        raise UsageError(f"{path}: no queries")


def _lines(fh: Any, path: Path) -> Iterator[tuple[int, str]]:
    try:
        yield from enumerate(fh, start=1)
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read query file {path}: {exc}") from None


def _parse_line(
    line: str, n: int, path: Path, base: Path, root: Path, seen: set[int]
) -> LabelledQuery | None:
    if not line.strip():
        return None
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
    key = hash(obj["id"])
    if key in seen:
        raise UsageError(f"{where}: duplicate id {obj['id']!r}")
    seen.add(key)
    first = obj.get("first")
    if first is not None and first not in QUERY_FIELDS:
        raise UsageError(f"{where}: 'first' must be one of {', '.join(QUERY_FIELDS)}")
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
    return LabelledQuery(obj["id"], kind, query, relevant, n, first)


def run_queries(
    reader: IndexReader,
    queries: Sequence[LabelledQuery],
    settings: Settings,
    transform: Callable[[LabelledQuery, list[Row]], list[Row]] | None = None,
    **options: Any,
) -> list[QueryOutcome]:
    """Search each query (``options``: further ``SearchOptions`` fields, for sweeps)."""
    return [run_one(reader, lq, settings, transform, **options) for lq in queries]


def run_one(
    reader: IndexReader,
    lq: LabelledQuery,
    settings: Settings,
    transform: Callable[[LabelledQuery, list[Row]], list[Row]] | None = None,
    **options: Any,
) -> QueryOutcome:
    opts = SearchOptions(k=POOL, pool=POOL, **options)
    started = time.perf_counter()
    rows = [to_row(h) for h in search(reader, lq.query, settings, opts)]
    if transform is not None:
        rows = transform(lq, rows)
    seconds = time.perf_counter() - started
    ranked = [r["path"] for r in rows]
    first = next((i for i, p in enumerate(ranked, 1) if lq.relevant.get(p, 0) >= 1), None)
    cut = cutoff.cut(rows, cutoff.AUTO)
    kept = [r["path"] for r in cut.rows] if cut.calibrated else None
    top = rows[0]["modality"] if rows else None
    return QueryOutcome(lq, ranked, seconds, first, kept, top)


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


class Tally:
    """Running figures of one system: per group, the sums of each metric and the
    latencies, so a million queries cost their latencies, not their result lists."""

    def __init__(self, indexed: set[str], k: int) -> None:
        self.indexed, self.k = indexed, k
        self.queries = self.answerable = 0
        # no-answer queries and abstention under --min-score auto (None: not calibrated)
        self.no_answer = self.abstained = self.abstained_wrongly = 0
        self.recall = self.recall_cut = 0.0
        self.calibrated = True
        self.first = self.first_ok = 0
        self.sums: dict[str, dict[str, float]] = {}
        self.counts: dict[str, int] = {}
        self.latency: dict[str, array[float]] = {}

    def add(self, o: QueryOutcome) -> None:
        """Overall, per query modality, per target modality and per pair ("text->image"):
        for a target modality, both the results and the labels keep only its files."""
        self.queries += 1
        self.calibrated = self.calibrated and o.kept is not None
        abstained = o.kept is not None and not o.kept
        if not o.query.relevant:  # a query the collection has no answer for
            self.no_answer += 1
            self.abstained += abstained
        if o.query.first is not None:
            self.first += 1
            top = o.ranked[0] if o.ranked else ""
            self.first_ok += o.top_modality == o.query.first and o.query.relevant.get(top, 0) > 0
        rel = {p: g for p, g in o.query.relevant.items() if p in self.indexed}
        if not metrics.is_answerable(rel, self.indexed):
            return
        self.answerable += 1
        self.abstained_wrongly += abstained
        self.recall += metrics.recall_at_k(o.ranked, rel, self.k)
        self.recall_cut += metrics.recall_at_k(o.kept if o.kept is not None else o.ranked, rel,
                                               self.k)  # fmt: skip
        self._count(("all", f"query:{o.query.modality}"), _metrics(o.ranked, rel, self.k), o)
        for target in ("text", "image", "audio", "video"):
            sub_rel = {p: g for p, g in rel.items() if modality_of(p) == target}
            if not metrics.is_answerable(sub_rel, self.indexed):
                continue
            sub_ranked = [p for p in o.ranked if modality_of(p) == target]
            keys = (f"target:{target}", f"{o.query.modality}->{target}")
            self._count(keys, _metrics(sub_ranked, sub_rel, self.k), o)

    def _count(self, keys: tuple[str, ...], row: dict[str, float], o: QueryOutcome) -> None:
        for key in keys:
            sums = self.sums.setdefault(key, {})
            for name, value in row.items():
                sums[name] = sums.get(name, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1
            self.latency.setdefault(key, array("d")).append(o.seconds)

    def summary(self) -> dict[str, Any]:
        table: dict[str, Any] = {}
        for key, sums in self.sums.items():
            n = self.counts[key]
            summary: dict[str, Any] = {name: total / n for name, total in sums.items()}
            summary["queries"] = n
            summary["p50_ms"] = metrics.percentile(self.latency[key], 50) * 1000
            summary["p95_ms"] = metrics.percentile(self.latency[key], 95) * 1000
            table[key] = summary
        return {"queries": self.queries, "answerable": self.answerable, "groups": table,
                "abstain": self._abstention(), "first": self._first()}  # fmt: skip

    def _abstention(self) -> dict[str, Any]:
        """``--min-score auto`` on the no-answer queries (precision, recall) and what it
        costs the answerable ones (R@k with and without the cut)."""
        out: dict[str, Any] = {"calibrated": self.calibrated, "no_answer": self.no_answer}
        if not self.calibrated:
            return out
        total = self.abstained + self.abstained_wrongly
        out |= {
            "abstained": self.abstained, "abstained_wrongly": self.abstained_wrongly,
            "precision": self.abstained / total if total else None,
            "recall": self.abstained / self.no_answer if self.no_answer else None,
        }  # fmt: skip
        if self.answerable:
            out[f"R@{self.k}"] = self.recall / self.answerable
            out[f"R@{self.k} cut"] = self.recall_cut / self.answerable
        return out

    def _first(self) -> dict[str, int]:
        """Queries with a ``first`` modality, and how many had a relevant file of it first."""
        return {"queries": self.first, "first": self.first_ok}


def summarise(outcomes: Iterable[QueryOutcome], indexed: set[str], k: int) -> dict[str, Any]:
    tally = Tally(indexed, k)
    for o in outcomes:
        tally.add(o)
    return tally.summary()


def evaluate(
    reader: IndexReader,
    queries: Iterable[LabelledQuery],
    settings: Settings,
    *,
    k: int = 10,
    first_stage: bool = True,
    rerank: bool = False,
    reranker: str | None = None,
    alpha: float | None = None,
    space: str | None = None,
    per_query: bool = True,
) -> EvalReport:
    """Run the first stage and/or the reranked system over ``queries``, one query at a
    time (``space``: one space alone, e.g. "lexical"); the cross-encoder reads text
    queries only, so media queries keep their first-stage order. Memory grows with the
    queries only for ``per_query`` rows."""
    from mmsearch_cli.rerank.stage import rerank_rows

    def second_stage(lq: LabelledQuery, rows: list[Row]) -> list[Row]:
        if lq.query.text is None:
            return rows
        return rerank_rows(lq.query.text, rows, settings, spec=reranker, alpha=alpha)

    systems: dict[str, Callable[[LabelledQuery, list[Row]], list[Row]] | None] = {}
    if first_stage:
        systems["first-stage"] = None
    if rerank:
        systems["rerank" if alpha is None else f"rerank(a={alpha:g})"] = second_stage
    indexed = reader.ok_paths()
    tallies = {name: Tally(indexed, k) for name in systems}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in systems} if per_query else {}
    count = 0
    for lq in queries:
        count += 1
        for name, transform in systems.items():
            outcome = run_one(reader, lq, settings, transform, space=space)
            tallies[name].add(outcome)
            if per_query:
                rows[name] += per_query_rows([outcome])
    summaries = {name: tally.summary() for name, tally in tallies.items()}
    return EvalReport(k, count, summaries, rows)


def per_query_rows(outcomes: list[QueryOutcome]) -> list[dict[str, Any]]:
    """Each query's id, modality, text or file, first relevant rank and top 3 paths."""
    return [
        {
            "id": o.query.id,
            "modality": o.query.modality,
            "query": o.query.query.text or str(o.query.query.media),
            "first_relevant": o.first_relevant,
            "abstained": o.kept is not None and not o.kept,  # --min-score auto left nothing
            "top": o.ranked[:3],
        }
        for o in outcomes
    ]
