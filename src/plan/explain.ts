// What `weft plan` prints: the JSON plans, the table, and a few sentences on why the winner wins.
import type { PlanConfig } from './config.js';
import type { Breakdown } from './cost.js';
import { describeLayout } from './layout.js';
import type { PlanResult } from './search.js';
import type { Term } from './schedule.js';

export const FLOP_CONVENTION =
  'TFLOP/s count model FLOPs: attention forward = 4·S²·H·D × the unmasked fraction of the mask (causal counts half); ' +
  'training counts 6 FLOPs per weight per token and a backward of 2 × forward for attention (Megatron/PaLM); ' +
  "attention-only modes count the backward as 2.5 × forward (FlashAttention). MFU = TFLOP/s ÷ the GPU's dense bf16 peak.";

const round = (x: number, d: number): number => Math.round(x * 10 ** d) / 10 ** d;

export interface JsonPlan {
  tp: number;
  ulysses: number;
  ring: number;
  dp: number;
  strategy: string;
  placement: string;
  shard: string;
  inner?: number;
  feasible: boolean;
  reason: string | null;
  predicted: { stepMs: number; tflopsPerGpu: number; mfu: number; memGiB: number } | null;
  detail?: { breakdownMs: Partial<Breakdown>; memoryGiB: Record<string, number>; balance: number };
}

export function jsonPlan(r: PlanResult): JsonPlan {
  const l = r.layout;
  const out: JsonPlan = {
    tp: l.tp,
    ulysses: l.ulysses,
    ring: l.ring,
    dp: l.dp,
    strategy: l.strategy,
    placement: l.placement,
    shard: l.shard,
    feasible: r.feasible,
    reason: r.reason,
    predicted: r.prediction
      ? {
          stepMs: round(r.prediction.stepMs, 3),
          tflopsPerGpu: round(r.prediction.tflopsPerGpu, 2),
          mfu: round(r.prediction.mfu, 4),
          memGiB: round(r.prediction.memGiB, 2),
        }
      : null,
  };
  if (l.inner !== undefined) out.inner = l.inner;
  if (r.timing && r.memory) {
    const b: Partial<Breakdown> = {};
    for (const [k, v] of Object.entries(r.timing.breakdown) as [Term, number][]) if (v > 0) b[k] = round(v, 3);
    const m: Record<string, number> = {};
    for (const [k, v] of Object.entries(r.memory.parts)) m[k] = round(v, 2);
    out.detail = { breakdownMs: b, memoryGiB: m, balance: round(r.balance, 3) };
  }
  return out;
}

export function tableRows(results: readonly PlanResult[], limit: number): Record<string, string | number>[] {
  return results.slice(0, limit).map((r, i) => {
    const l = r.layout,
      p = r.prediction;
    return {
      '#': i + 1,
      strategy: l.strategy + (l.inner ? `/${l.inner}` : ''),
      tp: l.tp,
      ulysses: l.ulysses,
      ring: l.ring,
      dp: l.dp,
      shard: l.ring > 1 ? l.shard : '-',
      placement: l.ulysses > 1 && l.ring > 1 ? l.placement : '-',
      'step ms': p ? p.stepMs.toFixed(p.stepMs < 10 ? 3 : 1) : '-',
      'TFLOP/s/GPU': p ? p.tflopsPerGpu.toFixed(1) : '-',
      MFU: p ? `${(100 * p.mfu).toFixed(1)}%` : '-',
      GiB: p ? p.memGiB.toFixed(1) : '-',
      fits: r.feasible ? 'yes' : r.reason?.startsWith('out of memory') ? 'no (memory)' : 'no',
    };
  });
}

const TERM_WORDS: Record<Term, string> = {
  gemm: 'weight products (GEMMs)',
  elementwise: "elementwise work (norms, RoPE, SwiGLU, loss; the strategy's own copies, casts and adds)",
  attention: 'attention kernels and merges',
  imbalance: 'attention load imbalance between ranks',
  'ring-comm': 'ring transfers not hidden behind compute',
  'all-to-all': 'Ulysses all-to-alls (exposed)',
  gather: 'K/V all-gathers (exposed)',
  'tp-comm': 'tensor-parallel all-gathers and reduce-scatters (exposed)',
  'grad-sync': 'gradient reduce-scatter and weight all-gather (exposed)',
  optimizer: 'the optimizer step',
};

function shares(b: Breakdown): [Term, number][] {
  const total = Object.values(b).reduce((s, v) => s + v, 0);
  return (Object.entries(b) as [Term, number][])
    .filter(([, v]) => v > 0)
    .map(([k, v]) => [k, v / total] as [Term, number])
    .sort((x, y) => y[1] - x[1]);
}

/** A short account of the winner: where its time goes and why it beats the runner-up. */
export function explain(cfg: PlanConfig, results: readonly PlanResult[]): string {
  const lines: string[] = [];
  const ok = results.filter((r) => r.feasible);
  const oom = results.filter((r) => !r.feasible && r.reason?.startsWith('out of memory'));
  const invalid = results.filter((r) => !r.feasible && !r.reason?.startsWith('out of memory'));
  if (ok.length === 0) {
    lines.push(
      `No layout fits: ${oom.length} run out of memory${oom.length ? ` (the smallest needs ${Math.min(...oom.map((r) => r.prediction!.memGiB)).toFixed(1)} GiB of ${cfg.cluster.gpu.memGiB} GiB)` : ''}${invalid.length ? `, ${invalid.length} are invalid (${invalid[0]!.reason})` : ''}.`,
    );
    lines.push('Try more GPUs, tensor parallelism, recompute: "full", or a higher ZeRO stage.');
    return lines.join('\n') + '\n';
  }
  const w = ok[0]!,
    p = w.prediction!,
    t = w.timing!;
  lines.push(
    `Best: ${describeLayout(w.layout)} — ${p.stepMs.toFixed(p.stepMs < 10 ? 3 : 1)} ms per step, ${p.tflopsPerGpu.toFixed(1)} TFLOP/s per GPU (${(100 * p.mfu).toFixed(1)}% MFU), ${p.memGiB.toFixed(1)} of ${cfg.cluster.gpu.memGiB} GiB.`,
  );
  const sh = shares(t.breakdown);
  lines.push(
    `Its time: ${sh
      .slice(0, 4)
      .map(([k, v]) => `${TERM_WORDS[k]} ${(100 * v).toFixed(1)}%`)
      .join(', ')}.`,
  );
  const [dom] = sh[0]!;
  const comm =
    (t.breakdown['ring-comm'] + t.breakdown['all-to-all'] + t.breakdown.gather + t.breakdown['tp-comm']) / p.stepMs;
  lines.push(
    `The dominant term is ${TERM_WORDS[dom]}; exposed attention and tensor-parallel communication together cost ${(100 * comm).toFixed(1)}% of the step${w.layout.ring > 1 ? `, ring transfers hide behind compute${t.breakdown['ring-comm'] / p.stepMs < 0.01 ? '' : ' only in part'}` : ''}.`,
  );
  if (ok.length > 1) {
    const r2 = ok[1]!,
      d = (r2.prediction!.stepMs - p.stepMs) / p.stepMs;
    const diffs = (Object.keys(t.breakdown) as Term[])
      .map((k) => [k, r2.timing!.breakdown[k] - t.breakdown[k]] as [Term, number])
      .sort((a, b) => b[1] - a[1]);
    const [why, by] = diffs[0]!;
    lines.push(
      `It beats #2 (${describeLayout(r2.layout)}) by ${(100 * d).toFixed(1)}%${by > 0 ? `, mostly on ${TERM_WORDS[why]} (${by.toFixed(1)} ms more per step there)` : ''}.${d < 0.02 ? " The margin is within the model's error; measure both." : ''}`,
    );
  }
  if (oom.length || invalid.length)
    lines.push(
      `${oom.length} layout(s) do not fit in memory; ${invalid.length} are invalid for this model and cluster.`,
    );
  lines.push(FLOP_CONVENTION);
  return lines.join('\n') + '\n';
}
