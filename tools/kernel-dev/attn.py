"""Python driver of weft's attention kernels (src/backends/cuda/kernel/attn.cu) over torch tensors, for the
development harness. Mirrors what the TypeScript CudaKernel does: per mask view, build tile
summaries and block lists on the device, then launch the forward or backward."""
import ctypes
import torch

import cudrv
from cudrv import F, I, L, P, launch

FWD_THREADS = {'weft_fwd': 384, 'weft_fwd_sync': 256}


def fwd_smem(d, stages, kernel):
    tile = 128 * d * 2
    if kernel == 'weft_fwd_sync':
        return 1024 + 5 * tile
    return 1024 + (1 + 2 * stages) * tile + 8 * (1 + 4 * stages)


def bwd_smem(d):
    """the most any build needs: D = 64 with WEFT_DQ_SPLIT=0 stages two dQ partials per buffer"""
    return 1024 + 2 * (128 * d * 2) + 4 * (64 * d * 2) + 128 * 128 + 2 * (1 if d == 128 else 2) * 64 * (d * 4 + 32) + 1024 + 64


class Variant:
    """One compiled configuration (head dim, dtype, mask slots, stages)."""

    def __init__(self, cubin, d, f16, m, stages, log=''):
        self.mod = cudrv.Module(cubin)
        self.d, self.f16, self.m, self.stages, self.log = d, f16, m, stages, log

    def fn(self, name, smem=0):
        return self.mod.fn(name, smem)


class View:
    """A mask view on the device: per-row intervals [Tq, m] (lo, hi) and key positions [Tk]."""

    def __init__(self, qlo, qhi, kpos):
        self.qlo = qlo.to(torch.int32).contiguous()
        self.qhi = qhi.to(torch.int32).contiguous()
        self.kpos = kpos.to(torch.int32).contiguous()
        self.Tq, self.m = self.qlo.shape
        self.Tk = self.kpos.shape[0]
        self.lists = {}


def tile_lists(var, view, qtile, by_key):
    """(list, count, stride) for the forward (by_key False, q tiles of 128) or backward (by key, q tiles of 64)."""
    key = (qtile, by_key)
    if key in view.lists:
        return view.lists[key]
    dev = view.qlo.device
    nq = (view.Tq + qtile - 1) // qtile
    nk = (view.Tk + 127) // 128
    qsum = torch.empty((nq, var.m, 4), dtype=torch.int32, device=dev)
    ksum = torch.empty((nk, 4), dtype=torch.int32, device=dev)
    launch(var.fn('weft_mask_qsum'), (nq,), 256, [P(view.qlo), P(view.qhi), I(view.Tq), I(qtile), P(qsum)])
    launch(var.fn('weft_mask_ksum'), ((nk + 127) // 128,), 128, [P(view.kpos), I(view.Tk), I(128), I(nk), P(ksum)])
    rows, stride = (nk, nq) if by_key else (nq, nk)
    lst = torch.empty((rows, stride), dtype=torch.int32, device=dev)
    cnt = torch.empty((rows,), dtype=torch.int32, device=dev)
    launch(var.fn('weft_mask_list'), (rows,), 256, [P(qsum), P(ksum), I(nq), I(nk), I(int(by_key)), P(lst), P(cnt)])
    view.lists[key] = (lst, cnt, stride)
    return view.lists[key]


def forward(var, q, k, v, view, scale, out, lse, merge=False, kernel='weft_fwd', cache=True):
    """out [Tq,H,D] f32, lse [H,Tq] f32 written (or merged into when merge)."""
    Tq, H, D = q.shape
    Tk, Hkv, _ = k.shape
    if not cache:
        view.lists.clear()
    lst, cnt, stride = tile_lists(var, view, 128, False)
    nq = (Tq + 127) // 128
    smem = fwd_smem(D, var.stages, kernel)
    launch(var.fn(kernel, smem), (nq, H), FWD_THREADS[kernel],
           [P(q), P(k), P(v), P(out), P(lse), P(view.qlo), P(view.qhi), P(view.kpos), P(lst), P(cnt), I(Tq), I(Tk), I(H),
            I(Hkv), I(stride), F(scale), I(int(merge))], smem)


def delta(var, dout, out, d_out):
    T, H, D = dout.shape
    rows = T * H
    launch(var.fn('weft_attn_delta'), ((rows + 7) // 8,), 256,
           [P(dout), P(out), I(int(out.dtype == torch.float32)), I(T), I(H), P(d_out)])


def backward(var, q, k, v, dout, lse, dlt, view, scale, dq, dk, dv, cache=True):
    """dq, dk, dv (f32) accumulate; dlt = delta [H,Tq] from delta()."""
    Tq, H, D = q.shape
    Tk, Hkv, _ = k.shape
    if not cache:
        view.lists.clear()
    lst, cnt, stride = tile_lists(var, view, 64, True)
    nk = (Tk + 127) // 128
    smem = bwd_smem(D)
    launch(var.fn('weft_bwd', smem), (nk, H), 384,
           [P(q), P(k), P(v), P(dout), P(lse), P(dlt), P(dq), P(dk), P(dv), P(view.qlo), P(view.qhi), P(view.kpos), P(lst),
            P(cnt), I(Tq), I(Tk), I(H), I(Hkv), I(stride), F(scale), L(D), L(H * D)], smem)


def merge_states(var, out, lse, out_b, lse_b):
    T, H, D = out.shape
    launch(var.fn('weft_attn_merge'), ((T * H + 7) // 8,), 256, [P(out), P(lse), P(out_b), P(lse_b), I(T), I(H)])
