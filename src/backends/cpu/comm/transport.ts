// Point-to-point messaging between worker ranks. Each pair of ranks has a MessagePort; a send
// posts a view of the sender's buffer (shared memory, so nothing is copied in transit), the
// receiver copies it into the matching posted recv and acknowledges, and only then is the send
// complete — NCCL's contract that a send buffer may be reused once its operation finished.
// Matching is FIFO per (group, channel, source): the i-th send from a source meets the i-th recv
// posted for that source. Collectives use their own channel so they never meet p2p traffic.
import type { MessagePort } from 'node:worker_threads';
import { RunFailure } from '../../../errors.js';
import type { HostData } from '../../../tensor/host.js';

export type Channel = 'p2p' | 'coll';

interface SendMsg {
  t: 's';
  key: string;
  id: number;
  data: HostData;
  copied: boolean;
  what: string;
}
interface AckMsg {
  t: 'a';
  id: number;
}
type Msg = SendMsg | AckMsg;

interface Posted {
  dst: HostData;
  done: () => void;
  what: string;
}

/** One transfer in flight, as a wait can report it. */
export interface Pending {
  readonly promise: Promise<void>;
  readonly what: string;
  done: boolean;
}

/** A wait that ran past the timeout: a run-time failure (one line, exit 1), not a bug. */
export class CommTimeout extends RunFailure {}

export class Transport {
  private readonly inbox = new Map<string, SendMsg[]>();
  private readonly posted = new Map<string, Posted[]>();
  private readonly acks = new Map<number, () => void>();
  private nextId = 0;

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly ports: readonly (MessagePort | undefined)[],
    readonly timeoutMs: number,
  ) {
    ports.forEach((p, peer) => p?.on('message', (m: Msg) => this.onMessage(peer, m)));
  }

  /** Send `data` to global rank `peer`; `label` names the operation for error messages. */
  send(group: string, channel: Channel, peer: number, data: HostData, label: string): Pending {
    const shared = data.buffer instanceof SharedArrayBuffer;
    const id = this.nextId++;
    // an ordinary ArrayBuffer is copied by postMessage, so such a send is complete at once
    const copied = peer !== this.rank && !shared;
    const pending = this.pending(`${label}: send to ${this.name(peer)} not yet received`, (done) => {
      if (copied) done();
      else this.acks.set(id, done);
    });
    const msg: SendMsg = { t: 's', key: `${group}|${channel}`, id, data, copied, what: label };
    if (peer === this.rank) queueMicrotask(() => this.onMessage(peer, msg));
    else this.port(peer).postMessage(msg);
    return pending;
  }

  /** Receive from global rank `peer` into `dst` (sizes must match the send exactly). */
  recv(group: string, channel: Channel, peer: number, dst: HostData, label: string): Pending {
    const key = `${group}|${channel}|${peer}`;
    const what = `${label}: recv from ${this.name(peer)} not yet arrived`;
    const pending = this.pending(what, (done) => {
      const q = this.posted.get(key) ?? [];
      q.push({ dst, done, what: label });
      this.posted.set(key, q);
    });
    this.match(key, peer);
    return pending;
  }

  private pending(what: string, start: (done: () => void) => void): Pending {
    const p: { promise?: Promise<void>; what: string; done: boolean } = { what, done: false };
    p.promise = new Promise<void>((resolve) =>
      start(() => {
        p.done = true;
        resolve();
      }),
    );
    return p as Pending;
  }

  private name(peer: number): string {
    return `rank ${peer}`;
  }

  private port(peer: number): MessagePort {
    const p = this.ports[peer];
    if (!p) throw new Error(`rank ${this.rank} has no channel to rank ${peer} (world of ${this.size})`);
    return p;
  }

  private onMessage(src: number, m: Msg): void {
    if (m.t === 'a') {
      const done = this.acks.get(m.id);
      if (!done) throw new Error(`rank ${this.rank}: acknowledgement for unknown send ${m.id} from rank ${src}`);
      this.acks.delete(m.id);
      done();
      return;
    }
    const key = `${m.key}|${src}`;
    const q = this.inbox.get(key) ?? [];
    q.push(m);
    this.inbox.set(key, q);
    this.match(key, src);
  }

  private match(key: string, src: number): void {
    const sends = this.inbox.get(key),
      recvs = this.posted.get(key);
    while (sends?.length && recvs?.length) {
      const s = sends.shift()!,
        r = recvs.shift()!;
      const sType = s.data.constructor.name,
        rType = r.dst.constructor.name;
      if (s.data.length !== r.dst.length || sType !== rType) {
        throw new Error(
          `${r.what}: rank ${src} sent ${s.data.length} ${sType} elements (${s.what}) but rank ${this.rank} expected ${r.dst.length} ${rType} elements`,
        );
      }
      r.dst.set(s.data as never);
      r.done();
      if (s.copied) continue;
      if (src === this.rank) this.onMessage(src, { t: 'a', id: s.id });
      else this.port(src).postMessage({ t: 'a', id: s.id } satisfies AckMsg);
    }
  }
}

/** Wait for transfers, failing with the outstanding ones named after `timeoutMs`. */
export function waitFor(
  op: string,
  parts: () => readonly Pending[],
  all: Promise<void>,
  timeoutMs: number,
): Promise<void> {
  if (parts().every((p) => p.done)) return all;
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      const open = parts()
        .filter((p) => !p.done)
        .map((p) => p.what);
      reject(new CommTimeout(`${op} timed out after ${timeoutMs} ms: ${open.join('; ') || 'no transfer outstanding'}`));
    }, timeoutMs);
    all.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}
