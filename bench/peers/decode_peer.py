"""PyTorch peers for `weft bench decode`: one decode step — B sequences, T new query tokens each,
attending to P cached + T new keys (causal, aligned at the bottom right) — through
scaled_dot_product_attention's FlashAttention-2 and cuDNN backends and FlexAttention, timed like
weft (CUDA events around `reps` back-to-back calls after warm-up and one untimed lead call, divided
by reps). One JSON line per measurement, or per peer
that cannot run with the reason.

    python3 decode_peer.py '{"configs": [{"B": 1, "P": 131072, "T": 1, "H": 32, "Hkv": 8, "D": 128,
                                          "flex": true, "warmup": 3, "iters": 20}]}'

Layouts: q [B, H, T, D], k/v [B, Hkv, P + T, D], bf16. GQA through enable_gqa where the backend
takes it; a backend that does not is tried on K/V expanded to H heads beforehand (untimed; the
bytes reported stay those of the Hkv-head cache) and says so in "form". T > 1: FlashAttention-2
gets the lower-right causal bias (torch.nn.attention.bias.causal_lower_right, which it runs
natively), cuDNN an explicit boolean mask (the bias object would dispatch around the backend
choice)."""
import gc
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

req = json.loads(sys.argv[1])
dev = torch.device('cuda')
print(json.dumps({'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(), 'gpu': torch.cuda.get_device_name()}),
      flush=True)
BACKENDS = {'sdpa-flash': SDPBackend.FLASH_ATTENTION, 'sdpa-cudnn': SDPBackend.CUDNN_ATTENTION}


def timed(fn, warmup, iters, reps):
    for _ in range(warmup * reps):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(iters):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        fn()  # a lead call: the GPU runs it while the timed ones are enqueued
        e0.record()
        for _ in range(reps):
            fn()
        e1.record()
        e1.synchronize()
        ms.append(e0.elapsed_time(e1) / reps)
    return ms


def short(e):
    text = ' '.join(str(e).split())
    return text if len(text) <= 400 else text[:150] + ' … ' + text[-250:]  # the last line names the cause



for c in req['configs']:
    B, P, T, H, Hkv, D = c['B'], c['P'], c['T'], c['H'], c['Hkv'], c['D']
    warmup, iters, reps = c.get('warmup', 3), c.get('iters', 20), c.get('reps', 1)
    S = P + T
    key = {'B': B, 'P': P, 'T': T}
    try:
        g = torch.Generator(device=dev).manual_seed(5)
        q = torch.randn(B, H, T, D, device=dev, generator=g, dtype=torch.bfloat16)
        k = torch.randn(B, Hkv, S, D, device=dev, generator=g, dtype=torch.bfloat16)
        v = torch.randn(B, Hkv, S, D, device=dev, generator=g, dtype=torch.bfloat16)
    except torch.OutOfMemoryError as e:
        for name in [*BACKENDS, 'flex']:
            print(json.dumps({**key, 'name': name, 'error': 'out of memory for the inputs: ' + short(e)}), flush=True)
        continue
    def mask_for(name):
        if T == 1:
            return 'no mask', None
        if name == 'sdpa-flash':
            from torch.nn.attention.bias import causal_lower_right
            return 'causal_lower_right', causal_lower_right(T, S)
        return 'bool mask', torch.ones(T, S, dtype=torch.bool, device=dev).tril(S - T)
    for name, backend in BACKENDS.items():
        errors = []
        done = False
        for gqa in (True, False):
            if done:
                break
            try:
                kk, vv = (k, v) if gqa else (k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1))
            except torch.OutOfMemoryError as e:
                errors.append('expanded K/V: out of memory')
                break
            try:
                form, mask = mask_for(name)

                def run():
                    with sdpa_kernel([backend]):
                        F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, enable_gqa=gqa)
                ms = timed(run, warmup, iters, reps)
                print(json.dumps({**key, 'name': name, 'samples': ms, 'form': f'{form}, {"enable_gqa" if gqa else "K/V expanded to H heads"}'}), flush=True)
                done = True
            except Exception as e:  # noqa: BLE001
                errors.append(f'{"enable_gqa" if gqa else "expanded K/V"}: {short(e)}')
            del kk, vv
            torch.cuda.empty_cache()
        if not done:
            print(json.dumps({**key, 'name': name, 'error': ' | '.join(errors)[:600]}), flush=True)
    if c.get('flex'):
        try:
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention
            # a fresh compile per shape: past dynamo's recompile limit (8) it would fall back to eager
            torch._dynamo.reset()
            flex_compiled = torch.compile(flex_attention, dynamic=False)
            off = P

            def causal(b, h, qi, ki):
                return ki <= qi + off
            bm = create_block_mask(causal, B, None, T, S, device='cuda')
            ms = timed(lambda: flex_compiled(q, k, v, block_mask=bm, enable_gqa=True), warmup, iters, reps)
            print(json.dumps({**key, 'name': 'flex', 'samples': ms, 'form': 'compiled, block mask, enable_gqa'}), flush=True)
        except Exception as e:  # noqa: BLE001
            print(json.dumps({**key, 'name': 'flex', 'error': short(e)}), flush=True)
    else:
        print(json.dumps({**key, 'name': 'flex', 'error': 'not asked for at this context (--flex-contexts)'}), flush=True)
    del q, k, v
    # a failed compile's traceback holds the inputs in reference cycles: free them before the next shape
    torch._dynamo.reset()
    gc.collect()
    torch.cuda.empty_cache()
