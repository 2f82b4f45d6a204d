// Loaded cubins and typed kernel launches. A Kernel is declared once with its parameter types;
// each launch encodes the arguments into preallocated typed arrays, one per parameter, and hands
// their addresses to cuLaunchKernel (koffi turns the JS array of typed arrays into a void **).
import type { Driver } from './driver.js';
import { FUNC_ATTR } from './driver.js';
import type { Program } from './jit.js';
import type { Stream } from './stream.js';
import { CudaTensor } from './tensor.js';

export type ParamType = 'ptr' | 'i32' | 'u32' | 'i64' | 'u64' | 'f32' | 'f64';
export type Dim3 = number | readonly [number, number?, number?];
/** A pointer parameter takes a CudaTensor, a raw bigint device pointer or null. */
export type KernelArg = CudaTensor | bigint | number | null;

export interface LaunchConfig {
  grid: Dim3;
  block: Dim3;
  /** Dynamic shared memory in bytes (default 0). */
  shared?: number;
  /** Default: the runtime's compute stream. */
  stream?: Stream;
}

export interface KernelAttributes {
  numRegs: number;
  maxThreadsPerBlock: number;
  staticSharedBytes: number;
  localBytes: number;
  constBytes: number;
  ptxVersion: number;
  binaryVersion: number;
}

function dims(d: Dim3, what: string): [number, number, number] {
  const v: [number, number, number] = typeof d === 'number' ? [d, 1, 1] : [d[0], d[1] ?? 1, d[2] ?? 1];
  for (const x of v)
    if (!Number.isInteger(x) || x < 1 || x > 0x7fffffff)
      throw new Error(`launch: ${what} dimension ${x} is not a positive integer`);
  return v;
}

type Slot = Int32Array | Uint32Array | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

function slot(t: ParamType): Slot {
  switch (t) {
    case 'ptr':
    case 'u64':
      return new BigUint64Array(1);
    case 'i64':
      return new BigInt64Array(1);
    case 'i32':
      return new Int32Array(1);
    case 'u32':
      return new Uint32Array(1);
    case 'f32':
      return new Float32Array(1);
    case 'f64':
      return new Float64Array(1);
  }
}

export class Kernel {
  private readonly slots: Slot[];

  constructor(
    private readonly driver: Driver,
    readonly handle: bigint,
    readonly name: string,
    readonly params: readonly ParamType[],
    private readonly defaultStream: Stream,
  ) {
    this.slots = params.map(slot);
  }

  launch(cfg: LaunchConfig, ...args: KernelArg[]): void {
    if (args.length !== this.params.length)
      throw new Error(`launch ${this.name}: ${args.length} arguments for ${this.params.length} parameters`);
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!,
        t = this.params[i]!,
        s = this.slots[i]!;
      if (t === 'ptr')
        (s as BigUint64Array)[0] = a instanceof CudaTensor ? a.ptr : a === null ? 0n : BigInt(a as bigint | number);
      else if (t === 'i64' || t === 'u64') (s as BigInt64Array)[0] = BigInt(a as bigint | number);
      else if (typeof a === 'number') (s as Float64Array)[0] = a;
      else throw new Error(`launch ${this.name}: parameter ${i} (${t}) needs a number`);
    }
    const [gx, gy, gz] = dims(cfg.grid, 'grid');
    const [bx, by, bz] = dims(cfg.block, 'block');
    const stream = cfg.stream ?? this.defaultStream;
    const code = this.driver.fn.cuLaunchKernel(
      this.handle,
      gx,
      gy,
      gz,
      bx,
      by,
      bz,
      cfg.shared ?? 0,
      stream.handle,
      this.slots,
      null,
    ) as number;
    if (code !== 0) throw this.driver.checker.error(`cuLaunchKernel(${this.name})`, code);
  }

  /** Allow up to `bytes` of dynamic shared memory per block (beyond the default 48 KiB). */
  setMaxDynamicSharedMemory(bytes: number): void {
    this.driver.call('cuFuncSetAttribute', this.handle, FUNC_ATTR.maxDynamicShared, bytes);
  }

  attributes(): KernelAttributes {
    const a = (attr: number): number => this.driver.int('cuFuncGetAttribute', attr, this.handle);
    return {
      numRegs: a(FUNC_ATTR.numRegs),
      maxThreadsPerBlock: a(FUNC_ATTR.maxThreads),
      staticSharedBytes: a(FUNC_ATTR.sharedBytes),
      localBytes: a(FUNC_ATTR.localBytes),
      constBytes: a(FUNC_ATTR.constBytes),
      ptxVersion: a(FUNC_ATTR.ptxVersion),
      binaryVersion: a(FUNC_ATTR.binaryVersion),
    };
  }
}

export class CudaModule {
  private unloaded = false;

  constructor(
    private readonly driver: Driver,
    readonly handle: bigint,
    readonly program: Program,
    /** Whether the cubin came from the disk cache, and how long compile-or-load took. */
    readonly cacheHit: boolean,
    readonly compileMs: number,
    private readonly defaultStream: Stream,
  ) {}

  /** The CUfunction for a symbol, or for a name expression given at compile time. */
  function(name: string): bigint {
    if (this.unloaded) throw new Error('module already unloaded');
    const symbol = this.program.lowered[name] ?? name;
    return this.driver.u64('cuModuleGetFunction', this.handle, symbol);
  }

  kernel(name: string, params: readonly ParamType[]): Kernel {
    return new Kernel(this.driver, this.function(name), name, params, this.defaultStream);
  }

  unload(): void {
    if (this.unloaded) return;
    this.unloaded = true;
    this.driver.call('cuModuleUnload', this.handle);
  }
}
