"""Second stage over result rows: re-score candidates with a cross-encoder, then blend.

Works on rows as ``mms query --format jsonl`` writes them, so ``mms rerank`` can take
piped results and ``mms query --rerank`` does the same in one process.

The cross-encoder (ms-marco MiniLM) reads a row's text surrogate: a text chunk or a
transcript is real prose, but a picture or a sound is a sentence made from labels
("a photo of a hammer. A hammer is a hand tool..."). Its logits for those three kinds
of passage are not on one scale: ranked all together, label sentences of anything that
names the query's words push real matches of other kinds down (overall nDCG@10 fell
from 0.712 to 0.607 on the shared corpus at weight 1). So rows are re-ordered *within*
their family (text, picture, sound): each family keeps the ranks the first stage gave
it, and the cross-encoder only decides which of its members fill them. Per family the
final score is ``(1 - alpha) * minmax(first stage) + alpha * minmax(logit)``
(``blend_scores``). The weights come from ``python benchmarks/quality.py --rerank-sweep``
(text 0.1-0.5, pictures 0.1-0.7, sounds 0-0.3, 100 candidates). On the shared corpus (52
text queries) overall nDCG@10 goes 0.731 -> 0.740, text->text 0.976 -> 0.994 and
text->image 0.736 -> 0.744; on sample_data (46) 0.713 -> 0.723 and text->image 0.714 ->
0.745. One weight for all candidates together lowered quality at every weight above 0.2
(0.607 at 1.0), and sounds' tag sentences only ever hurt. For ~1 s per query on one
thread, so ``--rerank`` stays opt-in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.errors import UsageError
from mmsearch_cli.rerank.crossencoder import get_reranker
from mmsearch_cli.search.explain import TEXT_KINDS
from mmsearch_cli.search.rows import Row

# Cross-encoder weight per family (see the module docstring for the measurements).
DEFAULT_ALPHA: dict[str, float] = {"text": 0.2, "picture": 0.2, "sound": 0.0}
FAMILY = {kind: "text" for kind in TEXT_KINDS} | {
    "image": "picture",
    "keyframe": "picture",
    "sound": "sound",
}


def passage(row: Row) -> str:
    """The text a cross-encoder reads for a row: chunk, description, transcript or tags."""
    text = str(row.get("text") or "").strip()
    return text or str(row.get("why") or "").strip()


def family(row: Row) -> str:
    """A row's family by its segment kind; rows of unknown kind count as text."""
    return FAMILY.get(str(row.get("kind") or ""), "text")


def alpha_for(alpha: float | Mapping[str, float] | None, fam: str) -> float:
    if alpha is None:
        alpha = DEFAULT_ALPHA
    if isinstance(alpha, Mapping):
        return float(alpha.get(fam, 0.0))
    return float(alpha)


def rerank_rows(
    query: str,
    rows: Sequence[Row],
    settings: Settings,
    *,
    spec: str | None = None,
    k: int | None = None,
    alpha: float | Mapping[str, float] | None = None,
) -> list[Row]:
    """Re-order ``rows`` (best first) per family; ``alpha`` is one weight for every
    family or a mapping family -> weight (default ``DEFAULT_ALPHA``). A row's new
    ``score`` is the first-stage score of the rank it now holds, so scores still fall
    with rank; ``first_stage_score``, ``rerank_score`` (the raw logit) and
    ``rank_before`` keep the evidence."""
    if not rows:
        return []
    texts = [passage(r) for r in rows]
    fams = [family(r) for r in rows]
    weights = {f: alpha_for(alpha, f) for f in set(fams)}
    scored = [i for i, t in enumerate(texts) if t and weights[fams[i]] > 0]
    logits = np.full(len(rows), np.nan)
    if scored:
        reranker = get_reranker(spec, settings.model_dir, settings.threads)
        logits[scored] = reranker.score(query, [texts[i] for i in scored])
    first = np.asarray([float(r["score"]) for r in rows])
    order = list(range(len(rows)))  # order[slot] = index of the row now in that slot
    for fam, weight in weights.items():
        slots = np.flatnonzero(np.asarray(fams) == fam)
        final = blend_scores(first[slots], logits[slots], weight)
        for held, moved in zip(slots, slots[np.argsort(-final, kind="stable")], strict=True):
            order[int(held)] = int(moved)
    out: list[Row] = []
    for slot, i in enumerate(order[: k or len(rows)]):
        row = rows[i].copy()
        row["rank_before"] = row["rank"]
        row["first_stage_score"] = row["score"]
        row["rerank_score"] = None if np.isnan(logits[i]) else round(float(logits[i]), 4)
        row["score"] = rows[slot]["score"]
        row["rank"] = slot + 1
        out.append(row)
    return out


def _minmax(x: np.ndarray) -> np.ndarray:
    """Scale the finite values to [0, 1]; a constant vector maps to all 1 (no evidence)."""
    finite = np.isfinite(x)
    out = np.full(x.shape, np.nan)
    if not finite.any():
        return out
    lo, hi = float(x[finite].min()), float(x[finite].max())
    out[finite] = (x[finite] - lo) / (hi - lo) if hi > lo else 1.0
    return out


def blend_scores(first_stage: np.ndarray, rerank_logits: np.ndarray, alpha: float) -> np.ndarray:
    """Final scores: ``(1 - alpha) * mm(first_stage) + alpha * mm(rerank_logits)``.

    ``mm`` is min-max scaling over this query's candidates. Both kinds of evidence are
    rescaled because their units differ and vary: first-stage scores may be cosines of
    any embedder (CLIP and MiniLM live on different scales) or fused ranks, and the
    cross-encoder's logits span about -11..+11. After scaling, each side spreads over
    [0, 1] within the candidate set, so ``alpha`` reads as the weight given to the
    cross-encoder, portable across spaces. Since ``mm`` is increasing, ``alpha=0``
    reproduces the first-stage order and ``alpha=1`` the pure cross-encoder order (sort
    with a stable sort, e.g. ``np.argsort(-s, kind="stable")``, so ties keep their input
    order). The price: blended scores are relative to one query's candidates, good for
    ordering, not for thresholds across queries (use the raw logits for that).

    A NaN logit means the cross-encoder did not see that candidate (say, an image with no
    text); it keeps its scaled first-stage score, as if the cross-encoder agreed.
    """
    if not 0.0 <= alpha <= 1.0:
        raise UsageError(f"rerank weight alpha must be within [0, 1], got {alpha}")
    first = np.asarray(first_stage, dtype=np.float64).reshape(-1)
    logits = np.asarray(rerank_logits, dtype=np.float64).reshape(-1)
    if first.shape != logits.shape:
        raise ValueError(f"{first.size} first-stage scores but {logits.size} rerank logits")
    if not np.isfinite(first).all():
        raise ValueError("first-stage scores must be finite")
    base = _minmax(first)
    cross = _minmax(logits)
    return np.where(np.isnan(cross), base, (1.0 - alpha) * base + alpha * cross)
