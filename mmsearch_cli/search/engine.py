"""Query an index: embed the query for every space that takes its modality, retrieve
segments per space (and, for words, from the lexical space: BM25 over everything textual
mms knows), then group them per file and fuse the spaces (``fusion``)."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np

from mmsearch_cli.config import Settings
from mmsearch_cli.embedders.spaces import LiveSpace, bind_recorded, check_compatible
from mmsearch_cli.errors import MediaError, UsageError
from mmsearch_cli.items import MediaItem
from mmsearch_cli.search.fusion import (
    Candidates,
    file_hits,
    segment_hits,
    visual_feedback,
)
from mmsearch_cli.search.query import Query, SearchOptions, allowed_segments
from mmsearch_cli.search.rows import Hit
from mmsearch_cli.store.index import LEXICAL, IndexReader


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
    from mmsearch_cli.decoders.dispatch import decode

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


def search(reader: IndexReader, query: Query, settings: Settings, opts: SearchOptions) -> list[Hit]:
    """Ranked hits for ``query``. A media query's own file is never among them: "more like
    this photo" should not answer with the photo."""
    if query.media is not None:
        opts = replace(opts, exclude_paths=opts.exclude_paths | {os.fspath(query.media)})
    modality = query.modality
    names = _chosen_spaces(reader, opts.space)
    spaces: dict[str, LiveSpace] = {}
    for name in names:
        if name == LEXICAL:
            continue
        info = reader.spaces[name]
        wanted = "image" if modality == "video" else modality
        if wanted in info.encoders or (modality == "video" and "audio" in info.encoders):
            live = bind_recorded(info, settings)
            check_compatible(info, live)
            spaces[name] = live
    lexical = modality == "text" and LEXICAL in names and (opts.lexical > 0 or opts.space)
    if not spaces and not lexical:
        raise UsageError(f"this index has no space that takes a {modality} query")
    vectors = query_vectors(query, spaces, settings)
    allowed = allowed_segments(reader, opts)
    pool = max(opts.pool, opts.k * 10)
    per_space: dict[str, list[tuple[int, float]]] = {}
    for name, vec in vectors.items():
        ids, scores = reader.space(name).search(vec, pool, allowed)
        per_space[name] = list(zip(ids.tolist(), scores.tolist(), strict=True))
    if lexical:
        assert query.text is not None
        per_space[LEXICAL] = reader.lexical(query.text, pool, allowed)
    shown = {name: dict(hits) for name, hits in per_space.items()}
    found = Candidates.fetch(reader, per_space)
    if lexical and per_space[LEXICAL]:
        found.notes[LEXICAL] = reader.highlights(query.text or "", shown[LEXICAL])
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
    return rank(found, per_space, shown, weights, opts.k, opts.rrf_k, os.path.exists)


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
