"""PyTorch SDPA peer for `weft bench kernel`: times FlashAttention-2 and cuDNN through
torch.nn.functional.scaled_dot_product_attention on the same configurations, the same way
(CUDA events around each call, after warm-up), and prints one JSON line per measurement.

    python3 sdpa_peer.py '{"configs": [{"S": 8192, "H": 32, "D": 128, "mask": "causal", "pass": "fwd"}], "warmup": 3, "iters": 10}'
Inputs are random bf16 in the [T, H, D] layout viewed as [1, H, T, D] (no copies)."""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

req = json.loads(sys.argv[1])
BACKENDS = {'sdpa-flash': SDPBackend.FLASH_ATTENTION, 'sdpa-cudnn': SDPBackend.CUDNN_ATTENTION}
dev = torch.device('cuda')
print(json.dumps({'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(), 'gpu': torch.cuda.get_device_name()}),
      flush=True)

for c in req['configs']:
    S, H, D, causal, pas = c['S'], c['H'], c['D'], c['mask'] == 'causal', c['pass']
    warmup, iters = c.get('warmup', req.get('warmup', 3)), c.get('iters', req.get('iters', 10))
    g = torch.Generator(device=dev).manual_seed(5)
    mk = lambda: torch.randn(S, H, D, device=dev, generator=g, dtype=torch.bfloat16).permute(1, 0, 2)[None]  # noqa: E731
    q, k, v, do = mk(), mk(), mk(), mk()
    for name, backend in BACKENDS.items():
        try:
            if pas == 'fwd':
                def run():
                    with sdpa_kernel([backend]):
                        F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            else:
                ql, kl, vl = (x.detach().requires_grad_() for x in (q, k, v))

                def run():
                    for x in (ql, kl, vl):
                        x.grad = None
                    with sdpa_kernel([backend]):
                        o = F.scaled_dot_product_attention(ql, kl, vl, is_causal=causal)
                    o.backward(do)
            for _ in range(warmup):
                run()
            torch.cuda.synchronize()
            ms = []
            for _ in range(iters):
                e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                e0.record()
                run()
                e1.record()
                e1.synchronize()
                ms.append(e0.elapsed_time(e1))
            print(json.dumps({**c, 'name': name, 'samples': ms}), flush=True)
        except Exception as e:  # noqa: BLE001
            print(json.dumps({**c, 'name': name, 'error': str(e)[:300]}), flush=True)
    del q, k, v, do
    torch.cuda.empty_cache()
