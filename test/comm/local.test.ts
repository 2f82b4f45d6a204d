import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RankError, runRanks } from '../../src/backends/cpu/comm/index.js';
import { failureLine } from '../../src/cli/errors.js';
import { evenSplit } from '../../src/shard/split.js';
import { fromBf16, toBf16 } from '../../src/tensor/dtype.js';
import { trackWorkers } from '../helpers/workers.js';

const PROGRAMS = new URL('./programs.js', import.meta.url);
const prog = (fn: string) => ({ module: PROGRAMS, fn });

describe('LocalComm point to point', () => {
  for (const [world, dtype, shared] of [
    [2, 'f64', true],
    [3, 'f32', true],
    [5, 'bf16', true],
    [4, 'f64', false],
  ] as const) {
    it(`ring exchange and FIFO matching: ${world} ranks, ${dtype}${shared ? '' : ', unshared buffers'}`, async () => {
      const res = await runRanks<{ ring: number[]; fifo: number[][] }>(world, prog('exchange'), () => ({
        dtype,
        shared,
      }));
      res.forEach((r, me) => {
        const prev = (me + world - 1) % world;
        assert.deepEqual(
          r.ring,
          [0, 1, 2].map((i) => prev * 10 + i),
        );
        assert.deepEqual(
          r.fifo,
          [0, 1, 2].map((j) => [prev * 16 + j, prev * 16 + j]),
        );
      });
    });
  }
});

/** What `collectives` (programs.ts) must return on group rank `me` of `world`. */
function expectCollectives(
  r: Record<string, number[] | number[][]>,
  world: number,
  me: number,
  dtype: 'f64' | 'f32' | 'bf16',
): void {
  const round = (x: number): number => (dtype === 'bf16' ? fromBf16(toBf16(x)) : dtype === 'f32' ? Math.fround(x) : x);
  const ar = Array.from({ length: 7 }, (_, i) =>
    round(Array.from({ length: world }, (_, k) => round(((k + 1) * (i + 1)) / 8)).reduce((a, b) => a + b, 0)),
  );
  assert.deepEqual(
    r.allToAll,
    Array.from({ length: world }, (_, j) => new Array(me + 1).fill(j * 10 + me)),
  );
  assert.deepEqual(r.allGather, Array.from({ length: world }, (_, j) => [j, j + 0.25]).flat());
  const rs = [0, 1, 2].map((i) =>
    round(Array.from({ length: world }, (_, j) => j + 3 * me + i).reduce((a, b) => a + b, 0)),
  );
  assert.deepEqual(r.reduceScatter, rs);
  assert.deepEqual(r.allReduce, ar);
}

describe('LocalComm collectives', () => {
  for (const [world, dtype] of [
    [1, 'f64'],
    [3, 'f64'],
    [4, 'f32'],
    [6, 'bf16'],
  ] as const) {
    it(`all-to-all, all-gather, reduce-scatter, all-reduce: ${world} ranks, ${dtype}`, async () => {
      const res = await runRanks<Record<string, number[] | number[][]>>(world, prog('collectives'), () => ({ dtype }));
      res.forEach((r, me) => expectCollectives(r, world, me, dtype));
    });
  }

  for (const [world, b, dtype] of [
    [6, 3, 'f64'],
    [6, 2, 'f32'],
    [4, 1, 'f64'],
    [4, 4, 'f32'],
  ] as const) {
    it(`mesh subgroups run every collective on the parent's transfers: ${world} ranks in groups of ${b}, ${dtype}`, async () => {
      const res = await runRanks<{ rank: number; size: number; res: Record<string, number[] | number[][]> }>(
        world,
        prog('subgroupCollectives'),
        () => ({ dtype, b }),
      );
      res.forEach((r, me) => {
        assert.deepEqual([r.rank, r.size], [Math.floor(me / (world / b)), b]);
        expectCollectives(r.res, b, r.rank, dtype);
      });
    });
  }

  it('split: nested sub-groups, custom keys, traffic kept apart', async () => {
    const res = await runRanks<{ half: number[]; quarter: number[]; rev: number[] }>(8, prog('splits'), () => null);
    res.forEach((r, me) => {
      const halfSum = [0, 2, 4, 6].map((x) => x + (me % 2)).reduce((a, b) => a + b, 0);
      assert.deepEqual(r.half, [Math.floor(me / 2), 4, halfSum]);
      const hr = Math.floor(me / 2),
        q0 = hr < 2 ? 0 : 2;
      const mates = [q0, q0 + 1].map((h) => 2 * h + (me % 2));
      assert.deepEqual(r.quarter, [hr - q0, 2, mates[0]! + mates[1]!]);
      // reversed group: group rank 7 − me; it receives from the group rank before it, world rank me + 1 (mod 8)
      assert.deepEqual(r.rev, [7 - me, (me + 1) % 8]);
    });
  });

  it('the accounting wrapper counts messages and bytes per labelled step', async () => {
    const world = 4;
    const res = await runRanks<{ label: string; messages: number; bytesSent: number; bytesReceived: number }[]>(
      world,
      prog('counted'),
      () => null,
    );
    res.forEach((steps, me) => {
      const b = evenSplit(7, world),
        mine = (b[me + 1]! - b[me]!) * 8;
      assert.deepEqual(steps, [
        { label: 'p2p', messages: 1, bytesSent: 40, bytesReceived: 40 },
        { label: 'a2a', messages: 3, bytesSent: 36, bytesReceived: 36 },
        { label: 'gather', messages: 3, bytesSent: 48, bytesReceived: 48 },
        { label: 'rs', messages: 3, bytesSent: 48, bytesReceived: 48 },
        { label: 'ar', messages: 6, bytesSent: 56 - mine + 3 * mine, bytesReceived: 3 * mine + 56 - mine },
        { label: 'sub', messages: 1, bytesSent: 8, bytesReceived: 8 },
      ]);
    });
  });
});

// Every case counts the worker threads it started and waits until all of them have exited. The
// hang guard (two minutes) is far shorter than the ten-minute communication timeout of the first
// case, so a failure that did not end the other ranks would trip it.
describe('LocalComm failures end every rank, never hang', { timeout: 120_000 }, () => {
  const rejects = async (world: number, run: () => Promise<unknown>, pattern: RegExp): Promise<RankError> => {
    const workers = trackWorkers();
    try {
      const err = await run().then(
        () => assert.fail('expected the run to fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RankError, String(err));
      assert.match(err.message, pattern);
      assert.equal(workers.created, world);
      await workers.exited(world);
      return err;
    } finally {
      workers.stop();
    }
  };

  it('an exception in one rank rejects with that rank and message, and ends the others', async () => {
    const err = await rejects(
      6,
      () => runRanks(6, prog('throwing'), () => ({ rank: 4, delayMs: 50 }), { timeoutMs: 600_000 }),
      /^rank 4: deliberate failure in rank 4$/,
    );
    assert.equal(err.rank, 4);
  });

  it('a recv that nothing matches times out, naming the op and the peer', async () => {
    await rejects(
      2,
      () => runRanks(2, prog('neverSent'), () => null, { timeoutMs: 150 }),
      /^rank 0: sendRecv timed out after 150 ms: sendRecv: recv from rank 1 not yet arrived$/,
    );
  });

  it("the CLI reports a timeout as one line and exit code 1 (a run-time failure), a rank's bug with its stack", async () => {
    const timeout = await rejects(2, () => runRanks(2, prog('neverSent'), () => null, { timeoutMs: 150 }), /timed out/);
    assert.equal(timeout.rankErrorName, 'RunFailure');
    assert.deepEqual(failureLine(timeout), {
      code: 1,
      line: 'weft: rank 0: sendRecv timed out after 150 ms: sendRecv: recv from rank 1 not yet arrived',
    });
    const bug = await rejects(
      6,
      () => runRanks(6, prog('throwing'), () => ({ rank: 4, delayMs: 0 }), { timeoutMs: 60_000 }),
      /deliberate/,
    );
    assert.equal(failureLine(bug), undefined);
  });

  it('a send nobody receives times out too', async () => {
    await rejects(
      2,
      () => runRanks(2, prog('neverReceived'), () => null, { timeoutMs: 150 }),
      /^rank 1: sendRecv timed out after 150 ms: sendRecv: send to rank 0 not yet received$/,
    );
  });

  it('mismatched sizes fail with both sides named', async () => {
    await rejects(
      2,
      () => runRanks(2, prog('mismatch'), () => null),
      /^rank 1: sendRecv: rank 0 sent 4 Float64Array elements .* but rank 1 expected 5 Float64Array elements$/,
    );
  });

  it('a split some rank never joins times out', async () => {
    await rejects(
      3,
      () => runRanks(3, prog('splitMissing'), () => null, { timeoutMs: 150 }),
      /^rank [02]: split timed out after 150 ms: rank \d has not called split$/,
    );
  });

  it('a worker that exits early is reported', async () => {
    await rejects(2, () => runRanks(2, prog('exits'), () => null), /^rank 1: exited with code 3 before finishing$/);
  });

  it('arguments that cannot reach a worker stop the ranks already started', async () => {
    const workers = trackWorkers();
    try {
      // ranks 0 and 1 start and wait for rank 2, whose arguments fail to clone
      await assert.rejects(
        runRanks(
          3,
          prog('exchange'),
          (r) => (r === 2 ? { dtype: 'f64', shared: true, f: () => 1 } : { dtype: 'f64', shared: true }),
          { timeoutMs: 600_000 },
        ),
        /could not be cloned/,
      );
      // three Workers created, the third failing in its constructor: the other two must exit
      assert.equal(workers.created, 3);
      await workers.exited(2);
    } finally {
      workers.stop();
    }
  });

  it('a missing program is an error of every rank, not a hang', async () => {
    await rejects(
      2,
      () => runRanks(2, prog('noSuchProgram'), () => null),
      /^rank \d: .*exports no function 'noSuchProgram'$/,
    );
  });
});
