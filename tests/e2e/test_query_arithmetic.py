"""Query arithmetic: ``mms query "renewable energy" --minus windmill``, ``--plus "solar
panels"``, ``--plus-image F`` on the sample_data index (README, "Query arithmetic").

Each test compares the ranks a query gets with and without its terms, on the real index
and the real models; the concepts are sample_data's folder and file names."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SAMPLE, invoke
from tests.e2e.test_serve import Served

Index = tuple[Path, Path]
IMAGES = SAMPLE / "images"


def query(index: Index, *args: str | os.PathLike[str]) -> list[dict[str, object]]:
    res = invoke("query", *args, "--index", index[1], "--format", "jsonl", "--no-server")
    assert res.code == 0, res.err
    return [json.loads(line) for line in res.out.splitlines()]


def names(rows: list[dict[str, object]]) -> list[str]:
    return [os.path.relpath(str(r["path"]), SAMPLE) for r in rows]


def count(rows: list[dict[str, object]], concept: Callable[[str], bool]) -> int:
    return sum(map(concept, names(rows)))


def windmill(name: str) -> bool:
    return "windmill" in name


def test_minus_takes_a_concept_out_of_the_top_results(sample_index: Index) -> None:
    """The README's example: windmills leave the top 10, other renewable energy comes up."""
    before = query(sample_index, "renewable energy")
    after = query(sample_index, "renewable energy", "--minus", "windmill")
    assert count(before, windmill) >= 3, names(before)
    assert count(after, windmill) == 0, names(after)

    def other_energy(n: str) -> bool:
        return "renewable_energy/" in n and not windmill(n)

    assert count(after, other_energy) > count(before, other_energy)
    # the vector arithmetic alone (no lexical exclusion) moves the same way
    dense_before = query(sample_index, "renewable energy", "--space", "text")
    dense_after = query(sample_index, "renewable energy", "--space", "text", "--minus", "windmill")
    assert count(dense_after, windmill) < count(dense_before, windmill)


def test_plus_brings_the_added_concept_up(sample_index: Index) -> None:
    def solar(n: str) -> bool:
        return "solar" in n

    before = query(sample_index, "renewable energy")
    after = query(sample_index, "renewable energy", "--plus", "solar panels")
    assert count(after, solar) >= count(before, solar) + 3, (names(before), names(after))
    # Among pictures (ATTRIBUTION.md, which credits the solar panel photos, may lead the
    # mixed list): the added concept comes first.
    pictures = ("-t", "image")
    assert (
        first(query(sample_index, "renewable energy", "--plus", "solar panels", *pictures), solar)
        == 1
        < first(query(sample_index, "renewable energy", *pictures), solar)
    )


def test_lexical_minus_excludes_segments_with_the_word(sample_index: Index) -> None:
    args = ["energy", "--space", "lexical", "--segments", "-k", "30"]
    before = query(sample_index, *args)
    after = query(sample_index, *args, "--minus", "windmill")

    def says_windmill(row: dict[str, object]) -> bool:  # its words: text and file name
        return bool(re.search(r"windmill", f"{row['text']} {row['path']}", re.IGNORECASE))

    assert any(map(says_windmill, before))
    assert after and not any(map(says_windmill, after)), names(after)
    # what is left keeps its order: a filter, not a new ranking
    kept = [(r["path"], r["chunk"]) for r in before if not says_windmill(r)]
    assert [(r["path"], r["chunk"]) for r in after][: len(kept)] == kept[: len(after)]


def test_plus_image_pulls_look_alikes_up(sample_index: Index) -> None:
    fish = IMAGES / "fishes" / "fish1.webp"

    def is_fish(n: str) -> bool:
        return n.startswith("images/fishes/")

    before = query(sample_index, "an animal")
    after = query(sample_index, "an animal", "--plus-image", fish)
    assert count(after, is_fish) >= count(before, is_fish) + 3, names(after)
    assert "images/fishes/fish1.webp" not in names(query(sample_index, "an animal", "--plus-image",
                                                         fish, "-k", "50"))  # fmt: skip
    # a picture taken away: windmills leave a tower query
    tower = query(sample_index, "a tower", "--minus-image", IMAGES / "renewable_energy" /
                  "windmill.webp")  # fmt: skip
    assert count(tower, windmill) < count(query(sample_index, "a tower"), windmill)
    # a sound as a term (--plus-file): the audio space joins in
    duck = SAMPLE / "audio" / "animals" / "duck.mp3"
    sounds = query(sample_index, "a farm animal", "--plus-file", duck)
    assert count(sounds, lambda n: n.startswith("audio/")) > count(
        query(sample_index, "a farm animal"), lambda n: n.startswith("audio/")
    )


def test_media_query_minus_words(sample_index: Index) -> None:
    """Words change a picture query in the spaces that read text (not the visual one)."""
    eiffel = ["--image", str(IMAGES / "monuments" / "eiffelTower.jpg"), "-k", "20"]
    text = [*eiffel, "--space", "text"]
    before, after = query(sample_index, *text), query(sample_index, *text, "--minus", "windmill")
    assert count(after, windmill) < count(before, windmill), names(before)
    fused = query(sample_index, *eiffel), query(sample_index, *eiffel, "--minus", "windmill")
    assert first(fused[1], windmill) > first(fused[0], windmill), names(fused[0])


def first(rows: list[dict[str, object]], concept: Callable[[str], bool]) -> int:
    """The rank of the first row of ``concept`` (one past the last row if none)."""
    return next((n for n, name in enumerate(names(rows), 1) if concept(name)), len(rows) + 1)


@pytest.mark.parametrize(
    "term", ['NEAR( "unbalanced', "*", "AND OR NOT", '"', "^path:x", "windmill*", "(wind)"]
)
def test_fts5_syntax_in_minus_is_harmless(sample_index: Index, term: str) -> None:
    rows = query(sample_index, "renewable energy", "--minus", term)
    assert rows
    lexical = query(sample_index, "energy", "--space", "lexical", "--minus", term)
    assert lexical  # the expression parsed (a broken one would answer nothing)
    if "windmill" in term:
        assert count(lexical, windmill) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plus-image", "no/such/picture.jpg"], "--plus-image file not found"),
        (["--minus-image", "no/such/picture.jpg"], "--minus-image file not found"),
        (["--plus-image", str(SAMPLE / "text" / "owls.txt")], "cannot use"),
        (["--plus", "  "], "--plus was given empty text"),
        (["--minus", "a tower", "--minus", "a tower", "--space", "text"], "cancels the query"),
    ],
)
def test_bad_terms_are_usage_errors(sample_index: Index, args: list[str], message: str) -> None:
    res = invoke("query", "a tower", *args, "--index", sample_index[1], "--no-server")
    assert res.code == 2, res.err
    assert message in res.err and len(res.err.strip().splitlines()) == 1, res.err


def test_served_query_carries_the_terms(
    sample_index: Index, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLE)  # a relative file: the client sends it absolute
    server = Served(sample_index[1], tmp_path / "serve.log")
    try:
        for terms in (["--minus", "windmill", "--plus", "solar panels"],
                      ["--plus-image", "images/renewable_energy/dam1.jpg"]):  # fmt: skip
            args = ["query", "renewable energy", *terms, "--index", sample_index[1], "-f", "json"]
            via_server, alone = invoke(*args), invoke(*args, "--no-server")
            assert via_server.code == alone.code == 0, via_server.err
            assert via_server.out == alone.out
            plain = invoke("query", "renewable energy", "--index", sample_index[1], "-f", "json")
            assert plain.out != alone.out  # the terms reached the server
        assert server.logged(" query ", 4)  # the server answered, not a fallback
    finally:
        server.stop()
