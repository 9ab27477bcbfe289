"""Calibrated scores: how far above chance a match is, per space and per family.

A raw score says little by itself. A MiniLM cosine of 0.38 between "how to configure the
default sound card" and "the sound of Music, Guitar" is a typical score for a label
sentence that shares one word with a query; 0.38 between a question and a paragraph that
answers it is a strong one. Label sentences (pictures, sounds) and prose share the text
space but not a scale, and under rank fusion a near-duplicate photo scored 1.000 and an
unrelated pagoda 0.984: both ranked first somewhere.

So each index learns, at the end of ``mms index``, what a score *by chance* looks like in
it, per space, per query modality and per family of segment (``FAMILIES``: prose, pictures
and video frames, sound tags, speech):

* **Text queries**: the 156 probe phrases of ``data/probes.txt`` (everyday searches on
  every kind of subject, written for it, not this library's) are scored against the
  family; each probe's best score is one sample of "an off-topic query's best match here".
* **Media queries** (image, audio): the library's own items are the probes: a sampled
  item's ``NEIGHBOUR``-th nearest neighbour in the family is one sample (its first few are
  often the same subject; the library cannot tell).
* **Lexical space**: the probes' best BM25 score, over all families at once.

A dense score is first *centred*: ``CENTRE`` times the query's cosine with the family's
mean vector (the mean of its cosines with every item) is taken off. "the sound card" is
close to every "the sound of ..." sentence; a dog's bark stands out from the other sounds.

The centred score is then placed on its null sample's scale: ``z = (y - median) / spread
- TAIL_Z``, the spread measured from the median to the ``TAIL`` (95th) percentile in
standard units, so ``z = 0`` is better than 95% of off-topic queries' best match. ``z`` is
comparable across families and spaces: ``fusion`` adds it up across spaces, and the score
shown is ``logistic(SLOPE * z)`` (``cutoff``): 0.5 at the threshold, 0.9 two spreads above
it, 0.14 at chance, near 1 for a near-duplicate. ``--min-score auto`` reads it (``cutoff``).

The calibration is a JSON object of ~20 KB in the index's meta table
(``meta["calibration"]``: per space the family mean vectors in float16 and 21 quantiles
of each null), committed by the index run that changed the index when a family's size has
moved by more than ``STALE`` since, or by any run when the index has none (made before
there was one; it then ranks and scores as before: weighted RRF). It costs 1-3 s on
sample_data; a run that changed nothing does not look at it. The constants were chosen
with ``benchmarks/calibration.py --sweep``; README, "What a score means", has the numbers.
"""

from __future__ import annotations

import base64
import math
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from mmsearch_cli.errors import MmsError
from mmsearch_cli.search.cutoff import SLOPE, TAIL_Z

if TYPE_CHECKING:
    from mmsearch_cli.embedders.spaces import LiveSpace
    from mmsearch_cli.store.index import IndexReader, IndexWriter

VERSION = 1
LEXICAL = "lexical"
ANY = "*"  # a null shared by every family of a space
# Segment kind -> family: what competes on one scale. Prose (chunks), the label sentences
# of pictures, the tag sentences of sounds and speech transcripts score differently; a
# video keyframe is a picture to every embedder, and alone (a few per video) it made a
# family so small that any label beat its chance score ("a giraffe" -> a triceratops
# keyframe at 0.83 on sample_data).
FAMILIES = {"chunk": "text", "image": "image", "keyframe": "image", "sound": "audio",
            "speech": "speech"}  # fmt: skip
MAX_ROWS = 20_000  # a family's vectors scored per probe (a fixed sample beyond that)
MEDIA_PROBES = 200  # items used as media-query probes, per family
NEIGHBOUR = 10  # ... and their k-th nearest neighbour is the chance score (5: a fish
# photo query abstained, its 5th neighbour being another fish)
TAIL = 0.95  # the threshold: above this share of off-topic queries' best matches
STALE = 0.05  # recompute once a family's size has moved by this share
QUANTILES = tuple(i / 20 for i in range(21))  # stored: every 5% of the null sample
# How much of the query's affinity to a family is taken off its scores (benchmarks/
# calibration.py): 1.0 sank a dog's bark among nine other animal sounds for "dog barking";
# 0.5 lowered the shared corpus's nDCG@10 by 0.025; 0.75 kept it (0.747 against RRF's 0.750).
CENTRE = 0.75
MIN_SPREAD = 0.01  # cosine units: a degenerate null (one item) must not divide by ~0
MIN_SPREAD_BM25 = 1.0


def family_of(kind: str) -> str:
    return FAMILIES.get(kind, kind)


def probes() -> list[str]:
    text = resources.files("mmsearch_cli").joinpath("data/probes.txt").read_text("utf-8")
    return [s for line in text.splitlines() if (s := line.strip()) and not s.startswith("#")]


# -- computing ----------------------------------------------------------------------------


def compute(reader: IndexReader, live: Mapping[str, LiveSpace]) -> dict[str, Any]:
    """The calibration of the index ``reader`` reads, with the ``live`` spaces' embedders
    (loaded already at the end of an index run) embedding the probes."""
    rng = np.random.default_rng(0)  # deterministic: the same index gives the same numbers
    families = dict(reader.con.execute("SELECT id, kind FROM segments"))
    texts = probes()
    out: dict[str, Any] = {"version": VERSION, "generation": reader.generation, "spaces": {},
                           "sizes": family_sizes(reader.con)}  # fmt: skip
    for name, info in reader.spaces.items():
        space = live.get(name)
        if space is None or not info.count:
            continue
        vectors = reader.space(name)
        ids = np.asarray(vectors.flat.ids)
        alive = ~np.isin(ids, vectors.dead)
        fam = np.array([family_of(families.get(int(i), "")) for i in ids])
        by_family: dict[str, np.ndarray] = {}
        for f in sorted(set(fam[alive].tolist()) - {""}):
            rows = np.flatnonzero(alive & (fam == f))
            if len(rows) > MAX_ROWS:
                rows = np.sort(rng.choice(rows, MAX_ROWS, replace=False))
            by_family[f] = rows
        matrices = {f: np.asarray(vectors.flat.vectors[rows], np.float32)
                    for f, rows in by_family.items()}  # fmt: skip
        centroids = {f: m.mean(axis=0) for f, m in matrices.items()}
        entry: dict[str, Any] = {"centroids": {f: _pack(c) for f, c in centroids.items()},
                                 "nulls": {}}  # fmt: skip
        for modality in space.encoders:
            if modality == "text":
                encoder = space.encoders["text"]
                queries = np.stack([encoder.embed_query_text(t) for t in texts])
                own: np.ndarray | None = None
            else:
                source = matrices.get(_family_for_query(modality))
                if source is None:
                    continue
                pick = np.sort(rng.choice(len(source), min(MEDIA_PROBES, len(source)),
                                          replace=False))  # fmt: skip
                queries, own = source[pick], pick
            nulls: dict[str, Any] = {}
            for f, mat in matrices.items():
                same = own if f == _family_for_query(modality) else None
                best = _null_best(queries, mat, centroids[f], same)
                if best.size:
                    nulls[f] = _summary(best, MIN_SPREAD)
            entry["nulls"][modality] = nulls
        out["spaces"][name] = entry
    lexical = _lexical_nulls(reader, texts)
    if lexical:
        out["spaces"][LEXICAL] = {"centroids": {}, "nulls": {"text": lexical}}
    return out


def _family_for_query(modality: str) -> str:
    return {"image": "image", "audio": "audio", "video": "video"}.get(modality, modality)


def _null_best(
    queries: np.ndarray, mat: np.ndarray, centroid: np.ndarray, own: np.ndarray | None
) -> np.ndarray:
    """Per probe, its chance score in one family: the best centred score (text probes), or
    the ``NEIGHBOUR``-th best without itself (an item of the family as a probe)."""
    scores = queries @ mat.T - CENTRE * (queries @ centroid)[:, None]
    if own is None:
        return np.asarray(scores.max(axis=1), dtype=np.float64)
    scores[np.arange(len(own)), own] = -np.inf
    k = min(NEIGHBOUR, scores.shape[1] - 1)
    if k < 1:
        return np.empty(0)
    return np.asarray(-np.partition(-scores, k - 1, axis=1)[:, k - 1], dtype=np.float64)


def _lexical_nulls(reader: IndexReader, texts: Sequence[str]) -> dict[str, Any]:
    """The probes' best BM25 scores, over every family at once (``ANY``): BM25 already
    shares one scale across a collection (one idf, lengths normalised), while a family's
    own null is often empty (probes rarely hit a sound's tag words), which would make any
    word a sound shares with a query look like a strong match."""
    best = [max((score for _, score in reader.lexical(text, 1)), default=0.0) for text in texts]
    return {ANY: _summary(np.asarray(best), MIN_SPREAD_BM25)} if best else {}


def _summary(best: np.ndarray, min_spread: float) -> dict[str, Any]:
    q = np.quantile(best, QUANTILES)
    return {"n": int(best.size), "q": [round(float(v), 5) for v in q], "min_spread": min_spread}


def _pack(vector: np.ndarray) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f2").tobytes()).decode("ascii")


def _unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)


def family_sizes(con: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """Segments per space and family: what the calibration was computed over."""
    sql = ("SELECT j.value, s.kind, COUNT(*) FROM segments s, json_each(s.spaces) j "
           "GROUP BY j.value, s.kind")  # fmt: skip
    out: dict[str, dict[str, int]] = {}
    for space, kind, n in con.execute(sql):
        by_family = out.setdefault(str(space), {})
        by_family[family_of(kind)] = by_family.get(family_of(kind), 0) + int(n)
    return out


def refresh(writer: IndexWriter, live: Sequence[LiveSpace], changed: bool) -> bool:
    """At the end of an index run: compute the calibration if the index has none (made
    before there was one) or, when this run ``changed`` the index, if a family's size has
    moved by more than ``STALE``; commit it. A run that changed nothing costs nothing here.
    Returns whether it was computed. Models that cannot be loaded leave it as it was."""
    from mmsearch_cli.store.index import IndexReader

    current = writer.meta.get("calibration")
    if not changed and isinstance(current, dict) and current.get("version") == VERSION:
        return False
    if not stale(current, family_sizes(writer.con)):
        return False
    reader = IndexReader.open(writer.dir)
    try:
        data = compute(reader, {space.name: space for space in live})
    except MmsError:
        return False  # e.g. a model that is not there yet: the next run tries again
    finally:
        reader.close()
    writer.set_calibration(data)
    writer.commit()
    return True


def stale(calibration: Any, sizes: Mapping[str, Mapping[str, int]]) -> bool:
    """True when ``calibration`` is missing, of another version, or a family's size has
    moved by more than ``STALE`` (so a watcher's single-file updates do not recompute)."""
    if not isinstance(calibration, dict) or calibration.get("version") != VERSION:
        return True
    recorded = calibration.get("sizes") or {}
    for space, families in sizes.items():
        old = recorded.get(space) or {}
        for f, n in families.items():
            was = int(old.get(f, 0))
            if abs(n - was) > STALE * max(was, 1) and n != was:
                return True
        if set(old) - set(families):
            return True
    return False


# -- applying -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Null:
    """One null sample's summary: where chance sits (median), how wide it is (spread), and
    where the threshold is, in standard units."""

    median: float
    spread: float
    threshold: float

    @classmethod
    def of(cls, summary: Mapping[str, Any]) -> Null:
        q = [float(v) for v in summary["q"]]
        median = float(np.interp(0.5, QUANTILES, q))
        upper = float(np.interp(TAIL, QUANTILES, q))
        spread = max((upper - median) / TAIL_Z, float(summary.get("min_spread", MIN_SPREAD)))
        return cls(median, spread, (upper - median) / spread)

    def z(self, centred: float) -> float:
        """Standard units above the threshold (0: at it)."""
        return (centred - self.median) / self.spread - self.threshold


class Calibration:
    """A loaded calibration: raw scores in, z (above the threshold) and scores out."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self._nulls: dict[tuple[str, str, str], Null] = {}
        self._centroids: dict[tuple[str, str], np.ndarray] = {}
        for space, entry in (data.get("spaces") or {}).items():
            for f, packed in (entry.get("centroids") or {}).items():
                self._centroids[(space, f)] = _unpack(packed)
            for modality, nulls in (entry.get("nulls") or {}).items():
                for f, summary in nulls.items():
                    self._nulls[(space, modality, f)] = Null.of(summary)

    @classmethod
    def load(cls, reader: IndexReader) -> Calibration | None:
        data = getattr(reader, "meta", {}).get("calibration")
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        try:
            return cls(data)
        except (KeyError, TypeError, ValueError):
            return None  # a damaged or hand-edited record: rank as without one

    def has(self, space: str) -> bool:
        return any(key[0] == space for key in self._nulls)

    def baselines(self, space: str, vector: np.ndarray) -> dict[str, float]:
        """The query's affinity to each family of ``space`` (cosine with its mean vector)."""
        found = self._centroids.items()
        return {f: CENTRE * float(c @ vector) for (s, f), c in found if s == space}

    def z(self, space: str, modality: str, family: str, raw: float, baseline: float) -> float:
        null = self._nulls.get((space, modality, family)) or self._nulls.get((space, modality, ANY))
        if null is None:
            return -math.inf
        return null.z(raw - baseline)

    def modalities(self, space: str) -> list[str]:
        return sorted({m for s, m, _ in self._nulls if s == space})

    def z_scores(
        self, per_space: Mapping[str, Sequence[tuple[int, float]]],
        kinds: Mapping[int, str], vectors: Mapping[str, np.ndarray], modality: str,
    ) -> dict[str, dict[int, float]] | None:  # fmt: skip
        """Each space's candidates (segment, raw score) as z; ``kinds`` gives a segment's
        kind, ``vectors`` the query's vector per dense space. None when a space that found
        something has no calibration (rank as without one)."""
        out: dict[str, dict[int, float]] = {}
        for space, hits in per_space.items():
            if not hits:
                continue
            asked = query_modality(self.modalities(space), modality)
            if asked is None:
                return None
            base = self.baselines(space, vectors[space]) if space in vectors else {}
            out[space] = {
                sid: self.z(space, asked, f, raw, base.get(f, 0.0))
                for sid, raw in hits
                for f in (family_of(kinds.get(sid, "")),)
            }
        return out


def score(z: float) -> float:
    """The shown score of a standardised margin ``z`` (0.5 at the threshold)."""
    if z == -math.inf:
        return 0.0
    return 1.0 / (1.0 + math.exp(-SLOPE * max(min(z, 60.0), -60.0)))


def query_modality(calibrated: Sequence[str], modality: str) -> str | None:
    """Which of a space's calibrated query modalities a query of ``modality`` reads: its
    own; a video query's frames as pictures, else its sound; a space only a ``--plus``
    term reaches, that term's."""
    for m in (modality, *(("image", "audio") if modality == "video" else ())):
        if m in calibrated:
            return m
    return calibrated[0] if calibrated else None
