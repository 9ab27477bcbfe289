"""Second stage over result rows: re-score candidates with a cross-encoder, then blend.

Works on rows as ``mms query --format jsonl`` writes them, so ``mms rerank`` can take
piped results and ``mms query --rerank`` does the same in one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.rerank import blend, get_reranker

# Weight of the cross-encoder in the blend; chosen on labelled queries (README, "Rerank").
DEFAULT_ALPHA = 0.3


def passage(row: dict[str, Any]) -> str:
    """The text a cross-encoder reads for a row: chunk, description, transcript or tags."""
    text = str(row.get("text") or "").strip()
    return text or str(row.get("why") or "").strip()


def rerank_rows(
    query: str,
    rows: Sequence[dict[str, Any]],
    settings: Settings,
    *,
    spec: str | None = None,
    k: int | None = None,
    alpha: float = DEFAULT_ALPHA,
) -> list[dict[str, Any]]:
    if not rows:
        return []
    reranker = get_reranker(spec, settings.model_dir, settings.threads)
    texts = [passage(r) for r in rows]
    has_text = [bool(t) for t in texts]
    logits = np.full(len(rows), np.nan)
    if any(has_text):
        scored = reranker.score(query, [t for t in texts if t])
        logits[np.flatnonzero(has_text)] = scored
    first = np.asarray([float(r["score"]) for r in rows])
    final = blend(first, logits, alpha)
    order = np.argsort(-final, kind="stable")
    out: list[dict[str, Any]] = []
    for new_rank, i in enumerate(order[: k or len(rows)], start=1):
        row = dict(rows[i])
        row["rank_before"] = row.get("rank", i + 1)
        row["first_stage_score"] = row["score"]
        row["rerank_score"] = None if np.isnan(logits[i]) else round(float(logits[i]), 4)
        row["score"] = round(float(final[i]), 4)
        row["rank"] = new_rank
        out.append(row)
    return out
