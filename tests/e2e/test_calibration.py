"""Calibrated scores on a real index of sample_data: "no good match", ``--min-score``, a
near-duplicate against an unrelated picture, ``mms eval``'s abstention figures, and the
calibration's life (made by ``mms index``, kept by a no-op run, missing in old indexes)."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

from PIL import Image

from mmsearch_cli.search.cutoff import CHANCE, GOOD
from tests.conftest import SAMPLE, copy_tree, invoke, mms_process

# Nothing in sample_data is about it; its words are in no file or path there.
ABSENT = "quantum computing error correction"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROW = re.compile(r"^\s*\d+\s+\d\.\d{3}\s")  # "#", then the score


def jsonl(*args: str | Path) -> list[dict]:
    res = invoke("query", *args, "--format", "jsonl", "--no-server")
    assert res.code in (0, 5), res.err
    return [json.loads(line) for line in res.text.splitlines()]


def test_an_absent_thing_says_no_good_match_and_dims_the_nearest(
    sample_index: tuple[Path, Path],
) -> None:
    _, index = sample_index
    res = mms_process("query", ABSENT, "--index", index, "--no-server",
                      env={"FORCE_COLOR": "1", "COLUMNS": "120"})  # fmt: skip
    assert res.returncode == 5, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    assert lines[0].startswith("no good match: nothing scored 0.500")
    rows = [line for line in lines if ROW.match(ANSI.sub("", line))]
    assert len(rows) == 3
    assert all(line.startswith("\x1b[2m") for line in rows)  # dimmed
    scores = [float(ANSI.sub("", line).split()[1]) for line in rows]
    assert scores == sorted(scores, reverse=True) and scores[0] < GOOD


def test_machine_formats_keep_every_row_unless_asked(sample_index: tuple[Path, Path]) -> None:
    _, index = sample_index
    assert len(jsonl(ABSENT, "--index", index)) == 10  # as before calibrated scores
    res = invoke("query", ABSENT, "--index", index, "-f", "jsonl", "--min-score", "auto",
                 "--no-server")  # fmt: skip
    assert res.code == 5 and res.out == b""
    res = invoke("query", ABSENT, "--index", index, "--min-score", "lots")
    assert res.code == 2 and "--min-score" in res.err


def test_min_score_auto_keeps_the_rows_above_chance(sample_index: tuple[Path, Path]) -> None:
    _, index = sample_index
    every = jsonl("a hammer", "--index", index, "-k", "100")
    kept = jsonl("a hammer", "--index", index, "-k", "100", "--min-score", "auto")
    assert len(every) == 100 and 0 < len(kept) < 100
    assert kept == every[: len(kept)]  # a cut, not a re-ranking
    assert kept[0]["score"] >= GOOD and all(r["score"] >= CHANCE for r in kept)
    assert "hammer" in kept[0]["path"]
    # every space says how far above chance it found the file, beside its own raw score
    assert all("calibrated" in s and "score" in s for s in kept[0]["spaces"].values())
    strict = jsonl("a hammer", "--index", index, "-k", "100", "--min-score", "0.9")
    assert strict and all(r["score"] >= 0.9 for r in strict)


def test_a_near_duplicate_scores_far_above_an_unrelated_picture(
    sample_index: tuple[Path, Path], tmp_path: Path
) -> None:
    _, index = sample_index
    original = SAMPLE / "images" / "tools" / "hammer1.webp"
    with Image.open(original) as im:  # re-encoded as JPEG at 60% of its size
        small = im.convert("RGB").resize((im.width * 6 // 10, im.height * 6 // 10))
    small.save(tmp_path / "copy.jpg", quality=70)
    rows = jsonl("--image", tmp_path / "copy.jpg", "--index", index, "-k", "100")
    assert rows[0]["path"] == str(original)
    assert rows[0]["score"] >= 0.95
    unrelated = [r["score"] for r in rows if "/fishes/" in r["path"]]
    assert unrelated and max(unrelated) < 0.5
    assert rows[0]["score"] - max(unrelated) > 0.5


def test_eval_reports_abstention_and_the_family_check(
    sample_index: tuple[Path, Path], tmp_path: Path
) -> None:
    _, index = sample_index
    queries = tmp_path / "q.jsonl"
    lines = [
        {"id": "a", "text": "a hammer", "relevant": {"images/tools/hammer1.webp": 2}},
        {"id": "b", "text": ABSENT, "relevant": {}},
        {"id": "c", "text": "why do dogs bark at strangers", "first": "text",
         "relevant": {"text/farm_animals_and_their_sounds.md": 2}},
    ]  # fmt: skip
    queries.write_text("".join(json.dumps(q) + "\n" for q in lines))
    res = invoke("eval", queries, "--index", index, "--root", SAMPLE, "--format", "json",
                 "--no-server")  # fmt: skip
    assert res.code == 0, res.err
    summary = json.loads(res.out)["systems"]["first-stage"]
    assert summary["answerable"] == 2  # the no-answer query is left out of the means
    abstain = summary["abstain"]
    assert abstain["calibrated"] and abstain["no_answer"] == 1
    assert abstain["abstained"] == 1 and abstain["recall"] == 1.0
    assert abstain["R@10"] >= abstain["R@10 cut"] > 0
    assert summary["first"] == {"queries": 1, "first": 1}
    table = invoke("eval", queries, "--index", index, "--root", SAMPLE, "--no-server")
    assert re.search(r"abstain\s+precision [\d.]+, recall 1.00 \(1 of 1", table.text)
    assert "1 of 1 queries had a relevant file of the asked family first" in table.text


NAMES = [
    *(f"images/tools/hammer{i}.webp" for i in (1, 2, 3, 4, 6, 7)),
    *(f"images/fishes/fish{i}.webp" for i in (1, 2, 3, 4, 5, 6)),
    "text/hand_tools.md", "text/coral_reef_fish.md", "audio/animals/dog.mp3",
]  # fmt: skip


def _calibration(index: Path) -> tuple[int, dict | None]:
    con = sqlite3.connect(index / "meta.sqlite")
    try:
        meta = {k: json.loads(v) for k, v in con.execute("SELECT key, value FROM meta")}
    finally:
        con.close()
    return int(meta["generation"]), meta.get("calibration")


def test_index_makes_a_calibration_and_a_no_op_run_keeps_it(tmp_path: Path) -> None:
    root, index = copy_tree(NAMES, tmp_path / "lib"), tmp_path / "index"
    assert invoke("index", root, "--index", index, "-q").code == 0
    generation, calibration = _calibration(index)
    assert calibration is not None
    assert set(calibration["spaces"]) == {"text", "visual", "audio", "lexical"}
    assert set(calibration["spaces"]["text"]["nulls"]) == {"text", "image", "audio"}
    sizes = calibration["sizes"]["text"]
    assert sizes["image"] == 12 and sizes["audio"] == 1 and sizes["text"] >= 2  # chunks
    assert invoke("index", root, "--index", index, "-q").code == 0  # nothing changed
    assert _calibration(index) == (generation, calibration)


def test_an_index_without_a_calibration_ranks_as_before_until_indexed(tmp_path: Path) -> None:
    root, index = copy_tree(NAMES, tmp_path / "lib"), tmp_path / "index"
    assert invoke("index", root, "--index", index, "-q").code == 0
    con = sqlite3.connect(index / "meta.sqlite")
    with con:  # as an index made before calibrated scores existed
        con.execute("DELETE FROM meta WHERE key = 'calibration'")
    con.close()
    res = invoke("query", "a hammer", "--index", index, "-f", "jsonl", "--min-score", "auto",
                 "--no-server")  # fmt: skip
    assert res.code == 0 and "run `mms index`" in res.err
    rows = [json.loads(line) for line in res.text.splitlines()]
    assert len(rows) == 10 and rows[0]["score"] == 1.0  # RRF: first in every space
    assert not any("calibrated" in s for r in rows for s in r["spaces"].values())
    assert invoke("index", root, "--index", index, "-q").code == 0  # a no-op run adds it
    assert _calibration(index)[1] is not None
    rows = jsonl("a hammer", "--index", index)
    assert all("calibrated" in s for s in rows[0]["spaces"].values())
