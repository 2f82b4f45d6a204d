// `weft demo` (what `npm start` runs): a default problem on the CPU, on one rank and split over
// 4 CPU ranks by each strategy, with every result's error against the plain f64 reference and
// its time — a short look at what weft computes.
import type { Command } from 'commander';
import { attendSingle } from '../../kernel/attend.js';
import { CpuKernel } from '../../backends/cpu/kernel.js';
import { defaultScale } from '../../kernel/kernel.js';
import { referenceAttention } from '../../kernel/reference.js';
import { attentionFlops } from '../../kernel/flops.js';
import { MaskGrid } from '../../mask/grid.js';
import { checkCuSeqlens, maskName, type MaskSpec } from '../../mask/spec.js';
import { type Layout, runBatch, validateLayout } from '../../run/index.js';
import { UserError } from '../../errors.js';
import { type HostTensor, relError } from '../../tensor/host.js';
import { randn, Rng } from '../../tensor/random.js';
import { guard } from '../errors.js';
import { parseInt } from '../options.js';
import { table } from '../../report/table.js';

interface DemoOpts {
  seq: string;
  heads: string;
  kvHeads: string;
  dim: string;
  json?: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run a default problem on one CPU rank and on 4 ranks per strategy, checked against the f64 reference')
    .option('--seq <S>', 'sequence length', '384')
    .option('--heads <H>', 'query heads', '8')
    .option('--kv-heads <K>', 'key/value heads', '2')
    .option('--dim <D>', 'head dim', '64')
    .option('--json', 'print JSON instead of a table')
    .action((o: DemoOpts) => guard(() => demo(o)));
}

type Outputs = { [K in 'out' | 'lse' | 'dq' | 'dk' | 'dv']?: HostTensor };

/** Each output's relative error against the reference, as table cells. */
function errors(got: Outputs, ref: Outputs): Record<string, string> {
  return Object.fromEntries(
    (['out', 'lse', 'dq', 'dk', 'dv'] as const).map((n) => [n, relError(got[n]!, ref[n]!).toExponential(1)]),
  );
}

async function demo(o: DemoOpts): Promise<void> {
  // every option and every run is checked before anything is computed or printed
  const S = parseInt(o.seq, '--seq'),
    H = parseInt(o.heads, '--heads'),
    Hkv = parseInt(o.kvHeads, '--kv-heads'),
    D = parseInt(o.dim, '--dim');
  if (H % Hkv !== 0) throw new UserError(`--heads ${H} is not a multiple of --kv-heads ${Hkv}`);
  const docs = [0, Math.floor(S / 5), Math.floor(S / 2), S];
  if (S < 5) throw new UserError(`--seq ${S}: the demo's document mask needs at least 5 tokens`);
  checkCuSeqlens(docs, S);
  const masks: MaskSpec[] = [
    { kind: 'causal' },
    { kind: 'sliding', left: Math.floor(S / 8), right: 0 },
    { kind: 'document', cuSeqlens: docs, inner: { kind: 'causal' } },
  ];
  // the same problem split over 4 CPU ranks, one strategy per mask family
  const world = 4;
  const runs: { layout: Layout; spec: MaskSpec; label: string }[] = [
    { layout: { strategy: 'ring', world, shard: 'zigzag' }, spec: masks[0]!, label: 'ring ×4 zigzag' },
    { layout: { strategy: 'usp', world, ulysses: 2, ring: 2 }, spec: masks[0]!, label: 'usp 2×2' },
    { layout: { strategy: 'ulysses', world }, spec: masks[1]!, label: 'ulysses ×4' },
    { layout: { strategy: 'tokenring', world }, spec: masks[1]!, label: 'tokenring ×4' },
    { layout: { strategy: 'double-ring', world, inner: 2 }, spec: masks[2]!, label: 'double-ring 2×2' },
  ];
  for (const r of runs) {
    try {
      validateLayout(r.layout, { S, H, Hkv });
    } catch (e) {
      throw e instanceof UserError
        ? new UserError(
            `the demo runs ${r.label}: ${e.message} (choose --heads and --kv-heads that 4 ranks can split, e.g. the defaults 8 and 2)`,
          )
        : e;
    }
  }
  const rng = new Rng(2026);
  const q = randn(rng, 'f32', [S, H, D]),
    k = randn(rng, 'f32', [S, Hkv, D]),
    v = randn(rng, 'f32', [S, Hkv, D]),
    dout = randn(rng, 'f32', [S, H, D]);
  const scale = defaultScale(D);
  if (!o.json)
    process.stderr.write(
      `weft demo: S=${S} H=${H} Hkv=${Hkv} D=${D}, f32 on the CPU vs the f64 reference, forward + backward\n`,
    );
  const rows: Record<string, string | number>[] = [];
  for (const spec of masks) {
    const grid = MaskGrid.build(spec, S);
    const t0 = performance.now();
    const r = attendSingle(new CpuKernel(), q, k, v, grid, scale, dout);
    const ms = performance.now() - t0;
    const ref = referenceAttention(q, k, v, grid, scale, dout);
    const flops = attentionFlops(grid.area(), H, D, 'fwd+bwd');
    rows.push({
      where: 'one rank',
      mask: maskName(spec),
      density: +grid.density().toFixed(3),
      ms: Math.round(ms),
      'GFLOP/s': +(flops / ms / 1e6).toFixed(2),
      ...errors(r, ref),
    });
    if (!o.json) process.stderr.write(`  ${maskName(spec)} done in ${(ms / 1000).toFixed(2)} s\n`);
  }
  const results = await runBatch(
    runs.map((r) => ({ problem: { q, k, v, dout, mask: r.spec, scale, dtype: 'f32' as const }, layout: r.layout })),
  );
  runs.forEach((run, i) => {
    const res = results[i]!;
    const grid = MaskGrid.build(run.spec, S);
    const ref = referenceAttention(q, k, v, grid, scale, dout);
    const ms = res.stats.forwardMs + res.stats.backwardMs;
    rows.push({
      where: run.label,
      mask: maskName(run.spec),
      density: +grid.density().toFixed(3),
      ms: Math.round(ms),
      'GFLOP/s': +(attentionFlops(grid.area(), H, D, 'fwd+bwd') / ms / 1e6).toFixed(2),
      ...errors(res, ref),
    });
    if (!o.json)
      process.stderr.write(`  ${run.label} ${maskName(run.spec)} done, work balance ${res.stats.balance.toFixed(2)}\n`);
  });
  if (o.json) process.stdout.write(JSON.stringify({ S, H, Hkv, D, results: rows }) + '\n');
  else
    process.stdout.write(
      table(rows) + '\nerrors are ‖weft − f64 reference‖ / ‖reference‖; f32 arithmetic should stay under 1e-5.\n',
    );
}
