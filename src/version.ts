// Where weft itself lives and which version it is: the package root (the folder with weft's
// package.json, found from this module's own place, so an installed copy and a checkout both
// answer for themselves, never for the working directory).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: src/ and dist/src/ both sit below it. */
export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'weft') return dir;
    } catch {
      /* not here */
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('weft: cannot find its own package.json');
    dir = up;
  }
}

let version: string | undefined;

/** weft's version, from its package.json. */
export function weftVersion(): string {
  version ??= (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string })
    .version;
  return version;
}
