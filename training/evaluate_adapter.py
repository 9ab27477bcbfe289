"""Evaluate ConSE alone, the adapter alone and their blend, two ways.

1. The held-out test split of the training source (caption -> exact picture among the
   held-out pictures; Recall@10, MRR@10), from the cached features: all, and per family
   (clip art, emoji) with only that family's pictures as candidates.
2. The shared corpus: an index per variant built through the library (the text space's
   image encoder swapped in this process only), then ``mms eval`` on its queries (see
   its ``text->image`` row).

    python training/evaluate_adapter.py [--weights NPZ] [--corpus DIR] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import REPO, default_cache_dir, model_dir

sys.path.insert(0, str(REPO))
from mmsearch_cli.cli.app import run
from mmsearch_cli.embedders import registry
from mmsearch_cli.embedders.adapter import AdapterImageEmbedder, load_weights
from mmsearch_cli.embedders.spaces import BUILTIN, SpaceSpec
from mmsearch_cli.indexing import run as indexer
from mmsearch_cli.search import fusion

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def variant(name: str, blend: float | None, weights: Path | None, gate: bool = True) -> str:
    """Register an image encoder for the text space under ``name`` (this process only)."""
    if name == "conse-minilm":
        return name
    cls = type(
        name.replace("-", "_"),
        (AdapterImageEmbedder,),
        {"name": name, "__init__": _init(blend, weights, gate)},
    )
    setattr(sys.modules[__name__], cls.__name__, cls)
    fusion.FEEDBACK_FOR = fusion.FEEDBACK_FOR | {name}  # as for the shipped adapter
    base = registry.REGISTRY.get("adapter-minilm")
    registry.REGISTRY[name] = registry.EmbedderEntry(
        name, f"{__name__}:{cls.__name__}", "text", ("image",), 384,
        base.source if base else "adapter", base.licence if base else "MIT",
    )  # fmt: skip
    return name


def _init(blend: float | None, weights: Path | None, gate: bool) -> Any:
    def __init__(self: AdapterImageEmbedder, **kw: Any) -> None:
        AdapterImageEmbedder.__init__(
            self, **kw, blend=blend, gate=gate, weights=str(weights) if weights else None
        )

    return __init__


def use_image_encoder(name: str) -> None:
    text = BUILTIN[0]
    spec = SpaceSpec("text", {**text.encoders, "image": name}, dict(text.options), text.weight)
    indexer.spaces_for = lambda profile, model=None: (spec, *BUILTIN[1:])


def corpus_eval(name: str, corpus: Path, work: Path) -> dict[str, Any]:
    """Index the corpus with ``name`` as the text space's image encoder; ``mms eval``."""
    index = work / name
    use_image_encoder(name)
    code = run(["index", str(corpus), "--index", str(index), "-q"])
    if code not in (0, 6):  # 6: the corpus's deliberately broken files
        raise SystemExit(f"mms index failed with {code}")
    queries = corpus / "queries.jsonl"
    print(f"\n## {name}: mms eval {queries} --index {index}", flush=True)
    run(["eval", str(queries), "--index", str(index)])
    out = work / f"{name}.eval.json"
    with out.open("w") as fh:
        saved, sys.stdout = sys.stdout, fh
        try:
            run(["eval", str(queries), "--index", str(index), "-f", "json"])
        finally:
            sys.stdout = saved
    report: dict[str, Any] = json.loads(out.read_text())
    return report


def held_out(weights_path: Path | None, cache: Path) -> dict[str, Any]:
    from train_adapter import evaluate, prepare

    weights = load_weights(weights_path)
    data = prepare(cache)
    out = {"all": evaluate(weights, data, "test", (0.0, weights.blend))}
    for fam in ("clipart", "emoji"):
        out[fam] = evaluate(weights, data, "test", (0.0, weights.blend), fam)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, help="candidate .npz (default: the shipped one)")
    p.add_argument("--blend", type=float, help="blend weight (default: the file's)")
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    p.add_argument("--corpus", type=Path, default=CORPUS)
    p.add_argument("--work", type=Path, help="where the indexes go (default: a temp dir)")
    p.add_argument("--skip-held-out", action="store_true")
    p.add_argument("--variants", default="conse,adapter,shipped")
    args = p.parse_args()
    # The indexes go through the CLI, which would otherwise look in the XDG default: one
    # without `mms models fetch` silently leaves the corpus's audio and video out of "all".
    os.environ.setdefault("MMS_MODEL_DIR", str(model_dir()))
    results: dict[str, Any] = {}
    if not args.skip_held_out:
        results["held_out"] = held_out(args.weights, args.cache_dir.expanduser())
        print(json.dumps(results["held_out"], indent=1))
    names = {
        "conse": "conse-minilm",
        "adapter": variant("adapter-only-minilm", 0.0, args.weights, gate=False),
        # The shipped combination: in-domain trust x adapter + the file's blend x ConSE.
        "shipped": variant("adapter-shipped-minilm", args.blend, args.weights),
    }
    work = args.work or Path(tempfile.mkdtemp(prefix="mms-adapter-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    results["corpus"] = {}
    for v in args.variants.split(","):
        results["corpus"][v] = corpus_eval(names[v], args.corpus, work)
    print("\n## summary (shared corpus)")
    for v, rep in results["corpus"].items():
        groups = next(iter(rep["systems"].values()))["groups"]
        for group in ("all", "text->image", "image->image", "target:image"):
            row = groups.get(group, {})
            print(
                f"{v:<8} {group:<13} "
                + " ".join(
                    f"{m} {row.get(m, 0):.3f}" for m in ("R@10", "R2@10", "MRR@10", "nDCG@10")
                )
            )
    (work / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nfull results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
