// What every path of `weft attn` shares (one GPU, GPUs under a launcher, CPU ranks): its options,
// the warning for unused tensors, and the summary line or JSON.
import type { Layout } from '../run/index.js';
import type { LayoutOpts } from './layout-options.js';

export interface AttnOpts extends LayoutOpts {
  in: string;
  out: string;
  mask: string;
  scale?: string;
  dtype: string;
  backend: string;
  json?: boolean;
}

/** What every path reports: sizes, where it ran, how long. */
export interface AttnRun {
  batch: number;
  batched: boolean;
  S: number;
  H: number;
  Hkv: number;
  D: number;
  backward: boolean;
  dtype: string;
  scale: number;
  where: string;
  ms: number;
}

export function reportAttn(o: AttnOpts, layout: Layout | undefined, r: AttnRun): void {
  const summary = {
    in: o.in,
    out: o.out,
    batch: r.batch,
    seq: r.S,
    heads: r.H,
    kvHeads: r.Hkv,
    dim: r.D,
    mask: o.mask,
    scale: r.scale,
    dtype: r.dtype,
    backward: r.backward,
    layout: layout ?? null,
    where: r.where,
    ms: Math.round(r.ms * 10) / 10,
  };
  if (o.json) process.stdout.write(JSON.stringify(summary) + '\n');
  else
    process.stderr.write(
      `weft attn: ${r.batched ? `B=${r.batch} ` : ''}S=${r.S} H=${r.H}/${r.Hkv} D=${r.D} mask=${o.mask} ${r.dtype}${r.backward ? ' fwd+bwd' : ' fwd'} on ${r.where} in ${(r.ms / 1000).toFixed(2)} s → ${o.out}\n`,
    );
}

/** Tensors of the input that the problem does not use, named once it is accepted. */
export function warnIgnored(o: AttnOpts, ignored: readonly string[]): void {
  for (const n of ignored) process.stderr.write(`weft attn: ignoring ${n} in ${o.in}\n`);
}
