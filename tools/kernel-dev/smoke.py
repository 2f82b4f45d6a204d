"""One small run of one kernel from a cubin, in its own process, so a fault or a hang cannot take
the harness down: exit 0 when it ran and its result is finite.

    python3 smoke.py CUBIN KERNEL [D] [STAGES]   (KERNEL: weft_fwd | weft_fwd_sync | weft_bwd)
Also the small case run under compute-sanitizer."""
import math
import sys

import torch

import attn
import masks

cubin_path, kern = sys.argv[1], sys.argv[2]
d = int(sys.argv[3]) if len(sys.argv) > 3 else 128
stages = int(sys.argv[4]) if len(sys.argv) > 4 else 3
dev = torch.device('cuda')
torch.zeros(1, device=dev)
var = attn.Variant(open(cubin_path, 'rb').read(), d, False, 1, stages)
ok = True
for (Tq, S, qpos, kpos) in ((1537, 1537, torch.arange(1537, device=dev), torch.arange(1537, device=dev)),
                            (1024, 4096, masks.zigzag_positions(4096, 4, 1, dev), masks.zigzag_positions(4096, 4, 2, dev))):
    Tk = len(kpos)
    q = torch.randn(Tq, 2, d, device=dev).bfloat16()
    k = torch.randn(Tk, 2, d, device=dev).bfloat16()
    v = torch.randn(Tk, 2, d, device=dev).bfloat16()
    lo, hi = masks.intervals('causal', qpos, S)
    view = attn.View(lo, hi, kpos)
    out = torch.full((Tq, 2, d), float('nan'), device=dev)
    lse = torch.full((2, Tq), float('nan'), device=dev)
    fk = kern if kern != 'weft_bwd' else 'weft_fwd'
    attn.forward(var, q, k, v, view, 1 / math.sqrt(d), out, lse, kernel=fk)
    torch.cuda.synchronize()
    ok &= not torch.isnan(out).any().item()
    if kern == 'weft_bwd':
        dlt = torch.empty(2, Tq, device=dev)
        attn.delta(var, q, out, dlt)
        dq = torch.zeros(Tq, 2, d, device=dev)
        dk = torch.zeros(Tk, 2, d, device=dev)
        dv = torch.zeros(Tk, 2, d, device=dev)
        attn.backward(var, q, k, v, q, lse, dlt, view, 1 / math.sqrt(d), dq, dk, dv)
        torch.cuda.synchronize()
        ok &= not (torch.isnan(dq).any() or torch.isnan(dk).any() or torch.isnan(dv).any()).item()
print('smoke', kern, 'ok' if ok else 'NaN')
sys.exit(0 if ok else 1)
