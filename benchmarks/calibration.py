"""Calibrated scores against RRF: quality, families, "no good match" (search/calibrate.py).

Usage: python benchmarks/calibration.py [--set sample|corpus|both] [--sweep]
       [--sample-index DIR] [--corpus-index DIR]

Two labelled sets, each copied under opaque names (``eval_sets.opaque_copy``) and indexed
into ``.cache/calibration/`` unless an index of the copy is given (indexing writes the
calibration; an index made before it existed gets one from a no-op ``mms index``):

* ``sample``: ``sample_data/queries.jsonl``: its answerable queries, the mixed-family
  questions (``"first": "text"``: a document answers them, sounds and pictures share a
  word) and the no-answer queries (``"relevant": {}``).
* ``corpus``: the shared corpus's queries, plus sample_data's mixed and no-answer
  queries whose files the corpus holds too (renamed through its ``MAPPING.tsv``).

For each set it prints, for RRF (what indexes without a calibration do) and for the
calibrated fusion: nDCG@10 overall and per (query, target) pair, R@10 with and without
``--min-score auto``, how many mixed questions had their document first, and abstention
precision and recall on the no-answer queries. ``--sweep`` re-computes the calibration
in memory over its knobs (CENTRE, NEIGHBOUR, AGREEMENT, TAIL) on the same index and prints a
line per setting: how the shipped values were chosen. About 3 minutes to index the
corpus; each run of a set's queries takes 5-15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmsearch_cli.api import index as index_files  # noqa: E402
from mmsearch_cli.config import load_settings  # noqa: E402
from mmsearch_cli.embedders.spaces import bind_recorded  # noqa: E402
from mmsearch_cli.evaluation.run import LabelledQuery, Tally, load_queries, run_one  # noqa: E402
from mmsearch_cli.search import calibrate, fusion  # noqa: E402
from mmsearch_cli.store.index import IndexReader  # noqa: E402

CACHE = ROOT / ".cache" / "calibration"
SAMPLE = ROOT / "sample_data"
CORPUS_COPY = ROOT / ".cache" / "datasets" / "corpus-opaque"
PAIRS = ("all", "text->text", "text->image", "text->audio", "text->video", "image->image")


def sample_set() -> tuple[Path, Path]:
    """(queries, root) of sample_data under opaque names."""
    from eval_sets import opaque_copy  # benchmarks/ is on sys.path when run as a script

    copy = CACHE / "sample-opaque"
    return opaque_copy(SAMPLE, SAMPLE / "queries.jsonl", copy), copy


def corpus_set() -> tuple[Path, Path]:
    """(queries, root): the opaque corpus copy's queries and sample_data's mixed and
    no-answer ones, written beside the index cache with media paths made absolute."""
    mapping = {}
    for line in (CORPUS_COPY / "MAPPING.tsv").read_text("utf-8", "surrogateescape").splitlines():
        new, old = line.split("\t")
        mapping[old] = new
    lines = []
    for raw in (CORPUS_COPY / "queries.jsonl").read_text("utf-8").splitlines():
        obj = json.loads(raw)
        for kind in ("image", "audio", "video"):
            if kind in obj:
                obj[kind] = str(CORPUS_COPY / obj[kind])
        lines.append(obj)
    for raw in (SAMPLE / "queries.jsonl").read_text("utf-8").splitlines():
        obj = json.loads(raw)
        mixed, none = "first" in obj, not obj["relevant"]
        if (mixed or none) and all(p in mapping for p in obj["relevant"]):
            obj["relevant"] = {mapping[p]: g for p, g in obj["relevant"].items()}
            obj["id"] = "s-" + obj["id"]
            lines.append(obj)
    out = CACHE / "corpus-queries.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(o) + "\n" for o in lines), "utf-8")
    return out, CORPUS_COPY


def ensure_index(root: Path, index: Path | None, name: str) -> Path:
    """An index of ``root`` with a calibration: the one given, else ``.cache/calibration``'s
    (an incremental ``mms index`` either way: a no-op when it is current)."""
    target = index or CACHE / f"{name}-index"
    print(f"indexing {root} into {target} ...", file=sys.stderr)
    index_files([root], index_dir=target)
    return target


@contextmanager
def settings(**values: Any) -> Iterator[None]:
    """Module constants of calibrate/fusion set for a sweep, restored after."""
    saved = {}
    for key, value in values.items():
        module = fusion if key == "AGREEMENT" else calibrate
        saved[key] = (module, getattr(module, key))
        setattr(module, key, value)
    try:
        yield
    finally:
        for key, (module, value) in saved.items():
            setattr(module, key, value)


def measure(reader: IndexReader, queries: Sequence[LabelledQuery], calibrated: bool) -> str:
    conf = load_settings(index_dir=reader.dir)
    tally = Tally(reader.ok_paths(), 10)
    for lq in queries:
        tally.add(run_one(reader, lq, conf, calibration=calibrated))
    summary = tally.summary()
    groups = summary["groups"]
    cells = [f"{groups[g]['nDCG@10']:.3f}" if g in groups else "-" for g in PAIRS]
    ab, first = summary["abstain"], summary["first"]
    cut = f"{ab['R@10 cut']:.3f}" if ab.get("calibrated") and "R@10 cut" in ab else "-"
    recall = f"{ab['R@10']:.3f}" if "R@10" in ab else f"{groups['all']['R@10']:.3f}"
    if ab.get("calibrated") and ab.get("no_answer"):
        p = "-" if ab["precision"] is None else f"{ab['precision']:.2f}"
        abstain = f"{p} / {ab['recall']:.2f}"
    else:
        abstain = "- (never)"
    firsts = f"{first['first']}/{first['queries']}" if first["queries"] else "-"
    return " | ".join([*cells, recall, cut, firsts, abstain])


HEAD = ("| system | nDCG@10 all | text->text | text->image | text->audio | text->video | "
        "image->image | R@10 | R@10, auto cut | document first | abstain P / R |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip


def report(name: str, index: Path, queries_file: Path, root: Path, sweep: bool) -> None:
    reader = IndexReader.open(index)
    if not isinstance(reader.meta.get("calibration"), dict):
        raise SystemExit(f"{index} has no calibration: run `mms index` on its folders once")
    queries = load_queries(queries_file, root)
    answerable = sum(1 for q in queries if q.relevant)
    mixed, none = sum(1 for q in queries if q.first), len(queries) - answerable
    print(f"\n{name}: {len(queries)} queries ({answerable} answerable, {mixed} mixed, "
          f"{none} no-answer)")  # fmt: skip
    print(HEAD)
    print(f"| RRF (no calibration) | {measure(reader, queries, False)} |")
    print(f"| calibrated | {measure(reader, queries, True)} |")
    own = [q for q in queries if not q.id.startswith("s-")]
    if len(own) < len(queries):  # the corpus's own queries, as README's quality table has them
        print(f"| RRF, the set's own {len(own)} queries | {measure(reader, own, False)} |")
        print(f"| calibrated, the set's own {len(own)} queries | {measure(reader, own, True)} |")
    if not sweep:
        return
    conf = load_settings(index_dir=index)
    live = {n: bind_recorded(info, conf) for n, info in reader.spaces.items()}
    shipped = reader.meta["calibration"]
    grid = [{"CENTRE": c} for c in (0.0, 0.5, 0.65, 0.75, 1.0)]
    grid += [{"NEIGHBOUR": k} for k in (5, 20)]
    grid += [{"AGREEMENT": a} for a in (0.0, 0.25, 1.0)]
    grid += [{"TAIL": t} for t in (0.9, 0.975)]
    print("\nsweep (calibration recomputed in memory; the rest as shipped)")
    print(HEAD)
    for knobs in grid:
        with settings(**knobs):
            reader.meta["calibration"] = calibrate.compute(reader, live)
            label = ", ".join(f"{k} {v}" for k, v in knobs.items())
            print(f"| {label} | {measure(reader, queries, True)} |")
    reader.meta["calibration"] = shipped


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--set", choices=("sample", "corpus", "both"), default="both")
    ap.add_argument("--sweep", action="store_true", help="vary the calibration's knobs")
    ap.add_argument("--sample-index", type=Path, help="an index of the sample copy to reuse")
    ap.add_argument("--corpus-index", type=Path, help="an index of the corpus copy to reuse")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.set in ("sample", "both"):
        queries, root = sample_set()
        index = ensure_index(root, args.sample_index, "sample")
        report("sample_data (opaque copy)", index, queries, root, args.sweep)
    if args.set in ("corpus", "both"):
        if not (CORPUS_COPY / "MAPPING.tsv").is_file():
            raise SystemExit(f"no corpus copy at {CORPUS_COPY}: see benchmarks/eval_sets.py")
        queries, root = corpus_set()
        index = ensure_index(root, args.corpus_index, "corpus")
        report("shared corpus (opaque copy)", index, queries, root, args.sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
