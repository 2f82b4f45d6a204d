// CPU ranks in separate processes: each process runs its rank program on one worker thread with
// the same LocalComm as the in-process ranks, and its main thread is the wire — one TCP
// connection per peer on loopback, carrying what the worker's transport posts for that peer.
//
//   worker (LocalComm, Transport) ⇄ MessagePort per peer ⇄ main thread ⇄ TCP ⇄ peer's main thread
//
// A send is copied onto the socket and acknowledged to the worker at once (the buffer may then be
// reused, NCCL's contract); the receiving wire posts the bytes as an already-copied message, so
// the FIFO matching of the transport is unchanged. Sub-group splits go through the split board:
// the worker's own entries are relayed to every peer, which publishes them on its own board.
// Ranks meet through the job's rendezvous store: each listens on 127.0.0.1, publishes its port,
// and the higher rank of each pair connects to the lower (loopback only: one host).
import net from 'node:net';
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import type { StoreClient } from '../../../launch/store.js';
import { SplitBoard } from '../comm/board.js';
import { DEFAULT_TIMEOUT_MS, RankError, type RankProgram } from '../comm/launch.js';
import type { ErrorKind, WorkerInit, WorkerReply } from '../comm/worker.js';

const WORKER = new URL('../comm/worker.js', import.meta.url);
const ARRAYS = { Float64Array, Float32Array, Uint16Array, Int32Array } as const;
type ArrayName = keyof typeof ARRAYS;

/** A frame: 4-byte header length, the JSON header, then `n` payload bytes. */
interface Header {
  t: 's' | 'b' | 'hello' | 'bye';
  key?: string;
  what?: string;
  type?: ArrayName;
  n?: number;
  entry?: [number, number, number];
  rank?: number;
  token?: string;
}
interface SendMsg {
  t: 's';
  key: string;
  id: number;
  data: ArrayBufferView;
  copied: boolean;
  what: string;
}

function frame(h: Header, payload?: ArrayBufferView): Buffer[] {
  const json = Buffer.from(JSON.stringify(h), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  // copy the payload: the sender's buffer is reused as soon as the worker has its acknowledgement
  return payload
    ? [len, json, Buffer.from(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength))]
    : [len, json];
}

/** Calls `on` for each complete frame arriving on `sock`. */
function frames(sock: net.Socket, on: (h: Header, payload: Uint8Array) => void): void {
  let chunks: Buffer[] = [],
    have = 0;
  let need: { h: Header; n: number } | undefined;
  const take = (n: number): Buffer => {
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, have);
    chunks = n < all.length ? [all.subarray(n)] : [];
    have -= n;
    return all.subarray(0, n);
  };
  sock.on('data', (d: Buffer) => {
    chunks.push(d);
    have += d.length;
    for (;;) {
      if (!need) {
        if (have < 4) return;
        const head = Buffer.concat(chunks, have);
        const len = head.readUInt32LE(0);
        if (have < 4 + len) return;
        take(4);
        const h = JSON.parse(take(len).toString('utf8')) as Header;
        need = { h, n: h.n ?? 0 };
      }
      if (have < need.n) return;
      const payload = new Uint8Array(need.n);
      payload.set(take(need.n));
      const h = need.h;
      need = undefined;
      on(h, payload);
    }
  });
}

export interface TcpRankOptions {
  rank: number;
  size: number;
  /** the job's rendezvous store (every rank of the job) */
  store: StoreClient;
  /** shared secret every connection presents first */
  token: string;
  /** distinguishes several runs of one job on one store */
  tag?: string;
  timeoutMs?: number;
}

/** Connect to every peer: the lower rank of a pair listens, the higher connects. */
async function mesh(o: TcpRankOptions, prefix: string): Promise<net.Socket[]> {
  const socks = new Array<net.Socket>(o.size);
  const server = net.createServer();
  const accepted = new Promise<void>((resolve, reject) => {
    let left = o.size - 1 - o.rank;
    if (left === 0) resolve();
    server.on('connection', (s) => {
      s.once('data', (d) => {
        // the hello frame arrives first and alone: the peer waits for nothing before sending it
        const len = d.readUInt32LE(0);
        const h = JSON.parse(d.subarray(4, 4 + len).toString('utf8')) as Header;
        if (
          h.t !== 'hello' ||
          h.token !== o.token ||
          typeof h.rank !== 'number' ||
          h.rank <= o.rank ||
          h.rank >= o.size ||
          socks[h.rank]
        ) {
          s.destroy();
          return;
        }
        if (d.length > 4 + len) s.unshift(d.subarray(4 + len));
        socks[h.rank] = s;
        if (--left === 0) resolve();
      });
    });
    server.on('error', reject);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  await o.store.set(`${prefix}/port/${o.rank}`, String((server.address() as net.AddressInfo).port));
  for (let j = 0; j < o.rank; j++) {
    const port = Number(await o.store.getString(`${prefix}/port/${j}`));
    const s = await new Promise<net.Socket>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.off('error', reject);
        resolve(c);
      });
      c.once('error', reject);
    });
    s.write(Buffer.concat(frame({ t: 'hello', rank: o.rank, token: o.token })));
    socks[j] = s;
  }
  await accepted;
  server.close();
  for (const s of socks) s?.setNoDelay(true);
  return socks;
}

let runs = 0;

/**
 * Run `program.fn(worldComm, args)` as rank `o.rank` of `o.size` processes and resolve with this
 * rank's result. Every process of the job calls it with the same program, in the same order.
 */
export async function runTcpRank<R>(program: RankProgram, args: unknown, o: TcpRankOptions): Promise<R> {
  const timeoutMs = o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const prefix = `weft/tcp/${o.tag ?? runs++}`;
  const socks = await mesh(o, prefix);
  const sab = SplitBoard.allocate(o.size);
  const board = new SplitBoard(sab, o.size, timeoutMs);
  const mains: (MessagePort | undefined)[] = new Array(o.size),
    theirs: (MessagePort | undefined)[] = new Array(o.size);
  for (let j = 0; j < o.size; j++) {
    if (j === o.rank) continue;
    const { port1, port2 } = new MessageChannel();
    mains[j] = port1;
    theirs[j] = port2;
  }
  const relay = new MessageChannel();
  const module = program.module instanceof URL ? program.module.href : program.module;
  const init: WorkerInit = {
    rank: o.rank,
    size: o.size,
    ports: theirs,
    board: sab,
    relay: relay.port2,
    timeoutMs,
    module,
    fn: program.fn,
    args,
  };
  const transfer = [...theirs.filter((p): p is MessagePort => p !== undefined), relay.port2];

  return new Promise<R>((resolve, reject) => {
    let settled = false;
    const finished = new Array<boolean>(o.size).fill(false); // peers that said bye
    // (a worker inherits the process's node flags; --input-type, for a `node -e` rank, would refuse its module)
    const execArgv = process.execArgv.filter((a) => !a.startsWith('--input-type'));
    const worker = new Worker(WORKER, { workerData: init, transferList: transfer, execArgv });
    const end = (graceful: boolean): void => {
      settled = true;
      void worker.terminate();
      relay.port1.close();
      for (const p of mains) p?.close();
      // a finished rank's sends are all on the wire before its bye
      for (const s of socks)
        if (s) {
          if (graceful) s.end(Buffer.concat(frame({ t: 'bye' })));
          else s.destroy();
        }
    };
    const fail = (rank: number, message: string, stack?: string, kind?: ErrorKind): void => {
      if (settled) return;
      end(false);
      reject(new RankError(rank, message, stack, kind));
    };
    worker.on('message', (m: WorkerReply) => {
      if (settled) return;
      if (m.t === 'error') {
        fail(o.rank, m.message, m.stack, m.kind);
        return;
      }
      end(true);
      resolve(m.result as R);
    });
    worker.on('error', (e: Error) => fail(o.rank, e.message, e.stack));
    worker.on('exit', (code) => fail(o.rank, `exited with code ${code} before finishing`));

    relay.port1.on('message', (entry: [number, number, number]) => {
      const f = Buffer.concat(frame({ t: 'b', entry }));
      for (const s of socks) s?.write(f);
    });
    socks.forEach((sock, j) => {
      if (!sock) return;
      const port = mains[j]!;
      port.on('message', (m: SendMsg) => {
        if (m.t !== 's') return;
        const type = m.data.constructor.name as ArrayName;
        for (const b of frame({ t: 's', key: m.key, what: m.what, type, n: m.data.byteLength }, m.data)) sock.write(b);
        if (!m.copied) port.postMessage({ t: 'a', id: m.id });
      });
      frames(sock, (h, payload) => {
        if (h.t === 'bye') {
          finished[j] = true;
          return;
        }
        if (h.t === 'b') {
          board.publish(j, ...h.entry!);
          return;
        }
        const data = new ARRAYS[h.type!](
          payload.buffer as ArrayBuffer,
          0,
          payload.byteLength / ARRAYS[h.type!].BYTES_PER_ELEMENT,
        );
        port.postMessage({ t: 's', key: h.key!, id: -1, data, copied: true, what: h.what! } satisfies SendMsg);
      });
      sock.on('error', (e) => fail(j, `connection to rank ${j} failed: ${e.message}`));
      sock.on('close', () => {
        if (!finished[j]) fail(j, `rank ${j} closed its connection before finishing (its process ended or failed)`);
      });
    });
  });
}
