"""A tiny, randomly initialised CLIP saved like a hub checkpoint, for offline tests.

No pretrained CLIP can be downloaded here, so tests build one: a BPE tokenizer trained
on a few sentences (CLIP-style lowercase BPE with ``</w>`` word ends), an image
processor at 32 px, and a 2-layer, 32-wide text and vision tower with a fixed seed.
The folder is what ``CLIPProcessor``/``CLIPModel.save_pretrained`` write; nothing else
is needed: sentence-transformers 6 loads such a folder directly (no modules.json), finding
``get_text_features``/``get_image_features`` itself. ``text_only=True`` builds a text
tower + mean pooling + Dense saved with modules.json, shaped like the multilingual CLIP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IMAGE_SIZE = 32
PROJECTION_DIM = 24  # distinct from the hidden size, so a test can tell them apart
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

_SENTENCES = [
    "a photo of a cat sitting on a chair",
    "a dog running in the park with a ball",
    "a red hammer and a pair of pliers on a workbench",
    "solar panels and a wind turbine under a blue sky",
    "a goldfish swimming in a bowl of clear water",
    "the eiffel tower at night in paris, france",
    "a cow, a pig, a sheep and a horse on the farm",
    "how to measure the voltage with a multimeter?",
]


def _train_tokenizer(vocab_size: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocab and merges of a byte-level BPE with CLIP's normalisation and word suffix."""
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    tok = Tokenizer(BPE(unk_token=EOS, end_of_word_suffix="</w>", continuing_subword_prefix=""))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "), normalizers.Lowercase()]
    )
    # Same split as transformers' CLIPTokenizer, so the trained merges apply there unchanged.
    split = (
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|"""
        r"""[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(split), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    trainer = BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        end_of_word_suffix="</w>",
        show_progress=False,
    )
    tok.train_from_iterator(_SENTENCES, trainer=trainer)
    spec = json.loads(tok.to_str())["model"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in spec["merges"]]
    return dict(spec["vocab"]), [(a, b) for a, b in pairs]


def build_tiny_clip(dest: Path, *, seed: int = 0, text_only: bool = False) -> Path:
    """Write a tiny random CLIP (weights, config, tokenizer, image processor) to ``dest``.

    ``text_only`` writes just a text tower with projection (like a multilingual CLIP
    text encoder): no vision weights, no image processor.
    """
    import torch
    from transformers import (
        CLIPConfig,
        CLIPModel,
        CLIPProcessor,
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
    )

    # CLIPImageProcessor's PIL backend: the default one needs torchvision, which we never install.
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    vocab, merges = _train_tokenizer()
    # The fast, tokenizers-backed class (transformers 5 keeps CLIPTokenizerFast as its alias).
    # Its ``merges`` is annotated list[str], but tokenizers' BPE only takes (a, b) pairs.
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # type: ignore[arg-type]
    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
    small |= {"num_attention_heads": 2}
    text = small | {
        "vocab_size": len(vocab),
        "max_position_embeddings": 77,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    cfg = CLIPConfig(
        text_config=text,
        vision_config=small | {"image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=PROJECTION_DIM,
    )
    torch.manual_seed(seed)
    dest.mkdir(parents=True, exist_ok=True)
    if text_only:
        return _save_text_tower(CLIPTextModel(CLIPTextConfig(**text)), tokenizer, dest)
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE},
        crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
    )
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(dest)
    CLIPModel(cfg).save_pretrained(dest)
    return dest


def _save_text_tower(text_model: Any, tokenizer: Any, dest: Path) -> Path:
    """Save like sentence-transformers/clip-ViT-B-32-multilingual-v1: a text transformer,
    mean pooling and a Dense projection into the image model's space (modules.json)."""
    import tempfile

    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Pooling, Transformer

    with tempfile.TemporaryDirectory() as tmp:
        text_model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        transformer = Transformer(tmp)
        hidden = text_model.config.hidden_size
        dense = Dense(hidden, PROJECTION_DIM, bias=False, activation_function=None)
        modules = [transformer, Pooling(hidden, "mean"), dense]
        SentenceTransformer(modules=modules, device="cpu").save(str(dest))
    return dest


if __name__ == "__main__":  # handy for benchmarks: python tests/clip_fixture.py /tmp/tiny
    import sys

    print(build_tiny_clip(Path(sys.argv[1]), text_only="--text-only" in sys.argv))
