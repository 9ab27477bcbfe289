"""The HTML contact sheet of a 50-hit query: build cost and Chromium render (issue 18).

Usage: python benchmarks/html_sheet.py [--index DIR] [--query TEXT] [-k 50] [--repeat 3]

Without ``--index``: the index of the shared corpus copy (``.cache/lexical/corpus``, over
``.cache/datasets/corpus-opaque``) if it exists, else ``sample_data/`` indexed into a
temporary folder. Then, for one query of ``k`` hits (a mix of pictures, sounds, videos
and text):

1. ``render_html`` cold (an empty thumbnail cache: every thumbnail decoded and written)
   and warm (all cached), milliseconds;
2. headless Chromium (``tests/support/chromium.py``) loading the page from disk: process
   start to the load event, navigation to the load event, console errors, thumbnails
   decoded (``naturalWidth > 0``).

Goal: the page renders in under 2 s in headless Chromium, thumbnails cached, with no
console errors. Prints a table.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
os.environ["HF_HUB_OFFLINE"] = "1"

CORPUS_INDEX = ROOT / ".cache" / "lexical" / "corpus"


def index_dir(given: str | None, scratch: Path) -> Path:
    if given:
        return Path(given)
    if (CORPUS_INDEX / "sidecar.json").is_file():
        return CORPUS_INDEX
    import mmsearch_cli as mms

    target = scratch / "index"
    print(f"indexing sample_data into {target} …", file=sys.stderr)
    mms.index([ROOT / "sample_data"], index_dir=target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index")
    parser.add_argument("--query", default="animals and landscapes")
    parser.add_argument("-k", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from mmsearch_cli import api
    from mmsearch_cli.search.sheet import render_html
    from tests.support import chromium

    with tempfile.TemporaryDirectory(prefix="mms-bench-sheet-") as tmp:
        scratch = Path(tmp)
        index = index_dir(args.index, scratch)
        rows = api.query_rows(args.query, index_dir=index, k=args.k)
        kinds = Counter(r["modality"] for r in rows)
        cache = scratch / "thumbs"
        started = time.perf_counter()
        render_html(rows, io.BytesIO(), query=args.query, cache=cache)
        cold = time.perf_counter() - started
        warm_runs, page = [], b""
        for _ in range(args.repeat):
            buf = io.BytesIO()
            started = time.perf_counter()
            render_html(rows, buf, query=args.query, cache=cache)
            warm_runs.append(time.perf_counter() - started)
            page = buf.getvalue()
        html_file = scratch / "results.html"
        html_file.write_bytes(page)
        cached = sum(1 for p in cache.rglob("*.jpg") if p.stat().st_size)

        exe, why = chromium.chromium(install_timeout=300)
        shown = []
        if exe is not None:
            for _ in range(args.repeat):
                shown.append(chromium.load(exe, html_file, screenshot=False))

    print(f"index: {index}")
    print(f"query: {args.query!r}, {len(rows)} hits: {dict(kinds)}; page {len(page) / 1e3:.0f} kB")
    print()
    print("| step | time |")
    print("|---|---|")
    print(f"| render_html, cold cache ({cached} thumbnails made) | {cold * 1000:.0f} ms |")
    print(f"| render_html, warm cache (median of {args.repeat}) "
          f"| {statistics.median(warm_runs) * 1000:.0f} ms |")  # fmt: skip
    if not shown:
        print(f"| headless Chromium | skipped: {why} |")
        return 0
    total = statistics.median(s.total_seconds for s in shown)
    load = statistics.median(s.load_seconds for s in shown)
    decoded = min(sum(1 for i in s.images if i["w"] > 0) for s in shown)
    errors = max(len(s.errors) for s in shown)
    print(f"| Chromium: process start to load event (median of {args.repeat}) "
          f"| {total * 1000:.0f} ms |")  # fmt: skip
    print(f"| Chromium: navigation to load event | {load * 1000:.0f} ms |")
    print()
    some = f" {shown[0].errors[:3]}" if errors else ""
    print(f"thumbnails decoded in the page: {decoded} of {len(shown[0].images)}; "
          f"console errors: {errors}{some}")  # fmt: skip
    goal = total < 2.0 and errors == 0 and decoded == len(shown[0].images)
    verdict = "met" if goal else "MISSED"
    print(f"goal (< 2 s, no console errors, every thumbnail decoded): {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
