// `weft report --html`: one self-contained page of charts drawn by Vega-Lite (vega, vega-lite and
// vega-embed are inlined, so the page works offline and from a file):
//   weft vs peers   — TFLOP/s per sequence length, a bar per implementation, a panel per mask
//                     (kernels per pass, context parallelism per GPU count);
//   scaling         — efficiency (one GPU's time ÷ (N × N GPUs' time)) against the GPU count;
//   predicted       — the planner's time and peak memory against the measured ones, with y = x;
//   timelines       — each rank's compute and communication spans as a Gantt chart, from records
//                     that carry them and from --timeline files (weft's or Chrome-trace JSON);
// and a table of every record. The page sets data-drawn on <body> to the number of charts once
// all have rendered (data-error if one failed), so a headless browser can tell it drew.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { BenchRecord } from '../bench/record.js';
import { UserError } from '../errors.js';
import { groupRecords, headline } from './report.js';

/** One span of a rank's timeline, milliseconds from the iteration start. */
export interface TimelineSpan {
  rank: number;
  stream: string;
  label: string;
  start: number;
  end: number;
}
export interface Timeline {
  title: string;
  spans: TimelineSpan[];
}

type Spec = Record<string, unknown>;
interface Chart {
  id: string;
  title: string;
  note: string;
  spec: Spec;
}

const esc = (s: string): string =>
  s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const tokens = (n: number): string =>
  n >= 1 << 20 && n % (1 << 20) === 0 ? `${n / (1 << 20)}M` : n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : String(n);
const num = (x: unknown): number | undefined => (typeof x === 'number' && Number.isFinite(x) ? x : undefined);

/** The latest record of each (kind, configuration, name), in time order: re-runs replace earlier ones. */
function latest(records: readonly BenchRecord[]): BenchRecord[] {
  return groupRecords(records)
    .flatMap((g) => g.rows)
    .sort((a, b) => String(a.time).localeCompare(String(b.time)));
}

function peersCharts(records: readonly BenchRecord[]): Chart[] {
  const rows: Record<string, unknown>[] = [];
  for (const r of records) {
    const c = r.config as Record<string, unknown>;
    if (r.kind === 'kernel' && num(c.S) && num(r.derived?.tflops)) {
      rows.push({
        panel: `kernels, ${c.pass ?? 'fwd'}${c.dtype ? `, ${c.dtype}` : ''}`,
        length: tokens(c.S as number),
        S: c.S,
        mask: String(c.mask),
        name: r.name,
        value: r.derived!.tflops,
        unit: 'TFLOP/s',
      });
    } else if (r.kind === 'cp' && num(c.seq) && num(r.derived?.tflopsPerGpu)) {
      rows.push({
        panel: `context parallel, ${c.world} GPUs (forward+backward)`,
        length: tokens(c.seq as number),
        S: c.seq,
        mask: String(c.mask),
        name: r.name,
        value: r.derived!.tflopsPerGpu,
        unit: 'TFLOP/s per GPU',
      });
    }
  }
  // one bar per (panel, mask, length, implementation): the latest measurement (records are in time order)
  const byBar = new Map<string, Record<string, unknown>>();
  for (const r of rows) byBar.set(`${r.panel}|${r.mask}|${r.S}|${r.name}`, r);
  rows.splice(0, rows.length, ...byBar.values());
  const panels = [...new Set(rows.map((r) => r.panel as string))].sort();
  return panels.map((panel, i) => ({
    id: `peers-${i}`,
    title: `weft vs peers: ${panel}`,
    note: 'Bars per sequence length and implementation; one panel per mask. Longer is faster.',
    spec: {
      data: { values: rows.filter((r) => r.panel === panel) },
      facet: { column: { field: 'mask', title: null } },
      spec: {
        width: { step: 14 },
        height: 220,
        mark: { type: 'bar', tooltip: true },
        encoding: {
          x: { field: 'length', type: 'ordinal', title: 'sequence length', sort: { field: 'S' } },
          xOffset: { field: 'name' },
          y: { field: 'value', type: 'quantitative', title: rows.find((r) => r.panel === panel)!.unit, stack: null },
          color: { field: 'name', type: 'nominal', title: 'implementation', legend: { labelLimit: 320 } },
        },
      },
      resolve: { scale: { x: 'independent' } },
    },
  }));
}

function scalingChart(records: readonly BenchRecord[]): Chart[] {
  const rows = records
    .filter((r) => r.kind === 'cp' && num(r.derived?.efficiency) !== undefined)
    .map((r) => {
      const c = r.config as Record<string, unknown>;
      return {
        case: `S=${tokens(c.seq as number)}, ${c.mask}`,
        gpus: c.world,
        name: r.name,
        efficiency: r.derived!.efficiency,
      };
    });
  if (rows.length === 0) return [];
  return [
    {
      id: 'scaling',
      title: 'Scaling efficiency per GPU count',
      note: "One GPU's time ÷ (N × the time on N GPUs); 1 is perfect scaling.",
      spec: {
        data: { values: rows },
        facet: { field: 'case', type: 'nominal', title: null, sort: 'ascending' },
        columns: 4,
        spec: {
          width: 180,
          height: 160,
          layer: [
            {
              mark: { type: 'line', point: true, tooltip: true },
              encoding: {
                x: {
                  field: 'gpus',
                  type: 'quantitative',
                  title: 'GPUs',
                  scale: { zero: false, nice: false },
                  axis: { tickMinStep: 1 },
                },
                y: { field: 'efficiency', type: 'quantitative', title: 'efficiency', scale: { domain: [0, 1.05] } },
                color: { field: 'name', type: 'nominal', title: 'strategy', legend: { labelLimit: 320 } },
              },
            },
            { mark: { type: 'rule', strokeDash: [4, 3], color: '#888' }, encoding: { y: { datum: 1 } } },
          ],
        },
      },
    },
  ];
}

function predictedCharts(records: readonly BenchRecord[]): Chart[] {
  const out: Chart[] = [];
  const scatter = (id: string, title: string, note: string, rows: Record<string, unknown>[], unit: string): Chart => {
    const vals = rows.flatMap((r) => [r.predicted as number, r.measured as number]);
    const lo = Math.min(...vals),
      hi = Math.max(...vals);
    return {
      id,
      title,
      note,
      spec: {
        width: 420,
        height: 320,
        layer: [
          {
            data: {
              values: [
                { a: lo, b: lo },
                { a: hi, b: hi },
              ],
            },
            mark: { type: 'line', color: '#888', strokeDash: [4, 3] },
            encoding: { x: { field: 'a', type: 'quantitative' }, y: { field: 'b', type: 'quantitative' } },
          },
          {
            data: { values: rows },
            mark: { type: 'point', filled: true, size: 60, tooltip: true },
            encoding: {
              x: { field: 'predicted', type: 'quantitative', title: `predicted ${unit}`, scale: { type: 'log' } },
              y: { field: 'measured', type: 'quantitative', title: `measured ${unit}`, scale: { type: 'log' } },
              color: { field: 'name', type: 'nominal', title: 'run', legend: { labelLimit: 320 } },
              shape: { field: 'gpus', type: 'nominal', title: 'GPUs' },
            },
          },
        ],
      },
    };
  };
  const cp = records.filter((r) => r.kind === 'cp');
  const time = cp
    .filter((r) => num(r.derived?.predictedMs) && r.summary.median > 0)
    .map((r) => ({
      name: r.name,
      gpus: (r.config as Record<string, unknown>).world,
      predicted: r.derived!.predictedMs,
      measured: r.summary.median,
      case: `S=${tokens((r.config as Record<string, unknown>).seq as number)} ${(r.config as Record<string, unknown>).mask}`,
    }));
  if (time.length)
    out.push(
      scatter(
        'predicted-time',
        'Predicted vs measured time',
        "The planner's time for the layout against the median measured; on the dashed line the prediction is exact.",
        time,
        'ms',
      ),
    );
  const peak = cp.flatMap((r) => {
    const p = num(r.derived?.predictedPeakGiB),
      m = (r.extra?.peakGiB as number[] | undefined)?.filter((x) => typeof x === 'number');
    return p && m?.length
      ? [{ name: r.name, gpus: (r.config as Record<string, unknown>).world, predicted: p, measured: Math.max(...m) }]
      : [];
  });
  if (peak.length)
    out.push(
      scatter(
        'predicted-memory',
        'Predicted vs measured peak memory',
        "weft's count of what a rank holds against the allocator's peak (largest rank).",
        peak,
        'GiB',
      ),
    );
  return out;
}

function timelineCharts(timelines: readonly Timeline[]): Chart[] {
  return timelines.map((t, i) => {
    const rows = t.spans.map((s) => ({
      ...s,
      row: `rank ${s.rank} · ${s.stream}`,
      phase: s.label.replace(/\s*\d+$/, ''),
      ms: s.end - s.start,
    }));
    const lanes = [...new Set(rows.map((r) => r.row))].length;
    return {
      id: `timeline-${i}`,
      title: `Timeline: ${t.title}`,
      note: "Each rank's compute and communication streams; bars are kernel calls and transfers.",
      spec: {
        width: 760,
        height: Math.max(60, lanes * 26),
        data: { values: rows },
        mark: { type: 'bar', tooltip: true, height: 18 },
        encoding: {
          y: { field: 'row', type: 'ordinal', title: null, sort: 'ascending' },
          x: { field: 'start', type: 'quantitative', title: 'ms from the iteration start' },
          x2: { field: 'end' },
          color: { field: 'phase', type: 'nominal', title: 'step' },
          tooltip: [
            { field: 'row' },
            { field: 'label' },
            { field: 'start', format: '.3f' },
            { field: 'ms', format: '.3f' },
          ],
        },
      },
    };
  });
}

function table(records: readonly BenchRecord[]): string {
  const rows = records.map((r) => {
    const h = headline(r);
    const cfg = Object.entries(r.config)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : v}`)
      .join(' ');
    return (
      `<tr><td>${esc(r.kind)}</td><td>${esc(r.name)}</td><td>${esc(cfg)}</td><td class="n">${h.value.toPrecision(4)} ${esc(h.unit)}</td>` +
      `<td class="n">${r.summary.median.toPrecision(4)} ${esc(r.unit)}</td><td class="n">${r.summary.n}</td><td>${esc(r.env?.gitRevision?.slice(0, 8) ?? 'unknown')}</td></tr>`
    );
  });
  return `<table><thead><tr><th>kind</th><th>name</th><th>configuration</th><th>headline</th><th>median</th><th>n</th><th>revision</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

// ---- timelines: from records and from files

/** Spans from weft's timeline JSON ([{rank, spans: [{stream, label, start, end}]}]) or a Chrome trace ({traceEvents} or an event array; complete 'X' events, µs). */
export function parseTimeline(json: unknown, title: string): Timeline {
  const events = Array.isArray(json) ? json : (json as { traceEvents?: unknown })?.traceEvents;
  if (!Array.isArray(events))
    throw new UserError(`${title}: not a timeline (weft's [{rank, spans}] or a Chrome trace with traceEvents)`);
  const spans: TimelineSpan[] = [];
  let trace = false; // Chrome-trace times are absolute: shifted to start at 0
  const rankOf = (x: unknown): number => (typeof x === 'number' ? x : Number(/(\d+)/.exec(String(x))?.[1] ?? 0));
  // a trace names its lanes in metadata events (weft's: "compute", "comm 2"); else the category or the thread id
  const lanes = new Map<string, string>();
  for (const e of events as Record<string, unknown>[]) {
    if (e?.ph === 'M' && e.name === 'thread_name')
      lanes.set(`${e.pid}/${e.tid}`, String((e.args as { name?: unknown })?.name ?? e.tid));
  }
  for (const e of events as Record<string, unknown>[]) {
    if (Array.isArray(e?.spans)) {
      for (const s of e.spans as Record<string, unknown>[]) {
        if (num(s.start) !== undefined && num(s.end) !== undefined)
          spans.push({
            rank: rankOf(e.rank),
            stream: String(s.stream ?? 'compute'),
            label: String(s.label ?? ''),
            start: s.start as number,
            end: s.end as number,
          });
      }
    } else if (e?.ph === 'X' && num(e.ts) !== undefined && num(e.dur) !== undefined) {
      trace = true;
      spans.push({
        rank: rankOf(e.pid),
        stream: lanes.get(`${e.pid}/${e.tid}`) ?? String(e.cat ?? e.tid ?? 'compute'),
        label: String(e.name ?? ''),
        start: (e.ts as number) / 1000,
        end: ((e.ts as number) + (e.dur as number)) / 1000,
      });
    }
  }
  if (spans.length === 0) throw new UserError(`${title}: the timeline holds no spans`);
  if (trace) {
    const t0 = Math.min(...spans.map((s) => s.start));
    for (const s of spans) {
      s.start -= t0;
      s.end -= t0;
    }
  }
  return { title, spans };
}

export function readTimeline(file: string): Timeline {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not JSON'}`);
  }
  return parseTimeline(json, path.basename(file));
}

/** Timeline files (*timeline*.json) in the folders among `inputs`. */
export function timelinesIn(inputs: readonly string[]): string[] {
  return inputs.flatMap((p) => {
    try {
      return statSync(p).isDirectory()
        ? readdirSync(p)
            .filter((f) => /timeline.*\.json$/.test(f))
            .sort()
            .map((f) => path.join(p, f))
        : [];
    } catch {
      return [];
    }
  });
}

/** Timelines carried by records (extra.timeline), at most `limit`, the latest first. */
function recordTimelines(records: readonly BenchRecord[], limit: number): Timeline[] {
  const out: Timeline[] = [];
  for (const r of [...records].reverse()) {
    if (out.length >= limit || !Array.isArray(r.extra?.timeline)) continue;
    const c = r.config as Record<string, unknown>;
    try {
      out.push(
        parseTimeline(
          r.extra.timeline,
          `${r.name}, ${c.world ?? '?'} GPUs, S=${num(c.seq) ? tokens(c.seq as number) : '?'} ${c.mask ?? ''}`,
        ),
      );
    } catch {
      /* a record without spans draws nothing */
    }
  }
  return out;
}

// ---- the page

const LIBRARIES = [
  ['vega', 'vega.min.js'],
  ['vega-lite', 'vega-lite.min.js'],
  ['vega-embed', 'vega-embed.min.js'],
] as const;

/** The three libraries' browser builds, as installed beside weft. */
function libraries(): string[] {
  const require = createRequire(import.meta.url);
  return LIBRARIES.map(([pkg, file]) => {
    const built = path.join(path.dirname(require.resolve(pkg)), file);
    // never let the inlined code close its <script> element early
    return readFileSync(built, 'utf8').replace(/<\/script/gi, '<\\/script');
  });
}

export interface HtmlOptions {
  timelines?: readonly Timeline[];
  sources?: readonly string[];
  recordTimelineLimit?: number;
}

/** The page: every chart that the records (and timelines) have data for, then the table. */
export function htmlReport(records: readonly BenchRecord[], o: HtmlOptions = {}): string {
  const recs = latest(records);
  const charts = [
    ...peersCharts(recs),
    ...scalingChart(recs),
    ...predictedCharts(recs),
    ...timelineCharts([...(o.timelines ?? []), ...recordTimelines(recs, o.recordTimelineLimit ?? 4)]),
  ];
  const specs = Object.fromEntries(
    charts.map((c) => [c.id, { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', ...c.spec }]),
  );
  const sections = charts
    .map(
      (c) => `<section><h2>${esc(c.title)}</h2><p>${esc(c.note)}</p><div class="chart" id="${c.id}"></div></section>`,
    )
    .join('\n');
  const json = JSON.stringify(specs).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>weft benchmarks</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}h2{font-size:16px;margin:2em 0 .2em}p{margin:.2em 0 .8em;color:#555}
table{border-collapse:collapse;font-size:12px}td,th{border-bottom:1px solid #ddd;padding:2px 8px;text-align:left}td.n{text-align:right}</style>
</head><body>
<h1>weft benchmarks</h1>
<p>${records.length} records${o.sources?.length ? ` from ${esc(o.sources.join(', '))}` : ''}; ${charts.length} charts.</p>
${sections}
<section><h2>All records</h2>${table(recs)}</section>
${libraries()
  .map((js) => `<script>${js}</script>`)
  .join('\n')}
<script>
const specs = ${json};
Promise.all(Object.entries(specs).map(([id, spec]) => vegaEmbed('#' + id, spec, { actions: false, renderer: 'svg' })))
  .then(() => { document.body.dataset.drawn = String(Object.keys(specs).length); })
  .catch((e) => { document.body.dataset.error = String(e && e.message || e); console.error(e); });
</script>
</body></html>
`;
}
