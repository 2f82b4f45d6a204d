// Communication, compute and memory accounting, as wrappers around any Comm, AttnKernel and
// Device. Volumes are the logical bytes each rank sends and receives under the algorithm the
// backends implement (direct exchange for all-to-all and all-gather, ring volume for
// reduce-scatter and all-reduce), so a test can assert a strategy's schedule and a silent
// fallback to another one fails it. Memory is what a GPU rank would hold if the garbage
// collector never ran during the call: allocations minus explicit releases.
import type { Comm, P2POp, Work } from '../comm/comm.js';
import type { Box, Device } from '../device/device.js';
import type { AttnGrads, AttnKernel, AttnState, BackwardArgs, ForwardArgs } from '../kernel/kernel.js';
import { viewArea } from '../mask/view.js';
import { evenSplit } from '../shard/split.js';
import { bytesPerElement } from '../tensor/dtype.js';
import type { DType } from '../tensor/dtype.js';
import { type HostTensor, numel, type Tensor } from '../tensor/host.js';
import type { Trace } from './types.js';

export interface StepCount {
  label: string;
  messages: number;
  bytesSent: number;
  bytesReceived: number;
}

/** A Trace that also tallies traffic per step label. */
export class CommLog implements Trace {
  private label = '';
  private readonly steps = new Map<string, StepCount>();

  step(label: string): void {
    this.label = label;
  }

  add(messages: number, bytesSent: number, bytesReceived: number): void {
    const s = this.steps.get(this.label) ?? { label: this.label, messages: 0, bytesSent: 0, bytesReceived: 0 };
    s.messages += messages;
    s.bytesSent += bytesSent;
    s.bytesReceived += bytesReceived;
    this.steps.set(this.label, s);
  }

  /** Steps in the order they first carried traffic. */
  list(): StepCount[] {
    return [...this.steps.values()].map((s) => ({ ...s }));
  }

  total(): Omit<StepCount, 'label'> {
    const t = { messages: 0, bytesSent: 0, bytesReceived: 0 };
    for (const s of this.steps.values()) {
      t.messages += s.messages;
      t.bytesSent += s.bytesSent;
      t.bytesReceived += s.bytesReceived;
    }
    return t;
  }
}

function bytes(t: Tensor): number {
  return numel(t.shape) * bytesPerElement(t.dtype);
}

export class CountingComm implements Comm {
  constructor(
    readonly inner: Comm,
    readonly log: CommLog,
  ) {}
  get rank(): number {
    return this.inner.rank;
  }
  get size(): number {
    return this.inner.size;
  }

  sendRecv(ops: readonly P2POp[]): Work {
    let m = 0,
      s = 0,
      r = 0;
    for (const o of ops) {
      if (o.send) {
        m++;
        s += bytes(o.send.buf);
      }
      if (o.recv) r += bytes(o.recv.buf);
    }
    this.log.add(m, s, r);
    return this.inner.sendRecv(ops);
  }

  allToAll(send: readonly Tensor[], recv: readonly Tensor[]): Work {
    let m = 0,
      s = 0,
      r = 0;
    send.forEach((t, j) => {
      if (j !== this.rank) {
        m++;
        s += bytes(t);
        r += bytes(recv[j]!);
      }
    });
    this.log.add(m, s, r);
    return this.inner.allToAll(send, recv);
  }

  allGather(send: Tensor, recv: Tensor): Work {
    const n = this.size - 1;
    this.log.add(n, n * bytes(send), n * bytes(send));
    return this.inner.allGather(send, recv);
  }

  reduceScatter(send: Tensor, recv: Tensor): Work {
    const n = this.size - 1;
    this.log.add(n, n * bytes(recv), n * bytes(recv));
    return this.inner.reduceScatter(send, recv);
  }

  allReduce(buf: Tensor): Work {
    // reduce-scatter over evenSplit chunks, then all-gather of the reduced chunks
    const e = bytesPerElement(buf.dtype),
      b = evenSplit(numel(buf.shape), this.size);
    const mine = (b[this.rank + 1]! - b[this.rank]!) * e,
      all = numel(buf.shape) * e,
      n = this.size - 1;
    this.log.add(2 * n, all - mine + n * mine, n * mine + all - mine);
    return this.inner.allReduce(buf);
  }

  barrier(): Promise<void> {
    return this.inner.barrier();
  }

  split(color: number, key?: number): Comm {
    return new CountingComm(this.inner.split(color, key), this.log);
  }
}

export interface KernelCount {
  forwardCalls: number;
  backwardCalls: number;
  /** unmasked (query, key, query head) triples computed forward */
  area: number;
  ms: number;
}

/** A kernel that records calls, unmasked area and time spent computing. */
export class CountingKernel implements AttnKernel {
  readonly count: KernelCount = { forwardCalls: 0, backwardCalls: 0, area: 0, ms: 0 };
  constructor(readonly inner: AttnKernel) {}

  forward(a: ForwardArgs): AttnState {
    this.count.forwardCalls++;
    this.count.area += viewArea(a.view) * a.q.shape[1]!;
    const t0 = performance.now();
    const r = this.inner.forward(a);
    this.count.ms += performance.now() - t0;
    return r;
  }

  backward(a: BackwardArgs): AttnGrads {
    const t0 = performance.now();
    this.count.backwardCalls++;
    const r = this.inner.backward(a);
    this.count.ms += performance.now() - t0;
    return r;
  }

  merge(state: AttnState, part: AttnState): void {
    const t0 = performance.now();
    this.inner.merge(state, part);
    this.count.ms += performance.now() - t0;
  }
}

/** HBM traffic of a Device's elementwise operations: calls that move bytes, bytes read, bytes written. */
export interface OpTraffic {
  calls: number;
  readBytes: number;
  writeBytes: number;
}
export type ElementwiseOp = 'zeros' | 'full' | 'copyBox' | 'add' | 'cast';
/** Per operation, and in all. */
export type DeviceTraffic = Record<ElementwiseOp | 'total', OpTraffic>;

export function noTraffic(): DeviceTraffic {
  const z = (): OpTraffic => ({ calls: 0, readBytes: 0, writeBytes: 0 });
  return { zeros: z(), full: z(), copyBox: z(), add: z(), cast: z(), total: z() };
}

/**
 * A device that counts the bytes its caller holds: allocated and not yet released; and their peak.
 * It also counts the device memory traffic of the elementwise operations (`traffic`), as a GPU
 * runs them on its compute stream: zeros and full write the tensor (memset, fill kernel); copyBox
 * reads and writes the box (in each side's dtype); add reads dst and src and writes dst; cast reads
 * the source and writes the copy; empty, release, upload and download move nothing on the device.
 * A call counts when it moves any byte (the CUDA device launches nothing for an empty tensor or box).
 */
export class MeteredDevice implements Device {
  held = 0;
  peak = 0;
  readonly traffic: DeviceTraffic = noTraffic();
  private readonly released = new WeakSet<Tensor>();
  private readonly allocated = new WeakSet<Tensor>();
  constructor(readonly inner: Device) {}
  get kind(): Device['kind'] {
    return this.inner.kind;
  }

  private hold<T extends Tensor>(t: T): T {
    this.allocated.add(t);
    this.held += bytes(t);
    this.peak = Math.max(this.peak, this.held);
    return t;
  }

  private count(op: ElementwiseOp, readBytes: number, writeBytes: number): void {
    if (readBytes + writeBytes === 0) return;
    for (const t of [this.traffic[op], this.traffic.total]) {
      t.calls++;
      t.readBytes += readBytes;
      t.writeBytes += writeBytes;
    }
  }

  zeros(dtype: DType, shape: readonly number[]): Tensor {
    const t = this.hold(this.inner.zeros(dtype, shape));
    this.count('zeros', 0, bytes(t));
    return t;
  }
  empty(dtype: DType, shape: readonly number[]): Tensor {
    return this.hold(this.inner.empty(dtype, shape));
  }
  full(dtype: DType, shape: readonly number[], value: number): Tensor {
    const t = this.hold(this.inner.full(dtype, shape, value));
    this.count('full', 0, bytes(t));
    return t;
  }
  cast(src: Tensor, dtype: DType): Tensor {
    const t = this.hold(this.inner.cast(src, dtype));
    this.count('cast', bytes(src), bytes(t));
    return t;
  }
  copyBox(src: Tensor, dst: Tensor, box: Box): void {
    this.inner.copyBox(src, dst, box);
    const n = box.size[0] * box.size[1] * numel(src.shape.slice(2));
    this.count('copyBox', n * bytesPerElement(src.dtype), n * bytesPerElement(dst.dtype));
  }
  add(dst: Tensor, src: Tensor): void {
    this.inner.add(dst, src);
    this.count('add', bytes(dst) + bytes(src), bytes(dst));
  }
  upload(t: HostTensor): Tensor {
    return this.inner.upload(t);
  }
  download(t: Tensor): Promise<HostTensor> {
    return this.inner.download(t);
  }
  synchronize(): Promise<void> {
    return this.inner.synchronize();
  }

  release(t: Tensor): void {
    if (this.released.has(t)) throw new Error('release of a released tensor');
    // a strategy releases only what it allocated, never its caller's inputs
    if (!this.allocated.has(t))
      throw new Error(`release of a tensor this device did not allocate (${JSON.stringify(t.shape)})`);
    this.released.add(t);
    this.held -= bytes(t);
    this.inner.release(t);
  }
}
