"""The HTML contact sheet's pieces without models: escaping, marking, links, thumbnails."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

from PIL import Image
from selectolax.lexbor import LexborHTMLParser

from mmsearch_cli.search.rows import Hit, Row, to_row
from mmsearch_cli.search.sheet import _marked, _pattern, render_html
from mmsearch_cli.search.thumbs import cache_key, thumbnail
from tests.conftest import SAMPLE

WEIRD = os.fsdecode(b"/tmp/caf\xe9 <b>&\x01.txt")  # not UTF-8, markup, a control byte


def rows() -> list[Row]:
    spaces = {"lexical": {"rank": 1, "score": 3.2, "matched": "the [geese] & <b>[ducks]</b>"}}
    text = "Geese & ducks <script>x()</script> amp &amp; lt"
    hits = [
        Hit(1, 0.9, WEIRD, "text", "chunk", 0, None, None, "“quote”", text, 2, spaces),
        Hit(2, 0.5, "/m/a b#?.mp3", "audio", "speech", None, 12.34, 15.0, "x", "a goose honks", 1),
    ]
    return [to_row(h) for h in hits]


def page() -> str:
    buf = io.BytesIO()
    render_html(rows(), buf, query="goose ducks", thumbs=False)
    return buf.getvalue().decode("utf-8")  # strictly valid UTF-8


def test_matched_words_are_marked_after_escaping_and_never_inside_an_entity() -> None:
    pattern = _pattern("amp lt", [])
    assert _marked("a < b & amp", pattern) == "a &lt; b &amp; <mark>amp</mark>"
    stems = _pattern("goose", rows())  # "geese" comes from the lexical space's snippet
    assert _marked("Geese & goslings, a goose", stems) == (
        "<mark>Geese</mark> &amp; goslings, a <mark>goose</mark>"
    )
    assert _pattern("the a", []) is None  # stop words only: nothing to mark


def test_page_escapes_text_and_links_to_the_exact_bytes() -> None:
    html = page()
    tree = LexborHTMLParser(html)
    assert tree.css("script") == [] and "<script>" not in html and "<b>" not in html
    links = [a.attributes["href"] for a in tree.css("a[href]")]
    assert links == ["file:///tmp/caf%E9%20%3Cb%3E%26%01.txt", "file:///m/a%20b%23%3F.mp3#t=12.3"]
    assert tree.css_first(".name").text() == "caf\\xe9 <b>&\ufffd.txt"
    audio = tree.css_first("audio")
    assert audio.attributes["src"] == "file:///m/a%20b%23%3F.mp3#t=12.3"
    assert "<mark>goose</mark>" in (tree.css_first(".said").html or "")
    snippet = tree.css_first(".snippet").html or ""
    assert "<mark>Geese</mark> &amp; <mark>ducks</mark> &lt;script&gt;" in snippet
    details = tree.css_first("details").html or ""
    assert "the <mark>geese</mark> &amp; &lt;b&gt;<mark>ducks</mark>&lt;/b&gt;" in details


def test_thumbnails_are_cached_by_content_and_remade_when_damaged(tmp_path: Path) -> None:
    photo = tmp_path / "cow.jpg"
    shutil.copy2(SAMPLE / "images/farm_animals/cow.jpg", photo)
    cache = tmp_path / "cache"
    first = thumbnail(photo, cache=cache)
    assert first is not None and max(Image.open(io.BytesIO(first)).size) == 256
    entry = cache / cache_key(photo, None, 256, None)[:2]
    (stored,) = entry.iterdir()
    mtime = stored.stat().st_mtime_ns
    assert thumbnail(photo, cache=cache) == first and stored.stat().st_mtime_ns == mtime
    stored.write_bytes(first[:100])  # torn by a crash: not a whole JPEG
    assert thumbnail(photo, cache=cache) == first
    assert thumbnail(photo, size=64, cache=cache) != first  # the size is part of the key
    shutil.copy2(SAMPLE / "broken/empty.jpg", tmp_path / "empty.jpg")
    assert thumbnail(tmp_path / "empty.jpg", cache=cache) is None  # a placeholder, no error
    assert thumbnail(tmp_path / "missing.jpg", cache=cache) is None
    assert thumbnail(SAMPLE / "text/owls.txt", cache=cache) is None


def test_video_frames_are_taken_at_t(tmp_path: Path) -> None:
    video = SAMPLE / "video/earth.mp4"
    start, later = thumbnail(video, 0.0, cache=tmp_path), thumbnail(video, 20.0, cache=tmp_path)
    assert start and later and start != later
    assert thumbnail(video, 20.04, cache=tmp_path) == later  # #t= precision: one entry
