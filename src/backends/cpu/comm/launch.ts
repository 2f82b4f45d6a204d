// Run a rank program on N worker threads: the local backend's `torchrun`. The main thread only
// wires the ranks together and collects their results; an error in any rank terminates every
// worker and rejects with `rank r: <message>`, so a failing run never hangs.
import { MessageChannel, type MessagePort, Worker } from 'node:worker_threads';
import { SplitBoard } from './board.js';
import type { ErrorKind, WorkerInit, WorkerReply } from './worker.js';

/** How long any single wait (a Work, a barrier, a split) may block before it fails. */
export const DEFAULT_TIMEOUT_MS = 300_000;

const WORKER = new URL('./worker.js', import.meta.url);

export interface RankProgram {
  /** URL (or path) of a module the workers import; it must be compiled JS */
  module: string | URL;
  /** the exported function to call as fn(comm, args) on every rank */
  fn: string;
}

export interface RanksOptions {
  timeoutMs?: number;
}

/** An error raised in one rank, carrying that rank's own stack and whether it was bad input or a run-time failure. */
export class RankError extends Error {
  constructor(
    readonly rank: number,
    readonly rankMessage: string,
    rankStack?: string,
    readonly rankErrorName?: ErrorKind,
  ) {
    super(`rank ${rank}: ${rankMessage}`);
    if (rankStack) this.stack = `${this.message}\n  in rank ${rank}: ${rankStack}`;
  }
}

/**
 * Start `world` ranks, call program.fn(comm, args(rank)) on each, and resolve with the results in
 * rank order. Arguments and results are structured-cloned; SharedArrayBuffer-backed tensors are
 * shared, not copied.
 */
export function runRanks<R>(
  world: number,
  program: RankProgram,
  args: (rank: number) => unknown,
  opts: RanksOptions = {},
): Promise<R[]> {
  if (!Number.isInteger(world) || world < 1)
    throw new Error(`runRanks: world size ${world} must be a positive integer`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const ports: (MessagePort | undefined)[][] = Array.from(
    { length: world },
    () => new Array<MessagePort | undefined>(world),
  );
  for (let a = 0; a < world; a++) {
    for (let b = a + 1; b < world; b++) {
      const { port1, port2 } = new MessageChannel();
      ports[a]![b] = port1;
      ports[b]![a] = port2;
    }
  }
  const board = SplitBoard.allocate(world);
  const module = program.module instanceof URL ? program.module.href : program.module;

  return new Promise<R[]>((resolve, reject) => {
    const workers: Worker[] = [];
    const results = new Array<R>(world);
    const finished = new Array<boolean>(world).fill(false);
    let left = world,
      settled = false;
    const end = (): void => {
      settled = true;
      for (const w of workers) void w.terminate();
    };
    const fail = (rank: number, message: string, stack?: string, kind?: ErrorKind): void => {
      if (settled) return;
      end();
      reject(new RankError(rank, message, stack, kind));
    };
    try {
      for (let r = 0; r < world; r++) start(r);
    } catch (e) {
      // e.g. arguments that cannot be cloned: stop the ranks already started
      end();
      reject(e instanceof Error ? e : new Error(String(e)));
    }

    function start(r: number): void {
      const init: WorkerInit = {
        rank: r,
        size: world,
        ports: ports[r]!,
        board,
        timeoutMs,
        module,
        fn: program.fn,
        args: args(r),
      };
      const w = new Worker(WORKER, {
        workerData: init,
        transferList: ports[r]!.filter((p): p is MessagePort => p !== undefined),
      });
      workers.push(w);
      w.on('message', (m: WorkerReply) => {
        if (m.t === 'error') {
          fail(r, m.message, m.stack, m.kind);
          return;
        }
        if (finished[r]) return;
        finished[r] = true;
        results[r] = m.result as R;
        if (--left === 0 && !settled) {
          end();
          resolve(results);
        }
      });
      w.on('error', (e: Error) => fail(r, e.message, e.stack));
      w.on('exit', (code) => {
        if (!finished[r]) fail(r, `exited with code ${code} before finishing`);
      });
    }
  });
}
