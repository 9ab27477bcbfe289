"""``mms eval``: measured retrieval quality on labelled queries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mmsearch_cli.cli import console
from mmsearch_cli.cli.options import IndexOpt, QuietOpt, settings
from mmsearch_cli.errors import QualityBarError, UsageError
from mmsearch_cli.search.rows import dumps

COLUMNS = (
    "queries",
    "R@1",
    "R@5",
    "R@10",
    "R2@1",
    "R2@5",
    "R2@10",
    "MRR@10",
    "nDCG@10",
    "mAP",
    "p50_ms",
    "p95_ms",
)


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_cmd)


def eval_cmd(
    queries: Annotated[Path, typer.Argument(help="Labelled queries (JSONL).", show_default=False)],
    index: IndexOpt = None,
    root: Annotated[
        Path | None,
        typer.Option(
            help="Folder the relevant paths are relative to [default: the query file's folder]."
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Cut-off for R@k, MRR@k, nDCG@k.")] = 10,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Evaluate with the cross-encoder second stage.")
    ] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="First stage and reranked side by side.")
    ] = False,
    reranker: Annotated[
        str | None, typer.Option(envvar="MMS_RERANKER", help="Cross-encoder id or folder.")
    ] = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="One cross-encoder weight for every family [default: tuned]."
        ),
    ] = None,
    per_query: Annotated[
        bool, typer.Option("--per-query", help="List each query's first relevant rank.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    min_ndcg: Annotated[
        float | None, typer.Option(help="Exit 9 if overall nDCG@k falls below this.")
    ] = None,
    min_mrr: Annotated[
        float | None, typer.Option(help="Exit 9 if overall MRR@k falls below this.")
    ] = None,
    min_recall: Annotated[
        float | None, typer.Option(help="Exit 9 if overall R@k falls below this.")
    ] = None,
    quiet: QuietOpt = False,
) -> None:
    """Measure Recall, MRR, nDCG, mAP and latency on labelled queries.

    Example: mms eval sample_data/queries.jsonl --compare --min-ndcg 0.5
    """
    from mmsearch_cli.evaluation.run import load_queries, run_queries, summarise
    from mmsearch_cli.rerank.stage import rerank_rows
    from mmsearch_cli.store.index import IndexReader

    if fmt not in ("table", "json"):
        raise UsageError("--format for eval is table or json")
    conf = settings(index, quiet)
    labelled = load_queries(queries, root)
    reader = IndexReader.open(conf.index_dir)
    indexed = {p for p, f in reader.state.files.items() if f.status == "ok"}

    def second_stage(lq: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if lq.query.text is None:
            return rows  # the cross-encoder reads text queries only
        return rerank_rows(lq.query.text, rows, conf, spec=reranker, alpha=alpha)

    systems: dict[str, Any] = {}
    if compare or not rerank:
        systems["first-stage"] = run_queries(reader, labelled, conf)
    if compare or rerank:
        label = "rerank" if alpha is None else f"rerank(a={alpha:g})"
        systems[label] = run_queries(reader, labelled, conf, second_stage)
    report = {name: summarise(out, indexed, k) for name, out in systems.items()}
    if fmt == "json":
        data: dict[str, Any] = {"k": k, "systems": report}
        if per_query:
            data["per_query"] = {name: _per_query(out) for name, out in systems.items()}
        sys.stdout.write(dumps(data, indent=2) + "\n")
    else:
        _print(report, k)
        if per_query:
            for name, out in systems.items():
                sys.stdout.write(f"\n{name}: rank of first relevant hit per query\n")
                for row in _per_query(out):
                    shown = "-" if row["first_relevant"] is None else row["first_relevant"]
                    sys.stdout.write(
                        f"  {row['id']:<8} {row['modality']:<6} {shown!s:>4}  {row['query']}\n"
                    )
    last = report[list(report)[-1]]["groups"].get("all", {})
    for flag, key in ((min_ndcg, f"nDCG@{k}"), (min_mrr, f"MRR@{k}"), (min_recall, f"R@{k}")):
        if flag is not None and last.get(key, 0.0) < flag:
            raise QualityBarError(f"{key} {last.get(key, 0.0):.3f} is below the bar {flag:.3f}")
    console.info(
        f"mms: {len(labelled)} queries, {next(iter(report.values()))['answerable']} answerable"
    )


def _per_query(outcomes: list[Any]) -> list[dict[str, Any]]:
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


MODALITIES = ("text", "image", "audio", "video")


def group_order(groups: dict[str, Any]) -> list[str]:
    """all, then per query modality, per target modality, per (query, target) pair."""
    order = ["all"]
    order += [f"query:{m}" for m in MODALITIES] + [f"target:{m}" for m in MODALITIES]
    order += [f"{q}->{t}" for q in MODALITIES for t in MODALITIES]
    return [g for g in order if g in groups]


def _print(report: dict[str, Any], k: int) -> None:
    cols = [c.replace("10", str(k)) for c in COLUMNS]
    head = f"{'system':<16} {'group':<14}" + "".join(f"{c:>9}" for c in cols)
    sys.stdout.write(head + "\n")
    for name, summary in report.items():
        for group in group_order(summary["groups"]):
            row = summary["groups"][group]
            cells = []
            for c in cols:
                v = row.get(c, 0.0)
                cells.append(
                    f"{v:>9d}"
                    if c == "queries"
                    else f"{v:>9.1f}"
                    if c.endswith("_ms")
                    else f"{v:>9.3f}"
                )
            sys.stdout.write(f"{name:<16} {group:<14}" + "".join(cells) + "\n")
