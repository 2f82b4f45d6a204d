// Reading a rank's own rows of a safetensors file: the header gives each tensor's byte range, a
// row of a [T, heads, D] tensor (a leading batch dimension folds into T) is heads·D contiguous
// elements, so a rank reads only the runs of rows its shard holds — never the whole file.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { UserError } from '../errors.js';
import { SafetensorsError, type StDType, type StTensor, typedView } from './safetensors.js';
import type { TensorEntry } from './problem.js';

/** Bytes per element of each safetensors dtype weft reads (the format's own sizes). */
const BYTES: Record<StDType, number> = { F64: 8, F32: 4, BF16: 2, F16: 2, I32: 4, I64: 8 };
const MAX_HEADER = 100 * 1024 * 1024;

/** A tensor of the file: dtype, shape and its bytes' absolute offsets in the file. */
export interface FileTensor extends TensorEntry {
  begin: number;
  end: number;
}

function readAt(fd: number, length: number, position: number, path: string): Uint8Array {
  const buf = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) throw new SafetensorsError(`${path}: truncated (wanted ${length} bytes at ${position})`);
    got += n;
  }
  return buf;
}

/** An open safetensors file read by byte ranges: its header, and the rows a rank asks for. */
export class RowReader {
  readonly tensors = new Map<string, FileTensor>();
  private readonly fd: number;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SafetensorsError(
        code === 'ENOENT' ? `${path}: no such file` : `${path}: cannot read (${code ?? (e as Error).message})`,
      );
    }
    try {
      this.index();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  private index(): void {
    const size = fstatSync(this.fd).size;
    if (size < 8) throw new SafetensorsError(`${this.path}: not a safetensors file (only ${size} bytes)`);
    const n = Number(new DataView(readAt(this.fd, 8, 0, this.path).buffer).getBigUint64(0, true));
    if (n > MAX_HEADER || 8 + n > size)
      throw new SafetensorsError(`${this.path}: truncated or corrupt (header of ${n} bytes in a file of ${size})`);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readAt(this.fd, n, 8, this.path)));
    } catch {
      throw new SafetensorsError(`${this.path}: corrupt header (not valid JSON)`);
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header))
      throw new SafetensorsError(`${this.path}: corrupt header (not a JSON object)`);
    const base = 8 + n,
      dataLen = size - base;
    for (const [key, raw] of Object.entries(header as Record<string, unknown>)) {
      if (key === '__metadata__') continue;
      const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e !== 'object' || e === null || typeof e.dtype !== 'string' || !(e.dtype in BYTES))
        throw new SafetensorsError(
          `${this.path}: tensor '${key}' has unsupported dtype ${JSON.stringify(e?.dtype)} (supported: ${Object.keys(BYTES).join(', ')})`,
        );
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        throw new SafetensorsError(`${this.path}: tensor '${key}' has a malformed shape`);
      const off = e.data_offsets;
      if (
        !Array.isArray(off) ||
        off.length !== 2 ||
        !off.every((x) => Number.isSafeInteger(x) && x >= 0) ||
        off[0] > off[1]
      )
        throw new SafetensorsError(`${this.path}: tensor '${key}' has malformed data_offsets`);
      const dtype = e.dtype as StDType,
        shape = e.shape as number[];
      const want = shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
      if (off[1] - off[0] !== want)
        throw new SafetensorsError(
          `${this.path}: tensor '${key}' holds ${off[1] - off[0]} bytes but ${dtype} [${shape}] needs ${want}`,
        );
      if (off[1] > dataLen)
        throw new SafetensorsError(`${this.path}: truncated (tensor '${key}' ends at byte ${off[1]} of ${dataLen})`);
      this.tensors.set(key, { dtype, shape: [...shape], begin: base + off[0], end: base + off[1] });
    }
  }

  /** A whole (small) tensor, e.g. cu_seqlens. */
  whole(name: string): StTensor {
    const t = this.tensors.get(name);
    if (!t) throw new UserError(`${this.path}: missing tensor '${name}'`);
    return {
      dtype: t.dtype,
      shape: t.shape,
      data: typedView(t.dtype, readAt(this.fd, t.end - t.begin, t.begin, this.path).buffer as ArrayBuffer),
    };
  }

  /**
   * Rows `positions` (in that order) of tensor `name` seen as [T, rowElems]: contiguous runs of
   * positions are read with one call each.
   */
  rows(name: string, positions: Int32Array, rowElems: number): StTensor {
    const t = this.tensors.get(name)!;
    const rowBytes = rowElems * BYTES[t.dtype];
    const out = new Uint8Array(positions.length * rowBytes);
    for (let i = 0; i < positions.length;) {
      let j = i + 1;
      while (j < positions.length && positions[j] === positions[j - 1]! + 1) j++;
      out.set(readAt(this.fd, (j - i) * rowBytes, t.begin + positions[i]! * rowBytes, this.path), i * rowBytes);
      i = j;
    }
    return { dtype: t.dtype, shape: [positions.length, rowElems], data: typedView(t.dtype, out.buffer as ArrayBuffer) };
  }

  close(): void {
    closeSync(this.fd);
  }
}
