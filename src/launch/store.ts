// The TCP rendezvous store that the ranks of one job meet through (torchrun's TCPStore, in
// small): set/get/add/wait/check/delete on string keys with binary values, every wait bounded
// by a timeout. It listens on loopback unless told otherwise, and a connection must present the
// job's token first, so that no stranger on the network can join or read the NCCL unique id.
// Protocol: one JSON object per line each way; values travel as base64.
import { createHash, timingSafeEqual } from 'node:crypto';
import net from 'node:net';

const MAX_LINE = 16 << 20;

interface Request {
  id: number;
  op: string;
  key?: string;
  keys?: string[];
  value?: string;
  delta?: number;
  timeoutMs?: number;
  token?: string;
}
interface Reply {
  id: number;
  ok: boolean;
  value?: string | number | boolean;
  error?: string;
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Split a socket's data into lines, refusing overlong ones. */
function lines(sock: net.Socket, onLine: (line: string) => void): void {
  let buf = '';
  sock.setEncoding('utf8');
  sock.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line) onLine(line);
    }
    if (buf.length > MAX_LINE) sock.destroy(new Error('store message too long'));
  });
}

export class StoreServer {
  private readonly data = new Map<string, Buffer>();
  private readonly waiters = new Set<{ keys: string[]; done: () => void; timer: NodeJS.Timeout }>();
  private readonly sockets = new Set<net.Socket>();
  private readonly tokenDigest: Buffer;
  private unreferenced = false;

  private constructor(
    private readonly server: net.Server,
    token: string,
  ) {
    this.tokenDigest = digest(token);
    server.on('connection', (s) => this.serve(s));
  }

  /** Listen on host:port (port 0 picks a free one; see .port). */
  static listen(host: string, port: number, token: string): Promise<StoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      const store = new StoreServer(server, token);
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve(store);
      });
    });
  }

  /** Never keep the process up for the store's sake (a store that lives as long as its host). */
  unref(): void {
    this.unreferenced = true;
    this.server.unref();
    for (const s of this.sockets) s.unref();
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  close(): Promise<void> {
    // pending get/wait requests die with their connections; their timers must not keep the process up
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  private notify(): void {
    for (const w of [...this.waiters])
      if (w.keys.every((k) => this.data.has(k))) {
        this.waiters.delete(w);
        w.done();
      }
  }

  private serve(sock: net.Socket): void {
    this.sockets.add(sock);
    if (this.unreferenced) sock.unref();
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => sock.destroy());
    let authed = false;
    const reply = (r: Reply): void => {
      if (!sock.destroyed) sock.write(JSON.stringify(r) + '\n');
    };
    lines(sock, (line) => {
      let req: Request;
      try {
        req = JSON.parse(line) as Request;
      } catch {
        sock.destroy();
        return;
      }
      if (!authed) {
        const given = digest(String(req.token ?? ''));
        if (req.op !== 'auth' || !timingSafeEqual(given, this.tokenDigest)) {
          reply({ id: req.id, ok: false, error: 'rendezvous store: wrong token' });
          sock.end();
          return;
        }
        authed = true;
        reply({ id: req.id, ok: true });
        return;
      }
      this.handle(req, reply);
    });
  }

  private handle(req: Request, reply: (r: Reply) => void): void {
    const { id } = req;
    switch (req.op) {
      case 'set':
        this.data.set(req.key!, Buffer.from(req.value ?? '', 'base64'));
        reply({ id, ok: true });
        this.notify();
        return;
      case 'add': {
        const cur = Number(this.data.get(req.key!)?.toString('utf8') ?? '0');
        const next = cur + (req.delta ?? 0);
        this.data.set(req.key!, Buffer.from(String(next), 'utf8'));
        reply({ id, ok: true, value: next });
        this.notify();
        return;
      }
      case 'check':
        reply({ id, ok: true, value: (req.keys ?? []).every((k) => this.data.has(k)) });
        return;
      case 'delete':
        reply({ id, ok: true, value: this.data.delete(req.key!) });
        return;
      case 'get':
      case 'wait': {
        const keys = req.op === 'get' ? [req.key!] : (req.keys ?? []);
        const answer = (): void =>
          reply(
            req.op === 'get' ? { id, ok: true, value: this.data.get(req.key!)!.toString('base64') } : { id, ok: true },
          );
        if (keys.every((k) => this.data.has(k))) {
          answer();
          return;
        }
        const timer = setTimeout(() => {
          this.waiters.delete(waiter);
          const missing = keys.filter((k) => !this.data.has(k));
          reply({
            id,
            ok: false,
            error: `rendezvous store: timed out after ${(req.timeoutMs ?? 0) / 1000} s waiting for ${missing.join(', ')}`,
          });
        }, req.timeoutMs ?? 300_000);
        const waiter = {
          keys,
          timer,
          done: () => {
            clearTimeout(timer);
            answer();
          },
        };
        this.waiters.add(waiter);
        return;
      }
      default:
        reply({ id, ok: false, error: `rendezvous store: unknown operation ${req.op}` });
    }
  }
}

export interface ConnectOptions {
  host: string;
  port: number;
  token: string;
  /** Keep retrying the connection this long (the server may start later); default 60 s. */
  connectTimeoutMs?: number;
  /** Default timeout of get/wait; default 300 s. */
  timeoutMs?: number;
}

export class StoreError extends Error {}

export class StoreClient {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private closed = false;

  private constructor(
    private readonly sock: net.Socket,
    readonly timeoutMs: number,
  ) {
    lines(sock, (line) => {
      const r = JSON.parse(line) as Reply;
      const c = this.calls.get(r.id);
      if (c) {
        this.calls.delete(r.id);
        this.refresh();
        c.resolve(r);
      }
    });
    const failAll = (why: string): void => {
      for (const c of this.calls.values()) c.reject(new StoreError(why));
      this.calls.clear();
    };
    sock.on('error', (e) => failAll(`rendezvous store connection failed: ${e.message}`));
    sock.on('close', () =>
      failAll(this.closed ? 'rendezvous store client closed' : 'rendezvous store closed the connection'),
    );
  }

  /** Keep the process alive only while a request is outstanding. */
  private refresh(): void {
    if (this.calls.size) this.sock.ref();
    else this.sock.unref();
  }

  static async connect(opts: ConnectOptions): Promise<StoreClient> {
    const deadline = Date.now() + (opts.connectTimeoutMs ?? 60_000);
    let last = '';
    for (;;) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(opts.port, opts.host, () => {
            s.off('error', reject);
            resolve(s);
          });
          s.once('error', reject);
        });
        sock.setNoDelay(true);
        const client = new StoreClient(sock, opts.timeoutMs ?? 300_000);
        await client.request({ op: 'auth', token: opts.token }, 'auth');
        return client;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
        if (e instanceof StoreError && /wrong token/.test(last)) throw e;
        if (Date.now() > deadline)
          throw new StoreError(`cannot reach the rendezvous store at ${opts.host}:${opts.port}: ${last}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  private async request(req: Omit<Request, 'id'>, what: string): Promise<Reply> {
    if (this.closed) throw new StoreError('rendezvous store client closed');
    const id = this.nextId++;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.refresh();
      this.sock.write(JSON.stringify({ ...req, id }) + '\n');
    });
    if (!reply.ok) throw new StoreError(reply.error ?? `rendezvous store: ${what} failed`);
    return reply;
  }

  async set(key: string, value: string | Uint8Array): Promise<void> {
    const b = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
    await this.request({ op: 'set', key, value: b.toString('base64') }, `set ${key}`);
  }

  /** The value of `key`, waiting until some rank sets it (at most timeoutMs). */
  async get(key: string, timeoutMs = this.timeoutMs): Promise<Buffer> {
    const r = await this.request({ op: 'get', key, timeoutMs }, `get ${key}`);
    return Buffer.from(r.value as string, 'base64');
  }

  async getString(key: string, timeoutMs = this.timeoutMs): Promise<string> {
    return (await this.get(key, timeoutMs)).toString('utf8');
  }

  /** Atomically add `delta` to the integer at `key` (0 when absent); returns the new value. */
  async add(key: string, delta: number): Promise<number> {
    return (await this.request({ op: 'add', key, delta }, `add ${key}`)).value as number;
  }

  /** Resolve when all keys exist (at most timeoutMs). */
  async wait(keys: readonly string[], timeoutMs = this.timeoutMs): Promise<void> {
    await this.request({ op: 'wait', keys: [...keys], timeoutMs }, 'wait');
  }

  async check(keys: readonly string[]): Promise<boolean> {
    return (await this.request({ op: 'check', keys: [...keys] }, 'check')).value as boolean;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.request({ op: 'delete', key }, `delete ${key}`)).value as boolean;
  }

  /** Every rank of `size` arrives at barrier `name` before any leaves. */
  async barrier(name: string, size: number, timeoutMs = this.timeoutMs): Promise<void> {
    const n = await this.add(`barrier/${name}/count`, 1);
    if (n === size) await this.set(`barrier/${name}/done`, '1');
    await this.wait([`barrier/${name}/done`], timeoutMs);
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
