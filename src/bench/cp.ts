// `weft bench cp`: context-parallel attention on the GPUs of a `weft launch` job — strategies ×
// sequence lengths × masks, forward+backward — beside the same kernel on one GPU (for the scaling
// efficiency) and PyTorch's native context parallel (causal only: it has no other masks with
// load balancing) in the same invocation. Records carry each rank's timeline of the last
// iteration (compute and communication spans from CUDA events).
import type { MaskSpec } from '../mask/spec.js';
import { maskName } from '../mask/spec.js';
import { attentionFlops } from '../kernel/flops.js';
import { MaskGrid } from '../mask/grid.js';
import type { Layout } from '../run/layout.js';
import { resolveLayout } from '../run/layout.js';
import { GpuRank, type GpuProblem, type RankTiming } from '../run/gpu.js';
import { predictRun, type RunLayout, type RunShape } from '../plan/predict-run.js';
import { peerScript, runPeer } from './peer.js';
import { appendRecords, type BenchRecord, makeRecord, recordFile, summarize } from './record.js';

export interface CpBenchOptions {
  seqs: readonly number[];
  layouts: readonly Layout[];
  masks: readonly { name: string; spec: (S: number) => MaskSpec }[];
  heads?: number;
  kvHeads?: number;
  dim?: 64 | 128;
  iters?: number;
  warmup?: number;
  /** time the same kernel on one GPU for the efficiency (default true) */
  single?: boolean;
  /** run PyTorch's context parallel for causal masks (default true) */
  torch?: boolean;
  python?: string;
  outDir?: string | null;
  log?: (line: string) => void;
}

interface TorchCp {
  seq: number;
  medianMs: number;
  msSamples: number[];
  tflopsPerGpu: number;
  torch: string;
  rotate: string | null;
  world: number;
  backend: string;
}

/** The planner's figure for a row, added to its derived values, and a note for the line printed. */
async function withModel(
  shape: RunShape,
  layout: RunLayout,
  gpu: string,
  measuredMs: number,
  derived: Record<string, number>,
  peakGiB?: number,
): Promise<string> {
  let p;
  try {
    p = await predictRun(shape, layout, gpu);
  } catch (e) {
    return `; model: ${(e as Error).message.split('\n')[0]}`;
  }
  if ('none' in p) return `; model: ${p.none}`;
  derived.predictedMs = p.ms;
  if (p.peakGiB !== undefined) derived.predictedPeakGiB = p.peakGiB;
  const peak =
    peakGiB !== undefined && p.peakGiB !== undefined
      ? `, peak ${peakGiB.toFixed(2)} GiB (model ${p.peakGiB.toFixed(2)})`
      : '';
  return `; model ${p.ms.toFixed(1)} ms (${((p.ms / measuredMs - 1) * 100).toFixed(1)}%)${peak}`;
}

const slowest = (ranks: readonly RankTiming[], i: number): number =>
  Math.max(...ranks.map((r) => (r.forwardMs[i] ?? 0) + (r.backwardMs[i] ?? 0)));

export async function benchCp(o: CpBenchOptions): Promise<BenchRecord[]> {
  const rank = await GpuRank.open();
  const lead = rank.rank === 0,
    N = rank.size;
  const log = (l: string): void => {
    if (lead) (o.log ?? ((x: string) => process.stdout.write(x + '\n')))(l);
  };
  const H = o.heads ?? 32,
    Hkv = o.kvHeads ?? H,
    D = o.dim ?? 128;
  const iters = o.iters ?? 5,
    warmup = o.warmup ?? 2;
  const timing = { warmup, iters, backward: true, timeline: true };
  const info = rank.world.rt.info;
  log(
    `weft bench cp: ${N} × ${info.name}, B=1 H=${H} Hkv=${Hkv} D=${D} bf16, forward+backward, ${iters} iterations after ${warmup} warm-up`,
  );
  const records: BenchRecord[] = [];
  const file = o.outDir === null ? undefined : recordFile(o.outDir ?? 'bench/results', 'cp');
  const keep = (r: BenchRecord): void => {
    records.push(r);
    if (lead && file) appendRecords(file, [r]);
  };
  for (const S of o.seqs) {
    for (const m of o.masks) {
      const spec = m.spec(S);
      const area = MaskGrid.build(spec, S).area();
      const flops = attentionFlops(area, H, D, 'fwd+bwd');
      const p: GpuProblem = { S, H, Hkv, D, mask: spec, dtype: 'bf16', scale: 1 / Math.sqrt(D), seed: 1 };
      const config = { seq: S, heads: H, kvHeads: Hkv, dim: D, mask: maskName(spec), world: N, gpu: info.name };
      const shape: RunShape = { S, H, Hkv, D, mask: spec, world: N };
      let singleMs: number | undefined;
      if (o.single !== false) {
        const one = await rank.timeSingle(p, { ...timing, timeline: false });
        if (one) {
          const samples = one.forwardMs.map((f, i) => f + (one.backwardMs[i] ?? 0));
          singleMs = summarize(samples).median;
          const derived: Record<string, number> = { tflopsPerGpu: flops / (singleMs * 1e-3) / 1e12 };
          const model = await withModel(shape, 'one-gpu', info.name, singleMs, derived);
          keep(makeRecord('cp', 'weft-1gpu', config, 'ms', samples, derived));
          log(
            `  S=${S} ${m.name} one GPU: ${singleMs.toFixed(1)} ms, ${(flops / singleMs / 1e9).toFixed(0)} TFLOP/s${model}`,
          );
        }
      }
      for (const layout of o.layouts) {
        const l = resolveLayout({ ...layout, world: N }, { S, H, Hkv }, spec);
        const ranks = await rank.time(p, l, timing);
        if (!ranks) continue;
        const samples = ranks[0]!.forwardMs.map((_, i) => slowest(ranks, i));
        const med = summarize(samples).median;
        const name = `weft-${l.strategy}${l.strategy === 'usp' ? `-${l.ulysses}x${l.ring}` : l.strategy === 'double-ring' ? `-${l.inner}` : ''}-${l.shard}`;
        const derived: Record<string, number> = { tflopsPerGpu: flops / N / (med * 1e-3) / 1e12 };
        if (singleMs !== undefined) derived.efficiency = singleMs / (N * med);
        const peaks = ranks.map((r) => r.peakBytes / 2 ** 30);
        const model = await withModel(shape, l, info.name, med, derived, Math.max(...peaks));
        keep(
          makeRecord('cp', name, config, 'ms', samples, derived, {
            layout: l,
            forwardMs: ranks.map((r) => summarize(r.forwardMs).median),
            backwardMs: ranks.map((r) => summarize(r.backwardMs).median),
            peakGiB: peaks,
            timeline: ranks.map((r) => ({ rank: r.rank, spans: r.spans })),
          }),
        );
        log(
          `  S=${S} ${m.name} ${name}: ${med.toFixed(1)} ms, ${derived.tflopsPerGpu!.toFixed(0)} TFLOP/s per GPU${derived.efficiency ? `, efficiency ${derived.efficiency.toFixed(3)}` : ''}${model}`,
        );
      }
    }
    if (o.torch !== false && o.masks.some((m) => m.spec(S).kind === 'causal')) {
      await rank.releaseMemory(); // the peer needs the GPU's memory that weft's pool still holds
      for (const rotate of ['allgather', 'alltoall']) {
        try {
          const [r] = await runPeer<TorchCp>(
            rank.world.store,
            rank.rank,
            `cp-${S}-${rotate}`,
            o.python ?? 'python3',
            peerScript('torch_cp.py'),
            [
              '--seqs',
              String(S),
              '--heads',
              String(H),
              '--kv-heads',
              String(Hkv),
              '--dim',
              String(D),
              '--rotate',
              rotate,
              '--iters',
              String(iters),
              '--warmup',
              String(warmup),
            ],
          );
          if (r) {
            const config = { seq: S, heads: H, kvHeads: Hkv, dim: D, mask: 'causal', world: N, gpu: info.name };
            const derived: Record<string, number> = { tflopsPerGpu: r.tflopsPerGpu };
            const model = await withModel(
              { S, H, Hkv, D, mask: { kind: 'causal' }, world: N },
              'pytorch',
              info.name,
              r.medianMs,
              derived,
            );
            keep(makeRecord('cp', `torch-cp-cudnn-${rotate}`, config, 'ms', r.msSamples, derived, { torch: r.torch }));
            log(
              `  S=${S} causal torch context_parallel (cuDNN, ${rotate}): ${r.medianMs.toFixed(1)} ms, ${r.tflopsPerGpu.toFixed(0)} TFLOP/s per GPU${model}`,
            );
          }
        } catch (e) {
          log(`  S=${S} torch context_parallel (${rotate}) failed: ${(e as Error).message.split('\n')[0]}`);
        }
      }
    }
  }
  await rank.world.comm.destroy();
  rank.world.store.close();
  if (!lead) return [];
  if (file && records.length) log(`records → ${file}`);
  return records;
}
