import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { streamPeer } from '../../src/bench/peer.js';
import { tempDir } from '../helpers/temp.js';

// A stand-in peer: node plays the Python interpreter, so the line protocol is tested without torch.
const dir = tempDir();
const script = path.join(dir, 'peer.mjs');
writeFileSync(
  script,
  `const { configs, fail } = JSON.parse(process.argv[2]);
   console.log(JSON.stringify({ torch: 'stand-in' }));
   for (const c of configs) console.log(JSON.stringify({ name: 'p', S: c, samples: [c] }));
   if (fail) { console.error('peer broke'); process.exit(3); }`,
);

test('a one-GPU peer: the info line, then each measurement as it arrives', async () => {
  const seen: number[] = [];
  const { info, lines } = await streamPeer<{ name: string; S: number }>(
    process.execPath,
    script,
    JSON.stringify({ configs: [1, 2] }),
    (l) => seen.push(l.S),
  );
  assert.deepEqual(info, { torch: 'stand-in' });
  assert.deepEqual(
    lines.map((l) => l.S),
    [1, 2],
  );
  assert.deepEqual(seen, [1, 2]);
});

test('a peer that fails says so with its code and the end of its stderr', async () => {
  await assert.rejects(
    streamPeer(process.execPath, script, JSON.stringify({ configs: [1], fail: true }), () => {}),
    /failed with code 3: peer broke/,
  );
});
