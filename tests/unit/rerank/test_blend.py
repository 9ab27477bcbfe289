"""The score blend of the second stage, on numbers whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from mmsearch_cli.errors import UsageError
from mmsearch_cli.rerank.stage import blend_scores


def order(x: np.ndarray) -> list[int]:
    return [int(i) for i in np.argsort(-x, kind="stable")]


def test_blend_ties_unscored_and_bad_alpha() -> None:
    # alpha=0 keeps first-stage ties as ties, so a stable sort keeps their input order.
    tied = blend_scores(np.array([0.5, 0.5, 0.2]), np.array([-3.0, 4.0, 9.0]), 0.0)
    assert list(np.argsort(-tied, kind="stable")) == [0, 1, 2]
    # A NaN logit (candidate without text) keeps its scaled first-stage score.
    mixed = blend_scores(np.array([0.9, 0.5, 0.1]), np.array([np.nan, 2.0, 6.0]), 1.0)
    assert mixed[0] == pytest.approx(1.0) and mixed[2] == pytest.approx(1.0)
    assert mixed[1] == pytest.approx(0.0)
    with pytest.raises(UsageError):
        blend_scores(np.zeros(2), np.zeros(2), 1.5)
    with pytest.raises(ValueError):
        blend_scores(np.zeros(2), np.zeros(3), 0.5)
