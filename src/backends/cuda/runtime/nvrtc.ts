// NVRTC: CUDA C++ source → cubin for this GPU, at run time. A compile error carries NVRTC's log.
import { LIBNVRTC, openLibrary } from './discovery.js';
import { Checker } from './errors.js';
import { bind, loadKoffi, type NativeFn } from './ffi.js';
import type { CompileRequest, Program } from './jit.js';

const PROTOS = {
  nvrtcGetErrorString: 'const char *nvrtcGetErrorString(int result)',
  nvrtcVersion: 'int nvrtcVersion(void *major, void *minor)',
  nvrtcCreateProgram:
    'int nvrtcCreateProgram(void *prog, const char *src, const char *name, int numHeaders, const char **headers, const char **includeNames)',
  nvrtcDestroyProgram: 'int nvrtcDestroyProgram(void *prog)',
  nvrtcCompileProgram: 'int nvrtcCompileProgram(void *prog, int numOptions, const char **options)',
  nvrtcGetProgramLogSize: 'int nvrtcGetProgramLogSize(void *prog, void *size)',
  nvrtcGetProgramLog: 'int nvrtcGetProgramLog(void *prog, void *log)',
  nvrtcGetCUBINSize: 'int nvrtcGetCUBINSize(void *prog, void *size)',
  nvrtcGetCUBIN: 'int nvrtcGetCUBIN(void *prog, void *cubin)',
  nvrtcAddNameExpression: 'int nvrtcAddNameExpression(void *prog, const char *name)',
  nvrtcGetLoweredName: 'int nvrtcGetLoweredName(void *prog, const char *expr, _Out_ const char **lowered)',
} as const;

const NVRTC_ERROR_COMPILATION = 6;

/** A kernel source that NVRTC rejected; `log` is NVRTC's full log. */
export class CompileError extends Error {
  constructor(
    readonly programName: string,
    readonly log: string,
    readonly options: readonly string[],
  ) {
    super(`NVRTC could not compile ${programName} (options ${options.join(' ')}):\n${log.trim()}`);
    this.name = 'CompileError';
  }
}

export class Nvrtc {
  private readonly checker: Checker;

  private constructor(
    private readonly fn: Record<keyof typeof PROTOS, NativeFn>,
    readonly path: string,
    readonly version: string,
  ) {
    this.checker = new Checker('nvrtc', (code) => ({
      name: '',
      text: (fn.nvrtcGetErrorString(code) as string | null) ?? '',
    }));
  }

  static async open(): Promise<Nvrtc> {
    const koffi = await loadKoffi();
    const { handle, path } = openLibrary(LIBNVRTC, (p) => koffi.load(p));
    const fn = bind(handle, path, PROTOS);
    const major = new Int32Array(1),
      minor = new Int32Array(1);
    const code = fn.nvrtcVersion(major, minor) as number;
    const n = new Nvrtc(fn, path, `${major[0]}.${minor[0]}`);
    n.checker.check('nvrtcVersion', code);
    return n;
  }

  private call(name: keyof typeof PROTOS, ...args: unknown[]): void {
    this.checker.check(name, this.fn[name](...args) as number);
  }

  private size(name: 'nvrtcGetProgramLogSize' | 'nvrtcGetCUBINSize', prog: bigint): number {
    const out = new BigUint64Array(1);
    this.call(name, prog, out);
    return Number(out[0]);
  }

  compile(req: CompileRequest): Program {
    const progOut = new BigUint64Array(1);
    this.call('nvrtcCreateProgram', progOut, req.source, req.name, 0, null, null);
    const prog = progOut[0]!;
    try {
      for (const e of req.nameExpressions) this.call('nvrtcAddNameExpression', prog, e);
      const code = this.fn.nvrtcCompileProgram(prog, req.options.length, [...req.options]) as number;
      const logBuf = new Uint8Array(Math.max(1, this.size('nvrtcGetProgramLogSize', prog)));
      this.call('nvrtcGetProgramLog', prog, logBuf);
      const log = new TextDecoder().decode(
        logBuf.subarray(0, Math.max(0, logBuf.indexOf(0) < 0 ? logBuf.length : logBuf.indexOf(0))),
      );
      if (code === NVRTC_ERROR_COMPILATION) throw new CompileError(req.name, log, req.options);
      this.checker.check('nvrtcCompileProgram', code);
      const cubin = new Uint8Array(this.size('nvrtcGetCUBINSize', prog));
      this.call('nvrtcGetCUBIN', prog, cubin);
      const lowered: Record<string, string> = {};
      for (const e of req.nameExpressions) {
        const out = [null as string | null];
        this.call('nvrtcGetLoweredName', prog, e, out);
        lowered[e] = out[0]!;
      }
      return { cubin, log, lowered };
    } finally {
      this.fn.nvrtcDestroyProgram(progOut);
    }
  }
}
