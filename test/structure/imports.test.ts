// The layers of src/ only import downward: nothing outside src/cli imports src/cli, and the
// import graph (static and dynamic relative imports) has no cycle.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

// Compiled to dist/test/structure/; the sources sit at the repository root.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SRC = path.join(ROOT, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative specifiers of `import … from`, `export … from`, `import '…'` and `import('…')`. */
export function relativeImports(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])(\.{1,2}\/[^'"]+)\1/gm;
  return [...code.matchAll(re)].map((m) => m[2]!);
}

/** The graph over src/, keyed by path relative to the repository root, .ts extension. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sources(SRC)) {
    const deps = relativeImports(readFileSync(file, 'utf8')).map((spec) => {
      const target = path.resolve(path.dirname(file), spec).replace(/\.js$/, '.ts');
      return path.relative(ROOT, target);
    });
    graph.set(
      path.relative(ROOT, file),
      [...new Set(deps)].filter((d) => d.startsWith('src' + path.sep)),
    );
  }
  return graph;
}

/** One cycle through each strongly connected group of files (Tarjan), so every tangle shows at once. */
function cycles(graph: Map<string, string[]>): string[][] {
  const index = new Map<string, number>(),
    low = new Map<string, number>(),
    stack: string[] = [],
    onStack = new Set<string>();
  const groups: string[][] = [];
  const connect = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1 || (graph.get(v) ?? []).includes(v)) groups.push(group);
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v);
  return groups.map((group) => shortestCycle(graph, new Set(group), group.sort()[0]!));
}

/** The shortest path from `start` back to itself inside `group` (breadth first). */
function shortestCycle(graph: Map<string, string[]>, group: Set<string>, start: string): string[] {
  const from = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    for (const w of graph.get(queue[i]!) ?? []) {
      if (!group.has(w)) continue;
      if (w === start) {
        const chain: string[] = [];
        for (let n = queue[i]!; n !== start; n = from.get(n)!) chain.unshift(n);
        return [start, ...chain, start];
      }
      if (!from.has(w)) {
        from.set(w, queue[i]!);
        queue.push(w);
      }
    }
  }
  return [start];
}

test('the cycle finder prints one cycle per tangle', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a', 'd']],
    ['d', []],
    ['e', ['f']],
    ['f', ['e']],
    ['g', ['a']],
  ]);
  assert.deepEqual(cycles(g), [
    ['a', 'b', 'c', 'a'],
    ['e', 'f', 'e'],
  ]);
  assert.deepEqual(
    cycles(
      new Map([
        ['a', ['b']],
        ['b', []],
      ]),
    ),
    [],
  );
});

test('the import parser sees static, re-export, side-effect and dynamic imports', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "export { c } from './c.js';",
    "import './d.js';",
    "const e = await import('./e.js');",
    "// import { f } from './f.js';",
    "import fs from 'node:fs';",
  ].join('\n');
  assert.deepEqual(relativeImports(text), ['./a.js', '../b.js', './c.js', './d.js', './e.js']);
});

test('every relative import in src/ resolves to a source file', () => {
  const graph = importGraph();
  const missing = [...graph].flatMap(([f, deps]) => deps.filter((d) => !graph.has(d)).map((d) => `${f} -> ${d}`));
  assert.deepEqual(missing, []);
});

test('nothing outside src/cli imports src/cli', () => {
  const cli = path.join('src', 'cli') + path.sep;
  const upward = [...importGraph()].flatMap(([f, deps]) =>
    f.startsWith(cli) ? [] : deps.filter((d) => d.startsWith(cli)).map((d) => `${f} -> ${d}`),
  );
  assert.deepEqual(upward, [], `imports into src/cli from below:\n  ${upward.join('\n  ')}`);
});

test('the import graph of src/ has no cycle', () => {
  const found = cycles(importGraph());
  assert.deepEqual(
    found.map((c) => c.join(' -> ')),
    [],
    `import cycles:\n  ${found.map((c) => c.join(' -> ')).join('\n  ')}`,
  );
});
