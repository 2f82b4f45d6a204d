// The Hugging Face safetensors format: an 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {str: str}}, then the raw
// little-endian tensor bytes. Reading is strict, as the format's own reader is: a header that is
// not one JSON object, a name given twice, or data ranges that overlap, leave gaps or stop short
// of the end are refused, never half accepted. Writing goes through writeOutput (output.ts).
import { readFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import type { DType } from '../tensor/dtype.js';
import { type HostTensor, numel } from '../tensor/host.js';
import { type OutputTarget, writeOutput } from './output.js';

export type StDType = 'F64' | 'F32' | 'BF16' | 'F16' | 'I32' | 'I64';
export type StData = Float64Array | Float32Array | Uint16Array | Int32Array | BigInt64Array;
export interface StTensor {
  dtype: StDType;
  shape: number[];
  data: StData;
}

const SIZE: Record<StDType, number> = { F64: 8, F32: 4, BF16: 2, F16: 2, I32: 4, I64: 8 };
const FROM_DTYPE: Record<DType, StDType> = { f64: 'F64', f32: 'F32', bf16: 'BF16', f16: 'F16' };
const TO_DTYPE: Partial<Record<StDType, DType>> = { F64: 'f64', F32: 'f32', BF16: 'bf16', F16: 'f16' };
const MAX_HEADER = 100 * 1024 * 1024;

export class SafetensorsError extends UserError {}

function isStDType(s: unknown): s is StDType {
  return typeof s === 'string' && s in SIZE;
}

function viewOf(dtype: StDType, bytes: Uint8Array): StData {
  // copy so the typed array is aligned whatever the header length was
  return typedView(dtype, bytes.slice().buffer);
}

/** A typed array of `dtype` over a whole (aligned) buffer. */
export function typedView(dtype: StDType, buf: ArrayBuffer): StData {
  switch (dtype) {
    case 'F64':
      return new Float64Array(buf);
    case 'F32':
      return new Float32Array(buf);
    case 'BF16':
    case 'F16':
      return new Uint16Array(buf);
    case 'I32':
      return new Int32Array(buf);
    case 'I64':
      return new BigInt64Array(buf);
  }
}

/**
 * The first name that appears twice among the header object's own keys (JSON.parse would keep the
 * last silently). A scan of the top level only: strings are skipped whole, nesting is counted.
 */
function duplicateKey(json: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      let k = j + 1;
      while (k < json.length && ' \t\n\r'.includes(json[k]!)) k++;
      if (depth === 1 && json[k] === ':') {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (seen.has(key)) return key;
        seen.add(key);
      }
      i = j;
    } else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
  }
  return undefined;
}

/** Parse a whole file's bytes; `name` is used in messages. */
export function parseSafetensors(bytes: Uint8Array, name = 'input'): Map<string, StTensor> {
  if (bytes.length < 8) throw new SafetensorsError(`${name}: not a safetensors file (only ${bytes.length} bytes)`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER || 8 + n > bytes.length)
    throw new SafetensorsError(`${name}: truncated or corrupt (header of ${n} bytes in a file of ${bytes.length})`);
  let header: unknown, text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch {
    throw new SafetensorsError(`${name}: corrupt header (not valid JSON)`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new SafetensorsError(`${name}: corrupt header (not a JSON object)`);
  const twice = duplicateKey(text);
  if (twice !== undefined) throw new SafetensorsError(`${name}: corrupt header (tensor '${twice}' is named twice)`);
  const data = bytes.subarray(8 + n);
  const out = new Map<string, StTensor>();
  const ranges: [number, number, string][] = [];
  for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') continue;
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== 'object' || e === null)
      throw new SafetensorsError(`${name}: tensor '${key}' has a malformed entry`);
    if (!isStDType(e.dtype))
      throw new SafetensorsError(
        `${name}: tensor '${key}' has unsupported dtype ${JSON.stringify(e.dtype)} (supported: ${Object.keys(SIZE).join(', ')})`,
      );
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(`${name}: tensor '${key}' has a malformed shape`);
    const off = e.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      off[0] > off[1]
    )
      throw new SafetensorsError(`${name}: tensor '${key}' has malformed data_offsets`);
    const [b, end] = off as [number, number];
    const want = numel(e.shape as number[]) * SIZE[e.dtype];
    if (end - b !== want)
      throw new SafetensorsError(
        `${name}: tensor '${key}' holds ${end - b} bytes but ${e.dtype} [${e.shape}] needs ${want}`,
      );
    if (end > data.length)
      throw new SafetensorsError(`${name}: truncated (tensor '${key}' ends at byte ${end} of ${data.length})`);
    out.set(key, { dtype: e.dtype, shape: [...(e.shape as number[])], data: viewOf(e.dtype, data.subarray(b, end)) });
    ranges.push([b, end, key]);
  }
  // the ranges, in offset order, must tile the data exactly: no overlap, no gap, nothing after
  ranges.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let at = 0,
    last = '';
  for (const [b, end, key] of ranges) {
    if (b < at) throw new SafetensorsError(`${name}: corrupt (the data of tensors '${last}' and '${key}' overlap)`);
    if (b > at)
      throw new SafetensorsError(
        `${name}: corrupt (bytes ${at}–${b} of the data belong to no tensor${last ? `, after '${last}'` : ''})`,
      );
    at = end;
    last = key;
  }
  if (at !== data.length)
    throw new SafetensorsError(`${name}: corrupt (${data.length - at} bytes after the last tensor's data)`);
  return out;
}

export function readSafetensors(path: string): Map<string, StTensor> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(
      code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`,
    );
  }
  return parseSafetensors(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length), path);
}

/** Serialise tensors (in insertion order) to bytes. */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, StTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const [k, t] of tensors) {
    const bytes = t.data.byteLength;
    if (bytes !== numel(t.shape) * SIZE[t.dtype])
      throw new Error(`safetensors: '${k}' data does not match ${t.dtype} [${t.shape}]`);
    header[k] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // keep the data 8-byte aligned
  const hb = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hb.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(hb.length), true);
  out.set(hb, 8);
  let at = 8 + hb.length;
  for (const t of tensors.values()) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Write to a checked output (output.ts: atomic for regular files, through symbolic links). */
export function writeSafetensors(
  target: OutputTarget | string,
  tensors: ReadonlyMap<string, StTensor>,
  metadata?: Record<string, string>,
): void {
  writeOutput(target, serializeSafetensors(tensors, metadata));
}

export function fromHost(t: HostTensor): StTensor {
  return { dtype: FROM_DTYPE[t.dtype], shape: [...t.shape], data: t.data };
}

/** A floating-point safetensors tensor as a host tensor (integers are refused). */
export function toHost(t: StTensor, name: string): HostTensor {
  const dtype = TO_DTYPE[t.dtype];
  if (!dtype)
    throw new SafetensorsError(`tensor '${name}' must be floating point (F64, F32, BF16, F16), not ${t.dtype}`);
  return { dtype, shape: [...t.shape], data: t.data as HostTensor['data'] };
}

/** An integer tensor as plain numbers (for cu_seqlens). */
export function toInts(t: StTensor, name: string): number[] {
  if (t.dtype === 'I32') return Array.from(t.data as Int32Array);
  if (t.dtype === 'I64')
    return Array.from(t.data as BigInt64Array, (x) => {
      if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < -BigInt(Number.MAX_SAFE_INTEGER))
        throw new SafetensorsError(`tensor '${name}' holds an integer too large (${x})`);
      return Number(x);
    });
  throw new SafetensorsError(`tensor '${name}' must be an integer tensor (I32 or I64), not ${t.dtype}`);
}
