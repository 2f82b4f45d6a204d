// `weft run`: random inputs through a context-parallel strategy on N CPU ranks. Prints time,
// the per-rank work balance and bytes moved, and with --check the error against the f64
// reference (exit 1 when it exceeds the tolerance of the dtype).
import type { Command } from 'commander';
import { referenceAttention } from '../../kernel/reference.js';
import { MaskGrid } from '../../mask/grid.js';
import { maskName } from '../../mask/spec.js';
import { type Layout, runDistributed, type RunResult } from '../../run/index.js';
import { randn } from '../../tensor/random.js';
import { resolveBackend } from '../../backends/index.js';
import { connectStore, distEnv } from '../../launch/env.js';
import { runLaunched } from '../../run/launched.js';
import { UserError } from '../../errors.js';
import { guard } from '../errors.js';
import { parseChoice } from '../options.js';
import { addLayoutOptions, optInt, timeoutMs } from '../layout-options.js';
import { type RunOpts, setup } from '../run-setup.js';
import { type Check, checkLine, checkTensors, rankTable } from '../check.js';
import { type InferOpts, runInferMode } from './infer.js';

async function run(o: RunOpts & InferOpts): Promise<void> {
  if (o.strategy === 'varlen') return (await import('./varlen.js')).runVarlenCommand(o);
  for (const [f, flag] of VARLEN_ONLY)
    if (o[f] !== undefined) throw new UserError(`--${flag} applies to --strategy varlen`);
  if (o.mode !== undefined) return runInferMode(o); // inference over a sharded KV cache (infer.ts)
  if (o.strategy === undefined || o.world === undefined) throw new UserError('--strategy and --world are required');
  const su = setup(o);
  const { S, H, Hkv, D, mask, scale, layout, rng } = su;
  const backend = parseChoice(o.backend, '--backend', ['auto', 'cpu', 'cuda'] as const);
  const dist = distEnv();
  const launched = dist !== undefined;
  if (backend === 'cuda' && !launched)
    throw new UserError(
      '--backend cuda runs one process per GPU: weft launch -n N -- run --backend cuda … (or torchrun, srun, mpirun)',
    );
  if (launched && backend !== 'cpu') {
    const { backend: b, skipped } = await resolveBackend(backend);
    // the GPU path lives in its own module so that CPU runs never load the CUDA backend
    if (b.name === 'cuda') return (await import('./run-gpu.js')).runGpu(o, su);
    for (const s of skipped)
      process.stderr.write(`weft run: ${s.name} backend unavailable (${s.reason}); using CPU ranks\n`);
  }
  const dtype = parseChoice(o.dtype ?? 'f32', '--dtype', ['f64', 'f32'] as const);
  if (o.timeline !== undefined)
    throw new UserError(
      '--timeline records GPU runs (CUDA events per stream); CPU ranks keep none: drop it, or run under weft launch with --backend cuda',
    );
  const seed = optInt(o.seed, 'seed', 0)!;
  const q = randn(rng, dtype, [S, H, D]),
    k = randn(rng, dtype, [S, Hkv, D]),
    v = randn(rng, dtype, [S, Hkv, D]);
  const dout = o.backward ? randn(rng, dtype, [S, H, D]) : undefined;
  const problem = { q, k, v, dout, mask, scale, dtype };
  let res: RunResult;
  if (dist) {
    // one CPU rank per launched process, over TCP; rank 0 reports
    const store = await connectStore(dist, timeoutMs(o));
    const r = await runLaunched(problem, layout, dist, store, { timeoutMs: timeoutMs(o) });
    store.close();
    if (!r) return;
    res = r;
  } else {
    res = await runDistributed(problem, layout, { timeoutMs: timeoutMs(o) });
  }

  const check = o.check
    ? checkTensors(res, referenceAttention(q, k, v, MaskGrid.build(mask, S), scale, dout), dtype)
    : undefined;

  const shard = layout.shard ?? (mask.kind === 'document' ? 'doc-zigzag' : 'zigzag');
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ layout: { ...layout, shard }, dims: { S, H, Hkv, D }, mask: maskName(mask), dtype, seed, stats: res.stats, check })}\n`,
    );
  } else {
    process.stdout.write(table(layout, shard, { S, H, Hkv, D }, maskName(mask), dtype, res, check));
  }
  if (check && !check.ok) process.exitCode = 1;
}

/** Options only --strategy varlen reads, with their flags. */
const VARLEN_ONLY = [
  ['dist', 'dist'],
  ['lengths', 'lengths'],
  ['dryPlan', 'dry-plan'],
  ['rankTokens', 'rank-tokens'],
  ['tokenSlack', 'token-slack'],
  ['dispatch', 'dispatch'],
  ['headDocs', 'head-docs'],
  ['calibration', 'calibration'],
] as const;

function table(
  l: Layout,
  shard: string,
  d: { S: number; H: number; Hkv: number; D: number },
  mask: string,
  dtype: string,
  res: RunResult,
  check?: Check,
): string {
  const s = res.stats;
  const degrees =
    l.strategy === 'usp'
      ? ` (ulysses ${l.ulysses ?? l.world / l.ring!} × ring ${l.ring ?? l.world / l.ulysses!}, ${l.placement ?? 'head-first'})`
      : l.strategy === 'double-ring'
        ? ` (inner ${l.inner} × outer ${l.world / l.inner!})`
        : '';
  const lines = [
    `${l.strategy}${degrees} on ${l.world} ranks, ${shard} shards, mask ${mask}, S=${d.S} H=${d.H} Hkv=${d.Hkv} D=${d.D} ${dtype}`,
    `time: forward ${s.forwardMs.toFixed(1)} ms${res.dq ? `, backward ${s.backwardMs.toFixed(1)} ms` : ''} (slowest rank)`,
    `work balance (max/mean unmasked area): ${s.balance.toFixed(3)}`,
    '',
    ...rankTable(s.perRank),
  ];
  if (check) lines.push('', checkLine(check, 'against the f64 reference'));
  return `${lines.join('\n')}\n`;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description(
      'run a context-parallel strategy with random inputs: N CPU ranks, or one GPU per process under weft launch',
    );
  addLayoutOptions(cmd, false, 'required, except with --mode')
    .option('--seq <S>', 'sequence length (varlen: the tokens a --dist draw fills)')
    .option(
      '--mode <m>',
      'prefill | decode: inference over a sharded KV cache (--context, --new-tokens, --batch, --pass)',
    )
    .option('--context <P>', 'inference: cached tokens per request')
    .option('--new-tokens <T>', 'inference: new tokens per request (default 1)')
    .option('--batch <B>', 'inference: requests (default 1)')
    .option('--pass <p>', "prefill: kv | q | auto (default auto: the planner's choice, printed)")
    .requiredOption('--heads <H>', 'query heads')
    .option('--kv-heads <K>', 'key/value heads (default: the query heads)')
    .requiredOption('--dim <D>', 'head dimension')
    .option(
      '--mask <mask>',
      'full, causal, sliding:L,R, prefix:N, document, document-causal, document-sliding:L,R',
      'causal',
    )
    .option(
      '--backend <b>',
      'auto | cpu | cuda: cuda (and auto, under weft launch with GPUs) runs one process per GPU',
      'auto',
    )
    .option('--dtype <t>', 'CPU: f64 | f32 (default f32); GPU: bf16 | f16 (default bf16)')
    .option('--iters <n>', 'GPU: timed iterations', '5')
    .option('--warmup <n>', 'GPU: untimed iterations first', '2')
    .option('--timeline <file>', "GPU: write each rank's compute and communication spans of the last iteration (JSON)")
    .option('--docs <N>', 'N random documents (for document masks)')
    .option('--cu-seqlens <list>', 'document boundaries 0,…,S (for document masks)')
    .option('--lengths <file>', 'varlen: document lengths, one per line or comma separated')
    .option('--dist <name>', 'varlen: longtail | magi, drawn from --seed for --docs N or --seq S')
    .option('--rank-tokens <n>', 'varlen: most tokens one rank may hold (default: 5% above an even share)')
    .option('--token-slack <x>', "varlen: the default limit's headroom over an even share (default 0.05)")
    .option(
      '--dispatch <how>',
      "varlen: auto (default: the planner's choice by priced time, printed) | plain (no head-parallel documents, the star in one round, no visits)",
    )
    .option(
      '--head-docs <list>',
      'varlen: documents attended head-parallel, DOC[:U[xR]] (index from 0, Ulysses × ring)',
    )
    .option('--calibration <file>', 'varlen: calibration (JSON) or weft bench records to price the dispatch with')
    .option('--dry-plan', 'varlen: print the dispatch plan and run nothing')
    .option('--scale <x>', 'softmax scale (default 1/√D)')
    .option('--seed <n>', 'random seed', '1')
    .option('--no-backward', 'forward only')
    .option('--no-memory-check', "GPU: run even when weft's memory count says the layer does not fit")
    .option('--check', 'compare with the f64 reference')
    .option('--json', 'one JSON object instead of the table')
    .action((o: RunOpts & InferOpts) => guard(() => run(o)));
}
