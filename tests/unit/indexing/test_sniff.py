"""Which extensionless files are text: decided from their first bytes."""

from __future__ import annotations

from pathlib import Path

from mmsearch_cli.indexing.sniff import NO_EXTENSION, looks_like_text, type_label


def test_text_in_utf8_and_legacy_encodings(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("plain notes\n")
    (tmp_path / "b").write_bytes("Grüße aus Köln, schöne Straße\n".encode("latin-1"))
    (tmp_path / "c").write_bytes(("x" * 8191 + "é").encode("utf-8"))  # cut inside a char
    assert all(looks_like_text(str(tmp_path / n)) for n in "abc")


def test_binaries_empty_and_unreadable_are_not_text(tmp_path: Path) -> None:
    (tmp_path / "zeros").write_bytes(b"\x00" * 100)
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "blank").write_bytes(b"  \n\t")
    (tmp_path / "png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    for name in ("zeros", "empty", "blank", "png", "missing"):
        assert not looks_like_text(str(tmp_path / name)), name


def test_type_labels() -> None:
    assert type_label("/x/Data.XYZ") == ".xyz"
    assert type_label("/x/README") == NO_EXTENSION
    assert type_label("/x/.bashrc") == NO_EXTENSION
