// `weft bench comm`: send/recv, all-to-all and all-gather bandwidth across the GPUs of a
// `weft launch` job, through weft's NcclComm, then through PyTorch (torch.distributed with
// NCCL, bench/peers/comm_torch.py) in the same invocation, timed the same way: CUDA events on
// the compute stream between consecutive operations, after warm-up; medians reported.
// Bandwidths follow nccl-tests: algbw = bytes / time; busbw = algbw for send/recv and
// algbw·(n−1)/n for all-to-all and all-gather, where bytes is the per-rank buffer size
// (send/recv: bytes sent to the next rank; all-to-all: the whole send buffer; all-gather: the
// gathered output).
import type { Work } from '../comm/comm.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import { ncclVersionString } from '../backends/cuda/nccl/bindings.js';
import { ncclWorld, type World } from '../backends/cuda/nccl/world.js';
import { bytesPerElement } from '../tensor/dtype.js';
import { peerScript, runPeer } from './peer.js';
import { type BenchRecord, fmtSize, makeRecord, summarize, writeRecords } from './record.js';

export type CommOp = 'sendrecv' | 'alltoall' | 'allgather';
const COMM_OPS: readonly CommOp[] = ['sendrecv', 'alltoall', 'allgather'];

export interface CommBenchOptions {
  /** Default: all three. */
  ops?: readonly CommOp[];
  /** Per-rank buffer sizes in bytes (see above); default 1 MiB, 16 MiB, 256 MiB, 1 GiB. */
  sizes?: readonly number[];
  /** Element type moved (default bf16; the bandwidth does not depend on it). */
  dtype?: 'bf16' | 'f32';
  /** Timed operations per size (default 20) after `warmup` untimed ones (default 5). */
  iters?: number;
  warmup?: number;
  /** Also run PyTorch's collectives for comparison (default true). */
  torch?: boolean;
  /** Python with torch (default 'python3'). */
  python?: string;
  /** Where rank 0 writes the records (default 'bench/results'); null: do not write. */
  outDir?: string | null;
  /** Use a blocking NCCL communicator (see NcclOptions.blocking); default non-blocking. */
  blocking?: boolean;
  /** Print progress and the final table (rank 0; default process.stdout). */
  log?: (line: string) => void;
}

const DEFAULT_SIZES = [1 << 20, 16 << 20, 256 << 20, 1 << 30];

interface Measured {
  op: CommOp;
  bytes: number;
  samples: number[];
}

function busFactor(op: CommOp, n: number): number {
  return op === 'sendrecv' ? 1 : (n - 1) / n;
}

function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e-3) / 1e9;
}

/** Round a size down so that it splits evenly into `n` chunks of whole elements. */
function fit(bytes: number, n: number, esz: number): number {
  const unit = n * esz;
  return Math.max(unit, Math.floor(bytes / unit) * unit);
}

async function measureWeft(
  w: World,
  op: CommOp,
  bytes: number,
  dtype: 'bf16' | 'f32',
  iters: number,
  warmup: number,
): Promise<number[]> {
  const { rt, comm } = w;
  const n = comm.size,
    r = comm.rank,
    esz = bytesPerElement(dtype);
  const dev = rt.device;
  const elems = bytes / esz;
  let run: () => Work;
  const owned: CudaTensor[] = [];
  const take = (t: CudaTensor): CudaTensor => {
    owned.push(t);
    return t;
  };
  if (op === 'sendrecv') {
    const send = take(dev.full(dtype, [elems], r + 1)),
      recv = take(dev.empty(dtype, [elems]));
    run = () => comm.sendRecv([{ send: { buf: send, peer: (r + 1) % n }, recv: { buf: recv, peer: (r - 1 + n) % n } }]);
  } else if (op === 'alltoall') {
    const send = take(dev.full(dtype, [elems], r + 1)),
      recv = take(dev.empty(dtype, [elems]));
    const m = elems / n;
    const s = Array.from({ length: n }, (_, j) => send.view(j * m, [m])),
      d = Array.from({ length: n }, (_, j) => recv.view(j * m, [m]));
    run = () => comm.allToAll(s, d);
  } else {
    const send = take(dev.full(dtype, [elems / n], r + 1)),
      recv = take(dev.empty(dtype, [elems]));
    run = () => comm.allGather(send, recv);
  }
  for (let i = 0; i < warmup; i++) await run().wait();
  await comm.barrier();
  const evs = Array.from({ length: iters + 1 }, () => rt.event(true));
  evs[0]!.record(rt.compute);
  for (let i = 0; i < iters; i++) {
    await run().wait();
    evs[i + 1]!.record(rt.compute);
  }
  await rt.waitEvent(evs[iters]!);
  const samples = evs.slice(1).map((e, i) => e.since(evs[i]!));
  for (const e of evs) e.destroy();
  await comm.barrier();
  for (const t of owned) t.release();
  return samples;
}

interface TorchOutput {
  torch: string;
  nccl: string;
  results: { op: CommOp; bytes: number; samples_ms: number[] }[];
}

async function runTorch(
  w: World,
  o: Required<Pick<CommBenchOptions, 'python' | 'dtype' | 'iters' | 'warmup'>>,
  ops: readonly CommOp[],
  sizes: readonly number[],
): Promise<TorchOutput> {
  const script = peerScript('comm_torch.py');
  const args = [
    '--ops',
    ops.join(','),
    '--sizes',
    sizes.join(','),
    '--dtype',
    o.dtype,
    '--iters',
    String(o.iters),
    '--warmup',
    String(o.warmup),
  ];
  const lines = await runPeer<TorchOutput>(w.store, w.dist.rank, 'comm', o.python, script, args);
  if (!lines.length && w.dist.rank === 0) throw new Error(`the PyTorch peer (${o.python} ${script}) printed no result`);
  return lines[0]!;
}

/** Run under `weft launch -n N`; every rank calls it; rank 0 returns (and writes) the records. */
export async function benchComm(options: CommBenchOptions = {}): Promise<BenchRecord[]> {
  const ops = options.ops ?? COMM_OPS;
  for (const op of ops)
    if (!COMM_OPS.includes(op)) throw new Error(`unknown comm op '${op}' (expected ${COMM_OPS.join(', ')})`);
  const dtype = options.dtype ?? 'bf16';
  const iters = options.iters ?? 20,
    warmup = options.warmup ?? 5;
  const log = options.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const w = await ncclWorld({ blocking: options.blocking ?? false });
  const mode = options.blocking ? 'blocking' : 'nonblocking';
  const n = w.comm.size,
    esz = bytesPerElement(dtype);
  if (n < 2) throw new Error('weft bench comm needs at least 2 ranks (weft launch -n 2 -- bench comm)');
  const sizes = (options.sizes ?? DEFAULT_SIZES).map((b) => fit(b, n, esz));
  const lead = w.dist.rank === 0;
  const say = (l: string): void => {
    if (lead) log(l);
  };
  say(
    `weft bench comm: ${n} ranks, ${w.rt.info.name}, NCCL ${ncclVersionString(w.nccl.version)} (${mode} communicator), ${dtype}, ${iters} iterations after ${warmup} warm-up`,
  );

  const weft: Measured[] = [];
  for (const op of ops)
    for (const bytes of sizes) {
      const samples = await measureWeft(w, op, bytes, dtype, iters, warmup);
      weft.push({ op, bytes, samples });
      say(
        `  weft  ${op.padEnd(9)} ${fmtSize(bytes).padStart(8)}  ${(gbps(bytes, summarize(samples).median) * busFactor(op, n)).toFixed(1)} GB/s bus`,
      );
    }
  await w.comm.barrier();
  w.rt.allocator.emptyCache(); // leave the memory to the PyTorch peer

  let torch: TorchOutput | undefined;
  let torchError: unknown;
  if (options.torch ?? true) {
    try {
      torch = await runTorch(w, { python: options.python ?? 'python3', dtype, iters, warmup }, ops, sizes);
    } catch (e) {
      // keep weft's own figures; the failure is reported (and rethrown) after they are written
      torchError = e;
      process.stderr.write(`weft bench comm: ${e instanceof Error ? e.message.split('\n')[0] : e}\n`);
    }
    for (const t of torch?.results ?? [])
      say(
        `  torch ${t.op.padEnd(9)} ${fmtSize(t.bytes).padStart(8)}  ${(gbps(t.bytes, summarize(t.samples_ms).median) * busFactor(t.op, n)).toFixed(1)} GB/s bus`,
      );
  }
  await w.comm.destroy();
  w.store.close();
  if (!lead) {
    if (torchError) throw torchError;
    return [];
  }

  const records: BenchRecord[] = [];
  const rows: string[][] = [['op', 'size', 'weft busbw GB/s', 'torch busbw GB/s', 'weft/torch']];
  for (const m of weft) {
    const config = { op: m.op, bytes: m.bytes, ranks: n, dtype, iters, warmup, communicator: mode };
    const med = summarize(m.samples).median;
    const bus = gbps(m.bytes, med) * busFactor(m.op, n);
    const t = torch?.results.find((x) => x.op === m.op && x.bytes === m.bytes);
    const tBus = t ? gbps(t.bytes, summarize(t.samples_ms).median) * busFactor(t.op, n) : undefined;
    const derived: Record<string, number> = { algGBps: gbps(m.bytes, med), busGBps: bus };
    if (tBus) derived.vsTorch = bus / tBus;
    records.push(
      makeRecord('comm', `weft-nccl${options.blocking ? '-blocking' : ''}-${m.op}`, config, 'ms', m.samples, derived, {
        nccl: ncclVersionString(w.nccl.version),
        gpu: w.rt.info.name,
      }),
    );
    if (t && tBus)
      records.push(
        makeRecord(
          'comm',
          `torch-nccl-${m.op}`,
          config,
          'ms',
          t.samples_ms,
          { algGBps: gbps(t.bytes, summarize(t.samples_ms).median), busGBps: tBus },
          { torch: torch!.torch, nccl: torch!.nccl, gpu: w.rt.info.name },
        ),
      );
    rows.push([
      m.op,
      fmtSize(m.bytes),
      bus.toFixed(1),
      tBus ? tBus.toFixed(1) : '-',
      tBus ? (bus / tBus).toFixed(3) : '-',
    ]);
  }
  if (options.outDir !== null) say(`records: ${writeRecords(options.outDir ?? 'bench/results', records)}`);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) say(r.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  if (torchError) throw torchError;
  return records;
}
