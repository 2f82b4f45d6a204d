// `weft run` on GPUs: one process per GPU under `weft launch`, the strategy over NCCL and the
// flash kernels, timed with CUDA events; rank 0 prints the table (or JSON) for the job.
import { writeOutput } from '../../io/output.js';
import { summarize } from '../../bench/record.js';
import { attentionFlops } from '../../kernel/flops.js';
import { MaskGrid } from '../../mask/grid.js';
import { maskName } from '../../mask/spec.js';
import { checkPasses, GpuRank, type GpuProblem } from '../../run/gpu.js';
import { resolveLayout } from '../../run/layout.js';
import { runTrace } from '../../run/timeline.js';
import { attentionFootprint, footprintBytes } from '../../plan/footprint.js';
import { UserError } from '../../errors.js';
import { checkWorld } from '../../launch/cluster.js';
import { distEnv } from '../../launch/env.js';
import { parseChoice } from '../options.js';
import type { RunOpts, RunSetup } from '../run-setup.js';

const gib = (b: number): string => (b / 2 ** 30).toFixed(1);

export async function runGpu(o: RunOpts, su: RunSetup): Promise<void> {
  const { mask, scale, layout } = su,
    d = { S: su.S, H: su.H, Hkv: su.Hkv, D: su.D };
  const dtype = parseChoice(o.dtype ?? 'bf16', '--dtype', ['bf16', 'f16'] as const);
  if (d.D !== 64 && d.D !== 128) throw new UserError(`--dim ${d.D}: the GPU kernels take head dims 64 and 128`);
  const dist = distEnv()!;
  const world = dist.worldSize;
  checkWorld(layout, dist);
  const l = resolveLayout(layout, d, mask);
  const p: GpuProblem = { ...d, D: d.D, mask, dtype, scale, seed: 1 };
  const { iters, warmup } = su;

  const rank = await GpuRank.open();
  const lead = rank.rank === 0;
  if (o.memoryCheck) {
    // refuse at once what would run out of memory minutes in (the count is exact against the
    // CPU ranks' metered peaks and, for the previous code, within 1.1% of every GPU record)
    const f = await attentionFootprint({ ...l, ...d, e: 2, backward: o.backward });
    const needs = footprintBytes(f),
      { free } = rank.world.rt.memInfo();
    if (needs > free) {
      throw new UserError(
        `${l.strategy} on ${world} GPUs needs about ${gib(needs)} GiB per GPU for S=${d.S} (weft's memory count, docs/plan.md), ` +
          `${gib(free)} GiB are free: use more GPUs or a shorter sequence (--no-memory-check runs anyway)`,
      );
    }
  }
  const check = o.check ? await rank.check(p, l) : undefined;
  if (lead && check) process.stderr.write(`weft: check done; timing ${warmup} warm-up + ${iters} iterations\n`);
  // long iterations (a million tokens and up) say when each is done; short ones stay quiet
  const progress = (i: number, ms: number): void => {
    if (lead && ms > 2000)
      process.stderr.write(
        `weft: iteration ${i + 1} of ${warmup + iters}${i < warmup ? ' (warm-up)' : ''}: ${(ms / 1000).toFixed(1)} s\n`,
      );
  };
  const ranks = await rank.time(p, l, {
    warmup,
    iters,
    backward: o.backward,
    timeline: o.timeline !== undefined,
    progress,
  });
  await rank.world.comm.destroy();
  rank.world.store.close();
  if (!lead || !ranks) return;

  const area = MaskGrid.build(mask, d.S).area();
  const flops = attentionFlops(area, d.H, d.D, o.backward ? 'fwd+bwd' : 'fwd');
  const total = ranks[0]!.forwardMs.map((_, i) =>
    Math.max(...ranks.map((r) => r.forwardMs[i]! + (r.backwardMs[i] ?? 0))),
  );
  const med = summarize(total).median;
  const tflopsPerGpu = flops / world / (med * 1e-3) / 1e12;
  const ok = !check || checkPasses(check);
  if (su.timeline) {
    const about = {
      layout: l,
      dims: d,
      mask: maskName(mask),
      dtype,
      iteration: 'the last',
      unit: "spans from CUDA events on each rank's compute and comm streams",
    };
    writeOutput(
      su.timeline,
      JSON.stringify(
        runTrace(
          ranks.map((r) => ({ rank: r.rank, spans: r.spans ?? [] })),
          about,
        ),
      ) + '\n',
    );
  }
  const summary = {
    layout: l,
    dims: d,
    mask: maskName(mask),
    dtype,
    iters,
    medianMs: med,
    tflopsPerGpu,
    perRank: ranks.map((r) => ({
      rank: r.rank,
      forwardMs: summarize(r.forwardMs).median,
      backwardMs: r.backwardMs.length ? summarize(r.backwardMs).median : null,
      peakGiB: r.peakBytes / 2 ** 30,
    })),
    check,
    checkOk: check ? ok : undefined,
  };
  if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else {
    const lines = [
      `${l.strategy} on ${world} GPUs, ${l.shard} shards, mask ${maskName(mask)}, S=${d.S} H=${d.H} Hkv=${d.Hkv} D=${d.D} ${dtype}${o.backward ? ', forward+backward' : ', forward'}`,
      `median ${med.toFixed(2)} ms (slowest rank), ${tflopsPerGpu.toFixed(1)} TFLOP/s per GPU (unmasked area; backward counted 2.5×)`,
      '',
      'rank  forward ms  backward ms  peak GiB',
      ...summary.perRank.map(
        (r) =>
          `${String(r.rank).padStart(4)}  ${r.forwardMs.toFixed(2).padStart(10)}  ${r.backwardMs === null ? '-'.padStart(11) : r.backwardMs.toFixed(2).padStart(11)}  ${r.peakGiB.toFixed(1).padStart(8)}`,
      ),
    ];
    if (check) {
      const f = (x: Record<string, number>): string =>
        Object.entries(x)
          .map(([n, e]) => `${n} ${e.toExponential(2)}`)
          .join(', ');
      lines.push('', `vs one GPU: ${f(check.vsSingle)}`);
      if (check.cpVsRef) {
        lines.push(`vs f64 reference: ${f(check.cpVsRef)}`, `one GPU vs f64 reference: ${f(check.singleVsRef!)}`);
        if (check.zeroRef)
          lines.push(
            `(${check.zeroRef.join(', ')}: exactly zero in the reference; absolute norms, not judged against one GPU)`,
          );
      } else lines.push('(f64 reference skipped: too large for the host)');
      lines.push(ok ? 'check ok' : 'check FAILED');
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (!ok) process.exitCode = 1;
}
