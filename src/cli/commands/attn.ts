// `weft attn`: exact attention from a safetensors file to a safetensors file, on one rank or,
// with --strategy, on N CPU ranks (the command shards, runs the ranks and gathers, so the files
// are the same either way).
import type { Command } from 'commander';
import { attendSingle } from '../../kernel/attend.js';
import { CpuKernel } from '../../backends/cpu/kernel.js';
import { defaultScale } from '../../kernel/kernel.js';
import { maskName } from '../../mask/spec.js';
import { resolveOutput } from '../../io/output.js';
import { loadProblem, saveOutputs } from '../../io/problem.js';
import { runDistributed, validateLayout } from '../../run/index.js';
import { guard } from '../errors.js';
import { addLayoutOptions, layoutFrom, type LayoutOpts, timeoutMs } from '../layout-options.js';
import { parseChoice, parseNumber } from '../options.js';

interface AttnOpts extends LayoutOpts { in: string; out: string; mask: string; scale?: string; dtype: string; json?: boolean }

export function registerAttn(program: Command): void {
  const cmd = program.command('attn')
    .description('exact attention: q, k, v (and optionally dout, cu_seqlens) in; out, lse (and dq, dk, dv) out');
  addLayoutOptions(cmd, false)
    .requiredOption('--in <file>', 'input safetensors: q [S,H,D], k/v [S,Hkv,D], optional dout, cu_seqlens (a leading batch dim is accepted)')
    .requiredOption('--out <file>', 'output safetensors: out, lse [H,S], and dq, dk, dv when dout is given')
    .option('--mask <mask>', 'full | causal | sliding:L,R | prefix:N | document | document-causal | document-sliding:L,R', 'full')
    .option('--scale <x>', 'softmax scale (default 1/sqrt(D))')
    .option('--dtype <t>', 'arithmetic and output type: f64 | f32', 'f32')
    .option('--json', 'print a JSON summary on stdout')
    .action((o: AttnOpts) => guard(() => attn(o)));
}

async function attn(o: AttnOpts): Promise<void> {
  const dtype = parseChoice(o.dtype, '--dtype', ['f64', 'f32'] as const);
  const scaleArg = o.scale === undefined ? undefined : parseNumber(o.scale, '--scale', { positive: true });
  const layout = layoutFrom(o);
  const timeout = timeoutMs(o);
  const out = resolveOutput(o.out, [o.in]); // before any work: a bad --out fails at once, not after the run
  const p = loadProblem(o.in, o.mask, dtype);
  const scale = scaleArg ?? defaultScale(p.D);
  if (layout) validateLayout(layout, { S: p.q.shape[0]!, H: p.H, Hkv: p.Hkv }); // before any rank starts
  for (const n of p.ignored) process.stderr.write(`weft attn: ignoring ${n} in ${o.in}\n`); // once the input is accepted
  const t0 = performance.now();
  const r = layout
    ? await runDistributed({ q: p.q, k: p.k, v: p.v, dout: p.dout, mask: p.mask, scale, dtype }, layout, { timeoutMs: timeout })
    : attendSingle(new CpuKernel(), p.q, p.k, p.v, p.mask, scale, p.dout, { nonFinite: 'propagate' }); // loadProblem refused them
  const ms = performance.now() - t0;
  const where = layout ? `${layout.strategy} on ${layout.world} ranks` : 'one rank';
  saveOutputs(out, p, r, dtype, { producer: 'weft attn', mask: maskName(p.mask), scale: String(scale) });
  const summary = {
    in: o.in, out: o.out, batch: p.batch, seq: p.S, heads: p.H, kvHeads: p.Hkv, dim: p.D,
    mask: o.mask, scale, dtype, backward: Boolean(p.dout), layout: layout ?? null, ms: Math.round(ms * 10) / 10,
  };
  if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else process.stderr.write(`weft attn: ${p.batched ? `B=${p.batch} ` : ''}S=${p.S} H=${p.H}/${p.Hkv} D=${p.D} mask=${o.mask} ${dtype}${p.dout ? ' fwd+bwd' : ' fwd'} on ${where} in ${(ms / 1000).toFixed(2)} s → ${o.out}\n`);
}
