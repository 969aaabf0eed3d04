#!/usr/bin/env python3
"""The PyTorch/timm counterpart of `trainer bench`: same model shape, same work, same output lines.

Prints training images/s (forward + backward + AdamW step on a soft-target cross-entropy),
inference images/s at batch 1 and 64 with and without attention maps, and peak RSS, in
`trainer bench`'s exact wording so `bench/compare` can parse both with one set of patterns.
"""

import argparse
import os
import resource
import time

import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer

CLASSES = 10


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Defaults are the cifar10-10ep preset, `trainer bench`'s default.
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--patch-size", type=int, default=4)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--mlp-ratio", type=float, default=2.0)
    p.add_argument("--pool", choices=["token", "avg"], default="avg")
    p.add_argument("--drop-path", type=float, default=0.0, help="the cifar10-best preset uses 0.1")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--steps", type=int, default=5, help="timed training steps")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    return p.parse_args()


def build(a):
    return VisionTransformer(
        img_size=a.image_size, patch_size=a.patch_size, num_classes=CLASSES,
        embed_dim=a.embed_dim, depth=a.depth, num_heads=a.heads, mlp_ratio=a.mlp_ratio,
        qkv_bias=True, global_pool=a.pool, drop_path_rate=a.drop_path,
    )


def mean_seconds(warmup, runs, f):
    """Runs `f` `warmup` times untimed, then `runs` times; the mean seconds per run."""
    for _ in range(warmup):
        f()
    start = time.perf_counter()
    for _ in range(runs):
        f()
    return (time.perf_counter() - start) / runs


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)

    model = build(a)  # fused attention (scaled_dot_product_attention): timm's default
    tokens = (a.image_size // a.patch_size) ** 2 + 1
    params = sum(p.numel() for p in model.parameters())
    hidden = round(a.embed_dim * a.mlp_ratio)
    print(f"config: {a.image_size}px, patch {a.patch_size}, {tokens} tokens, dim {a.embed_dim}, "
          f"depth {a.depth}, {a.heads} heads, MLP {hidden}, {params} parameters")
    print(f"device: cpu (torch {torch.__version__}, timm {timm.__version__}); "
          f"threads: {torch.get_num_threads()}")
    # ATen's vector kernels; MKL and oneDNN follow MKL_ENABLE_INSTRUCTIONS and ONEDNN_MAX_CPU_ISA,
    # which `compare --isa avx2` sets with ATEN_CPU_CAPABILITY.
    limits = ", ".join(f"{k}={os.environ[k]}" for k in ("MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
                       if k in os.environ)
    print(f"vector unit: {torch.backends.cpu.get_cpu_capability()}" + (f" ({limits})" if limits else ""))

    # Training: uniform soft targets and AdamW, as `trainer bench` does.
    b = a.batch_size
    x = torch.randn(b, 3, a.image_size, a.image_size)
    targets = torch.full((b, CLASSES), 1.0 / CLASSES)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    model.train()

    def step():
        optim.zero_grad(set_to_none=True)
        loss = -(F.log_softmax(model(x), dim=1) * targets).sum(1).mean()
        loss.backward()
        optim.step()

    step_s = mean_seconds(2, a.steps, step)
    print(f"train     batch {b:>3}: {b / step_s:8.1f} images/s ({step_s * 1e3:.1f} ms/step)")

    # Attention maps need the explicit softmax path: the fused kernel never materialises the
    # probabilities. timm reads the switch when a block is built, so build a second model with
    # the same weights after turning fusion off.
    model.eval()
    timm.layers.set_fused_attn(False)
    explicit = build(a).eval()
    explicit.load_state_dict(model.state_dict())
    maps = []
    for blk in explicit.blocks:
        # attn_drop's output is the probability matrix [B, heads, T, T] (dropout is off in eval).
        blk.attn.attn_drop.register_forward_hook(lambda _m, _i, out: maps.append(out))

    def with_maps(xb):
        maps.clear()
        explicit(xb)
        torch.stack(maps)  # one [L, B, heads, T, T] tensor, as `stack_attention` returns

    with torch.inference_mode():
        for batch in (1, 64):
            xb = torch.randn(batch, 3, a.image_size, a.image_size)
            runs = 50 if batch == 1 else 5
            fused = mean_seconds(3, runs, lambda: model(xb))
            explicit_s = mean_seconds(3, runs, lambda: with_maps(xb))
            print(f"infer     batch {batch:>3}: {batch / fused:8.1f} images/s ({fused * 1e3:.2f} ms/batch)"
                  f" | with attention maps {batch / explicit_s:8.1f} images/s "
                  f"({explicit_s * 1e3:.2f} ms, {explicit_s / fused:.2f}x)")

    # ru_maxrss is in KiB on Linux.
    print(f"peak memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
