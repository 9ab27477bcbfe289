"""``mms eval``: measured retrieval quality on labelled queries."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mmsearch_cli import api
from mmsearch_cli.cli import console
from mmsearch_cli.cli.options import (
    BackendOpt,
    IndexOpt,
    NoServerOpt,
    QuietOpt,
    RerankerOpt,
    check_fraction,
    settings,
)
from mmsearch_cli.errors import UsageError
from mmsearch_cli.evaluation.report import EvalReport
from mmsearch_cli.search.rows import dumps
from mmsearch_cli.serve import client

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
            metavar="DIR",
            help="Folder the relevant paths are relative to [default: the query file's folder].",
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", min=1, help="Cut-off for R@k, MRR@k, nDCG@k.")] = 10,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Evaluate with the cross-encoder second stage.")
    ] = False,
    compare: Annotated[
        bool, typer.Option("--compare", help="First stage and reranked side by side.")
    ] = False,
    reranker: RerankerOpt = None,
    alpha: Annotated[
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="One cross-encoder weight for every family [default: tuned]."
        ),
    ] = None,
    per_query: Annotated[
        bool, typer.Option("--per-query", help="List each query's first relevant rank.")
    ] = False,
    space: Annotated[
        str | None,
        typer.Option(metavar="SPACE", help="Evaluate one space alone (e.g. text, lexical)."),
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", "-f", metavar="FORMAT", help="table or json.")
    ] = "table",
    min_ndcg: Annotated[
        float | None, typer.Option(help="Exit 9 if overall nDCG@k falls below this.")
    ] = None,
    min_mrr: Annotated[
        float | None, typer.Option(help="Exit 9 if overall MRR@k falls below this.")
    ] = None,
    min_recall: Annotated[
        float | None, typer.Option(help="Exit 9 if overall R@k falls below this.")
    ] = None,
    no_server: NoServerOpt = False,
    quiet: QuietOpt = False,
    backend: BackendOpt = None,
) -> None:
    """Measure Recall, MRR, nDCG, mAP and latency on labelled queries.

    Example: mms eval sample_data/queries.jsonl --compare --min-ndcg 0.5
    """
    if fmt not in ("table", "json"):
        raise UsageError("--format for eval is table or json")
    for flag, bar in (("--min-ndcg", min_ndcg), ("--min-mrr", min_mrr),
                      ("--min-recall", min_recall), ("--alpha", alpha)):  # fmt: skip
        check_fraction(flag, bar)  # NaN passes typer's range check and disables a gate
    conf = settings(index, backend)
    args: dict[str, Any] = {
        "k": k, "first_stage": compare or not rerank, "rerank": compare or rerank,
        "reranker": reranker, "alpha": alpha, "space": space,
    }  # fmt: skip
    served = None
    if not no_server and not conf.backend and queries.is_file():  # else in-process says why
        where = {"queries": str(queries.resolve()), "root": str(root.resolve()) if root else None,
                 "per_query": per_query}  # fmt: skip
        served = client.call(conf.index_dir, "eval", {**args, **where})
    result = (
        EvalReport.from_wire(served)
        if served is not None
        else api.evaluate(queries, settings=conf, root=root, per_query=per_query, **args)
    )
    _show(result, fmt, per_query)
    result.check_bars(min_ndcg=min_ndcg, min_mrr=min_mrr, min_recall=min_recall)
    summary = next(iter(result.summaries.values()))
    console.info(f"mms: {result.queries} queries, {summary['answerable']} answerable", quiet=quiet)


def _show(result: EvalReport, fmt: str, per_query: bool) -> None:
    if fmt == "json":
        sys.stdout.write(dumps(result.to_dict(per_query), indent=2) + "\n")
        return
    _print(result)
    if per_query:
        for name, queries in result.per_query.items():
            sys.stdout.write(f"\n{name}: rank of first relevant hit per query\n")
            for row in queries:
                shown = "-" if row["first_relevant"] is None else row["first_relevant"]
                shown = "abst" if row.get("abstained") else shown
                sys.stdout.write(
                    f"  {row['id']:<8} {row['modality']:<6} {shown!s:>4}  {row['query']}\n"
                )


def _print(result: EvalReport) -> None:
    cols = [c.replace("10", str(result.k)) for c in COLUMNS]
    head = f"{'system':<16} {'group':<14}" + "".join(f"{c:>9}" for c in cols)
    sys.stdout.write(head + "\n")
    for name, group, row in result.table():
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
    for name, summary in result.summaries.items():
        for line in _extra_lines(summary, result.k):
            sys.stdout.write(f"{name:<16} {line}\n")


def _extra_lines(summary: dict[str, Any], k: int) -> list[str]:
    """Abstention under ``--min-score auto`` (no-answer queries: ``"relevant": {}``) and the
    family check (queries with ``"first"``), when the query file has them."""
    lines = []
    ab = summary.get("abstain") or {}
    if ab.get("no_answer"):
        if not ab.get("calibrated"):
            lines.append(f"abstain        {ab['no_answer']} no-answer queries; the index has no "
                         "calibration (run `mms index` once)")  # fmt: skip
        else:
            precision = "-" if ab["precision"] is None else f"{ab['precision']:.2f}"
            lines.append(
                f"abstain        precision {precision}, recall {ab['recall']:.2f} "
                f"({ab['abstained']} of {ab['no_answer']} no-answer queries; "
                f"{ab['abstained_wrongly']} answerable abstained)"
            )
    if ab.get("calibrated") and f"R@{k} cut" in ab:
        lines.append(f"answerable     R@{k} {ab[f'R@{k}']:.3f}, with --min-score auto "
                     f"{ab[f'R@{k} cut']:.3f}")  # fmt: skip
    first = summary.get("first") or {}
    if first.get("queries"):
        lines.append(f"first          {first['first']} of {first['queries']} queries had a "
                     "relevant file of the asked family first")  # fmt: skip
    return lines
