"""Tune the lexical space's weights across every evaluation set at once.

    python benchmarks/lexical_sweep.py [--margins 0,1.3,1.7,2.0] [--sure 1.0,2.0,4.0]

The lexical space (BM25) joins fusion with weight ``LEXICAL_WEIGHT``; when BM25's best
segment scores at least ``LEXICAL_MARGIN`` times the next one's (the words single one
out: a remembered sentence, a name, a code), its weight becomes ``LEXICAL_SURE_WEIGHT``.
One weight has to serve four sets that pull apart (``benchmarks/eval_sets.py``):

* spoken: 135 espeak-ng sentences, each queried by its words (R@1);
* paths: photos named as people name them (``2019-07 Iceland/DSC_0042.jpg``), nDCG@10;
* corpus: the shared corpus under opaque names, nDCG@10 overall and text->text;
* sample: sample_data under opaque names (the CI gate's set), nDCG@10.

The sets are built (or reused) in .cache/datasets and indexed once into .cache/lexical
(whisper transcribes the spoken set: a few minutes the first time). Every setting is
then a warm in-process run over the same indexes: seconds each.
"""

from __future__ import annotations

import argparse
import itertools
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import eval_sets  # noqa: E402

from mmsearch_cli.config import load_settings  # noqa: E402
from mmsearch_cli.evaluation.run import load_queries, run_queries, summarise  # noqa: E402
from mmsearch_cli.search.fusion import LEXICAL_WEIGHT  # noqa: E402
from mmsearch_cli.store.index import IndexReader  # noqa: E402

INDEXES = ROOT / ".cache" / "lexical"
METRIC = {"spoken": "R@1", "paths": "nDCG@10", "corpus": "nDCG@10", "sample": "nDCG@10"}


def build_sets() -> dict[str, Path]:
    """Each set's queries file (built in .cache/datasets if missing)."""
    d = eval_sets.DATASETS
    sets = {
        "spoken": eval_sets.spoken_set(d / "spoken-phrases"),
        "paths": eval_sets.path_set(d / "path-library"),
        "sample": eval_sets.opaque_copy(
            eval_sets.SAMPLE, eval_sets.SAMPLE / "queries.jsonl", d / "sample-data-opaque"
        ),
    }
    if eval_sets.CORPUS.is_dir():
        sets["corpus"] = eval_sets.opaque_copy(eval_sets.CORPUS,
                                               eval_sets.CORPUS / "queries.jsonl",
                                               d / "corpus-opaque")  # fmt: skip
    return sets


def index_of(name: str, queries: Path) -> Path:
    index = INDEXES / name
    if not (index / "sidecar.json").exists():
        print(f"indexing the {name} set…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "mmsearch_cli", "index", str(queries.parent),
                        "--index", str(index), "-q"], check=False)  # fmt: skip
    return index


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--margins", default="0,1.3,1.5,1.7,2.0", help="0: never sure")
    ap.add_argument("--sure", default="1.0,2.0,4.0", help="weights when sure")
    ap.add_argument("--base", type=float, default=LEXICAL_WEIGHT)
    args = ap.parse_args()
    os.environ.setdefault("MMS_MODEL_DIR", str(ROOT / ".cache" / "models"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    loaded = {}
    for name, queries in build_sets().items():
        index = index_of(name, queries)
        reader = IndexReader.open(index)
        loaded[name] = (load_settings(index_dir=index), reader, load_queries(queries),
                        reader.ok_paths())  # fmt: skip
    head = [f"{n} {METRIC[n]}" for n in loaded] + (["corpus text->text"] if "corpus" in loaded
                                                    else [])  # fmt: skip
    print("| margin | weight when sure | " + " | ".join(head) + " |")
    print("|---|---|" + "---|" * len(head))
    margins = [float(m) for m in args.margins.split(",")]
    sure = [float(w) for w in args.sure.split(",")]
    for margin, weight in itertools.product(margins, sure):
        if margin == 0 and weight != sure[0]:
            continue  # never sure: the weight does not matter
        cells, extra = [], []
        for name, (conf, reader, queries, indexed) in loaded.items():
            outcomes = run_queries(reader, queries, conf, lexical=args.base,
                                   lexical_sure=weight, lexical_margin=margin)  # fmt: skip
            groups = summarise(outcomes, indexed, 10)["groups"]
            cells.append(f"{groups['all'][METRIC[name]]:.3f}")
            if name == "corpus":
                extra.append(f"{groups.get('text->text', {}).get('nDCG@10', 0.0):.3f}")
        shown = "-" if margin == 0 else f"{weight:g}"
        print(f"| {margin:g} | {shown} | " + " | ".join(cells + extra) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
