"""Retrieval quality on labelled queries: the tables of issue 4, and the tuning sweeps.

Usage: python benchmarks/quality.py [--corpus DIR] [--queries FILE] [--index DIR]
       [--no-rerank] [--sweep] [--rerank-sweep]

Copies the corpus (default ../shared/corpus) under opaque names into one flat folder
(`eval_sets.opaque_copy`: its file and folder names are its labels, which the lexical space
would read; --named keeps them), indexes it into a temporary index, unless --index names
one already built from the copy, then prints `mms eval QUERIES --compare --per-query`:
first stage and reranked, overall, per query modality, per target modality and per
(query, target) pair. --sweep re-runs the first stage over its knobs (visual feedback
weight, the lexical space's weight, RRF k, the text space's weight for image
queries); --rerank-sweep re-ranks the same first-stage results over the cross-encoder
weights per family (each query-passage pair is scored once). Models come from
MMS_MODEL_DIR. About 35 s to index the corpus, 10 s per first-stage run and 90 s for a
reranked run on one thread; the rerank sweep costs one reranked run plus seconds per
setting.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmsearch_cli.cli.app import run  # noqa: E402
from mmsearch_cli.config import load_settings  # noqa: E402
from mmsearch_cli.evaluation.run import (  # noqa: E402
    LabelledQuery,
    QueryOutcome,
    load_queries,
    run_queries,
    summarise,
)
from mmsearch_cli.rerank import stage  # noqa: E402
from mmsearch_cli.rerank.crossencoder import Reranker, get_reranker  # noqa: E402
from mmsearch_cli.store.index import IndexReader  # noqa: E402

KEYS = ("all", "query:text", "query:image", "text->text", "text->image", "text->audio",
        "text->video", "image->image")  # fmt: skip


def line(label: str, outcomes: list[QueryOutcome], indexed: set[str]) -> str:
    groups = summarise(outcomes, indexed, 10)["groups"]
    cells = [f"{k} {groups[k]['nDCG@10']:.3f}" for k in KEYS if k in groups]
    return f"  {label:<36} nDCG@10  " + "  ".join(cells)


def first_stage_sweep(reader: IndexReader, queries: list[LabelledQuery], indexed: set[str]) -> None:
    conf = load_settings(index_dir=reader.dir)
    print("\nFirst stage: visual feedback weight for text queries (fusion.FEEDBACK_WEIGHT)")
    for weight in (0.0, 0.1, 0.2, 0.3):
        outcomes = run_queries(reader, queries, conf, feedback=weight)
        print(line(f"feedback {weight}", outcomes, indexed))
    print("\nFirst stage: the lexical space's fusion weight (search.fusion.LEXICAL_WEIGHT)")
    for weight in (0.0, 0.25, 0.5, 0.75, 1.0):
        outcomes = run_queries(reader, queries, conf, lexical=weight)
        print(line(f"lexical {weight}", outcomes, indexed))
    text_space = reader.spaces.get("text")
    if text_space is None:
        return
    print("\nFirst stage: image queries, RRF k x the text space's weight (visual: 1.0)")
    recorded = dict(text_space.weight)
    image_queries = [q for q in queries if q.modality == "image"]
    for k, weight in itertools.product((5.0, 20.0, 60.0, 100.0), (0.25, 0.5, 0.75, 1.0)):
        text_space.weight["image"] = weight
        outcomes = run_queries(reader, image_queries, conf, rrf_k=k)
        print(line(f"k {k:g}, text weight {weight}", outcomes, indexed))
    text_space.weight = recorded


class CachedReranker(Reranker):
    """Scores each (query, passage) pair once across a sweep."""

    def __init__(self, inner: Reranker) -> None:
        super().__init__()
        self.inner = inner
        self.name = inner.name
        self.cache: dict[tuple[str, str], float] = {}

    def _load(self) -> None:
        self.inner.ensure_loaded()

    def _score(self, query: str, passages: list[str]) -> np.ndarray:
        todo = [p for p in dict.fromkeys(passages) if (query, p) not in self.cache]
        if todo:
            for p, s in zip(todo, self.inner.score(query, todo).tolist(), strict=True):
                self.cache[(query, p)] = s
        return np.array([self.cache[(query, p)] for p in passages], dtype=np.float32)


def rerank_sweep(reader: IndexReader, queries: list[LabelledQuery], indexed: set[str]) -> None:
    conf = load_settings(index_dir=reader.dir)
    cached = CachedReranker(get_reranker(None, conf.model_dir, conf.threads))
    stage.get_reranker = lambda *_a, **_k: cached
    rows: dict[str, list[dict[str, Any]]] = {}

    def keep(lq: LabelledQuery, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rows[lq.id] = found
        return found

    first = run_queries(reader, queries, conf, keep)
    print("\nRerank: cross-encoder weight per family (text, picture, sound), 100 candidates")
    print(line("first stage", first, indexed))

    def reranked(alpha: float | dict[str, float]) -> list[QueryOutcome]:
        out = []
        for o in first:
            found = rows[o.query.id]
            if o.query.query.text is not None:
                found = stage.rerank_rows(o.query.query.text, found, conf, alpha=alpha)
            out.append(QueryOutcome(o.query, [r["path"] for r in found], o.seconds))
        return out

    for one in (0.1, 0.2, 0.3, 0.5, 1.0):
        print(line(f"one weight {one}", reranked(one), indexed))
    grid = itertools.product((0.1, 0.2, 0.3, 0.5), (0.1, 0.2, 0.3, 0.5, 0.7), (0.0, 0.1, 0.3))
    for text, picture, sound in grid:
        weights = {"text": text, "picture": picture, "sound": sound}
        print(line(f"text {text} picture {picture} sound {sound}", reranked(weights), indexed))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    ap.add_argument("--queries", type=Path, help="[default: CORPUS/queries.jsonl]")
    ap.add_argument("--index", type=Path, help="an index of CORPUS to reuse")
    ap.add_argument("--no-rerank", action="store_true", help="first stage only")
    ap.add_argument("--sweep", action="store_true", help="first-stage knob sweeps")
    ap.add_argument("--rerank-sweep", action="store_true", help="cross-encoder weight sweep")
    ap.add_argument("--named", action="store_true", help="keep the corpus's label names")
    ap.add_argument("--copy-dir", type=Path, default=ROOT / ".cache" / "datasets" / "corpus")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    corpus = args.corpus.resolve()
    queries = (args.queries or corpus / "queries.jsonl").resolve()
    if not args.named:
        from eval_sets import opaque_copy  # benchmarks/ is on sys.path when run as a script

        queries = opaque_copy(corpus, queries, args.copy_dir).resolve()
        corpus = args.copy_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="mms-quality-") as tmp:
        index = args.index or Path(tmp) / "index"
        if args.index is None:
            print(f"indexing {corpus} into a temporary index ...", file=sys.stderr)
            code = run(["index", str(corpus), "--index", str(index), "-q"])
            if code not in (0, 6):  # 6: some files failed (the corpus has broken ones)
                return code
        mode = [] if args.no_rerank else ["--compare"]
        code = run(["eval", str(queries), "--index", str(index), "--root", str(corpus),
                    "--per-query", *mode])  # fmt: skip
        if code != 0 or not (args.sweep or args.rerank_sweep):
            return code
        reader = IndexReader.open(index)
        labelled = load_queries(queries, corpus)
        indexed = reader.ok_paths()
        if args.sweep:
            first_stage_sweep(reader, labelled, indexed)
        if args.rerank_sweep:
            rerank_sweep(reader, labelled, indexed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
