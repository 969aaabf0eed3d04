#!/usr/bin/env python3
"""Picks the page's sample images: one CIFAR-10 test image per class, written as `<class>.png`,
and lists them in `index.json`. Standard library only.

The samples are the first test image of each class that the default model classifies
correctly, so the page's first click shows the model at work rather than at its 30% of
mistakes (the browser test checks that each sample's top-1 is its file name). Run from the
repository root after publishing the default model:

    trainer eval --model www/models/vitrine-cifar10.json \
        --data-dir ../shared/data/cifar-10-jpeg-approx-bin --predictions /tmp/preds.csv
    python3 www/samples/pick_samples.py ../shared/data/cifar-10-jpeg-approx-bin /tmp/preds.csv

Ten 32x32 images out of the 10,000-image test set: the data set itself is never copied here.
"""

import csv
import json
import struct
import sys
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parent
RECORD = 1 + 3 * 32 * 32


def write_png(path, planes):
    """An 8-bit RGB 32x32 PNG from CIFAR's R, G, B planes."""
    rows = bytearray()
    for y in range(32):
        rows.append(0)
        for x in range(32):
            i = y * 32 + x
            rows.extend((planes[i], planes[1024 + i], planes[2048 + i]))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(bytes(rows), 9)) + chunk(b"IEND", b""))


def main(data_dir, predictions):
    data = (Path(data_dir) / "test_batch.bin").read_bytes()
    picked = {}
    with open(predictions) as f:
        for row in csv.DictReader(f):
            label = row["true"]
            if row["predicted"] == label and label not in picked:
                picked[label] = int(row["index"])
    files = []
    for label, index in sorted(picked.items(), key=lambda kv: kv[1]):
        rec = data[index * RECORD:(index + 1) * RECORD]
        name = f"{label}.png"
        write_png(OUT / name, rec[1:])
        files.append(name)
        print(f"{name}: test image {index}")
    (OUT / "index.json").write_text(json.dumps(files, indent=2) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
