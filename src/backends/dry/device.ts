// The dry-run Device: tensors carry a shape and a dtype and nothing else, so a strategy can run
// for a rank of any size at no cost. Wrapped in MeteredDevice (strategy/accounting.ts) it tells
// what the code allocates, holds and moves through each elementwise operation.
import { checkBox, type Box, type Device } from '../../device/device.js';
import type { DType } from '../../tensor/dtype.js';
import type { HostTensor, Tensor } from '../../tensor/host.js';
import type { RunTrace } from './trace.js';

/** A tensor with no memory. */
export interface DryTensor extends Tensor {
  readonly dry: true;
}

export class DryDevice implements Device {
  readonly kind = 'cuda' as const;
  /** `trace`: where adds (folds of arriving sums and partials) are recorded */
  constructor(private readonly trace?: RunTrace) {}

  private make(dtype: DType, shape: readonly number[]): DryTensor {
    return { dtype, shape: [...shape], dry: true };
  }

  zeros(dtype: DType, shape: readonly number[]): Tensor {
    return this.make(dtype, shape);
  }
  empty(dtype: DType, shape: readonly number[]): Tensor {
    return this.make(dtype, shape);
  }
  full(dtype: DType, shape: readonly number[]): Tensor {
    return this.make(dtype, shape);
  }
  cast(src: Tensor, dtype: DType): Tensor {
    return this.make(dtype, src.shape);
  }
  /** Checked as a real device checks it: a box outside either tensor is a bug in the caller. */
  copyBox(src: Tensor, dst: Tensor, box: Box): void {
    checkBox(src, dst, box);
  }
  add(dst: Tensor, src: Tensor): void {
    if (dst.shape.join() !== src.shape.join())
      throw new Error(`dry add: shapes ${JSON.stringify(dst.shape)} and ${JSON.stringify(src.shape)} differ`);
    this.trace?.fold('add', dst);
  }
  upload(t: HostTensor): Tensor {
    return this.make(t.dtype, t.shape);
  }
  release(): void {}
  download(): Promise<HostTensor> {
    return Promise.reject(new Error('a dry-run tensor has no data to download'));
  }
  synchronize(): Promise<void> {
    return Promise.resolve();
  }
}
