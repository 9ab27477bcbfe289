"""Document decoding cost (issue 17).

Usage: python benchmarks/documents.py [--pages N] [--copies N]

1. PDF text extraction on one core (the process is pinned to CPU 0), pages per second:
   PDFium alone (text page by page), and the whole decoder (text, metadata, chunks), on
   the Debian PDFs of this machine and on a generated born-digital PDF of N pages.
2. HTML main text: selectolax (the decoder's) against trafilatura, if trafilatura is
   importable (it is not a dependency: ``pip install --target /tmp/traf trafilatura`` and
   set ``TRAFILATURA_PATH=/tmp/traf``).
3. `mms index` of a mixed documents folder (PDF, DOCX, ODT, EPUB, HTML, RTF, a scanned
   PDF) in a fresh process: wall time and peak RSS from ``/usr/bin/time -f %M``.

Goal: >= 30 pages/s for born-digital PDFs. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEBIAN_PDFS = [
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
]
LOREM = (
    "The committee met on Tuesday to review the budget for the new library wing. "
    "Members asked whether the heating system could be replaced before winter, and "
    "the treasurer reported that the grant from the county had arrived in full. "
)


def pdfium_pages_per_s(path: Path) -> tuple[int, float]:
    import pypdfium2 as pdfium

    start = time.perf_counter()
    pdf = pdfium.PdfDocument(str(path))
    n = len(pdf)
    for i in range(n):
        page = pdf[i]
        tp = page.get_textpage()
        tp.get_text_range()
        tp.close()
        page.close()
    pdf.close()
    return n, n / (time.perf_counter() - start)


def decoder_pages_per_s(path: Path) -> tuple[int, float, int]:
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.decoders.documents import decode_document

    settings = load_settings()
    start = time.perf_counter()
    meta, items = decode_document(path, settings)
    return meta["pages"], meta["pages"] / (time.perf_counter() - start), len(items)


def make_long_pdf(path: Path, pages: int) -> None:
    """A born-digital PDF with ~40 lines of text per page (a real text layer)."""
    import ctypes

    import pypdfium2 as pdfium
    import pypdfium2.raw as c

    pdf = pdfium.PdfDocument.new()
    words = LOREM.split()
    for p in range(pages):
        page = pdf.new_page(612, 792)
        for line in range(40):
            text = " ".join(words[(line * 7 + p) % len(words) :][:12])
            obj = c.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", 10.0)
            enc = (text + "\x00").encode("utf-16-le")
            buf = ctypes.create_string_buffer(enc, len(enc))
            c.FPDFText_SetText(obj, ctypes.cast(buf, ctypes.POINTER(c.FPDF_WCHAR)))
            c.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 50, 740 - line * 17)
            c.FPDFPage_InsertObject(page.raw, obj)
        c.FPDFPage_GenerateContent(page.raw)
        page.close()
    pdf.save(str(path))
    pdf.close()


def html_compare() -> list[tuple[str, str]]:
    files = [f for f in sorted(Path("/usr/share/doc").rglob("*.html")) if f.is_file()][:200]
    raw = [f.read_bytes() for f in files]
    rows = []
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.decoders.documents import decode_document
    from mmsearch_cli.errors import MediaError

    settings = load_settings()
    start = time.perf_counter()
    for f in files:
        try:
            decode_document(f, settings)  # main text, sections and chunks
        except MediaError:
            pass
    sel = time.perf_counter() - start
    rows.append(("HTML decoder (selectolax + chunks)", f"{len(raw) / sel:.0f} files/s"))
    extra = os.environ.get("TRAFILATURA_PATH")
    if extra:
        sys.path.insert(0, extra)
    try:
        import trafilatura
    except ImportError:
        rows.append(("HTML main text, trafilatura", "not installed (see docstring)"))
        return rows
    start = time.perf_counter()
    for data in raw:
        trafilatura.extract(data.decode("utf-8", "replace"))
    tra = time.perf_counter() - start
    rows.append(("HTML main text, trafilatura 2.x", f"{len(raw) / tra:.0f} files/s"))
    return rows


def mixed_folder(root: Path, copies: int) -> dict[str, int]:
    from tests.e2e.test_documents import make_docx, make_epub, make_odt, make_scanned_pdf

    counts: dict[str, int] = {}
    for i in range(copies):
        for pdf in DEBIAN_PDFS:
            if pdf.is_file():
                shutil.copy(pdf, root / f"{pdf.stem}-{i}.pdf")
        paras = [("Heading1", f"Part {j}") if j % 5 == 0 else ("Normal", LOREM) for j in range(60)]
        make_docx(root / f"minutes-{i}.docx", paras, title=f"Minutes {i}")
        make_odt(root / f"notes-{i}.odt", [("h" if k == "Heading1" else "p", t) for k, t in paras])
        make_epub(root / f"book-{i}.epub", [(f"Chapter {j}", LOREM * 8) for j in range(10)])
        (root / f"letter-{i}.rtf").write_text(
            r"{\rtf1\ansi{\info{\title Letter}}" + (LOREM + r"\par ") * 30 + "}"
        )
    htmls = [f for f in sorted(Path("/usr/share/doc").rglob("*.html")) if f.is_file()]
    for j, html in enumerate(htmls[: 10 * copies]):
        shutil.copy(html, root / f"page-{j}.html")
    make_scanned_pdf(root / "scan.pdf", ["Warranty card for the washing machine"])
    for f in root.iterdir():
        counts[f.suffix] = counts.get(f.suffix, 0) + 1
    return counts


def index_folder(root: Path, index: Path) -> tuple[float, int]:
    cmd = ["/usr/bin/time", "-f", "%e %M", sys.executable, "-m", "mmsearch_cli", "index",
           str(root), "--index", str(index), "-q"]  # fmt: skip
    env = {**os.environ, "MMS_NO_SERVER": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall, kib = res.stderr.strip().splitlines()[-1].split()
    return float(wall), int(kib)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--copies", type=int, default=3)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        long_pdf = Path(tmp) / "long.pdf"
        make_long_pdf(long_pdf, args.pages)
        for pdf in [*DEBIAN_PDFS, long_pdf]:
            if not pdf.is_file():
                continue
            n, rate = pdfium_pages_per_s(pdf)
            rows.append((f"PDFium text, {pdf.name} ({n} pages)", f"{rate:.0f} pages/s"))
            n, rate, chunks = decoder_pages_per_s(pdf)
            rows.append((f"decoder, {pdf.name} ({chunks} chunks)", f"{rate:.0f} pages/s"))
        rows += html_compare()
        root = Path(tmp) / "docs"
        root.mkdir()
        counts = mixed_folder(root, args.copies)
        wall, kib = index_folder(root, Path(tmp) / "index")
        what = ", ".join(f"{n} {ext}" for ext, n in sorted(counts.items()))
        rows.append((f"mms index, mixed folder ({what})", f"{wall:.1f} s wall"))
        rows.append(("mms index, mixed folder: peak RSS", f"{kib / 1024:.0f} MiB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  result")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
