#!/usr/bin/env python3
"""Writes the page's photo samples, for the models that see ordinary photos (224 px ImageNet
ViTs from the hub): four of scikit-image's example photos, each public domain or CC0 (see
LICENSES.md beside this script), as JPEGs at most 512 px on a side, and lists them in
`index.json`. CIFAR models get CIFAR's own samples (`../index.json`, `../pick_samples.py`).

The photos come from scikit-image's wheel on PyPI, so nothing but the package registry is
needed; Pillow writes the JPEGs. Run from the repository root:

    pip download scikit-image==0.24.0 --no-deps -d /tmp/skimage-wheel
    pip install pillow
    python3 www/samples/photos/pick_photos.py /tmp/skimage-wheel/scikit_image-0.24.0-*.whl
"""

import io
import json
import sys
import zipfile
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parent
# (file in skimage/data, name on the page): each one's licence is in LICENSES.md.
PHOTOS = [
    ("chelsea.png", "cat.jpg"),
    ("coffee.png", "coffee.jpg"),
    ("rocket.jpg", "rocket.jpg"),
    ("astronaut.png", "astronaut.jpg"),
]
MAX_SIDE = 512


def main(wheel):
    names = []
    with zipfile.ZipFile(wheel) as z:
        for source, name in PHOTOS:
            image = Image.open(io.BytesIO(z.read(f"skimage/data/{source}"))).convert("RGB")
            image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            image.save(OUT / name, "JPEG", quality=88, optimize=True)
            names.append(name)
    (OUT / "index.json").write_text(json.dumps(names, indent=2) + "\n")
    print(f"wrote {len(names)} photos to {OUT}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
