"""How the index scales: indexing, commits, no-op runs, cold queries, info, ANN recall.

    python benchmarks/scale.py [--sizes 10000,100000] [--synthetic 1000000] [--work DIR]

For each size N it writes N real text documents (paragraphs of the Python standard
library's own documentation, 1-3 per file), then measures with the real `mms` command:
the first index (files/s), a re-index after changing 10 files, a no-op re-index, cold
`mms query` p50/p95 and peak RSS (fresh processes), `mms info`, and the recall@10 of the
hnswlib graph against exact search over the index's text vectors at the shipped settings,
with the time of each. `--synthetic M` adds a row for an index of M segments written in
the real format with random unit vectors (the read path only). A reference command
(`python -c "import numpy"`) is timed in the same run: the machine is shared and noisy,
so times are also given as multiples of it. Built trees and indexes are kept in --work
(default .cache/scale) and reused.

`--backend URL` (a postgresql:// URL whose user may create databases, or `pgserver` to
start the pgserver wheel's server here) adds the PostgreSQL backend for each size: the
local index published into a fresh database (`mms index --from-local`: files/s, and the
ingest of `mms index --backend` as a multiple of the local one's: embedding + publish),
a no-op `mms index --backend`, cold `mms query --backend` p50 (fresh processes) and warm
p50 (one process, one reader: the database and the process warm). `--two-indexers N`
adds two indexers at once against one: the first size's index published as two hosts,
and two trees of N files ingested (embedding + publish) into one database.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pydoc
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MMS = [sys.executable, "-m", "mmsearch_cli"]
# Installed packages whose documentation is read for text (importing them runs their code,
# so only these, not everything on the path).
DOCUMENTED = (
    "numpy", "PIL.Image", "librosa", "sympy", "networkx", "jinja2", "requests", "urllib3",
    "pygments", "packaging", "platformdirs", "mutagen", "tqdm", "rich",
)  # fmt: skip
SUBMODULES = (
    "linalg", "fft", "random", "polynomial", "ma", "lib", "stats", "signal", "sparse",
    "optimize", "interpolate", "ndimage", "spatial", "integrate",
)  # fmt: skip
QUERIES = ["how to open a file for reading", "parse a date string", "compress data with zlib",
           "send an email over smtp", "random number generator seed", "sort a list in place",
           "thread safe queue", "read a csv file"]  # fmt: skip


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of a child process. The RSS comes from GNU
    time (Debian's ``time``) when there is one: a child forked from this large process
    would otherwise report this process's pages as its own peak."""
    gnu_time = Path("/usr/bin/time")
    prefix = [str(gnu_time), "-f", "%M"] if gnu_time.exists() else []
    started = time.perf_counter()
    proc = subprocess.run([*prefix, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env={**os.environ, **(env or {})}, check=False)  # fmt: skip
    wall = time.perf_counter() - started
    lines = proc.stderr.decode(errors="replace").strip().splitlines()
    peak = float(lines[-1]) / 1024 if prefix and lines and lines[-1].isdigit() else float("nan")
    return wall, peak, proc.returncode


def reference() -> float:
    return statistics.median(timed([sys.executable, "-c", "import numpy"])[0] for _ in range(5))


# -- a corpus of real text -----------------------------------------------------------


def paragraphs(limit: int = 60_000, budget_s: float = 120.0) -> list[str]:
    """Paragraphs of the documentation (docstrings) of the standard library and of a few
    well-documented installed packages, deduplicated: real prose and reference text."""
    seen: dict[str, None] = {}
    names = sorted(n for n in sys.stdlib_module_names if not n.startswith("_"))
    names += [*DOCUMENTED, *(f"{p}.{m}" for p in ("numpy", "scipy") for m in SUBMODULES)]
    deadline = time.monotonic() + budget_s
    for name in names:
        if time.monotonic() > deadline:
            break
        if name in ("antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo"):
            continue
        try:
            text = pydoc.render_doc(name, renderer=pydoc.plaintext)
        except Exception:  # modules that need a display, a platform or a device
            continue
        for para in re.split(r"\n\s*\n", text):
            words = " ".join(para.split())
            if 80 <= len(words) <= 1500 and words not in seen:
                seen[words] = None
        if len(seen) >= limit:
            break
    return list(seen)


def write_tree(root: Path, n: int, pool: list[str]) -> None:
    """``n`` files of 1-3 paragraphs each (deterministic), 1,000 per folder."""
    if (root / ".complete").exists() and int((root / ".complete").read_text()) == n:
        return
    for k in range(n):
        folder = root / f"part{k // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        count = 1 + k % 3
        text = "\n\n".join(pool[(k * 7 + j * 13) % len(pool)] for j in range(count))
        (folder / f"doc{k:06d}.txt").write_text(f"Note {k}\n\n{text}\n")
    (root / ".complete").write_text(str(n))


# -- measures ------------------------------------------------------------------------


def cold_queries(index: Path, runs: int = 7) -> tuple[float, float, float]:
    """p50, p95 wall seconds and peak RSS MiB of fresh `mms query` processes."""
    walls, rss = [], []
    for i in range(runs):
        wall, peak, code = timed([*MMS, "query", QUERIES[i % len(QUERIES)], "--index",
                                  str(index), "--format", "jsonl"])  # fmt: skip
        assert code in (0, 5), f"query exited {code}"
        walls.append(wall)
        rss.append(peak)
    walls.sort()
    return statistics.median(walls), walls[min(len(walls) - 1, int(0.95 * len(walls)))], max(rss)


def recall(index: Path, n_queries: int = 200) -> tuple[float, float, float, float, int]:
    """recall@10 of the graph against exact search on the text space at the shipped
    settings (``ef_for``), and the warm per-query ms of each: (tie-aware recall, strict
    id recall, graph ms, exact ms, vectors). The corpus repeats paragraphs, so many
    vectors tie exactly: tie-aware counts a graph result as found when its score reaches
    the exact 10th score (another copy of the same paragraph is as right); strict
    compares ids and so penalises the arbitrary order of equal scores."""
    from mmsearch_cli.embedders.minilm import MiniLMEmbedder
    from mmsearch_cli.store import db
    from mmsearch_cli.store.index import IndexReader
    from mmsearch_cli.store.vectors import build_graph, ef_for

    reader = IndexReader.open(index)
    space = reader.space("text")
    texts = [s.text[:200] for s in db.iter_segments(reader.con)][:: max(1, len(space) // n_queries)]
    texts = texts[:n_queries]
    model = MiniLMEmbedder(model_dir=Path(os.environ["MMS_MODEL_DIR"]))
    model.ensure_loaded()
    queries = [model.embed_query_text(t + " explained") for t in texts]
    graph = build_graph(space.flat, space.dead)
    strict, tied, graph_s, exact_s = 0, 0, 0.0, 0.0
    for q in queries:
        t0 = time.perf_counter()
        exact, exact_scores = space.flat.search(q, 10, dead=space.dead)
        t1 = time.perf_counter()
        approx, approx_scores = graph.search(q, 10)
        t2 = time.perf_counter()
        exact_s, graph_s = exact_s + t1 - t0, graph_s + t2 - t1
        strict += len(set(exact.tolist()) & set(approx.tolist()))
        tied += int(np.sum(np.asarray(approx_scores) >= float(exact_scores[-1]) - 1e-5))
    n = len(queries)
    assert ef_for(10, len(space)) >= 10
    return tied / (10 * n), strict / (10 * n), 1000 * graph_s / n, 1000 * exact_s / n, len(space)


def measure_size(n: int, work: Path, pool: list[str], ref: float) -> dict[str, str]:
    root, index = work / f"tree-{n}", work / f"index-{n}"
    write_tree(root, n, pool)
    row: dict[str, str] = {"size": f"{n:,} files"}
    if not (index / "sidecar.json").exists():
        wall, peak, code = timed([*MMS, "index", str(root), "--index", str(index), "-q"])
        assert code == 0, f"index exited {code}"
        row["index files/s"] = f"{n / wall:.0f} ({wall:.0f} s, {peak:.0f} MiB)"
    else:
        row["index files/s"] = "(reused)"
    changed = sorted(root.glob("part000/doc*.txt"))[:10]
    for path in changed:
        with path.open("a") as fh:
            fh.write(f"\nChanged at {time.time()}.\n")
    wall, _, code = timed([*MMS, "index", str(root), "--index", str(index), "-q"])
    assert code == 0
    row["10 changed: commit s"] = f"{wall:.2f} ({wall / ref:.0f}x ref)"
    noop = statistics.median(timed([*MMS, "index", str(root), "--index", str(index), "-q"])[0]
                             for _ in range(3))  # fmt: skip
    row["no-op re-index s"] = f"{noop:.2f} ({noop / ref:.0f}x)"
    p50, p95, rss = cold_queries(index)
    row["cold query p50 / p95 s"] = f"{p50:.2f} / {p95:.2f} ({p50 / ref:.0f}x)"
    row["query peak RSS MiB"] = f"{rss:.0f}"
    info = statistics.median(timed([*MMS, "info", "--index", str(index)])[0] for _ in range(3))
    row["mms info s"] = f"{info:.2f}"
    rec, strict, graph_ms, exact_ms, vectors = recall(index)
    row["recall@10 (graph vs exact)"] = (
        f"{rec:.3f} tie-aware, {strict:.3f} ids ({vectors:,} vectors)"
    )
    row["warm query ms: graph / exact"] = f"{graph_ms:.2f} / {exact_ms:.1f}"
    return row


def synthetic(m: int, work: Path, ref: float) -> dict[str, str]:
    """An index of ``m`` segments in the real format (random unit vectors): the read path."""
    from mmsearch_cli.store.index import IndexWriter
    from mmsearch_cli.store.journal import Batch
    from mmsearch_cli.store.lock import index_lock
    from mmsearch_cli.store.state import FileRecord, SegmentRecord, SpaceInfo

    index = work / f"synthetic-{m}"
    built = ""
    if not (index / "sidecar.json").exists():
        started = time.perf_counter()
        rng = np.random.default_rng(0)
        with index_lock(index):
            writer = IndexWriter.open(index)
            writer.add_space(SpaceInfo(name="text", dim=384, encoders={"text": "minilm"},
                                       weight={"text": 1.0}))  # fmt: skip
            per_file, done = 2, 0
            while done < m:
                batch = Batch()
                ids = writer.new_ids(min(20_000, m - done))
                for j in range(0, len(ids), per_file):
                    path = f"/library/notes/{ids[j] // 1000:04d}/note {ids[j]}.txt"
                    part = ids[j : j + per_file]
                    batch.files.append(FileRecord(path, 1000, 1, "text", segments=part,
                                                  indexed_at=time.time()))  # fmt: skip
                    batch.segments += [SegmentRecord(i, path, "chunk", chunk=c,
                                                     text=f"note {i} about topic {i % 997}",
                                                     spaces=["text"])
                                       for c, i in enumerate(part)]  # fmt: skip
                vecs = rng.normal(size=(len(ids), 384)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                batch.vectors = {"text": (np.asarray(ids), vecs)}
                writer.apply(batch)
                done += len(ids)
            writer.set_roots(["/library"])  # a root: what `--from-local` publishes
            writer.commit()
            writer.close()
        built = f", built in {time.perf_counter() - started:.0f} s"
    elif not json.loads((index / "sidecar.json").read_text()).get("roots"):
        with index_lock(index):  # built before it had a root
            writer = IndexWriter.open(index)
            writer.set_roots(["/library"])
            writer.commit()
            writer.close()
    p50, p95, rss = cold_queries(index)
    info = statistics.median(timed([*MMS, "info", "--index", str(index)])[0] for _ in range(3))
    return {
        "size": f"{m:,} segments (synthetic{built})",
        "cold query p50 / p95 s": f"{p50:.2f} / {p95:.2f} ({p50 / ref:.0f}x ref)",
        "query peak RSS MiB": f"{rss:.0f}",
        "mms info s": f"{info:.2f}",
    }


# -- the PostgreSQL backend -----------------------------------------------------------


@contextlib.contextmanager
def backend_server(spec: str) -> Iterator[Callable[[str], str]]:
    """Yield a function making a fresh database (its URL): on the pgserver wheel's server
    started here (``pgserver``), or on the server of a given URL."""
    if spec == "pgserver":
        from tests.support.pg import pg_server

        with pg_server() as server:
            yield server.new_database
        return
    import psycopg

    def make(name: str) -> str:
        db = f"mms_bench_{name}_{os.getpid()}_{int(time.time() * 1000) % 10**9}"
        with psycopg.connect(spec, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {db}")  # type: ignore[arg-type]
        url = spec.rsplit("/", 1)[0] + "/" + db
        with psycopg.connect(url, autocommit=True) as con:
            con.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return url

    yield make


def warm_queries(url: str, runs: int = 20) -> float:
    """p50 seconds of queries in one process through one reader (database warm)."""
    from mmsearch_cli import api
    from mmsearch_cli.config import load_settings
    from mmsearch_cli.store.postgres.reader import PgReader

    conf = load_settings(backend=url)
    reader = PgReader(url)
    api.query(QUERIES[0], settings=conf, reader=reader)  # models loaded, pages read
    walls = []
    for i in range(runs):
        started = time.perf_counter()
        api.query(QUERIES[i % len(QUERIES)], settings=conf, reader=reader)
        walls.append(time.perf_counter() - started)
    reader.close()
    return statistics.median(walls)


def backend_row(
    make_db: Callable[[str], str], index: Path, tree: Path | None, label: str, ref: float,
    rows: list[dict[str, str]],
) -> dict[str, str]:  # fmt: skip
    """Publish ``index`` into a fresh database and query it (see the module doc)."""
    from mmsearch_cli.store.index import IndexReader

    url = make_db(index.name.replace("-", "_"))
    reader = IndexReader.open(index)
    files = reader.con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    segments = reader.con.execute("SELECT COUNT(*) FROM segments").fetchone()[0]
    reader.close()
    wall, peak, code = timed([*MMS, "index", "--backend", url, "--from-local", str(index), "-q"])
    assert code == 0, f"publish exited {code}"
    row = {"size": f"{label} → PostgreSQL",
           "publish files/s": f"{files / wall:.0f} ({wall:.0f} s, {segments:,} segments, "
                              f"{peak:.0f} MiB)"}  # fmt: skip
    local = next((r for r in rows if r.get("size") == label), {}).get("index files/s", "")
    if local and local[0].isdigit():  # ingest with --backend = embedding + publish
        rate = float(local.split()[0])
        row["ingest vs local"] = f"{(files / rate + wall) / (files / rate):.2f}x local time"
    if tree is not None and tree.is_dir():
        noop = statistics.median(
            timed([*MMS, "index", str(tree), "--index", str(index), "--backend", url, "-q"])[0]
            for _ in range(3)
        )
        row["no-op re-index s"] = f"{noop:.2f} ({noop / ref:.0f}x)"
    walls = []
    for i in range(7):
        wall, _, code = timed([*MMS, "query", QUERIES[i % len(QUERIES)], "--backend", url,
                               "--format", "jsonl"])  # fmt: skip
        assert code in (0, 5), f"query exited {code}"
        walls.append(wall)
    row["cold query p50 / p95 s"] = f"{statistics.median(walls):.2f} / {max(walls):.2f}"
    row["warm query p50 ms"] = f"{1000 * warm_queries(url):.0f}"
    return row


def _concurrent(cmds: list[tuple[list[str], dict[str, str]]]) -> float:
    """Wall seconds of commands run at once (each must exit 0 or 6)."""
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, **env}) for cmd, env in cmds]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode in (0, 6), f"exited {proc.returncode}: {err.decode()[-500:]}"
    return time.perf_counter() - started


def two_indexers(
    make_db: Callable[[str], str], work: Path, pool: list[str], index: Path, n: int
) -> list[dict[str, str]]:
    """Two indexers of different sources at once against one: (1) publishing ``index``
    (``--from-local``) as two hosts, (2) ingesting (embedding + publishing) two trees of
    ``n`` files each with fresh working copies. Throughput = files / wall time."""
    from mmsearch_cli.store.index import IndexReader

    reader = IndexReader.open(index)
    files = reader.con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    reader.close()
    rows = []
    publish = [*MMS, "index", "--from-local", str(index), "-q"]
    url = make_db("one_pub")
    one = _concurrent([([*publish, "--backend", url], {"MMS_HOST": "a"})])
    url = make_db("two_pub")
    two = _concurrent([([*publish, "--backend", url], {"MMS_HOST": h}) for h in ("a", "b")])
    rows.append({"size": f"two publishers ({files:,} files each, --from-local)",
                 "one: files/s": f"{files / one:.0f} ({one:.0f} s)",
                 "two at once: files/s": f"{2 * files / two:.0f} ({two:.0f} s)",
                 "two / one": f"{(2 * files / two) / (files / one):.2f}x"})  # fmt: skip
    print(rows[-1], file=sys.stderr)
    trees = [work / f"two-{name}-{n}" for name in ("a", "b")]
    for tree in trees:
        write_tree(tree, n, pool)
    runs = work / "two-runs"
    shutil.rmtree(runs, ignore_errors=True)

    def ingest(tree: Path, url: str, tag: str) -> tuple[list[str], dict[str, str]]:
        return [*MMS, "index", str(tree), "--index", str(runs / tag), "--backend", url,
                "-q"], {}  # fmt: skip

    one = _concurrent([ingest(trees[0], make_db("one_ingest"), "one")])
    url = make_db("two_ingest")
    two = _concurrent([ingest(tree, url, f"two-{k}") for k, tree in enumerate(trees)])
    rows.append({"size": f"two indexers ({n:,} files each, embedding + publish)",
                 "one: files/s": f"{n / one:.1f} ({one:.0f} s)",
                 "two at once: files/s": f"{2 * n / two:.1f} ({two:.0f} s)",
                 "two / one": f"{(2 * n / two) / (n / one):.2f}x"})  # fmt: skip
    print(rows[-1], file=sys.stderr)
    shutil.rmtree(runs, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000", help="comma-separated file counts")
    ap.add_argument("--synthetic", type=int, default=0, help="segments of a synthetic index")
    ap.add_argument("--work", type=Path, default=ROOT / ".cache" / "scale")
    ap.add_argument("--backend", help="postgresql:// URL (may create databases) or pgserver")
    ap.add_argument("--two-indexers", type=int, default=0, metavar="N",
                    help="with --backend: two indexers at once against one (the first size's "
                    "index published as two hosts; two trees of N files ingested)")  # fmt: skip
    args = ap.parse_args(argv)
    os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.work.mkdir(parents=True, exist_ok=True)
    ref = reference()
    print(f"reference `python -c 'import numpy'`: {ref * 1000:.0f} ms", file=sys.stderr)
    rows = []
    sizes = [int(s) for s in args.sizes.split(",") if s]
    pool: list[str] = []
    if sizes:
        pool = paragraphs()
        print(f"{len(pool)} paragraphs of real text", file=sys.stderr)
        for n in sizes:
            rows.append(measure_size(n, args.work, pool, ref))
            print(rows[-1], file=sys.stderr)
    if args.synthetic:
        rows.append(synthetic(args.synthetic, args.work, ref))
    if args.backend:
        with backend_server(args.backend) as make_db:
            for n in sizes:
                rows.append(
                    backend_row(
                        make_db,
                        args.work / f"index-{n}",
                        args.work / f"tree-{n}",
                        f"{n:,} files",
                        ref,
                        rows,
                    )
                )
            if args.two_indexers and sizes:
                rows += two_indexers(make_db, args.work, pool, args.work / f"index-{sizes[0]}",
                                     args.two_indexers)  # fmt: skip
            if args.synthetic:
                rows.append(backend_row(make_db, args.work / f"synthetic-{args.synthetic}",
                                        None, f"{args.synthetic:,} segments (synthetic)", ref,
                                        rows))  # fmt: skip
            print(rows[-1], file=sys.stderr)
    cols = list(dict.fromkeys(k for row in rows for k in row))
    print(f"\nreference (python -c 'import numpy'): {ref * 1000:.0f} ms\n")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(row.get(c, "") for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
