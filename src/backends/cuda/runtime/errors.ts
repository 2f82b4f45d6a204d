// Every return code of the CUDA driver, NVRTC and NCCL is checked; a failure becomes a GpuError
// that names the call, the code's symbolic name and the library's own explanation of it.
// The explanation comes from the library (cuGetErrorName/String, nvrtcGetErrorString,
// ncclGetErrorString); the tables below are the fallback when the library cannot say.

export type GpuApi = 'cuda' | 'nvrtc' | 'nccl';

export interface CodeInfo {
  name: string;
  text: string;
}

/** Turns a numeric return code into its name and meaning. */
export type Describe = (code: number) => CodeInfo;

export class GpuError extends Error {
  constructor(
    readonly api: GpuApi,
    readonly call: string,
    readonly code: number,
    readonly codeName: string,
    text: string,
    detail?: string,
  ) {
    super(`${call} failed: ${codeName} (${code}): ${text}${detail ? `; ${detail}` : ''}`);
    this.name = 'GpuError';
  }
}

export const CU_NOT_READY = 600;
export const CU_OUT_OF_MEMORY = 2;

const CU_NAMES: Record<number, string> = {
  0: 'CUDA_SUCCESS',
  1: 'CUDA_ERROR_INVALID_VALUE',
  2: 'CUDA_ERROR_OUT_OF_MEMORY',
  3: 'CUDA_ERROR_NOT_INITIALIZED',
  4: 'CUDA_ERROR_DEINITIALIZED',
  34: 'CUDA_ERROR_STUB_LIBRARY',
  46: 'CUDA_ERROR_DEVICE_UNAVAILABLE',
  100: 'CUDA_ERROR_NO_DEVICE',
  101: 'CUDA_ERROR_INVALID_DEVICE',
  200: 'CUDA_ERROR_INVALID_IMAGE',
  201: 'CUDA_ERROR_INVALID_CONTEXT',
  209: 'CUDA_ERROR_NO_BINARY_FOR_GPU',
  218: 'CUDA_ERROR_INVALID_PTX',
  222: 'CUDA_ERROR_UNSUPPORTED_PTX_VERSION',
  400: 'CUDA_ERROR_INVALID_HANDLE',
  500: 'CUDA_ERROR_NOT_FOUND',
  600: 'CUDA_ERROR_NOT_READY',
  700: 'CUDA_ERROR_ILLEGAL_ADDRESS',
  701: 'CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES',
  702: 'CUDA_ERROR_LAUNCH_TIMEOUT',
  719: 'CUDA_ERROR_LAUNCH_FAILED',
  803: 'CUDA_ERROR_SYSTEM_DRIVER_MISMATCH',
  804: 'CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE',
  999: 'CUDA_ERROR_UNKNOWN',
};

const NVRTC_NAMES: Record<number, string> = {
  0: 'NVRTC_SUCCESS',
  1: 'NVRTC_ERROR_OUT_OF_MEMORY',
  2: 'NVRTC_ERROR_PROGRAM_CREATION_FAILURE',
  3: 'NVRTC_ERROR_INVALID_INPUT',
  4: 'NVRTC_ERROR_INVALID_PROGRAM',
  5: 'NVRTC_ERROR_INVALID_OPTION',
  6: 'NVRTC_ERROR_COMPILATION',
  7: 'NVRTC_ERROR_BUILTIN_OPERATION_FAILURE',
  8: 'NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION',
  9: 'NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION',
  10: 'NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID',
  11: 'NVRTC_ERROR_INTERNAL_ERROR',
};

const NCCL_NAMES: Record<number, string> = {
  0: 'ncclSuccess',
  1: 'ncclUnhandledCudaError',
  2: 'ncclSystemError',
  3: 'ncclInternalError',
  4: 'ncclInvalidArgument',
  5: 'ncclInvalidUsage',
  6: 'ncclRemoteError',
  7: 'ncclInProgress',
};

const TABLES: Record<GpuApi, Record<number, string>> = { cuda: CU_NAMES, nvrtc: NVRTC_NAMES, nccl: NCCL_NAMES };

/** The symbolic name of a code from the built-in table ('unknown code' when absent). */
export function codeName(api: GpuApi, code: number): string {
  return TABLES[api][code] ?? `unknown ${api} code`;
}

/**
 * Wrap a library's describer so it never throws and always yields a name and a text: a
 * describer that fails or returns nothing falls back to the table.
 */
export function safeDescribe(api: GpuApi, describe?: Describe): Describe {
  return (code) => {
    let info: Partial<CodeInfo> = {};
    try {
      if (describe) info = describe(code);
    } catch {
      /* the library cannot say; use the table */
    }
    return { name: info.name || codeName(api, code), text: info.text || 'no description available' };
  };
}

/**
 * A checker for one library: `check(call, code)` returns silently on success (0) and throws a
 * GpuError otherwise. `detail` adds context the code alone lacks (NCCL's last error message).
 */
export class Checker {
  private readonly describe: Describe;
  constructor(
    readonly api: GpuApi,
    describe?: Describe,
    private readonly detail?: () => string | undefined,
  ) {
    this.describe = safeDescribe(api, describe);
  }

  error(call: string, code: number, extra?: string): GpuError {
    const { name, text } = this.describe(code);
    let more = extra;
    try {
      const d = this.detail?.();
      if (d) more = more ? `${more}; ${d}` : d;
    } catch {
      /* detail is best-effort */
    }
    return new GpuError(this.api, call, code, name, text, more);
  }

  check(call: string, code: number): void {
    if (code !== 0) throw this.error(call, code);
  }
}
