// `weft run --mode prefill|decode` and `weft plan` for inference configs, run as a user would.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));

const dims = ['--heads', '4', '--kv-heads', '2', '--dim', '8'];

describe('weft run --mode', () => {
  it('decode: k new tokens per request onto a cached context, checked, as JSON', () => {
    const r = weft([
      'run',
      '--mode',
      'decode',
      '--context',
      '150',
      '--new-tokens',
      '3',
      '--batch',
      '2',
      '--world',
      '5',
      ...dims,
      '--mask',
      'sliding:40,0',
      '--dtype',
      'f64',
      '--check',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.mode, 'decode');
    assert.equal(j.exchange, 'allgather');
    assert.ok(j.check.ok && j.check.errors.out <= 1e-10 && j.check.errors.lse <= 1e-10);
    assert.equal(j.step.perRank.length, 5);
    assert.ok(j.step.perRank.every((p: { messages: number }) => p.messages > 0));
  });

  it("prefill: --pass auto prints the planner's choice and its two prices; --pass q runs pass-Q", () => {
    const auto = weft([
      'run',
      '--mode',
      'prefill',
      '--context',
      '120',
      '--new-tokens',
      '24',
      '--world',
      '3',
      ...dims,
      '--check',
    ]);
    assert.equal(auto.code, 0, auto.stderr);
    assert.match(
      auto.stdout,
      /pass: pass-(KV|Q) \(auto: the planner, pricing one node of 3 H200s: pass-KV [\d.]+ ms, pass-Q [\d.]+ ms per layer/,
    );
    assert.match(auto.stdout, /— ok/);
    const q = weft([
      'run',
      '--mode',
      'prefill',
      '--context',
      '120',
      '--new-tokens',
      '24',
      '--world',
      '3',
      ...dims,
      '--pass',
      'q',
      '--mask',
      'document-causal',
      '--cu-seqlens',
      '0,50,144',
      '--dtype',
      'f64',
      '--check',
      '--json',
    ]);
    assert.equal(q.code, 0, q.stderr);
    const j = JSON.parse(q.stdout);
    assert.equal(j.pass, 'q');
    assert.ok(j.check.ok);
  });

  it('bad options: one line, exit 2, nothing on stdout', () => {
    const cases: [string[], RegExp][] = [
      [['--mode', 'train', '--world', '2', ...dims], /--mode: unknown value 'train' \(choose one of prefill, decode\)/],
      [['--mode', 'decode', '--world', '2', ...dims], /--mode decode needs --context/],
      [
        ['--mode', 'decode', '--context', '8', '--world', '2', ...dims, '--pass', 'q'],
        /--pass applies to --mode prefill/,
      ],
      [
        ['--mode', 'prefill', '--context', '8', '--world', '2', ...dims, '--strategy', 'ring'],
        /--strategy does not apply to --mode prefill/,
      ],
      [
        ['--mode', 'decode', '--context', '8', '--world', '2', ...dims, '--strategy', 'tokenring'],
        /--strategy allgather or none, not 'tokenring'/,
      ],
      [['--mode', 'prefill', '--context', '8', '--world', '2', ...dims, '--pass', 'x'], /--pass: unknown value 'x'/],
      [
        ['--mode', 'decode', '--context', '8', '--world', '2', ...dims, '--mask', 'full'],
        /a KV cache needs a mask where no token sees a later one/,
      ],
      [
        ['--mode', 'decode', '--context', '8', '--world', '2', ...dims, '--seq', '9'],
        /--seq does not apply to --mode decode/,
      ],
      [['--seq', '9', ...dims], /--strategy and --world are required/],
      [
        ['--mode', 'decode', '--context', '8', '--world', '1', ...dims, '--backend', 'cuda'],
        /--backend cuda runs one process per GPU: weft launch -n 1 -- run --mode decode --backend cuda/,
      ],
    ];
    for (const [args, msg] of cases) {
      const r = weft(['run', ...args]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.equal(r.stdout, '');
    }
  });
});

describe('weft launch -n N -- run --mode (CPU ranks as processes, over TCP)', () => {
  const cases: [number, string[]][] = [
    [2, ['--mode', 'decode', '--context', '90', '--new-tokens', '3', '--batch', '2', '--mask', 'sliding:30,0']],
    [3, ['--mode', 'prefill', '--context', '100', '--new-tokens', '20', '--batch', '2', '--pass', 'kv']],
    [
      4,
      [
        '--mode',
        'prefill',
        '--context',
        '70',
        '--new-tokens',
        '30',
        '--pass',
        'q',
        '--mask',
        'document-causal',
        '--cu-seqlens',
        '0,45,100',
      ],
    ],
  ];
  for (const [n, args] of cases)
    it(`${args[1]}${args.includes('--pass') ? ` pass-${args[args.indexOf('--pass') + 1]}` : ''} on ${n} processes: rank 0 alone reports, the same result as worker-thread ranks`, () => {
      const common = ['run', ...args, '--world', String(n), ...dims, '--dtype', 'f64', '--check', '--json'];
      const launched = weft(['launch', '-n', String(n), '--', ...common, '--backend', 'cpu']);
      assert.equal(launched.code, 0, launched.stderr);
      const lines = launched.stdout.trim().split('\n');
      assert.equal(lines.length, 1, 'rank 0 alone reports');
      assert.match(lines[0]!, /^\[rank 0\] \{/);
      const a = JSON.parse(lines[0]!.slice('[rank 0] '.length)),
        b = JSON.parse(weft(common).stdout);
      assert.ok(a.check.ok && a.check.errors.out <= 1e-10, JSON.stringify(a.check));
      // the same schedule in the same order: bit-identical rows, so identical errors and counts
      assert.deepEqual(a.check, b.check);
      assert.deepEqual(
        a.step.perRank.map((r: { area: number; bytesSent: number }) => [r.area, r.bytesSent]),
        b.step.perRank.map((r: { area: number; bytesSent: number }) => [r.area, r.bytesSent]),
      );
    });

  it('a --world other than the launched size: one line, exit 2', () => {
    const r = weft(['launch', '-n', '2', '--', 'run', '--mode', 'decode', '--context', '8', '--world', '3', ...dims]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--world 3 differs from the 2 processes/);
  });
});

describe('weft plan for inference', () => {
  it('decode: predicted.stepMs per layout, best first; prefill: the pass of each layout', () => {
    const dec = path.join(dir, 'decode.json'),
      pre = path.join(dir, 'prefill.json');
    writeFileSync(
      dec,
      JSON.stringify({
        model: 'llama3-8b',
        mode: 'decode',
        seqLen: 131072,
        newTokens: 1,
        batchSeqs: 8,
        cluster: { nodes: 1, gpusPerNode: 8, gpu: 'h200' },
      }),
    );
    writeFileSync(
      pre,
      JSON.stringify({
        model: 'llama3-70b',
        mode: 'prefill',
        seqLen: 126720,
        newTokens: 1280,
        cluster: { nodes: 4, gpusPerNode: 8, gpu: 'h100', interNode: { GBps: 50, latencyUs: 10 } },
      }),
    );
    const j = weft(['plan', '--config', dec, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const plans = JSON.parse(j.stdout).plans as { predicted: { stepMs: number }; feasible: boolean }[];
    assert.ok(
      plans.length > 1 &&
        plans.every((p, i) => i === 0 || !p.feasible || p.predicted.stepMs >= plans[i - 1]!.predicted.stepMs),
    );
    const t = weft(['plan', '--config', pre]);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /time to first token/);
    assert.match(t.stdout, /tp \d+ × cp \d+, pass-(KV|Q)/);
    assert.match(t.stdout, /Best: tp \d+ × cp \d+ with pass-(KV|Q)/);
  });
});
