// Run the built `weft` command as a user would, and make input files for it.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const WEFT = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function weft(args: string[], timeoutMs = 120_000): CliResult {
  const r = spawnSync(process.execPath, [WEFT, ...args], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
