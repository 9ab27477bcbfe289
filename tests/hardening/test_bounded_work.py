"""Work and memory bounded per input (issue 20, defects 6, 8, 9): chunking is linear in
memory, a text past the chunk budget is indexed in part (noted in `mms info`), a query
file is read a line at a time, a big picture is shrunk before it is converted."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from mmsearch_cli.decoders.text import chunk_text
from tests.hardening.bounded import invoke

# A child's own peak: VmHWM belongs to its memory map, which exec makes anew; ru_maxrss
# would start from the parent's (this test process, with its models loaded).
PEAK_KIB = (
    "next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM'))"
)


def test_chunking_a_text_without_blank_lines_is_linear_in_memory() -> None:
    text = ("word " * 7 + "end. ") * 500_000  # 20 MB, one paragraph
    tracemalloc.start()
    started = time.monotonic()
    chunks = chunk_text(text, max_chunks=2000)
    seconds = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(chunks) == 2000
    assert peak < 10 * len(text), peak  # was ~115 bytes per character (2.5 GB)
    assert seconds < 60


def test_a_text_past_the_chunk_budget_is_indexed_in_part(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "huge.md").write_text("\n".join(f"line {i} of the ship's log" for i in range(60_000)))
    (lib / "small.txt").write_text("A short note about the harbour.\n")
    index = tmp_path / "index"
    res = invoke("index", lib, "--index", index, "--json", env={"MMS_MAX_TEXT_CHUNKS": "50"})
    assert res.code == 0, res.err
    assert json.loads(res.out)["added"] == 2
    info = invoke("info", "--index", index, "--json")
    data = json.loads(info.out)
    assert data["partial"] == 1 and data["segments"] == 50 + 1
    table = invoke("info", "--index", index)
    assert "partial    1 texts indexed up to max_text_chunks" in table.text


def test_a_long_query_file_is_read_a_line_at_a_time(tmp_path: Path) -> None:
    """Issue 20, defect 9: a million-line query file took ~1 GB just to parse."""
    from mmsearch_cli.evaluation.run import iter_queries

    queries = tmp_path / "q.jsonl"
    line = '{{"id": "q{}", "text": "a hammer", "relevant": {{"images/tools/hammer1.webp": 2}}}}\n'
    with queries.open("w") as fh:
        for i in range(100_000):
            fh.write(line.format(i))
    tracemalloc.start()
    count = sum(1 for _ in iter_queries(queries))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 100_000
    assert peak < 12_000_000, peak  # the ids' hashes (~4 MB), not the queries (~270 MB)


def test_a_big_rotated_rgba_picture_is_shrunk_before_it_is_converted(tmp_path: Path) -> None:
    """Issue 20, defect 8: rotating and converting a full-size copy (three of them for a
    transparent picture) before shrinking it. 8000 x 8000 RGBA decodes to 244 MiB; the
    peak was 812 MiB, and is 548 MiB with the shrink first."""
    import subprocess
    import sys

    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, 8000, dtype=np.uint8)
    pixels = np.zeros((8000, 8000, 4), np.uint8)
    pixels[..., 0], pixels[..., 1], pixels[..., 3] = ramp[None, :], ramp[:, None], 200
    picture = Image.fromarray(pixels, "RGBA")
    exif = picture.getexif()
    exif[0x0112] = 6  # rotated a quarter turn
    path = tmp_path / "big.png"
    picture.save(path, exif=exif.tobytes())
    del pixels, picture
    code = (
        "from pathlib import Path; "
        "from mmsearch_cli.decoders.image import load_image; "
        f"img = load_image(Path({str(path)!r}), max_pixels=89_478_485); "
        f"print(img.size, img.mode, {PEAK_KIB})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    assert out[:3] == ["(1024,", "1024)", "RGB"]
    decoded_mib = 8000 * 8000 * 4 / 2**20
    assert int(out[3]) / 1024 < 2.6 * decoded_mib  # 3.3x before


def test_a_zero_padded_mp3_is_read_no_further_than_its_audio_needs(tmp_path: Path) -> None:
    """Issue 20, defect 7: a preallocated download (a real mp3, then 300 MB of zeros) cost
    about its size in memory while FFmpeg hunted for frames (1 GB of padding: 0.9 GB)."""
    import subprocess
    import sys

    from tests.conftest import SAMPLE

    padded = tmp_path / "partial.mp3"
    padded.write_bytes((SAMPLE / "audio" / "animals" / "cat.mp3").read_bytes())
    with padded.open("ab") as fh:
        for _ in range(300):
            fh.write(bytes(1 << 20))
    code = (
        "from mmsearch_cli.decoders.audio import iter_blocks; "
        f"n = sum(len(b) for b in iter_blocks({str(padded)!r}, 16000, 600)); "
        f"print(n, {PEAK_KIB})"
    )
    from mmsearch_cli.decoders.audio import iter_blocks

    proc = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    samples, peak_kib = map(int, proc.stdout.split())
    alone = sum(len(b) for b in iter_blocks(SAMPLE / "audio" / "animals" / "cat.mp3", 16000, 600))
    assert 0 <= samples - alone < 1600  # the sound loses nothing (a frame of padding at most)
    assert peak_kib / 1024 < 200, peak_kib  # was ~300 MiB more than the unpadded file
