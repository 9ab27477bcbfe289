"""Per-file grouping and fusion of per-space rankings, and visual feedback for text queries.

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

Calibrated fusion (an index with a calibration, ``search.calibrate``): each space's score
becomes ``z``, standard units above what an off-topic query's best match scores in that
space and family, so scores are added instead of ranks. A file's fused ``z`` is its best
space's plus ``AGREEMENT`` times each other space's positive ``z``: a second space that
also finds it raises it, one that does not cannot sink it. The score shown is
``calibrate.score(z)``: 0.5 at the threshold of a good match. Measured against RRF
(``benchmarks/calibration.py``): it puts the document that answers a question first where
RRF ranked a sound or picture sharing a word first, and makes "no good match" possible.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.search.calibrate import score as shown_score
from mmsearch_cli.search.explain import TEXT_KINDS, surrogate, why_line
from mmsearch_cli.search.rows import Hit
from mmsearch_cli.store.state import FileRecord, SegmentRecord, SpaceInfo

if TYPE_CHECKING:
    from mmsearch_cli.store.index import IndexReader

RRF_K = 60.0
FEEDBACK_WEIGHT = 0.2
# The lexical space's RRF weight beside the dense spaces, for text queries. Measured with
# `benchmarks/quality.py --sweep` on opaque names (README, "Ranking"): 0.25-0.5 best
# overall; more lowered text->text on the shared corpus (0.976 -> 0.953 at 1.0); a weight
# per target family (1.0 for recordings, whose transcripts are their words) raised
# text->audio but lowered the mixed ranking (corpus nDCG@10 0.735 -> 0.719).
LEXICAL_WEIGHT = 0.5
# ... and when BM25's best segment stands clear of the next: the words single one out.
LEXICAL_SURE_WEIGHT = 2.0
LEXICAL_MARGIN = 1.7

# Image embedders whose text-query scores gain visual feedback (see ``fusion``): ConSE
# reads pictures through ImageNet labels, so pictures that look alike share its errors;
# the adapter keeps ConSE's vector for photos.
FEEDBACK_FOR = frozenset({"conse-minilm", "adapter-minilm", "photo-minilm"})
FEEDBACK_PICTURES = 32  # the top pictures re-scored (reading vectors costs ~0.2 ms each)
# Calibrated fusion: the share of another space's positive z added to the best space's.
# 0.25-1.0 differed by under 0.01 nDCG@10 on both labelled sets (benchmarks/calibration.py).
AGREEMENT = 0.5


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


def agreement_fusion(
    scores: Mapping[str, Mapping[str, float]], agreement: float | None = None
) -> dict[str, float]:
    """Fuse calibrated scores (space -> key -> z) into key -> z: the best space's z plus
    ``agreement`` (default ``AGREEMENT``) times the positive z of every other space that
    found the key."""
    agreement = AGREEMENT if agreement is None else agreement
    per_key: dict[str, list[float]] = {}
    for by_key in scores.values():
        for key, z in by_key.items():
            per_key.setdefault(key, []).append(z)
    fused: dict[str, float] = {}
    for key, zs in per_key.items():
        zs.sort(reverse=True)
        fused[key] = zs[0] + agreement * sum(max(z, 0.0) for z in zs[1:])
    return fused


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


def _fuse(
    rankings: dict[str, list[str]], scores: dict[str, dict[str, float]],
    weights: Mapping[str, float], rrf_k: float, calibrated: bool = False,
) -> dict[str, float]:  # fmt: skip
    """Calibrated scores (z): agreement fusion (a z; shown as ``calibrate.score``). Else,
    one space: its own scores; several: weighted RRF over their rankings."""
    if calibrated:
        return agreement_fusion(scores)
    if len(rankings) == 1:
        (space,) = rankings
        return dict(scores[space])
    return weighted_rrf(rankings, {s: weights.get(s, 1.0) for s in rankings}, rrf_k)


def _top(
    fused: dict[str, float], k: int, path_of: Callable[[str], str],
    exists: Callable[[str], bool] | None,
) -> list[str]:  # fmt: skip
    """The k best keys, skipping those whose file ``exists`` says is gone."""
    out: list[str] = []
    for key in sorted(fused, key=lambda key: -fused[key]):
        if exists is None or exists(path_of(key)):
            out.append(key)
            if len(out) == k:
                break
    return out


def _positions(rankings: dict[str, list[str]]) -> dict[str, dict[str, int]]:
    return {s: {key: i for i, key in enumerate(keys, start=1)} for s, keys in rankings.items()}


@dataclass
class Candidates:
    """The records of the segments the spaces returned, and of their files: all a fusion
    reads, fetched in two statements."""

    segments: dict[int, SegmentRecord]
    files: dict[str, FileRecord]
    notes: dict[str, dict[int, str]] = field(default_factory=dict)  # space -> sid -> matched

    @classmethod
    def fetch(
        cls, reader: IndexReader, per_space: Mapping[str, list[tuple[int, float]]]
    ) -> Candidates:
        ids = {sid for hits in per_space.values() for sid, _ in hits}
        segments = reader.segments(ids)
        files = reader.files({seg.file for seg in segments.values()})
        return cls(segments, files)


def feedback_space(spaces: Mapping[str, SpaceInfo]) -> str | None:
    """The space that holds pictures' look (takes images, not text), if the index has one."""
    for name, info in spaces.items():
        if "image" in info.encoders and "text" not in info.encoders and info.count:
            return name
    return None


def visual_feedback(
    reader: IndexReader, space: str, hits: list[tuple[int, float]], found: Candidates,
    weight: float = FEEDBACK_WEIGHT,
) -> list[tuple[int, float]]:  # fmt: skip
    """Re-score the pictures among a text query's candidates by how much they look like
    the best-matching picture; return the candidates re-sorted. Reads only the
    candidates' visual vectors, by id, from the mapped vector file."""
    visual = feedback_space(reader.spaces)
    info = reader.spaces.get(space)
    if visual is None or info is None or info.encoders.get("image") not in FEEDBACK_FOR:
        return hits
    pics = [n for n, (sid, _) in enumerate(hits) if visual in _spaces_of(found, sid)]
    pics = pics[:FEEDBACK_PICTURES]
    if len(pics) < 2:
        return hits
    vectors = reader.space(visual).get([hits[n][0] for n in pics])
    boosted = feedback_boost(np.array([hits[n][1] for n in pics]), vectors, weight)
    out = list(hits)
    for n, score in zip(pics, boosted.tolist(), strict=True):
        out[n] = (hits[n][0], score)
    return sorted(out, key=lambda h: -h[1])


def _spaces_of(found: Candidates, sid: int) -> list[str]:
    seg = found.segments.get(sid)
    return seg.spaces if seg is not None else []


def _explain(
    found: Candidates, space: str, rank: int, sid: int, raw: float, z: float | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {"rank": rank, "score": round(raw, 4)}
    if z is not None:
        entry["calibrated"] = round(shown_score(z), 4)
    if sid in found.notes.get(space, {}):
        entry["matched"] = found.notes[space][sid]
    return entry


def file_hits(
    found: Candidates,
    per_space: dict[str, list[tuple[int, float]]],
    scores_by_space: dict[str, dict[int, float]],
    weights: Mapping[str, float],
    k: int,
    rrf_k: float = RRF_K,
    exists: Callable[[str], bool] | None = None,
    calibrated: Mapping[str, Mapping[int, float]] | None = None,
) -> list[Hit]:
    """Best segment per file per space; then fuse the per-space file rankings.
    ``scores_by_space`` are the scores shown (cosines; BM25 for the lexical space);
    ``calibrated`` (space -> segment -> z) replaces them in ranking and fusion."""
    segments, files = found.segments, found.files
    if calibrated is not None:
        per_space = _by_z(per_space, calibrated)
    best: dict[str, dict[str, tuple[int, float]]] = {}  # space -> path -> (segment, score)
    counts: dict[str, set[int]] = {}
    for space, hits in per_space.items():
        seen: dict[str, tuple[int, float]] = {}
        for sid, score in hits:
            seg = segments.get(sid)
            if seg is None or seg.file not in files:
                continue
            counts.setdefault(seg.file, set()).add(sid)
            if seg.file not in seen:
                seen[seg.file] = (sid, score)
        best[space] = seen
    rankings = {space: list(seen) for space, seen in best.items()}
    scores = {s: {path: sc for path, (_, sc) in seen.items()} for s, seen in best.items()}
    fused = _fuse(rankings, scores, weights, rrf_k, calibrated is not None)
    order = _top(fused, k, lambda path: path, exists)
    position = _positions(rankings)
    out = []
    for rank, path in enumerate(order, start=1):
        per = {s: best[s][path] for s in best if path in best[s]}
        # the space that found it best: by z when calibrated, else by weighted score
        top_space = max(
            per, key=lambda s: per[s][1] * (weights.get(s, 1.0) if not calibrated else 1.0)
        )
        seg = segments[per[top_space][0]]
        explain = {
            s: _explain(
                found,
                s,
                position[s][path],
                sid,
                scores_by_space[s][sid],
                z if calibrated is not None else None,
            )
            for s, (sid, z) in per.items()
        }
        shown = shown_score(fused[path]) if calibrated is not None else fused[path]
        out.append(_hit(rank, shown, seg, files[path], len(counts.get(path, ())), explain))
    return out


def segment_hits(
    found: Candidates,
    per_space: dict[str, list[tuple[int, float]]],
    scores_by_space: dict[str, dict[int, float]],
    weights: Mapping[str, float],
    k: int,
    rrf_k: float = RRF_K,
    exists: Callable[[str], bool] | None = None,
    calibrated: Mapping[str, Mapping[int, float]] | None = None,
) -> list[Hit]:
    segments, files = found.segments, found.files
    if calibrated is not None:
        per_space = _by_z(per_space, calibrated)
    per_space = {
        s: [(sid, sc) for sid, sc in hits if sid in segments and segments[sid].file in files]
        for s, hits in per_space.items()
    }
    rankings = {s: [str(sid) for sid, _ in hits] for s, hits in per_space.items()}
    scored = {s: dict(hits) for s, hits in per_space.items()}
    scores = {s: {str(sid): sc for sid, sc in hits.items()} for s, hits in scored.items()}
    fused = _fuse(rankings, scores, weights, rrf_k, calibrated is not None)
    order = _top(fused, k, lambda key: segments[int(key)].file, exists)
    position = _positions(rankings)
    out = []
    for rank, key in enumerate(order, start=1):
        sid = int(key)
        seg = segments[sid]
        explain = {
            s: _explain(
                found,
                s,
                position[s][key],
                sid,
                scores_by_space[s][sid],
                scored[s][sid] if calibrated is not None else None,
            )
            for s in rankings
            if sid in scored[s]
        }
        shown = shown_score(fused[key]) if calibrated is not None else fused[key]
        out.append(_hit(rank, shown, seg, files[seg.file], 1, explain))
    return out


def _by_z(
    per_space: Mapping[str, list[tuple[int, float]]], z: Mapping[str, Mapping[int, float]]
) -> dict[str, list[tuple[int, float]]]:
    """Each space's candidates scored and ordered by their calibrated z."""
    out = {}
    for space, hits in per_space.items():
        zs = z.get(space, {})
        scored = [(sid, zs.get(sid, -math.inf)) for sid, _ in hits]
        out[space] = sorted(scored, key=lambda h: -h[1])
    return out


def _hit(
    rank: int, score: float, seg: SegmentRecord, rec: FileRecord, matched: int,
    explain: dict[str, Any],
) -> Hit:  # fmt: skip
    return Hit(
        rank=rank,
        score=round(float(score), 4),
        path=seg.file,
        modality=rec.modality,
        kind=seg.kind,
        chunk=seg.chunk,
        start=seg.start,
        end=seg.end,
        why=why_line(seg.why, seg.text, kind=seg.kind),
        # Rebuilt from ``why`` so indexes made before a surrogate change read the same.
        text=seg.text if seg.kind in TEXT_KINDS else (surrogate(seg.why, "") or seg.text),
        segments_matched=matched,
        spaces=explain,
        size=rec.size,
        mtime=rec.mtime_ns / 1e9,
        segment_id=seg.id,
        page=seg.why.get("page") if isinstance(seg.why.get("page"), int) else None,
        section=str(seg.why["section"]) if seg.why.get("section") else None,
    )
