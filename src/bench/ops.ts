// `weft bench ops`: the Device's elementwise operations on one GPU — the memsets, fills, box
// copies, adds and casts that strategies run between the attention kernels (src/backends/cuda/runtime/device.ts) —
// timed with CUDA events on the compute stream, as bytes moved per second and as a cost per call.
// The planner prices the strategies' Device work from these two figures (bytes and calls per rank
// counted by running the strategy code, src/plan/counts.ts; priced in src/plan/schedule.ts
// deviceOpsMs with the calibration's `deviceOps`), which were assumptions until measured here.
//
// Each operation is the Device call a strategy makes, shaped as the strategies use it: tensors
// [T, H, D] with H = 32, D = 128; a box of a quarter of the heads (Ulysses' packing over 4
// members), one head (GQA expansion, heads.ts), a converting copy (bf16 → f32 accumulators),
// f32 adds of arriving gradient sums, f32 → bf16 casts of the results. Sizes are the destination's
// bytes. A sample times `reps` back-to-back calls and divides; the per-call cost is the time of a
// 4 KiB call, back to back (the GPU's cost, the host's enqueue hidden behind it when it is shorter).
import type { CudaRuntime } from '../backends/cuda/runtime/runtime.js';
import type { CudaTensor } from '../backends/cuda/runtime/tensor.js';
import type { Box } from '../device/device.js';
import { gpuPresetByName } from '../plan/hardware.js';
import type { ElementwiseOp } from '../strategy/accounting.js';
import { bytesPerElement, type DType } from '../tensor/dtype.js';
import { type BenchRecord, fmtSize, makeRecord, summarize, writeRecords } from './record.js';

export const DEVICE_OPS = [
  'zeros',
  'full',
  'copy',
  'copy-quarter',
  'copy-head',
  'copy-convert',
  'add',
  'cast',
] as const;
export type DeviceOpName = (typeof DEVICE_OPS)[number];

/** The Device operation (the class the planner prices) each measured operation belongs to. */
const OP_CLASS: Record<DeviceOpName, ElementwiseOp> = {
  zeros: 'zeros',
  full: 'full',
  copy: 'copyBox',
  'copy-quarter': 'copyBox',
  'copy-head': 'copyBox',
  'copy-convert': 'copyBox',
  add: 'add',
  cast: 'cast',
};

export interface OpsBenchOptions {
  ops?: readonly DeviceOpName[];
  /** Destination sizes in bytes (default 1 MiB, 16 MiB, 256 MiB, 1 GiB). */
  sizes?: readonly number[];
  /** Samples per operation and size (default 10) after `warmup` untimed ones (default 2). */
  iters?: number;
  warmup?: number;
  outDir?: string | null;
  log?: (line: string) => void;
}

const H = 32,
  D = 128;
const SMALL = 4096;

interface Case {
  read: number;
  write: number;
  run(): void;
  done(): void;
}

/** One operation on tensors whose destination holds about `bytes` bytes. */
function makeCase(rt: CudaRuntime, op: DeviceOpName, bytes: number): Case {
  const dev = rt.device;
  const rowsOf = (dtype: DType, heads = H): number =>
    Math.max(1, Math.round(bytes / (heads * D * bytesPerElement(dtype))));
  const held: CudaTensor[] = [];
  const t = (dtype: DType, shape: number[]): CudaTensor => {
    const x = dev.zeros(dtype, shape);
    held.push(x);
    return x;
  };
  const done = (): void => {
    for (const x of held) x.release();
  };
  const box = (T: number, n: number): Box => ({ src: [0, 0], dst: [0, 0], size: [T, n] });
  switch (op) {
    case 'zeros':
    case 'full': {
      const n = Math.max(1, Math.round(bytes / 4)),
        w = n * 4;
      return {
        read: 0,
        write: w,
        done,
        run: () => (op === 'zeros' ? dev.zeros('f32', [n]) : dev.full('f32', [n], -Infinity)).release(),
      };
    }
    case 'copy': {
      const T = rowsOf('bf16'),
        src = t('bf16', [T, H, D]),
        dst = t('bf16', [T, H, D]),
        w = T * H * D * 2;
      return { read: w, write: w, done, run: () => dev.copyBox(src, dst, box(T, H)) };
    }
    case 'copy-quarter':
    case 'copy-head': {
      // a box of n heads out of [T, H, D] into [T, n, D]: strided rows of n·D elements
      const n = op === 'copy-head' ? 1 : H / 4,
        T = rowsOf('bf16', n),
        src = t('bf16', [T, H, D]),
        dst = t('bf16', [T, n, D]),
        w = T * n * D * 2;
      return { read: w, write: w, done, run: () => dev.copyBox(src, dst, box(T, n)) };
    }
    case 'copy-convert': {
      const T = rowsOf('f32'),
        src = t('bf16', [T, H, D]),
        dst = t('f32', [T, H, D]),
        n = T * H * D;
      return { read: 2 * n, write: 4 * n, done, run: () => dev.copyBox(src, dst, box(T, H)) };
    }
    case 'add': {
      const n = Math.max(1, Math.round(bytes / 4)),
        dst = t('f32', [n]),
        src = t('f32', [n]);
      return { read: 8 * n, write: 4 * n, done, run: () => dev.add(dst, src) };
    }
    case 'cast': {
      const n = Math.max(1, Math.round(bytes / 2)),
        src = t('f32', [n]);
      return { read: 4 * n, write: 2 * n, done, run: () => dev.cast(src, 'bf16').release() };
    }
  }
}

/** Calls per sample: enough that a sample lasts well over the event resolution. */
function repsFor(bytes: number): number {
  return bytes <= SMALL ? 200 : bytes <= 1 << 20 ? 50 : bytes <= 16 << 20 ? 10 : 2;
}

/** Least squares of time against bytes: the per-byte rate (GB/s) and the time at zero bytes (µs). */
export function fitLine(points: readonly { bytes: number; us: number }[]): { GBps: number; interceptUs: number } {
  const n = points.length,
    mx = points.reduce((s, p) => s + p.bytes, 0) / n,
    my = points.reduce((s, p) => s + p.us, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.bytes - mx) ** 2, 0),
    sxy = points.reduce((s, p) => s + (p.bytes - mx) * (p.us - my), 0);
  const slope = sxx > 0 ? sxy / sxx : my / mx; // µs per byte
  return { GBps: 1e-3 / slope, interceptUs: my - slope * mx };
}

export async function benchOps(o: OpsBenchOptions = {}): Promise<BenchRecord[]> {
  const log = o.log ?? ((l: string) => process.stdout.write(l + '\n'));
  const ops = o.ops ?? DEVICE_OPS,
    sizes = o.sizes ?? [1 << 20, 16 << 20, 256 << 20, 1 << 30];
  const iters = o.iters ?? 10,
    warmup = o.warmup ?? 2;
  const { openCuda } = await import('../backends/cuda/runtime/runtime.js'); // CUDA code loads only when a benchmark runs
  const rt = await openCuda();
  const preset = gpuPresetByName(rt.info.name),
    peak = preset ? preset.hbmTBs * 1000 : undefined; // datasheet GB/s
  log(
    `weft bench ops on ${rt.info.name} (${rt.info.sms} SMs, driver ${rt.info.driverVersion}; HBM ${peak ?? '?'} GB/s datasheet): ${iters} samples per size`,
  );
  const t0 = rt.event(true),
    t1 = rt.event(true);
  const records: BenchRecord[] = [];
  const rows: string[] = [
    `${'op'.padEnd(13)}${'size'.padStart(9)}${'µs/call'.padStart(11)}${'GB/s'.padStart(9)}${'×HBM'.padStart(7)}${'host µs'.padStart(9)}`,
  ];
  for (const op of ops) {
    const points: { bytes: number; us: number }[] = [];
    for (const size of [SMALL, ...sizes]) {
      const c = makeCase(rt, op, size),
        reps = repsFor(size),
        moved = c.read + c.write;
      const batch = (): void => {
        for (let i = 0; i < reps; i++) c.run();
      };
      for (let i = 0; i < warmup; i++) batch();
      await rt.synchronize();
      const samples: number[] = [],
        host: number[] = [];
      for (let i = 0; i < iters; i++) {
        t0.record(rt.compute);
        const h0 = performance.now();
        batch();
        host.push(((performance.now() - h0) * 1000) / reps);
        t1.record(rt.compute);
        await rt.waitEvent(t1);
        samples.push((t1.since(t0) * 1000) / reps); // µs per call
      }
      c.done();
      const us = summarize(samples).median,
        hostUs = summarize(host).median,
        GBps = moved / (us * 1e3);
      if (size !== SMALL) points.push({ bytes: moved, us });
      rows.push(
        `${op.padEnd(13)}${fmtSize(size).padStart(9)}${us.toFixed(1).padStart(11)}${GBps.toFixed(0).padStart(9)}${(peak ? (GBps / peak).toFixed(2) : '—').padStart(7)}${hostUs.toFixed(1).padStart(9)}`,
      );
      records.push(
        makeRecord(
          'ops',
          op,
          { op, class: OP_CLASS[op], bytes: size, readBytes: c.read, writeBytes: c.write, reps },
          'us',
          samples,
          { GBps, hostUs, ...(peak ? { hbmEfficiency: GBps / peak } : {}) },
          { gpu: rt.info.name },
        ),
      );
    }
    if (points.length >= 2) {
      const fit = fitLine(points);
      rows.push(
        `${''.padEnd(13)}${'fit'.padStart(9)}${fit.interceptUs.toFixed(1).padStart(11)}${fit.GBps.toFixed(0).padStart(9)}${(peak ? (fit.GBps / peak).toFixed(2) : '—').padStart(7)}`,
      );
      records.push(
        makeRecord(
          'ops',
          `${op}-fit`,
          { op, class: OP_CLASS[op], fit: 'time = interceptUs + bytes / GBps over the sizes above 4 KiB' },
          'us',
          [fit.interceptUs],
          { GBps: fit.GBps, interceptUs: fit.interceptUs, ...(peak ? { hbmEfficiency: fit.GBps / peak } : {}) },
          { gpu: rt.info.name },
        ),
      );
    }
  }
  log(rows.join('\n'));
  if (o.outDir !== null && records.length > 0) log(`records: ${writeRecords(o.outDir ?? 'bench/results', records)}`);
  return records;
}
