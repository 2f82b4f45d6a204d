"""PyTorch peer of `weft bench cp`: PyTorch's native context parallel
(torch.distributed.tensor.experimental.context_parallel) around SDPA, load-balanced, causal,
bf16, B=1, forward+backward, timed with CUDA events after warm-up — the run weft is compared to.

Started with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
one process per GPU. With WORLD_SIZE=1 it times plain SDPA (the single-GPU baseline).
Prints one line 'RESULT <json>' per configuration on rank 0's stdout.
"""
import argparse
import datetime
import json
import os

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}


def cp_api():
    """context_parallel, set_rotate_method and the options object, wherever this torch keeps them."""
    from torch.distributed.tensor.experimental import context_parallel
    try:
        from torch.distributed.tensor.experimental._attention import _cp_options, set_rotate_method
    except ImportError:
        from torch.distributed.tensor.experimental._context_parallel._attention import _cp_options, set_rotate_method
    return context_parallel, set_rotate_method, _cp_options


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seqs", required=True, help="comma-separated global sequence lengths")
    p.add_argument("--heads", type=int, default=32)
    p.add_argument("--kv-heads", type=int, default=32)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--backend", default="cudnn", choices=sorted(BACKENDS))
    p.add_argument("--rotate", default="allgather", choices=["allgather", "alltoall"])
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    a = p.parse_args()

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", rank))
    torch.cuda.set_device(local)
    dev = torch.device("cuda", local)
    mesh = None
    if world > 1:
        dist.init_process_group("nccl", device_id=dev, timeout=datetime.timedelta(seconds=600))
        from torch.distributed.device_mesh import init_device_mesh
        mesh = init_device_mesh("cuda", (world,))
        context_parallel, set_rotate_method, options = cp_api()
        options.enable_load_balance = True
        set_rotate_method(a.rotate)
    H, Hkv, D = a.heads, a.kv_heads, a.dim
    for S in (int(s) for s in a.seqs.split(",")):
        g = torch.Generator(device=dev).manual_seed(1234)
        mk = lambda h: torch.randn(1, h, S, D, dtype=torch.bfloat16, device=dev, generator=g)
        q, k, v, dout = mk(H), mk(Hkv), mk(Hkv), mk(H)
        if Hkv != H:  # SDPA's CP path needs equal heads; repeat K/V as GQA users do
            k, v = k.repeat_interleave(H // Hkv, 1), v.repeat_interleave(H // Hkv, 1)
        ctx = context_parallel(mesh, buffers=[q, k, v, dout], buffer_seq_dims=[2, 2, 2, 2]) if mesh is not None else None
        times = []
        try:
            if ctx is not None:
                ctx.__enter__()  # shards the buffers in place (load-balanced head-tail order)
            qq, kk, vv = (t.detach().requires_grad_() for t in (q, k, v))
            with sdpa_kernel(BACKENDS[a.backend]):
                for i in range(a.warmup + a.iters):
                    t0, t1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    if world > 1:
                        dist.barrier()
                    t0.record()
                    out = F.scaled_dot_product_attention(qq, kk, vv, is_causal=True)
                    out.backward(dout)
                    t1.record()
                    torch.cuda.synchronize()
                    if i >= a.warmup:
                        times.append(t0.elapsed_time(t1))
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
        # the slowest rank's time is the step time
        t = torch.tensor(times, device=dev)
        if world > 1:
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        times = sorted(t.tolist())
        med = times[len(times) // 2]
        flops = 4 * S * S * H * D * 0.5 * 3.5  # causal counts half; fwd + bwd (2.5×)
        if rank == 0:
            print("RESULT " + json.dumps({
                "seq": S, "heads": H, "kvHeads": a.kv_heads, "dim": D, "world": world, "backend": a.backend,
                "rotate": a.rotate if world > 1 else None, "msSamples": times, "medianMs": med,
                "tflopsPerGpu": flops / world / (med * 1e-3) / 1e12,
                "torch": torch.__version__,
            }), flush=True)
        del q, k, v, dout, qq, kk, vv
        torch.cuda.empty_cache()
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
