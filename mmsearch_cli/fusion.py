"""Fusing per-space rankings into one ranking of files.

Spaces score on different scales (a MiniLM cosine of 0.4 is strong, an EfficientNet
feature cosine of 0.4 is weak), so scores are not added. Weighted reciprocal-rank
fusion (Cormack et al., SIGIR 2009) combines ranks instead:

    fused(f) = sum_s w_s / (K + rank_s(f))   normalised by sum_s w_s / (K + 1)

so a file ranked first by every space that answered scores 1.0. K (default 60, the
paper's value) controls how flat the rank discount is. With one space, the ranking is
that space's own and the reported score is its cosine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

RRF_K = 60.0


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
