"""Retrieval-quality metrics for graded relevance judgments (pure Python, no heavy imports).

``relevant`` maps an id to its grade: 2 = exact answer, 1 = related, 0 or absent = not
relevant. ``ranked`` is the result list, best first. An entry may be a single id or a
tuple of ids that tie (equal scores); :func:`rank_with_ties` builds that from scores.

Conventions, chosen so every number is defined and comparable:

- **Ties.** A plain list is taken as a strict order. For a tied group the metrics give
  the *expected* value over all orders of the group (McSherry & Najork, ECIR 2008), so
  an arbitrary tie-break (insertion order, say) can neither help nor hurt a system.
  With no ties this equals the ordinary metric.
- **Repeats.** An id that appears again later takes its position but earns nothing, so
  recall never exceeds 1 and a list padded with copies scores no better.
- **Nothing to find.** When a query has no item at or above ``min_grade``, every metric
  is 0.0 (never NaN). Such a query measures the corpus, not the search, so the eval
  should drop queries for which :func:`is_answerable` is False from the means and report
  how many it dropped. Items judged relevant but absent from the index still count in
  the denominators (they are misses); filter ``relevant`` first to ignore them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence

Ranked = Sequence[str | Sequence[str]]


def rank_with_ties(ids: Sequence[str], scores: Sequence[float]) -> list[tuple[str, ...]]:
    """Group ids by exactly equal score, best score first; input order inside a group.

    Round the scores first if near-equal floats should count as ties.
    """
    if len(ids) != len(scores):
        raise ValueError(f"{len(ids)} ids but {len(scores)} scores")
    order = sorted(range(len(ids)), key=lambda i: -scores[i])  # stable: keeps input order
    groups: list[tuple[str, ...]] = []
    last: float | None = None
    for i in order:
        if groups and scores[i] == last:
            groups[-1] = (*groups[-1], ids[i])
        else:
            groups.append((ids[i],))
        last = scores[i]
    return groups


def _groups(ranked: Ranked) -> list[list[str | None]]:
    """Tie groups with repeats replaced by None (a position that earns nothing)."""
    seen: set[str] = set()
    out: list[list[str | None]] = []
    for entry in ranked:
        members = [entry] if isinstance(entry, str) else list(entry)
        group: list[str | None] = []
        for rid in members:
            group.append(None if rid in seen else rid)
            seen.add(rid)
        if group:
            out.append(group)
    return out


def _is_rel(rid: str | None, relevant: Mapping[str, int], min_grade: int) -> bool:
    return rid is not None and relevant.get(rid, 0) >= min_grade


def _n_relevant(relevant: Mapping[str, int], min_grade: int) -> int:
    return sum(1 for g in relevant.values() if g >= min_grade)


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def recall_at_k(ranked: Ranked, relevant: Mapping[str, int], k: int, min_grade: int = 1) -> float:
    """Share of the items with grade >= ``min_grade`` that appear in the top ``k``."""
    _check_k(k)
    total = _n_relevant(relevant, min_grade)
    if total == 0:
        return 0.0
    found, pos = 0.0, 0
    for group in _groups(ranked):
        if pos >= k:
            break
        hits = sum(_is_rel(r, relevant, min_grade) for r in group)
        # A group cut by k puts each member in the top k with the same probability.
        found += hits * min(len(group), k - pos) / len(group)
        pos += len(group)
    return found / total


def mrr_at_k(ranked: Ranked, relevant: Mapping[str, int], k: int, min_grade: int = 1) -> float:
    """Reciprocal rank of the first item with grade >= ``min_grade`` within ``k``, else 0."""
    _check_k(k)
    start = 1  # rank of the group's first position
    for group in _groups(ranked):
        if start > k:
            break
        n = len(group)
        r = sum(_is_rel(x, relevant, min_grade) for x in group)
        if r:
            # The first relevant lands at offset t with probability C(n-1-t, r-1) / C(n, r).
            ways = math.comb(n, r)
            return sum(
                math.comb(n - 1 - t, r - 1) / ways / (start + t)
                for t in range(n - r + 1)
                if start + t <= k
            )
        start += n
    return 0.0


def _gain(grade: int) -> float:
    return 2.0**grade - 1.0 if grade > 0 else 0.0


def _discount(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


def ndcg_at_k(ranked: Ranked, relevant: Mapping[str, int], k: int) -> float:
    """nDCG@k with gains ``2**grade - 1`` and discount ``1/log2(rank + 1)``.

    The ideal ranking is built from every judged item, retrieved or not.
    """
    _check_k(k)
    ideal_grades = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    ideal = sum(_gain(g) * _discount(i) for i, g in enumerate(ideal_grades, start=1))
    if ideal == 0.0:
        return 0.0
    dcg, pos = 0.0, 0
    for group in _groups(ranked):
        if pos >= k:
            break
        # Expected DCG of a tied group: its mean gain at each of its positions.
        mean_gain = sum(_gain(relevant.get(r, 0)) for r in group if r is not None) / len(group)
        dcg += mean_gain * sum(_discount(p) for p in range(pos + 1, min(pos + len(group), k) + 1))
        pos += len(group)
    return dcg / ideal


def average_precision(ranked: Ranked, relevant: Mapping[str, int], min_grade: int = 1) -> float:
    """Average of precision at each relevant item's rank, over all relevant items (mAP term).

    The denominator is the number of items with grade >= ``min_grade``, so relevant items
    that were not retrieved count as precision 0.
    """
    total = _n_relevant(relevant, min_grade)
    if total == 0:
        return 0.0
    # AP = 1/R * sum_i rel_i * (sum_{j<=i} rel_j) / i. Under a random order inside each
    # tied group, E[rel_i] = r/n and E[rel_i rel_j] = r(r-1)/(n(n-1)) for two positions of
    # the same group, and a product of means across groups (McSherry & Najork 2008).
    expected, before, pos = 0.0, 0, 0  # `before`: relevant items in earlier groups
    for group in _groups(ranked):
        n = len(group)
        r = sum(_is_rel(x, relevant, min_grade) for x in group)
        if r:
            p_one = r / n
            p_two = r * (r - 1) / (n * (n - 1)) if n > 1 else 0.0
            for offset in range(n):
                rank = pos + offset + 1
                expected += (p_one * (1 + before) + p_two * offset) / rank
        before += r
        pos += n
    return expected / total


def is_answerable(
    relevant: Mapping[str, int], indexed_ids: Collection[str], min_grade: int = 1
) -> bool:
    """Whether at least one item with grade >= ``min_grade`` is in the index at all."""
    return any(g >= min_grade and rid in indexed_ids for rid, g in relevant.items())


def percentile(values: Iterable[float], p: float) -> float:
    """The ``p``-th percentile (0-100) by linear interpolation between closest ranks.

    The sorted values sit at positions 0..n-1; the percentile is read at ``(n-1)*p/100``,
    interpolating between the two neighbours (numpy's default "linear" method, Hyndman &
    Fan type 7). So p50 of [1, 2, 3, 4] is 2.5 and p95 never exceeds the maximum.
    """
    data = sorted(float(v) for v in values)
    if not data:
        raise ValueError("percentile of no values")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within [0, 100], got {p}")
    h = (len(data) - 1) * p / 100.0
    lo = math.floor(h)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (h - lo) * (data[hi] - data[lo])


def summarise(per_query: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean of each metric over the queries that report it (keys in first-seen order)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in per_query:
        for key, value in row.items():
            sums[key] = sums.get(key, 0.0) + float(value)
            counts[key] = counts.get(key, 0) + 1
    return {key: sums[key] / counts[key] for key in sums}
