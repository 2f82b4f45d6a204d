import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { resolveOutput, resolveOutputDir, writeOutput } from '../../src/io/output.js';
import { UserError } from '../../src/errors.js';
import { tempDir } from '../helpers/temp.js';

const dir = tempDir();
after(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string): string => path.join(dir, name);
const tmpLeft = (d = dir): string[] => readdirSync(d).filter((f) => f.endsWith('.tmp'));

test('a new file and a replaced one are written whole, the old permissions kept, no temporary file left', () => {
  writeOutput(at('new.txt'), 'one');
  assert.equal(readFileSync(at('new.txt'), 'utf8'), 'one');
  writeFileSync(at('old.txt'), 'old');
  chmodSync(at('old.txt'), 0o640);
  writeOutput(resolveOutput(at('old.txt')), new Uint8Array([104, 105]));
  assert.equal(readFileSync(at('old.txt'), 'utf8'), 'hi');
  assert.equal(statSync(at('old.txt')).mode & 0o777, 0o640);
  assert.deepEqual(tmpLeft(), []);
});

test('a symbolic link is written through: the target changes, the link stays a link', () => {
  mkdirSync(at('real'));
  writeFileSync(at('real/target.txt'), 'before');
  symlinkSync(path.join('real', 'target.txt'), at('link.txt'));
  symlinkSync('link.txt', at('link2.txt')); // a chain of links
  writeOutput(at('link2.txt'), 'after');
  assert.equal(readFileSync(at('real/target.txt'), 'utf8'), 'after');
  assert.ok(lstatSync(at('link.txt')).isSymbolicLink() && lstatSync(at('link2.txt')).isSymbolicLink());
  assert.equal(readlinkSync(at('link.txt')), path.join('real', 'target.txt'));
  assert.deepEqual([...tmpLeft(), ...tmpLeft(at('real'))], []);
});

describe('refused before any work, with one line naming the path and the reason; nothing is touched', () => {
  writeFileSync(at('input.bin'), 'input');
  writeFileSync(at('readonly.txt'), 'keep');
  chmodSync(at('readonly.txt'), 0o444);
  symlinkSync('input.bin', at('to-input'));
  linkSync(at('input.bin'), at('hard-input'));
  symlinkSync('nothing-here', at('dangling'));
  execFileSync('mkfifo', [at('fifo')]);
  writeFileSync(at('plainfile'), '');
  const cases: [string, string, RegExp][] = [
    ['a missing folder', at('no/such/out.bin'), /folder .*no\/such does not exist/],
    ['a path through a file', at('plainfile/out.bin'), /not a folder/],
    ['a folder', dir, /it is a folder/],
    ['a device', '/dev/null', /not a regular file/],
    ['a FIFO', at('fifo'), /not a regular file/],
    ['a read-only file (even for root)', at('readonly.txt'), /read-only/],
    ['the input itself', at('input.bin'), /it is the input/],
    ['a symbolic link to the input', at('to-input'), /it is the input/],
    ['a hard link to the input', at('hard-input'), /it is the input/],
    ['a dangling symbolic link', at('dangling'), /dangling/],
    ['an empty path', '', /empty path/],
  ];
  for (const [name, p, re] of cases)
    test(name, () => {
      const before = readdirSync(dir).sort();
      assert.throws(
        () => resolveOutput(p, [at('input.bin')]),
        (e: unknown) =>
          e instanceof UserError &&
          re.test(e.message) &&
          !e.message.includes('\n') &&
          e.message.startsWith(`cannot write ${p}`),
      );
      assert.throws(() => writeOutput({ given: p, file: p, inputs: [at('input.bin')] }, 'x'), re);
      assert.deepEqual(readdirSync(dir).sort(), before);
      assert.equal(readFileSync(at('input.bin'), 'utf8'), 'input');
      assert.equal(readFileSync(at('readonly.txt'), 'utf8'), 'keep');
    });
});

test('an output folder: existing and writable, or creatable below an existing folder', () => {
  assert.equal(resolveOutputDir(at('records/a/b')), at('records/a/b'));
  assert.equal(resolveOutputDir(dir), dir);
  assert.throws(() => resolveOutputDir(at('plainfile/sub')), /not a folder/);
});
