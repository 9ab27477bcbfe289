"""``--min-score``: which result rows to keep, and when there is no good match.

A calibrated score (``search.calibrate``) has a fixed meaning in every index: ``GOOD``
(0.5) is better than 95% of off-topic queries' best match in the same space and family,
``CHANCE`` (0.141) is what a typical off-topic query's best match scores. So:

* ``--min-score auto``: if no row reaches ``GOOD`` there is no good match; else the rows
  down to ``CHANCE`` are kept (rows below it are what any query gets). Measured on
  sample_data's labelled queries, cutting every row below ``GOOD`` instead lost 13 points
  of R@10 (related files of grade 1 score lower); this rule loses 1.5.
* ``--min-score 0.7``: rows scoring at least 0.7.

An index without a calibration (made before there was one) has fused RRF scores, which
mean nothing absolute: ``auto`` keeps every row there, and ``calibrated`` says so.

Light on purpose (no numpy): a command that ``mms serve`` answered cuts its rows here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from mmsearch_cli.errors import UsageError
from mmsearch_cli.search.rows import Row

AUTO = "auto"
# The shown score is logistic(SLOPE * z), z in spreads above the threshold: 0.5 at the
# threshold, 0.9 two spreads above it. The threshold is the null's 95th percentile, which
# is TAIL_Z spreads above its median (the spread is measured that way).
SLOPE = math.log(9.0) / 2.0
TAIL_Z = 1.6449
GOOD = 0.5
CHANCE = 1.0 / (1.0 + math.exp(SLOPE * TAIL_Z))  # 0.141
NEAREST = 3  # rows shown, dimmed, under "no good match"


@dataclass
class Cut:
    rows: list[Row]  # the rows kept
    nearest: list[Row] = field(default_factory=list)  # when none was kept: the best ones
    calibrated: bool = True  # False: an index without calibration (``auto`` kept all)


def parse(value: str | float | None) -> str | float | None:
    """``auto``, a score from 0 to 1, or None (no cut)."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = math.nan
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise UsageError(f"--min-score takes 'auto' or a score from 0 to 1, not {value!r}")
    return score


def calibrated(row: Row) -> bool:
    """The row was scored by a calibrated index (each space says how far above chance)."""
    return any("calibrated" in entry for entry in row.get("spaces", {}).values())


def _first_stage(row: Row) -> float:
    """The score ``--min-score`` reads: before reranking, which re-scores on its own scale."""
    return float(row.get("first_stage_score", row["score"]))


def cut(rows: Sequence[Row], min_score: str | float | None, *, nearest: int = 0) -> Cut:
    """The rows ``min_score`` keeps; when it keeps none, the ``nearest`` best rows."""
    wanted = parse(min_score)
    rows = list(rows)
    if wanted is None or not rows:
        return Cut(rows)
    if wanted == AUTO:
        if not all(calibrated(r) for r in rows):
            return Cut(rows, calibrated=False)
        if max(_first_stage(r) for r in rows) < GOOD:
            return Cut([], rows[:nearest])
        floor = CHANCE
    else:
        assert isinstance(wanted, float)
        floor = wanted
    kept = [r for r in rows if _first_stage(r) >= floor]
    return Cut(kept, [] if kept else rows[:nearest], all(calibrated(r) for r in rows))
