// Device tensors: a dtype, a row-major shape and a raw device pointer. An owning tensor returns
// its memory to the caching allocator on release() or, failing that, when it is garbage
// collected; a view shares its base's memory and keeps the base alive.
import { bytesPerElement, type DType } from '../../../tensor/dtype.js';
import { fmtShape, numel, type Tensor } from '../../../tensor/host.js';
import type { Block, CachingAllocator } from './memory.js';

const registry = new FinalizationRegistry<{ allocator: CachingAllocator; block: Block }>(({ allocator, block }) => {
  if (block.live) allocator.free(block);
});

export class CudaTensor implements Tensor {
  readonly shape: readonly number[];
  readonly numel: number;
  readonly bytes: number;
  private owner?: { allocator: CachingAllocator; block: Block };

  constructor(
    readonly dtype: DType,
    shape: readonly number[],
    readonly ptr: bigint,
    owner?: { allocator: CachingAllocator; block: Block },
    private readonly base?: CudaTensor,
  ) {
    this.shape = Object.freeze([...shape]);
    this.numel = numel(shape);
    this.bytes = this.numel * bytesPerElement(dtype);
    if (owner) {
      this.owner = owner;
      registry.register(this, owner, this);
    }
  }

  /** The allocator block behind this tensor (its base's for a view), if any. */
  get block(): Block | undefined {
    return this.owner?.block ?? this.base?.block;
  }

  /** Elements [offset, offset + numel(shape)) of this tensor, reshaped; shares memory. */
  view(offset: number, shape: readonly number[]): CudaTensor {
    const n = numel(shape);
    if (!Number.isInteger(offset) || offset < 0 || offset + n > this.numel)
      throw new Error(`view of ${n} elements at ${offset} outside a tensor of ${this.numel} (${fmtShape(this.shape)})`);
    return new CudaTensor(
      this.dtype,
      shape,
      this.ptr + BigInt(offset * bytesPerElement(this.dtype)),
      undefined,
      this.base ?? this,
    );
  }

  /** Give the memory back to the pool now (stream-ordered: pending work on it still runs). */
  release(): void {
    if (!this.owner) throw new Error('release() of a view or a released tensor');
    registry.unregister(this);
    const { allocator, block } = this.owner;
    this.owner = undefined;
    allocator.free(block);
  }

  toString(): string {
    return `CudaTensor(${this.dtype}${fmtShape(this.shape)} @0x${this.ptr.toString(16)})`;
  }
}

/** The tensor as a CudaTensor, or an error naming the operation. */
export function asCuda(t: Tensor, what: string): CudaTensor {
  if (!(t instanceof CudaTensor))
    throw new Error(`${what}: expected a CUDA tensor, got ${'data' in t ? 'a host tensor' : typeof t}`);
  return t;
}
