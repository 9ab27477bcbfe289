"""Query arithmetic (``--plus``/``--minus``) on sample_data: how much each term weight moves.

Usage: python benchmarks/query_arithmetic.py [--index DIR] [--weights 0.5,1,1.5]

Indexes sample_data into a temporary index unless --index names one already built from it,
then, for each case without the term and with each term weight (the defaults are
``search.query.PLUS_WEIGHT`` and ``MINUS_WEIGHT``), counts in the top 10: for ``--minus``
the items of the concept taken away (fewer is better) and the query's other relevant items
kept (more is better); for ``--plus`` the items of the concept added and the query's
relevant items kept. Both fused (every space) and in the text space alone (``--space
text``: the vector arithmetic without the lexical space's exclusion, which file names help
here). The labels are sample_data's folder and file names. About 2 minutes to index on one
core, a second per weight.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mmsearch_cli import api  # noqa: E402
from mmsearch_cli.config import load_settings  # noqa: E402
from mmsearch_cli.search.engine import search  # noqa: E402
from mmsearch_cli.search.query import Query, SearchOptions, Term  # noqa: E402
from mmsearch_cli.store.index import IndexReader  # noqa: E402

SAMPLE = ROOT / "sample_data"
Pred = Callable[[str], bool]


@dataclass(frozen=True)
class Case:
    query: str
    sign: str  # "plus" or "minus"
    term: str
    moved: Pred  # items of the term's concept
    kept: Pred  # the query's relevant items that are not the term's


def _name(path: str) -> str:
    return os.path.relpath(path, SAMPLE)


ANIMALS = ("animals/", "fishes/", "arctic_animals", "marsupials", "owls", "frogs", "_fish.")
CASES = [
    Case("renewable energy", "minus", "windmill",
         lambda p: "windmill" in p,
         lambda p: ("renewable_energy/" in p and "windmill" not in p)
         or p.endswith(("solar_power.md", "hydroelectric_dams.md", "energy_iceland.txt"))),
    Case("a tower", "minus", "windmill",
         lambda p: "windmill" in p,
         lambda p: any(t in p for t in ("Tower", "empireState", "bayterek", "burj", "kutubMinar"))),
    Case("an animal", "minus", "a dog",
         lambda p: "/dog." in p,
         lambda p: any(a in p for a in ANIMALS) and "/dog." not in p),
    Case("a farm animal", "minus", "a pig",
         lambda p: "/pig." in p,
         lambda p: "farm_animals" in p and "/pig." not in p),
    Case("a monument", "minus", "a pyramid",
         lambda p: "yramid" in p,
         lambda p: "monuments" in p and "yramid" not in p),
    Case("renewable energy", "plus", "solar panels",
         lambda p: "solar" in p, lambda p: "renewable_energy/" in p or "solar_power" in p),
    Case("an animal", "plus", "water",
         lambda p: any(t in p for t in ("fish", "duck", "frog", "narwhal", "crocodile")),
         lambda p: any(a in p for a in ANIMALS)),
    Case("an animal", "plus", "images/fishes/fish1.webp",
         lambda p: "fishes/" in p, lambda p: any(a in p for a in ANIMALS)),
    Case("renewable energy", "plus", "images/renewable_energy/dam1.jpg",
         lambda p: "dam" in p, lambda p: "renewable_energy/" in p),
    Case("a tool", "plus", "images/tools/hammer1.webp",
         lambda p: "hammer" in p, lambda p: "tools/" in p or "hand_tools" in p),
    Case("a tower", "minus", "images/renewable_energy/windmill.webp",
         lambda p: "windmill" in p,
         lambda p: any(t in p for t in ("Tower", "empireState", "bayterek", "burj", "kutubMinar"))),
    Case("a tool", "plus", "measuring",
         lambda p: any(t in p for t in ("measuringTape", "multimeter", "weighingMachine")),
         lambda p: "tools/" in p or "hand_tools" in p or "multimeter" in p),
]  # fmt: skip


def _term(text: str, weight: float) -> Term:
    """Words, or a sample_data file named by its relative path."""
    if (SAMPLE / text).is_file():
        return Term(media=SAMPLE / text, weight=weight)
    return Term(text=text, weight=weight)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", type=Path)
    ap.add_argument("--weights", default="0,0.5,0.75,1,1.5")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        index_dir = args.index or Path(tmp) / "index"
        if args.index is None:
            api.index([SAMPLE], index_dir=index_dir)
        settings = load_settings(index_dir=index_dir)
        reader = IndexReader.open(index_dir)
        print(f"{'case':<40} {'space':<6} {'no term':<10}" + "".join(f" w={w:<8}" for w in weights))
        print(f"{'':<40} {'':<6}" + " moved/kept" * (len(weights) + 1))
        for case in CASES:
            for space in (None, "text"):
                cells = []
                for w in [None, *weights]:
                    term = () if w is None else (_term(case.term, w),)
                    q = Query(text=case.query, **{case.sign: term})  # type: ignore[arg-type]
                    hits = search(reader, q, settings, SearchOptions(k=10, space=space))
                    paths = [_name(h.path) for h in hits]
                    cells.append(
                        f"{sum(map(case.moved, paths)):>5}/{sum(map(case.kept, paths)):<4}"
                    )
                label = f'"{case.query}" --{case.sign} "{Path(case.term).name}"'
                print(f"{label:<40} {space or 'fused':<6}" + "".join(f" {c:<10}" for c in cells))
        reader.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
