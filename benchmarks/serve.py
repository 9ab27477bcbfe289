"""`mms serve`: warm queries, freshness under --watch, event floods, server memory, watches.

    python benchmarks/serve.py [--index DIR ...] [--photos 20] [--flood 10000] [--dirs 20000]

Prints one markdown table per part:

1. **Queries.** For each index (sample_data indexed here, plus every ``--index``, e.g. the
   100k and 1M indexes that ``benchmarks/scale.py`` leaves in .cache/scale): p50/p95 wall
   time of whole ``mms query`` client processes answered by a warm server, of the same
   command with ``--no-server`` (cold, in-process), and the server's peak RSS. A
   reference (``python -c pass``) is timed in the same run: the machine is shared.
2. **Freshness.** A server with ``--watch`` on a copy of sample_data; a photo is copied
   in ``--photos`` times (new names), and each time a client polls ``mms query`` until it
   is found: seconds from the copy, p50/p95.
3. **Flood.** ``--flood`` small text files are unpacked with ``tar`` into the watched
   root: the commits it took (manifest generations) and the seconds until all are found.
4. **Watches.** A tree of ``--dirs`` folders is watched: the seconds to set the inotify
   watches up, against the kernel's ``fs.inotify.max_user_watches``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MMS = [sys.executable, "-m", "mmsearch_cli"]
SAMPLE = ROOT / "sample_data"
CORPUS_IMAGES = ROOT.parent / "shared" / "corpus" / "images"
QUERIES = ["a hammer", "fish in the sea", "solar panels", "a dog barking", "castle",
           "pancakes recipe", "wind turbine", "an owl at night"]  # fmt: skip


def wall(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int, bytes]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, env={**os.environ, **(env or {})},
                          check=False)  # fmt: skip
    return time.perf_counter() - started, proc.returncode, proc.stdout


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Server:
    def __init__(self, index: Path, *extra: str, log: Path) -> None:
        self.index = index
        self.proc = subprocess.Popen(
            [*MMS, "serve", "--index", str(index), "--log", str(log), "-q", *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 600
        while self.status() is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server for {index} did not start (see {log})")
            time.sleep(0.3)

    def status(self) -> dict | None:
        _, code, out = wall([*MMS, "serve", "status", "--index", str(self.index), "--json"])
        return json.loads(out) if code == 0 else None

    def idle(self, timeout: float = 3600) -> dict:
        """Wait until the watcher has nothing pending and no batch running (twice)."""
        calm, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status() or {}
            w = st.get("watching") or {}
            calm = calm + 1 if (not w.get("pending") and not w.get("busy")) else 0
            if calm >= 2:
                return st
            time.sleep(0.5)
        raise SystemExit("watcher never went idle")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=120)


def queries_part(indexes: list[Path], work: Path, rounds: int) -> list[str]:
    ref = statistics.median(wall([sys.executable, "-c", "pass"])[0] for _ in range(5))
    rows = [f"reference `python -c pass`: {ref * 1000:.0f} ms", "",
            "| index | warm client p50 / p95 ms | cold --no-server p50 / p95 ms "
            "| server peak RSS MiB |",
            "|---|---|---|---|"]  # fmt: skip
    for index in indexes:
        server = Server(index, log=work / f"serve-{index.name}.log")
        try:
            warm, cold = [], []
            for _ in range(rounds):
                for q in QUERIES:
                    args = [*MMS, "query", q, "--index", str(index), "-f", "json"]
                    t, code, _ = wall(args)
                    assert code in (0, 5), f"query exited {code}"
                    warm.append(t)
            for q in QUERIES[:5]:
                cold.append(wall([*MMS, "query", q, "--index", str(index), "-f", "json",
                                  "--no-server"])[0])  # fmt: skip
            rss = (server.status() or {}).get("peak_rss_mib", float("nan"))
        finally:
            server.stop()
        rows.append(
            f"| {index} | {1000 * pct(warm, 0.5):.0f} / {1000 * pct(warm, 0.95):.0f} "
            f"({pct(warm, 0.5) / ref:.1f}x ref) | {1000 * pct(cold, 0.5):.0f} / "
            f"{1000 * pct(cold, 0.95):.0f} | {rss:.0f} |"
        )
    return rows


def freshness_part(work: Path, photos: int) -> list[str]:
    lib, index = work / "fresh-lib", work / "fresh-index"
    shutil.copytree(SAMPLE, lib)
    subprocess.run([*MMS, "index", str(lib), "--index", str(index), "-q"], check=False)
    sources = sorted(CORPUS_IMAGES.rglob("*.webp"))[:photos] if CORPUS_IMAGES.is_dir() else []
    sources = sources or sorted((SAMPLE / "images").rglob("*.webp"))[:photos]
    server = Server(index, "--watch", log=work / "serve-fresh.log")
    seconds = []
    try:
        server.idle()
        for i, src in enumerate(sources):
            name = f"new_{i:03d}{src.suffix}"
            started = time.perf_counter()
            shutil.copy(src, lib / "images" / name)
            while time.perf_counter() - started < 60:
                _, _, out = wall([*MMS, "query", "photo", "--index", str(index), "-f", "paths",
                                     "--path", f"*{name}"])  # fmt: skip
                if name.encode() in out:
                    break
                time.sleep(0.1)
            seconds.append(time.perf_counter() - started)
    finally:
        server.stop()
    return ["| photos copied in | findable after: p50 / p95 / max s |", "|---|---|",
            f"| {len(seconds)} | {pct(seconds, 0.5):.2f} / {pct(seconds, 0.95):.2f} / "
            f"{max(seconds):.2f} |"]  # fmt: skip


def flood_part(work: Path, n: int) -> list[str]:
    lib, index = work / "flood-lib", work / "flood-index"
    (lib / "seed").mkdir(parents=True)
    (lib / "seed" / "readme.txt").write_text("The seed note of the flood benchmark.\n")
    subprocess.run([*MMS, "index", str(lib), "--index", str(index), "-q"], check=False)
    tar_path = work / "flood.tar"
    src = work / "flood-src" / "notes"
    src.mkdir(parents=True)
    for i in range(n):
        (src / f"note{i:05d}.txt").write_text(
            f"Note {i}: a short memo about item {i % 97} and task {i % 13}.\n"
        )
    with tarfile.open(tar_path, "w") as tar:
        tar.add(src, arcname="notes")
    server = Server(index, "--watch", log=work / "serve-flood.log")
    try:
        server.idle()
        gen0 = json.loads((index / "sidecar.json").read_text())["generation"]
        started = time.perf_counter()
        subprocess.run(["tar", "-xf", str(tar_path), "-C", str(lib)], check=True)
        untar = time.perf_counter() - started
        st = server.idle()
        done = time.perf_counter() - started
        gen1 = json.loads((index / "sidecar.json").read_text())["generation"]
        batches = st["watching"]["batches"] - 1  # the first is the catch-up at start
    finally:
        server.stop()
    info = json.loads(wall([*MMS, "info", "--index", str(index), "--json"])[2])
    return ["| files untarred | untar s | all indexed after s | watch batches | commits "
            "(generations) | files in index |", "|---|---|---|---|---|---|",
            f"| {n:,} | {untar:.1f} | {done:.0f} | {batches} | {gen1 - gen0} | "
            f"{info['files']:,} |"]  # fmt: skip


def watches_part(work: Path, dirs: int) -> list[str]:
    from watchdog.events import FileSystemEventHandler
    from watchdog.observers import Observer

    tree = work / "dirs"
    for i in range(dirs):
        (tree / f"{i // 100:03d}" / f"{i % 100:02d}").mkdir(parents=True, exist_ok=True)
    limit = Path("/proc/sys/fs/inotify/max_user_watches").read_text().strip()
    observer = Observer()
    observer.start()
    started = time.perf_counter()
    observer.schedule(FileSystemEventHandler(), str(tree), recursive=True)
    setup = time.perf_counter() - started
    observer.stop()
    observer.join()
    total = dirs + dirs // 100 + 1
    return ["| folders watched | watch setup s | fs.inotify.max_user_watches |", "|---|---|---|",
            f"| {total:,} | {setup:.2f} | {int(limit):,} |"]  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, action="append", default=[],
                    help="also measure queries on this index (repeatable)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3, help="rounds of the 8 queries per index")
    ap.add_argument("--photos", type=int, default=20)
    ap.add_argument("--flood", type=int, default=10_000)
    ap.add_argument("--dirs", type=int, default=20_000)
    ap.add_argument("--parts", default="queries,freshness,flood,watches")
    args = ap.parse_args()
    os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory(prefix="mms-serve-bench-") as tmp:
        work = Path(tmp)
        out: list[str] = []
        if "queries" in parts:
            sample_index = work / "sample-index"
            subprocess.run([*MMS, "index", str(SAMPLE), "--index", str(sample_index), "-q"],
                           check=False)  # fmt: skip
            out += ["## Queries", "", *queries_part([sample_index, *args.index], work,
                                                    args.rounds), ""]  # fmt: skip
        if "freshness" in parts:
            out += ["## Freshness (--watch)", "", *freshness_part(work, args.photos), ""]
        if "flood" in parts:
            out += ["## Flood", "", *flood_part(work, args.flood), ""]
        if "watches" in parts:
            out += ["## Watches", "", *watches_part(work, args.dirs), ""]
        print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
