"""Documents (PDF, DOCX, ODT, EPUB, HTML, RTF) to text chunks that know where they are:
``meta["page"]`` (1-based) for a PDF page, ``meta["section"]`` for the heading or chapter
a DOCX/ODT/EPUB/HTML chunk sits under.

Hostile input is bounded: pages read per PDF (``max_pages``), pages OCR'd per PDF
(``max_ocr_pages``), bytes inflated from a zip container (``max_archive_bytes``, plus a
per-member compression-ratio guard), text kept (``max_text_bytes``), chunks embedded
(``max_text_chunks``) and seconds spent (``max_document_seconds``). XML is parsed by
defusedxml (no DTD entities, no external references) and streamed element by element.
Every failure is a ``MediaError`` with a one-line reason.

Libraries: pypdfium2 (PDFium; Apache-2.0/BSD-3), defusedxml (PSF), selectolax (lexbor;
MIT) and striprtf (BSD-3). DOCX/ODT/EPUB are read from the zip directly.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element, ParseError

from mmsearch_cli.config import Limits, Settings
from mmsearch_cli.decoders.text import chunk_text, title_of
from mmsearch_cli.errors import MediaError, ModelUnavailableError
from mmsearch_cli.items import MediaItem

log = logging.getLogger(__name__)

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # CFB: legacy .doc, or an encrypted OOXML
# A zip member inflating more than this many times its stored size is refused once it
# passes _RATIO_FLOOR bytes (real document XML compresses ~5-30x).
MAX_RATIO = 200
_RATIO_FLOOR = 5 * 1024 * 1024
# Scanned pages: rendered at up to OCR_DPI, and at most OCR_MAX_PIXELS in all.
OCR_DPI = 200
OCR_MAX_PIXELS = 2200 * 2200
OCR_READ_SIDE = 1536  # 1800 px peaked at 806 MiB with the text model, 1536 at 664 MiB; same words

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_ODF_TEXT = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_DCTERMS = "{http://purl.org/dc/terms/}"
_ODF_META = "{urn:oasis:names:tc:opendocument:xmlns:meta:1.0}"
_OPF = "{http://www.idpf.org/2007/opf}"
_CONTAINER = "{urn:oasis:names:tc:opendocument:xmlns:container}"
_PDF_DATE = re.compile(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_HEADING_STYLE = re.compile(r"^(heading|title$)", re.IGNORECASE)
_REMOVED_HTML = "script,style,noscript,template,nav,header,footer,aside,form,svg,iframe,button"
_BLOCK_HTML = "p,div,li,tr,td,th,dd,dt,pre,blockquote,br,section,article,table,ul,ol,figcaption"
_HEAD_HTML = "h1,h2,h3,h4,h5,h6"


class _Stop(Exception):
    """A limit was reached: stop reading; what was read so far is kept (partial)."""


def decode_document(path: Path, settings: Settings) -> tuple[dict[str, Any], list[MediaItem]]:
    """Decode a document into text chunks. Raises MediaError with a one-line reason."""
    ext = path.suffix.lower()
    reader = _READERS.get(ext)
    if reader is None:
        raise MediaError(f"unsupported document type {ext or '(none)'}")
    out = _Collector(settings.limits, path)
    try:
        if path.stat().st_size == 0:
            raise MediaError("empty file (0 bytes)")
        reader(path, out, settings)
    except _Stop:
        pass
    except MediaError:
        raise
    except MemoryError:
        raise MediaError("document too large to read in memory") from None
    except RecursionError:
        raise MediaError("document nested too deeply") from None
    except OSError as exc:
        raise MediaError(f"cannot read: {exc.strerror or exc}") from None
    meta, items = out.finish()
    if words := document_words(meta):
        for item in items:  # "why" and the lexical space show who wrote it and when
            item.meta["facts"] = {"document": words}
    return meta, items


def document_words(meta: dict[str, Any]) -> str:
    """ "Residential Lease Agreement, by Maple Street Housing Co-operative, 2026-12-05":
    the document's title, author and creation date."""
    parts = [str(meta["title"])] if meta.get("title") else []
    if meta.get("author"):
        parts.append(f"by {meta['author']}")
    if meta.get("created"):
        parts.append(str(meta["created"])[:10])
    return ", ".join(parts)


# -- gathering paragraphs into chunks ------------------------------------------------------


class _Collector:
    """Paragraphs in reading order, flushed into chunks under their page or section."""

    def __init__(self, limits: Limits, path: Path) -> None:
        self.limits = limits
        self.meta: dict[str, Any] = {}
        self.fallback_title = os.path.splitext(path.name)[0].replace("_", " ")
        self.items: list[MediaItem] = []
        self.pending: list[tuple[dict[str, Any], str]] = []  # (where, text) not yet chunked
        self.partial: list[str] = []
        self.chars = 0
        self.deadline = time.monotonic() + limits.max_document_seconds
        self._paras: list[str] = []
        self._where: dict[str, Any] = {}

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            self.partial.append(f"stopped reading after {self.limits.max_document_seconds:g} s "
                                "(limit max_document_seconds)")  # fmt: skip
            raise _Stop

    def paragraph(self, text: str) -> None:
        text = text.strip()
        if not text:
            return
        if self.chars + len(text) > self.limits.max_text_bytes:
            self.partial.append("read the first "
                                f"{self.chars} characters (limit max_text_bytes)")  # fmt: skip
            self.flush()
            raise _Stop
        self.chars += len(text)
        self._paras.append(text)

    def where(self, where: dict[str, Any]) -> None:
        """A new page or section starts: what came before is flushed under its own."""
        self.flush()
        self._where = where

    def flush(self) -> None:
        if self._paras:
            self.pending.append((self._where, "\n\n".join(self._paras)))
            self._paras = []
            if sum(len(t) for _, t in self.pending) > 1_000_000:
                self._chunk_pending()

    def _chunk_pending(self) -> None:
        """Chunk what is pending (the title must be known: it prefixes each payload)."""
        title = self.title()
        cap = self.limits.max_text_chunks
        for where, text in self.pending:
            for c in chunk_text(text, max_chunks=cap - len(self.items) + 1):
                if len(self.items) >= cap:
                    self.pending = []
                    self.partial.append(
                        f"indexed the first {cap} chunks "
                        "(limit max_text_chunks; the rest is not searchable)"
                    )
                    raise _Stop
                self.items.append(MediaItem(
                    modality="text",
                    payload=c.text if c.text.startswith(title) else f"{title}: {c.text}",
                    kind="chunk",
                    chunk=len(self.items),
                    text=c.text,
                    meta=dict(where),
                ))  # fmt: skip
        self.pending = []

    def title(self) -> str:
        if not self.meta.get("title"):
            first = next((t for _, t in self.pending), "")
            self.meta["title"] = title_of(first[:4000], self.fallback_title)
        return str(self.meta["title"])

    def finish(self) -> tuple[dict[str, Any], list[MediaItem]]:
        self.flush()
        try:
            self._chunk_pending()
        except _Stop:
            pass
        if not self.items:
            raise MediaError(self.meta.pop("empty_reason", "empty document (no text)"))
        self.meta.pop("empty_reason", None)
        self.meta["chunks"] = len(self.items)
        if self.partial:
            self.meta["partial"] = "; ".join(dict.fromkeys(self.partial))
        return {k: v for k, v in self.meta.items() if v not in (None, "")}, self.items


# -- PDF -----------------------------------------------------------------------------------


def _read_pdf(path: Path, out: _Collector, settings: Settings) -> None:
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    limits = settings.limits
    with path.open("rb") as fh:
        head = fh.read(1024)
    if b"%PDF-" not in head:
        raise MediaError("not a PDF file (no %PDF header)")
    try:
        pdf = pdfium.PdfDocument(str(path))
    except pdfium.PdfiumError as exc:
        code = getattr(exc, "err_code", None)
        if code == pdfium_c.FPDF_ERR_PASSWORD:
            raise MediaError("encrypted PDF (needs a password)") from None
        if code == pdfium_c.FPDF_ERR_SECURITY:
            raise MediaError("PDF with an unsupported security handler") from None
        raise MediaError("damaged PDF (cannot be parsed)") from None
    try:
        n_pages = len(pdf)
        out.meta["format"] = "pdf"
        out.meta["pages"] = n_pages
        info = _pdf_metadata(pdf)
        out.meta.update(info)
        if n_pages == 0:
            out.meta["empty_reason"] = "empty PDF (no pages)"
            return
        ocr = _PageOcr(settings)
        last = min(n_pages, limits.max_pages)
        if n_pages > last:
            out.partial.append(f"read the first {last} of {n_pages} pages (limit max_pages)")
        for index in range(last):
            out.check_time()
            try:
                page = pdf[index]
            except pdfium.PdfiumError:
                continue  # a broken page object: the others still count
            try:
                text = _page_text(page)
                if len(text.strip()) < 8 and not page_has_no_content(page):
                    text = ocr.read(page)
                out.where({"page": index + 1})
                for para in re.split(r"\n\s*\n", text):
                    out.paragraph(para)
            finally:
                page.close()
        if ocr.pages:
            out.meta["ocr_pages"] = ocr.pages
        if ocr.skipped:
            total = limits.max_ocr_pages + ocr.skipped
            out.partial.append(
                f"OCR'd the first {limits.max_ocr_pages} scanned pages of {total} "
                "(limit max_ocr_pages)"
            )
        if ocr.unavailable:
            out.meta["ocr"] = "unavailable (needs rapidocr-onnxruntime)"
        out.meta["empty_reason"] = (
            "no text (scanned pages where OCR found no words)"
            if ocr.pages
            else "empty PDF (no text on any page)"
        )
    finally:
        pdf.close()


def _page_text(page: Any) -> str:
    textpage = page.get_textpage()
    try:
        text = str(textpage.get_text_range(errors="ignore"))
    finally:
        textpage.close()
    # PDFium marks a hyphen that broke a word at a line end with \x02
    text = text.replace("\x02\r\n", "").replace("\x02", "")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def page_has_no_content(page: Any) -> bool:
    """A page with no objects at all (a truly blank page): nothing to OCR."""
    import pypdfium2.raw as pdfium_c

    return bool(pdfium_c.FPDFPage_CountObjects(page.raw) == 0)


class _PageOcr:
    """OCR of pages without a text layer, at most ``max_ocr_pages`` per file."""

    _reader: Any = None  # one RapidOCR engine per process (~0.3 s to load)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pages = 0
        self.skipped = 0
        self.unavailable = False

    def read(self, page: Any) -> str:
        if self.unavailable:
            return ""
        if self.pages >= self.settings.limits.max_ocr_pages:
            self.skipped += 1
            return ""
        width, height = page.get_size()
        if not (width > 0 and height > 0 and math.isfinite(width * height)):
            return ""
        scale = min(OCR_DPI / 72, math.sqrt(OCR_MAX_PIXELS / (width * height)))
        try:
            img = page.render(scale=scale, may_draw_forms=False).to_pil().convert("L")
        except Exception as exc:  # a page PDFium cannot draw: its text is lost, not the file
            log.warning("cannot render a PDF page: %s", exc)
            return ""
        self.pages += 1
        lo, hi = img.getextrema()
        if hi - lo < 40:  # a blank or near-uniform page: nothing to read
            return ""
        try:
            return self._engine().text(img.convert("RGB"))
        except ModelUnavailableError:
            self.unavailable = True
            return ""

    def _engine(self) -> Any:
        if _PageOcr._reader is None:
            from mmsearch_cli.embedders.ocr import OcrReader

            # No thumbnail gate: page text is small and a 224 px gate would miss it.
            _PageOcr._reader = OcrReader(
                threads=self.settings.threads, gate_side=0, read_side=OCR_READ_SIDE
            )
        return _PageOcr._reader


def _pdf_metadata(pdf: Any) -> dict[str, Any]:
    try:
        raw = pdf.get_metadata_dict(skip_empty=True)
    except Exception:
        return {}
    meta: dict[str, Any] = {}
    for key in ("Title", "Author", "Subject", "Keywords", "Creator", "Producer"):
        value = _clean(raw.get(key))
        if value:
            meta[key.lower()] = value
    created = _iso_date(raw.get("CreationDate"), _PDF_DATE)
    if created:
        meta["created"] = created
    return meta


def _clean(value: Any, limit: int = 300) -> str:
    return " ".join(str(value or "").split())[:limit]


def _iso_date(value: Any, pattern: re.Pattern[str]) -> str | None:
    m = pattern.match(str(value or "").strip())
    if not m:
        return None
    year, month, day = m.group(1), m.group(2) or "01", m.group(3) or "01"
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31 and 1000 <= int(year) <= 9999):
        return None
    return f"{year}-{month}-{day}"


# -- zip containers: DOCX, ODT, EPUB -------------------------------------------------------


class _Zip:
    """A zip read within ``max_archive_bytes`` inflated in all, with a ratio guard."""

    def __init__(self, path: Path, limits: Limits, kind: str) -> None:
        with path.open("rb") as fh:
            magic = fh.read(8)
        if magic == OLE_MAGIC:
            if kind in ("DOCX", "ODT"):
                raise MediaError("password-protected Office document (or a legacy .doc)")
            raise MediaError(f"not a {kind} file (an OLE container)")
        if not magic:
            raise MediaError(f"empty {kind} file (0 bytes)")
        try:
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, ValueError, EOFError):
            raise MediaError(f"damaged {kind} file (not a readable zip)") from None
        self.kind = kind
        self.left = limits.max_archive_bytes
        self.names = set(self.zf.namelist())

    def close(self) -> None:
        self.zf.close()

    def open(self, name: str) -> _Capped:
        try:
            info = self.zf.getinfo(name)
        except KeyError:
            raise MediaError(f"damaged {self.kind} file (no {name})") from None
        if info.flag_bits & 0x1:
            raise MediaError(f"encrypted {self.kind} file (needs a password)")
        if info.file_size > self.left:
            raise MediaError("zip bomb: contents expand past the limit (max_archive_bytes)")
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FLOOR and ratio > MAX_RATIO:
            raise MediaError(f"zip bomb: a member expands {ratio:.0f}x (over {MAX_RATIO}x)")
        try:
            return _Capped(self.zf.open(info), self)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as exc:
            raise MediaError(f"damaged {self.kind} file ({_one_line(exc)})") from None

    def read(self, name: str) -> bytes:
        with self.open(name) as fh:
            return fh.read()


class _Capped:
    """A member's stream that counts what it inflates against the archive's budget."""

    def __init__(self, raw: IO[bytes], owner: _Zip) -> None:
        self.raw = raw
        self.owner = owner

    def read(self, n: int = -1) -> bytes:
        want = self.owner.left + 1 if n is None or n < 0 else min(n, self.owner.left + 1)
        try:
            data = self.raw.read(want)
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise MediaError(f"damaged {self.owner.kind} file ({_one_line(exc)})") from None
        self.owner.left -= len(data)
        if self.owner.left < 0:
            raise MediaError("zip bomb: contents expand past the limit (max_archive_bytes)")
        return data

    def __enter__(self) -> _Capped:
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__


def _iterparse(source: Any, tags: set[str]) -> Iterator[Element]:
    """Stream the elements named in ``tags`` as they end, clearing them after use."""
    from defusedxml import DefusedXmlException, EntitiesForbidden
    from defusedxml.ElementTree import iterparse

    try:
        for _event, elem in iterparse(source, events=("end",)):
            if elem.tag in tags:
                yield elem
                elem.clear()
    except EntitiesForbidden as exc:
        raise _entity_error(exc) from None
    except DefusedXmlException:
        raise MediaError("XML with a DTD or external reference refused") from None
    except ParseError as exc:
        raise MediaError(f"damaged XML in the document ({_one_line(exc)})") from None


def _entity_error(exc: Exception) -> MediaError:
    if getattr(exc, "sysid", None) or getattr(exc, "pubid", None):
        return MediaError("XML external entity refused")
    return MediaError("XML entity expansion refused")


def _parse(data: bytes | IO[bytes]) -> Element:
    import io

    from defusedxml import DefusedXmlException, EntitiesForbidden
    from defusedxml.ElementTree import parse

    try:
        return parse(io.BytesIO(data) if isinstance(data, bytes) else data).getroot()
    except EntitiesForbidden as exc:
        raise _entity_error(exc) from None
    except DefusedXmlException:
        raise MediaError("XML with a DTD or external reference refused") from None
    except ParseError as exc:
        raise MediaError(f"damaged XML in the document ({_one_line(exc)})") from None


def _with_zip(kind: str, body: Callable[[_Zip, _Collector], None]) -> Callable[..., None]:
    def read(path: Path, out: _Collector, settings: Settings) -> None:
        zf = _Zip(path, settings.limits, kind)
        out.meta["format"] = kind.lower()
        try:
            body(zf, out)
        finally:
            zf.close()

    return read


def _docx(zf: _Zip, out: _Collector) -> None:
    main = "word/document.xml"
    if "_rels/.rels" in zf.names:
        for rel in _parse(zf.read("_rels/.rels")).iter():
            if str(rel.get("Type", "")).endswith("/officeDocument"):
                main = str(rel.get("Target", main)).lstrip("/")
    if main not in zf.names:
        raise MediaError("not a Word document (no word/document.xml)")
    if "docProps/core.xml" in zf.names:
        core = _parse(zf.read("docProps/core.xml"))
        out.meta["title"] = _clean(core.findtext(f"{_DC}title"))
        out.meta["author"] = _clean(core.findtext(f"{_DC}creator"))
        out.meta["created"] = _iso_date(core.findtext(f"{_DCTERMS}created"), _ISO_DATE)
    headings: set[str] = set()
    if "word/styles.xml" in zf.names:
        for style in _parse(zf.read("word/styles.xml")).iter(f"{_W}style"):
            name = style.find(f"{_W}name")
            label = "" if name is None else str(name.get(f"{_W}val", ""))
            if _HEADING_STYLE.match(label) or style.find(f"{_W}pPr/{_W}outlineLvl") is not None:
                headings.add(str(style.get(f"{_W}styleId", "")))
    paragraphs = 0
    with zf.open(main) as fh:
        for p in _iterparse(fh, {f"{_W}p"}):
            paragraphs += 1
            if paragraphs % 256 == 0:
                out.check_time()
            parts = []
            for node in p.iter():
                if node.tag == f"{_W}t" and node.text:
                    parts.append(node.text)
                elif node.tag in (f"{_W}tab", f"{_W}br", f"{_W}cr"):
                    parts.append(" " if node.tag == f"{_W}tab" else "\n")
            text = "".join(parts).strip()
            if not text:
                continue
            pstyle = p.find(f"{_W}pPr/{_W}pStyle")
            is_heading = p.find(f"{_W}pPr/{_W}outlineLvl") is not None or (
                pstyle is not None and str(pstyle.get(f"{_W}val", "")) in headings
            )
            if is_heading:
                out.where({"section": _clean(text, 200)})
            out.paragraph(text)
    out.meta["paragraphs"] = paragraphs


def _odt(zf: _Zip, out: _Collector) -> None:
    if "META-INF/manifest.xml" in zf.names and b"encryption-data" in zf.read(
        "META-INF/manifest.xml"
    ):
        raise MediaError("password-protected OpenDocument file")
    if "content.xml" not in zf.names:
        raise MediaError("not an OpenDocument text (no content.xml)")
    if "meta.xml" in zf.names:
        meta = _parse(zf.read("meta.xml"))
        out.meta["title"] = _clean(meta.findtext(f".//{_DC}title"))
        out.meta["author"] = _clean(
            meta.findtext(f".//{_ODF_META}initial-creator") or meta.findtext(f".//{_DC}creator")
        )
        out.meta["created"] = _iso_date(meta.findtext(f".//{_ODF_META}creation-date"), _ISO_DATE)
    paragraphs = 0
    with zf.open("content.xml") as fh:
        for p in _iterparse(fh, {f"{_ODF_TEXT}p", f"{_ODF_TEXT}h"}):
            paragraphs += 1
            if paragraphs % 256 == 0:
                out.check_time()
            text = _odf_text(p).strip()
            if not text:
                continue
            if p.tag == f"{_ODF_TEXT}h":
                out.where({"section": _clean(text, 200)})
            out.paragraph(text)
    out.meta["paragraphs"] = paragraphs


def _odf_text(elem: Element) -> str:
    """An ODF paragraph's text: <text:s c="N"/> is N spaces, tabs and breaks count."""
    parts: list[str] = []
    stack: list[tuple[Element, bool]] = [(elem, False)]
    while stack:  # iterative: hostile nesting must not hit the recursion limit
        node, done = stack.pop()
        if done:
            if node is not elem and node.tail:
                parts.append(node.tail)
            continue
        if node.tag == f"{_ODF_TEXT}s":
            count = str(node.get(f"{_ODF_TEXT}c", "1"))
            parts.append(" " * min(int(count) if count.isdigit() else 1, 100))
        elif node.tag == f"{_ODF_TEXT}tab":
            parts.append(" ")
        elif node.tag == f"{_ODF_TEXT}line-break":
            parts.append("\n")
        elif node.text:
            parts.append(node.text)
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    return "".join(parts)


def _epub(zf: _Zip, out: _Collector) -> None:
    if "META-INF/encryption.xml" in zf.names:
        enc = zf.read("META-INF/encryption.xml")
        # Font obfuscation is harmless; encrypted chapters (DRM) cannot be read.
        if re.search(rb"URI=\"[^\"]+\.(x?html?|xml)\"", enc):
            raise MediaError("encrypted EPUB (DRM)")
    if "META-INF/container.xml" not in zf.names:
        raise MediaError("not an EPUB (no META-INF/container.xml)")
    container = _parse(zf.read("META-INF/container.xml"))
    rootfile = container.find(f".//{_CONTAINER}rootfile")
    opf_path = "" if rootfile is None else str(rootfile.get("full-path", ""))
    if opf_path not in zf.names:
        raise MediaError("damaged EPUB (its package file is missing)")
    opf = _parse(zf.read(opf_path))
    out.meta["title"] = _clean(opf.findtext(f".//{_DC}title"))
    out.meta["author"] = _clean(opf.findtext(f".//{_DC}creator"))
    out.meta["created"] = _iso_date(opf.findtext(f".//{_DC}date"), _ISO_DATE)
    out.meta["language"] = _clean(opf.findtext(f".//{_DC}language"), 20)
    base = posix_dir(opf_path)
    manifest = {
        str(item.get("id")): str(item.get("href", ""))
        for item in opf.iter(f"{_OPF}item")
        if "html" in str(item.get("media-type", ""))
    }
    spine = [str(ref.get("idref")) for ref in opf.iter(f"{_OPF}itemref")]
    chapters = 0
    for idref in spine:
        href = manifest.get(idref)
        if not href:
            continue
        name = _join(base, href)
        if name not in zf.names:
            continue
        out.check_time()
        chapters += 1
        _html_into(zf.read(name), out, chapter=True)
    out.meta["chapters"] = chapters


def posix_dir(name: str) -> str:
    return name.rsplit("/", 1)[0] + "/" if "/" in name else ""


def _join(base: str, href: str) -> str:
    from urllib.parse import unquote

    parts: list[str] = []
    for part in (base + unquote(href.split("#", 1)[0])).split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


# -- HTML ----------------------------------------------------------------------------------


def _read_html(path: Path, out: _Collector, settings: Settings) -> None:
    with path.open("rb") as fh:
        raw = fh.read(settings.limits.max_text_bytes)
    if not raw.strip():
        raise MediaError("empty HTML file")
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MediaError("binary content in an HTML file")
    out.meta["format"] = "html"
    _html_into(raw, out, chapter=False)


def _html_into(raw: bytes, out: _Collector, *, chapter: bool) -> None:
    """Main text of an HTML or XHTML page: navigation, headers, footers, scripts dropped;
    <main> or the longest <article> if there is one, else <body>. Headings start sections."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(_html_str(raw))
    title_node = tree.css_first("title")
    page_title = _clean(title_node.text() if title_node else "", 200)
    if not chapter:
        if page_title:
            out.meta["title"] = page_title
        for name, key in (("author", "author"), ("description", "description")):
            node = tree.css_first(f'meta[name="{name}"]')
            if node is not None and node.attributes.get("content"):
                out.meta[key] = _clean(node.attributes.get("content"))
        lang = tree.css_first("html")
        if lang is not None and lang.attributes.get("lang"):
            out.meta["language"] = _clean(lang.attributes.get("lang"), 20)
    for node in tree.css(_REMOVED_HTML):
        node.decompose()
    root: Any = tree.css_first("main") or _longest(tree.css("article")) or tree.body or tree.root
    if root is None:
        return
    for node in root.css(_HEAD_HTML):
        node.insert_before("\n\n\x01")
        node.insert_after("\x02\n\n")
    for node in root.css(_BLOCK_HTML):
        node.insert_before("\n\n")
    text = root.text(separator="")
    section = page_title if chapter else ""
    out.where({"section": section} if section else {})
    for piece in re.split(r"(\x01[^\x01\x02]*\x02)", text):
        if piece.startswith("\x01"):
            heading = _clean(piece.strip("\x01\x02"), 200)
            if heading:
                out.where({"section": heading})
                out.paragraph(heading)
            continue
        for para in re.split(r"\n\s*\n", piece.replace("\x01", "").replace("\x02", "")):
            out.paragraph(" ".join(para.split()))
    out.flush()


_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]{1,40})""", re.I)


def _html_str(raw: bytes) -> str:
    """UTF-8 (or a BOM), else the charset the page declares, else cp1252."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16", "replace")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    m = _META_CHARSET.search(raw[:4096])
    try:
        return raw.decode(m.group(1).decode("ascii") if m else "cp1252", "replace")
    except LookupError:
        return raw.decode("cp1252", "replace")


def _longest(nodes: list[Any]) -> Any:
    return max(nodes, key=lambda n: len(n.text()), default=None)


# -- RTF -----------------------------------------------------------------------------------

_RTF_INFO = re.compile(rb"\{\\(title|author)\s+([^{}]*)\}")
_RTF_CREATED = re.compile(rb"\\creatim\\yr(\d{4})\\mo(\d{1,2})\\dy(\d{1,2})")


def _read_rtf(path: Path, out: _Collector, settings: Settings) -> None:
    from striprtf.striprtf import rtf_to_text

    with path.open("rb") as fh:
        raw = fh.read(settings.limits.max_text_bytes)
    if not raw.strip():
        raise MediaError("empty RTF file")
    if not raw.lstrip().startswith(b"{\\rtf"):
        raise MediaError("not an RTF file (no {\\rtf header)")
    out.meta["format"] = "rtf"
    for m in _RTF_INFO.finditer(raw[:65536]):
        out.meta[m.group(1).decode()] = _clean(m.group(2).decode("cp1252", "replace"))
    if m2 := _RTF_CREATED.search(raw[:65536]):
        y, mo, d = (int(g) for g in m2.groups())
        out.meta["created"] = _iso_date(f"{y:04d}-{mo:02d}-{d:02d}", _ISO_DATE)
    try:
        text = rtf_to_text(raw.decode("cp1252", "replace"), errors="ignore")
    except (ValueError, IndexError, KeyError) as exc:
        raise MediaError(f"damaged RTF ({_one_line(exc)})") from None
    for para in re.split(r"\n\s*\n|\n", text):
        out.paragraph(para)


_READERS: dict[str, Callable[[Path, _Collector, Settings], None]] = {
    ".pdf": _read_pdf,
    ".docx": _with_zip("DOCX", _docx),
    ".odt": _with_zip("ODT", _odt),
    ".epub": _with_zip("EPUB", _epub),
    ".html": _read_html,
    ".htm": _read_html,
    ".xhtml": _read_html,
    ".rtf": _read_rtf,
}
