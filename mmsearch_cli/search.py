"""Query an index: embed the query for every space that takes its modality, retrieve
segments per space, group them per file, and fuse the spaces (see ``fusion``)."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.errors import MediaError, UsageError
from mmsearch_cli.explain import TEXT_KINDS, describe, surrogate
from mmsearch_cli.fusion import FEEDBACK_WEIGHT, RRF_K, feedback_boost, weighted_rrf
from mmsearch_cli.items import MediaItem
from mmsearch_cli.scan import modality_of
from mmsearch_cli.spaces import LiveSpace, bind_recorded, check_compatible
from mmsearch_cli.store.index import IndexReader
from mmsearch_cli.store.state import FileRecord, IndexState, SegmentRecord

# Image embedders whose text-query scores gain visual feedback (see ``fusion``): ConSE
# reads pictures through ImageNet labels, so pictures that look alike share its errors;
# the adapter keeps ConSE's vector for photos.
FEEDBACK_FOR = frozenset({"conse-minilm", "adapter-minilm"})
FEEDBACK_PICTURES = 32  # the top pictures re-scored (reading vectors costs ~0.2 ms each)


@dataclass(frozen=True)
class Query:
    text: str | None = None
    media: Path | None = None  # an image, audio or video file used as the query

    @property
    def modality(self) -> str:
        if self.text is not None:
            return "text"
        assert self.media is not None
        m = modality_of(self.media)
        if m is None or m == "text":
            raise UsageError(f"cannot use {self.media} as a query (unsupported type)")
        return m


@dataclass
class SearchOptions:
    k: int = 10
    types: frozenset[str] | None = None  # file modalities to keep
    path_glob: str | None = None
    space: str | None = None  # restrict to one space
    segments: bool = False  # list segments instead of grouping per file
    pool: int = 100  # candidate segments per space (ANN stage)
    after: datetime | None = None
    before: datetime | None = None
    min_size: int | None = None
    max_size: int | None = None
    exclude_paths: frozenset[str] = frozenset()
    feedback: float = FEEDBACK_WEIGHT  # visual feedback for text queries (0: off)
    rrf_k: float = RRF_K


@dataclass
class Hit:
    """One result row; rendered many ways (see ``results``)."""

    rank: int
    score: float
    path: str
    modality: str
    kind: str
    chunk: int | None
    start: float | None
    end: float | None
    why: str
    text: str
    segments_matched: int
    spaces: dict[str, dict[str, float]] = field(default_factory=dict)
    size: int = 0
    mtime: float = 0.0
    segment_id: int = -1


def query_vectors(
    query: Query, spaces: dict[str, LiveSpace], settings: Settings
) -> dict[str, np.ndarray]:
    """Embed the query once per space that can take it."""
    modality = query.modality
    out: dict[str, np.ndarray] = {}
    if modality == "text":
        assert query.text is not None
        for name, space in spaces.items():
            if "text" in space.encoders:
                out[name] = space.encoders["text"].embed_query_text(query.text)
        return out
    from mmsearch_cli.pipeline import decode

    assert query.media is not None
    try:
        _, items = decode(os.fspath(query.media), modality, settings)
    except MediaError as exc:
        raise UsageError(f"cannot read query file {query.media}: {exc.message}") from None
    for name, space in spaces.items():
        vecs: list[np.ndarray] = []
        for item_modality, embedder in space.encoders.items():
            chosen: list[MediaItem] = [it for it in items if it.modality == item_modality]
            if item_modality == "text":
                continue  # a media query's own transcript is not used as text (yet)
            if chosen:
                embedder.ensure_loaded()
                vecs.extend(e.vector for e in embedder.embed(chosen))
        if vecs:
            mean = np.mean(np.asarray(vecs, dtype=np.float32), axis=0)
            out[name] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def allowed_segments(reader: IndexReader, opts: SearchOptions) -> set[int] | None:
    """Segment ids passing the structured filters, or None when there is no filter."""
    if not (
        opts.types or opts.path_glob or opts.after or opts.before
        or opts.min_size is not None or opts.max_size is not None or opts.exclude_paths
    ):  # fmt: skip
        return None
    keep: set[int] = set()
    for rec in reader.state.files.values():
        if rec.status == "ok" and _file_passes(rec, opts):
            keep.update(rec.segments)
    return keep


def _file_passes(rec: FileRecord, opts: SearchOptions) -> bool:
    if opts.types and rec.modality not in opts.types:
        return False
    if opts.exclude_paths and rec.path in opts.exclude_paths:
        return False
    if opts.path_glob and not (
        fnmatch.fnmatch(rec.path, opts.path_glob)
        or fnmatch.fnmatch(os.path.basename(rec.path), opts.path_glob)
    ):
        return False
    when = _file_time(rec)
    if opts.after and when < opts.after.timestamp():
        return False
    if opts.before and when >= opts.before.timestamp():
        return False
    if opts.min_size is not None and rec.size < opts.min_size:
        return False
    return not (opts.max_size is not None and rec.size > opts.max_size)


def _file_time(rec: FileRecord) -> float:
    """Capture time from EXIF when there is one, else the file's mtime."""
    taken = rec.meta.get("taken")
    if taken:
        try:
            return datetime.fromisoformat(taken).timestamp()
        except ValueError:
            pass
    return rec.mtime_ns / 1e9


def search(reader: IndexReader, query: Query, settings: Settings, opts: SearchOptions) -> list[Hit]:
    state = reader.state
    names = list(state.spaces)
    if opts.space:
        matches = [n for n in names if n == opts.space or n.split(":")[-1] == opts.space]
        if not matches:
            raise UsageError(
                f"no space '{opts.space}' in this index", hint=f"spaces: {', '.join(names)}"
            )
        names = matches
    modality = query.modality
    spaces: dict[str, LiveSpace] = {}
    for name in names:
        info = state.spaces[name]
        wanted = "image" if modality == "video" else modality
        if wanted in info.encoders or (modality == "video" and "audio" in info.encoders):
            live = bind_recorded(info, settings)
            check_compatible(info, live)
            spaces[name] = live
    if not spaces:
        raise UsageError(f"this index has no space that takes a {modality} query")
    vectors = query_vectors(query, spaces, settings)
    allowed = allowed_segments(reader, opts)
    per_space: dict[str, list[tuple[int, float]]] = {}
    for name, vec in vectors.items():
        index = reader.space(name)
        pool = max(opts.pool, opts.k * 10)
        ids, scores = index.search(vec, pool, allowed)
        per_space[name] = list(zip(ids.tolist(), scores.tolist(), strict=True))
    cosines = {name: dict(hits) for name, hits in per_space.items()}
    if modality == "text" and not opts.space and opts.feedback:
        per_space = {
            n: _visual_feedback(reader, n, hits, opts.feedback) for n, hits in per_space.items()
        }
    rank = _segment_hits if opts.segments else _file_hits
    # A file deleted since the last `mms index` is not offered: one stat per shown result.
    return rank(state, per_space, cosines, spaces, modality, opts.k, opts.rrf_k, os.path.exists)


def _fuse(
    rankings: dict[str, list[str]],
    scores: dict[str, dict[str, float]],
    spaces: dict[str, LiveSpace],
    modality: str,
    rrf_k: float,
) -> dict[str, float]:
    """One space: its own cosines. Several: weighted RRF over their rankings."""
    if len(rankings) == 1:
        (space,) = rankings
        return dict(scores[space])
    weights = {s: spaces[s].weight.get(modality, 1.0) for s in rankings}
    return weighted_rrf(rankings, weights, rrf_k)


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


def feedback_space(state: IndexState) -> str | None:
    """The space that holds pictures' look (takes images, not text), if the index has one."""
    for name, info in state.spaces.items():
        if "image" in info.encoders and "text" not in info.encoders and info.count:
            return name
    return None


def _visual_feedback(
    reader: IndexReader, space: str, hits: list[tuple[int, float]], weight: float = FEEDBACK_WEIGHT
) -> list[tuple[int, float]]:
    """Re-score the pictures among a text query's candidates by how much they look like
    the best-matching picture; return the candidates re-sorted."""
    state = reader.state
    visual = feedback_space(state)
    if visual is None or state.spaces[space].encoders.get("image") not in FEEDBACK_FOR:
        return hits
    pics = [n for n, (sid, _) in enumerate(hits) if visual in _spaces_of(state, sid)]
    pics = pics[:FEEDBACK_PICTURES]
    if len(pics) < 2:
        return hits
    vectors = reader.space(visual).get([hits[n][0] for n in pics])
    boosted = feedback_boost(np.array([hits[n][1] for n in pics]), vectors, weight)
    out = list(hits)
    for n, score in zip(pics, boosted.tolist(), strict=True):
        out[n] = (hits[n][0], score)
    return sorted(out, key=lambda h: -h[1])


def _spaces_of(state: IndexState, sid: int) -> list[str]:
    seg = state.segments.get(sid)
    return seg.spaces if seg is not None else []


def _file_hits(
    state: IndexState,
    per_space: dict[str, list[tuple[int, float]]],
    cosines: dict[str, dict[int, float]],
    spaces: dict[str, LiveSpace],
    modality: str,
    k: int,
    rrf_k: float = RRF_K,
    exists: Callable[[str], bool] | None = None,
) -> list[Hit]:
    """Best segment per file per space; then fuse the per-space file rankings."""
    segments, files = state.segments, state.files
    best: dict[str, dict[str, tuple[int, float]]] = {}  # space -> path -> (segment, score)
    counts: dict[str, set[int]] = {}
    for space, hits in per_space.items():
        seen: dict[str, tuple[int, float]] = {}
        for sid, score in hits:
            seg = segments.get(sid)
            if seg is None:
                continue
            counts.setdefault(seg.file, set()).add(sid)
            if seg.file not in seen:
                seen[seg.file] = (sid, score)
        best[space] = seen
    rankings = {space: list(seen) for space, seen in best.items()}
    scores = {s: {path: sc for path, (_, sc) in seen.items()} for s, seen in best.items()}
    fused = _fuse(rankings, scores, spaces, modality, rrf_k)
    order = _top(fused, k, lambda path: path, exists)
    position = _positions(rankings)
    out = []
    for rank, path in enumerate(order, start=1):
        per = {s: best[s][path] for s in best if path in best[s]}
        top_space = max(per, key=lambda s: per[s][1] * spaces[s].weight.get(modality, 1.0))
        seg = segments[per[top_space][0]]
        explain = {
            s: {"rank": position[s][path], "score": round(cosines[s][sid], 4)}
            for s, (sid, _) in per.items()
        }
        out.append(_hit(rank, fused[path], seg, files[path], len(counts.get(path, ())), explain))
    return out


def _segment_hits(
    state: IndexState,
    per_space: dict[str, list[tuple[int, float]]],
    cosines: dict[str, dict[int, float]],
    spaces: dict[str, LiveSpace],
    modality: str,
    k: int,
    rrf_k: float = RRF_K,
    exists: Callable[[str], bool] | None = None,
) -> list[Hit]:
    segments, files = state.segments, state.files
    rankings = {s: [str(sid) for sid, _ in hits] for s, hits in per_space.items()}
    scored = {s: dict(hits) for s, hits in per_space.items()}
    scores = {s: {str(sid): sc for sid, sc in hits.items()} for s, hits in scored.items()}
    fused = _fuse(rankings, scores, spaces, modality, rrf_k)
    order = _top(fused, k, lambda key: segments[int(key)].file, exists)
    position = _positions(rankings)
    out = []
    for rank, key in enumerate(order, start=1):
        sid = int(key)
        seg = segments[sid]
        explain = {
            s: {"rank": position[s][key], "score": round(cosines[s][sid], 4)}
            for s in rankings
            if sid in scored[s]
        }
        out.append(_hit(rank, fused[key], seg, files[seg.file], 1, explain))
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
        why=describe(seg.why, seg.text, kind=seg.kind),
        # Rebuilt from ``why`` so indexes made before a surrogate change read the same.
        text=seg.text if seg.kind in TEXT_KINDS else (surrogate(seg.why, "") or seg.text),
        segments_matched=matched,
        spaces=explain,
        size=rec.size,
        mtime=rec.mtime_ns / 1e9,
        segment_id=seg.id,
    )
