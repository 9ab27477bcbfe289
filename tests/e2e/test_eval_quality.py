"""The quality guard CI runs: `mms eval` on sample_data/ must stay above a measured bar.

sample_data/ names its files by their labels (images/tools/hammer8.webp) and the lexical
space reads path words, so the guard runs on a copy with opaque names in one flat folder
(benchmarks/eval_sets.py): what it measures is content, not names.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, invoke

# Measured on the opaque copy, builtin profile with the lexical space, first stage (see
# README, "Ranking, reranking and measured quality"). With label names and without the
# lexical space it was nDCG@10 0.713, MRR@10 0.850 (issue 4).
MIN_NDCG = 0.70
MIN_MRR = 0.83


def _eval_sets():  # benchmarks/ is not a package
    spec = importlib.util.spec_from_file_location("eval_sets", ROOT / "benchmarks/eval_sets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_sets"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def opaque_sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """sample_data/ under opaque names, indexed: (queries file, index dir)."""
    copy = tmp_path_factory.mktemp("sample-opaque")
    queries = _eval_sets().opaque_copy(SAMPLE, SAMPLE / "queries.jsonl", copy)
    index = tmp_path_factory.mktemp("sample-opaque-index")
    res = invoke("index", copy, "--index", index, "-q")
    assert res.code in (0, 6), res.err  # 6: the damaged files fail by design
    yield queries, index


def test_names_in_the_copy_say_nothing_of_the_labels(opaque_sample: tuple[Path, Path]) -> None:
    queries, _ = opaque_sample
    names = [p.name for p in queries.parent.iterdir() if p.name.startswith("m")]
    assert names and all(p[:1] == "m" and p[1:5].isdigit() for p in names)
    relevant = {p for q in map(json.loads, queries.read_text().splitlines()) for p in q["relevant"]}
    assert relevant <= set(names)


def test_sample_data_eval_stays_above_the_bar(opaque_sample: tuple[Path, Path]) -> None:
    queries, index = opaque_sample
    res = invoke("eval", queries, "--index", index, "--format", "json", "--per-query",
                 "--min-ndcg", str(MIN_NDCG), "--min-mrr", str(MIN_MRR))  # fmt: skip
    assert res.code == 0, res.err + res.text[-2000:]
    data = json.loads(res.out)
    overall = data["systems"]["first-stage"]["groups"]["all"]
    assert overall["queries"] == 66  # 53, and 13 questions a document answers ("first")
    assert overall["nDCG@10"] >= MIN_NDCG
    # The bar really bites: an impossible bar exits with the quality code.
    res = invoke("eval", queries, "--index", index, "--min-ndcg", "0.999", "-q")
    assert res.code == 9 and "below the bar" in res.err
