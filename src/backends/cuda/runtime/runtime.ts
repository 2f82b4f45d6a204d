// One GPU as seen by one process: the driver, the device's primary context (shared with the
// CUDA runtime, so NCCL works on the same context), a compute and a communication stream, the
// caching allocator, NVRTC with its cubin cache, and the health monitors that let a host-side wait
// turn a stuck collective into an error instead of a hang.
import { detectLaunch } from '../../../launch/cluster.js';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { bytesPerElement, type DType } from '../../../tensor/dtype.js';
import { numel } from '../../../tensor/host.js';
import { CUDA_INCLUDE_DIRS } from './discovery.js';
import { ATTR, Driver } from './driver.js';
import { compileCached, CubinCache, defaultCacheDir, type CompileTarget } from './jit.js';
import { CachingAllocator, type Marker, type RawMemory } from './memory.js';
import { CudaModule } from './module.js';
import { Nvrtc } from './nvrtc.js';
import { createEvent, type CudaEvent, pollUntil, Stream } from './stream.js';
import { CudaTensor } from './tensor.js';
import { CudaDevice } from './device.js';

export interface CudaInfo {
  ordinal: number;
  name: string;
  cc: [number, number];
  /** The NVRTC target, e.g. sm_90a. */
  arch: string;
  sms: number;
  l2Bytes: number;
  totalMem: number;
  maxSharedOptin: number;
  driverVersion: number;
  nvrtcVersion: string;
  libcuda: string;
  libnvrtc: string;
}

export interface OpenOptions {
  /** Device ordinal; default the launcher's local rank, else 0. */
  device?: number;
  /** Cubin cache directory; null disables the cache; default defaultCacheDir(). */
  cacheDir?: string | null;
}

export interface CompileOptions {
  /** Program name, shown in NVRTC's messages (default 'weft.cu'). */
  name?: string;
  /** Extra NVRTC options, after the architecture and include path weft sets. */
  options?: readonly string[];
  /** C++ names (template instantiations) to look up later with module.kernel(expr, …). */
  nameExpressions?: readonly string[];
}

function archOf(cc: [number, number], env: NodeJS.ProcessEnv): string {
  if (env.WEFT_CUDA_ARCH) return env.WEFT_CUDA_ARCH;
  // the 'a' targets unlock architecture-specific instructions (wgmma, setmaxnreg on sm_90a)
  return `sm_${cc[0]}${cc[1]}${cc[0] >= 9 ? 'a' : ''}`;
}

function includeDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.WEFT_CUDA_INCLUDE) return env.WEFT_CUDA_INCLUDE;
  return CUDA_INCLUDE_DIRS.find((d) => existsSync(path.join(d, 'cuda_fp16.h')));
}

let opened: Promise<CudaRuntime> | undefined;
let openedOrdinal: number | undefined;

/** The process's CUDA runtime (one GPU per process; opened once). */
export function openCuda(opts: OpenOptions = {}): Promise<CudaRuntime> {
  const ordinal = opts.device ?? detectLaunch()?.localRank ?? 0; // the launcher's local rank (torchrun, srun, mpirun)
  if (opened) {
    if (ordinal !== openedOrdinal)
      throw new Error(`this process already uses CUDA device ${openedOrdinal}; one device per process`);
    return opened;
  }
  openedOrdinal = ordinal;
  opened = CudaRuntime.create(ordinal, opts).catch((e) => {
    opened = undefined;
    throw e;
  });
  return opened;
}

export class CudaRuntime {
  readonly compute: Stream;
  readonly comm: Stream;
  readonly allocator: CachingAllocator;
  readonly device: CudaDevice;
  readonly cache: CubinCache;
  private readonly baseOptions: string[];
  private readonly target: CompileTarget;
  private readonly eventPool: CudaEvent[] = [];
  private readonly monitors = new Set<() => void>();

  private constructor(
    readonly driver: Driver,
    readonly nvrtc: Nvrtc,
    readonly info: CudaInfo,
    readonly ctx: bigint,
    cacheDir: string | null,
  ) {
    this.compute = Stream.create(driver, 'compute');
    // transfers first: a kernel on the compute stream fills every SM with its waves of blocks, and
    // a collective's blocks on a stream of equal priority start only when that kernel's last wave
    // does — the ring's "overlapped" hop then runs after the kernel (docs/runtime.md). At the
    // highest priority the block scheduler gives NCCL the next SM that frees. WEFT_COMM_PRIORITY=0
    // keeps the normal priority (to measure the difference).
    this.comm = Stream.create(
      driver,
      'comm',
      process.env.WEFT_COMM_PRIORITY === '0' ? undefined : Stream.highestPriority(driver),
    );
    const raw: RawMemory = {
      alloc: (bytes) => driver.u64('cuMemAlloc', bytes),
      free: (ptr) => driver.call('cuMemFree', ptr),
      mark: (stream) => this.mark(stream),
      synchronize: () => driver.call('cuCtxSynchronize'),
      info: () => this.memInfo(),
    };
    this.allocator = new CachingAllocator(raw);
    this.cache = new CubinCache(cacheDir);
    const inc = includeDir(process.env);
    this.baseOptions = [`--gpu-architecture=${info.arch}`, ...(inc ? [`--include-path=${inc}`] : [])];
    this.target = { device: info.name, cc: info.cc, driver: info.driverVersion, nvrtc: info.nvrtcVersion };
    this.device = new CudaDevice(this);
  }

  static async create(ordinal: number, opts: OpenOptions): Promise<CudaRuntime> {
    const driver = await Driver.open();
    const count = driver.deviceCount();
    if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= count)
      throw new Error(`CUDA device ${ordinal} requested, but ${count} present`);
    const dev = driver.int('cuDeviceGet', ordinal);
    const ctx = driver.u64('cuDevicePrimaryCtxRetain', dev);
    driver.call('cuCtxSetCurrent', ctx);
    const nvrtc = await Nvrtc.open();
    const cc: [number, number] = [driver.attribute(ATTR.ccMajor, dev), driver.attribute(ATTR.ccMinor, dev)];
    const info: CudaInfo = {
      ordinal,
      name: driver.deviceName(dev),
      cc,
      arch: archOf(cc, process.env),
      sms: driver.attribute(ATTR.smCount, dev),
      l2Bytes: driver.attribute(ATTR.l2Bytes, dev),
      totalMem: Number(driver.u64('cuDeviceTotalMem', dev)),
      maxSharedOptin: driver.attribute(ATTR.maxSharedOptin, dev),
      driverVersion: driver.version(),
      nvrtcVersion: nvrtc.version,
      libcuda: driver.path,
      libnvrtc: nvrtc.path,
    };
    return new CudaRuntime(driver, nvrtc, info, ctx, opts.cacheDir === undefined ? defaultCacheDir() : opts.cacheDir);
  }

  /** Make this runtime's context current on the calling thread (the main thread already is). */
  makeCurrent(): void {
    this.driver.call('cuCtxSetCurrent', this.ctx);
  }

  private contextWarned = false;

  /**
   * After a foreign library call (NCCL) that may change the calling thread's CUDA context: put
   * ours back, and say so once on stderr. A changed context would send this rank's later
   * allocations and launches to another context — possibly another GPU.
   */
  keepCurrent(after: string): void {
    const cur = this.driver.u64('cuCtxGetCurrent');
    if (cur === this.ctx) return;
    this.makeCurrent();
    if (!this.contextWarned)
      process.stderr.write(
        `weft: ${after} left another CUDA context current on device ${this.info.ordinal} (0x${cur.toString(16)}); restored\n`,
      );
    this.contextWarned = true;
  }

  memInfo(): { free: number; total: number } {
    const free = new BigUint64Array(1),
      total = new BigUint64Array(1);
    this.driver.call('cuMemGetInfo', free, total);
    return { free: Number(free[0]), total: Number(total[0]) };
  }

  /** Compile CUDA C++ for this GPU (or load it from the cubin cache) and load the module. */
  compile(source: string, opts: CompileOptions = {}): CudaModule {
    const req = {
      source,
      name: opts.name ?? 'weft.cu',
      options: [...this.baseOptions, ...(opts.options ?? [])],
      nameExpressions: [...(opts.nameExpressions ?? [])],
    };
    const t0 = performance.now();
    const c = compileCached(req, this.target, this.cache, (r) => this.nvrtc.compile(r));
    const handle = this.driver.u64('cuModuleLoadData', c.program.cubin);
    return new CudaModule(this.driver, handle, c.program, c.hit, performance.now() - t0, this.compute);
  }

  /** A new stream (the runtime owns `compute` and `comm`). */
  stream(name: string): Stream {
    return Stream.create(this.driver, name);
  }

  /** A new event; timing events can measure elapsed time. */
  event(timing = false): CudaEvent {
    return createEvent(this.driver, timing);
  }

  /** A non-timing event from a pool; give it back with releaseEvent once no one waits on it. */
  borrowEvent(): CudaEvent {
    return this.eventPool.pop() ?? createEvent(this.driver, false);
  }

  releaseEvent(e: CudaEvent): void {
    this.eventPool.push(e);
  }

  private mark(stream: bigint): Marker {
    const e = this.borrowEvent();
    const code = this.driver.fn.cuEventRecord(e.handle, stream) as number;
    if (code !== 0) throw this.driver.checker.error('cuEventRecord', code);
    return { done: () => e.done(), release: () => this.releaseEvent(e) };
  }

  /** Uninitialised device memory for a tensor, ordered on `stream` (default: compute). */
  empty(dtype: DType, shape: readonly number[], stream: Stream = this.compute): CudaTensor {
    const block = this.allocator.alloc(numel(shape) * bytesPerElement(dtype), stream.handle);
    return new CudaTensor(dtype, shape, block.ptr, { allocator: this.allocator, block });
  }

  /** Record that `stream` uses `t`, so that its memory is not reused before that work is done. */
  recordUse(t: CudaTensor, stream: Stream): void {
    const b = t.block;
    if (b) this.allocator.recordUse(b, stream.handle);
  }

  /**
   * Register a health check, run while the host waits on the GPU; it throws to abort the wait
   * (the NCCL watchdog uses this). Returns a function that removes it.
   */
  addMonitor(check: () => void): () => void {
    this.monitors.add(check);
    return () => this.monitors.delete(check);
  }

  checkHealth(): void {
    for (const m of this.monitors) m();
  }

  /** Resolve once `event` has completed; rejects if a health monitor reports a failure first. */
  async waitEvent(event: CudaEvent): Promise<void> {
    await pollUntil(
      () => event.done(),
      () => this.checkHealth(),
    );
  }

  /** Resolve once all work enqueued on `stream` so far has completed. */
  async synchronize(stream: Stream = this.compute): Promise<void> {
    const e = this.borrowEvent().record(stream);
    try {
      await this.waitEvent(e);
    } finally {
      this.releaseEvent(e);
    }
  }
}
