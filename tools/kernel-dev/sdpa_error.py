"""PyTorch SDPA's error against an f64 reference on given inputs: the bar of the GPU tests' rule
"weft's error ≤ 2 × SDPA's". Reads raw little-endian files written by the test:
    python3 sdpa_error.py DIR Tq Tk H Hkv D dtype
DIR/q.bin [Tq,H,D], k.bin, v.bin [Tk,Hkv,D] (16-bit), mask.bin [Tq,Tk] uint8 (1 = visible).
Prints one JSON line: {"sdpa": relative Frobenius error of out over rows that see something,
"backend": the one that ran}."""
import json
import sys

import numpy as np
import torch
import torch.nn.functional as F

d, Tq, Tk, H, Hkv, D, dt = sys.argv[1], *map(int, sys.argv[2:7]), sys.argv[7]
tdt = torch.bfloat16 if dt == 'bf16' else torch.float16
dev = torch.device('cuda')


def load(name, shape):
    raw = np.fromfile(f'{d}/{name}.bin', dtype=np.uint16).reshape(shape)
    return torch.from_numpy(raw.astype(np.int16)).view(tdt).to(dev)


q, k, v = load('q', (Tq, H, D)), load('k', (Tk, Hkv, D)), load('v', (Tk, Hkv, D))
mask = torch.from_numpy(np.fromfile(f'{d}/mask.bin', dtype=np.uint8).reshape(Tq, Tk).astype(bool)).to(dev)
live = mask.any(dim=1)
G = H // Hkv
qh, kh, vh = q.permute(1, 0, 2)[None], k.permute(1, 0, 2)[None], v.permute(1, 0, 2)[None]
out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask[None, None], enable_gqa=True)
ref = F.scaled_dot_product_attention(qh.double(), kh.double().repeat_interleave(G, 1), vh.double().repeat_interleave(G, 1),
                                     attn_mask=mask[None, None])
o, r = out[0].permute(1, 0, 2)[live].double(), ref[0].permute(1, 0, 2)[live]
err = (torch.linalg.norm(o - r) / torch.linalg.norm(r)).item()
print(json.dumps({'sdpa': err}))
