"""PyTorch peers for `weft bench kernel`: times FlashAttention-2 and cuDNN through
torch.nn.functional.scaled_dot_product_attention, and FlexAttention (torch.compile'd
flex_attention with a block mask), on the same configurations, the same way (CUDA events around
each call, after warm-up), and prints one JSON line per measurement or per peer that cannot run
(with the reason).

    python3 sdpa_peer.py '{"configs": [{"S": 8192, "H": 32, "D": 128, "dtype": "bf16", "mask": "causal",
                                        "kind": "causal", "slices": [[0, 8192, 0, 8192, -1, 0]], "pass": "fwd",
                                        "peers": ["sdpa-flash", "sdpa-cudnn", "flex"]}]}'

`kind` is 'causal', 'full' or 'other'; SDPA's fused backends take only the first two. `slices` is the
mask lowered by weft's mask language: [q0, q1, k0, k1, left, right] per slice, −1 for an unbounded
side; key j is visible to query i when some slice holds both and, with the slice's bottom-right
diagonal d = k0 + (i − q0) + (k1 − k0) − (q1 − q0), d − left ≤ j ≤ d + right. FlexAttention gets
exactly that predicate as its mask_mod. Inputs are random, in the [T, H, D] layout viewed as
[1, H, T, D] (no copies)."""
import json
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

req = json.loads(sys.argv[1])
SDPA = {'sdpa-flash': SDPBackend.FLASH_ATTENTION, 'sdpa-cudnn': SDPBackend.CUDNN_ATTENTION}
DTYPES = {'bf16': torch.bfloat16, 'f16': torch.float16}
dev = torch.device('cuda')
print(json.dumps({'torch': torch.__version__, 'cudnn': torch.backends.cudnn.version(), 'gpu': torch.cuda.get_device_name()}),
      flush=True)

try:
    from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    FLEX = torch.compile(flex_attention)
    FLEX_MISSING = None
except Exception as e:  # noqa: BLE001
    FLEX, FLEX_MISSING = None, f'FlexAttention is not available in torch {torch.__version__}: {e}'


def mask_mod_of(slices):
    """weft's mask (lowered slices) as a FlexAttention mask_mod"""
    def mask_mod(b, h, q, kv):
        ok = None
        for q0, q1, k0, k1, left, right in slices:
            c = (q >= q0) & (q < q1) & (kv >= k0) & (kv < k1)
            d = q + (k0 - q0 + (k1 - k0) - (q1 - q0))
            if left >= 0:
                c = c & (kv >= d - left)
            if right >= 0:
                c = c & (kv <= d + right)
            ok = c if ok is None else ok | c
        return ok if ok is not None else q < 0
    return mask_mod


def timed(run, warmup, iters):
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
    return ms


def attention_fn(name, c):
    """(q, k, v) -> out for one peer, or a string saying why it cannot run this configuration"""
    if name in SDPA:
        if c['kind'] not in ('causal', 'full'):
            return f"SDPA's fused backends take only causal or full masks, not {c['mask']}"
        causal = c['kind'] == 'causal'

        def sdpa(q, k, v):
            with sdpa_kernel([SDPA[name]]):
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        return sdpa
    if name == 'flex':
        if FLEX is None:
            return FLEX_MISSING
        S = c['S']
        block_mask = create_block_mask(mask_mod_of(c['slices']), B=None, H=None, Q_LEN=S, KV_LEN=S, device=dev)
        return lambda q, k, v: FLEX(q, k, v, block_mask=block_mask)
    return f'unknown peer {name}'


for c in req['configs']:
    S, H, D, pas = c['S'], c['H'], c['D'], c['pass']
    warmup, iters = c.get('warmup', req.get('warmup', 3)), c.get('iters', req.get('iters', 10))
    dtype = DTYPES[c.get('dtype', 'bf16')]
    g = torch.Generator(device=dev).manual_seed(5)
    mk = lambda: torch.randn(S, H, D, device=dev, generator=g, dtype=dtype).permute(1, 0, 2)[None]  # noqa: E731
    q, k, v, do = mk(), mk(), mk(), mk()
    for name in c.get('peers', list(SDPA)):
        try:
            fn = attention_fn(name, c)
            if isinstance(fn, str):
                print(json.dumps({**c, 'name': name, 'error': fn}), flush=True)
                continue
            if pas == 'fwd':
                def run():
                    fn(q, k, v)
            else:
                ql, kl, vl = (x.detach().requires_grad_() for x in (q, k, v))

                def run():
                    for x in (ql, kl, vl):
                        x.grad = None
                    fn(ql, kl, vl).backward(do)
            print(json.dumps({**c, 'name': name, 'samples': timed(run, warmup, iters)}), flush=True)
        except Exception as e:  # noqa: BLE001
            print(json.dumps({**c, 'name': name, 'error': f'{type(e).__name__}: {str(e)[:300]}'}), flush=True)
    del q, k, v, do
    torch.cuda.empty_cache()
