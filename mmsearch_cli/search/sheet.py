"""Results as one self-contained HTML page: a contact sheet (``mms query --format html``).

One file that works offline: inline CSS, thumbnails inline as ``data:`` URIs, no script,
nothing fetched. Per hit: a picture's thumbnail, a video's frame at ``t`` linked with
``#t=``, an ``<audio>`` player that starts at ``t`` (with the transcript line for speech),
a text hit's snippet with the matched words marked, a PDF page's thumbnail; then score,
"why", and the ``--explain`` details folded in ``<details>``.

Every string that comes from a file (names, OCR words, transcripts, tags, snippets) is
HTML-escaped where it is written, attribute values quoted; a Content-Security-Policy
that allows no script at all backs that up. Links are ``file://`` URIs built from the
path's bytes, so names that are not UTF-8 still open the right file.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from mmsearch_cli.config import Limits
from mmsearch_cli.search.rows import Row
from mmsearch_cli.search.thumbs import SIZE, can_thumbnail, thumbnail
from mmsearch_cli.store.lexical import terms

SNIPPET_CHARS = 360  # of a text hit, around its first matched word
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # not allowed in HTML text
_BRACKETED = re.compile(r"\[([^\[\]]{1,200})\]")  # FTS5 snippet marks (store/db.py)
_WORD = re.compile(r"\w+")
# No script may run, whatever a file name or a transcript holds; media open from disk.
CSP = "default-src 'none'; img-src data:; media-src file:; style-src 'unsafe-inline'"

CSS = """
:root{color-scheme:light dark;--bg:#f6f6f4;--card:#fff;--ink:#1d1d1f;--dim:#6e6e73;
--line:#dcdcdc;--mark:#ffe38a;--thumb:#ececec}
@media (prefers-color-scheme:dark){:root{--bg:#161617;--card:#222224;--ink:#ececec;
--dim:#a1a1a6;--line:#3a3a3c;--mark:#806a1c;--thumb:#2c2c2e}}
*{box-sizing:border-box}
body{margin:0;padding:20px;background:var(--bg);color:var(--ink);
font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
header h1{font-size:20px;margin:0 0 4px;overflow-wrap:anywhere}
header p{margin:0 0 16px;color:var(--dim)}
ol{list-style:none;margin:0;padding:0;display:grid;gap:14px;
grid-template-columns:repeat(auto-fill,minmax(270px,1fr))}
li{background:var(--card);border:1px solid var(--line);border-radius:8px;overflow:hidden;
display:flex;flex-direction:column}
.media{height:190px;background:var(--thumb);display:flex;align-items:center;
justify-content:center;position:relative}
.media img{max-width:100%;max-height:100%;object-fit:contain;display:block}
.media .ph{color:var(--dim);font:600 22px/1 ui-monospace,monospace;letter-spacing:.05em}
.media audio{width:92%;position:absolute;bottom:10px}
.media .at{position:absolute;right:6px;bottom:6px;background:#000b;color:#fff;
padding:1px 6px;border-radius:4px;font:12px ui-monospace,monospace}
.snippet{margin:0;padding:10px 12px;height:190px;overflow:hidden;font-size:13px;
background:var(--thumb);white-space:pre-wrap;overflow-wrap:anywhere}
.body{padding:8px 12px 10px;display:flex;flex-direction:column;gap:4px}
.top{display:flex;gap:8px;align-items:baseline;color:var(--dim);font-size:12px}
.top .rank{font-weight:700;color:var(--ink)}
.top .score{font-variant-numeric:tabular-nums}
.top .kind{margin-left:auto;text-transform:uppercase;letter-spacing:.04em}
.name{font-weight:600;overflow-wrap:anywhere}
.name a{color:inherit}
.dir{color:var(--dim);font-size:12px;overflow-wrap:anywhere}
.why,.said{margin:0;overflow-wrap:anywhere}
.said{font-style:italic}
mark{background:var(--mark);color:inherit;border-radius:2px}
details{color:var(--dim);font-size:12px}
details summary{cursor:pointer}
details table{border-collapse:collapse;margin-top:4px}
details td,details th{padding:1px 8px 1px 0;text-align:left;vertical-align:top;
overflow-wrap:anywhere}
"""


def render_html(
    rows: Sequence[Row], out: BinaryIO, *, query: str, thumbs: bool = True,
    cache: Path | None = None, limits: Limits | None = None,
) -> None:  # fmt: skip
    """Write the page for ``rows`` (best first) to ``out``. ``thumbs=False`` leaves
    placeholders (no decoding); ``cache`` overrides the thumbnail cache folder."""
    pictures = _thumbnails(rows, cache, limits) if thumbs else [None] * len(rows)
    pattern = _pattern(query, rows)
    title = _text(query) or "mms results"
    count = f"{len(rows)} result{'s' if len(rows) != 1 else ''}"
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>mms: {title}</title><style>{CSS}</style></head>\n<body>",
        f'<header><h1>{title}</h1><p>{count} · mms query</p></header>\n<ol>\n',
    ]  # fmt: skip
    for row, picture in zip(rows, pictures, strict=True):
        parts.append(_card(row, picture, pattern))
    parts.append("</ol>\n</body></html>\n")
    out.write("".join(parts).encode("utf-8", "replace"))
    out.flush()


# -- thumbnails --------------------------------------------------------------------------


def _thumbnails(
    rows: Sequence[Row], cache: Path | None, limits: Limits | None
) -> list[bytes | None]:
    """One thumbnail per row, two at a time (Pillow and FFmpeg decode outside the GIL)."""

    def one(row: Row) -> bytes | None:
        path, page = row["path"], row.get("page")
        if not can_thumbnail(path, page):
            return None
        t = row["t"] if row["modality"] == "video" else None
        return thumbnail(path, t, SIZE, page=page, cache=cache, limits=limits)

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        return list(pool.map(one, rows))


def _data_uri(jpeg: bytes) -> str:
    import base64

    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")


# -- text --------------------------------------------------------------------------------


def _printable(value: Any) -> str:
    """Text as it can be shown: undecodable bytes of a name (surrogate escapes) as
    ``\\xNN``, other lone surrogates and control characters as U+FFFD."""
    text = "" if value is None else str(value)
    text = _SURROGATE.sub(
        lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}"
        if 0xDC80 <= ord(m.group()) <= 0xDCFF else "\ufffd",
        text,
    )  # fmt: skip
    return _CONTROL.sub("\ufffd", text)


def _text(value: Any) -> str:
    """Escaped for HTML text or a quoted attribute value."""
    return html.escape(_printable(value), quote=True)


def _pattern(query: str, rows: Iterable[Row]) -> re.Pattern[str] | None:
    """What to mark in snippets: the words the lexical space matched (exact forms, from
    its snippets), and the query's own words as prefixes ("dog" marks "dogs")."""
    exact: set[str] = set()
    for row in rows:
        matched = (row.get("spaces") or {}).get("lexical", {}).get("matched") or ""
        for inside in _BRACKETED.findall(str(matched)):
            exact.update(w.lower() for w in _WORD.findall(inside))
    prefixes = {w for w in terms(query or "") if len(w) > 1}
    options = [re.escape(w) + r"\b" for w in exact - prefixes]
    options += [re.escape(w) + r"\w*" for w in prefixes]
    if not options:
        return None
    options.sort(key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(options) + ")", re.IGNORECASE)


def _marked(text: str, pattern: re.Pattern[str] | None) -> str:
    """Escaped text with ``pattern``'s matches in ``<mark>``: matches are found in the
    raw text and each piece is escaped, so no entity is ever split or matched."""
    if pattern is None:
        return _text(text)
    out, at = [], 0
    for m in pattern.finditer(text):
        out += [_text(text[at : m.start()]), "<mark>", _text(m.group()), "</mark>"]
        at = m.end()
    out.append(_text(text[at:]))
    return "".join(out)


def _bracketed(snippet: str) -> str:
    """An FTS5 snippet (``[word]`` marks) as escaped HTML with ``<mark>``."""
    out, at = [], 0
    for m in _BRACKETED.finditer(snippet):
        out += [_text(snippet[at : m.start()]), "<mark>", _text(m.group(1)), "</mark>"]
        at = m.end()
    out.append(_text(snippet[at:]))
    return "".join(out)


def _window(text: str, pattern: re.Pattern[str] | None, chars: int = SNIPPET_CHARS) -> str:
    """At most ``chars`` of ``text``, starting a little before its first match."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    first = pattern.search(text) if pattern is not None else None
    start = 0 if first is None else max(0, first.start() - chars // 4)
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 30 else start
    piece = text[start : start + chars]
    return ("…" if start else "") + piece + ("…" if start + chars < len(text) else "")


# -- one result --------------------------------------------------------------------------


def _uri(path: str, fragment: str = "") -> str | None:
    """``file://`` URI of a path (its bytes percent-encoded), or None if it has none."""
    try:
        return Path(os.path.abspath(path)).as_uri() + fragment
    except (ValueError, UnicodeError):
        return None


def _fragment(row: Row) -> str:
    if row.get("t") is not None:
        return f"#t={row['t']:.1f}"
    if row.get("page") is not None:
        return f"#page={row['page']}"
    return ""


def _card(row: Row, picture: bytes | None, pattern: re.Pattern[str] | None) -> str:
    path = row["path"]
    name, folder = os.path.basename(path) or path, os.path.dirname(path)
    link = _uri(path, _fragment(row))
    media = _media(row, picture, link, name, pattern)
    said = ""
    if row["kind"] == "speech" and row.get("text"):
        said = f'<p class="said">“{_marked(_window(row["text"], pattern), pattern)}”</p>'
    elif row["modality"] == "text" and picture is not None and row.get("text"):
        said = f'<p class="why">{_marked(_window(row["text"], pattern, 200), pattern)}</p>'
    name_html = _text(name) if link is None else f'<a href="{_text(link)}">{_text(name)}</a>'
    where = [row.get("section") or "", f"page {row['page']}" if row.get("page") else ""]
    where_text = " · ".join(w for w in where if w)
    return (
        f'<li class="hit {_text(row["modality"])}" id="r{int(row["rank"])}">{media}'
        f'<div class="body"><div class="top"><span class="rank">#{int(row["rank"])}</span>'
        f'<span class="score">{float(row["score"]):.3f}</span>'
        f'<span class="kind">{_text(row["modality"])}{_when(row)}</span></div>'
        f'<div class="name">{name_html}</div><div class="dir">{_text(folder)}</div>'
        + (f'<div class="dir">{_text(where_text)}</div>' if where_text else "")
        + (f'<p class="why">{_marked(row["why"], pattern)}</p>' if _why_adds(row) else "")
        + said
        + _details(row)
        + "</div></li>\n"
    )


def _why_adds(row: Row) -> bool:
    """A "why" that only quotes the text shown (a text hit's, a transcript) is left out."""
    why = " ".join(str(row.get("why") or "").split()).strip("“”…. ")
    shown = row["modality"] == "text" or row["kind"] == "speech"
    return bool(why) and not (shown and why[:60] in " ".join(str(row.get("text") or "").split()))


def _when(row: Row) -> str:
    t = row.get("t")
    return "" if t is None else f" {_clock(t)}"


def _clock(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _media(
    row: Row, picture: bytes | None, link: str | None, name: str,
    pattern: re.Pattern[str] | None,
) -> str:  # fmt: skip
    """The top of a card: thumbnail, player or snippet."""
    if row["modality"] == "text" and picture is None:
        return f'<p class="snippet">{_marked(_window(row.get("text") or "", pattern), pattern)}</p>'
    if picture is not None:
        inner = f'<img src="{_data_uri(picture)}" alt="{_text(name)}" decoding="async">'
    else:
        ext = os.path.splitext(name)[1].lstrip(".")[:5] or row["modality"]
        inner = f'<span class="ph">{_text(ext.upper())}</span>'
    if link is not None and row["modality"] != "audio":
        inner = f'<a href="{_text(link)}">{inner}</a>'
    if row["modality"] == "audio" and link is not None:
        inner += f'<audio controls preload="none" src="{_text(link)}"></audio>'
    elif row["modality"] == "video" and row.get("t") is not None:
        inner += f'<span class="at">{_clock(float(row["t"] or 0))}</span>'
    return f'<div class="media">{inner}</div>'


def _details(row: Row) -> str:
    """What ``--explain`` shows, and the rest of the row, folded."""
    facts: list[tuple[str, str]] = [("kind", str(row["kind"]))]
    if row.get("chunk") is not None:
        facts.append(("chunk", str(int(row["chunk"] or 0))))
    if row.get("t") is not None:
        end = row.get("end")
        span = f"{row['t']:.1f}" + (f"–{end:.1f}" if end is not None else "")
        facts.append(("time", f"{span} s"))
    facts.append(("segments matched", str(int(row.get("segments_matched") or 0))))
    if row.get("size") is not None:
        facts.append(("size", _size(int(row["size"] or 0))))
    if row.get("mtime"):
        try:
            when = datetime.fromtimestamp(float(row["mtime"] or 0)).isoformat(" ", "minutes")
            facts.append(("modified", when))
        except (ValueError, OverflowError, OSError):
            pass
    if "rerank_score" in row:
        cross = _score(row.get("rerank_score")) or "not scored"
        facts.append(("reranked", f"from #{row.get('rank_before', '?')}, cross-encoder "
                      f"{cross}, first stage {_score(row.get('first_stage_score'))}"))  # fmt: skip
    if row.get("text") and row["modality"] != "text":
        facts.append(("text", str(row["text"])))
    spaces = "".join(
        f"<tr><td>{_text(name)}</td><td>#{_text(v.get('rank'))}</td>"
        f"<td>{_text(_score(v.get('score')))}</td>"
        f"<td>{_bracketed(str(v.get('matched') or ''))}</td></tr>"
        for name, v in (row.get("spaces") or {}).items()
        if isinstance(v, dict)
    )
    head = "<tr><th>space</th><th>rank</th><th>score</th><th>matched</th></tr>"
    table = f"<table>{head}{spaces}</table>" if spaces else ""
    listed = "".join(f"<tr><th>{k}</th><td>{_text(v)}</td></tr>" for k, v in facts)
    return f"<details><summary>details</summary><table>{listed}</table>{table}</details>"


def _score(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else str(value or "")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"
