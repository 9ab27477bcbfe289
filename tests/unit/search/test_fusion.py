"""Fusion on constructed rankings and vectors whose right answer is known: weighted RRF
across spaces, per-file grouping, and visual feedback for text queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.search.fusion import (
    RRF_K,
    Candidates,
    feedback_boost,
    feedback_space,
    file_hits,
    visual_feedback,
    weighted_rrf,
)
from mmsearch_cli.store.index import IndexReader, IndexWriter
from mmsearch_cli.store.journal import Batch
from mmsearch_cli.store.state import FileRecord, SegmentRecord, SpaceInfo


def order(fused: dict[str, float]) -> list[str]:
    return sorted(fused, key=lambda key: -fused[key])


def test_a_file_found_by_both_spaces_ranks_above_files_found_by_one() -> None:
    # "both" is only second in each space; each space's own first is found by it alone.
    fused = weighted_rrf({"a": ["only_a", "both"], "b": ["only_b", "both"]}, {})
    assert order(fused)[0] == "both"
    assert fused["both"] == pytest.approx(2 / (RRF_K + 2) / (2 / (RRF_K + 1)))
    assert fused["only_a"] == pytest.approx(fused["only_b"])


def test_first_in_every_space_scores_one_and_scores_fall_with_rank() -> None:
    fused = weighted_rrf({"a": ["x", "y", "z"], "b": ["x", "y", "z"]}, {"a": 1.0, "b": 0.5})
    assert fused["x"] == pytest.approx(1.0)
    assert fused["x"] > fused["y"] > fused["z"] > 0.0
    assert all(0.0 <= v <= 1.0 for v in fused.values())


def test_weights_decide_between_the_spaces_firsts() -> None:
    rankings = {"visual": ["look", "words"], "text": ["words", "look"]}
    assert order(weighted_rrf(rankings, {"visual": 1.0, "text": 0.5}))[0] == "look"
    assert order(weighted_rrf(rankings, {"visual": 0.5, "text": 1.0}))[0] == "words"
    # A zero weight silences a space; all-zero weights give nothing, not a division error.
    only_text = weighted_rrf(rankings, {"visual": 0.0, "text": 1.0})
    assert order(only_text) == ["words", "look"] and only_text["words"] == pytest.approx(1.0)
    assert weighted_rrf(rankings, {"visual": 0.0, "text": 0.0}) == {}


def test_k_sets_how_much_one_space_top_rank_outweighs_agreement() -> None:
    # "steady" is third in both spaces; "spike" is first in one space and absent from the other.
    rankings = {"a": ["spike", "p", "steady"], "b": ["q", "r", "steady"]}
    assert order(weighted_rrf(rankings, {}, k=60.0)).index("steady") == 0
    assert order(weighted_rrf(rankings, {}, k=0.5)).index("steady") > 0


def test_feedback_lifts_lookalikes_of_the_best_picture_and_keeps_the_mean() -> None:
    # Picture 0 matches best; picture 2 looks like it, picture 1 does not.
    scores = np.array([0.50, 0.46, 0.45, 0.30])
    visual = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.96, 0.28, 0.0], [0.0, 0.0, 1.0]])
    boosted = feedback_boost(scores, visual, weight=0.2)
    assert list(np.argsort(-boosted)) == [0, 2, 1, 3]
    assert boosted.mean() == pytest.approx(scores.mean())  # interleaving with text kept
    assert np.array_equal(feedback_boost(scores, visual, weight=0.0), scores)
    assert np.array_equal(feedback_boost(scores[:1], visual[:1]), scores[:1])


def _index_with_pictures(tmp_path: Path) -> IndexReader:
    """A text space (chunk + four pictures) and a visual space (the pictures)."""
    text = SpaceInfo(name="text", dim=2, encoders={"text": "minilm", "image": "conse-minilm"})
    visual = SpaceInfo(name="visual", dim=3, encoders={"image": "effnet-lite0-features"})
    writer = IndexWriter.open(tmp_path, "test")
    writer.add_space(text)
    writer.add_space(visual)
    looks = {  # path -> visual vector: the two hammers look alike, the fish does not
        "/p/hammer_a.jpg": [1.0, 0.0, 0.0],
        "/p/fish.jpg": [0.0, 1.0, 0.0],
        "/p/hammer_b.jpg": [0.96, 0.28, 0.0],
        "/p/tree.jpg": [0.0, 0.0, 1.0],
    }
    batch = Batch()
    ids = writer.new_ids(len(looks) + 1)
    for sid, path in zip(ids, looks, strict=False):
        batch.files.append(FileRecord(path, 1, 1, "image", segments=[sid]))
        batch.segments.append(SegmentRecord(sid, path, "image", spaces=["text", "visual"]))
    chunk = ids[-1]
    batch.files.append(FileRecord("/p/notes.txt", 1, 1, "text", segments=[chunk]))
    batch.segments.append(SegmentRecord(chunk, "/p/notes.txt", "chunk", spaces=["text"]))
    unit2 = np.tile(np.array([[1.0, 0.0]], np.float32), (len(ids), 1))
    batch.vectors = {
        "text": (np.array(ids), unit2),
        "visual": (np.array(ids[:4]), np.array(list(looks.values()), np.float32)),
    }
    writer.write_batch(batch)
    writer.commit()
    return IndexReader.open(tmp_path)


def test_visual_feedback_reorders_pictures_only(tmp_path: Path) -> None:
    reader = _index_with_pictures(tmp_path)
    assert feedback_space(reader.spaces) == "visual"
    # Segment ids 0-3 are the pictures in insertion order, 4 the text chunk.
    hits = [(0, 0.50), (4, 0.47), (1, 0.46), (2, 0.45), (3, 0.30)]
    found = Candidates.fetch(reader, {"text": hits})
    out = visual_feedback(reader, "text", hits, found)
    # hammer_b, which looks like the best picture, overtakes the fish and the chunk.
    assert [sid for sid, _ in out] == [0, 2, 4, 1, 3]
    scores = dict(out)
    assert scores[4] == pytest.approx(0.47)  # the chunk keeps its cosine
    assert np.mean([scores[i] for i in range(4)]) == pytest.approx(np.mean([0.5, 0.46, 0.45, 0.3]))
    # A space whose pictures are not read through labels is left alone.
    reader.spaces["text"].encoders["image"] = "st-clip"
    assert visual_feedback(reader, "text", hits, found) == hits


def test_file_hits_group_segments_and_fuse_spaces(tmp_path: Path) -> None:
    reader = _index_with_pictures(tmp_path)
    weights = {"visual": 1.0, "text": 0.5}  # the spaces' weights for an image query
    per_space = {  # an image query: the visual space puts the fish first, text the hammer
        "visual": [(1, 0.9), (2, 0.8), (3, 0.1)],
        "text": [(2, 0.7), (4, 0.6), (0, 0.5)],
    }
    cosines = {s: dict(h) for s, h in per_space.items()}
    found = Candidates.fetch(reader, per_space)
    hits = file_hits(found, per_space, cosines, weights, k=10)
    paths = [h.path for h in hits]
    assert paths[0] == "/p/hammer_b.jpg"  # second in visual and first in text beats the fish
    assert paths.index("/p/fish.jpg") < paths.index("/p/notes.txt")  # weight 1 beats 0.5
    top = hits[0]
    assert top.spaces == {"visual": {"rank": 2, "score": 0.8}, "text": {"rank": 1, "score": 0.7}}
    assert top.score == pytest.approx(1.0 * (1 / 62 + 0.5 / 61) / (1.5 / 61), abs=1e-4)


def test_bm25_is_sure_only_when_its_best_stands_clear_of_the_next() -> None:
    from mmsearch_cli.search.engine import sure_lexical

    assert sure_lexical([(7, 9.4), (3, 4.7)], 1.7)  # one recording holds the sentence
    assert not sure_lexical([(7, 8.6), (3, 8.3)], 1.7)  # two notes share the words
    assert sure_lexical([(7, 0.2)], 1.7)  # the only match
    assert not sure_lexical([], 1.7)
    assert not sure_lexical([(7, 9.4), (3, 1.0)], 0.0)  # margin 0: never sure
