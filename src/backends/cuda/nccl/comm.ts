// NCCL as weft's Comm. Each operation is enqueued on the rank's communication stream after an
// event from the compute stream (so it sees the buffers' producers), inside
// ncclGroupStart/End (a batch of send/recv is one group), and ends with an event on the
// communication stream. Work.wait() makes the compute stream wait on that event: device-side,
// as PyTorch's work.wait() does, so the host keeps enqueueing while the transfer runs.
//
// Communicators are non-blocking, and a watchdog turns trouble into errors: it polls
// ncclCommGetAsyncError and the age of the oldest unfinished operation; on an error, or when an
// operation outlives the timeout (a dead or stuck peer), it aborts the communicator
// (ncclCommAbort, which also stops NCCL's kernels so the streams drain) and the error is thrown
// from the next call, wait, download or synchronize.
import type { Comm, P2POp, Work } from '../../../comm/comm.js';
import type { CudaRuntime } from '../runtime/runtime.js';
import type { CudaEvent } from '../runtime/stream.js';
import { asCuda, type CudaTensor } from '../runtime/tensor.js';
import type { Tensor } from '../../../tensor/host.js';
import { commConfig, Nccl, NCCL_DTYPE, NCCL_IN_PROGRESS, NCCL_SUCCESS, NCCL_SUM } from './bindings.js';

export interface NcclOptions {
  /** An operation (or init/split) not complete after this long aborts the communicator. */
  timeoutMs?: number;
  /** How often the background watchdog looks (it also runs whenever the host waits on the GPU). */
  watchdogMs?: number;
  /**
   * Blocking communicator (default false, or WEFT_NCCL_BLOCKING=1). Non-blocking is the safe
   * choice: no NCCL call can hold the host while a peer is missing. But NCCL then runs every
   * group launch on a new background thread, which adds host time to each operation; blocking
   * mode avoids that when operations are small and many, at the price that an init or a first
   * connection to a dead peer can hang the host (the watchdog still catches stuck transfers).
   */
  blocking?: boolean;
}

/** WEFT_NCCL_TIMEOUT (seconds) or 300 s. */
export function defaultTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const s = Number(env.WEFT_NCCL_TIMEOUT);
  return Number.isFinite(s) && s > 0 ? s * 1000 : 300_000;
}

class NcclError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NcclError';
  }
}

class NcclWork implements Work {
  done = false;
  constructor(
    private readonly comm: NcclComm,
    readonly event: CudaEvent,
    readonly op: string,
    readonly seq: number,
    readonly started: number,
  ) {}

  async wait(): Promise<void> {
    this.comm.check();
    if (!this.done) this.comm.rt.compute.wait(this.event);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class NcclComm implements Comm {
  private failure?: Error;
  private pending: NcclWork[] = [];
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private readonly removeMonitor: () => void;
  private readonly ready: CudaEvent;
  private barrierBuf?: CudaTensor;
  private destroyed = false;
  readonly timeoutMs: number;
  private readonly watchdogMs: number;

  private constructor(
    readonly rt: CudaRuntime,
    readonly nccl: Nccl,
    readonly handle: bigint,
    readonly rank: number,
    readonly size: number,
    private readonly opts: NcclOptions,
  ) {
    this.timeoutMs = opts.timeoutMs ?? defaultTimeoutMs();
    this.watchdogMs = opts.watchdogMs ?? Math.min(1000, Math.max(50, this.timeoutMs / 20));
    this.ready = rt.event(false);
    this.removeMonitor = rt.addMonitor(() => this.check());
  }

  /**
   * Join a communicator of `size` ranks as `rank`; every rank passes the same 128-byte id
   * (rank 0 makes it with nccl.uniqueId() and shares it, e.g. through the rendezvous store).
   */
  static async init(
    rt: CudaRuntime,
    nccl: Nccl,
    rank: number,
    size: number,
    id: Uint8Array,
    opts: NcclOptions = {},
  ): Promise<NcclComm> {
    if (id.length !== 128) throw new Error(`NCCL unique id has ${id.length} bytes, not 128`);
    const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs();
    rt.makeCurrent();
    const out = new BigUint64Array(new ArrayBuffer(8));
    const blocking = opts.blocking ?? process.env.WEFT_NCCL_BLOCKING === '1';
    const code = nccl.fn.ncclCommInitRankConfig(out, size, { internal: id }, rank, commConfig(blocking)) as number;
    if (code !== NCCL_SUCCESS && code !== NCCL_IN_PROGRESS) throw nccl.error('ncclCommInitRankConfig', code, null);
    const handle = out[0]!;
    const t0 = Date.now();
    for (let state = nccl.asyncError(handle); state !== NCCL_SUCCESS; state = nccl.asyncError(handle)) {
      if (state !== NCCL_IN_PROGRESS) {
        const err = nccl.error('ncclCommInitRankConfig', state, handle, `rank ${rank} of ${size}`);
        nccl.fn.ncclCommAbort(handle);
        throw err;
      }
      if (Date.now() - t0 > timeoutMs) {
        nccl.fn.ncclCommAbort(handle);
        throw new NcclError(
          `NCCL communicator of ${size} ranks not formed within ${timeoutMs / 1000} s on rank ${rank} (are all ranks running, with the same unique id?)`,
        );
      }
      await sleep(2);
    }
    rt.keepCurrent('ncclCommInitRankConfig');
    return new NcclComm(rt, nccl, handle, rank, size, { ...opts, timeoutMs, blocking });
  }

  /** Throw the communicator's failure, if any; otherwise run one watchdog step. */
  check(): void {
    if (this.failure) throw this.failure;
    if (this.destroyed) throw new NcclError('NCCL communicator used after destroy()');
    this.watch();
    if (this.failure) throw this.failure;
  }

  private watch(): void {
    if (this.failure || this.destroyed) return;
    // retire finished work; its event goes back to the pool
    while (this.pending.length && this.pending[0]!.event.done()) {
      const w = this.pending.shift()!;
      w.done = true;
      this.rt.releaseEvent(w.event);
    }
    const state = this.nccl.asyncError(this.handle);
    if (state !== NCCL_SUCCESS && state !== NCCL_IN_PROGRESS) {
      this.fail(
        this.nccl.error(
          'NCCL communicator',
          state,
          this.handle,
          `asynchronous error on rank ${this.rank} of ${this.size}`,
        ),
      );
      return;
    }
    const oldest = this.pending[0];
    if (oldest && Date.now() - oldest.started > this.timeoutMs)
      this.fail(
        new NcclError(
          `NCCL ${oldest.op} (operation #${oldest.seq}) on rank ${this.rank} of ${this.size} not complete after ${this.timeoutMs / 1000} s: a peer died or is stuck; communicator aborted`,
        ),
      );
    if (!this.pending.length) this.stopTimer();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.stopTimer();
    this.nccl.fn.ncclCommAbort(this.handle); // also makes NCCL's kernels return, so the streams drain
    this.pending = []; // their events may never complete; they are not reused
  }

  private stopTimer(): void {
    if (this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  /** Spin until a non-blocking call on `comm` has finished (bounded by the timeout). */
  private settle(call: string, comm: bigint): void {
    const t0 = Date.now();
    for (let state = this.nccl.asyncError(comm); state !== NCCL_SUCCESS; state = this.nccl.asyncError(comm)) {
      if (state !== NCCL_IN_PROGRESS) {
        const e = this.nccl.error(call, state, comm);
        this.fail(e);
        throw e;
      }
      if (Date.now() - t0 > this.timeoutMs) {
        const e = new NcclError(
          `${call} on rank ${this.rank} of ${this.size} not complete after ${this.timeoutMs / 1000} s: a peer died or is stuck; communicator aborted`,
        );
        this.fail(e);
        throw e;
      }
    }
  }

  private enqueue(op: string, buffers: readonly CudaTensor[], body: (stream: bigint) => void): Work {
    this.check();
    const { rt, nccl } = this;
    this.ready.record(rt.compute);
    rt.comm.wait(this.ready);
    nccl.check('ncclGroupStart', nccl.fn.ncclGroupStart() as number, this.handle);
    let thrown: unknown;
    try {
      body(rt.comm.handle);
    } catch (e) {
      thrown = e;
    }
    const end = nccl.fn.ncclGroupEnd() as number;
    rt.keepCurrent(`ncclGroupEnd(${op})`);
    if (thrown) throw thrown;
    if (end === NCCL_IN_PROGRESS) this.settle(`ncclGroupEnd(${op})`, this.handle);
    else if (end !== NCCL_SUCCESS) {
      const e = nccl.error(`ncclGroupEnd(${op})`, end, this.handle);
      this.fail(e);
      throw e;
    }
    for (const b of buffers) rt.recordUse(b, rt.comm);
    const work = new NcclWork(this, rt.borrowEvent().record(rt.comm), op, this.seq++, Date.now());
    this.pending.push(work);
    if (!this.timer) {
      this.timer = setInterval(() => this.watch(), this.watchdogMs);
      this.timer.unref();
    }
    return work;
  }

  private call(name: string, code: number): void {
    if (code !== NCCL_SUCCESS && code !== NCCL_IN_PROGRESS) throw this.nccl.error(name, code, this.handle);
  }

  private peer(p: number, what: string): number {
    if (!Number.isInteger(p) || p < 0 || p >= this.size)
      throw new Error(`${what}: peer ${p} outside 0..${this.size - 1}`);
    return p;
  }

  sendRecv(ops: readonly P2POp[]): Work {
    const bufs: CudaTensor[] = [];
    const list = ops.map((o) => ({
      send: o.send && { t: asCuda(o.send.buf, 'sendRecv'), peer: this.peer(o.send.peer, 'sendRecv') },
      recv: o.recv && { t: asCuda(o.recv.buf, 'sendRecv'), peer: this.peer(o.recv.peer, 'sendRecv') },
    }));
    for (const o of list) {
      if (o.send) bufs.push(o.send.t);
      if (o.recv) bufs.push(o.recv.t);
    }
    return this.enqueue('sendRecv', bufs, (s) => {
      for (const o of list) {
        if (o.send) this.p2p('send', o.send.t, o.send.peer, s);
        if (o.recv) this.p2p('recv', o.recv.t, o.recv.peer, s);
      }
    });
  }

  /** One ncclSend or ncclRecv on `stream`, inside a group the caller opened; empty buffers move nothing. */
  private p2p(dir: 'send' | 'recv', t: CudaTensor, peer: number, stream: bigint): void {
    if (!t.numel) return;
    const fn = dir === 'send' ? this.nccl.fn.ncclSend : this.nccl.fn.ncclRecv;
    const name = dir === 'send' ? 'ncclSend' : 'ncclRecv';
    this.call(name, fn(t.ptr, t.numel, NCCL_DTYPE[t.dtype], peer, this.handle, stream) as number);
  }

  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work {
    if (send.length !== this.size || recv.length !== this.size)
      throw new Error(`allToAll: ${send.length} send and ${recv.length} recv buffers for ${this.size} ranks`);
    const s = send.map((t) => asCuda(t, 'allToAll')),
      r = recv.map((t) => asCuda(t, 'allToAll'));
    return this.enqueue('allToAll', [...s, ...r], (stream) => {
      for (let j = 0; j < this.size; j++) {
        this.p2p('send', s[j]!, j, stream);
        this.p2p('recv', r[j]!, j, stream);
      }
    });
  }

  private same(a: CudaTensor, b: CudaTensor, op: string, factor: 'recv' | 'send'): void {
    if (a.dtype !== b.dtype) throw new Error(`${op}: ${a.dtype} send and ${b.dtype} recv`);
    const [big, small] = factor === 'recv' ? [b, a] : [a, b];
    if (big.numel !== this.size * small.numel)
      throw new Error(`${op}: ${factor} must hold ${this.size} × ${small.numel} elements, has ${big.numel}`);
  }

  allGather(sendT: Tensor, recvT: Tensor): Work {
    const send = asCuda(sendT, 'allGather'),
      recv = asCuda(recvT, 'allGather');
    this.same(send, recv, 'allGather', 'recv');
    return this.enqueue('allGather', [send, recv], (s) =>
      this.call(
        'ncclAllGather',
        this.nccl.fn.ncclAllGather(send.ptr, recv.ptr, send.numel, NCCL_DTYPE[send.dtype], this.handle, s) as number,
      ),
    );
  }

  reduceScatter(sendT: Tensor, recvT: Tensor): Work {
    const send = asCuda(sendT, 'reduceScatter'),
      recv = asCuda(recvT, 'reduceScatter');
    this.same(send, recv, 'reduceScatter', 'send');
    return this.enqueue('reduceScatter', [send, recv], (s) =>
      this.call(
        'ncclReduceScatter',
        this.nccl.fn.ncclReduceScatter(
          send.ptr,
          recv.ptr,
          recv.numel,
          NCCL_DTYPE[send.dtype],
          NCCL_SUM,
          this.handle,
          s,
        ) as number,
      ),
    );
  }

  allReduce(bufT: Tensor): Work {
    const buf = asCuda(bufT, 'allReduce');
    return this.enqueue('allReduce', [buf], (s) =>
      this.call(
        'ncclAllReduce',
        this.nccl.fn.ncclAllReduce(
          buf.ptr,
          buf.ptr,
          buf.numel,
          NCCL_DTYPE[buf.dtype],
          NCCL_SUM,
          this.handle,
          s,
        ) as number,
      ),
    );
  }

  /** Every rank has reached this point and all earlier work of this rank is done. */
  async barrier(): Promise<void> {
    this.barrierBuf ??= this.rt.device.zeros('f32', [1]);
    await this.allReduce(this.barrierBuf).wait();
    await this.rt.synchronize();
  }

  split(color: number, key?: number): NcclComm {
    if (!Number.isInteger(color) || color < 0) throw new Error(`split: color ${color} must be a non-negative integer`);
    this.check();
    // NCCL writes the new handle from its own thread once the split is complete, and reports the
    // split's progress on the parent: wait on the parent, then read the handle. The handle lives
    // in an ArrayBuffer's off-heap store, which the garbage collector never moves.
    this.rt.makeCurrent();
    const out = new BigUint64Array(new ArrayBuffer(8));
    const code = this.nccl.fn.ncclCommSplit(
      this.handle,
      color,
      key ?? this.rank,
      out,
      commConfig(this.opts.blocking),
    ) as number;
    if (code !== NCCL_SUCCESS && code !== NCCL_IN_PROGRESS) throw this.nccl.error('ncclCommSplit', code, this.handle);
    this.settle('ncclCommSplit', this.handle);
    const child = out[0]!;
    if (child === 0n)
      throw new NcclError(
        `ncclCommSplit(color ${color}) on rank ${this.rank} of ${this.size} completed without a communicator`,
      );
    this.settle('ncclCommSplit (child)', child);
    this.rt.keepCurrent('ncclCommSplit');
    const rank = new Int32Array(1),
      size = new Int32Array(1);
    this.nccl.check('ncclCommUserRank', this.nccl.fn.ncclCommUserRank(child, rank) as number, child);
    this.nccl.check('ncclCommCount', this.nccl.fn.ncclCommCount(child, size) as number, child);
    return new NcclComm(this.rt, this.nccl, child, rank[0]!, size[0]!, this.opts);
  }

  /** Wait for this communicator's work, then free it (ncclCommFinalize + ncclCommDestroy). */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    if (!this.failure) {
      await this.rt.synchronize(this.rt.comm);
      const code = this.nccl.fn.ncclCommFinalize(this.handle) as number;
      if (code === NCCL_IN_PROGRESS) this.settle('ncclCommFinalize', this.handle);
      else this.nccl.check('ncclCommFinalize', code, this.handle);
      this.nccl.check('ncclCommDestroy', this.nccl.fn.ncclCommDestroy(this.handle) as number, this.handle);
    }
    this.destroyed = true;
    this.stopTimer();
    this.removeMonitor();
    this.barrierBuf?.release();
    this.barrierBuf = undefined;
  }

  /** Abort now (other ranks' pending operations on this communicator fail or time out). */
  abort(reason = 'aborted by the caller'): void {
    this.fail(new NcclError(`NCCL communicator on rank ${this.rank} of ${this.size}: ${reason}`));
  }
}
