"""The result table is for people: paths fit their column whole or shortened in the middle
(never wrapped), the why column wraps at words, families are marked by a word, and each
row's --explain details sit right under it."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console

from mmsearch_cli.cli.console import fit_path, print_table, shown_path
from mmsearch_cli.search.rows import Row
from tests.conftest import SAMPLE

HOME = os.path.expanduser("~")
DEEP = f"{HOME}/Pictures/2019/Holidays in Iceland/day three/IMG_20190612_143200_HDR.jpg"


def row(rank: int, path: str, modality: str, why: str, **extra: object) -> Row:
    base = {
        "rank": rank, "score": 1.0 - rank / 10, "path": path, "modality": modality,
        "kind": "image", "chunk": None, "t": None, "end": None, "segments_matched": 1,
        "why": why, "text": "", "size": 1, "mtime": 0.0,
        "spaces": {"text": {"rank": rank, "score": 0.5},
                   "lexical": {"rank": rank + 2, "score": 6.7, "matched": "a [red] dress"}},
    }  # fmt: skip
    return Row(**{**base, **extra})  # type: ignore[typeddict-item]


# fmt: off
ROWS = [
    row(1, DEEP, "image", "dress 0.81, gown 0.12; scene: beach 0.4 (outdoors: sand, sea); "
        "colours: red, white"),
    row(2, str(SAMPLE / "audio/animals/dog.mp3"), "audio", "sounds: Animal 0.93, Dog 0.92",
        t=12.0, kind="sound"),
    row(3, "/srv/archive/scans/2001/letters/to the harbour master.pdf", "text",
        "“the harbour master wrote that the red dress arrived …”", page=4, kind="chunk",
        segments_matched=3),
]
# fmt: on


def render(rows: list[Row], width: int, **options: object) -> list[str]:
    buf = io.StringIO()
    print_table(rows, out=Console(file=buf, width=width, highlight=False), **options)  # type: ignore[arg-type]
    return buf.getvalue().splitlines()


@pytest.mark.parametrize("width", [80, 160])
def test_each_path_is_on_one_line_of_its_row_whole_or_shortened_in_the_middle(
    width: int,
) -> None:
    lines = render(ROWS, width)
    assert lines[0].split() == ["#", "score", "type", "path", "why"]
    for r in ROWS:
        shown = shown_path(r)
        first = next(line for line in lines if line.lstrip().startswith(f"{r['rank']} "))
        name = shown.rsplit("/", 1)[1]
        assert name in first, (name, first)  # the file name stays whole
        cell = first.split("  ")[3:]  # rank, score, type, then the path
        path_cell = next(c for c in cell if c.strip()).strip()
        assert path_cell == shown or (
            "…" in path_cell and path_cell.endswith(name)
            and shown.startswith(path_cell.split("…")[0])
        ), (path_cell, shown)  # fmt: skip
        assert all(len(line) <= width for line in lines)
    if width == 160:
        assert "~/Pictures/2019/Holidays in Iceland/day three/" in "\n".join(lines)


def test_paths_under_home_start_with_a_tilde_and_machine_fields_stay_absolute() -> None:
    assert shown_path(ROWS[0]) == DEEP.replace(HOME, "~", 1)
    assert shown_path(ROWS[1]).endswith("dog.mp3#t=12.0")
    assert shown_path(ROWS[2]).endswith("master.pdf#page=4")
    assert ROWS[0]["path"] == DEEP  # the row itself (json, tsv, paths) is untouched


def test_paths_are_shown_from_the_indexed_folder_when_that_is_shorter() -> None:
    roots = ["/srv/archive/", f"{HOME}/Pictures"]
    assert (
        shown_path(ROWS[2], roots=roots)
        == "archive/scans/2001/letters/to the harbour master.pdf#page=4"
    )
    # ~/Pictures/... and Pictures/...: the folder's own name is shorter than "~/"
    assert shown_path(ROWS[0], roots=roots) == DEEP.replace(f"{HOME}/", "", 1)
    assert shown_path(ROWS[2], roots=["/srv/arch"]) == ROWS[2]["path"] + "#page=4"  # not a prefix
    lines = render([ROWS[2]], 160, roots=roots)
    assert any("archive/scans/2001" in line and "/srv/" not in line for line in lines)


def test_explain_details_sit_directly_under_their_own_row() -> None:
    for width in (80, 160):
        lines = render(ROWS, width, explain=True)
        starts = [i for i, line in enumerate(lines) if line[:1].isdigit()]
        assert len(starts) == len(ROWS)
        for n, start in enumerate(starts):
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            block = lines[start:end]
            details = [i for i, line in enumerate(block) if "lexical #" in line]
            assert len(details) == 1, block
            # after the row's own lines (why may wrap), before the next row
            assert all("text #" not in line for line in block[: details[0]])
            assert f"lexical #{n + 3} (6.700): a [red] dress" in " ".join(block[details[0] :])


def test_families_are_named_in_words_so_the_table_reads_without_colour() -> None:
    lines = render(ROWS, 160)
    assert [line.split()[2] for line in lines[1:] if line[:1].isdigit()] == [
        "image", "audio", "text"]  # fmt: skip


def test_families_have_colours_on_a_terminal_and_none_under_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def coloured() -> str:
        buf = io.StringIO()
        print_table(ROWS[:1], out=Console(file=buf, width=120, force_terminal=True,
                                          color_system="standard"))  # fmt: skip
        return buf.getvalue()

    assert "\x1b[32mimage" in coloured()
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[32m" not in coloured() and "image" in coloured()


def test_control_characters_are_escaped_in_every_cell() -> None:
    evil = row(1, "/tmp/evil\x1b[31mred\x07.txt", "text", "why \x1b]0;title\x07",
               spaces={"lexical": {"rank": 1, "score": 1.0, "matched": "x\x1b[2J"}})  # fmt: skip
    text = "\n".join(render([evil], 160, explain=True))
    assert "\x1b" not in text and "\x07" not in text
    assert "evil\\x1b[31mred\\x07.txt" in text and "x\\x1b[2J" in text


PATH_PARTS = st.lists(
    st.text(alphabet=st.characters(blacklist_characters="/", blacklist_categories=["Cs", "Cc"]),
            min_size=1, max_size=30), min_size=1, max_size=8,
)  # fmt: skip


@given(parts=PATH_PARTS, width=st.integers(min_value=1, max_value=120))
def test_a_shortened_path_always_fits_and_keeps_what_it_can(parts: list[str], width: int) -> None:
    text = "/".join(["~", *parts])
    fitted = fit_path(text, width)
    assert cell_len(fitted) <= width
    if cell_len(text) <= width:
        assert fitted == text
    elif cell_len("…/" + parts[-1]) <= width:
        assert fitted.endswith("/" + parts[-1])  # the file name stays whole


def test_shortening_keeps_the_files_folder_and_the_top_then_the_name_start_and_extension() -> None:
    short = DEEP.replace(HOME, "~", 1)
    assert fit_path(short, 60) == "~/Pictures/2019/…/day three/IMG_20190612_143200_HDR.jpg"
    assert fit_path(short, 45) == "~/…/day three/IMG_20190612_143200_HDR.jpg"
    assert fit_path(short, 20) == "IMG_20190612_14….jpg"
    clip = "/a/b/clip_of_a_dog_barking_loudly.mp3#t=12.0"
    assert fit_path(clip, 24) == "clip_of_a_do….mp3#t=12.0"
    assert fit_path("/a/b/日本語の長いファイル名です.jpg", 16).endswith("….jpg")


def test_a_real_picture_row_renders_without_a_preview_by_default() -> None:
    picture = row(1, str(SAMPLE / "images/farm_animals/dog.webp"), "image", "dog 0.98")
    assert Path(picture["path"]).is_file()
    assert render([picture], 80)[1].split()[:3] == ["1", "0.900", "image"]
