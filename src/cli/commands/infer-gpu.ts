// `weft run --mode prefill|decode` on GPUs: one process per GPU under `weft launch`, the sharded
// KV cache on the devices, the step through the CUDA kernel (split-K decode for decode-shaped
// views) over NCCL, timed with CUDA events; rank 0 prints the table (or JSON) for the job.
import { summarize } from '../../bench/record.js';
import { UserError } from '../../errors.js';
import { checkWorld } from '../../launch/cluster.js';
import { distEnv } from '../../launch/env.js';
import { maskName } from '../../mask/spec.js';
import { runInferGpu } from '../../run/gpu-infer.js';
import { optInt } from '../layout-options.js';
import { parseChoice } from '../options.js';
import type { InferOpts, InferSetup } from '../infer-setup.js';

const gib = (b: number): string => (b / 2 ** 30).toFixed(2);

export async function runInferGpuCommand(o: InferOpts, su: InferSetup): Promise<void> {
  const dtype = parseChoice(o.dtype ?? 'bf16', '--dtype', ['bf16', 'f16'] as const);
  if (su.D !== 64 && su.D !== 128) throw new UserError(`--dim ${su.D}: the GPU kernels take head dims 64 and 128`);
  const dist = distEnv()!;
  checkWorld(su, dist);
  const iters = optInt(o.iters ?? '5', 'iters')!,
    warmup = optInt(o.warmup ?? '2', 'warmup', 0)!;
  const lead = dist.rank === 0;
  const res = await runInferGpu(
    { ...su, D: su.D, dtype },
    {
      warmup,
      iters,
      check: o.check === true,
      log: (l) => process.stderr.write(`weft: ${l}\n`),
    },
  );
  if (!lead || !res) return;
  const s = summarize(res.stepMs);
  const summary = {
    mode: su.mode,
    backend: 'cuda',
    world: res.world,
    dims: { H: su.H, Hkv: su.Hkv, D: su.D },
    context: su.P,
    newTokens: su.T,
    batch: su.B,
    mask: maskName(su.mask),
    dtype,
    ...(su.mode === 'prefill'
      ? {
          pass: su.pass,
          passChoice: su.planned
            ? {
                by: 'planner (one node of H200s)',
                passKvMs: su.planned.kv.total,
                passQMs: su.planned.q.total,
                paperRule: su.planned.paperRule,
              }
            : { by: '--pass' },
        }
      : { exchange: 'allgather' }),
    cache: { rowsPerRank: res.capacity, bytesPerRank: res.cacheBytesPerRank },
    step: {
      iters,
      medianMs: s.median,
      p10Ms: s.p10,
      p90Ms: s.p90,
      perRank: res.perRank.map((r) => ({
        rank: r.rank,
        medianMs: summarize(r.stepMs).median,
        peakGiB: r.peakBytes / 2 ** 30,
      })),
    },
    check: res.check,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    const pass = su.pass === 'q' ? 'pass-Q' : 'pass-KV';
    const lines = [
      `${su.mode} on ${res.world} GPU${res.world > 1 ? 's' : ''}: ${su.B} request(s) × ${su.P} cached + ${su.T} new tokens, H=${su.H} Hkv=${su.Hkv} D=${su.D} ${dtype}, mask ${summary.mask}`,
      `KV cache: ${res.capacity} rows per GPU reserved up front (${gib(res.cacheBytesPerRank)} GiB of K/V per GPU)`,
      su.mode === 'prefill'
        ? su.planned
          ? `pass: ${pass} (auto: the planner: pass-KV ${su.planned.kv.total.toFixed(3)} ms, pass-Q ${su.planned.q.total.toFixed(3)} ms per layer; arXiv 2411.01783's rule: pass-${su.planned.paperRule.toUpperCase()})`
          : `pass: ${pass} (--pass)`
        : 'exchange: one all-gather of the partial (out, lse), merged in f32 on every GPU',
      `step: median ${s.median.toFixed(3)} ms (p10 ${s.p10.toFixed(3)}, p90 ${s.p90.toFixed(3)}; ${iters} steps after ${warmup} warm-up, slowest GPU; the new K/V are written into the cache inside the step)`,
      '',
      'rank  median ms  peak GiB',
      ...summary.step.perRank.map(
        (r) =>
          `${String(r.rank).padStart(4)}  ${r.medianMs.toFixed(3).padStart(9)}  ${r.peakGiB.toFixed(2).padStart(8)}`,
      ),
    ];
    const c = res.check;
    if (c) {
      const f = (x: Record<string, number>): string =>
        Object.entries(x)
          .map(([n, e]) => `${n} ${e.toExponential(2)}`)
          .join(', ');
      lines.push(
        '',
        `check of the new tokens against the ${c.against} (relative error, tolerance ${c.tolerance.toExponential(2)}): ${f(c.errors)}${c.ok ? ' — ok' : ' — FAILED'}`,
      );
      if (c.singleVsRef) lines.push(`one kernel call over the whole sequence against it: ${f(c.singleVsRef)}`);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  if (res.check && !res.check.ok) process.exitCode = 1;
}
