"""Documents through the real CLI: PDF hits know their page, DOCX/ODT/EPUB/HTML hits their
section; a scanned-only PDF is read by OCR (issue 17)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from mmsearch_cli.config import load_settings
from mmsearch_cli.decoders.documents import decode_document
from tests.conftest import invoke

DEBIAN_PDF = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")
DEBIAN_HTML = Path("/usr/share/doc/base-passwd/users-and-groups.html")

# -- real formats, written by hand -------------------------------------------------------

_W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_STYLES = (
    f'<?xml version="1.0" encoding="UTF-8"?><w:styles xmlns:w="{_W_NS}">'
    '<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/></w:style>'
    '<w:style w:type="paragraph" w:styleId="Normal"><w:name w:val="Normal"/></w:style>'
    "</w:styles>"
)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def docx_xml(blocks: list[tuple[str, str]]) -> str:
    """document.xml for (style, text) paragraphs; style "Heading1" or "Normal"."""
    body = "".join(
        f'<w:p><w:pPr><w:pStyle w:val="{style}"/></w:pPr>'
        f'<w:r><w:t xml:space="preserve">{_esc(text)}</w:t></w:r></w:p>'
        for style, text in blocks
    )
    return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            f'<w:document xmlns:w="{_W_NS}"><w:body>{body}</w:body></w:document>')  # fmt: skip


def make_docx(path: Path, blocks: list[tuple[str, str]], *, title: str = "",
              document_xml: str | None = None) -> Path:  # fmt: skip
    core = (
        '<?xml version="1.0" encoding="UTF-8"?><cp:coreProperties xmlns:cp="http://schemas.'
        'openxmlformats.org/package/2006/metadata/core-properties" xmlns:dc="http://purl.org/'
        'dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">'
        f"<dc:title>{_esc(title)}</dc:title><dc:creator>Ada Tester</dc:creator>"
        "<dcterms:created>2024-03-05T10:00:00Z</dcterms:created></cp:coreProperties>"
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("docProps/core.xml", core)
        zf.writestr("word/styles.xml", _STYLES)
        zf.writestr("word/document.xml", document_xml or docx_xml(blocks))
    return path


def make_odt(path: Path, blocks: list[tuple[str, str]], *, title: str = "",
             content_xml: str | None = None) -> Path:  # fmt: skip
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"')  # fmt: skip
    body = "".join(
        f'<text:h text:outline-level="1">{_esc(t)}</text:h>' if kind == "h"
        else f"<text:p>{_esc(t)}</text:p>"
        for kind, t in blocks
    )  # fmt: skip
    content = (f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ns}>'
               f"<office:body><office:text>{body}</office:text></office:body>"
               "</office:document-content>")  # fmt: skip
    meta = ('<?xml version="1.0" encoding="UTF-8"?><office:document-meta '
            'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
            'xmlns:meta="urn:oasis:names:tc:opendocument:xmlns:meta:1.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><office:meta>'
            f"<dc:title>{_esc(title)}</dc:title><meta:initial-creator>Ada Tester"
            "</meta:initial-creator><meta:creation-date>2023-11-02T08:00:00"
            "</meta:creation-date></office:meta></office:document-meta>")  # fmt: skip
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.text")  # stored, first
        zf.writestr("content.xml", content_xml or content, zipfile.ZIP_DEFLATED)
        zf.writestr("meta.xml", meta, zipfile.ZIP_DEFLATED)
    return path


def make_epub(path: Path, chapters: list[tuple[str, str]], *, title: str = "A small book",
              chapter_xml: str | None = None) -> Path:  # fmt: skip
    container = ('<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
                 'opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/'
                 'content.opf" media-type="application/oebps-package+xml"/></rootfiles>'
                 "</container>")  # fmt: skip
    items = "".join(
        f'<item id="c{i}" href="text/ch{i}.xhtml" media-type="application/xhtml+xml"/>'
        for i in range(len(chapters))
    )
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(chapters)))
    opf = ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
           '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
           f"<dc:title>{_esc(title)}</dc:title><dc:creator>Ada Tester</dc:creator>"
           "<dc:date>2021-06-01</dc:date><dc:language>en</dc:language></metadata>"
           f"<manifest>{items}</manifest><spine>{spine}</spine></package>")  # fmt: skip
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("META-INF/container.xml", container, zipfile.ZIP_DEFLATED)
        zf.writestr("OEBPS/content.opf", opf, zipfile.ZIP_DEFLATED)
        for i, (head, text) in enumerate(chapters):
            xhtml = chapter_xml or (
                '<?xml version="1.0" encoding="UTF-8"?><html xmlns="http://www.w3.org/1999/'
                f'xhtml"><head><title>{_esc(head)}</title></head><body><h1>{_esc(head)}</h1>'
                f"<p>{_esc(text)}</p></body></html>"
            )
            zf.writestr(f"OEBPS/text/ch{i}.xhtml", xhtml, zipfile.ZIP_DEFLATED)
    return path


def make_text_pdf(path: Path, pages: list[str]) -> Path:
    """A born-digital PDF: one line of real text (a font, a text layer) per page."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    pdf = pdfium.PdfDocument.new()
    font = pdfium_c.FPDFText_LoadStandardFont(pdf.raw, b"Helvetica")
    for text in pages:
        page = pdf.new_page(612, 792)
        obj = pdfium_c.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", 11.0)
        assert font and obj
        encoded = (text + "\x00").encode("utf-16-le")
        import ctypes

        buf = ctypes.create_string_buffer(encoded, len(encoded))
        pdfium_c.FPDFText_SetText(obj, ctypes.cast(buf, ctypes.POINTER(pdfium_c.FPDF_WCHAR)))
        pdfium_c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 50, 700)
        pdfium_c.FPDFPage_InsertObject(page.raw, obj)
        pdfium_c.FPDFPage_GenerateContent(page.raw)
        page.close()
    pdf.save(str(path))
    pdf.close()
    return path


def make_scanned_pdf(path: Path, lines: list[str], *, blank_first: bool = True) -> Path:
    """Pages that are only pictures of text (no text layer), as a scanner makes them."""
    from PIL import Image, ImageDraw, ImageFont

    def page(text_lines: list[str]) -> Image.Image:
        img = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
        draw = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=44)
        for i, line in enumerate(text_lines):
            draw.text((110, 160 + i * 80), line, fill="black", font=font)
        return img

    first = page(["Nothing of note on this cover page."]) if blank_first else page(lines)
    rest = [page(lines)] if blank_first else []
    first.save(path, "PDF", resolution=150.0, save_all=True, append_images=rest)
    return path


# -- decoder-level checks (fast) ---------------------------------------------------------


@pytest.fixture(scope="module")
def settings() -> Any:
    return load_settings()


def test_pdf_pages_and_metadata(settings: Any) -> None:
    meta, items = decode_document(DEBIAN_PDF, settings)
    assert meta["pages"] >= 2 and meta["created"].count("-") == 2
    pages = {it.meta["page"] for it in items}
    assert min(pages) == 1 and max(pages) > 1
    assert all(it.kind == "chunk" and it.chunk == i for i, it in enumerate(items))
    json.dumps(meta)


def test_docx_sections_and_core_properties(tmp_path: Path, settings: Any) -> None:
    doc = make_docx(tmp_path / "plan.docx", [
        ("Heading1", "Garden planning"),
        ("Normal", "Tomatoes need full sun and deep watering twice a week."),
        ("Heading1", "Bees and pollinators"),
        ("Normal", "Lavender and borage bring bumblebees to the vegetable beds."),
    ], title="Allotment notes")  # fmt: skip
    meta, items = decode_document(doc, settings)
    assert meta["title"] == "Allotment notes" and meta["author"] == "Ada Tester"
    assert meta["created"] == "2024-03-05"
    by_section = {it.meta["section"]: it.text for it in items}
    assert "bumblebees" in by_section["Bees and pollinators"]
    assert items[0].payload.startswith("Allotment notes: ")


def test_odt_epub_html_rtf(tmp_path: Path, settings: Any) -> None:
    odt = make_odt(
        tmp_path / "a.odt", [("h", "Kettles"), ("p", "Descale the kettle with vinegar.")]
    )
    meta, items = decode_document(odt, settings)
    assert items[0].meta["section"] == "Kettles" and meta["created"] == "2023-11-02"
    chapters = [("Chapter One", "The lighthouse keeper slept."),
                ("Chapter Two", "A storm came from the north.")]  # fmt: skip
    epub = make_epub(tmp_path / "b.epub", chapters)
    meta, items = decode_document(epub, settings)
    assert [it.meta["section"] for it in items] == ["Chapter One", "Chapter Two"]
    assert meta["title"] == "A small book" and meta["chapters"] == 2
    html = tmp_path / "c.html"
    html.write_text("<html><head><title>Bread</title></head><body><nav>Home | About | Login"
                    "</nav><main><h2>Sourdough</h2><p>Feed the starter every day.</p></main>"
                    "<footer>Copyright</footer></body></html>")  # fmt: skip
    meta, items = decode_document(html, settings)
    assert meta["title"] == "Bread" and items[0].meta["section"] == "Sourdough"
    assert "Login" not in " ".join(it.text for it in items)
    rtf = tmp_path / "d.rtf"
    rtf.write_text(r"{\rtf1\ansi{\info{\title Letter}{\author Bo}{\creatim\yr2020\mo1\dy2}}"
                   r"Dear Sir,\par the parcel of {\b seeds} arrived.\par}")  # fmt: skip
    meta, items = decode_document(rtf, settings)
    assert meta == {"title": "Letter", "author": "Bo", "created": "2020-01-02",
                    "format": "rtf", "chunks": 1}  # fmt: skip
    assert "parcel of seeds" in items[0].text


def test_scanned_pdf_is_read_by_ocr(tmp_path: Path, settings: Any) -> None:
    pdf = make_scanned_pdf(tmp_path / "scan.pdf", ["Invoice for the blue bicycle",
                                                    "Total due: forty pounds"])  # fmt: skip
    meta, items = decode_document(pdf, settings)
    assert meta["ocr_pages"] == 2
    page2 = " ".join(it.text for it in items if it.meta["page"] == 2).lower()
    assert "bicycle" in page2 and "invoice" in page2


# -- through the CLI ---------------------------------------------------------------------


def _query(idx: Path, text: str) -> list[dict[str, Any]]:
    res = invoke("query", text, "--index", idx, "--no-server", "--format", "json")
    assert res.code == 0, res.err
    rows = json.loads(res.text)
    return rows if isinstance(rows, list) else rows["results"]


def test_documents_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    make_text_pdf(root / "manual.pdf", [
        "Chapter one is about the kitchen sink and its taps.",
        "Replacing the washer in a dripping tap takes ten minutes with a spanner.",
        "Chapter three describes painting the hallway ceiling.",
    ])  # fmt: skip
    make_docx(root / "garden.docx", [
        ("Heading1", "Compost"),
        ("Normal", "Turn the compost heap every fortnight so it stays warm."),
        ("Heading1", "Pond life"),
        ("Normal", "Frogs lay their spawn in the shallow end of the garden pond in March."),
    ], title="Garden diary")  # fmt: skip
    make_odt(root / "recipes.odt", [("h", "Soup"), ("p", "Roast the squash before blending.")])
    make_scanned_pdf(root / "scan.pdf", ["Warranty card for the washing machine"])
    shutil.copy(DEBIAN_HTML, root / "users.html")
    idx = tmp_path / "idx"
    res = invoke("index", root, "--index", idx, "--json", "-q")
    assert res.code == 0, res.err

    hits = _query(idx, "fix a dripping tap washer")
    top = hits[0]
    assert top["path"].endswith("manual.pdf") and top["page"] == 2, top
    res = invoke("query", "fix a dripping tap washer", "--index", idx, "--no-server",
                 "--format", "paths")  # fmt: skip
    assert res.text.splitlines()[0].endswith("manual.pdf#page=2")

    hits = _query(idx, "frogs spawn in the pond")
    assert hits[0]["path"].endswith("garden.docx") and hits[0]["section"] == "Pond life"

    hits = _query(idx, "washing machine warranty")
    assert hits[0]["path"].endswith("scan.pdf") and hits[0]["page"] == 2
