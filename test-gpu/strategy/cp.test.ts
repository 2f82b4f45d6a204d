// Every strategy on GPUs (under weft launch), forward and backward, for every mask family: the
// gathered result must match one GPU's kernel over the whole sequence and stay as close to the
// f64 reference as one GPU does (checkPasses in src/run/gpu.ts decides). The matrix runs in one
// NCCL world per GPU count (matrix-child.ts); a few cases go through the `weft run` CLI end to end.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { gpuCount, runJob } from '../job.js';

const WEFT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const MATRIX = fileURLToPath(new URL('./matrix-child.js', import.meta.url));

const gpus = gpuCount();
const needs = (n: number): string | false => (gpus < n ? `needs ${n} GPUs, found ${gpus}` : false);

/** `command` per rank on `world` GPUs (a stuck collective becomes an error before `limitMs`); rank 0's stdout lines without their prefix. */
async function job(command: string[], world: number, limitMs: number): Promise<string[]> {
  const r = await runJob({ world, command, limitMs, env: { ...process.env, WEFT_NCCL_TIMEOUT: '30' } });
  assert.equal(
    r.code,
    0,
    `exit ${r.code}${r.message ? `: ${r.message}` : ''}: ${r.err.slice(-2000)}${r.out.slice(-1000)}`,
  );
  return r.out
    .split('\n')
    .filter((l) => l.startsWith('[rank 0] '))
    .map((l) => l.slice('[rank 0] '.length));
}

for (const world of [2, 4]) {
  test(
    `every strategy, shard and mask family on ${world} GPUs matches one GPU and the f64 reference`,
    { skip: needs(world), timeout: 600_000 },
    async () => {
      const lines = await job([MATRIX], world, 540_000);
      const cases = lines
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { name: string; ok: boolean; check: unknown });
      console.log(`# ${cases.length} cases on ${world} GPUs`);
      assert.ok(cases.length >= 9 * 9, `only ${cases.length} cases ran`);
      assert.deepEqual(
        cases.filter((c) => !c.ok).map((c) => `${c.name}: ${JSON.stringify(c.check)}`),
        [],
      );
    },
  );
}

describe('weft run --backend cuda --check, end to end on 2 GPUs', { skip: needs(2) }, () => {
  const base = ['--world', '2', '--check', '--json', '--iters', '1', '--warmup', '0', '--seq', '1000'];
  const cases: [string, string[]][] = [
    [
      'ring D=128 GQA causal',
      ['--strategy', 'ring', '--mask', 'causal', '--dim', '128', '--heads', '8', '--kv-heads', '2'],
    ],
    [
      'usp 2x1 document-causal',
      [
        '--strategy',
        'usp',
        '--ulysses',
        '2',
        '--ring',
        '1',
        '--mask',
        'document-causal',
        '--docs',
        '5',
        '--dim',
        '64',
        '--heads',
        '4',
        '--kv-heads',
        '2',
      ],
    ],
  ];
  for (const [name, args] of cases)
    test(name, { timeout: 120_000 }, async () => {
      const line = (await job([WEFT, 'run', '--backend', 'cuda', ...base, ...args], 2, 90_000)).find((l) =>
        l.startsWith('{'),
      );
      assert.ok(line, 'no JSON from weft run');
      const s = JSON.parse(line) as { checkOk: boolean; check: { cpVsRef?: unknown } };
      assert.ok(s.checkOk, `${name}: ${JSON.stringify(s.check)}`);
      assert.ok(s.check.cpVsRef, 'the f64 reference ran');
    });
});

test(
  'a layer that does not fit is refused at once: exit 2, one line, before any kernel runs',
  { skip: needs(2), timeout: 120_000 },
  async () => {
    const r = await runJob({
      world: 2,
      limitMs: 90_000,
      command: [
        WEFT,
        'run',
        '--backend',
        'cuda',
        '--world',
        '2',
        '--strategy',
        'ring',
        '--seq',
        String(8 << 20),
        '--heads',
        '32',
        '--kv-heads',
        '8',
        '--dim',
        '128',
        '--iters',
        '1',
        '--warmup',
        '0',
      ],
    });
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /weft: ring on 2 GPUs needs about [\d.]+ GiB per GPU for S=8388608/);
    assert.doesNotMatch(r.err, /\n\s+at /, 'no stack trace');
    assert.doesNotMatch(r.err, /check done|iteration \d/, 'refused before any iteration');
  },
);
