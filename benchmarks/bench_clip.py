"""Cold query time of the st-clip embedder: a fresh process that imports, loads and
embeds one text, with torch (sentence-transformers) and with the ONNX text-tower export.

    python benchmarks/bench_clip.py [MODEL_FOLDER] [--runs 5]

Without a folder it builds the tiny random CLIP from tests/clip_fixture.py, which
measures the fixed costs (imports, session setup), not a real model's compute.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

QUERY = """
import sys
from pathlib import Path
from mmsearch_cli.embedders.clip import SentenceTransformersImageTextEmbedder
e = SentenceTransformersImageTextEmbedder(sys.argv[1], model_dir=Path(sys.argv[2]))
v = e.embed_query_text("a red hammer on a workbench")
print(v.shape[0], file=sys.stderr)
sys.stdout.flush()
import os; os._exit(0)  # skip torch teardown, as the CLI does
"""


def cold_ms(model: str, model_dir: Path, runs: int) -> list[float]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", QUERY, model, str(model_dir)],
            check=True,
            env=env,
            capture_output=True,
        )
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model
        if model is None:
            sys.path.insert(0, str(ROOT / "tests"))
            from clip_fixture import build_tiny_clip

            model = str(build_tiny_clip(Path(tmp) / "tiny-clip"))
        from mmsearch_cli.embedders.clip import SentenceTransformersImageTextEmbedder

        torch_dir, onnx_dir = Path(tmp) / "models-torch", Path(tmp) / "models-onnx"
        start = time.perf_counter()
        SentenceTransformersImageTextEmbedder(model, model_dir=onnx_dir).export_query_onnx()
        print(f"export: {(time.perf_counter() - start) * 1000:.0f} ms")
        for label, model_dir in (("torch (sentence-transformers)", torch_dir), ("onnx", onnx_dir)):
            times = cold_ms(model, model_dir, args.runs)
            print(
                f"{label}: median {statistics.median(times):.0f} ms, "
                f"min {min(times):.0f}, max {max(times):.0f} over {len(times)} runs"
            )


if __name__ == "__main__":
    main()
