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
    SPLIT_SEED,
    by_family,
    caption_key,
    caption_queries,
    default_cache_dir,
    family,
    flatness,
    image_features,
    load_items,
    named_view_features,
    retrieval,
    split,
    text_embeddings,
    view_features,
)

sys.path.insert(0, str(REPO))
from mmsearch_cli.embedders.adapter import AdapterWeights, load_weights
from mmsearch_cli.embedders.base import l2_normalise

OUT = REPO / "mmsearch_cli/data/adapter_minilm.npz"
# A fixed sample of held-out public-domain/CC0 pictures (their adapter inputs, not the
# pictures) with the numbers the shipped weights score on it; tests/e2e/test_adapter.py
# recomputes them.
SUBSET = REPO / "tests/data/adapter_heldout.npz"
SUBSET_SIZE = 200
# Picture families trained on: clip art (openclipart, Kenney) and emoji. The icon sets
# ("icon") are fetched too, but training on them lowered held-out clip art R@10
# (0.609 -> 0.573), so they are left out by default.
FAMILIES = ("clipart", "emoji")
BLENDS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
# Classifier views besides the centre crop, trained on and averaged at run time: the whole
# picture letterboxed and the mirrored crop (held-out clip art R@10 0.605 -> 0.636 alone).
TTA_VIEWS = ("pad", "mirror")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--members", type=int, default=2,
                   help="networks in the ensemble (seeds SEED, SEED+1, ...)")  # fmt: skip
    p.add_argument("--no-conse-input", action="store_true", help="features only")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--families", default=",".join(FAMILIES),
                   help="picture families to train and test on: clipart, emoji, icon")  # fmt: skip
    p.add_argument("--views", type=int, default=0,
                   help="random augmented views per picture (1: no gain on val)")  # fmt: skip
    p.add_argument("--tta", default=",".join(TTA_VIEWS),
                   help="named classifier views trained on, averaged at run time")  # fmt: skip
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--input-dropout", type=float, default=0.0)
    p.add_argument("--global-scale", action="store_true",
                   help="one scale for all features, not per dimension")  # fmt: skip
    p.add_argument("--temperature", type=float, default=0.05)
    p.add_argument("--domain-k", type=int, default=64,
                   help="principal components of the in-domain check (0: no check)")  # fmt: skip
    p.add_argument("--train-blend", type=float, default=0.0,
                   help="train normalise(adapter + b * ConSE) instead of the adapter")  # fmt: skip
    p.add_argument("--final", action="store_true",
                   help="after choosing the epoch on validation, retrain on train+val")  # fmt: skip
    return p.parse_args(argv)


def prepare(cache: Path, views: int = 0, families: tuple[str, ...] = FAMILIES,
            tta: tuple[str, ...] = TTA_VIEWS) -> dict[str, Any]:  # fmt: skip
    if not (cache / "items.jsonl").is_file():
        subprocess.run([sys.executable, str(Path(__file__).with_name("fetch_data.py")),
                        "--cache-dir", str(cache)], check=True)  # fmt: skip
    items = [i for i in load_items(cache) if family(i) in families]
    feats = by_family(image_features, cache, items)
    texts: list[str] = []
    parts = []
    for fam in families:  # cached per family, like the features
        fam_texts = sorted({t for it in items if family(it) == fam for t in it["captions"]})
        texts += fam_texts
        parts.append(text_embeddings(cache, fam_texts))
    vectors = np.concatenate(parts)
    index = {t: i for i, t in enumerate(texts)}
    return {
        "items": items,
        **feats,
        **by_family(flatness, cache, items),
        "text_vecs": vectors,
        "captions": [[index[t] for t in it["captions"]] for it in items],
        "query_vecs": vectors[[index[it["query"]] for it in items]],
        "part": split(items),
        "views": [by_family(view_features, cache, items, v) for v in range(1, views + 1)],
        "named": by_family(named_view_features, cache, items, tta) if tta else {},
    }


def view_arrays(data: dict[str, Any], view: str) -> dict[str, np.ndarray]:
    """``feats`` and class-only ``plain`` ConSE vectors of a named view ("crop": as indexed)."""
    if view == "crop":
        return {"feats": data["feats"], "plain": data["plain"]}
    return {"feats": data["named"][f"{view}_feats"], "plain": data["named"][f"{view}_plain"]}


def build_model(in_dim: int, args: argparse.Namespace) -> Any:
    import torch
    from torch import nn

    class Adapter(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = nn.Sequential(
                nn.Linear(in_dim, args.hidden), nn.ReLU(), nn.Dropout(args.dropout),
                nn.Linear(args.hidden, 384),
            )  # fmt: skip

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return nn.functional.normalize(self.mlp(x), dim=1)

    return Adapter()


def fit_domain(
    data: dict[str, Any],
    norm: dict[str, Any],
    k: int,
    quantile: float = 95.0,
    power: float = 8.0,
    flat_quantile: float = 2.0,
    flat_power: float = 4.0,
) -> tuple[np.ndarray, dict[str, float]]:
    """The in-domain check (``AdapterWeights.in_domain``): the top ``k`` principal
    components of the training pictures' standardised features, the training pictures'
    mean residual, and ``tau``, the ``quantile`` of validation pictures' residual ratio.
    ``power`` 8 puts the trust at 0.5 at ``tau``, 0.04 at 1.5 ``tau`` and 0.004 at twice it.
    The pixel cue's ``flat_phi`` is the ``flat_quantile`` of validation pictures'
    flatness: ``flat_power`` 4 halves the trust there, and takes 0.5% of it at a quarter
    of it (a noisy photo)."""

    def standardised(part: str) -> np.ndarray:
        rows = np.flatnonzero((data["part"] == part) & data["ok"])
        # The same float16 rounding as the shipped arrays, so tau matches run time.
        mean = norm["mean"].astype(np.float16).astype(np.float32)
        scale = norm["scale"].astype(np.float16).astype(np.float32)
        return np.asarray((data["feats"][rows] - mean) / scale, dtype=np.float32)

    z = standardised("train")
    basis = np.linalg.svd(z, full_matrices=False)[2][:k].astype(np.float16).astype(np.float32)

    def residual(x: np.ndarray) -> np.ndarray:
        return np.asarray(((x - (x @ basis.T) @ basis) ** 2).sum(axis=1))

    resid_mean = float(residual(z).mean())
    tau = float(np.percentile(residual(standardised("val")) / resid_mean, quantile))
    val = np.flatnonzero((data["part"] == "val") & data["ok"])
    phi = float(np.percentile(data["flat"][val], flat_quantile))
    meta = {"k": k, "resid_mean": resid_mean, "tau": tau, "power": power, "quantile": quantile,
            "flat_phi": phi, "flat_power": flat_power, "flat_quantile": flat_quantile}  # fmt: skip
    return basis, meta


def export(models: list[Any], mean: np.ndarray, scale: np.ndarray, meta: dict[str, Any],
           basis: np.ndarray | None = None) -> bytes:  # fmt: skip
    """The networks as float16 arrays (stacked on a leading member axis) plus JSON meta,
    loadable by numpy alone."""
    arrays: dict[str, np.ndarray] = {
        "mean": mean.astype(np.float16), "scale": scale.astype(np.float16),
    }  # fmt: skip
    if basis is not None:
        arrays["domain_basis"] = basis
    layers = [(m.mlp[0], m.mlp[3]) for m in models]
    arrays["w1"] = np.stack([first.weight.detach().numpy().T for first, _ in layers])
    arrays["b1"] = np.stack([first.bias.detach().numpy() for first, _ in layers])
    arrays["w2"] = np.stack([last.weight.detach().numpy().T for _, last in layers])
    arrays["b2"] = np.stack([last.bias.detach().numpy() for _, last in layers])
    arrays = {k: v.astype(np.float16) for k, v in arrays.items()}
    meta = {**meta, "shapes": {k: list(v.shape) for k, v in arrays.items()}}
    buf = io.BytesIO()
    payload: dict[str, Any] = {"meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    np.savez_compressed(buf, **payload)
    return buf.getvalue()


def view_readings(weights: AdapterWeights, data: dict[str, Any], rows: np.ndarray
                  ) -> list[tuple[np.ndarray, np.ndarray | None]]:  # fmt: skip
    """(features, class-only ConSE) of ``rows`` for each view the weights read."""
    readings = []
    for view in weights.views:
        arrays = view_arrays(data, view)
        plain = arrays["plain"][rows] if weights.conse_input else None
        readings.append((arrays["feats"][rows], plain))
    return readings


def evaluate(
    weights: AdapterWeights,
    data: dict[str, Any],
    part: str,
    blends: tuple[float, ...],
    fam: str | None = None,
) -> dict[str, dict[str, float]]:
    """Caption -> exact picture among the split's pictures: ConSE alone, the shipped
    combination (in-domain trust x adapter + blend x ConSE), and the adapter blended with
    ConSE at each weight without the trust (0: the adapter alone)."""
    rows = np.flatnonzero((data["part"] == part) & data["ok"])
    if fam is not None:  # one family's pictures only, as queries and as candidates
        rows = np.array([r for r in rows if family(data["items"][r]) == fam], dtype=int)
    queries, targets = caption_queries(data["items"], rows)
    by_query = {caption_key(data["items"][r]["query"]): data["query_vecs"][r] for r in rows}
    q = np.stack([by_query[t] for t in queries])
    out = {"conse": retrieval(q, data["conse"][rows], targets)}
    readings = view_readings(weights, data, rows)
    vecs = weights.forward_views(readings)  # untrusted: every view, as with gate=False
    trust = weights.in_domain(data["feats"][rows], data["flat"][rows])
    gated = weights.gated_reading(readings, trust)
    out["shipped"] = retrieval(q, weights.combine(gated, data["conse"][rows], trust), targets)
    for b in blends:
        out[f"blend {b:g}"] = retrieval(q, l2_normalise(vecs + b * data["conse"][rows]), targets)
    return out


def subset_scores(weights: AdapterWeights, arrays: dict[str, np.ndarray], captions: list[str],
                  query_vecs: np.ndarray) -> dict[str, dict[str, float]]:  # fmt: skip
    """ConSE, the adapter alone and the shipped combination on the fixed subset, through
    the same calls as run time (``forward_views``, ``in_domain``, ``combine``)."""
    f32 = {k: v.astype(np.float32) for k, v in arrays.items()}
    keys = [caption_key(c) for c in captions]
    queries = sorted(set(keys))
    targets = [{i for i, k in enumerate(keys) if k == q} for q in queries]
    q = np.stack([query_vecs[keys.index(k)] for k in queries])
    prefix = {v: "" if v == "crop" else f"{v}_" for v in weights.views}
    readings = [
        (f32[f"{prefix[v]}feats"], f32[f"{prefix[v]}plain"] if weights.conse_input else None)
        for v in weights.views
    ]
    adapter = weights.forward_views(readings)
    trust = weights.in_domain(f32["feats"], f32["flat"])
    shipped = weights.combine(weights.gated_reading(readings, trust), f32["conse"], trust)
    return {
        "conse": retrieval(q, f32["conse"], targets),
        "adapter": retrieval(q, adapter, targets),
        "shipped": retrieval(q, shipped, targets),
    }


def export_subset(weights: AdapterWeights, data: dict[str, Any], sha256: str) -> dict[str, Any]:
    rows = np.flatnonzero((data["part"] == "test") & data["ok"])
    rows = np.array([r for r in rows if family(data["items"][r]) == "clipart"])
    pick = np.sort(np.random.default_rng(SPLIT_SEED).choice(rows, SUBSET_SIZE, replace=False))
    arrays = {k: data[k][pick].astype(np.float16) for k in ("feats", "plain", "conse", "flat")}
    arrays.update({k: v[pick].astype(np.float16) for k, v in data["named"].items()})
    captions = [data["items"][r]["query"] for r in pick]
    scores = subset_scores(weights, arrays, captions, data["query_vecs"][pick])
    meta = {"adapter_sha256": sha256, "captions": captions, "scores": scores,
            "ids": [data["items"][r]["id"] for r in pick]}  # fmt: skip
    SUBSET.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(SUBSET, meta=np.array(json.dumps(meta)), **arrays)
    return scores


def train(data: dict[str, Any], args: argparse.Namespace, parts: tuple[str, ...], epochs: int,
          seed: int, val_every: int = 0) -> tuple[Any, dict[str, Any], list[Any]]:  # fmt: skip
    """Train one network on the pictures of ``parts``; optionally score validation every
    few epochs."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(np.isin(data["part"], parts) & data["ok"])
    mean = data["feats"][rows].mean(axis=0)
    scale = data["feats"][rows].std(axis=0) + 1e-3
    if args.global_scale:
        scale = np.full_like(scale, float(np.sqrt((scale**2).mean())))
    # View 0: the picture as indexed; then the named views, then random augmented ones.
    views = [view_arrays(data, v) for v in ("crop", *args.tta_views)] + data["views"]
    xs = []
    for view in views:
        x = (view["feats"][rows] - mean) / scale
        if not args.no_conse_input:
            x = np.concatenate([x, view["plain"][rows]], axis=1)
        xs.append(torch.from_numpy(x.astype(np.float32)))
    x_t = torch.stack(xs)  # (views, n, in_dim)
    conse_t = torch.from_numpy(data["conse"][rows])
    groups = np.unique([data["items"][r]["group"] for r in rows], return_inverse=True)[1]
    groups_t = torch.from_numpy(groups)
    model = build_model(x_t.shape[2], args)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = epochs * int(np.ceil(len(rows) / args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=steps)
    meta = {
        "arch": "relu-mlp", "hidden": args.hidden, "members": args.members,
        "conse_input": not args.no_conse_input, "train_blend": args.train_blend,
        "seed": args.seed, "epochs": epochs, "lr": args.lr, "batch": args.batch,
        "weight_decay": args.weight_decay, "dropout": args.dropout,
        "input_dropout": args.input_dropout, "global_scale": args.global_scale,
        "temperature": args.temperature, "train_pictures": len(rows),
        "views": ["crop", *args.tta_views], "augmented_views": len(data["views"]),
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
            if args.train_blend:
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
            weights = load_weights_bytes(export([model], mean, scale, meta))
            scores = evaluate(weights, data, "val", (0.0, args.train_blend or 0.5, 1.0))
            history.append((epoch, loss.item(), scores))
            best = max(scores.values(), key=lambda s: s["recall@10"])
            print(f"epoch {epoch:3d} loss {loss.item():.3f} val "
                  + " ".join(f"{k}: R@10 {s['recall@10']:.3f}" for k, s in scores.items())
                  + f" (best {best['recall@10']:.3f})", file=sys.stderr)  # fmt: skip
    model.eval()
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
    families = tuple(args.families.split(","))
    args.tta_views = tuple(v for v in args.tta.split(",") if v)
    data = prepare(args.cache_dir.expanduser(), args.views, families, args.tta_views)
    counts = {p: int(((data["part"] == p) & data["ok"]).sum()) for p in ("train", "val", "test")}
    print(f"pictures: {counts} ({time.time() - started:.0f} s to prepare)", file=sys.stderr)
    parts = ("train", "val") if args.final else ("train",)
    models = []
    for member in range(args.members):
        # The first member logs validation every 5 epochs; --final retrains on train+val.
        model, norm, _ = train(data, args, ("train",), args.epochs, args.seed + member,
                               val_every=5 if member == 0 else 0)  # fmt: skip
        if args.final:
            model, norm, _ = train(data, args, parts, args.epochs, args.seed + member)
        models.append(model)
    meta = dict(norm["meta"])
    probe = load_weights_bytes(export(models, norm["mean"], norm["scale"], meta))
    val = evaluate(probe, data, "val", BLENDS)
    blend = max(BLENDS, key=lambda b: val[f"blend {b:g}"]["recall@10"])
    basis = None
    if args.domain_k:
        basis, meta["domain"] = fit_domain(data, norm, args.domain_k)
    meta["blend"] = blend
    val = evaluate(load_weights_bytes(export(models, norm["mean"], norm["scale"], meta, basis)),
                   data, "val", BLENDS)  # fmt: skip
    meta["validation"] = val
    weights = load_weights_bytes(export(models, norm["mean"], norm["scale"], meta, basis))
    test = evaluate(weights, data, "test", (0.0, blend))
    for fam in families:
        test.update({f"{fam} {k}": v for k, v in evaluate(weights, data, "test", (0.0, blend),
                                                          fam).items()})  # fmt: skip
    blob = export(models, norm["mean"], norm["scale"], {**meta, "test": test}, basis)
    args.out.write_bytes(blob)
    digest = hashlib.sha256(blob).hexdigest()
    if args.out == OUT:
        test["fixed subset"] = export_subset(weights, data, digest)["shipped"]
    summary = {"out": str(args.out), "bytes": len(blob), "sha256": digest, "blend": blend,
               "test": test, "seconds": round(time.time() - started)}  # fmt: skip
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
