// A discrete-event engine for schedules whose tasks are issued in program order: every rank has
// a compute stream and four link ports (egress and ingress, intra- and inter-node); a task holds
// one or more of these resources for its duration and starts when its dependencies have ended
// and each resource has finished the tasks issued to it before (CUDA streams and NCCL channels
// are FIFO). Transfers hold the sender's egress port and the receiver's ingress port, so two
// transfers through one port queue behind each other: that is the links' contention.
//
// Because tasks are added in an order that respects their dependencies (the order a program
// issues them), the events can be processed in that order: each task's start is fixed when it
// is added, in O(1), and the caller keeps the end times it depends on. That keeps 10^7 tasks
// within seconds; spans are kept for the ranks a timeline will show (`traced`).

export type SpanKind = 'compute' | 'transfer' | 'collective';
const KINDS: readonly SpanKind[] = ['compute', 'transfer', 'collective'];

/** Resource slots of a rank. */
export const COMPUTE = 0,
  OUT_INTRA = 1,
  OUT_INTER = 2,
  IN_INTRA = 3,
  IN_INTER = 4;
const SLOTS = 5;

export interface Span {
  kind: SpanKind;
  name: string;
  start: number;
  end: number;
  peer?: number;
  role?: 'send' | 'recv';
}

export class Engine {
  private n = 0;
  private spansKept = 0;
  private start: Float64Array;
  private end: Float64Array;
  private rank: Int32Array;
  private peer: Int32Array;
  private kind: Uint8Array;
  private label: Uint16Array;
  private readonly labels: string[] = [];
  private readonly labelIds = new Map<string, number>();
  /** when each resource becomes free */
  private readonly free: Float64Array;
  /** busy ms per rank and slot (collectives apart, in `collective`) */
  readonly busy: Float64Array;
  readonly collective: Float64Array;
  private last = 0;

  /** `traced`: ranks below this number keep their spans for a timeline */
  constructor(
    readonly ranks: number,
    readonly traced = ranks,
  ) {
    const capacity = 1024;
    this.start = new Float64Array(capacity);
    this.end = new Float64Array(capacity);
    this.rank = new Int32Array(capacity);
    this.peer = new Int32Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.label = new Uint16Array(capacity);
    this.free = new Float64Array(ranks * SLOTS);
    this.busy = new Float64Array(ranks * SLOTS);
    this.collective = new Float64Array(ranks);
  }

  /** Tasks simulated. */
  get size(): number {
    return this.n;
  }

  private grow(): void {
    const cap = this.start.length * 2;
    const f64 = (a: Float64Array): Float64Array => {
      const b = new Float64Array(cap);
      b.set(a);
      return b;
    };
    this.start = f64(this.start);
    this.end = f64(this.end);
    const i32 = (a: Int32Array): Int32Array => {
      const b = new Int32Array(cap);
      b.set(a);
      return b;
    };
    this.rank = i32(this.rank);
    this.peer = i32(this.peer);
    const k = new Uint8Array(cap);
    k.set(this.kind);
    this.kind = k;
    const l = new Uint16Array(cap);
    l.set(this.label);
    this.label = l;
  }

  /** The id of a task name (names are interned: spans store a small number). */
  labelId(name: string): number {
    let id = this.labelIds.get(name);
    if (id === undefined) {
      id = this.labels.length;
      this.labels.push(name);
      this.labelIds.set(name, id);
    }
    return id;
  }

  /**
   * Add a task of `rank` holding its resource `slot` (and `peerSlot` of `peer`, for a transfer)
   * for `ms`, ready at `ready` (the end of its dependencies); returns its end.
   */
  add(
    kind: SpanKind,
    label: number,
    rank: number,
    slot: number,
    ms: number,
    ready: number,
    peer = -1,
    peerSlot = -1,
  ): number {
    const a = rank * SLOTS + slot,
      b = peer * SLOTS + peerSlot;
    let t = ready;
    if (this.free[a]! > t) t = this.free[a]!;
    if (peer >= 0 && this.free[b]! > t) t = this.free[b]!;
    const e = t + ms;
    this.free[a] = e;
    this.busy[a] += ms;
    if (peer >= 0) {
      this.free[b] = e;
      this.busy[b] += ms;
    }
    this.record(kind, label, rank, peer, t, e);
    return e;
  }

  /** A task holding every resource of the rank (a collective: its compute waits, its ports are busy); returns its end. */
  addWhole(kind: SpanKind, label: number, rank: number, ms: number, ready: number): number {
    let t = ready;
    for (let s = 0; s < SLOTS; s++) t = Math.max(t, this.free[rank * SLOTS + s]!);
    const e = t + ms;
    for (let s = 0; s < SLOTS; s++) this.free[rank * SLOTS + s] = e;
    this.collective[rank] += ms;
    this.record(kind, label, rank, -1, t, e);
    return e;
  }

  private record(kind: SpanKind, label: number, rank: number, peer: number, t: number, e: number): void {
    this.n++;
    if (e > this.last) this.last = e;
    if (rank >= this.traced && (peer < 0 || peer >= this.traced)) return;
    if (this.spansKept === this.start.length) this.grow();
    const id = this.spansKept++;
    this.start[id] = t;
    this.end[id] = e;
    this.rank[id] = rank;
    this.peer[id] = peer;
    this.kind[id] = KINDS.indexOf(kind);
    this.label[id] = label;
  }

  /** The time every resource of the rank is idle from. */
  rankFree(rank: number): number {
    let t = 0;
    for (let s = 0; s < SLOTS; s++) t = Math.max(t, this.free[rank * SLOTS + s]!);
    return t;
  }

  makespan(): number {
    return this.last;
  }

  busyOf(rank: number, slot: number): number {
    return this.busy[rank * SLOTS + slot]!;
  }

  /** Spans touching a traced rank (as owner or peer), in issue order. */
  spans(rank: number, limit = Infinity): Span[] {
    const out: Span[] = [];
    for (let i = 0; i < this.spansKept && out.length < limit; i++) {
      const own = this.rank[i] === rank,
        recv = this.peer[i] === rank;
      if (!own && !recv) continue;
      const s: Span = {
        kind: KINDS[this.kind[i]!]!,
        name: this.labels[this.label[i]!]!,
        start: this.start[i]!,
        end: this.end[i]!,
      };
      if (this.peer[i]! >= 0) {
        s.peer = own ? this.peer[i]! : this.rank[i]!;
        s.role = own ? 'send' : 'recv';
      }
      out.push(s);
    }
    return out;
  }
}
