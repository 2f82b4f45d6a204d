// The CUDA driver API through koffi: the versioned (_v2) entry points that cuda.h maps its names
// to, each return code checked. Handles (contexts, modules, functions, streams, events) are
// bigints, as koffi 3 represents pointers; device pointers are bigint CUdeviceptr values.
// Outputs go through one-element typed arrays so that 64-bit values always come back as bigint.
import { LIBCUDA, openLibrary } from './discovery.js';
import { Checker, CU_NOT_READY } from './errors.js';
import { bind, loadKoffi, type NativeFn } from './ffi.js';

const PROTOS = {
  cuInit: 'int cuInit(unsigned int flags)',
  cuDriverGetVersion: 'int cuDriverGetVersion(void *version)',
  cuGetErrorName: 'int cuGetErrorName(int error, _Out_ const char **str)',
  cuGetErrorString: 'int cuGetErrorString(int error, _Out_ const char **str)',
  cuDeviceGetCount: 'int cuDeviceGetCount(void *count)',
  cuDeviceGet: 'int cuDeviceGet(void *device, int ordinal)',
  cuDeviceGetName: 'int cuDeviceGetName(void *name, int len, int dev)',
  cuDeviceGetAttribute: 'int cuDeviceGetAttribute(void *value, int attrib, int dev)',
  cuDeviceTotalMem: 'int cuDeviceTotalMem_v2(void *bytes, int dev)',
  cuDevicePrimaryCtxRetain: 'int cuDevicePrimaryCtxRetain(void *ctx, int dev)',
  cuDevicePrimaryCtxRelease: 'int cuDevicePrimaryCtxRelease_v2(int dev)',
  cuCtxSetCurrent: 'int cuCtxSetCurrent(void *ctx)',
  cuCtxGetCurrent: 'int cuCtxGetCurrent(void *ctx)',
  cuCtxSynchronize: 'int cuCtxSynchronize()',
  cuMemGetInfo: 'int cuMemGetInfo_v2(void *free, void *total)',
  cuMemAlloc: 'int cuMemAlloc_v2(void *dptr, size_t bytes)',
  cuMemFree: 'int cuMemFree_v2(uint64_t dptr)',
  cuMemcpyHtoDAsync: 'int cuMemcpyHtoDAsync_v2(uint64_t dst, const void *src, size_t bytes, void *stream)',
  cuMemcpyDtoHAsync: 'int cuMemcpyDtoHAsync_v2(void *dst, uint64_t src, size_t bytes, void *stream)',
  cuMemcpyDtoDAsync: 'int cuMemcpyDtoDAsync_v2(uint64_t dst, uint64_t src, size_t bytes, void *stream)',
  cuMemcpy2DAsync: 'int cuMemcpy2DAsync_v2(const void *copy, void *stream)',
  cuMemsetD8Async: 'int cuMemsetD8Async(uint64_t dst, unsigned char value, size_t n, void *stream)',
  cuMemsetD16Async: 'int cuMemsetD16Async(uint64_t dst, unsigned short value, size_t n, void *stream)',
  cuMemsetD32Async: 'int cuMemsetD32Async(uint64_t dst, unsigned int value, size_t n, void *stream)',
  cuStreamCreate: 'int cuStreamCreate(void *stream, unsigned int flags)',
  cuStreamCreateWithPriority: 'int cuStreamCreateWithPriority(void *stream, unsigned int flags, int priority)',
  cuCtxGetStreamPriorityRange: 'int cuCtxGetStreamPriorityRange(void *least, void *greatest)',
  cuStreamDestroy: 'int cuStreamDestroy_v2(void *stream)',
  cuStreamSynchronize: 'int cuStreamSynchronize(void *stream)',
  cuStreamWaitEvent: 'int cuStreamWaitEvent(void *stream, void *event, unsigned int flags)',
  cuEventCreate: 'int cuEventCreate(void *event, unsigned int flags)',
  cuEventDestroy: 'int cuEventDestroy_v2(void *event)',
  cuEventRecord: 'int cuEventRecord(void *event, void *stream)',
  cuEventQuery: 'int cuEventQuery(void *event)',
  cuEventSynchronize: 'int cuEventSynchronize(void *event)',
  cuEventElapsedTime: 'int cuEventElapsedTime_v2|cuEventElapsedTime(void *ms, void *start, void *end)',
  cuModuleLoadData: 'int cuModuleLoadData(void *module, const void *image)',
  cuModuleUnload: 'int cuModuleUnload(void *module)',
  cuModuleGetFunction: 'int cuModuleGetFunction(void *fn, void *module, const char *name)',
  cuFuncGetAttribute: 'int cuFuncGetAttribute(void *value, int attrib, void *fn)',
  cuFuncSetAttribute: 'int cuFuncSetAttribute(void *fn, int attrib, int value)',
  cuLaunchKernel:
    'int cuLaunchKernel(void *fn, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by, unsigned int bz, unsigned int shared, void *stream, void **params, void **extra)',
} as const;

export type DriverFns = Record<keyof typeof PROTOS, NativeFn>;

/** Device attributes weft reads (values of CUdevice_attribute). */
export const ATTR = { smCount: 16, l2Bytes: 38, ccMajor: 75, ccMinor: 76, maxSharedOptin: 97 } as const;
/** Function attributes (CUfunction_attribute). */
export const FUNC_ATTR = {
  maxThreads: 0,
  sharedBytes: 1,
  constBytes: 2,
  localBytes: 3,
  numRegs: 4,
  ptxVersion: 5,
  binaryVersion: 6,
  maxDynamicShared: 8,
} as const;
export const CU_STREAM_NON_BLOCKING = 1;
export const CU_EVENT_DISABLE_TIMING = 2;

export class Driver {
  readonly check: (call: string, code: number) => void;
  readonly checker: Checker;

  private constructor(
    readonly fn: DriverFns,
    readonly path: string,
  ) {
    this.checker = new Checker('cuda', (code) => {
      const name = [null as string | null],
        text = [null as string | null];
      fn.cuGetErrorName(code, name);
      fn.cuGetErrorString(code, text);
      return { name: name[0] ?? '', text: text[0] ?? '' };
    });
    this.check = (call, code) => {
      if (code !== 0) throw this.checker.error(call, code);
    };
  }

  /** Load libcuda and initialise the driver. Throws LibraryNotFound or a GpuError (e.g. no device). */
  static async open(): Promise<Driver> {
    const koffi = await loadKoffi();
    const { handle, path } = openLibrary(LIBCUDA, (p) => koffi.load(p));
    const d = new Driver(bind(handle, path, PROTOS), path);
    d.check('cuInit', d.fn.cuInit(0) as number);
    return d;
  }

  /** Call `name` with args and check its code. */
  call(name: keyof DriverFns, ...args: unknown[]): void {
    const code = this.fn[name](...args) as number;
    if (code !== 0) throw this.checker.error(String(name), code);
  }

  int(name: keyof DriverFns, ...args: unknown[]): number {
    const out = new Int32Array(1);
    this.call(name, out, ...args);
    return out[0]!;
  }

  u64(name: keyof DriverFns, ...args: unknown[]): bigint {
    const out = new BigUint64Array(1);
    this.call(name, out, ...args);
    return out[0]!;
  }

  version(): number {
    return this.int('cuDriverGetVersion');
  }
  deviceCount(): number {
    return this.int('cuDeviceGetCount');
  }
  attribute(attr: number, dev: number): number {
    return this.int('cuDeviceGetAttribute', attr, dev);
  }

  deviceName(dev: number): string {
    const buf = new Uint8Array(256);
    this.call('cuDeviceGetName', buf, buf.length, dev);
    const end = buf.indexOf(0);
    return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
  }

  /** True when the event has completed; false while work before it is pending. */
  eventDone(event: bigint): boolean {
    const code = this.fn.cuEventQuery(event) as number;
    if (code === 0) return true;
    if (code === CU_NOT_READY) return false;
    throw this.checker.error('cuEventQuery', code);
  }

  /** Milliseconds between two timing events (both complete). */
  elapsedMs(start: bigint, end: bigint): number {
    const out = new Float32Array(1);
    this.call('cuEventElapsedTime', out, start, end);
    return out[0]!;
  }
}
