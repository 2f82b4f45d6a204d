// `weft attn`: exact attention from a safetensors file to a safetensors file, on one rank or,
// with --strategy, on N CPU ranks (the command shards, runs the ranks and gathers, so the files
// are the same either way); with --backend cuda on one GPU, or one GPU per process under a
// launcher. Under a launcher (weft launch, torchrun, srun, mpirun) every process is one rank:
// it reads only its own rows of the input, and rank 0 gathers and writes the outputs.
import type { Command } from 'commander';
import { solve } from '../../api/attention.js';
import { UserError } from '../../errors.js';
import { defaultScale } from '../../kernel/kernel.js';
import { maskName } from '../../mask/spec.js';
import { resolveOutput } from '../../io/output.js';
import { loadProblem, saveOutputs } from '../../io/problem.js';
import { connectStore, type DistEnv, distEnv } from '../../launch/env.js';
import { readFileShard } from '../../run/file-shards.js';
import { checkWorld } from '../../launch/cluster.js';
import { runRankShards } from '../../run/launched.js';
import { type Layout, validateLayout } from '../../run/index.js';
import { type AttnOpts, reportAttn, warnIgnored } from '../attn-setup.js';
import { guard } from '../errors.js';
import { addLayoutOptions, layoutFrom, timeoutMs } from '../layout-options.js';
import { parseChoice, parseNumber } from '../options.js';

export function registerAttn(program: Command): void {
  const cmd = program
    .command('attn')
    .description('exact attention: q, k, v (and optionally dout, cu_seqlens) in; out, lse (and dq, dk, dv) out');
  addLayoutOptions(cmd, false)
    .requiredOption(
      '--in <file>',
      'input safetensors: q [S,H,D], k/v [S,Hkv,D], optional dout, cu_seqlens (a leading batch dim is accepted)',
    )
    .requiredOption('--out <file>', 'output safetensors: out, lse [H,S], and dq, dk, dv when dout is given')
    .option(
      '--mask <mask>',
      'full | causal | sliding:L,R | prefix:N | document | document-causal | document-sliding:L,R',
      'full',
    )
    .option('--scale <x>', 'softmax scale (default 1/sqrt(D))')
    .option('--dtype <t>', "CPU arithmetic and output type: f64 | f32 (GPU: the inputs' bf16/f16, lse f32)", 'f32')
    .option('--backend <b>', 'cpu | cuda (one GPU; one per process under weft launch, torchrun, srun or mpirun)', 'cpu')
    .option('--json', 'print a JSON summary on stdout')
    .action((o: AttnOpts) => guard(() => attn(o)));
}

async function attn(o: AttnOpts): Promise<void> {
  const backend = parseChoice(o.backend, '--backend', ['cpu', 'cuda'] as const);
  const scaleArg = o.scale === undefined ? undefined : parseNumber(o.scale, '--scale', { positive: true });
  const layout = layoutFrom(o);
  const dist = distEnv();
  if (dist && !layout)
    throw new UserError(
      `under a launcher (${dist.launcher}) every process is one rank: give --strategy and --world ${dist.worldSize}`,
    );
  // the GPU path lives in its own module so that CPU runs never load the CUDA backend
  if (backend === 'cuda') return (await import('./attn-gpu.js')).attnGpu(o, layout, dist, scaleArg);
  const dtype = parseChoice(o.dtype, '--dtype', ['f64', 'f32'] as const);
  if (dist) return attnLaunched(o, layout!, dist, dtype, scaleArg);
  const out = resolveOutput(o.out, [o.in]); // before any work: a bad --out fails at once, not after the run
  const p = loadProblem(o.in, o.mask, dtype);
  const scale = scaleArg ?? defaultScale(p.D);
  if (layout) validateLayout(layout, { S: p.q.shape[0]!, H: p.H, Hkv: p.Hkv }); // before any rank starts, and before warnings
  warnIgnored(o, p.ignored);
  const t0 = performance.now();
  const r = await solve(p, { scale, dtype, layout, timeoutMs: timeoutMs(o) });
  const ms = performance.now() - t0;
  saveOutputs(out, p, r, dtype, { producer: 'weft attn', mask: maskName(p.mask), scale: String(scale) });
  reportAttn(o, layout, {
    ...p,
    backward: Boolean(p.dout),
    dtype,
    scale,
    where: layout ? `${layout.strategy} on ${layout.world} ranks` : 'one rank',
    ms,
  });
}

/** One CPU rank of a launched job: this rank's rows from the file, rank 0 writes. */
async function attnLaunched(
  o: AttnOpts,
  layout: Layout,
  d: DistEnv,
  dtype: 'f64' | 'f32',
  scaleArg: number | undefined,
): Promise<void> {
  checkWorld(layout, d);
  const out = d.rank === 0 ? resolveOutput(o.out, [o.in]) : undefined; // rank 0 writes: a bad --out fails before any work
  const f = readFileShard(o.in, o.mask, layout, d.rank);
  if (d.rank === 0) warnIgnored(o, f.shape.ignored);
  const scale = scaleArg ?? defaultScale(f.shape.D);
  const store = await connectStore(d, timeoutMs(o));
  const t0 = performance.now();
  const r = await runRankShards(
    f,
    {
      S: f.T,
      H: f.shape.H,
      Hkv: f.shape.Hkv,
      D: f.shape.D,
      mask: f.shape.mask,
      scale,
      dtype,
      layout: f.layout,
      shard: f.shard,
    },
    d,
    store,
    { timeoutMs: timeoutMs(o) },
  );
  store.close();
  if (!r || !out) return;
  saveOutputs(out, f.shape, r, dtype, { producer: 'weft attn', mask: maskName(f.shape.mask), scale: String(scale) });
  reportAttn(o, layout, {
    ...f.shape,
    dtype,
    scale,
    where: `${layout.strategy} on ${d.worldSize} processes (${d.launcher})`,
    ms: performance.now() - t0,
  });
}
