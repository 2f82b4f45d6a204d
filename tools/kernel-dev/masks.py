"""Mask views for the harness, in weft's MaskView form: per query row up to m key intervals
[lo, hi) of global positions (padding rows: [0, 0)), per key its global position (−1 = padding).
The dense boolean mask for the reference is derived from the same intervals."""
import torch


def intervals(kind, qpos, S, **kw):
    """(lo, hi) int64 [Tq, m] for rows at global positions qpos (−1 = padding)."""
    p = qpos.clone()
    pad = p < 0
    p[pad] = 0
    if kind == 'full':
        lo, hi = torch.zeros_like(p), torch.full_like(p, S)
    elif kind == 'causal':
        lo, hi = torch.zeros_like(p), p + 1
    elif kind == 'sliding':
        lo, hi = (p - kw['left']).clamp(min=0), (p + kw['right'] + 1).clamp(max=S)
    elif kind == 'prefix':
        lo, hi = torch.zeros_like(p), torch.maximum(p + 1, torch.full_like(p, kw['prefix']))
    elif kind == 'document-causal':
        cu = torch.tensor(kw['cu'], device=p.device)
        doc = torch.searchsorted(cu, p, right=True) - 1
        lo, hi = cu[doc], p + 1
    elif kind == 'sink-window':  # two intervals: the first `sink` keys and a causal window
        lo2, hi2 = (p - kw['window'] + 1).clamp(min=0), p + 1
        lo = torch.stack([torch.zeros_like(p), lo2], 1)
        hi = torch.stack([torch.full_like(p, kw['sink']).minimum(p + 1), hi2], 1)
        lo[pad] = 0
        hi[pad] = 0
        return lo, hi
    else:
        raise ValueError(kind)
    lo, hi = lo[:, None], hi[:, None]
    lo[pad] = 0
    hi[pad] = 0
    return lo, hi


def dense(lo, hi, kpos):
    """allowed[Tq, Tk] (bool)"""
    kp = kpos[None, None, :]
    ok = (lo[:, :, None] <= kp) & (kp < hi[:, :, None]) & (kp >= 0)
    return ok.any(1)


def zigzag_positions(S, N, r, device):
    c = S // (2 * N)
    a = torch.arange(r * c, (r + 1) * c, device=device)
    b = torch.arange((2 * N - 1 - r) * c, (2 * N - r) * c, device=device)
    return torch.cat([a, b])
