"""Fusing per-space rankings into one ranking of files, and visual feedback for text queries.

Spaces score on different scales (a MiniLM cosine of 0.4 is strong, an EfficientNet
feature cosine of 0.4 is weak), so scores are not added. Weighted reciprocal-rank
fusion (Cormack et al., SIGIR 2009) combines ranks instead:

    fused(f) = sum_s w_s / (K + rank_s(f))   normalised by sum_s w_s / (K + 1)

so a file ranked first by every space that answered scores 1.0. K (default 60, the
paper's value) controls how flat the rank discount is; on the shared corpus's image
queries K in {5, 20, 60, 100} and a text-space weight in [0.5, 1] all scored nDCG@10
0.85-0.86 (8 queries: no measurable difference), so the defaults stay. With one space,
the ranking is that space's own and the reported score is its cosine.

Visual feedback (pseudo-relevance feedback across spaces): a text query reaches pictures
only through their ImageNet labels (ConSE), which are often wrong but wrong in the same
way for pictures that look alike. So each candidate picture gains
``FEEDBACK_WEIGHT * (cos_visual(picture, top picture) - mean over candidate pictures)``:
pictures that look like the best-matching one move up, the others down, and the mean of
the pictures' scores (so how they interleave with text and sounds) stays put. Measured
with ``benchmarks/quality.py --sweep``: text->image nDCG@10 0.698 -> 0.736 on the shared
corpus and 0.686 -> 0.714 on sample_data; 0.1 and 0.3 were worse overall, and feedback
from the top 2 or 3 pictures was worse than from the top 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RRF_K = 60.0
FEEDBACK_WEIGHT = 0.2


def weighted_rrf(
    rankings: Mapping[str, Sequence[str]], weights: Mapping[str, float], k: float = RRF_K
) -> dict[str, float]:
    """Fuse rankings (space -> keys best first) into key -> score in [0, 1]."""
    total = sum(weights.get(s, 1.0) for s in rankings) / (k + 1.0)
    if total <= 0:
        return {}
    fused: dict[str, float] = {}
    for space, keys in rankings.items():
        w = weights.get(space, 1.0)
        for rank, key in enumerate(keys, start=1):
            fused[key] = fused.get(key, 0.0) + w / (k + rank)
    return {key: value / total for key, value in fused.items()}


def feedback_boost(
    scores: np.ndarray, visual: np.ndarray, weight: float = FEEDBACK_WEIGHT
) -> np.ndarray:
    """Candidate pictures' scores after visual feedback from the best-scoring one.

    ``scores`` are the pictures' scores for the query, ``visual`` their unit vectors in
    a visual space (same order). Fewer than two pictures: nothing to compare, unchanged.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) < 2 or weight == 0:
        return scores.copy()
    visual = np.asarray(visual, dtype=np.float64)
    sims = visual @ visual[int(np.argmax(scores))]
    return scores + weight * (sims - sims.mean())
