// Records credit weft's own code: the revision of weft's checkout when weft runs from one (its
// package root is the top level of a git work tree), never that of a repository it sits inside.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' }).trim();

/** environment() of a copy of weft at `root`, run from `cwd`, as JSON. */
function envOf(
  root: string,
  cwd: string,
  extra: Record<string, string> = {},
): { weft: string; gitRevision: string; gitDirty?: boolean } {
  const env = { ...process.env, ...extra };
  if (!('WEFT_GIT_REVISION' in extra)) delete env.WEFT_GIT_REVISION;
  delete env.WEFT_GIT_DIRTY;
  const mod = path.join(root, 'dist/src/bench/record.js');
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(mod)}); const e = m.environment(); console.log(JSON.stringify({ weft: e.weft, gitRevision: e.gitRevision, gitDirty: e.gitDirty }));`,
    ],
    { cwd, env, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as { weft: string; gitRevision: string; gitDirty?: boolean };
}

test('weft inside another repository says unknown; its own checkout gives its HEAD and dirty flag; WEFT_GIT_REVISION overrides', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-prov-'));
  try {
    const version = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    // an unrelated repository with weft unpacked inside it (as node_modules/weft would be)
    const outer = path.join(dir, 'project');
    mkdirSync(outer);
    git(outer, 'init', '-q');
    writeFileSync(path.join(outer, 'app.txt'), 'app\n');
    git(outer, 'add', '.');
    git(outer, 'commit', '-qm', 'app');
    const copy = path.join(outer, 'vendor', 'weft');
    mkdirSync(copy, { recursive: true });
    cpSync(path.join(ROOT, 'package.json'), path.join(copy, 'package.json'));
    cpSync(path.join(ROOT, 'dist', 'src'), path.join(copy, 'dist', 'src'), { recursive: true });
    assert.deepEqual(envOf(copy, outer), { weft: version, gitRevision: 'unknown' });
    assert.deepEqual(envOf(copy, outer, { WEFT_GIT_REVISION: 'abc123', WEFT_GIT_DIRTY: '1' }).gitRevision, 'abc123');

    // the copy made a checkout of its own: its revision, clean then dirty, whatever the working directory
    git(copy, 'init', '-q');
    git(copy, 'add', '.');
    git(copy, 'commit', '-qm', 'weft');
    const head = git(copy, 'rev-parse', 'HEAD');
    assert.deepEqual(envOf(copy, os.tmpdir()), { weft: version, gitRevision: head, gitDirty: false });
    writeFileSync(path.join(copy, 'package.json'), readFileSync(path.join(copy, 'package.json'), 'utf8') + '\n');
    assert.deepEqual(envOf(copy, outer), { weft: version, gitRevision: head, gitDirty: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
