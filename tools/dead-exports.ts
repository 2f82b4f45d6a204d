// Exports of src/ that nothing else uses: `npm run -s build && node dist/tools/dead-exports.js`.
// A use is any reference from another file of src/, test/, test-gpu/ or tools/ (static imports,
// `const { x } = await import(…)`, `m.x` on an imported module), a function a worker program
// loads by name (`{ module, fn: 'x' }` in its own file), or the name in a script that imports
// dist/ by text (shell and .mjs files in tools/ and test-gpu/, and scripts a test spawns from a
// string that calls import()). Re-exports count only
// in src/index.ts (the public API); a folder's index.ts that re-exports a name nobody imports
// through it is listed too. `unused` exports are dead code; `local` values (functions, constants,
// classes) are used only in their own file: drop `export`. Types used only in their own file are
// not listed, since exported signatures name them. Prints nothing when all is used.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// Compiled to dist/tools/; the sources sit at the repository root.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const rel = (f: string): string => path.relative(ROOT, f);

const config = ts.getParsedCommandLineOfConfigFile(
  path.join(ROOT, 'tsconfig.json'),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    },
  },
)!;
const program = ts.createProgram(config.fileNames, config.options);
const checker = program.getTypeChecker();
const files = program.getSourceFiles().filter((f) => !rel(f.fileName).startsWith('..') && !f.isDeclarationFile);
const PUBLIC = 'src/index.ts';

const resolve = (s: ts.Symbol): ts.Symbol => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s);
const inReExport = (n: ts.Node): boolean =>
  ts.findAncestor(n, (a) => ts.isExportDeclaration(a) && a.moduleSpecifier !== undefined) !== undefined;

/** The symbol an identifier refers to; for `{ x } = await import(…)`, the module's export x. */
function symbolAt(id: ts.Identifier): ts.Symbol | undefined {
  const b = id.parent;
  if (ts.isBindingElement(b) && ts.isObjectBindingPattern(b.parent) && (b.propertyName ?? b.name) === id) {
    const p = checker.getTypeAtLocation(b.parent).getProperty(id.text);
    if (p) return p;
  }
  return checker.getSymbolAtLocation(id);
}

const usedElsewhere = new Set<ts.Symbol>();
const usedInFile = new Set<ts.Symbol>();
const byName = new Map<string, Set<string>>(); // worker entry points: file → names in `fn: '…'`
let spawned = ''; // the text of string literals that import modules at run time
for (const sf of files) {
  const visit = (n: ts.Node): void => {
    if (ts.isIdentifier(n)) {
      const s = symbolAt(n);
      const decl = s && resolve(s).declarations?.[0];
      if (s && decl) {
        const r = resolve(s);
        if (decl.getSourceFile() !== sf) {
          if (!inReExport(n) || rel(sf.fileName) === PUBLIC) usedElsewhere.add(r);
        } else if (!r.declarations!.some((d) => (d as ts.NamedDeclaration).name === n)) usedInFile.add(r);
      }
    }
    if (ts.isPropertyAssignment(n) && n.name.getText(sf) === 'fn' && ts.isStringLiteral(n.initializer)) {
      const set = byName.get(sf.fileName) ?? new Set();
      byName.set(sf.fileName, set.add(n.initializer.text));
    }
    if ((ts.isTemplateExpression(n) || ts.isStringLiteralLike(n)) && n.getText(sf).includes('import('))
      spawned += n.getText(sf) + '\n';
    ts.forEachChild(n, visit);
  };
  visit(sf);
}

/** The text of the scripts that are not TypeScript, where a name can only be found as a word. */
function scripts(dir: string): string {
  return readdirSync(dir, { withFileTypes: true })
    .map((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return scripts(p);
      return /\.(sh|mjs|js)$/.test(e.name) ? readFileSync(p, 'utf8') : '';
    })
    .join('\n');
}
const scriptText = ['tools', 'test-gpu'].map((d) => scripts(path.join(ROOT, d))).join('\n') + spawned;
const inScripts = (name: string): boolean => new RegExp(`\\b${name}\\b`).test(scriptText);

/** Names imported through each index.ts, from import and re-export declarations alike. */
const throughIndex = new Map<string, Set<string>>();
for (const sf of files)
  for (const st of sf.statements) {
    if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st)) || !st.moduleSpecifier) continue;
    const target = checker.getSymbolAtLocation(st.moduleSpecifier)?.valueDeclaration?.getSourceFile().fileName;
    if (!target?.endsWith('/index.ts')) continue;
    const set = throughIndex.get(target) ?? new Set<string>();
    throughIndex.set(target, set);
    const named = ts.isImportDeclaration(st) ? st.importClause?.namedBindings : st.exportClause;
    if (named && (ts.isNamedImports(named) || ts.isNamedExports(named)))
      for (const e of named.elements) set.add((e.propertyName ?? e.name).text);
    else set.add('*');
  }

const lines: string[] = [];
for (const sf of files) {
  const f = rel(sf.fileName);
  const module = checker.getSymbolAtLocation(sf);
  if (!f.startsWith('src/') || f === PUBLIC || !module) continue;
  for (const e of checker.getExportsOfModule(module)) {
    const r = resolve(e);
    const decl = r.declarations?.[0];
    if (!decl) continue;
    if (decl.getSourceFile() !== sf) {
      const through = throughIndex.get(sf.fileName);
      if (f.endsWith('/index.ts') && !through?.has('*') && !through?.has(e.name))
        lines.push(`${f}: re-exports ${e.name}, which nothing imports through it`);
      continue;
    }
    if (usedElsewhere.has(r) || byName.get(sf.fileName)?.has(e.name) || inScripts(e.name)) continue;
    const local = usedInFile.has(r);
    if (local && r.flags & (ts.SymbolFlags.Interface | ts.SymbolFlags.TypeAlias)) continue;
    const line = sf.getLineAndCharacterOfPosition(decl.getStart(sf)).line + 1;
    lines.push(`${f}:${line}: ${e.name} ${local ? 'local' : 'unused'}`);
  }
}
if (lines.length > 0) console.log(lines.sort().join('\n'));
