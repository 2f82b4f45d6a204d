"""PyTorch peer of `weft bench comm`: the same collectives through torch.distributed and NCCL,
timed the same way (CUDA events on the current stream around each operation, after warm-up).

Started by each weft rank with torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK,
MASTER_ADDR, MASTER_PORT). Prints one line 'RESULT <json>' on stdout.
"""
import argparse
import datetime
import json
import os

import torch
import torch.distributed as dist


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ops", required=True)
    p.add_argument("--sizes", required=True, help="comma-separated byte counts")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "f32"])
    p.add_argument("--iters", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    a = p.parse_args()

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local = int(os.environ.get("LOCAL_RANK", rank))
    torch.cuda.set_device(local)
    dev = torch.device("cuda", local)
    dist.init_process_group("nccl", device_id=dev, timeout=datetime.timedelta(seconds=int(os.environ.get("WEFT_PEER_TIMEOUT", "300"))))
    dt = {"bf16": torch.bfloat16, "f32": torch.float32}[a.dtype]
    esz = torch.tensor([], dtype=dt).element_size()

    results = []
    for op in a.ops.split(","):
        for size in (int(s) for s in a.sizes.split(",")):
            n = size // esz
            nxt, prv = (rank + 1) % world, (rank - 1) % world
            if op == "sendrecv":
                send = torch.full((n,), rank + 1, dtype=dt, device=dev)
                recv = torch.empty_like(send)

                def run():
                    for r in dist.batch_isend_irecv([dist.P2POp(dist.isend, send, nxt), dist.P2POp(dist.irecv, recv, prv)]):
                        r.wait()
            elif op == "alltoall":
                send = torch.full((n,), rank + 1, dtype=dt, device=dev)
                recv = torch.empty_like(send)

                def run():
                    dist.all_to_all_single(recv, send)
            elif op == "allgather":
                send = torch.full((n // world,), rank + 1, dtype=dt, device=dev)
                recv = torch.empty((n // world) * world, dtype=dt, device=dev)

                def run():
                    dist.all_gather_into_tensor(recv, send)
            else:
                raise SystemExit(f"unknown op {op}")
            for _ in range(a.warmup):
                run()
            dist.barrier()
            torch.cuda.synchronize()
            evs = [torch.cuda.Event(enable_timing=True) for _ in range(a.iters + 1)]
            evs[0].record()
            for i in range(a.iters):
                run()
                evs[i + 1].record()
            torch.cuda.synchronize()
            results.append({"op": op, "bytes": size, "samples_ms": [evs[i].elapsed_time(evs[i + 1]) for i in range(a.iters)]})
            del send, recv
    nccl = torch.cuda.nccl.version()
    print("RESULT " + json.dumps({"torch": torch.__version__, "nccl": ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl), "results": results}), flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
