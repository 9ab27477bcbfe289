"""Tune the ConSE image embedder on the shared corpus's text-to-image queries.

Usage: python benchmarks/tune_conse.py [--corpus ../shared/corpus] [--model-dir DIR]
       [--lite2-dir DIR]   (a model dir holding efficientnet-lite2-onnx/, to compare backbones)

Scores nDCG@10 (linear gains, images/ targets only) and MRR (first grade-2 hit) over the
27 text->image queries of queries.jsonl ("main"), plus 12 colour queries written from
MANIFEST.csv captions ("colour"; no corpus query names a colour). Class probabilities,
colours and OCR text are computed once per image; the variants are recombined in numpy
with the same functions the embedder uses. Results of 2026-11-26 (213 images):

    wording (T=10, temp 1)   name 0.556   photo 0.625   synonyms 0.610   description 0.685
    description, T=20        temp 1: 0.682   temp 2: 0.700   temp 3: 0.681
    + colours 0.1, OCR 0.2   main 0.712 / MRR 0.709, colour 0.687 / MRR 0.557 (the defaults)
    Lite2 instead of Lite0   description T=10 temp 1: 0.698 vs 0.685; T=20 temp 2: 0.698 vs
                             0.700; at 1.6-1.8x the cost per image, so Lite0 stays
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmsearch_cli.config import default_model_dir
from mmsearch_cli.decoders.colours import colour_phrase, dominant_colours
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders.base import l2_normalise
from mmsearch_cli.embedders.classifier import ImageClassifier, class_info
from mmsearch_cli.embedders.conse import (
    WORDINGS,
    ConseImageEmbedder,
    class_text,
    conse_vectors,
    mix_vectors,
)
from mmsearch_cli.embedders.minilm import MiniLMEmbedder
from mmsearch_cli.embedders.ocr import OcrReader

Qrels = dict[str, int]


def _group(prefix: str, best: list[str], related: list[str]) -> Qrels:
    """Grade 2 for the colour named in the caption, 1 for the same object in other colours."""
    return {**{prefix + p: 1 for p in related}, **{prefix + p: 2 for p in best}}


TOOLS, MONUMENTS = "images/tools/", "images/monuments/"
HAMMERS = [f"hammer{i}.webp" for i in (2, 3, 4, 6, 7, 8, 9)] + ["hammer5.jpg"]
TAPES = [f"measuringTape{i}.webp" for i in (2, 3, 5, 6)]
PLIERS = ["plier2.webp", "plier4.webp", "cuttingTool.webp", "sideCutter1.webp"]
METERS = ["multimeter1.jpg", "multimeter2.webp", "multimeter3.webp"]
COLOUR_QUERIES: list[tuple[str, Qrels]] = [
    ("a red multimeter", _group(TOOLS, ["multimeter1.jpg"], METERS)),
    ("a blue multimeter", _group(TOOLS, ["multimeter2.webp"], METERS)),
    ("a yellow tape measure", _group(TOOLS, ["measuringTape1.webp", "measuringTape4.webp"], TAPES)),
    ("pliers with red handles", _group(TOOLS, ["plier1.png", "plier3.webp"], PLIERS)),
    (
        "scissors with orange handles",
        _group(TOOLS, ["scissors1.jpg", "scissors4.webp"], ["scissors2.webp", "scissors3.webp"]),
    ),
    (
        "a screwdriver with a yellow handle",
        _group(TOOLS, ["screwDriver1.webp"], ["screwDriver2.webp", "screwDriver3.webp"]),
    ),
    ("a red spray bottle", _group(TOOLS, ["spray.webp"], [])),
    ("a yellow pencil", _group("images/household_objects/", ["pencil.png"], [])),
    ("a hammer on a blue background", _group(TOOLS, ["hammer1.webp"], HAMMERS)),
    (
        "white windmills",
        _group("images/renewable_energy/", [f"windmill{i}.webp" for i in (2, 3, 8)], []),
    ),
    ("a red, yellow and blue parrot", _group("images/world_animals/", ["scarlet_macaw.webp"], [])),
    ("a pink palace", _group(MONUMENTS, ["india/hawaMahal.webp"], [])),
]


def ndcg_mrr(scores: np.ndarray, paths: list[str], relevant: Qrels) -> tuple[float, float]:
    gains = np.array([relevant.get(paths[i], 0) for i in np.argsort(-scores)], dtype=float)
    discounts = 1.0 / np.log2(np.arange(2, 12))
    ideal = np.sort(np.array(list(relevant.values()), dtype=float))[::-1][:10]
    ndcg = (gains[:10] * discounts).sum() / (ideal * discounts[: len(ideal)]).sum()
    hits = np.flatnonzero(gains == 2)
    return float(ndcg), (1.0 / (hits[0] + 1) if len(hits) else 0.0)


def evaluate(
    vectors: np.ndarray, paths: list[str], queries: np.ndarray, qrels: list[Qrels]
) -> tuple[float, float]:
    results = [ndcg_mrr(s, paths, r) for s, r in zip(queries @ vectors.T, qrels, strict=True)]
    return float(np.mean([r[0] for r in results])), float(np.mean([r[1] for r in results]))


def per_image_ms(start: float, n: int) -> float:
    return 1000 * (time.perf_counter() - start) / max(1, n)


def main() -> None:
    default_models = Path(os.environ.get("MMS_MODEL_DIR") or default_model_dir())
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "corpus"
    )
    ap.add_argument("--model-dir", type=Path, default=default_models)
    ap.add_argument("--lite2-dir", type=Path, default=None)
    args = ap.parse_args()

    text_q: list[tuple[str, Qrels]] = []
    for line in (args.corpus / "queries.jsonl").open():
        q = json.loads(line)
        rel = {p: g for p, g in q["relevant"].items() if p.startswith("images/")}
        if "text" in q and 2 in rel.values():
            text_q.append((q["text"], rel))
    files = sorted(p for p in (args.corpus / "images").rglob("*") if p.is_file())
    paths = [str(p.relative_to(args.corpus)) for p in files]
    print(f"{len(paths)} images, {len(text_q)} text queries, {len(COLOUR_QUERIES)} colour queries")

    images = [load_image(p, max_pixels=89_478_485) for p in files]
    minilm = MiniLMEmbedder(model_dir=args.model_dir)
    q_main, rel_main = minilm.embed_texts([t for t, _ in text_q]), [r for _, r in text_q]
    q_col, rel_col = (
        minilm.embed_texts([t for t, _ in COLOUR_QUERIES]),
        [r for _, r in COLOUR_QUERIES],
    )

    classifiers = {
        "lite0": ImageClassifier(model_dir=args.model_dir),
        "lite0 crop 0.875": ImageClassifier(model_dir=args.model_dir, crop=0.875),
    }
    if args.lite2_dir:
        classifiers["lite2"] = ImageClassifier(
            model_dir=args.lite2_dir, variant="efficientnet-lite2"
        )
    backbones: dict[str, np.ndarray] = {}
    for label, clf in classifiers.items():
        clf.classify_images(images[:2])  # session load and warm-up outside the timing
        t0 = time.perf_counter()
        backbones[label], _ = clf.classify_images(images)
        print(
            f"{label}: {per_image_ms(t0, len(images)):.1f} ms/image (preprocess + ONNX, 1 thread)"
        )

    t0 = time.perf_counter()
    colours = [[n for n, _ in dominant_colours(im)] for im in images]
    print(f"colours: {per_image_ms(t0, len(images)):.2f} ms/image")
    ocr = OcrReader()
    ocr.has_text(images[0])
    t0 = time.perf_counter()
    gated = [ocr.has_text(im) for im in images]
    gate_ms = per_image_ms(t0, len(images))
    t0 = time.perf_counter()
    ocr_text = [ocr.text(im) if g else "" for im, g in zip(images, gated, strict=True)]
    print(
        f"OCR gate {gate_ms:.1f} ms/image, passed {sum(gated)}; full read "
        f"{per_image_ms(t0, sum(gated)):.0f} ms each; text in {sum(map(bool, ocr_text))} images:"
    )
    print("   " + "; ".join(f"{p}: {t!r}" for p, t in zip(paths, ocr_text, strict=True) if t))

    matrices = {w: minilm.embed_texts([class_text(c, w) for c in class_info()]) for w in WORDINGS}
    matrices["mix (mean of all)"] = l2_normalise(np.sum(list(matrices.values()), axis=0))

    def report(label: str, vecs: np.ndarray) -> None:
        n1, m1 = evaluate(vecs, paths, q_main, rel_main)
        n2, m2 = evaluate(vecs, paths, q_col, rel_col)
        print(f"  {label:<40} main nDCG@10 {n1:.3f} MRR {m1:.3f} | colour {n2:.3f} MRR {m2:.3f}")

    print("\nBackbone x wording (T=10, temp 1; then T=20, temp 2):")
    for b, probs in backbones.items():
        for w, mat in matrices.items():
            for k, temp in ((10, 1.0), (20, 2.0)):
                report(f"{b}, {w}, T={k}, temp={temp}", conse_vectors(probs, mat, k, temp))

    lite0 = backbones["lite0"]
    print("\nT x temperature (lite0):")
    for w in ("name", "photo", "description", "mix (mean of all)"):
        for k in (1, 5, 10, 20, 50):
            for temp in (1.0, 2.0, 3.0):
                report(f"{w}, T={k}, temp={temp}", conse_vectors(lite0, matrices[w], k, temp))

    phrases: dict[str, np.ndarray] = {}

    def phrase(text: str) -> np.ndarray | None:
        if text and text not in phrases:
            phrases[text] = minilm.embed_query_text(text)
        return phrases.get(text)

    def blended(base: np.ndarray, cw: float, ow: float) -> np.ndarray:
        extra = [
            (phrase(colour_phrase(c)), phrase(t)) for c, t in zip(colours, ocr_text, strict=True)
        ]
        return np.stack(
            [mix_vectors(b, [(c, cw), (t, ow)]) for b, (c, t) in zip(base, extra, strict=True)]
        )

    print("\nColour / OCR weights (lite0, description):")
    for k, temp in ((10, 1.0), (10, 2.0), (20, 2.0)):
        base = conse_vectors(lite0, matrices["description"], k, temp)
        for cw in (0.0, 0.1, 0.2, 0.3):
            for ow in (0.0, 0.2, 0.5):
                report(f"T={k}, temp={temp}, colours {cw}, ocr {ow}", blended(base, cw, ow))

    d = {k: v.default for k, v in inspect.signature(ConseImageEmbedder).parameters.items()}
    base = conse_vectors(lite0, matrices[d["wording"]], d["top_k"], d["temperature"])
    print(
        f"\nConseImageEmbedder defaults: {d['wording']}, T={d['top_k']}, temp={d['temperature']}, "
        f"colours {d['colour_weight']}, ocr {d['ocr_weight']}"
    )
    report("defaults", blended(base, d["colour_weight"], d["ocr_weight"]))


if __name__ == "__main__":
    main()
