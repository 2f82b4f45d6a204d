// Configs: presets resolve, explicit figures are taken, and every bad field is named (exit 2 on the CLI).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../src/errors.js';
import { parseConfig } from '../../src/plan/config.js';
import { gpuPresetByName } from '../../src/plan/hardware.js';
import { tempDir } from '../helpers/temp.js';

const good = {
  model: 'llama3-8b',
  mode: 'training',
  seqLen: 65536,
  batchSeqs: 1,
  mask: 'causal',
  cluster: {
    nodes: 2,
    gpusPerNode: 8,
    gpu: 'h200',
    intraNode: { GBps: 450, latencyUs: 5 },
    interNode: { GBps: 25, latencyUs: 10 },
  },
  candidates: [{ tp: 1, ulysses: 4, ring: 4 }],
};

test('the config of the issue parses, presets resolve', () => {
  const c = parseConfig(good);
  assert.equal(c.model.kvHeads, 8);
  assert.equal(c.cluster.world, 16);
  assert.equal(c.cluster.gpu.bf16Tflops, 989.4);
  assert.equal(c.cluster.interNode.GBps, 25);
  assert.equal(c.mask.kind, 'causal');
  assert.deepEqual(c.candidates, [{ tp: 1, ulysses: 4, ring: 4 }]);
  const custom = parseConfig({
    ...good,
    model: { layers: 32, hidden: 4096, heads: 32, kvHeads: 8, headDim: 128, ffnHidden: 14336, vocab: 128256 },
    cluster: { ...good.cluster, gpu: { bf16Tflops: 312, memGiB: 80, hbmTBs: 2.0 } },
  });
  assert.equal(custom.cluster.gpu.bf16Tflops, 312);
  assert.equal(custom.cluster.intraNode.GBps, 450);
  const docs = parseConfig({ ...good, mask: 'document-causal', documentLength: 4096 });
  assert.equal(docs.cuSeqlens!.length, 17);
});

const bad: [string, (c: Record<string, unknown>) => void, RegExp][] = [
  [
    'unknown model preset',
    (c) => {
      c.model = 'llama9-1t';
    },
    /^model: unknown preset .*llama3-8b/,
  ],
  [
    'missing model field',
    (c) => {
      c.model = { layers: 32, hidden: 4096, heads: 32, headDim: 128, ffnHidden: 1, vocab: 1 };
    },
    /^model\.kvHeads: missing/,
  ],
  [
    'non-numeric seqLen',
    (c) => {
      c.seqLen = '64k';
    },
    /^seqLen: expected an integer > 0, got "64k"/,
  ],
  [
    'missing seqLen',
    (c) => {
      delete c.seqLen;
    },
    /^seqLen: missing/,
  ],
  [
    'unknown mode',
    (c) => {
      c.mode = 'inference';
    },
    /^mode: expected one of training/,
  ],
  [
    'unknown GPU',
    (c) => {
      (c.cluster as Record<string, unknown>).gpu = 'v100';
    },
    /^cluster\.gpu: unknown preset/,
  ],
  [
    'zero nodes',
    (c) => {
      (c.cluster as Record<string, unknown>).nodes = 0;
    },
    /^cluster\.nodes: expected an integer > 0, got 0/,
  ],
  [
    'non-numeric bandwidth',
    (c) => {
      (c.cluster as Record<string, unknown>).interNode = { GBps: 'fast' };
    },
    /^cluster\.interNode\.GBps: expected a number > 0, got "fast"/,
  ],
  [
    'missing inter-node link',
    (c) => {
      delete (c.cluster as Record<string, unknown>).interNode;
    },
    /^cluster\.interNode: missing/,
  ],
  [
    'missing cluster',
    (c) => {
      delete c.cluster;
    },
    /^cluster: missing/,
  ],
  [
    'custom GPU without memory',
    (c) => {
      (c.cluster as Record<string, unknown>).gpu = { bf16Tflops: 312, hbmTBs: 2 };
    },
    /^cluster\.gpu\.memGiB: missing/,
  ],
  [
    'typo in a field',
    (c) => {
      c.seqlen = 1;
    },
    /^seqlen: unknown field/,
  ],
  [
    'bad candidate',
    (c) => {
      c.candidates = [{ tp: 1, ulysses: 'four' }];
    },
    /^candidates\[0\]\.ulysses: expected an integer/,
  ],
  [
    'bad strategy',
    (c) => {
      c.candidates = [{ strategy: 'spiral' }];
    },
    /^candidates\[0\]\.strategy: expected one of/,
  ],
  [
    'bad mask',
    (c) => {
      c.mask = 'diagonal';
    },
    /^mask: unknown mask 'diagonal'/,
  ],
  [
    'document mask without documents',
    (c) => {
      c.mask = 'document-causal';
    },
    /^mask: .*cuSeqlens/,
  ],
  [
    'indivisible micro batch',
    (c) => {
      c.batchSeqs = 3;
      c.microBatchSeqs = 2;
    },
    /^microBatchSeqs: must divide batchSeqs/,
  ],
  [
    'kvHeads not dividing heads',
    (c) => {
      c.model = { layers: 1, hidden: 64, heads: 6, kvHeads: 4, headDim: 16, ffnHidden: 64, vocab: 10 };
    },
    /^model\.kvHeads: must divide heads/,
  ],
];

for (const [name, mutate, want] of bad) {
  test(`bad config: ${name} → a UserError naming the field`, () => {
    const c = structuredClone(good) as Record<string, unknown>;
    mutate(c);
    assert.throws(
      () => parseConfig(c),
      (e: unknown) => e instanceof UserError && want.test(e.message),
    );
  });
}

test('the CLI answers a bad config with one line naming the field and exit code 2', () => {
  const dir = tempDir('weft-plan-');
  const main = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');
  const cases: [string, unknown, RegExp][] = [
    ['preset.json', { ...good, model: 'gpt-5' }, /^weft: model: unknown preset/],
    [
      'cluster.json',
      { ...good, cluster: { ...good.cluster, gpusPerNode: -8 } },
      /^weft: cluster\.gpusPerNode: expected an integer > 0, got -8/,
    ],
  ];
  for (const [file, body, want] of cases) {
    writeFileSync(path.join(dir, file), JSON.stringify(body));
    for (const cmd of ['plan', 'simulate']) {
      const r = spawnSync(process.execPath, [main, cmd, '--config', path.join(dir, file)], { encoding: 'utf8' });
      assert.equal(r.status, 2, `${cmd} ${file}: ${r.stderr}`);
      assert.match(r.stderr.trim(), want);
      assert.equal(r.stderr.trim().split('\n').length, 1);
    }
  }
  writeFileSync(path.join(dir, 'broken.json'), '{"model": ');
  const r = spawnSync(process.execPath, [main, 'plan', '--config', path.join(dir, 'broken.json')], {
    encoding: 'utf8',
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /is not JSON/);
});

test('GPU names as drivers report them map to presets (bench records, weft bench ops)', () => {
  const name = (n: string) => gpuPresetByName(n)?.name;
  assert.equal(name('NVIDIA H200'), 'h200');
  assert.equal(name('NVIDIA H100 80GB HBM3'), 'h100');
  assert.equal(name('NVIDIA A100-SXM4-80GB'), 'a100-80g');
  assert.equal(name('NVIDIA L20'), 'l20');
  assert.equal(name('Tesla V100-SXM2-32GB'), undefined);
});
