"""Cron no-op: `mms index` over 10,000 unchanged files.

Usage: python benchmarks/noop_10k.py [--files 10000] [--runs 5] [--dir DIR]

Builds a tree of small text files (100 per folder), indexes it once, then re-runs
`mms index -q` on the unchanged tree. Prints the wall time of the whole process (Python
start, imports, model binding, scan, diff), the time spent inside ``run_index`` (measured
in-process, models already imported), and a breakdown of that time by phase. With
``--dir`` the tree and index are kept there, so a second invocation skips the build.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MMS = [sys.executable, "-m", "mmsearch_cli"]
WORDS = [
    "garden",
    "kettle",
    "river",
    "violin",
    "harbour",
    "pepper",
    "lantern",
    "meadow",
    "copper",
    "orchard",
    "bicycle",
    "thunder",
    "saddle",
    "marble",
    "compass",
    "pillow",
    "falcon",
    "walnut",
    "ribbon",
    "glacier",
]


def build_tree(root: Path, n: int) -> None:
    for i in range(n):
        folder = root / f"d{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        words = " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(12))
        (folder / f"note{i:05d}.txt").write_text(f"Note {i}. {words}.\n")


def timed_cli(args: list[str]) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    started = time.perf_counter()
    proc = subprocess.run([*MMS, *args], capture_output=True)
    return time.perf_counter() - started, proc


def phase_breakdown(root: Path, index: Path) -> list[tuple[str, float]]:
    """Cumulative seconds of the main steps inside one no-op ``run_index``."""
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.indexing.run import run_index

    settings = load_settings(index_dir=index)
    prof = cProfile.Profile()
    prof.enable()
    run_index([root], settings)
    prof.disable()
    stats = pstats.Stats(prof)
    wanted = {
        "file_stats": "database read (file stats)",
        "open": "open the index",
        "bind": "bind embedders",
        "scan": "scan (stat)",
        "diff_files": "diff against the index",
        "commit": "commit",
    }
    rows = []
    for (_, _, func), entry in stats.stats.items():  # type: ignore[attr-defined]
        if func in wanted:
            rows.append((wanted[func], float(entry[3])))
    return sorted(rows, key=lambda r: -r[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="keep tree and index here")
    args = parser.parse_args()
    os.environ.setdefault("MMS_THREADS", "1")
    work = args.dir or Path(tempfile.mkdtemp(prefix="mms-noop-"))
    root, index = work / "tree", work / "index"
    rows: list[tuple[str, str]] = []
    if not (index / "sidecar.json").exists():
        build_tree(root, args.files)
        wall, proc = timed_cli(["index", str(root), "--index", str(index), "-q"])
        assert proc.returncode == 0, proc.stderr.decode()
        rows.append((f"first index of {args.files} text files", f"{wall:.1f} s"))
    walls, silent = [], True
    for _ in range(args.runs):
        wall, proc = timed_cli(["index", str(root), "--index", str(index), "-q"])
        assert proc.returncode == 0, proc.stderr.decode()
        silent = silent and not proc.stdout and not proc.stderr
        walls.append(wall)
    rows.append(("no-op `mms index -q`, wall (median)", f"{statistics.median(walls):.3f} s"))
    rows.append(("  min / max", f"{min(walls):.3f} / {max(walls):.3f} s"))
    rows.append(("  silent on stdout and stderr, exit 0", "yes" if silent else "NO"))

    from mmsearch_cli.config import load_settings
    from mmsearch_cli.indexing.run import run_index

    settings = load_settings(index_dir=index)
    run_index([root], settings)  # warm: imports and model binding
    inside = []
    for _ in range(args.runs):
        started = time.perf_counter()
        summary = run_index([root], settings)
        inside.append(time.perf_counter() - started)
        assert summary.unchanged == args.files and summary.added == summary.updated == 0
    rows.append(("time inside run_index (median)", f"{statistics.median(inside):.3f} s"))
    for name, secs in phase_breakdown(root, index):
        rows.append((f"  {name} (under cProfile)", f"{secs:.3f} s"))
    rows.append(("database size", f"{(index / 'meta.sqlite').stat().st_size / 1e6:.1f} MB"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  value")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"(tree and index in {work})")


if __name__ == "__main__":
    main()
