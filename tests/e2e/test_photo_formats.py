"""Camera RAW, AVIF and SVG pictures and XMP sidecars, end to end through the real `mms`
command, and the hostile versions of each failing with a one-line reason.

No camera RAW file can be had offline here, so the RAWs are DNGs written below (DNG is
TIFF): an RGGB sensor mosaic made from a corpus photo, with or without an embedded JPEG
preview, the way cameras and Adobe's converter write them. LibRaw reads them as it reads
any DNG (and by content, whatever the extension says).
"""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import CORPUS, invoke
from tests.support.results import file_meta, names
from tests.support.results import query as search

IMAGES = CORPUS / "images"
pytestmark = pytest.mark.skipif(not IMAGES.is_dir(), reason="needs the shared corpus")


# --- a minimal DNG writer ------------------------------------------------------------------

_TIFF_TYPES = {1: "B", 3: "H", 4: "I"}  # BYTE, SHORT, LONG; 2 ASCII, 7 UNDEFINED, 5/10 rationals


def _append(buf: bytearray, data: bytes) -> int:
    if len(buf) % 2:
        buf += b"\0"
    offset = len(buf)
    buf += data
    return offset


def _ifd(buf: bytearray, entries: dict[int, tuple[int, Any]]) -> int:
    """Append an IFD (its out-of-line values first); its offset."""
    packed = []
    for tag in sorted(entries):
        kind, values = entries[tag]
        if kind in (2, 7):
            data, count = bytes(values), len(values)
        elif kind in (5, 10):
            pack = "<ii" if kind == 10 else "<II"
            data, count = b"".join(struct.pack(pack, n, d) for n, d in values), len(values)
        else:
            data, count = struct.pack("<" + _TIFF_TYPES[kind] * len(values), *values), len(values)
        if len(data) > 4:
            data = struct.pack("<I", _append(buf, data))
        packed.append(struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\0"))
    return _append(buf, struct.pack("<H", len(packed)) + b"".join(packed) + b"\0\0\0\0")


def make_dng(
    rgb: Image.Image,
    *,
    preview: Image.Image | None = None,
    make: str = "Canon",
    model: str = "Canon EOS R5",
    when: str | None = None,
    maker_note: bytes | None = None,
    declared: tuple[int, int] | None = None,
) -> bytes:
    """A DNG holding ``rgb`` as a 12-bit RGGB mosaic (linear light, sRGB primaries), with a
    JPEG preview and a 160x120 thumbnail in IFD0 if ``preview`` is given."""
    w, h = rgb.width - rgb.width % 2, rgb.height - rgb.height % 2
    linear = (np.asarray(rgb.convert("RGB").crop((0, 0, w, h))) / 255.0) ** 2.2 * 4095
    a = np.round(linear).astype(np.uint16)
    cfa = np.empty((h, w), np.uint16)
    cfa[0::2, 0::2], cfa[0::2, 1::2] = a[0::2, 0::2, 0], a[0::2, 1::2, 1]
    cfa[1::2, 0::2], cfa[1::2, 1::2] = a[1::2, 0::2, 1], a[1::2, 1::2, 2]
    buf = bytearray(b"II*\0\0\0\0\0")
    exif: dict[int, tuple[int, Any]] = {}
    if when:
        exif[0x9003] = (2, when.encode() + b"\0")
    if maker_note is not None:
        exif[0x927C] = (7, maker_note)
    raw_at = _append(buf, cfa.astype("<u2").tobytes())
    dw, dh = declared or (w, h)
    raw_tags = {254: (4, [0]), 256: (4, [dw]), 257: (4, [dh]), 258: (3, [16]), 259: (3, [1]),
                262: (3, [32803]), 273: (4, [raw_at]), 277: (3, [1]), 278: (4, [h]),
                279: (4, [cfa.nbytes]), 284: (3, [1]), 33421: (3, [2, 2]),
                33422: (1, [0, 1, 1, 2]), 50714: (4, [0]), 50717: (4, [4095])}  # fmt: skip
    xyz_to_srgb = [32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570]
    top = {271: (2, make.encode() + b"\0"), 272: (2, model.encode() + b"\0"),
           50706: (1, [1, 4, 0, 0]), 50708: (2, model.encode() + b"\0"),
           50721: (10, [(v, 10000) for v in xyz_to_srgb]), 50728: (5, [(1, 1)] * 3),
           50778: (3, [21])}  # fmt: skip
    if exif:
        top[34665] = (4, [_ifd(buf, exif)])
    if preview is None:
        first = _ifd(buf, {**raw_tags, **top})
    else:
        jpeg = io.BytesIO()
        preview.convert("RGB").save(jpeg, "JPEG", quality=90)
        jpeg_at = _append(buf, jpeg.getvalue())
        pw, ph = preview.size
        preview_ifd = _ifd(buf, {254: (4, [1]), 256: (4, [pw]), 257: (4, [ph]),
                                 258: (3, [8, 8, 8]), 259: (3, [7]), 262: (3, [6]),
                                 273: (4, [jpeg_at]), 277: (3, [3]), 278: (4, [ph]),
                                 279: (4, [len(jpeg.getvalue())])})  # fmt: skip
        raw_ifd = _ifd(buf, raw_tags)
        thumb_at = _append(buf, preview.convert("RGB").resize((160, 120)).tobytes())
        first = _ifd(buf, {254: (4, [1]), 256: (4, [160]), 257: (4, [120]),
                           258: (3, [8, 8, 8]), 259: (3, [1]), 262: (3, [2]),
                           273: (4, [thumb_at]), 277: (3, [3]), 278: (4, [120]),
                           279: (4, [160 * 120 * 3]), 330: (4, [raw_ifd, preview_ifd]),
                           **top})  # fmt: skip
    struct.pack_into("<I", buf, 4, first)
    return bytes(buf)


# A Nikon maker note whose IFD claims 65535 entries, with offsets far past the end.
BAD_MAKER_NOTE = (b"Nikon\0\x02\x10\0\0MM\0*\0\0\0\x08\xff\xff" + bytes(range(64))
                  + b"\x7f\xff\xff\xff" * 8)  # fmt: skip


def _photo(name: str) -> Image.Image:
    with Image.open(IMAGES / name) as img:
        return img.convert("RGB")


def _svg_with_photo(name: str) -> str:
    """A drawing: a frame, a caption-less photo inlined as data: (kept), a circle."""
    jpeg = io.BytesIO()
    _photo(name).save(jpeg, "JPEG", quality=85)
    data = base64.b64encode(jpeg.getvalue()).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="120mm" height="90mm" viewBox="0 0 400 300">'
        f'<image x="0" y="0" width="400" height="300" xlink:href="data:image/jpeg;base64,{data}"/>'
        "</svg>"
    )


XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmp:Rating="{rating}">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{description}</rdf:li></rdf:Alt>
   </dc:description>
   <dc:subject><rdf:Bag>{keywords}</rdf:Bag></dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>{hierarchy}</rdf:li></rdf:Bag>
   </lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def _xmp(title: str, description: str, keywords: list[str], hierarchy: str, rating: int) -> str:
    items = "".join(f"<rdf:li>{k}</rdf:li>" for k in keywords)
    return XMP.format(title=title, description=description, keywords=items,
                      hierarchy=hierarchy, rating=rating)  # fmt: skip


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("formats")
    # Opaque names: nothing found here comes from a file name.
    _photo("farm_animals/sheep.jpg").save(root / "f1.avif", quality=60)
    (root / "f2.svg").write_text(_svg_with_photo("household_objects/igloo.webp"))
    giraffe = _photo("world_animals/giraffe.webp")
    (root / "f3.dng").write_bytes(make_dng(giraffe, preview=giraffe, when="2020:08:15 12:00:00"))
    cow = _photo("farm_animals/cow.jpg")  # no preview: demosaiced
    (root / "f4.dng").write_bytes(make_dng(cow, make="NIKON CORPORATION", model="NIKON D750",
                                           when="2021:01:02 08:00:00"))  # fmt: skip
    # An XMP sidecar of each naming style.
    _photo("farm_animals/pig.webp").save(root / "f5.jpg", quality=90)
    keywords = ["Wilhelmina", "holiday"]
    xmp = _xmp(
        "Grandma Wilhelmina's farm", "Summer at Oakridge", keywords, "Family|Grandparents|Oma", 4
    )
    (root / "f5.xmp").write_text(xmp)
    _photo("farm_animals/chicken.webp").save(root / "f6.png")
    (root / "f6.png.xmp").write_text(_xmp("Henhouse", "", ["Zanzibar"], "Places|Zanzibar", 2))
    index = tmp_path_factory.mktemp("formats-index")
    res = invoke("index", root, "--index", index, "--json", "-q")
    assert res.code == 0, res.err
    summary = json.loads(res.out)
    assert summary["failed"] == 0, summary.get("failures")
    assert summary["embedded_by_modality"]["image"] == 6
    yield root, index


@pytest.mark.parametrize(
    ("query", "name"),
    [("a sheep", "f1.avif"), ("a house made of snow", "f2.svg"), ("a giraffe", "f3.dng"),
     ("a cow", "f4.dng")],
)  # fmt: skip
def test_each_format_is_found_by_what_it_shows(
    library: tuple[Path, Path], query: str, name: str
) -> None:
    _, index = library
    assert names(search(index, query, "-k", "1")) == [name]


def test_raw_exif_and_sizes_are_read(library: tuple[Path, Path]) -> None:
    _, index = library
    preview = file_meta(index, "f3.dng")  # the 1024x683 preview, not the 160x120 thumbnail
    assert (preview["width"], preview["height"]) == (1024, 683)
    assert preview["taken"] == "2020-08-15T12:00:00" and preview["camera"] == "Canon EOS R5"
    mosaic = file_meta(index, "f4.dng")  # half-size demosaic; EXIF from IFDs Pillow cannot open
    assert (mosaic["width"], mosaic["height"]) == (512, 384)
    assert mosaic["taken"] == "2021-01-02T08:00:00" and mosaic["camera"] == "NIKON D750"
    svg = file_meta(index, "f2.svg")  # 120 x 90 mm = 454 x 340 px, drawn at 512 on the long side
    assert (svg["width"], svg["height"]) == (512, 384)


def test_xmp_sidecars_are_searchable_and_explained(library: tuple[Path, Path]) -> None:
    _, index = library
    xmp = file_meta(index, "f5.jpg")["xmp"]
    assert xmp == {"title": "Grandma Wilhelmina's farm", "description": "Summer at Oakridge",
                   "keywords": ["Wilhelmina", "holiday", "Family", "Grandparents", "Oma"],
                   "rating": 4}  # fmt: skip
    assert file_meta(index, "f6.png")["xmp"]["keywords"] == ["Zanzibar", "Places"]
    assert names(search(index, "wilhelmina", "--space", "lexical"))[:1] == ["f5.jpg"]
    assert names(search(index, "Oakridge", "--space", "lexical"))[:1] == ["f5.jpg"]
    assert names(search(index, "oma", "--space", "lexical"))[:1] == ["f5.jpg"]
    rows = search(index, "zanzibar", "--space", "lexical")
    assert names(rows)[:1] == ["f6.png"]
    assert "Henhouse, Zanzibar, Places" in str(rows[0]["why"])


# --- hostile files ----------------------------------------------------------------------


def _listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    return server


def test_hostile_files_fail_with_one_line_reasons(tmp_path: Path, no_network: list[object]) -> None:
    root = tmp_path / "hostile"
    root.mkdir()
    # Renders: the outside references are dropped, no connection and no file read is made.
    server = _listener()
    port = server.getsockname()[1]
    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "secret.png")
    (root / "refs.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        'width="64" height="64"><rect width="64" height="64" fill="white"/>'
        f'<image href="http://127.0.0.1:{port}/x.png" width="64" height="64"/>'
        '<image xlink:href="http://127.0.0.1:9/x.png" width="64" height="64"/>'
        f'<image href="file://{tmp_path}/secret.png" width="64" height="64"/>'
        f'<image href="{tmp_path}/secret.png" width="64" height="64"/>'
        f"<style>@import url(http://127.0.0.1:{port}/a.css);</style></svg>"
    )
    # Fail, each with its reason.
    expected = {
        "laughs.svg": "entities",
        "huge.svg": "over the limit",
        "cut.avif": "not a readable image",
        "garbage.nef": "not a readable RAW file",
        "bomb.dng": "over the limit",
        "cut.dng": "not a readable RAW file",
    }
    (root / "laughs.svg").write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE svg [<!ENTITY a "lol">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        + ']>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        "<text>&j;</text></svg>"
    )
    (root / "huge.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="200000" height="200000">'
        '<rect width="10" height="10"/></svg>'
    )
    avif = io.BytesIO()
    _photo("farm_animals/sheep.jpg").save(avif, "AVIF", quality=60)
    (root / "cut.avif").write_bytes(avif.getvalue()[: len(avif.getvalue()) // 2])
    (root / "garbage.nef").write_bytes(os.urandom(40_000))
    small = _photo("farm_animals/horse.webp").resize((64, 64))
    (root / "bomb.dng").write_bytes(make_dng(small, declared=(60_000, 60_000)))
    mosaic = make_dng(_photo("farm_animals/cow.jpg"))
    (root / "cut.dng").write_bytes(mosaic[: len(mosaic) // 3])
    # A corrupt maker note costs nothing: the preview (or the mosaic) is still read.
    horse = _photo("farm_animals/horse.webp")
    nikon: dict[str, Any] = {
        "make": "NIKON CORPORATION",
        "model": "NIKON D750",
        "maker_note": BAD_MAKER_NOTE,
    }
    (root / "note.nef").write_bytes(make_dng(horse, preview=horse, **nikon))
    (root / "note2.nef").write_bytes(make_dng(horse, **nikon))

    index = tmp_path / "index"
    try:
        res = invoke("index", root, "--index", index, "--json", "-q")
        try:
            conn, _ = server.accept()
            conn.close()
            connected = True
        except BlockingIOError:
            connected = False
    finally:
        server.close()
    assert not connected and no_network == []
    assert res.code == 6, res.err  # partial: some files failed
    assert "Traceback" not in res.err
    summary = json.loads(res.out)
    assert summary["failed"] == len(expected)
    listing = invoke("info", "--failed", "--index", index)
    assert listing.code == 0 and "Traceback" not in listing.err
    lines = listing.text.strip().splitlines()
    assert len(lines) == len(expected)
    reasons = {Path(line.split("\t")[0]).name: line.split("\t")[1] for line in lines}
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons[name])
    assert (
        file_meta(index, "note.nef")["width"] == 1024
        and file_meta(index, "note2.nef")["width"] == 512
    )


def test_svg_references_outside_the_document_are_not_drawn(tmp_path: Path) -> None:
    from mmsearch_cli.decoders.image import ALPHA_KEY, load_image

    Image.new("RGB", (8, 8), (0, 255, 0)).save(tmp_path / "green.png")
    data = base64.b64encode((tmp_path / "green.png").read_bytes()).decode()
    hrefs = [
        (f"file://{tmp_path}/green.png", False),
        (str(tmp_path / "green.png"), False),
        ("green.png", False),
        (f"data:image/png;base64,{data}", True),
    ]
    for href, drawn in hrefs:
        svg = tmp_path / "a.svg"
        svg.write_text(
            '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32">'
            f'<image href="{href}" width="32" height="32"/></svg>'
        )
        img = load_image(svg, max_pixels=10**8)
        assert img.size == (512, 512)
        assert (img.getpixel((256, 256)) == (0, 255, 0)) is drawn, href
        if not drawn:  # transparent, composited on white, the alpha kept for the colours
            assert img.getpixel((256, 256)) == (255, 255, 255) and ALPHA_KEY in img.info


def test_editing_or_removing_a_sidecar_re_indexes_its_photo(tmp_path: Path) -> None:
    """The sidecar's mtime is part of its photo's: an edit is picked up by the next run,
    an untouched pair costs nothing, and a removed sidecar takes its words along."""
    root, index = tmp_path / "photos", tmp_path / "index"
    root.mkdir()
    _photo("farm_animals/cow.jpg").save(root / "p1.jpg", quality=90)
    sidecar = root / "p1.xmp"
    sidecar.write_text(_xmp("Pasture", "", ["Quixotic"], "Places|Quixotic", 3))

    def run() -> dict[str, Any]:
        res = invoke("index", root, "--index", index, "--json", "-q")
        assert res.code == 0, res.err
        summary: dict[str, Any] = json.loads(res.out)
        return summary

    assert run()["added"] == 1
    assert names(search(index, "quixotic", "--space", "lexical")) == ["p1.jpg"]
    assert run()["unchanged"] == 1
    sidecar.write_text(_xmp("Pasture", "", ["Zephyrine"], "Places|Zephyrine", 3))
    os.utime(sidecar, ns=(sidecar.stat().st_atime_ns, sidecar.stat().st_mtime_ns + 10**9))
    again = run()
    assert again["updated"] == 1 and again["changed_while_reading"] == 0
    assert names(search(index, "zephyrine", "--space", "lexical")) == ["p1.jpg"]
    assert search(index, "quixotic", "--space", "lexical") == []
    sidecar.unlink()
    assert run()["updated"] == 1
    assert search(index, "zephyrine", "--space", "lexical") == []


def test_real_camera_raw_files(tmp_path: Path) -> None:
    """Files from real cameras (ExifTool's cut-down test set, tests/data/raw): each is
    indexed from what it still holds, or fails with one plain line, and LibRaw's own
    chatter ("data corrupted at …") stays off the terminal."""
    import subprocess
    import sys

    root = tmp_path / "camera"
    root.mkdir()
    for f in (Path(__file__).parent.parent / "data" / "raw").iterdir():
        if f.suffix != ".md":
            (root / f.name).write_bytes(f.read_bytes())
    index = tmp_path / "index"
    env = {**os.environ, "MMS_NO_SERVER": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "mmsearch_cli", "index", str(root), "--index", str(index),
         "--json", "-q"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert res.returncode == 6, res.stderr
    assert json.loads(res.stdout)["added"] == 3
    err = res.stderr.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("mms: warning: skipped") for line in err), err
    assert "b'" not in res.stderr and "corrupted at" not in res.stderr
    # The Fujifilm's sensor data is cut: its 160 px preview is the picture, with its EXIF.
    raf = file_meta(index, "FujiFilm.raf")
    assert raf["width"] == 160 and raf["camera"] == "Fujifilm S5Pro", raf
    assert file_meta(index, "Panasonic.rw2")["width"] > 1000  # 8 px preview: demosaiced
    assert file_meta(index, "DNG.dng")["width"] > 1000
