// NCCL through koffi. The communicator handle is a bigint; the 128-byte unique id is passed by
// value as a struct of uint8_t[128]. Communicators are created non-blocking (ncclConfig_t
// blocking = 0), so no NCCL call can hang the process: calls return ncclInProgress and weft
// polls ncclCommGetAsyncError, with a deadline.
import { LIBNCCL, openLibrary } from '../runtime/discovery.js';
import { Checker } from '../runtime/errors.js';
import { bind, koffiSync, loadKoffi, type NativeFn } from '../runtime/ffi.js';
import type { DType } from '../../../tensor/dtype.js';

const PROTOS = {
  ncclGetVersion: 'int ncclGetVersion(void *version)',
  ncclGetUniqueId: 'int ncclGetUniqueId(void *id)',
  ncclGetErrorString: 'const char *ncclGetErrorString(int result)',
  ncclGetLastError: 'const char *ncclGetLastError(void *comm)',
  ncclCommInitRankConfig:
    'int ncclCommInitRankConfig(void *comm, int nranks, weft_ncclUniqueId commId, int rank, void *config)',
  ncclCommSplit: 'int ncclCommSplit(void *comm, int color, int key, void *newcomm, void *config)',
  ncclCommFinalize: 'int ncclCommFinalize(void *comm)',
  ncclCommDestroy: 'int ncclCommDestroy(void *comm)',
  ncclCommAbort: 'int ncclCommAbort(void *comm)',
  ncclCommGetAsyncError: 'int ncclCommGetAsyncError(void *comm, void *result)',
  ncclCommCount: 'int ncclCommCount(void *comm, void *count)',
  ncclCommUserRank: 'int ncclCommUserRank(void *comm, void *rank)',
  ncclGroupStart: 'int ncclGroupStart()',
  ncclGroupEnd: 'int ncclGroupEnd()',
  ncclSend: 'int ncclSend(uint64_t buf, size_t count, int datatype, int peer, void *comm, void *stream)',
  ncclRecv: 'int ncclRecv(uint64_t buf, size_t count, int datatype, int peer, void *comm, void *stream)',
  ncclAllGather:
    'int ncclAllGather(uint64_t send, uint64_t recv, size_t sendcount, int datatype, void *comm, void *stream)',
  ncclReduceScatter:
    'int ncclReduceScatter(uint64_t send, uint64_t recv, size_t recvcount, int datatype, int op, void *comm, void *stream)',
  ncclAllReduce:
    'int ncclAllReduce(uint64_t send, uint64_t recv, size_t count, int datatype, int op, void *comm, void *stream)',
} as const;

export type NcclFns = Record<keyof typeof PROTOS, NativeFn>;

export const NCCL_SUCCESS = 0;
export const NCCL_IN_PROGRESS = 7;
export const NCCL_SUM = 0;

export const NCCL_DTYPE: Record<DType, number> = { f16: 6, f32: 7, f64: 8, bf16: 9 };

/** NCCL's version code (e.g. 22805) as 2.28.5. */
export function ncclVersionString(code: number): string {
  return code >= 10000
    ? `${Math.floor(code / 10000)}.${Math.floor(code / 100) % 100}.${code % 100}`
    : `${Math.floor(code / 1000)}.${Math.floor(code / 100) % 10}.${code % 100}`;
}

/**
 * An ncclConfig_t in the layout of NCCL 2.17 (size, magic, version, blocking, cgaClusterSize,
 * minCTAs, maxCTAs, netName, splitShare). NCCL reads `size` bytes of it and gives every later
 * field its default, so this layout stays valid for newer libraries.
 */
export function commConfig(blocking = false): Uint8Array {
  const buf = new Uint8Array(48);
  const v = new DataView(buf.buffer);
  const UNDEF = -2147483648;
  v.setBigUint64(0, 48n, true);
  v.setUint32(8, 0xcafebeef, true);
  v.setUint32(12, 2 * 10000 + 17 * 100, true); // NCCL_VERSION(2, 17, 0)
  v.setInt32(16, blocking ? 1 : 0, true);
  for (const off of [20, 24, 28, 40]) v.setInt32(off, UNDEF, true);
  return buf;
}

let uniqueIdDeclared = false;

export class Nccl {
  readonly checker: Checker;

  private constructor(
    readonly fn: NcclFns,
    readonly path: string,
    readonly version: number,
  ) {
    this.checker = new Checker('nccl', (code) => ({
      name: '',
      text: (fn.ncclGetErrorString(code) as string | null) ?? '',
    }));
  }

  static async open(): Promise<Nccl> {
    const koffi = await loadKoffi();
    const { handle, path } = openLibrary(LIBNCCL, (p) => koffi.load(p));
    if (!uniqueIdDeclared)
      koffiSync().struct('weft_ncclUniqueId', { internal: koffiSync().array('uint8_t', 128, 'Typed') });
    uniqueIdDeclared = true;
    const fn = bind(handle, path, PROTOS);
    const v = new Int32Array(1);
    const code = fn.ncclGetVersion(v) as number;
    const n = new Nccl(fn, path, v[0]!);
    n.checker.check('ncclGetVersion', code);
    return n;
  }

  /** NCCL's last error text for a communicator (empty when it has none). */
  lastError(comm: bigint | null): string {
    try {
      return ((this.fn.ncclGetLastError(comm) as string | null) ?? '').trim();
    } catch {
      return '';
    }
  }

  /** Throw a GpuError for a failed call, with NCCL's last error message as detail. */
  error(call: string, code: number, comm: bigint | null, extra?: string) {
    const last = this.lastError(comm);
    return this.checker.error(
      call,
      code,
      [extra, last && `NCCL says: ${last}`].filter(Boolean).join('; ') || undefined,
    );
  }

  check(call: string, code: number, comm: bigint | null): void {
    if (code !== NCCL_SUCCESS) throw this.error(call, code, comm);
  }

  uniqueId(): Uint8Array {
    const id = new Uint8Array(128);
    this.check('ncclGetUniqueId', this.fn.ncclGetUniqueId(id) as number, null);
    return id;
  }

  /** The communicator's pending asynchronous state: 0 done, 7 in progress, else an error code. */
  asyncError(comm: bigint): number {
    const r = new Int32Array(1);
    const code = this.fn.ncclCommGetAsyncError(comm, r) as number;
    if (code !== NCCL_SUCCESS) return code;
    return r[0]!;
  }
}
