import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { type Layout, resolveLayout, runDistributed, validateLayout } from '../../src/run/index.js';
import { hostZeros } from '../../src/tensor/host.js';
import { trackWorkers } from '../helpers/workers.js';

const dims = { S: 64, H: 8, Hkv: 2 };
const BAD: [Layout, RegExp][] = [
  [
    { strategy: 'usp', world: 8, ulysses: 2, ring: 3 },
    /^Ulysses degree 2 × ring degree 3 = 6 is not the world size 8$/,
  ],
  [{ strategy: 'usp', world: 8, ulysses: 3 }, /^Ulysses degree 3 does not divide the world size 8$/],
  [{ strategy: 'usp', world: 8 }, /^usp needs a Ulysses degree or a ring degree/],
  [{ strategy: 'ulysses', world: 16 }, /^Ulysses degree 16 is above the head count 8$/],
  [{ strategy: 'ulysses', world: 3 }, /^Ulysses degree 3 does not divide the head count 8$/],
  [{ strategy: 'usp', world: 6, ulysses: 6, ring: 1 }, /^Ulysses degree 6 does not divide the head count 8$/],
  [{ strategy: 'ulysses', world: 4, ulysses: 2 }, /^Ulysses degree 2 is not the world size 4/],
  [{ strategy: 'ring', world: 65 }, /^world size 65 is larger than the sequence length 64/],
  [{ strategy: 'ring', world: 0 }, /^the world size must be a positive integer, not 0$/],
  [
    { strategy: 'spiral' as Layout['strategy'], world: 2 },
    /^unknown strategy 'spiral' \(known: ring, allgather, ulysses, usp, double-ring, tokenring\)$/,
  ],
  [{ strategy: 'ring', world: 2, shard: 'diagonal' as Layout['shard'] }, /^unknown shard 'diagonal'/],
  [
    { strategy: 'usp', world: 4, ulysses: 2, placement: 'sideways' as Layout['placement'] },
    /^unknown placement 'sideways'/,
  ],
  [{ strategy: 'ring', world: 4, placement: 'head-first' }, /^placement applies to usp only, not ring$/],
  [{ strategy: 'double-ring', world: 8, inner: 3 }, /^inner ring size 3 does not divide the world size 8$/],
  [{ strategy: 'double-ring', world: 8 }, /^double-ring needs an inner ring size/],
  [{ strategy: 'ring', world: 4, inner: 2 }, /^an inner ring size applies to double-ring only, not ring$/],
  [
    { strategy: 'allgather', world: 4, ulysses: 2 },
    /^a Ulysses degree applies to ulysses and usp only, not allgather$/,
  ],
];

describe('layouts', () => {
  for (const [layout, msg] of BAD) {
    it(`rejects ${JSON.stringify(layout)}`, () => {
      assert.throws(
        () => validateLayout(layout, dims),
        (e: unknown) => e instanceof UserError && msg.test(e.message),
      );
    });
  }

  it('rejects KV heads that do not divide the heads', () => {
    assert.throws(
      () => validateLayout({ strategy: 'ring', world: 2 }, { S: 8, H: 6, Hkv: 4 }),
      (e: unknown) => e instanceof UserError && e.message === '6 heads are not a multiple of 4 KV heads',
    );
  });

  it('fills in defaults: degrees from the world, zigzag (doc-zigzag for documents), head-first', () => {
    assert.deepEqual(resolveLayout({ strategy: 'usp', world: 8, ring: 2 }, dims), {
      strategy: 'usp',
      world: 8,
      shard: 'zigzag',
      ulysses: 4,
      ring: 2,
      inner: 8,
      placement: 'head-first',
    });
    assert.equal(
      resolveLayout({ strategy: 'ring', world: 2 }, dims, {
        kind: 'document',
        cuSeqlens: [0, 64],
        inner: { kind: 'causal' },
      }).shard,
      'doc-zigzag',
    );
  });

  it('runDistributed refuses before starting any rank', async () => {
    const q = hostZeros('f64', [4, 2, 2]),
      k = hostZeros('f64', [4, 1, 2]);
    const workers = trackWorkers();
    await assert.rejects(
      runDistributed(
        { q, k, v: k, mask: { kind: 'causal' }, scale: 1, dtype: 'f64' },
        { strategy: 'ulysses', world: 4 },
      ),
      (e: unknown) =>
        e instanceof UserError && /^world size 4 is larger|Ulysses degree 4 is above the head count 2$/.test(e.message),
    );
    await assert.rejects(
      runDistributed(
        { q, k: hostZeros('f64', [3, 1, 2]), v: k, mask: { kind: 'causal' }, scale: 1, dtype: 'f64' },
        { strategy: 'ring', world: 2 },
      ),
      (e: unknown) => e instanceof UserError && e.message === 'k is [3,1,2], expected [4,1,2]',
    );
    workers.stop();
    assert.equal(workers.created, 0, 'no worker thread started');
  });
});

describe('weft run', () => {
  const main = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
  const weft = (...args: string[]) =>
    spawnSync(process.execPath, [main, 'run', ...args], { encoding: 'utf8', timeout: 60_000 });
  const base = ['--seq', '24', '--heads', '4', '--kv-heads', '2', '--dim', '4'];

  it('bad configurations exit 2 with one line naming the problem', () => {
    for (const [args, msg] of [
      [
        ['--strategy', 'usp', '--world', '4', '--ulysses', '2', '--ring', '3'],
        'weft: Ulysses degree 2 × ring degree 3 = 6 is not the world size 4\n',
      ],
      [['--strategy', 'ulysses', '--world', '8'], 'weft: Ulysses degree 8 is above the head count 4\n'],
      [
        ['--strategy', 'ring', '--world', '30'],
        'weft: world size 30 is larger than the sequence length 24 (every rank needs a token)\n',
      ],
      [
        ['--strategy', 'ring', '--world', '2', '--shard', 'diagonal'],
        "weft: unknown shard 'diagonal' (known: contiguous, zigzag, striped, doc-zigzag)\n",
      ],
      [
        ['--strategy', 'ring', '--world', '2', '--mask', 'document'],
        "weft: mask 'document' needs document boundaries: --docs N or --cu-seqlens 0,…,24\n",
      ],
      // checked up front on the CPU too, not only where the GPU path reads them
      [['--strategy', 'ring', '--world', '2', '--iters', '0'], 'weft: --iters: must be at least 1, not 0\n'],
      [['--strategy', 'ring', '--world', '2', '--scale', '0x10'], "weft: --scale: '0x10' is not a number\n"],
      [
        ['--strategy', 'ring', '--world', '2', '--timeline', '/no/such/folder/t.json'],
        'weft: cannot write /no/such/folder/t.json: folder /no/such/folder does not exist\n',
      ],
      [
        ['--strategy', 'ring', '--world', '2', '--timeline', '/dev/null'],
        'weft: cannot write /dev/null: not a regular file (a device, FIFO or socket); weft replaces only regular files\n',
      ],
    ] as const) {
      const r = weft(...base, ...args);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stderr, msg);
    }
  });

  it('--timeline on CPU ranks is refused, not ignored', () => {
    const r = weft(
      ...base,
      '--strategy',
      'ring',
      '--world',
      '2',
      '--backend',
      'cpu',
      '--timeline',
      path.join(tmpdir(), `weft-cpu-timeline-${process.pid}.json`),
    );
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^weft: --timeline records GPU runs .*\n$/);
    assert.equal(r.stdout, '');
  });

  it('runs, checks against the reference and reports JSON', () => {
    const r = weft(
      ...base,
      '--strategy',
      'usp',
      '--world',
      '4',
      '--ulysses',
      '2',
      '--mask',
      'document-causal',
      '--docs',
      '3',
      '--dtype',
      'f64',
      '--check',
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      layout: { shard: string };
      check: { ok: boolean; errors: Record<string, number> };
      stats: { perRank: unknown[]; balance: number };
    };
    assert.equal(j.layout.shard, 'doc-zigzag');
    assert.equal(j.check.ok, true);
    assert.deepEqual(Object.keys(j.check.errors), ['out', 'lse', 'dq', 'dk', 'dv']);
    assert.ok(Object.values(j.check.errors).every((e) => e < 1e-10));
    assert.equal(j.stats.perRank.length, 4);
    assert.ok(j.stats.balance >= 1);
    const t = weft(...base, '--strategy', 'ring', '--world', '3', '--check');
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /^ring on 3 ranks, zigzag shards, mask causal, S=24 H=4 Hkv=2 D=4 f32\n/);
    assert.match(t.stdout, /work balance \(max\/mean unmasked area\): \d\.\d{3}/);
    assert.match(t.stdout, /— ok\n$/);
  });
});
