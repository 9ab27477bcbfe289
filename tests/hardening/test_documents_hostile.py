"""Hostile documents through `mms index` in a bounded process (issue 17): every one is
skipped with a one-line reason in `mms info --failed` (exit 6, partial), never a crash;
a 100,000-page PDF is read up to max_pages."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_documents import (
    DEBIAN_PDF,
    docx_xml,
    make_docx,
    make_epub,
    make_odt,
    make_text_pdf,
)
from tests.hardening.bounded import invoke

GOOD = "The harbour master keeps a log of every ship that docks at the north pier."
LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
              for i in range(1, 10))
    + ']><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
)  # fmt: skip
XXE = (
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>"
)
ODT_LAUGHS = LAUGHS.replace(
    'w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"',
    'office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"',
).replace("<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>",
          "<text:p>&lol9;</text:p></office:document-content>")  # fmt: skip

# -- builders --------------------------------------------------------------------------------

_PAD = bytes.fromhex("28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A")


def _rc4(key: bytes, data: bytes) -> bytes:
    s, j = list(range(256)), 0
    for i in range(256):
        j = (j + s[i] + key[i % len(key)]) % 256
        s[i], s[j] = s[j], s[i]
    out, i, j = bytearray(), 0, 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + s[i]) % 256
        s[i], s[j] = s[j], s[i]
        out.append(byte ^ s[(s[i] + s[j]) % 256])
    return bytes(out)


def make_encrypted_pdf(path: Path, user_password: bytes = b"secret") -> Path:
    """A PDF under the standard security handler (RC4-40, revision 2) with a user password:
    its keys are computed by the spec's algorithms 3.2-3.4, no encryption tool needed."""

    def pad(pw: bytes) -> bytes:
        return (pw + _PAD)[:32]

    perms, file_id = -44, hashlib.md5(b"mms").digest()
    owner = _rc4(hashlib.md5(pad(b"owner")).digest()[:5], pad(user_password))
    key = hashlib.md5(pad(user_password) + owner + struct.pack("<i", perms) + file_id).digest()
    user = _rc4(key[:5], _PAD)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
        b"<< /Filter /Standard /V 1 /R 2 /O <" + owner.hex().encode() + b"> /U <"
        + user.hex().encode() + b"> /P " + str(perms).encode() + b" >>",
    ]  # fmt: skip
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 4 0 R /ID [<%s> <%s>] >>\n"
            b"startxref\n%d\n%%%%EOF\n") % (len(objects) + 1, file_id.hex().encode(),
                                            file_id.hex().encode(), xref)  # fmt: skip
    path.write_bytes(bytes(out))
    return path


def make_huge_pdf(path: Path, pages: int = 100_000) -> Path:
    """A PDF of ``pages`` empty pages whose first page has text (~1 s, 13 MB)."""
    import pypdfium2 as pdfium

    make_text_pdf(path.with_suffix(".first"), [GOOD])
    pdf = pdfium.PdfDocument(str(path.with_suffix(".first")))
    for _ in range(pages - 1):
        pdf.new_page(200, 200).close()
    pdf.save(str(path))
    pdf.close()
    path.with_suffix(".first").unlink()
    return path


def make_zip_bomb(path: Path, member: str, mib: int, extra: dict[str, str]) -> Path:
    """A zip whose ``member`` inflates to ``mib`` MiB of spaces (streamed: cheap to make)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, text in extra.items():
            zf.writestr(name, text)
        with zf.open(member, "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><w:document xmlns:w="x"><w:body><w:p><w:r><w:t>')
            block = b" " * (1 << 20)
            for _ in range(mib):
                fh.write(block)
            fh.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return path


def make_ole(path: Path) -> Path:
    """What Word saves when a document has a password: a CFB container holding an
    EncryptedPackage stream, whatever the extension says."""
    header = bytes.fromhex("D0CF11E0A1B11AE1") + b"\x00" * 16 + b"\x3e\x00\x03\x00\xfe\xff"
    name = "EncryptedPackage".encode("utf-16-le")
    path.write_bytes(header + b"\x00" * (512 - len(header)) + name + os.urandom(4096))
    return path


HOSTILE: dict[str, tuple[str, str]] = {
    # name: (how it is made, what `mms info --failed` must say)
    "encrypted.pdf": ("encrypted", "encrypted PDF (needs a password)"),
    "truncated.pdf": ("truncated_pdf", "PDF"),
    "garbage.pdf": ("garbage", "not a PDF file"),
    "empty.pdf": ("empty", "empty file"),
    "blank_pages.pdf": ("blank_pdf", "empty PDF (no text on any page)"),
    "bomb.docx": ("docx_bomb", "zip bomb"),
    "bomb.epub": ("epub_bomb", "zip bomb"),
    "laughs.docx": ("laughs_docx", "XML entity expansion refused"),
    "xxe.docx": ("xxe_docx", "XML external entity refused"),
    "laughs.odt": ("laughs_odt", "XML entity expansion refused"),
    "xxe.epub": ("xxe_epub", "XML external entity refused"),
    "locked.docx": ("ole", "password-protected Office document"),
    "locked.odt": ("odt_encrypted", "password-protected OpenDocument"),
    "drm.epub": ("epub_drm", "encrypted EPUB (DRM)"),
    "truncated.docx": ("truncated_docx", "damaged DOCX file"),
    "garbage.docx": ("garbage", "damaged DOCX file"),
    "garbage.epub": ("garbage", "damaged EPUB file"),
    "garbage.odt": ("garbage", "damaged ODT file"),
    "nothing.docx": ("empty_docx", "empty document (no text)"),
    "nothing.html": ("nav_only_html", "empty document (no text)"),
    "garbage.rtf": ("garbage", "not an RTF file"),
    "empty.epub": ("empty", "empty file"),
}


def build(root: Path, name: str, how: str) -> None:
    path = root / name
    if how == "encrypted":
        make_encrypted_pdf(path)
    elif how == "truncated_pdf":
        path.write_bytes(DEBIAN_PDF.read_bytes()[:700])
    elif how == "garbage":
        path.write_bytes(os.urandom(20_000))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "blank_pdf":
        import pypdfium2 as pdfium

        pdf = pdfium.PdfDocument.new()
        for _ in range(3):
            pdf.new_page(612, 792).close()
        pdf.save(str(path))
    elif how == "docx_bomb":  # 150 MiB inflated in all: past max_archive_bytes (100 MiB)
        make_zip_bomb(path, "word/document.xml", 150, {"_rels/.rels": "<r/>"})
    elif how == "epub_bomb":  # 60 MiB from ~60 KiB: past the per-member ratio guard
        make_epub(path, [("One", "text")])
        with zipfile.ZipFile(path) as zf:
            keep = {n: zf.read(n).decode() for n in zf.namelist() if "ch0" not in n}
        path.unlink()
        make_zip_bomb(path, "OEBPS/text/ch0.xhtml", 60, keep)
    elif how == "laughs_docx":
        make_docx(path, [], document_xml=LAUGHS)
    elif how == "xxe_docx":
        make_docx(path, [], document_xml=XXE)
    elif how == "laughs_odt":
        make_odt(path, [], content_xml=ODT_LAUGHS)
    elif how == "xxe_epub":
        make_epub(path, [("One", "text")])
        with zipfile.ZipFile(path) as zf:
            data = {n: zf.read(n) for n in zf.namelist()}
        data["META-INF/container.xml"] = XXE.encode()  # its package file, via an entity
        with zipfile.ZipFile(path, "w") as zf:
            for n, b in data.items():
                zf.writestr(n, b)
    elif how == "ole":
        make_ole(path)
    elif how == "odt_encrypted":
        make_odt(path, [("p", "secret")])
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("META-INF/manifest.xml", '<manifest:manifest xmlns:manifest="urn:oasis:'
                        'names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry '
                        'manifest:full-path="content.xml"><manifest:encryption-data/>'
                        "</manifest:file-entry></manifest:manifest>")  # fmt: skip
    elif how == "epub_drm":
        make_epub(path, [("One", "text")])
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("META-INF/encryption.xml", '<encryption><EncryptedData><CipherData>'
                        '<CipherReference URI="OEBPS/text/ch0.xhtml"/></CipherData>'
                        "</EncryptedData></encryption>")  # fmt: skip
    elif how == "truncated_docx":
        whole = make_docx(root / "whole.tmp", [("Normal", GOOD * 50)]).read_bytes()
        (root / "whole.tmp").unlink()
        path.write_bytes(whole[: len(whole) // 2])
    elif how == "empty_docx":
        make_docx(path, [], document_xml=docx_xml([("Normal", "   ")]))
    elif how == "nav_only_html":
        path.write_text("<html><body><nav>Home About</nav><script>var x=1;</script></body></html>")
    else:
        raise AssertionError(how)


def test_hostile_documents_are_skipped_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    for name, (how, _) in HOSTILE.items():
        build(root, name, how)
    make_docx(root / "good.docx", [("Heading1", "Harbour"), ("Normal", GOOD)])
    idx = tmp_path / "idx"
    res = invoke("index", root, "--index", idx, "--json", "-q")
    assert res.code == 6, res.err  # partial: the good file is indexed, the rest listed
    assert "Traceback" not in res.err and "internal error" not in res.err
    assert json.loads(res.text)["failed"] == len(HOSTILE)
    listing = invoke("info", "--failed", "--index", idx)
    assert listing.code == 0 and "Traceback" not in listing.err
    reasons = dict(line.split("\t", 1) for line in listing.text.splitlines())
    for name, (_, expected) in HOSTILE.items():
        reason = reasons[str(root / name)]
        assert expected in reason, (name, reason)
        assert "\n" not in reason and name not in reason and len(reason) < 200


def test_a_100000_page_pdf_is_read_up_to_max_pages(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    make_huge_pdf(root / "huge.pdf")
    idx = tmp_path / "idx"
    res = invoke("index", root, "--index", idx, "--json", "-q")
    assert res.code == 0, res.err
    assert "Traceback" not in res.err
    info = json.loads(invoke("info", "--index", idx, "--json").text)
    assert info["partial"] == 1 and info["failed"] == 0
    hits = invoke("query", "harbour master ship log", "--index", idx, "--no-server",
                  "--format", "paths")  # fmt: skip
    assert hits.text.splitlines()[0].endswith("huge.pdf#page=1")


@pytest.mark.parametrize("pages", [5])
def test_max_pages_is_a_limit_from_the_environment(tmp_path: Path, pages: int) -> None:
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.decoders.documents import decode_document

    pdf = make_text_pdf(tmp_path / "t.pdf", [f"Page number {i} of the test." for i in range(9)])
    os.environ["MMS_MAX_PAGES"] = str(pages)
    try:
        meta, items = decode_document(pdf, load_settings())
    finally:
        del os.environ["MMS_MAX_PAGES"]
    assert {it.meta["page"] for it in items} == set(range(1, pages + 1))
    assert "max_pages" in meta["partial"] and meta["pages"] == 9
