// The split board: how worker ranks agree on sub-groups synchronously. `Comm.split` must return
// a group at once (its rank and size are known right away), so each rank appends its
// (group tag, color, key) to its own append-only log in shared memory and blocks in
// Atomics.wait until every member of the parent group has published the same tag. Logs are
// never overwritten, so a fast rank moving on to its next split cannot disturb a slow reader.
import type { MessagePort } from 'node:worker_threads';
import { CommTimeout } from './transport.js';

const CAP = 4096; // splits one rank may make in one run
const ENTRY = 3; // tag, color, key

export class SplitBoard {
  private readonly i32: Int32Array;

  static allocate(world: number): SharedArrayBuffer {
    return new SharedArrayBuffer(4 * (world + world * CAP * ENTRY));
  }

  constructor(
    sab: SharedArrayBuffer,
    private readonly world: number,
    private readonly timeoutMs: number,
  ) {
    this.i32 = new Int32Array(sab);
  }

  publish(rank: number, tag: number, color: number, key: number): void {
    const n = Atomics.load(this.i32, rank);
    if (n >= CAP) throw new Error(`rank ${rank} made more than ${CAP} splits`);
    const at = this.world + (rank * CAP + n) * ENTRY;
    this.i32[at] = tag;
    this.i32[at + 1] = color;
    this.i32[at + 2] = key;
    Atomics.store(this.i32, rank, n + 1); // publishes the entry (Atomics orders the writes above)
    Atomics.notify(this.i32, rank);
  }

  /** The (color, key) rank `member` published under `tag`, waiting for it up to the timeout. */
  lookup(member: number, tag: number, what: string): [number, number] {
    const deadline = Date.now() + this.timeoutMs;
    let scanned = 0;
    for (;;) {
      const n = Atomics.load(this.i32, member);
      for (; scanned < n; scanned++) {
        const at = this.world + (member * CAP + scanned) * ENTRY;
        if (this.i32[at] === tag) return [this.i32[at + 1]!, this.i32[at + 2]!];
      }
      const left = deadline - Date.now();
      if (
        left <= 0 ||
        (Atomics.wait(this.i32, member, n, left) === 'timed-out' && Atomics.load(this.i32, member) === n)
      ) {
        throw new CommTimeout(`${what} timed out after ${this.timeoutMs} ms: rank ${member} has not called split`);
      }
    }
  }
}

/** A board whose own entries also go to `relay`: the TCP wire (../tcp) forwards them to the other processes, which publish them on their boards. */
export class RelayedBoard extends SplitBoard {
  constructor(
    sab: SharedArrayBuffer,
    world: number,
    timeoutMs: number,
    private readonly relay: MessagePort,
  ) {
    super(sab, world, timeoutMs);
  }

  override publish(rank: number, tag: number, color: number, key: number): void {
    super.publish(rank, tag, color, key);
    this.relay.postMessage([tag, color, key]);
  }
}

/** FNV-1a, 32 bits: a compact tag for a (group, split number) pair. */
export function tagOf(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}
