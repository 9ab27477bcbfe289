"""`mms query --format html`: the contact sheet, its thumbnail cache, hostile names, and
the page as headless Chromium renders it (issue 18).

The Chromium test needs Debian's ``chromium`` (``.ci/run`` installs it; when running as
root the fixture installs it once) and is skipped, with the reason, without it. Its
screenshot is kept in ``tests/artifacts/html_sheet.png``.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
import stat
from pathlib import Path

import pytest
from PIL import Image
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from tests.conftest import ROOT, SAMPLE, invoke, mms_process
from tests.support import chromium

HOSTILE = "<img src=x onerror=alert(1)>.jpg"
NOT_UTF8 = b"caf\xe9 sheep.jpg"  # Latin-1: not valid UTF-8
SCRIPT_NOTE = (
    "Hand tools: a claw hammer drives nails, a mallet taps chisels.\n"
    '<script>alert("pwned")</script> <b onmouseover=alert(2)>bold</b> & friends\n'
)
NOTE = "tools & 'notes' <i>.txt"
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture(scope="module")
def sheet_index(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Real files of every kind, two with hostile names, one with hostile text: (root, index)."""
    root = tmp_path_factory.mktemp("sheet-media")
    for name, dest in [
        ("images/farm_animals/cow.jpg", HOSTILE),
        ("images/tools/hammer1.webp", "hammer1.webp"),
        ("video/earth.mp4", "earth.mp4"),
        ("audio/animals/dog.mp3", "dog.mp3"),
        ("audio/speech/diy.wav", "diy.wav"),
        ("documents/bicycle_manual.pdf", "bicycle_manual.pdf"),
    ]:
        shutil.copy2(SAMPLE / name, root / dest)
    shutil.copy2(SAMPLE / "images/farm_animals/sheep.jpg", os.fsencode(root) + b"/" + NOT_UTF8)
    (root / NOTE).write_text(SCRIPT_NOTE, encoding="utf-8")
    index = tmp_path_factory.mktemp("sheet-index")
    res = invoke("index", root, "--index", index, "-q")
    assert res.code == 0, res.err
    return root, index


def page(index: Path, cache: Path, *args: str) -> bytes:
    res = invoke("query", "a hammer", "-k", "50", "--format", "html", "--index", index,
                 "--no-server", *args, env={"XDG_CACHE_HOME": str(cache)})  # fmt: skip
    assert res.code == 0, res.err
    return res.out


def cache_files(cache: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in (cache / "mms" / "thumbs").rglob("*.jpg")}


def test_hostile_names_and_text_are_inert(sheet_index: tuple[Path, Path], tmp_path: Path) -> None:
    _, index = sheet_index
    out = page(index, tmp_path / "cache")
    tree = HTMLParser(out.decode())
    cards = tree.css("li.hit")
    assert len(cards) == 8  # every file: the query matched each in some space
    assert tree.css("script") == [] and tree.css("iframe") == [] and tree.css("object") == []
    handlers = [
        (node.tag, attr) for node in tree.root.traverse() for attr in node.attributes
        if attr.lower().startswith("on")
    ]  # fmt: skip
    assert handlers == []
    assert b"<img src=x" not in out and b"<script>" not in out and b"<b onmouseover" not in out
    assert b"&lt;img src=x onerror=alert(1)&gt;.jpg" in out
    assert b"&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;" in out
    # Every image is an inline thumbnail; every link points at a file on disk.
    assert {img.attributes["src"][:23] for img in tree.css("img")} == {"data:image/jpeg;base64,"}
    links = {a.attributes["href"] for a in tree.css("a[href]")}
    assert all(str(href).startswith("file:///") for href in links)
    assert (tree.css_first("meta[http-equiv]").attributes["content"] or "").startswith(
        "default-src 'none'"
    )  # no script may run even if something slipped through
    hostile = Path(os.fsdecode(sheet_index[0] / HOSTILE))
    assert hostile.as_uri() in links
    names = [n.text() for n in tree.css(".name")]
    assert HOSTILE in names and "caf\\xe9 sheep.jpg" in names  # shown as text, undecodable byte
    assert (sheet_index[0] / "caf%E9%20sheep.jpg").as_posix() in " ".join(map(str, links))


def test_each_kind_gets_its_media(sheet_index: tuple[Path, Path], tmp_path: Path) -> None:
    root, index = sheet_index
    tree = HTMLParser(page(index, tmp_path / "cache").decode())
    by_name = {card.css_first(".name").text(): card for card in tree.css("li.hit")}
    for name in (HOSTILE, "hammer1.webp", "earth.mp4", "bicycle_manual.pdf"):
        src = by_name[name].css_first("img").attributes["src"] or ""
        thumb = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        assert thumb.format == "JPEG" and max(thumb.size) == 256, (name, thumb.size)
    video_link = by_name["earth.mp4"].css_first(".media a").attributes["href"] or ""
    assert video_link.startswith((root / "earth.mp4").as_uri() + "#t=")
    pdf_link = by_name["bicycle_manual.pdf"].css_first(".media a").attributes["href"] or ""
    assert pdf_link.startswith((root / "bicycle_manual.pdf").as_uri() + "#page=")
    speech = by_name["diy.wav"]
    audio = speech.css_first("audio")
    assert audio.attributes["preload"] == "none"
    assert (audio.attributes["src"] or "").startswith((root / "diy.wav").as_uri() + "#t=")
    said = speech.css_first(".said").html or ""
    assert "<mark>hammer</mark>" in said  # the transcript line, the query's word marked
    note = by_name[NOTE].css_first(".snippet").html or ""
    assert "<mark>hammer</mark>" in note and "&lt;script&gt;" in note
    assert all(card.css_first("details summary") for card in by_name.values())  # folded


def test_thumbnails_are_cached_and_reused(sheet_index: tuple[Path, Path], tmp_path: Path) -> None:
    _, index = sheet_index
    cache = tmp_path / "cache"
    first = page(index, cache)
    made = cache_files(cache)
    # image x2, video frame, PDF page, the undecodable name's photo; failures are empty
    assert len([p for p in made if p.stat().st_size]) == 5
    again = page(index, cache)
    assert again == first
    assert cache_files(cache) == made  # nothing re-made, nothing re-written
    bare = page(index, tmp_path / "other", "--format", "html")
    assert bare == first  # the same page from a fresh cache


@pytest.fixture(scope="session")
def chromium_exe() -> str:
    exe, why = chromium.chromium()
    if exe is None:
        pytest.skip(f"chromium not installed: {why}")
    return exe


def test_page_renders_in_chromium_without_errors(
    sheet_index: tuple[Path, Path], tmp_path: Path, chromium_exe: str
) -> None:
    root, index = sheet_index
    html_file = tmp_path / "results.html"
    html_file.write_bytes(page(index, tmp_path / "cache"))
    # The test's own script: start each player and report where it starts (media
    # fragments, and the page's Content-Security-Policy letting file: media through).
    probe = (
        "Promise.all(Array.from(document.querySelectorAll('audio'), a => "
        "a.play().then(() => { a.pause(); return [a.src, a.currentTime]; }, e => String(e))))"
    )
    shown = chromium.load(chromium_exe, html_file, probe=probe)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "html_sheet.png"
    shot.write_bytes(shown.screenshot)
    print(f"screenshot: {shot}")
    assert shown.errors == []
    assert len(shown.images) == 5
    assert all(img["complete"] and img["w"] > 0 and img["h"] > 0 for img in shown.images)
    assert Image.open(shot).size[0] == 1280
    players = shown.probe
    assert len(players) == 2 and all(isinstance(p, list) for p in players), players
    for src, now in players:  # each starts at its #t= (the sound's best window)
        assert abs(now - float(src.rsplit("#t=", 1)[1])) < 0.3, (src, now)
    assert root.as_uri() in players[0][0]


def test_open_writes_a_private_page_and_starts_the_browser(
    sheet_index: tuple[Path, Path], tmp_path: Path
) -> None:
    _, index = sheet_index
    seen = tmp_path / "browser-got"
    browser = tmp_path / "fake-browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {seen}\n')
    browser.chmod(0o755)
    env = {"BROWSER": str(browser), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = mms_process("query", "a hammer", "-k", "3", "--open", "--index", index,
                       "--no-server", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.decode().strip())
    assert written.name == "results.html" and written.read_bytes().startswith(b"<!DOCTYPE html>")
    assert stat.S_IMODE(written.parent.stat().st_mode) == 0o700
    assert seen.read_text() == written.as_uri()
    shutil.rmtree(written.parent)
    wrong = invoke("query", "a hammer", "--open", "--format", "json", "--index", index)
    assert wrong.code == 2 and "--open" in wrong.err
