# dev: cuDNN and FA2 at T=1 on the bench's [B,Hkv,S,D] layout and on weft's [B,S,Hkv,D] (strided view)
import json, sys, torch, torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
dev = torch.device('cuda')
H, Hkv, D = 32, 8, 128
res = []
for cell in sys.argv[1].split(','):
    B, P, T = map(int, cell.split('x'))
    S = P + T
    byts = B * S * Hkv * D * 4
    reps = max(1, min(64, round(1e-3 / (byts / 4e12))))
    q = torch.randn(B, H, T, D, device=dev, dtype=torch.bfloat16)
    for lay in ('bhsd', 'bshd'):
        if lay == 'bhsd':
            k = torch.randn(B, Hkv, S, D, device=dev, dtype=torch.bfloat16); v = torch.randn_like(k)
        else:
            k = torch.randn(B, S, Hkv, D, device=dev, dtype=torch.bfloat16).transpose(1, 2); v = torch.randn(B, S, Hkv, D, device=dev, dtype=torch.bfloat16).transpose(1, 2)
        mask = None if T == 1 else torch.ones(T, S, dtype=torch.bool, device=dev).tril(S - T)
        for name, be in (('cudnn', SDPBackend.CUDNN_ATTENTION), ('fa2', SDPBackend.FLASH_ATTENTION)):
            try:
                def fn():
                    with sdpa_kernel([be]):
                        F.scaled_dot_product_attention(q, k, v, attn_mask=(mask if name == 'cudnn' else None), is_causal=False, enable_gqa=True)
                for _ in range(3 * reps): fn()
                torch.cuda.synchronize()
                ms = []
                for _ in range(10):
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    fn(); e0.record()
                    for _ in range(reps): fn()
                    e1.record(); e1.synchronize(); ms.append(e0.elapsed_time(e1) / reps)
                ms.sort(); m = ms[5]
                r = {'cell': cell, 'layout': lay, 'peer': name, 'us': m * 1e3, 'TBps': byts / (m * 1e-3) / 1e12}
            except Exception as e:
                r = {'cell': cell, 'layout': lay, 'peer': name, 'error': str(e)[:200]}
            print(json.dumps(r), flush=True); res.append(r)
        del k, v; torch.cuda.empty_cache()
