"""Train the image -> MiniLM-space adapter and write ``mmsearch_cli/data/adapter_minilm.npz``.

One command from a fresh machine (fetches and prepares the data first if needed)::

    python training/train_adapter.py            # ~10 min on 1 CPU thread, seed 0

Steps: picture features through the runtime path (decoder, EfficientNet-Lite0, ConSE),
MiniLM embeddings of the captions (both cached in the data cache), a group-wise split
(test 10%, validation 5%; near-duplicates stay on one side), then a small network trained
with a symmetric InfoNCE loss between pictures and their captions. The epoch and the ConSE
blend weight are chosen on the validation split; the held-out test split is only reported.
Deterministic under ``--seed`` (1 thread, deterministic torch kernels).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    REPO,
    caption_queries,
    default_cache_dir,
    image_features,
    load_items,
    retrieval,
    split,
    text_embeddings,
    view_features,
)

sys.path.insert(0, str(REPO))
from mmsearch_cli.embedders.adapter import AdapterWeights, load_weights
from mmsearch_cli.embedders.base import l2_normalise

OUT = REPO / "mmsearch_cli/data/adapter_minilm.npz"
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=512, help="0: linear map only")
    p.add_argument("--skip", action="store_true", help="add a linear skip path")
    p.add_argument("--no-conse-input", action="store_true", help="features only")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--views", type=int, default=0,
                   help="augmented views per picture (1 view: no gain on validation)")  # fmt: skip
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--input-dropout", type=float, default=0.0)
    p.add_argument("--global-scale", action="store_true",
                   help="one scale for all features, not per dimension")  # fmt: skip
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--gate", action="store_true",
                   help="learn a per-picture ConSE weight from the top-1 probability")  # fmt: skip
    p.add_argument("--train-blend", type=float, default=0.0,
                   help="train normalise(adapter + b * ConSE) instead of the adapter")  # fmt: skip
    p.add_argument("--final", action="store_true",
                   help="after choosing the epoch on validation, retrain on train+val")  # fmt: skip
    return p.parse_args(argv)


def prepare(cache: Path, views: int = 0) -> dict[str, Any]:
    if not (cache / "items.jsonl").is_file():
        subprocess.run([sys.executable, str(Path(__file__).with_name("fetch_data.py")),
                        "--cache-dir", str(cache)], check=True)  # fmt: skip
    items = load_items(cache)
    feats = image_features(cache, items)
    texts = sorted({t for it in items for t in it["captions"]})
    vectors = text_embeddings(cache, texts)
    index = {t: i for i, t in enumerate(texts)}
    return {
        "items": items,
        **feats,
        "text_vecs": vectors,
        "captions": [[index[t] for t in it["captions"]] for it in items],
        "query_vecs": vectors[[index[it["query"]] for it in items]],
        "part": split(items),
        "maxprob": view_features(cache, items, 0)["maxprob"],
        "views": [view_features(cache, items, v) for v in range(1, views + 1)],
    }


def build_model(in_dim: int, args: argparse.Namespace) -> Any:
    import torch
    from torch import nn

    class Adapter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.skip = nn.Linear(in_dim, 384, bias=False) if args.skip else None
            self.mlp = None
            if args.hidden:
                self.mlp = nn.Sequential(
                    nn.Linear(in_dim, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
                    nn.Linear(args.hidden, 384),
                )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = torch.zeros(x.shape[0], 384)
            if self.skip is not None:
                out = out + self.skip(x)
            if self.mlp is not None:
                out = out + self.mlp(x)
            return nn.functional.normalize(out, dim=1)

    return Adapter()


def export(model: Any, mean: np.ndarray, scale: np.ndarray, meta: dict[str, Any]) -> bytes:
    """The network as float16 arrays plus JSON meta, loadable by numpy alone."""
    arrays: dict[str, np.ndarray] = {
        "mean": mean.astype(np.float16), "scale": scale.astype(np.float16),
    }  # fmt: skip
    if model.skip is not None:
        arrays["skip"] = model.skip.weight.detach().numpy().T
    if model.mlp is not None:
        first, last = model.mlp[0], model.mlp[3]
        arrays["w1"] = first.weight.detach().numpy().T
        arrays["b1"] = first.bias.detach().numpy()
        arrays["w2"] = last.weight.detach().numpy().T
        arrays["b2"] = last.bias.detach().numpy()
    arrays = {k: v.astype(np.float16) for k, v in arrays.items()}
    meta = {**meta, "shapes": {k: list(v.shape) for k, v in arrays.items()}}
    buf = io.BytesIO()
    payload: dict[str, Any] = {"meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    np.savez_compressed(buf, **payload)
    return buf.getvalue()


def adapter_vectors(weights: AdapterWeights, data: dict[str, Any], rows: np.ndarray) -> np.ndarray:
    plain = data["plain"][rows] if weights.conse_input else None
    return weights.forward(data["feats"][rows], plain)


def evaluate(
    weights: AdapterWeights, data: dict[str, Any], part: str, blends: tuple[float, ...]
) -> dict[str, dict[str, float]]:
    """Caption -> exact picture among the split's pictures: ConSE alone, and the adapter
    blended with ConSE at each weight (0: the adapter alone)."""
    rows = np.flatnonzero((data["part"] == part) & data["ok"])
    queries, targets = caption_queries(data["items"], rows)
    by_query = {data["items"][r]["query"]: data["query_vecs"][r] for r in rows}
    q = np.stack([by_query[t] for t in queries])
    out = {"conse": retrieval(q, data["conse"][rows], targets)}
    vecs = adapter_vectors(weights, data, rows)
    gate = weights.blend_weights(data["maxprob"][rows])[:, None]
    out["shipped"] = retrieval(q, l2_normalise(vecs + gate * data["conse"][rows]), targets)
    for b in blends:
        out[f"blend {b:g}"] = retrieval(q, l2_normalise(vecs + b * data["conse"][rows]), targets)
    return out


def train(data: dict[str, Any], args: argparse.Namespace, parts: tuple[str, ...],
          epochs: int, val_every: int = 0) -> tuple[Any, dict[str, Any], list[Any]]:  # fmt: skip
    """Train on the pictures of ``parts``; optionally score validation every few epochs."""
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    rows = np.flatnonzero(np.isin(data["part"], parts) & data["ok"])
    mean = data["feats"][rows].mean(axis=0)
    scale = data["feats"][rows].std(axis=0) + 1e-3
    if args.global_scale:
        scale = np.full_like(scale, float(np.sqrt((scale**2).mean())))
    views = [data, *data["views"]]  # view 0: the picture as indexed; then augmented ones
    xs = []
    for view in views:
        x = (view["feats"][rows] - mean) / scale
        if not args.no_conse_input:
            x = np.concatenate([x, view["plain"][rows]], axis=1)
        xs.append(torch.from_numpy(x.astype(np.float32)))
    x_t = torch.stack(xs)  # (views, n, in_dim)
    conse_t = torch.from_numpy(data["conse"][rows])
    p = np.clip(data["maxprob"][rows].astype(np.float64), 1e-6, 1 - 1e-6)
    logit_t = torch.from_numpy(np.log(p / (1 - p)).astype(np.float32))
    gate = torch.nn.Parameter(torch.tensor([1.0, 0.0]))
    groups = np.unique([data["items"][r]["group"] for r in rows], return_inverse=True)[1]
    groups_t = torch.from_numpy(groups)
    model = build_model(x_t.shape[2], args)
    params = [{"params": model.parameters()}]
    if args.gate:
        params.append({"params": [gate], "weight_decay": 0.0})
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    steps = epochs * int(np.ceil(len(rows) / args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    meta = {
        "arch": "relu-mlp" if args.hidden else "linear",
        "hidden": args.hidden, "skip": args.skip,
        "conse_input": not args.no_conse_input, "train_blend": args.train_blend,
        "seed": args.seed, "epochs": epochs, "lr": args.lr, "batch": args.batch,
        "weight_decay": args.weight_decay, "dropout": args.dropout,
        "input_dropout": args.input_dropout, "global_scale": args.global_scale,
        "temperature": args.temperature, "train_pictures": len(rows), "views": len(views) - 1,
    }  # fmt: skip
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        # One caption per picture per epoch, drawn at random among its short and long forms.
        pick = [data["captions"][r][rng.integers(len(data["captions"][r]))] for r in rows]
        y_t = torch.from_numpy(data["text_vecs"][pick])
        order = torch.from_numpy(rng.permutation(len(rows)))
        for start in range(0, len(rows), args.batch):
            idx = order[start : start + args.batch]
            view = torch.from_numpy(rng.integers(len(views), size=len(idx)))
            xb = x_t[view, idx]
            if args.input_dropout:
                xb = torch.nn.functional.dropout(xb, args.input_dropout)
            v = model(xb)
            if args.gate:
                g = torch.nn.functional.softplus(gate[0] * logit_t[idx] + gate[1])
                v = torch.nn.functional.normalize(v + g[:, None] * conse_t[idx], dim=1)
            elif args.train_blend:
                v = torch.nn.functional.normalize(v + args.train_blend * conse_t[idx], dim=1)
            logits = v @ y_t[idx].T / args.temperature
            # Near-duplicates (same group) are not negatives of each other.
            same = groups_t[idx][:, None] == groups_t[idx][None, :]
            eye = torch.eye(len(idx), dtype=torch.bool)
            logits = logits.masked_fill(same & ~eye, float("-inf"))
            target = torch.arange(len(idx))
            loss = (torch.nn.functional.cross_entropy(logits, target)
                    + torch.nn.functional.cross_entropy(logits.T, target)) / 2  # fmt: skip
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if val_every and (epoch % val_every == 0 or epoch == epochs):
            model.eval()
            probe_meta = {**meta, "gate": [float(v) for v in gate.detach()]} if args.gate else meta
            weights = load_weights_bytes(export(model, mean, scale, probe_meta))
            scores = evaluate(weights, data, "val", (0.0, args.train_blend or 0.5, 1.0))
            history.append((epoch, loss.item(), scores))
            best = max(scores.values(), key=lambda s: s["recall@10"])
            print(f"epoch {epoch:3d} loss {loss.item():.3f} val "
                  + " ".join(f"{k}: R@10 {s['recall@10']:.3f}" for k, s in scores.items())
                  + f" (best {best['recall@10']:.3f})", file=sys.stderr)  # fmt: skip
    model.eval()
    if args.gate:
        meta["gate"] = [round(float(v), 6) for v in gate.detach()]
    return model, {"mean": mean, "scale": scale, "meta": meta}, history


def load_weights_bytes(data: bytes) -> AdapterWeights:
    tmp = Path("/dev/shm" if Path("/dev/shm").is_dir() else "/tmp") / f"adapter-{id(data)}.npz"
    tmp.write_bytes(data)
    try:
        return load_weights(tmp)
    finally:
        tmp.unlink()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    started = time.time()
    data = prepare(args.cache_dir.expanduser(), args.views)
    counts = {p: int(((data["part"] == p) & data["ok"]).sum()) for p in ("train", "val", "test")}
    print(f"pictures: {counts} ({time.time() - started:.0f} s to prepare)", file=sys.stderr)
    model, norm, _ = train(data, args, ("train",), args.epochs, val_every=5)
    if args.final:
        model, norm, _ = train(data, args, ("train", "val"), args.epochs)
    meta = dict(norm["meta"])
    probe = load_weights_bytes(export(model, norm["mean"], norm["scale"], meta))
    val = evaluate(probe, data, "val", BLENDS)
    blend = max(BLENDS, key=lambda b: val[f"blend {b:g}"]["recall@10"])
    meta.update(blend=blend, validation={k: v for k, v in val.items()})
    blob = export(model, norm["mean"], norm["scale"], meta)
    weights = load_weights_bytes(blob)
    test = evaluate(weights, data, "test", (0.0, blend))
    test = {k: v for k, v in test.items() if k != "shipped" or "gate" in meta}
    weights.meta["test"] = test
    blob = export(model, norm["mean"], norm["scale"], {**meta, "test": test})
    args.out.write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    summary = {"out": str(args.out), "bytes": len(blob), "sha256": digest, "blend": blend,
               "test": test, "seconds": round(time.time() - started)}  # fmt: skip
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
