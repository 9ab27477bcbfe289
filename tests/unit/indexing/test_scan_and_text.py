"""File discovery and text chunking on real and test-made files."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.decoders.text import chunk_text, read_text, title_of
from mmsearch_cli.errors import MediaError
from mmsearch_cli.indexing.diff import content_hash
from mmsearch_cli.indexing.scan import scan
from tests.conftest import SAMPLE


def test_scan_finds_sample_data_by_type_and_skips_hidden(tmp_path: Path) -> None:
    found = scan([SAMPLE])
    kinds = {f.modality for f in found.files.values()}
    assert kinds == {"image", "text", "audio", "video"}
    assert all(os.path.isabs(p) for p in found.files)
    assert not any(p.endswith((".jsonl", ".tsv")) for p in found.files)


def test_scan_survives_symlink_loops_odd_names_and_unreadable_dirs(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "note.md").write_text("hello")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)  # a loop back to the root
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9\nnew\tline.txt")
    with open(odd, "wb") as fh:
        fh.write(b"text")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "x.txt").write_text("x")
    locked.chmod(0)
    try:
        found = scan([tmp_path], follow_symlinks=True)
    finally:
        locked.chmod(0o755)
    names = {os.path.basename(p) for p in found.files}
    assert "note.md" in names
    assert os.fsdecode(b"caf\xe9\nnew\tline.txt") in names
    assert any("broken symbolic link" in r for r in found.problems.values())
    if os.geteuid() != 0:  # root reads everything
        assert str(locked) in found.problems


def test_chunks_overlap_and_stay_under_the_model_limit() -> None:
    sentences = [
        f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(200)
    ]
    chunks = chunk_text(" ".join(sentences))
    assert len(chunks) > 5
    assert all(len(c.text.split()) <= 160 for c in chunks)
    # consecutive chunks share their boundary sentence(s)
    for a, b in itertools.pairwise(chunks):
        assert a.text.split(". ")[-1] in b.text
    # a sentence far longer than a chunk is split by words, not dropped
    giant = chunk_text("word " * 1000)
    assert sum(len(c.text.split()) for c in giant) >= 1000


def test_read_text_handles_bad_utf8_binary_and_caps(tmp_path: Path) -> None:
    text, enc = read_text(SAMPLE / "broken" / "invalid_utf8.txt", max_bytes=1 << 20)
    assert enc == "cp1252" and text
    binary = tmp_path / "fake.txt"
    binary.write_bytes(b"\x7fELF\x00\x00\x01" * 100)
    with pytest.raises(MediaError, match="binary"):
        read_text(binary, max_bytes=1 << 20)
    big = tmp_path / "big.txt"
    big.write_text("é" * 100_000)  # 2 bytes each: a cap may fall mid-character
    text, enc = read_text(big, max_bytes=1001)
    assert enc == "utf-8" and len(text) == 500
    assert title_of("# Hand tools\n\nHammers…", "x") == "Hand tools"


def test_broken_images_raise_media_error_and_bombs_are_refused_before_decoding(
    tmp_path: Path,
) -> None:
    for name in ("empty.jpg", "text_not_image.png", "truncated.jpg"):
        with pytest.raises(MediaError):
            load_image(SAMPLE / "broken" / name, max_pixels=89_478_485)
    # A PNG header declaring 100k x 100k pixels: refused from the header alone.
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png)
    with pytest.raises(MediaError, match=r"pixels|bomb"):
        load_image(bomb, max_pixels=89_478_485)


def test_content_hash_identifies_moves_not_names(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(os.urandom(3 << 20))
    before = content_hash(str(a))
    b = tmp_path / "b.bin"
    a.rename(b)
    assert content_hash(str(b)) == before
    data = bytearray(b.read_bytes())
    data[0] ^= 1
    b.write_bytes(bytes(data))
    assert content_hash(str(b)) != before
