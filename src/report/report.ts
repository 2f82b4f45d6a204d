// `weft report`: benchmark records (JSON lines from src/bench/record.ts) → a Markdown table per
// kind for the README (the HTML page of charts is html.ts).
// Peers measured in the same run sit side by side, with ratios against the first-named peer.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';
import type { BenchRecord } from '../bench/record.js';

/**
 * Every record in the files and folders named (folders: their *.jsonl files). A line that is not a
 * record is skipped and named to `warn` as file:line, so one truncated line never blocks a report.
 */
export function loadRecords(
  inputs: readonly string[],
  warn: (message: string) => void = (m) => process.stderr.write(`weft: ${m}\n`),
): BenchRecord[] {
  const files: string[] = [];
  for (const p of inputs) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UserError(`${p}: no such file or folder`);
    }
    if (st.isDirectory())
      files.push(
        ...readdirSync(p)
          .filter((f) => f.endsWith('.jsonl'))
          .sort()
          .map((f) => path.join(p, f)),
      );
    else files.push(p);
  }
  const out: BenchRecord[] = [];
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      warn(`skipped ${f}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      continue;
    }
    text.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let r: BenchRecord;
      try {
        r = JSON.parse(line) as BenchRecord;
      } catch {
        warn(`skipped ${f}:${i + 1}: not a JSON record`);
        return;
      }
      if (
        typeof r !== 'object' ||
        r === null ||
        typeof r.kind !== 'string' ||
        typeof r.name !== 'string' ||
        !r.summary ||
        typeof r.summary.median !== 'number' ||
        typeof r.config !== 'object' ||
        r.config === null ||
        typeof r.env !== 'object' ||
        r.env === null
      ) {
        warn(`skipped ${f}:${i + 1}: not a weft benchmark record (needs kind, name, config, env, summary)`);
        return;
      }
      out.push(r);
    });
  }
  return out;
}

/** The headline number of a record: a derived rate if there is one, else the median. */
export function headline(r: BenchRecord): { value: number; unit: string } {
  for (const key of ['tflops', 'tflopsPerGpu', 'GBps', 'busGBps']) {
    const v = r.derived?.[key];
    if (typeof v === 'number') return { value: v, unit: key };
  }
  return { value: r.summary.median, unit: r.unit };
}

/** Config keys that name how a peer computed, not what: records differing only in these sit in one row. */
const IMPLEMENTATION_KEYS = new Set(['kernel', 'implementation', 'backend', 'rotate']);

const configKey = (r: BenchRecord): string =>
  Object.entries(r.config)
    .filter(([k]) => !IMPLEMENTATION_KEYS.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(' ');

interface Group {
  kind: string;
  config: string;
  rows: BenchRecord[];
}

export function groupRecords(records: readonly BenchRecord[]): Group[] {
  const m = new Map<string, Group>();
  for (const r of records) {
    const key = `${r.kind}\u0000${configKey(r)}`;
    const g = m.get(key) ?? { kind: r.kind, config: configKey(r), rows: [] };
    // a later record of the same name replaces an earlier one (re-runs)
    g.rows = g.rows.filter((x) => x.name !== r.name);
    g.rows.push(r);
    m.set(key, g);
  }
  return [...m.values()];
}

function fmt(x: number): string {
  return Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 1 ? x.toFixed(1) : x.toPrecision(2);
}

/** One Markdown table per kind: a row per configuration, a column per measured name. */
export function markdown(records: readonly BenchRecord[]): string {
  const parts: string[] = [];
  const groups = groupRecords(records);
  for (const kind of [...new Set(groups.map((g) => g.kind))]) {
    const gs = groups.filter((g) => g.kind === kind);
    const names = [...new Set(gs.flatMap((g) => g.rows.map((r) => r.name)))];
    const unit = headline(gs[0]!.rows[0]!).unit;
    parts.push(`### ${kind} (${unit}; ratio = first column ÷ each peer)\n`);
    parts.push(`| configuration | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
    for (const g of gs) {
      const base = g.rows.find((r) => r.name === names[0]);
      const cells = names.map((n) => {
        const r = g.rows.find((x) => x.name === n);
        if (!r) return '–';
        const v = headline(r).value;
        return base && r !== base ? `${fmt(v)} (${(headline(base).value / v).toFixed(2)}×)` : fmt(v);
      });
      parts.push(`| ${g.config} | ${cells.join(' | ')} |`);
    }
    const env = gs[0]!.rows[0]!.env;
    parts.push(
      '',
      `Measured on ${env.gpus?.join(', ') ?? env.cpus}${env.driver ? `, driver ${env.driver}` : ''}, node ${env.node}, git ${env.gitRevision?.slice(0, 8) ?? 'unknown'}${env.gitDirty ? ' (dirty)' : ''}.`,
      '',
    );
  }
  return parts.join('\n');
}
