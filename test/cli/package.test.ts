// The package as npm packs it: the built entry with its types, the command, the peers the product
// runs, the licence; `weft --version`; and a README that points only at files in the repository.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { weft } from '../helpers/cli.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  types: string;
  exports: Record<string, { types: string; default: string } | string>;
  bin: Record<string, string>;
  scripts: Record<string, string>;
  license: string;
};

test('npm pack ships dist with types, the command, the peers and the licence; it builds first', () => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8' });
  const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
  for (const f of [
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
    'dist/src/api/attention.d.ts',
    'LICENSE',
    'README.md',
    'package.json',
    'bench/peers/sdpa_peer.py',
    'bench/peers/torch_cp.py',
    'bench/peers/comm_torch.py',
  ])
    assert.ok(files.has(f), `the package lacks ${f}`);
  assert.ok(![...files].some((f) => f.startsWith('dist/test')), 'no tests in the package');
  assert.match(pkg.scripts.prepare ?? '', /build/, 'prepare builds dist: on npm ci in a clone and before npm pack');
  const dot = pkg.exports['.'] as { types: string; default: string };
  for (const f of [pkg.types, dot.types, dot.default, pkg.bin.weft!]) assert.ok(existsSync(path.join(ROOT, f)), f);
  assert.match(
    readFileSync(path.join(ROOT, 'LICENSE'), 'utf8'),
    /MIT License[\s\S]*Copyright \(c\) 2026 weft contributors/,
  );
  assert.equal(pkg.license, 'MIT');
});

test('weft --version prints the package version', () => {
  const r = weft(['--version']);
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), pkg.version);
});

test('the README shows npx weft and refers only to files in the repository', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  assert.match(readme, /npx weft /);
  assert.doesNotMatch(readme, /\.\.\/|shared\/|DESIGN\.md/);
  for (const [, ref] of readme.matchAll(/`((?:docs|src|test|test-gpu|bench|tools|\.ci)\/[^`\s…*{]+)`/g)) {
    assert.ok(
      existsSync(path.join(ROOT, ref!.replace(/[.,;:]$/, ''))),
      `README names ${ref}, which is not in the repository`,
    );
  }
});
