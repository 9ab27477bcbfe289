"""Calibrated scores (search/calibrate.py, search/cutoff.py) on constructed distributions:
where chance sits, how families compare, the shown score, the cut and its staleness."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mmsearch_cli.errors import UsageError
from mmsearch_cli.search import calibrate, cutoff
from mmsearch_cli.search.calibrate import Calibration, Null
from mmsearch_cli.search.fusion import agreement_fusion
from mmsearch_cli.search.rows import Row


def summary(sample: np.ndarray, min_spread: float = calibrate.MIN_SPREAD) -> dict[str, Any]:
    return calibrate._summary(np.asarray(sample, dtype=np.float64), min_spread)


def test_a_gaussian_null_gives_its_median_spread_and_threshold() -> None:
    rng = np.random.default_rng(1)
    null = Null.of(summary(rng.normal(0.3, 0.05, 20_000)))
    assert null.median == pytest.approx(0.3, abs=0.002)
    assert null.spread == pytest.approx(0.05, rel=0.03)  # the upper half's spread, in sd
    assert null.threshold == pytest.approx(cutoff.TAIL_Z)
    # at the 95th percentile of the null: the threshold, z = 0; at its median: -TAIL_Z
    assert null.z(0.3 + 1.6449 * 0.05) == pytest.approx(0.0, abs=0.05)
    assert null.z(0.3) == pytest.approx(-cutoff.TAIL_Z, abs=0.05)


def test_a_degenerate_null_does_not_divide_by_nothing() -> None:
    null = Null.of(summary(np.zeros(156), min_spread=1.0))  # no probe matched anything
    assert null.spread == 1.0 and null.threshold == 0.0
    assert null.z(4.0) == 4.0


def test_the_shown_score_is_half_at_the_threshold_and_rises_with_z() -> None:
    assert calibrate.score(0.0) == 0.5
    assert calibrate.score(2.0) == pytest.approx(0.9)
    assert calibrate.score(-cutoff.TAIL_Z) == pytest.approx(cutoff.CHANCE)
    assert round(cutoff.CHANCE, 3) == 0.141
    values = [calibrate.score(z) for z in np.linspace(-10, 10, 41)]
    assert values == sorted(values) and 0.0 < values[0] < values[-1] < 1.0
    assert calibrate.score(-math.inf) == 0.0 and calibrate.score(1e9) == 1.0


def _calibration(nulls: dict[str, np.ndarray], centroids: dict[str, np.ndarray]) -> Calibration:
    packed = {f: calibrate._pack(c) for f, c in centroids.items()}
    data = {
        "version": calibrate.VERSION,
        "spaces": {"text": {"centroids": packed,
                            "nulls": {"text": {f: summary(s) for f, s in nulls.items()}}}},
    }  # fmt: skip
    return Calibration(data)


def test_a_family_of_high_chance_scores_competes_fairly_with_prose() -> None:
    """Label sentences score high against any short query by chance; prose lower. The same
    raw cosine is worth less among labels: a paragraph at 0.45 outranks a label at 0.48."""
    rng = np.random.default_rng(2)
    dim = 8
    zero = np.zeros(dim, dtype=np.float32)
    cal = _calibration(
        {"text": rng.normal(0.25, 0.05, 500), "audio": rng.normal(0.45, 0.03, 500)},
        {"text": zero, "audio": zero},
    )
    prose = cal.z("text", "text", "text", 0.45, 0.0)
    label = cal.z("text", "text", "audio", 0.48, 0.0)
    assert prose > 0 > label
    per_space = {"text": [(1, 0.48), (2, 0.45)]}
    z = cal.z_scores(per_space, {1: "sound", 2: "chunk"}, {"text": np.ones(dim)}, "text")
    assert z is not None and z["text"][2] > z["text"][1]


def test_centring_takes_off_what_a_query_shares_with_every_item_of_a_family() -> None:
    """A query close to a family's mean vector ("the sound card" and every "the sound of ..."
    sentence) has that affinity taken off its scores there (CENTRE of it)."""
    centroid = np.array([0.4, 0.0, 0.0, 0.0], dtype=np.float32)
    cal = _calibration({"audio": np.full(200, 0.1)}, {"audio": centroid})
    query = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    base = cal.baselines("text", query)["audio"]
    assert base == pytest.approx(calibrate.CENTRE * 0.4, rel=1e-3)  # float16 storage
    near = cal.z("text", "text", "audio", 0.5, base)
    assert near < cal.z("text", "text", "audio", 0.5, 0.0)


def test_without_a_calibration_for_the_query_nothing_is_calibrated() -> None:
    cal = _calibration({"text": np.full(10, 0.2)}, {"text": np.zeros(4, np.float32)})
    assert cal.z_scores({"visual": [(1, 0.9)]}, {1: "image"}, {}, "image") is None
    assert cal.z_scores({"text": []}, {}, {}, "text") == {}
    # a family the calibration never saw sinks (its chance level is unknown)
    z = cal.z_scores({"text": [(1, 0.9)]}, {1: "sound"}, {"text": np.zeros(4)}, "text")
    assert z == {"text": {1: -math.inf}}


def test_video_queries_read_the_picture_calibration_and_plus_terms_their_own() -> None:
    assert calibrate.query_modality(["image"], "video") == "image"
    assert calibrate.query_modality(["audio"], "video") == "audio"
    assert calibrate.query_modality(["image", "text"], "text") == "text"
    assert calibrate.query_modality(["image"], "text") == "image"  # only a --plus-image
    assert calibrate.query_modality([], "text") is None
    assert calibrate.family_of("keyframe") == calibrate.family_of("image") == "image"
    assert calibrate.family_of("chunk") == "text" and calibrate.family_of("sound") == "audio"


def test_agreement_adds_other_spaces_positive_evidence_only() -> None:
    fused = agreement_fusion({"text": {"a": 2.0, "b": 1.0}, "lexical": {"a": -3.0, "b": 2.5}},
                             agreement=0.5)  # fmt: skip
    assert fused["a"] == 2.0  # a space that scored it below chance cannot sink it
    assert fused["b"] == pytest.approx(2.5 + 0.5 * 1.0)


def test_a_calibration_is_stale_when_missing_or_a_family_moved() -> None:
    data = {"version": calibrate.VERSION, "sizes": {"text": {"text": 100, "image": 40}}}
    assert calibrate.stale(None, {})
    assert calibrate.stale({**data, "version": 0}, data["sizes"])
    assert not calibrate.stale(data, {"text": {"text": 104, "image": 40}})  # within 5%
    assert calibrate.stale(data, {"text": {"text": 106, "image": 40}})
    assert calibrate.stale(data, {"text": {"text": 100, "image": 40, "audio": 3}})  # new family
    assert calibrate.stale(data, {"text": {"text": 100}})  # a family gone


def row(score: float, calibrated: bool = True, **extra: Any) -> Row:
    spaces = {"text": {"rank": 1, "score": 0.4, **({"calibrated": score} if calibrated else {})}}
    return Row(rank=1, score=score, path=f"/x/{score}", modality="image", kind="image",
               chunk=None, t=None, end=None, segments_matched=1, why="", text="",
               spaces=spaces, size=1, mtime=0.0, **extra)  # type: ignore[typeddict-item]  # fmt: skip


def test_auto_keeps_rows_above_chance_once_one_is_a_good_match() -> None:
    rows = [row(0.8), row(0.4), row(0.2), row(0.1)]
    cut = cutoff.cut(rows, "auto", nearest=3)
    assert [r["score"] for r in cut.rows] == [0.8, 0.4, 0.2] and cut.nearest == []
    assert cut.calibrated


def test_auto_says_no_good_match_with_the_nearest_rows() -> None:
    rows = [row(0.45), row(0.3), row(0.2), row(0.1)]
    cut = cutoff.cut(rows, "AUTO", nearest=3)
    assert cut.rows == [] and [r["score"] for r in cut.nearest] == [0.45, 0.3, 0.2]
    assert cutoff.cut(rows, "auto").nearest == []  # machine formats: just nothing


def test_a_number_keeps_rows_scoring_that_much() -> None:
    rows = [row(0.9), row(0.6), row(0.3)]
    assert [r["score"] for r in cutoff.cut(rows, 0.6).rows] == [0.9, 0.6]
    assert [r["score"] for r in cutoff.cut(rows, "0.95", nearest=2).nearest] == [0.9, 0.6]


def test_reranked_rows_are_cut_on_their_first_stage_score() -> None:
    rows = [row(0.99, first_stage_score=0.3), row(0.2, first_stage_score=0.6)]
    assert [r["score"] for r in cutoff.cut(rows, "auto").rows] == [0.99, 0.2]
    assert [r["score"] for r in cutoff.cut(rows, 0.5).rows] == [0.2]


def test_auto_on_an_index_without_calibration_keeps_everything_and_says_so() -> None:
    rows = [row(0.2, calibrated=False), row(0.1, calibrated=False)]
    cut = cutoff.cut(rows, "auto", nearest=3)
    assert cut.rows == rows and not cut.calibrated


@pytest.mark.parametrize("bad", ["high", "1.5", "-0.1", "nan", "inf"])
def test_a_bad_min_score_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError, match="--min-score"):
        cutoff.parse(bad)
    assert cutoff.parse(None) is None and cutoff.parse("0.25") == 0.25


def test_probes_are_many_distinct_and_not_from_the_sample_labels() -> None:
    probes = calibrate.probes()
    assert len(probes) >= 150 and len(set(probes)) == len(probes)
    assert not any(p.startswith("#") for p in probes)
