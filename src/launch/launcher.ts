// `weft launch`: one process per GPU on this node, with torchrun's environment, a rendezvous
// store (node 0 hosts it), every output line prefixed with its rank, and fail-fast: when a rank
// fails, the others are stopped (SIGTERM, then SIGKILL after a grace period) and the launch ends
// with the first failure's exit code. With several nodes, run one launcher per node; they share
// the store, and a failure on one node stops the ranks of every node.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import readline from 'node:readline';
import { rankEnv } from './env.js';
import { StoreClient, StoreServer } from './store.js';

export interface LaunchOptions {
  /** Processes on this node (one per GPU). */
  nprocs: number;
  nodes?: number;
  nodeRank?: number;
  /** Where node 0's store listens; default 127.0.0.1 and a free port (one node only). */
  master?: { host: string; port: number };
  /** The store's shared secret; random by default (required with several nodes). */
  token?: string;
  /** The program and its arguments, run once per rank. */
  command: readonly string[];
  /** Base environment of the ranks (default process.env). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Time between SIGTERM and SIGKILL when stopping ranks; default 5 s. */
  graceMs?: number;
}

export interface RankFailure {
  rank: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  line?: string;
}

export interface LaunchResult {
  /** 0 when every rank succeeded; else the first failure's exit code (128 + signal number if killed). */
  code: number;
  failure?: RankFailure;
  /** One line describing the failure. */
  message?: string;
}

export interface Launch {
  result: Promise<LaunchResult>;
  /** Stop every rank (e.g. on Ctrl-C); the result reports the given reason. */
  stop(reason: string): void;
  /** Store address the ranks use. */
  master: { host: string; port: number };
}

const FAILED_KEY = 'weft/launch/failed';
const finishedKey = (node: number): string => `weft/launch/finished/${node}`;

function exitCode(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return n ? 128 + n : 1;
}

function describe(f: RankFailure): string {
  const how = f.signal ? `was killed by ${f.signal}` : `exited with code ${f.code}`;
  return `rank ${f.rank} ${how}${f.line ? `: ${f.line}` : ''}`;
}

/** The most telling recent stderr line: the last one naming an error, else the last one. */
function tellingLine(recent: readonly string[]): string | undefined {
  for (let i = recent.length - 1; i >= 0; i--)
    if (/(Error|error:|weft:|Exception)/.test(recent[i]!)) return recent[i]!.trim();
  return recent.at(-1)?.trim();
}

function validateLaunch(o: LaunchOptions): void {
  const nodes = o.nodes ?? 1,
    nodeRank = o.nodeRank ?? 0;
  if (!Number.isInteger(o.nprocs) || o.nprocs < 1) throw new Error(`-n must be a positive integer, got ${o.nprocs}`);
  if (!Number.isInteger(nodes) || nodes < 1) throw new Error(`--nodes must be a positive integer, got ${nodes}`);
  if (!Number.isInteger(nodeRank) || nodeRank < 0 || nodeRank >= nodes)
    throw new Error(`--node-rank must be in 0..${nodes - 1}, got ${nodeRank}`);
  if (o.command.length === 0) throw new Error('no command to launch (put it after --)');
  if (nodes > 1 && !(o.master && o.master.port > 0))
    throw new Error('several nodes need --master ADDR:PORT with a fixed port');
  if (nodes > 1 && !o.token)
    throw new Error('several nodes need a shared token (--token or WEFT_STORE_TOKEN), the same on every node');
}

export async function startLaunch(o: LaunchOptions): Promise<Launch> {
  validateLaunch(o);
  const nodes = o.nodes ?? 1,
    nodeRank = o.nodeRank ?? 0;
  const token = o.token ?? randomBytes(24).toString('hex');
  const out = o.stdout ?? process.stdout,
    err = o.stderr ?? process.stderr;
  const host = o.master?.host ?? '127.0.0.1';
  let port = o.master?.port ?? 0;
  const server = nodeRank === 0 ? await StoreServer.listen(host, port, token) : undefined;
  if (server) port = server.port;
  const client = nodes > 1 ? await StoreClient.connect({ host, port, token }) : undefined;

  const children = new Map<number, ChildProcess>();
  let failure: RankFailure | undefined;
  let stopReason: string | undefined;
  let stopping = false;

  const stopAll = (): void => {
    if (stopping) return;
    stopping = true;
    for (const c of children.values()) c.kill('SIGTERM');
    const kill = setTimeout(() => {
      for (const c of children.values()) c.kill('SIGKILL');
    }, o.graceMs ?? 5000);
    kill.unref();
  };

  const result = new Promise<LaunchResult>((resolve) => {
    let running = o.nprocs;
    const finish = async (): Promise<void> => {
      if (client) {
        await client.set(finishedKey(nodeRank), failure ? 'failed' : 'ok').catch(() => {});
        if (server) {
          // node 0 hosts the store: keep it up until every node is done (or one failed)
          const all = Array.from({ length: nodes }, (_, i) => finishedKey(i));
          await Promise.race([client.wait(all, 7 * 24 * 3600_000), client.wait([FAILED_KEY], 7 * 24 * 3600_000)]).catch(
            () => {},
          );
        }
        client.close();
      }
      await server?.close();
      if (failure) {
        const message = `${describe(failure)}${children.size > 1 || o.nprocs > 1 ? '; stopped the other ranks' : ''}`;
        resolve({ code: exitCode(failure.code, failure.signal) || 1, failure, message });
      } else if (stopReason) {
        resolve({ code: 1, message: stopReason });
      } else {
        resolve({ code: 0 });
      }
    };

    if (client) {
      client.get(FAILED_KEY, 7 * 24 * 3600_000).then(
        (v) => {
          if (!failure && !stopReason) {
            stopReason = `stopped: ${v.toString('utf8')}`;
            stopAll();
          }
        },
        () => {},
      );
    }

    for (let local = 0; local < o.nprocs; local++) {
      const d: Parameters<typeof rankEnv>[0] = {
        rank: nodeRank * o.nprocs + local,
        worldSize: nodes * o.nprocs,
        localRank: local,
        localWorldSize: o.nprocs,
        nodeRank,
        masterAddr: host,
        masterPort: port,
        token,
      };
      const child = spawn(o.command[0]!, o.command.slice(1), {
        env: { ...(o.env ?? process.env), ...rankEnv(d) },
        cwd: o.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.set(d.rank, child);
      const recent: string[] = [];
      const prefix = `[rank ${d.rank}] `;
      readline.createInterface({ input: child.stdout! }).on('line', (l) => out.write(prefix + l + '\n'));
      readline.createInterface({ input: child.stderr! }).on('line', (l) => {
        err.write(prefix + l + '\n');
        recent.push(l);
        if (recent.length > 20) recent.shift();
      });
      let streamsOpen = 2;
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      const settle = (): void => {
        // wait for both the exit and the end of its output, so the failure line is known
        if (!exit || streamsOpen > 0) return;
        children.delete(d.rank);
        const failed = exit.code !== 0;
        if (failed && !failure && !stopping) {
          failure = { rank: d.rank, code: exit.code, signal: exit.signal, line: tellingLine(recent) };
          client?.set(FAILED_KEY, `node ${nodeRank}: ${describe(failure)}`).catch(() => {});
          stopAll();
        }
        if (--running === 0) void finish();
      };
      child.stdout!.on('close', () => {
        streamsOpen--;
        settle();
      });
      child.stderr!.on('close', () => {
        streamsOpen--;
        settle();
      });
      child.on('error', (e) => {
        err.write(`${prefix}cannot start ${o.command[0]}: ${e.message}\n`);
        recent.push(`cannot start ${o.command[0]}: ${e.message}`);
      });
      child.on('close', (code, signal) => {
        exit = { code: code ?? (signal ? null : 1), signal };
        settle();
      });
    }
  });

  return {
    result,
    stop: (reason) => {
      if (!failure && !stopReason) stopReason = reason;
      client?.set(FAILED_KEY, `node ${nodeRank}: ${reason}`).catch(() => {});
      stopAll();
    },
    master: { host, port },
  };
}

/** Launch and wait for the result. */
export async function launch(o: LaunchOptions): Promise<LaunchResult> {
  return (await startLaunch(o)).result;
}
