"""Hostile and odd input: bombs, broken files of every type, odd names through every
output format, symlinks, permissions, files that vanish or change, long paths, limits."""

from __future__ import annotations

import base64
import ctypes
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmsearch_cli.config import Limits, load_settings
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.decoders.text import read_text
from mmsearch_cli.errors import MediaError
from mmsearch_cli.items import EXTENSIONS, RAW_EXTENSIONS
from mmsearch_cli.store import db
from mmsearch_cli.store.index import IndexReader
from mmsearch_cli.store.state import FileRecord
from tests.conftest import MMS, SAMPLE, invoke, mms_process

PHOTO = SAMPLE / "images/tools/wrench.jpg"
NOTE = SAMPLE / "text/owls.txt"


def _index_json(root: Path, index: Path, env: dict[str, str] | None = None) -> dict:
    proc = mms_process("index", root, "--index", index, "--json", "-q", env=env, timeout=600)
    assert proc.returncode in (0, 6), proc.stderr.decode()
    assert b"Traceback" not in proc.stderr and b"internal error" not in proc.stderr
    return json.loads(proc.stdout)


def _records(index: Path) -> dict[str, FileRecord]:
    """Every file record of an index, with its segment ids."""
    reader = IndexReader.open(index)
    try:
        paths = [rec.path for rec in db.iter_files(reader.con)]
        return db.files(reader.con, paths, with_segments=True)
    finally:
        reader.close()


# -- generated media of every supported type ------------------------------------------


def make_image(path: Path) -> None:
    from PIL import Image

    from mmsearch_cli.decoders.image import heif_available

    assert heif_available()
    img = Image.open(PHOTO).convert("RGB")
    img.thumbnail((160, 160))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".heic": "HEIF", ".heif": "HEIF"}
    img.save(path, format=fmt.get(path.suffix, path.suffix[1:].upper()))


def make_audio(path: Path, seconds: float = 1.5) -> None:
    import soundfile as sf

    sr = 48000 if path.suffix == ".opus" else 22050
    t = np.arange(int(sr * seconds)) / sr
    noise = np.random.default_rng(0).standard_normal(len(t))
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * noise).astype(np.float32)
    if path.suffix == ".m4a":
        import av

        with av.open(str(path), "w", format="ipod") as out:
            stream = out.add_stream("aac", rate=sr, layout="mono")
            frame = av.AudioFrame.from_ndarray(wave[None, :], format="flt", layout="mono")
            frame.sample_rate = sr
            for packet in [*stream.encode(frame), *stream.encode(None)]:
                out.mux(packet)
        return
    fmt, subtype = {
        ".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"),
        ".oga": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS"), ".mp3": ("MP3", "MPEG_LAYER_III"),
    }[path.suffix]  # fmt: skip
    sf.write(path, wave, sr, format=fmt, subtype=subtype)


def make_video(path: Path, frames: int = 20) -> None:
    """A 64x64 clip at 10 fps whose colour changes every second (a cut per second)."""
    import av

    fmt, codec = {
        ".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
        ".mkv": ("matroska", "libx264"), ".avi": ("avi", "mpeg4"), ".webm": ("webm", "libvpx"),
    }[path.suffix]  # fmt: skip
    rng = np.random.default_rng(1)
    with av.open(str(path), "w", format=fmt) as out:
        stream: Any = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        colour = rng.integers(0, 255, 3)
        for i in range(frames):
            if i % 10 == 0:
                colour = rng.integers(0, 255, 3)
            img = np.broadcast_to(colour.astype(np.uint8), (64, 64, 3)).copy()
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


DOCUMENTS = SAMPLE / "documents"
# A real file of each document type (sample_data/documents, made by real tools).
DOCUMENT_SAMPLES = {
    ".pdf": "bicycle_manual.pdf", ".docx": "lease_agreement.docx", ".odt": "cardamom_buns.odt",
    ".epub": "printing_press.epub", ".html": "contrastive_embeddings.html",
    ".htm": "jupiter_moons.html", ".xhtml": "jupiter_moons.html", ".rtf": "houseplants.rtf",
}  # fmt: skip


def make_valid(path: Path) -> None:
    modality = EXTENSIONS[path.suffix]
    if path.suffix in RAW_EXTENSIONS:
        from PIL import Image

        from tests.e2e.test_photo_formats import make_dng

        with Image.open(PHOTO) as img:
            path.write_bytes(make_dng(img.convert("RGB"), preview=img.convert("RGB")))
    elif path.suffix == ".svg":
        path.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
                        '<rect width="64" height="48" fill="red"/></svg>')  # fmt: skip
    elif path.suffix in DOCUMENT_SAMPLES:
        shutil.copy(DOCUMENTS / DOCUMENT_SAMPLES[path.suffix], path)
    elif modality == "image":
        make_image(path)
    elif modality == "audio":
        make_audio(path)
    elif modality == "video":
        make_video(path)
    else:
        shutil.copy(NOTE, path)


def test_truncated_and_corrupt_files_of_every_supported_type(tmp_path: Path) -> None:
    """Per extension: a valid file, its first half, its body with a garbage header, and an
    empty file. Valid ones index; empty ones fail; nothing crashes or hangs."""
    root = tmp_path / "media"
    root.mkdir()
    rng = np.random.default_rng(2)
    for ext in sorted(EXTENSIONS):
        valid = root / f"valid{ext}"
        make_valid(valid)
        data = valid.read_bytes()
        (root / f"truncated{ext}").write_bytes(data[: len(data) // 2])
        garbage = rng.integers(1, 256, 64, dtype=np.uint8).tobytes()
        (root / f"garbage{ext}").write_bytes(garbage + data[64:])
        (root / f"empty{ext}").write_bytes(b"")
    started = time.monotonic()
    summary = _index_json(root, tmp_path / "index")
    elapsed = time.monotonic() - started
    records = _records(tmp_path / "index")
    outcome: dict[str, dict[str, str]] = {}
    for path, rec in records.items():
        kind, ext = os.path.splitext(os.path.basename(path))
        outcome.setdefault(ext, {})[kind] = "ok" if rec.status == "ok" else f"failed: {rec.error}"
    for ext in sorted(outcome):  # the table for the closing note (pytest -s)
        print(f"{ext:<10}", " | ".join(f"{k}: {outcome[ext].get(k)}" for k in sorted(outcome[ext])))
    assert set(outcome) == set(EXTENSIONS)
    assert all(row["valid"] == "ok" for row in outcome.values()), outcome
    assert all(row["empty"].startswith("failed") for row in outcome.values()), outcome
    for rec in records.values():
        assert rec.status == "ok" or (rec.error and "\n" not in rec.error)
    assert sum(summary["failures_by_reason"].values()) == summary["failed"]
    image_garbage = [outcome[e]["garbage"] for e in EXTENSIONS if EXTENSIONS[e] == "image"]
    assert all(o.startswith("failed") for o in image_garbage), image_garbage
    assert elapsed < 180


# -- decompression bombs --------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_quickly_with_bounded_memory(tmp_path: Path) -> None:
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(100_000, 100_000))  # 10^10 pixels, 30 GB decoded
    over = tmp_path / "over_pillow_limit.png"
    Image.new("1", (10_000, 9_000)).save(over)  # 9e7 > Pillow's 89,478,485, 20 kB on disk
    limit = Limits().max_image_pixels
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(MediaError, match=f"100000x100000 pixels, over the limit of {limit}"):
        load_image(bomb, max_pixels=limit)
    with pytest.raises(MediaError, match=f"10000x9000 pixels, over the limit of {limit}"):
        load_image(over, max_pixels=limit)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 5_000_000, (elapsed, peak)
    # The limit is configurable both ways: raised, the 9e7-pixel image decodes.
    assert load_image(over, max_pixels=100_000_000).size == (1024, 922)
    summary = _index_json(tmp_path, tmp_path / "index")
    reasons = {os.path.basename(f["path"]): f["reason"] for f in summary["failures"]}
    assert "over the limit" in reasons["bomb.png"] and "over the limit" in reasons[over.name]


# -- wrong types, empty files, directories named like files ---------------------------


def test_wrong_extensions_zero_bytes_binary_text_and_a_folder_named_like_a_file(
    tmp_path: Path,
) -> None:
    root = tmp_path / "media"
    (root / "album.jpg").mkdir(parents=True)  # a directory named like an image
    shutil.copy(NOTE, root / "album.jpg/inside.txt")
    (root / "text_as.jpg").write_text("just some words, not an image")
    shutil.copy(PHOTO, root / "jpeg_named.png")  # content sniffing: still an image
    shutil.copy(PHOTO, root / "jpeg_named.mp3")
    (root / "random.txt").write_bytes(np.random.default_rng(3).bytes(5000))
    shutil.copy(PHOTO, root / "photo_named.txt")
    (root / "utf16.txt").write_text("Owls hunt at night.", encoding="utf-16")
    for ext in (".jpg", ".txt", ".md", ".wav", ".mp3", ".mp4"):
        (root / f"zero{ext}").write_bytes(b"")
    summary = _index_json(root, tmp_path / "index")
    reasons = {os.path.relpath(f["path"], root): f["reason"] for f in summary["failures"]}
    records = _records(tmp_path / "index")
    assert records[str(root / "album.jpg/inside.txt")].status == "ok"
    assert records[str(root / "jpeg_named.png")].status == "ok"
    assert not any(p.startswith("album.jpg") for p in reasons)
    assert "not a readable image" in reasons["text_as.jpg"]
    assert "jpeg_named.mp3" in reasons
    for name in ("random.txt", "photo_named.txt", "utf16.txt"):
        assert reasons[name] == "binary content in a text file"
    for ext in (".jpg", ".txt", ".md", ".wav", ".mp3", ".mp4"):
        assert f"zero{ext}" in reasons, reasons
    assert summary["failed"] == len(reasons) == 11


# -- huge text ------------------------------------------------------------------------


def test_a_huge_text_file_is_read_in_bounded_memory(tmp_path: Path) -> None:
    big = tmp_path / "media/huge.txt"
    big.parent.mkdir()
    line = b"Owls hunt at night and sleep during the day in hollow trees. " * 16 + b"\n"
    with big.open("wb") as fh:
        for _ in range(60 * 1024 * 1024 // len(line)):
            fh.write(line)
    assert big.stat().st_size > 55e6
    limit = Limits().max_text_bytes
    tracemalloc.start()
    text, _ = read_text(big, max_bytes=limit)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(text) <= limit and peak < 2.5 * limit, peak  # read once, decoded once
    # Through `mms index` with a small limit: the peak is that of a file of the limit's
    # size (same chunks, same embedding batches), read from the child's own VmHWM (its
    # ru_maxrss would start at this test process's size).
    small = tmp_path / "small/owls.txt"
    small.parent.mkdir()
    small.write_bytes(big.read_bytes()[:20000])
    env = {**os.environ, "MMS_MAX_TEXT_BYTES": "20000"}
    code = (
        "import sys; from mmsearch_cli.cli.app import run; status = run(sys.argv[1:]); "
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
    )
    rss = {}
    for name, folder in (("small", small.parent), ("huge", big.parent)):
        proc = subprocess.run(
            [sys.executable, "-c", code, "index", str(folder), "--index",
             str(tmp_path / f"i-{name}"), "-q"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        rss[name] = int(proc.stdout.split()[-1]) / 1024  # MiB
    print(f"peak RSS: 20 kB text {rss['small']:.0f} MiB, 60 MB text {rss['huge']:.0f} MiB")
    assert rss["huge"] - rss["small"] < 40, rss
    rec = _records(tmp_path / "i-huge")[str(big)]
    assert rec.status == "ok" and rec.meta["chunks"] <= 40


# -- odd names through every output format --------------------------------------------

ODD = [b"caf\xe9 zebra.txt", b"two\nlines zebra.txt", b"tab\there zebra.txt",
       b"-rf zebra.txt", b"--help zebra.md", b"back\\slash zebra.txt"]  # fmt: skip


def _unescape_tsv(field: bytes) -> bytes:
    table = {b"t": b"\t", b"n": b"\n", b"r": b"\r", b"\\": b"\\"}
    return re.sub(rb"\\(.)", lambda m: table[m.group(1)], field)


@pytest.mark.parametrize("stdout_errors", ["surrogateescape", "strict"])
def test_odd_file_names_survive_every_format(tmp_path: Path, stdout_errors: str) -> None:
    """Non-UTF-8 bytes, newline, tab, leading dashes and backslashes in names. "strict"
    is how Python writes stdout under a UTF-8 locale other than C.UTF-8."""
    root = tmp_path / "media"
    root.mkdir()
    expected = set()
    for i, name in enumerate(ODD):
        path = os.fsencode(root) + b"/" + name
        with open(path, "wb") as fh:
            fh.write(f"A zebra crossing the savanna, note {i}.".encode())
        expected.add(path)
    env = {"PYTHONIOENCODING": f"utf-8:{stdout_errors}"}
    _index_json(root, tmp_path / "index", env=env)
    base = ["query", "zebra", "-k", "10", "--index", str(tmp_path / "index")]

    def run(*extra: str) -> bytes:
        if stdout_errors == "surrogateescape":  # in-process: fast, and how the tests run
            res = invoke(*base, *extra)
            assert res.code == 0, res.err
            return res.out
        proc = mms_process(*base, *extra, env=env)
        assert proc.returncode == 0, proc.stderr.decode()
        return proc.stdout

    rows = json.loads(run("--format", "json"))
    assert {os.fsencode(r["path"]) for r in rows} == expected
    for r in rows:
        if "path_b64" in r:
            assert base64.b64decode(r["path_b64"]) == os.fsencode(r["path"])
    assert any("path_b64" in r for r in rows)
    lines = run("--format", "jsonl").splitlines()
    assert {os.fsencode(json.loads(x)["path"]) for x in lines} == expected
    tsv = run("--format", "tsv").split(b"\n")
    assert tsv[0].startswith(b"rank\t") and tsv[-1] == b""
    assert {_unescape_tsv(line.split(b"\t")[3]) for line in tsv[1:-1]} == expected
    paths = run("--format", "paths")
    assert all(p in paths for p in expected)  # raw bytes; use -0 when names hold newlines
    assert set(run("-0").split(b"\0")[:-1]) == expected
    assert b"zebra" in run()  # the table renders too


def test_info_failed_lists_odd_names_exactly(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    bad = os.fsencode(root) + b"/caf\xe9 tab\there.jpg"
    with open(bad, "wb") as fh:
        fh.write(b"not an image")
    env = {"PYTHONIOENCODING": "utf-8:strict"}
    _index_json(root, tmp_path / "index", env=env)
    proc = mms_process("info", "--failed", "--index", tmp_path / "index", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(bad.replace(b"\t", b"\\t") + b"\t")


# -- symlinks, permissions ------------------------------------------------------------


def test_symlink_loops_and_links_out_of_the_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "media", tmp_path / "outside"
    (root / "real").mkdir(parents=True)
    outside.mkdir()
    shutil.copy(NOTE, root / "real/a.txt")
    shutil.copy(NOTE, outside / "b.txt")
    shutil.copy(NOTE, outside / "c.txt")
    (root / "loop").symlink_to(root)  # a folder that contains itself
    (root / "real/up").symlink_to("..")
    (root / "out").symlink_to(outside)  # a folder outside the root
    (root / "c_link.txt").symlink_to(outside / "c.txt")  # a file outside the root
    (root / "dangling.txt").symlink_to(tmp_path / "nothing.txt")
    started = time.monotonic()
    summary = _index_json(root, tmp_path / "index")
    assert set(_records(tmp_path / "index")) == {str(root / "real/a.txt"), str(root / "c_link.txt")}
    assert summary["scan_problems"] == [
        {"path": str(root / "dangling.txt"), "reason": "broken symbolic link"}
    ]
    res = invoke("index", root, "--index", tmp_path / "index2", "--follow-symlinks", "--json", "-q")
    followed = set(_records(tmp_path / "index2"))
    assert res.code == 0 and str(root / "out/b.txt") in followed
    assert sum(1 for p in followed if p.endswith("a.txt")) == 1  # each folder once
    assert time.monotonic() - started < 60


def _drop_dac_capabilities() -> None:
    """In the child: root without CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH obeys file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl")


def test_unreadable_files_and_folders_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "media"
    (root / "locked").mkdir(parents=True)
    shutil.copy(NOTE, root / "fine.txt")
    shutil.copy(NOTE, root / "secret.txt")
    shutil.copy(NOTE, root / "locked/hidden.txt")
    os.chmod(root / "secret.txt", 0)
    os.chmod(root / "locked", 0)
    index = tmp_path / "index"
    cmd = [*MMS, "index", str(root), "--index", str(index), "--json", "-q"]
    try:
        if os.geteuid() == 0:  # root ignores modes; drop the capabilities that allow it
            try:
                proc = subprocess.run(cmd, capture_output=True, preexec_fn=_drop_dac_capabilities)
            except subprocess.SubprocessError as exc:
                pytest.skip(f"running as root and cannot drop CAP_DAC_OVERRIDE: {exc}")
        else:
            proc = subprocess.run(cmd, capture_output=True)
    finally:
        os.chmod(root / "locked", 0o755)
        os.chmod(root / "secret.txt", 0o644)
    assert proc.returncode == 6, proc.stderr.decode()
    summary = json.loads(proc.stdout)
    assert summary["added"] == 1
    assert summary["failures"] == [
        {"path": str(root / "secret.txt"), "reason": "cannot read: Permission denied"}
    ]
    assert summary["scan_problems"] == [
        {"path": str(root / "locked"), "reason": "cannot list directory: Permission denied"}
    ]


# -- files that vanish or change while indexed ----------------------------------------


def test_files_that_vanish_or_change_during_the_run(tmp_path: Path) -> None:
    from mmsearch_cli.indexing.run import run_index

    root = tmp_path / "media"
    root.mkdir()
    for name in ("a", "b", "c", "d"):
        shutil.copy(NOTE, root / f"{name}.txt")
    settings = load_settings(index_dir=tmp_path / "index")

    def meddle(done: int, total: int, path: str) -> None:  # called before each file
        if path.endswith("b.txt"):
            os.unlink(path)
        elif path.endswith("c.txt"):
            Path(path).write_text("Frogs croak by the pond. " * 20)
            os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))

    summary = run_index([root], settings, progress=meddle)
    # c.txt changed after the scan: not indexed half-old, half-new, nor failed; left whole
    assert (summary.added, summary.vanished, summary.failed, summary.changed) == (2, 1, 0, 1)
    assert str(root / "b.txt") not in _records(tmp_path / "index")
    again = run_index([root], settings)  # the change after the scan is picked up now
    assert (again.added, again.unchanged, again.failed, again.removed) == (1, 2, 0, 0)
    frogs = invoke("query", "frogs croaking", "-k", "1", "--format", "paths",
                   "--index", tmp_path / "index")  # fmt: skip
    assert frogs.out.strip() == str(root / "c.txt").encode()


# -- very long paths ------------------------------------------------------------------


def test_paths_near_and_beyond_path_max(tmp_path: Path) -> None:
    root = tmp_path / "media"
    deep = root
    while len(os.fsencode(deep)) < 3800:
        deep = deep / ("d" * 200)
    deep.mkdir(parents=True)
    near = deep / ("n" * (4000 - len(os.fsencode(deep)) - 5) + ".txt")
    shutil.copy(NOTE, near)
    assert 3990 <= len(os.fsencode(near)) < 4096
    # Beyond PATH_MAX (4096): only reachable relative to a directory descriptor.
    fd = os.open(deep, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(2):
            os.mkdir("e" * 200, dir_fd=fd)
            fd2 = os.open("e" * 200, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = fd2
        out = os.open("beyond.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, NOTE.read_bytes())
        os.close(out)
    finally:
        os.close(fd)
    summary = _index_json(root, tmp_path / "index")
    assert summary["added"] == 1 and summary["failed"] == 0
    [problem] = summary["scan_problems"]
    assert "File name too long" in problem["reason"]
    res = invoke("query", "owls", "-k", "1", "--format", "paths", "--index", tmp_path / "index")
    assert res.out.strip() == os.fsencode(near)


# -- limits ---------------------------------------------------------------------------


def test_every_limit_is_configurable_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import fields

    defaults = Limits()
    for f in fields(Limits):
        value = getattr(defaults, f.name) * 2 + 1
        monkeypatch.setenv(f"MMS_{f.name.upper()}", str(value))
        assert getattr(load_settings().limits, f.name) == value
    monkeypatch.setenv("MMS_MAX_TEXT_BYTES", "lots")
    res = invoke("index", NOTE, "--index", "/nonexistent/never")
    assert res.code == 2 and "MMS_MAX_TEXT_BYTES: max_text_bytes must be a number" in res.err


def test_limits_from_the_environment_take_effect(tmp_path: Path) -> None:
    root = tmp_path / "media"
    root.mkdir()
    shutil.copy(PHOTO, root / "photo.jpg")
    shutil.copy(SAMPLE / "text/restructuredtext_primer.txt", root / "long.txt")
    make_video(root / "clip.mp4", frames=60)  # six one-second shots
    make_audio(root / "tone.wav", seconds=25.0)  # three 10-second windows
    env = {
        "MMS_MAX_IMAGE_PIXELS": "10000",
        "MMS_MAX_TEXT_BYTES": "2000",
        "MMS_VIDEO_MAX_KEYFRAMES": "2",
        "MMS_MAX_FILE_SECONDS": "10",
    }
    summary = _index_json(root, tmp_path / "limited", env=env)
    assert summary["failures"] == [
        {"path": str(root / "photo.jpg"), "reason": f"image is {_size(PHOTO)} pixels, "
         "over the limit of 10000"}
    ]  # fmt: skip
    limited = _records(tmp_path / "limited")
    _index_json(root, tmp_path / "default")
    default = _records(tmp_path / "default")
    text, video, audio = (str(root / n) for n in ("long.txt", "clip.mp4", "tone.wav"))
    assert limited[text].meta["chunks"] <= 3 < default[text].meta["chunks"]
    assert limited[video].meta["keyframes"] == 2 < default[video].meta["keyframes"]
    sounds = {k: sum(1 for _ in v.segments) for k, v in (("lim", limited[audio]),
                                                        ("def", default[audio]))}  # fmt: skip
    assert sounds["lim"] == 1 and sounds["def"] == 3, sounds


def _size(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as img:
        return f"{img.width}x{img.height}"
