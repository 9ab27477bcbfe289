"""Per-item costs of the builtin text and image embedders, on 1 thread.

Usage: python benchmarks/bench_embedders.py [--model-dir DIR] [--images sample_data/images]

Measures: a MiniLM query in a fresh process (import + load + encode), MiniLM batch
throughput, EfficientNet-Lite0 per image through torch and through the ONNX export
(batch 1 and 16, preprocessing excluded), colours, and OCR (gate and full read).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mmsearch_cli.config import default_model_dir
from mmsearch_cli.decoders.colours import dominant_colours
from mmsearch_cli.decoders.image import load_image
from mmsearch_cli.embedders.classifier import ImageClassifier, preprocess
from mmsearch_cli.embedders.minilm import MiniLMEmbedder
from mmsearch_cli.embedders.ocr import OcrReader
from mmsearch_cli.models.export import effnet_lite0_weights

ROOT = Path(__file__).resolve().parent.parent
FRESH_QUERY = """
import time; t = time.perf_counter()
from pathlib import Path
from mmsearch_cli.embedders.minilm import MiniLMEmbedder
e = MiniLMEmbedder(model_dir=Path({model_dir!r}))
e.embed_query_text("a hammer on a workbench")
print(1000 * (time.perf_counter() - t))
"""


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--model-dir",
        type=Path,
        default=Path(os.environ.get("MMS_MODEL_DIR") or default_model_dir()),
    )
    ap.add_argument("--images", type=Path, default=ROOT / "sample_data" / "images")
    args = ap.parse_args()

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    code = FRESH_QUERY.format(model_dir=str(args.model_dir))
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    print(f"MiniLM query in a fresh process (import+load+encode): median {np.median(runs):.0f} ms")

    minilm = MiniLMEmbedder(model_dir=args.model_dir)
    minilm.embed_query_text("warm-up")
    ms = median_ms(lambda: minilm.embed_query_text("tape measure"), 20)
    print(f"MiniLM one short query, warm: {ms:.1f} ms")
    chunks = [("Solar panels turn sunlight into electricity on house roofs. " * 8).strip()] * 64
    ms = median_ms(lambda: minilm.embed_texts(chunks), 3)
    print(f"MiniLM 64 chunks of ~100 tokens: {ms / 64:.1f} ms/chunk")

    files = sorted(
        p for p in args.images.rglob("*") if p.suffix.lower() in {".jpg", ".webp", ".png"}
    )[:32]
    images = [load_image(p, max_pixels=89_478_485) for p in files]
    batch = np.stack([preprocess(im, 224) for im in images[:16]])
    n = len(images)
    ms = median_ms(lambda: [preprocess(im, 224) for im in images])
    print(f"preprocess (resize+crop+scale): {ms / n:.2f} ms/image")

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.set_num_threads(1)
    net = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(effnet_lite0_weights())
    ).eval()
    with torch.no_grad():
        x1, x16 = torch.from_numpy(batch[:1]), torch.from_numpy(batch)
        net(x1)
        print(f"Lite0 torch, batch 1: {median_ms(lambda: net(x1), 10):.1f} ms/image")
        print(f"Lite0 torch, batch 16: {median_ms(lambda: net(x16), 3) / 16:.1f} ms/image")
    session = ImageClassifier(model_dir=args.model_dir)._ensure_session()
    session.run(None, {"pixels": batch[:1]})
    for size in (1, 4, 16):
        ms = median_ms(lambda: session.run(None, {"pixels": batch[:size]}), 5) / size  # noqa: B023
        print(f"Lite0 ONNX, batch {size}: {ms:.1f} ms/image")

    ms = median_ms(lambda: [dominant_colours(im) for im in images])
    print(f"colours: {ms / n:.2f} ms/image")
    ocr = OcrReader()
    ocr.has_text(images[0])
    ms = median_ms(lambda: [ocr.has_text(im) for im in images], 3)
    print(f"OCR gate: {ms / n:.1f} ms/image")
    ungated = OcrReader(gate_side=0)
    ms = median_ms(lambda: [ungated.read(im) for im in images[:8]], 1)
    print(f"OCR full read, no gate: {ms / 8:.0f} ms/image")


if __name__ == "__main__":
    main()
