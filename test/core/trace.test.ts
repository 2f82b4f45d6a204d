import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChromeEvent } from '../../src/io/trace.js';
import { runTrace } from '../../src/run/timeline.js';

test('weft run --timeline: Chrome trace events, one process per rank, one thread per stream, overlapping spans on lanes', () => {
  const t = runTrace(
    [
      {
        rank: 0,
        spans: [
          { stream: 'compute', label: 'fwd step 0', start: 0, end: 1.5 },
          { stream: 'comm', label: 'sendRecv', start: 0.25, end: 2 },
          { stream: 'comm', label: 'allToAll', start: 1, end: 1.75 }, // overlaps the sendRecv: a second lane
          { stream: 'compute', label: '', start: 1.5, end: 3 },
        ],
      },
      { rank: 1, spans: [{ stream: 'compute', label: 'fwd step 0', start: 0.5, end: 1 }] },
    ],
    { layout: 'ring' },
  );
  assert.equal(JSON.parse(JSON.stringify(t)).displayTimeUnit, 'ms');
  assert.deepEqual(t.otherData, { layout: 'ring' });
  const meta = (name: string): [number, number | undefined, string | number | undefined][] =>
    (t.traceEvents.filter((e) => e.ph === 'M' && e.name === name) as Extract<ChromeEvent, { ph: 'M' }>[]).map((e) => [
      e.pid,
      e.tid,
      e.args.name ?? e.args.sort_index,
    ]);
  assert.deepEqual(meta('process_name'), [
    [0, undefined, 'rank 0'],
    [1, undefined, 'rank 1'],
  ]);
  assert.deepEqual(meta('thread_name'), [
    [0, 1, 'compute'],
    [0, 101, 'comm'],
    [0, 102, 'comm 2'],
    [1, 1, 'compute'],
  ]);
  const x = (t.traceEvents.filter((e) => e.ph === 'X') as Extract<ChromeEvent, { ph: 'X' }>[]).map((e) => [
    e.pid,
    e.tid,
    e.name,
    e.cat,
    e.ts,
    e.dur,
  ]);
  assert.deepEqual(x, [
    [0, 1, 'fwd step 0', 'compute', 0, 1500],
    [0, 101, 'sendRecv', 'comm', 250, 1750],
    [0, 102, 'allToAll', 'comm', 1000, 750],
    [0, 1, 'compute', 'compute', 1500, 1500],
    [1, 1, 'fwd step 0', 'compute', 500, 500],
  ]);
});
