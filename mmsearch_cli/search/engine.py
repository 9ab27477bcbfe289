"""Query an index: embed the query for every space that takes its modality, retrieve
segments per space (and, for words, from the lexical space: BM25 over everything textual
mms knows), then group them per file and fuse the spaces (``fusion``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.embedders.spaces import LiveSpace, bind_recorded, check_compatible
from mmsearch_cli.errors import MediaError, UsageError
from mmsearch_cli.items import MediaItem
from mmsearch_cli.search.calibrate import Calibration
from mmsearch_cli.search.fusion import (
    Candidates,
    file_hits,
    segment_hits,
    visual_feedback,
)
from mmsearch_cli.search.query import (
    MINUS_WEIGHT,
    PLUS_WEIGHT,
    Query,
    SearchOptions,
    allowed_segments,
    media_modality,
    words,
)
from mmsearch_cli.search.rows import Hit
from mmsearch_cli.store.index import LEXICAL, IndexReader


def query_vectors(
    query: Query, spaces: dict[str, LiveSpace], settings: Settings
) -> dict[str, np.ndarray]:
    """Embed the query once per space that can take it. With ``--plus``/``--minus`` terms,
    each space's vector is ``normalise(query + sum(w * plus) - sum(w * minus))`` over what
    that space can embed: a visual space takes no words (they change the spaces that read
    text, and the lexical one), and a space only a plus term reaches (a text query's
    ``--plus-image`` in the visual space) searches with the terms alone."""
    out = _embed(query.text, query.media, spaces, settings)
    if not query.plus and not query.minus:
        return out
    for weight, terms in ((PLUS_WEIGHT, query.plus), (-MINUS_WEIGHT, query.minus)):
        for term in terms:
            w = weight if term.weight is None else math.copysign(term.weight, weight)
            for name, vec in _embed(term.text, term.media, spaces, settings).items():
                if name in out or w > 0:  # never "unlike this" alone: plus terms come first
                    out[name] = out.get(name, 0.0) + w * vec
    for name, vec in out.items():
        norm = float(np.linalg.norm(vec))
        if norm < 1e-6:
            raise UsageError(f"--minus cancels the query in space '{name}'")
        out[name] = (vec / norm).astype(np.float32)
    return out


def _embed(
    text: str | None, media: Path | None, spaces: dict[str, LiveSpace], settings: Settings
) -> dict[str, np.ndarray]:
    """Words or a media file as a unit vector in each space that can embed it."""
    out: dict[str, np.ndarray] = {}
    if text is not None:
        for name, space in spaces.items():
            if "text" in space.encoders:
                out[name] = space.encoders["text"].embed_query_text(text)
        return out
    from mmsearch_cli.decoders.dispatch import decode

    assert media is not None
    modality = media_modality(media)
    try:
        _, items = decode(os.fspath(media), modality, settings)
    except MediaError as exc:
        raise UsageError(f"cannot read query file {media}: {exc.message}") from None
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


def search(reader: IndexReader, query: Query, settings: Settings, opts: SearchOptions) -> list[Hit]:
    """Ranked hits for ``query``. A media query's own file (or a plus or minus term's) is
    never among them: "more like this photo" should not answer with the photo."""
    if query.files:
        opts = replace(opts, exclude_paths=opts.exclude_paths | query.files)
    modality = query.modality
    names = _chosen_spaces(reader, opts.space)
    spaces: dict[str, LiveSpace] = {}
    # The spaces that take the query, and those only a plus term reaches (a text query
    # --plus-image: the picture's look-alikes in the visual space).
    wanted = {modality, *(t.modality for t in query.plus)}
    for name in names:
        info = reader.spaces.get(name)
        if info is not None and any(_takes(info.encoders, m) for m in wanted):
            live = bind_recorded(info, settings)
            check_compatible(info, live)
            spaces[name] = live
    lexical = modality == "text" and LEXICAL in names and (opts.lexical > 0 or opts.space)
    if not any(_takes(s.encoders, modality) for s in spaces.values()) and not lexical:
        raise UsageError(f"this index has no space that takes a {modality} query")
    for term in (*query.plus, *query.minus):
        if not (term.modality == "text" and lexical) and not any(
            _takes(s.encoders, term.modality) for s in spaces.values()
        ):
            raise UsageError(f"{term} cannot change this query: no space searched embeds a "
                             f"{term.modality}")  # fmt: skip
    vectors = query_vectors(query, spaces, settings)
    plus, minus = words(query.plus), words(query.minus)  # the lexical space's
    allowed = allowed_segments(reader, opts)
    pool = max(opts.pool, opts.k * 10)
    per_space: dict[str, list[tuple[int, float]]] = {}
    for name, vec in vectors.items():
        ids, scores = reader.space(name).search(vec, pool, allowed)
        per_space[name] = list(zip(ids.tolist(), scores.tolist(), strict=True))
    if lexical:
        assert query.text is not None
        per_space[LEXICAL] = reader.lexical(query.text, pool, allowed, plus=plus, minus=minus)
    shown = {name: dict(hits) for name, hits in per_space.items()}
    found = Candidates.fetch(reader, per_space)
    if lexical and per_space[LEXICAL]:
        found.notes[LEXICAL] = reader.highlights(query.text or "", shown[LEXICAL], plus=plus)
    if modality == "text" and not opts.space and opts.feedback:
        per_space = {
            n: visual_feedback(reader, n, hits, found, opts.feedback)
            for n, hits in per_space.items()
        }
    weights = {name: space.weight.get(modality, 1.0) for name, space in spaces.items()}
    weights[LEXICAL] = opts.lexical
    if lexical and sure_lexical(per_space[LEXICAL], opts.lexical_margin):
        weights[LEXICAL] = opts.lexical_sure
    rank = segment_hits if opts.segments else file_hits
    # A file deleted since the last `mms index` is not offered: one stat per shown result.
    # (A backend's reader checks only its own host's files: another machine's are not here.)
    exists = getattr(reader, "exists", os.path.exists)
    calibrated = (
        _calibrated(reader, per_space, found, vectors, modality) if opts.calibration else None
    )
    return rank(found, per_space, shown, weights, opts.k, opts.rrf_k, exists, calibrated)


def _calibrated(
    reader: IndexReader, per_space: dict[str, list[tuple[int, float]]], found: Candidates,
    vectors: dict[str, np.ndarray], modality: str,
) -> dict[str, dict[int, float]] | None:  # fmt: skip
    """The candidates' calibrated scores (z per space), or None for an index without a
    calibration (made before there was one): it ranks by RRF as it did then."""
    calibration = Calibration.load(reader)
    if calibration is None:
        return None
    kinds = {sid: seg.kind for sid, seg in found.segments.items()}
    return calibration.z_scores(per_space, kinds, vectors, modality)


def _takes(encoders: Mapping[str, object], modality: str) -> bool:
    """A space with these encoders embeds a query of ``modality`` (a video: its frames or
    its sound)."""
    return modality in encoders or (
        modality == "video" and bool({"image", "audio"} & encoders.keys())
    )


def sure_lexical(hits: list[tuple[int, float]], margin: float) -> bool:
    """BM25's best segment stands clear of the next (``margin`` times its score): the query's
    words single it out, as a remembered sentence or a name does."""
    if not hits or margin <= 0:
        return False
    return len(hits) == 1 or hits[0][1] >= margin * max(hits[1][1], 1e-9)


def _chosen_spaces(reader: IndexReader, space: str | None) -> list[str]:
    """The spaces to search: all (the lexical one included), or the one ``--space`` names."""
    names = [*reader.spaces, LEXICAL]
    if not space:
        return names
    matches = [n for n in names if n == space or n.split(":")[-1] == space]
    if not matches:
        raise UsageError(f"no space '{space}' in this index", hint=f"spaces: {', '.join(names)}")
    return matches
