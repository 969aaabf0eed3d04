#!/usr/bin/env python3
"""Writes imagenet-1k.txt beside this script: ImageNet-1k's class names in timm's class order,
one short readable name per line (what `vit::hub` labels a 1000-class hub model with).

Run from anywhere, with any Python that has timm installed (timm ships the WordNet lemmas):

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install timm
    /tmp/venv/bin/python vit/data/make_imagenet_classes.py

Each name is the synset's first lemma ("tench, Tinca tinca" -> "tench"). The few lemmas that
two classes share ("crane" the bird and the machine, "maillot") take their second lemma too,
so every line names one class; the three that share a lemma and have no second one take a
word from their WordNet definition (HINTS).
"""

from collections import Counter
from pathlib import Path

from timm.data import ImageNetInfo

info = ImageNetInfo("imagenet-1k")
lemmas = [info.index_to_description(i).split(", ") for i in range(info.num_classes())]
assert len(lemmas) == 1000, len(lemmas)
first = Counter(parts[0] for parts in lemmas)
names = [
    parts[0] if first[parts[0]] == 1 or len(parts) == 1 else f"{parts[0]} ({parts[1]})"
    for parts in lemmas
]
# Shared lemmas with no second lemma, told apart by their definitions.
HINTS = {134: "bird", 517: "machine", 638: "tights"}
names = [f"{n} ({HINTS[i]})" if i in HINTS else n for i, n in enumerate(names)]
again = Counter(names)
assert all(c == 1 for c in again.values()), [n for n, c in again.items() if c > 1]
out = Path(__file__).resolve().parent / "imagenet-1k.txt"
out.write_text("".join(n + "\n" for n in names))
print(f"wrote {out} ({len(names)} names)")
