// The entry of one worker rank: connect the transport, import the rank program and run it with
// the world Comm (its peers are worker threads of this process, or other processes behind the
// TCP wire, ../tcp). The result (or the error) goes to the main thread, which ends all ranks on the
// first error. This module never loads CUDA code (koffi must not be imported in workers).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { RunFailure, UserError } from '../../../errors.js';
import { RelayedBoard, SplitBoard } from './board.js';
import { LocalComm } from './group.js';
import { Transport } from './transport.js';

export interface WorkerInit {
  rank: number;
  size: number;
  ports: (MessagePort | undefined)[];
  board: SharedArrayBuffer;
  /** set when the peers are other processes (the TCP wire): own split entries go there too */
  relay?: MessagePort;
  timeoutMs: number;
  module: string;
  fn: string;
  args: unknown;
}

/** Which of the errors the CLI reports as one line an error was (the class does not cross threads). */
export type ErrorKind = 'UserError' | 'RunFailure' | undefined;

export type WorkerReply =
  { t: 'done'; result: unknown } | { t: 'error'; message: string; stack?: string; kind?: ErrorKind };

const init = workerData as WorkerInit;
const reply = (m: WorkerReply): void => parentPort!.postMessage(m);

try {
  const transport = new Transport(init.rank, init.size, init.ports, init.timeoutMs);
  const board = init.relay
    ? new RelayedBoard(init.board, init.size, init.timeoutMs, init.relay)
    : new SplitBoard(init.board, init.size, init.timeoutMs);
  const world = new LocalComm(
    transport,
    board,
    'world',
    Array.from({ length: init.size }, (_, r) => r),
    init.rank,
  );
  const mod = (await import(init.module)) as Record<string, unknown>;
  const program = mod[init.fn];
  if (typeof program !== 'function') throw new Error(`${init.module} exports no function '${init.fn}'`);
  reply({ t: 'done', result: await (program as (c: LocalComm, a: unknown) => unknown)(world, init.args) });
} catch (e) {
  const kind: ErrorKind = e instanceof UserError ? 'UserError' : e instanceof RunFailure ? 'RunFailure' : undefined;
  reply(
    e instanceof Error ? { t: 'error', message: e.message, stack: e.stack, kind } : { t: 'error', message: String(e) },
  );
}
