// The inference side of `weft run` (--mode prefill | decode on CPU ranks: worker threads, or one
// process per rank under a launcher) and of `weft plan` (configs with "mode": "decode", or
// "prefill" with "newTokens"). `weft run --mode` fills a sharded KV cache with the K/V of --context
// cached tokens per request (written, as an earlier prefill would have left them; untimed), then
// times one step: a prefill of --new-tokens by pass-KV or pass-Q (--pass; auto asks the planner),
// or a decode step of --new-tokens per request; --check compares that step's rows with the f64
// reference. GPUs (--backend cuda under a launcher) run in infer-gpu.ts.
import { readFileSync } from 'node:fs';
import { type InferResult, type InferStep, runInference } from '../../infer/index.js';
import { resolveBackend } from '../../backends/index.js';
import { connectStore, distEnv } from '../../launch/env.js';
import { runInferenceLaunched } from '../../infer/launched.js';
import { referenceAttention } from '../../kernel/reference.js';
import { MaskGrid } from '../../mask/grid.js';
import { maskName } from '../../mask/spec.js';
import type { Calibration } from '../../plan/calibration/types.js';
import { inferenceConfig, type InferencePlan, planInference, type PassChoice } from '../../plan/inference.js';
import { buildContext } from '../../plan/search.js';
import { asF64, type HostTensor, relError } from '../../tensor/host.js';
import { randn, Rng } from '../../tensor/random.js';
import { UserError } from '../../errors.js';
import { parseChoice } from '../options.js';
import { timeoutMs } from '../layout-options.js';
import { table } from '../../report/table.js';
import { type InferOpts, inferSetup } from '../infer-setup.js';
import { type Check, checkErrors, checkLine, formatBytes, rankTable } from '../check.js';

export type { InferOpts } from '../infer-setup.js';

export async function runInferMode(o: InferOpts): Promise<void> {
  const su = inferSetup(o);
  const backend = parseChoice(o.backend, '--backend', ['auto', 'cpu', 'cuda'] as const);
  const dist = distEnv();
  if (backend === 'cuda' && !dist)
    throw new UserError(
      `--backend cuda runs one process per GPU: weft launch -n ${su.world} -- run --mode ${su.mode} --backend cuda … (or torchrun, srun, mpirun)`,
    );
  if (dist && backend !== 'cpu') {
    const { backend: b, skipped } = await resolveBackend(backend);
    // the GPU path lives in its own module so that CPU runs never load the CUDA backend
    if (b.name === 'cuda') return (await import('./infer-gpu.js')).runInferGpuCommand(o, su);
    for (const s of skipped)
      process.stderr.write(`weft run: ${s.name} backend unavailable (${s.reason}); using CPU ranks\n`);
  }
  const { mode, P, T, B, world, H, Hkv, D, mask, scale, seed, pass, planned } = su;
  const S = P + T;
  const dtype = parseChoice(o.dtype ?? 'f32', '--dtype', ['f64', 'f32'] as const);
  const rng = new Rng(seed);
  const requests = Array.from({ length: B }, () => ({
    mask,
    q: randn(rng, dtype, [S, H, D]),
    k: randn(rng, dtype, [S, Hkv, D]),
    v: randn(rng, dtype, [S, Hkv, D]),
  }));
  const steps: InferStep[] = [];
  if (P > 0) steps.push({ kind: 'fill', counts: requests.map(() => P) });
  steps.push(
    mode === 'decode'
      ? { kind: 'decode', counts: requests.map(() => T) }
      : { kind: 'prefill', pass, counts: requests.map(() => T) },
  );
  const problem = { world, dtype, scale, requests, steps };
  let res: InferResult;
  if (dist) {
    // one CPU rank per launched process, over TCP; rank 0 reports
    const store = await connectStore(dist, timeoutMs(o));
    const r = await runInferenceLaunched(problem, dist, store, { timeoutMs: timeoutMs(o) });
    store.close();
    if (!r) return;
    res = r;
  } else res = await runInference(problem, { timeoutMs: timeoutMs(o) });

  let check: Check | undefined;
  if (o.check) {
    const grid = MaskGrid.build(mask, S);
    let outErr = 0,
      lseErr = 0;
    requests.forEach((r, b) => {
      const ref = referenceAttention(r.q, r.k, r.v, grid, scale, undefined, [P, S]);
      const rowsOf = (t: HostTensor, lse: boolean): Float64Array => {
        const x = asF64(t);
        if (!lse) return x.subarray(P * H * D, S * H * D);
        const out = new Float64Array(H * T);
        for (let h = 0; h < H; h++) out.set(x.subarray(h * S + P, h * S + S), h * T);
        return out;
      };
      outErr = Math.max(outErr, relError(rowsOf(res.outs[b]!.out, false), rowsOf(ref.out, false)));
      lseErr = Math.max(lseErr, relError(rowsOf(res.outs[b]!.lse, true), rowsOf(ref.lse, true)));
    });
    check = checkErrors({ out: outErr, lse: lseErr }, dtype, res.decodeAgree);
  }
  const last = res.steps[res.steps.length - 1]!;
  const summary = {
    mode,
    backend: 'cpu',
    world,
    dims: { H, Hkv, D },
    context: P,
    newTokens: T,
    batch: B,
    mask: maskName(mask),
    dtype,
    seed,
    ...(mode === 'prefill'
      ? {
          pass,
          passChoice: planned
            ? {
                by: 'planner (one node of H200s)',
                passKvMs: planned.kv.total,
                passQMs: planned.q.total,
                paperRule: planned.paperRule,
              }
            : { by: '--pass' },
        }
      : { exchange: 'allgather' }),
    cache: { rowsPerRank: res.capacity, bytesPerRank: res.cacheBytesPerRank },
    step: last,
    check,
  };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(describe(summary, res, planned));
  if (check && !check.ok) process.exitCode = 1;
}

function describe(
  s: {
    mode: string;
    world: number;
    dims: { H: number; Hkv: number; D: number };
    context: number;
    newTokens: number;
    batch: number;
    mask: string;
    dtype: string;
    pass?: string;
    cache: { rowsPerRank: number; bytesPerRank: number };
    step: InferResult['steps'][number];
    check?: Check;
  },
  res: InferResult,
  planned?: PassChoice,
): string {
  const lines = [
    `${s.mode} on ${s.world} CPU ranks: ${s.batch} request(s) × ${s.context} cached + ${s.newTokens} new tokens, H=${s.dims.H} Hkv=${s.dims.Hkv} D=${s.dims.D} ${s.dtype}, mask ${s.mask}`,
    `KV cache: ${s.cache.rowsPerRank} rows per rank reserved up front (${formatBytes(s.cache.bytesPerRank)} of K/V per rank)`,
  ];
  if (s.mode === 'prefill') {
    lines.push(
      planned
        ? `pass: ${s.pass === 'q' ? 'pass-Q' : 'pass-KV'} (auto: the planner, pricing one node of ${s.world} H200s: pass-KV ${planned.kv.total.toFixed(3)} ms, pass-Q ${planned.q.total.toFixed(3)} ms per layer; arXiv 2411.01783's rule: pass-${planned.paperRule.toUpperCase()})`
        : `pass: ${s.pass === 'q' ? 'pass-Q' : 'pass-KV'} (--pass)`,
    );
  } else
    lines.push('exchange: one all-gather of the partial (out, lse), merged in the accumulation type on every rank');
  lines.push(
    `time: ${s.step.ms.toFixed(1)} ms (the ${s.mode} step, slowest rank; the cached K/V were written before, untimed)`,
    '',
    ...rankTable(s.step.perRank),
  );
  if (s.check) {
    const agree = s.mode === 'decode' ? `, ranks ${res.decodeAgree ? 'agree' : 'DISAGREE'}` : '';
    lines.push('', checkLine(s.check, 'of the new tokens against the f64 reference', agree));
  }
  return `${lines.join('\n')}\n`;
}

/** `weft plan` for an inference config: true when the config was one (and the plan is printed). */
export function planInferenceCommand(file: string, json: boolean, top: number, calibration?: Calibration): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return false; // loadConfig reports unreadable or malformed files
  }
  const cfg = inferenceConfig(parsed);
  if (!cfg) return false;
  const ctx = buildContext(cfg.base, calibration);
  const plans = planInference(cfg, ctx.rates, ctx.net);
  if (json) {
    process.stdout.write(`${JSON.stringify({ mode: cfg.mode, plans })}\n`);
    return true;
  }
  const m = cfg.base.model,
    cl = cfg.base.cluster;
  const what = cfg.mode === 'decode' ? 'time per decode step' : 'time to first token';
  process.stdout.write(
    `${m.name}, ${cfg.mode}, ${cfg.batch} request(s) × ${cfg.context} cached + ${cfg.newTokens} new tokens, mask ${cfg.base.maskText}; ` +
      `${cl.nodes}×${cl.gpusPerNode} ${cl.gpu.name} — ${plans.length} layouts (tensor-parallel × cache-parallel), fastest first by ${what}\n\n`,
  );
  const rows = plans.slice(0, top).map((p: InferencePlan) => {
    const pr = p.predicted!;
    const layout = `tp ${p.layout.tp} × cp ${p.layout.cp}${p.layout.pass ? `, pass-${p.layout.pass.toUpperCase()}` : ''}`;
    const extra =
      cfg.mode === 'decode'
        ? { 'tokens/s': pr.tokensPerSecond!.toFixed(0), 'K/V read TB/s': pr.achievedTBs!.toFixed(2) }
        : {
            'pass-KV ms': pr.passKvMs!.toFixed(1),
            'pass-Q ms': pr.passQMs!.toFixed(1),
            'paper rule': `pass-${pr.paperRule!.toUpperCase()}`,
          };
    return {
      layout,
      [cfg.mode === 'decode' ? 'step ms' : 'TTFT ms']: pr.stepMs.toFixed(cfg.mode === 'decode' ? 3 : 1),
      ...extra,
      'GiB/GPU': p.memory!.totalGiB.toFixed(1),
      fits: p.feasible ? 'yes' : 'no',
    };
  });
  process.stdout.write(table(rows));
  const best = plans[0];
  if (best?.feasible) {
    const top3 = Object.entries(best.breakdown)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([k, v]) => `${k} ${v.toFixed(3)} ms`)
      .join(', ');
    process.stdout.write(
      `\nBest: tp ${best.layout.tp} × cp ${best.layout.cp}${best.layout.pass ? ` with pass-${best.layout.pass.toUpperCase()}` : ''}: ${best.predicted!.stepMs.toFixed(3)} ms (${top3}).\n`,
    );
  } else if (best) process.stdout.write(`\nNo layout fits: ${best.reason}\n`);
  return true;
}
