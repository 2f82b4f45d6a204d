// Temporary folders for tests, removed when the test (or, at module level, the file) that made
// them is done: `npm test` leaves nothing in the system temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

/** A fresh folder `<tmp>/<prefix>XXXXXX`, removed with everything in it after the current test or file. */
export function tempDir(prefix = 'weft-test-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
