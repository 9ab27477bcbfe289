"""`--preview`: thumbnails drawn by textual-image on terminals that show images, and the
plain table everywhere else."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from unittest import mock

import pytest
from rich.console import Console

from mmsearch_cli.cli.console import print_table
from mmsearch_cli.cli.preview import detect, preview_for, thumbnail
from tests.conftest import SAMPLE
from tests.unit.cli.test_table import row

PICTURES = [
    row(1, str(SAMPLE / "images/farm_animals/dog.webp"), "image", "German Shepherd Dog 0.98"),
    row(2, str(SAMPLE / "audio/animals/dog.mp3"), "audio", "sounds: Dog 0.92", t=0.0),
    row(3, str(SAMPLE / "images/farm_animals/cow.jpg"), "image", "ox 0.61"),
]


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("term", ["dumb", ""])
def test_a_dumb_terminal_gets_no_images(term: str) -> None:
    assert detect(Tty(), Tty(), {"TERM": term}) == "none"
    assert detect(Tty(), Tty(), {}) == "none"  # TERM unset


def test_no_images_when_stdout_or_stdin_is_not_a_terminal() -> None:
    assert detect(io.StringIO(), Tty(), {"TERM": "xterm-kitty"}) == "none"
    assert detect(Tty(), io.StringIO(), {"TERM": "xterm-kitty"}) == "none"


def test_the_preview_is_off_without_graphics_or_pictures() -> None:
    assert preview_for(PICTURES, protocol="none") is None
    assert preview_for(PICTURES[1:2], protocol="kitty") is None  # nothing to show


@pytest.fixture(autouse=True)
def thumbnail_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # not the user's cache


def test_thumbnails_of_pictures_video_frames_and_pdf_pages_none_for_sounds() -> None:
    picture = thumbnail(PICTURES[0])
    assert picture is not None and max(picture.size) <= 256
    frame = thumbnail(row(4, str(SAMPLE / "video/earth.mp4"), "video", "", t=3.0))
    page = thumbnail(row(5, str(SAMPLE / "documents/bicycle_manual.pdf"), "text", "", page=1))
    assert frame is not None and page is not None
    assert thumbnail(PICTURES[1]) is None
    gone = row(9, str(SAMPLE / "images/no such file.jpg"), "image", "")
    broken = row(9, str(SAMPLE / "broken/truncated.jpg"), "image", "")
    assert thumbnail(gone) is None and thumbnail(broken) is None


def render(protocol: str) -> tuple[str, str]:
    """The table with thumbnails for a forced protocol: (what rich printed, what the
    library sent straight to the terminal, i.e. kitty's image uploads)."""
    preview = preview_for(PICTURES, protocol=protocol)
    assert preview is not None
    table, direct = io.StringIO(), io.StringIO()
    with mock.patch.object(sys, "__stdout__", direct):
        print_table(PICTURES, preview=preview, out=Console(
            file=table, width=120, force_terminal=True, color_system="truecolor"))  # fmt: skip
    return table.getvalue(), direct.getvalue()


def test_kitty_gets_each_picture_uploaded_and_placed_in_its_row() -> None:
    table, uploads = render("kitty")
    assert uploads.count("\x1b_G") >= 4 and "f=100" in uploads and "U=1" in uploads
    lines = table.splitlines()
    placed = [n for n, line in enumerate(lines) if "\U0010eeee" in line]
    assert placed, table
    rows_at = {line.split()[0]: n for n, line in enumerate(lines) if line[:1].isdigit()}
    assert rows_at["1"] in placed and rows_at["3"] in placed and rows_at["2"] not in placed
    assert "dog.webp" in lines[rows_at["1"]] and "dog.mp3#t=0.0" in lines[rows_at["2"]]


def test_sixel_terminals_get_sixel_images_in_the_table() -> None:
    table, direct = render("sixel")
    assert direct == ""
    assert table.count("\x1bP") == 2 and table.count("\x1b\\") >= 2  # two pictures
    assert "dog.webp" in table and "cow.jpg" in table
