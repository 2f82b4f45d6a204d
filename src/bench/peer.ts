// PyTorch peers run beside weft in the same invocation: every rank of a `weft launch` job starts
// the peer script with torchrun's environment (its own port, so the two jobs never meet), and
// rank 0's 'RESULT <json>' lines come back.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { StoreClient } from '../launch/store.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** Path of a script under bench/peers/. */
export function peerScript(name: string): string {
  return fileURLToPath(new URL(`../../../bench/peers/${name}`, import.meta.url));
}

/**
 * Run `python script args` on every rank (collective: all ranks call it with the same `tag`).
 * Returns the parsed RESULT lines (rank 0's; the other ranks' are usually empty).
 */
export async function runPeer<T>(
  store: StoreClient,
  rank: number,
  tag: string,
  python: string,
  script: string,
  args: readonly string[],
): Promise<T[]> {
  const key = `weft/bench/peer-port/${tag}`;
  if (rank === 0) await store.set(key, String(await freePort()));
  const port = await store.getString(key);
  const child = spawn(python, [script, ...args], {
    env: { ...process.env, MASTER_PORT: port, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0)
    throw new Error(
      `the PyTorch peer (${python} ${script}) failed with code ${code}${stdout ? `; its output: ${stdout.trim().slice(-500)}` : ''}`,
    );
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('RESULT '))
    .map((l) => JSON.parse(l.slice(7)) as T);
}

/**
 * Run a one-GPU peer script (`python script arg`) that prints one JSON object a line: an info
 * object first (no `name`), then one line per measurement, each passed to `onLine` (with the info)
 * as it arrives, so long sweeps show progress and keep what they measured. Returns the info and the measurement lines.
 */
export async function streamPeer<L extends { name?: string }>(
  python: string,
  script: string,
  arg: string,
  onLine: (line: L, info: Record<string, unknown>) => void,
): Promise<{ info: Record<string, unknown>; lines: L[] }> {
  const child = spawn(python, [script, arg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let buf = '',
    err = '';
  const lines: L[] = [];
  let info: Record<string, unknown> = {};
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (!line) continue;
      const j = JSON.parse(line) as L & Record<string, unknown>;
      if (j.name === undefined) {
        info = j;
        continue;
      }
      lines.push(j);
      onLine(j, info);
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const code = await new Promise<number | null>((res) => child.on('close', res));
  if (code !== 0)
    throw new Error(`the PyTorch peer (${python} ${script}) failed with code ${code}: ${err.trim().slice(-500)}`);
  return { info, lines };
}
