// Problem files for CLI tests: random q, k, v, dout written as safetensors.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fromHost, readSafetensors, type StTensor, writeSafetensors } from '../../src/io/safetensors.js';
import { asF64, castHost, type HostTensor } from '../../src/tensor/host.js';
import type { DType } from '../../src/tensor/dtype.js';
import { randn, Rng } from '../../src/tensor/random.js';

export interface ProblemFile {
  file: string;
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  dout: Float64Array;
}

/** Shapes may carry a leading batch dim; values are rounded to `dtype` and returned as f64. */
export function writeProblem(
  dir: string,
  name: string,
  qShape: number[],
  kvShape: number[],
  opts: { dtype?: DType; seed?: number; dout?: boolean; cuSeqlens?: number[] } = {},
): ProblemFile {
  const rng = new Rng(opts.seed ?? 1);
  const dtype = opts.dtype ?? 'f64';
  const q = randn(rng, dtype, qShape),
    k = randn(rng, dtype, kvShape),
    v = randn(rng, dtype, kvShape),
    dout = randn(rng, dtype, qShape);
  const m = new Map<string, StTensor>([
    ['q', fromHost(q)],
    ['k', fromHost(k)],
    ['v', fromHost(v)],
  ]);
  if (opts.dout !== false) m.set('dout', fromHost(dout));
  if (opts.cuSeqlens)
    m.set('cu_seqlens', { dtype: 'I32', shape: [opts.cuSeqlens.length], data: Int32Array.from(opts.cuSeqlens) });
  const file = path.join(dir, `${name}.safetensors`);
  writeSafetensors(file, m);
  return { file, q: asF64(q), k: asF64(k), v: asF64(v), dout: asF64(dout) };
}

export function readOutputs(file: string): Map<string, { shape: number[]; data: Float64Array }> {
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [k, t] of readSafetensors(file))
    out.set(k, {
      shape: t.shape,
      data: asF64(
        castHost({ dtype: t.dtype === 'F32' ? 'f32' : 'f64', shape: t.shape, data: t.data } as HostTensor, 'f64'),
      ),
    });
  return out;
}

/** A safetensors file with a header of your own (for malformed files): `data` bytes follow it. */
export function writeRawSafetensors(file: string, header: unknown, data: Uint8Array | number): string {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const b = new Uint8Array(8 + h.length + d.length);
  new DataView(b.buffer).setBigUint64(0, BigInt(h.length), true);
  b.set(h, 8);
  b.set(d, 8 + h.length);
  writeFileSync(file, b);
  return file;
}
