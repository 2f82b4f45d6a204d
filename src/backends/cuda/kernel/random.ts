// Normal random 16-bit tensors drawn on the GPU (random.cu): a whole global tensor, or the rows
// of it at given global positions — the same values either way, so a rank's shard and a
// single-GPU check see one problem.
import type { Kernel } from '../runtime/module.js';
import type { CudaRuntime } from '../runtime/runtime.js';
import type { CudaTensor } from '../runtime/tensor.js';
import { numel } from '../../../tensor/host.js';
import { randomSource, type HalfType } from './source.js';

export class DeviceRandom {
  private readonly whole: Kernel;
  private readonly byRows: Kernel;

  constructor(private readonly rt: CudaRuntime) {
    const mod = rt.compile(randomSource(), { name: 'random.cu' });
    this.whole = mod.kernel('weft_randn16', ['ptr', 'u64', 'u64', 'f32', 'i32']);
    this.byRows = mod.kernel('weft_randn16_rows', ['ptr', 'ptr', 'u64', 'u64', 'u64', 'f32', 'i32']);
  }

  private grid(): number {
    return this.rt.info.sms * 8;
  }

  /** The global tensor of `seed`. */
  tensor(dtype: HalfType, shape: readonly number[], seed: number, scale = 1): CudaTensor {
    const t = this.rt.device.empty(dtype, shape);
    if (t.numel) this.whole.launch({ grid: this.grid(), block: 256 }, t, t.numel, seed, scale, dtype === 'f16' ? 1 : 0);
    return t;
  }

  /** Rows `positions` of the global tensor [S, ...rowShape] of `seed`. */
  rows(dtype: HalfType, positions: Int32Array, rowShape: readonly number[], seed: number, scale = 1): CudaTensor {
    return this.rowsInto(this.rt.device.empty(dtype, [positions.length, ...rowShape]), positions, seed, scale);
  }

  /** The same rows written into `t` [positions.length, ...] (bf16 or f16), in place; returns it. */
  rowsInto(t: CudaTensor, positions: Int32Array, seed: number, scale = 1): CudaTensor {
    if (t.dtype !== 'bf16' && t.dtype !== 'f16') throw new Error(`DeviceRandom: ${t.dtype} is not a 16-bit type`);
    if (t.shape[0] !== positions.length)
      throw new Error(`DeviceRandom: ${positions.length} positions for ${t.shape[0]} rows`);
    if (!t.numel) return t;
    const pos = this.rt.device.uploadInt32(positions);
    this.byRows.launch(
      { grid: this.grid(), block: 256 },
      t,
      pos,
      positions.length,
      numel(t.shape.slice(1)),
      seed,
      scale,
      t.dtype === 'f16' ? 1 : 0,
    );
    pos.release();
    return t;
  }
}
