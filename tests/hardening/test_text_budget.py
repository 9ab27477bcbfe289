"""Big texts are bounded in memory and work (issue 20, defect 6): chunking is linear in
memory, and a text past the chunk budget is indexed in part, with a note in `mms info`."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

from mmsearch_cli.decoders.text import chunk_text
from tests.conftest import invoke


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
