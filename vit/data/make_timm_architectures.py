#!/usr/bin/env python3
"""Writes timm-architectures.json beside this script: every ViT architecture timm registers
(`vision_transformer.py` and `deit.py`), each as the model `timm.create_model(NAME)` builds,
read from the built model itself (what `vit::hub` reads a hub repo's `architecture` as).

Run from anywhere, with any Python that has torch and timm installed:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install torch timm
    /tmp/venv/bin/python vit/data/make_timm_architectures.py

Models are built on PyTorch's meta device (shapes, no memory), with their default pretrained
configuration, so the image size is the one timm builds at unless told otherwise. For each name:

- `built`: the model as Vitrine's `VitConfig` fields (timm's argument names): `img_size`,
  `patch_size`, `embed_dim`, `depth`, `num_heads`, `mlp_ratio` (the MLP's width over
  `embed_dim`), `qkv_bias`, `class_token`, `distilled`, `reg_tokens`, `no_embed_class`,
  `init_values` (layer scale's starting value, or null), `pre_norm`, `layer_norm_eps`,
  `act_layer`, `global_pool`, `fc_norm` and the default `num_classes`;
- `refused`: for the models whose parts Vitrine's blocks do not compute, the first such part
  in words (attention pooling, another norm, MLP, block, attention or activation, no final
  norm, no learned position embedding, an input size its patches do not tile, ...).
"""

import json
from pathlib import Path

import timm
import torch
import torch.nn as nn
from timm.layers import LayerScale

OUT = Path(__file__).resolve().parent / "timm-architectures.json"
ACTIVATIONS = {"GELU": "gelu", "QuickGELU": "quick_gelu"}
# Parts Vitrine does not build, in words.
WORDS = {"GluMlp": "a gated MLP (SwiGLU)", "SwiGLU": "a gated MLP (SwiGLU)",
         "RmsNorm": "RMSNorm", "GELUTanh": "tanh-approximated GELU", "SiLU": "SiLU",
         "DiffAttention": "differential attention"}


def words(module):
    name = type(module).__name__
    return WORDS.get(name, name)


def refusal(m):
    """Why Vitrine cannot build `m`, or None."""
    b = m.blocks[0]
    if type(b).__name__ != "Block":
        return f"blocks of another kind ({type(b).__name__})"
    if getattr(m, "attn_pool", None) is not None:
        return f"attention pooling (global_pool '{m.global_pool}')"
    if m.global_pool not in ("token", "avg"):
        return f"global_pool '{m.global_pool}'"
    if type(b.attn).__name__ != "Attention":
        return words(b.attn)
    if not isinstance(b.attn.q_norm, nn.Identity):
        return "QK-norm"
    if not isinstance(getattr(b.attn, "norm", nn.Identity()), nn.Identity):
        return "a norm inside attention"
    if type(b.mlp).__name__ != "Mlp":
        return words(b.mlp)
    if not isinstance(b.mlp.norm, nn.Identity):
        return "a norm inside the MLP"
    if type(b.mlp.act).__name__ not in ACTIVATIONS:
        return words(b.mlp.act)
    if type(b.norm1).__name__ != "LayerNorm":
        return words(b.norm1)
    if m.pos_embed is None:
        return "no learned position embedding"
    if isinstance(m.norm, nn.Identity) and isinstance(m.fc_norm, nn.Identity):
        return "no final norm"
    pre_norm = not isinstance(m.norm_pre, nn.Identity)
    if (m.patch_embed.proj.bias is None) != pre_norm:
        return "a patch embedding bias unlike timm's rule"
    if not isinstance(m.patch_embed.norm, nn.Identity):
        return "a norm in the patch embedding"
    if b.attn.proj.bias is None or b.mlp.fc1.bias is None:
        return "projections without bias"
    if m.patch_embed.img_size[0] != m.patch_embed.img_size[1]:
        return "a non-square input"
    if m.patch_embed.patch_size[0] != m.patch_embed.patch_size[1]:
        return "non-square patches"
    if m.dynamic_img_size:
        return "a dynamic input size"
    side, patch = m.patch_embed.img_size[0], m.patch_embed.patch_size[0]
    if side % patch:
        return f"an input size ({side} px) that is not a multiple of its patch size ({patch})"
    return None


def built(m):
    b = m.blocks[0]
    ls = b.ls1
    return dict(
        img_size=m.patch_embed.img_size[0],
        patch_size=m.patch_embed.patch_size[0],
        embed_dim=m.embed_dim,
        depth=len(m.blocks),
        num_heads=b.attn.num_heads,
        mlp_ratio=b.mlp.fc1.out_features / m.embed_dim,
        qkv_bias=b.attn.qkv.bias is not None,
        class_token=m.cls_token is not None,
        distilled=getattr(m, "dist_token", None) is not None,
        reg_tokens=m.num_reg_tokens,
        no_embed_class=m.no_embed_class,
        init_values=ls.init_values if isinstance(ls, LayerScale) else None,
        pre_norm=not isinstance(m.norm_pre, nn.Identity),
        layer_norm_eps=b.norm1.eps,
        act_layer=ACTIVATIONS[type(b.mlp.act).__name__],
        global_pool=m.global_pool,
        fc_norm=not isinstance(m.fc_norm, nn.Identity),
        num_classes=m.num_classes,
    )


def main():
    names = sorted(set(timm.list_models(module="vision_transformer"))
                   | set(timm.list_models(module="deit")))
    table = {"timm": timm.__version__, "built": {}, "refused": {}}
    for name in names:
        with torch.device("meta"):
            m = timm.create_model(name)
        why = refusal(m)
        if why is None:
            table["built"][name] = built(m)
        else:
            table["refused"][name] = why
    # One architecture a line, so a new timm's changes read as a diff.
    lines = ["{", f'  "timm": {json.dumps(table["timm"])},']
    for key in ("built", "refused"):
        entries = [f"    {json.dumps(n)}: {json.dumps(v)}" for n, v in table[key].items()]
        lines += [f'  "{key}": {{', ",\n".join(entries), "  }" + ("," if key == "built" else "")]
    lines.append("}")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{len(table['built'])} built, {len(table['refused'])} refused, timm {timm.__version__}")


if __name__ == "__main__":
    main()
