"""Would weights that travel as f16 (half the download) give the same top-5? Rounds every
weight of timm's ViT-Ti/16 and ViT-S/16 to f16 and back, runs both copies in f32 on the same
images, and counts the images whose top-1, top-5 set and top-5 order change. The images: the
photos of tests/fixtures/photos/ and tests/fixtures/realish/ through timm's eval transform,
and random ones (uniform noise, smooth noise, flat colours).

    .venv/bin/python bench/f16-top5.py [--models vit_tiny_patch16_224,...] [--random 300]

The weights are timm's random initialisation (seed 0) unless the hub's are in the local cache
(--pretrained): the machines this project is built on cannot reach the hub. Random weights
give near-tied logits, so they test f16 harder than trained ones, whose top classes stand
further apart.
"""

import argparse
import pathlib

import timm
import torch
from PIL import Image

root = pathlib.Path(__file__).resolve().parent.parent


def images(model, count, seed):
    """The photos through timm's eval transform, then `count` random inputs (a third each:
    uniform noise, smooth noise, flat colours), normalised the model's way."""
    config = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**config)
    photos = sorted((root / "tests/fixtures/photos").glob("*.png"))
    photos += sorted((root / "tests/fixtures/realish").rglob("*.png"))
    photos += sorted((root / "tests/fixtures/realish").rglob("*.jpg"))
    out = [transform(Image.open(p).convert("RGB")) for p in photos]
    size = config["input_size"][-1]
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(config["mean"]).view(3, 1, 1)
    std = torch.tensor(config["std"]).view(3, 1, 1)
    for i in range(count):
        kind = i % 3
        if kind == 0:
            x = torch.rand(3, size, size, generator=g)
        elif kind == 1:
            low = torch.rand(1, 3, 7, 7, generator=g)
            x = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic")[0].clamp(0, 1)
        else:
            x = torch.rand(3, 1, 1, generator=g).expand(3, size, size)
        out.append((x - mean) / std)
    return len(photos), torch.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="vit_tiny_patch16_224,vit_small_patch16_224")
    ap.add_argument("--random", type=int, default=300)
    ap.add_argument("--pretrained", action="store_true", help="the hub's weights (from the local cache)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    for name in args.models.split(","):
        torch.manual_seed(0)
        model = timm.create_model(name, pretrained=args.pretrained).eval()
        half = timm.create_model(name, pretrained=False).eval()
        half.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
        n_photos, x = images(model, args.random, seed=1)
        with torch.no_grad():
            a = torch.cat([model(b) for b in x.split(32)])
            b = torch.cat([half(b) for b in x.split(32)])
        top_a, top_b = a.topk(5).indices, b.topk(5).indices
        set_same = torch.tensor([set(u.tolist()) == set(v.tolist()) for u, v in zip(top_a, top_b)])
        order_same = (top_a == top_b).all(1)
        top1_same = top_a[:, 0] == top_b[:, 0]
        pa, pb = a.softmax(1), b.softmax(1)
        sorted_a = a.sort(1, descending=True).values
        gap = (sorted_a[:, :5] - sorted_a[:, 1:6]).min(1).values  # the closest call within the top 6
        weights = "hub" if args.pretrained else "random init"
        print(f"{name} ({weights}): {len(x)} images ({n_photos} photos, {len(x) - n_photos} random)")
        for what, sel in (("photos", slice(0, n_photos)), ("random", slice(n_photos, None)), ("all", slice(None))):
            n = len(x[sel])
            print(
                f"  {what:6}: top-1 same {int(top1_same[sel].sum())}/{n}, top-5 set same "
                f"{int(set_same[sel].sum())}/{n}, top-5 order same {int(order_same[sel].sum())}/{n}"
            )
        print(
            f"  logits: max |f16 - f32| {float((a - b).abs().max()):.2e} (logits span "
            f"{float(a.std(1).mean()):.2e} std); probabilities: max {float((pa - pb).abs().max()):.2e}; "
            f"closest neighbours within the top 6: median {float(gap.median()):.2e}, min {float(gap.min()):.2e}"
        )
        changed = (~order_same).nonzero().flatten().tolist()
        for i in changed[:5]:
            k = int((top_a[i] != top_b[i]).nonzero()[0])
            apart = float(a[i, top_a[i, k]] - a[i, top_b[i, k]])
            print(
                f"  image {i} changed: f32 {top_a[i].tolist()}, f16 {top_b[i].tolist()}; in f32 the classes "
                f"f16 swapped (place {k + 1}) were {apart:.1e} apart"
            )


if __name__ == "__main__":
    main()
