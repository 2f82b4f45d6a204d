// The README's library example, run as written: extracted from README.md, run by node in a
// temporary project whose node_modules/weft is this package (so `import … from 'weft'` goes
// through package.json's exports to the built entry and its types).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export function readmeExample(): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Library'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'README has a ```js block under ## Library');
  return m[1]!;
}

test('the README library example runs as written and prints what it says', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-readme-'));
  try {
    mkdirSync(path.join(dir, 'node_modules'));
    symlinkSync(ROOT, path.join(dir, 'node_modules', 'weft'), 'dir');
    writeFileSync(path.join(dir, 'example.mjs'), readmeExample());
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    const gap = /^out 256,4,32, lse 4,256, ring vs one rank: (\S+)$/.exec(lines[0]!);
    assert.ok(gap && Number(gap[1]) < 1e-12, lines[0]);
    assert.match(lines[1]!, /^document-causal: lse of the first query -?\d+\.\d{3}$/);
    assert.match(lines[2]!, /^refused: v \[256,2,32\] must have the shape of k \[256,4,32\]$/);
    assert.match(lines[3]!, /^best of \d+ layouts: \S+, ulysses \d+ × ring \d+$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
