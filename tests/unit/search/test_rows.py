"""Every output format is parseable, including paths no terminal should have to show."""

from __future__ import annotations

import base64
import io
import json
import os

from mmsearch_cli.search.rows import Hit, ref, render, to_row

WEIRD = os.fsdecode(b"/tmp/caf\xe9\n\tx -y.txt")


def hits() -> list[Hit]:
    return [
        Hit(1, 0.9, "/tmp/a.jpg", "image", "image", None, None, None, "hammer 0.8", "", 1),
        Hit(2, 0.5, WEIRD, "text", "chunk", 0, None, None, "“quote”", "body", 1),
        Hit(3, 0.4, "/tmp/v.mp4", "video", "keyframe", None, 12.34, None, "earth", "", 3),
    ]


def rendered(fmt: str, nul: bool = False) -> bytes:
    buf = io.BytesIO()
    render([to_row(h) for h in hits()], fmt, buf, nul=nul)
    return buf.getvalue()


def test_json_and_jsonl_round_trip_every_path_exactly() -> None:
    rows = json.loads(rendered("json"))
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert rows[1]["path"] == WEIRD  # \\udcXX escapes decode back to surrogateescape form
    assert os.fsencode(rows[1]["path"]) == b"/tmp/caf\xe9\n\tx -y.txt"
    assert base64.b64decode(rows[1]["path_b64"]) == b"/tmp/caf\xe9\n\tx -y.txt"
    assert rows[2]["t"] == 12.34 and rows[2]["segments_matched"] == 3
    lines = rendered("jsonl").splitlines()
    assert len(lines) == 3 and all(json.loads(line)["score"] > 0 for line in lines)
    rendered("json").decode("utf-8")  # strictly valid UTF-8


def test_tsv_escapes_tabs_and_newlines_so_rows_stay_rows() -> None:
    lines = rendered("tsv").split(b"\n")
    assert lines[0].split(b"\t")[:4] == [b"rank", b"score", b"modality", b"path"]
    row = lines[2].split(b"\t")
    assert len(row) == 6 and row[3] == b"/tmp/caf\xe9\\n\\tx -y.txt"


def test_paths_and_nul_formats() -> None:
    assert rendered("paths").splitlines()[-1] == b"/tmp/v.mp4#t=12.3"
    parts = rendered("paths", nul=True).split(b"\0")
    assert parts[:3] == [b"/tmp/a.jpg", b"/tmp/caf\xe9\n\tx -y.txt", b"/tmp/v.mp4"]
    assert ref({"path": "/x", "t": None}) == "/x"
