// weft report --html in a real browser: headless Chromium (Debian's) opens the page offline,
// every chart must draw its marks with no console error, and a screenshot is taken.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { parseTimeline } from '../../src/report/html.js';
import { runTrace } from '../../src/run/timeline.js';
import { weft } from '../helpers/cli.js';

const env = {
  host: 'h',
  cpus: 'c',
  cores: 2,
  node: 'v20',
  platform: 'linux-x64',
  weft: '0.1.0',
  gitRevision: 'unknown',
};
const summary = (ms: number) => ({ n: 3, median: ms, min: ms, max: ms, p10: ms, p90: ms });

function records(): object[] {
  const out: object[] = [];
  let t = 0;
  const time = () => new Date(Date.UTC(2026, 0, 1, 0, 0, t++)).toISOString();
  for (const S of [8192, 32768])
    for (const mask of ['causal', 'full'])
      for (const [name, tf] of [
        ['weft', 500],
        ['sdpa-cudnn', 550],
      ] as const) {
        out.push({
          kind: 'kernel',
          name,
          time: time(),
          env,
          config: { pass: 'fwd', S, B: 1, H: 32, D: 128, mask, dtype: 'bf16' },
          unit: 'ms',
          summary: summary(1),
          derived: { tflops: tf + S / 8192 },
        });
      }
  const spans = (r: number) => [
    { stream: 'comm', label: 'ring fwd 0', start: 0, end: 1 },
    { stream: 'compute', label: 'ring fwd 0', start: 0.5, end: 4 + r },
    { stream: 'compute', label: 'ring bwd 0', start: 5, end: 12 },
  ];
  for (const world of [2, 4])
    for (const seq of [32768, 131072]) {
      const config = { seq, heads: 32, kvHeads: 8, dim: 128, mask: 'causal', world, gpu: 'NVIDIA H200' };
      out.push({
        kind: 'cp',
        name: 'weft-1gpu',
        time: time(),
        env,
        config,
        unit: 'ms',
        summary: summary(100),
        derived: { tflopsPerGpu: 410, predictedMs: 98 },
      });
      out.push({
        kind: 'cp',
        name: 'weft-ring-zigzag',
        time: time(),
        env,
        config,
        unit: 'ms',
        summary: summary(110 / world),
        derived: {
          tflopsPerGpu: 380,
          efficiency: 0.9 - world / 100,
          predictedMs: 105 / world,
          predictedPeakGiB: 3 * world,
        },
        extra: {
          peakGiB: [3 * world + 0.01, 3 * world],
          timeline: Array.from({ length: world }, (_, rank) => ({ rank, spans: spans(rank) })),
        },
      });
      out.push({
        kind: 'cp',
        name: 'torch-cp-cudnn-alltoall',
        time: time(),
        env,
        config,
        unit: 'ms',
        summary: summary(90 / world),
        derived: { tflopsPerGpu: 500 },
      });
    }
  return out;
}

/** A Chrome trace of 2 ranks × 2 streams (absolute microseconds, as tracing tools write them). */
const TRACE = {
  traceEvents: [
    { name: 'process_name', ph: 'M', pid: 0, args: { name: 'rank 0' } },
    ...[0, 1].flatMap((pid) => [
      { name: 'ulysses fwd qkv', ph: 'X', pid, tid: 'comm', ts: 1e9, dur: 300 },
      { name: 'ulysses fwd 0', ph: 'X', pid, tid: 'compute', ts: 1e9 + 300, dur: 5000 },
      { name: 'ulysses bwd 0', ph: 'X', pid, tid: 'compute', ts: 1e9 + 5400, dur: 9000 },
    ]),
  ],
};

function chromium(): string | undefined {
  for (const c of ['chromium', 'chromium-browser']) {
    const r = spawnSync('which', [c], { encoding: 'utf8' });
    if (r.status === 0) return r.stdout.trim();
  }
  return undefined;
}

const exe = chromium();

test('a --timeline file of weft run and its spans give the same Gantt rows', () => {
  const ranks = [0, 1].map((rank) => ({
    rank,
    spans: [
      { stream: 'comm' as const, label: 'ring fwd 0', start: 0, end: 1.5 },
      { stream: 'compute' as const, label: 'ring fwd 0', start: 0.25, end: 4 + rank },
      { stream: 'compute' as const, label: 'ring bwd 0', start: 5, end: 9 },
    ],
  }));
  const key = (t: { spans: { rank: number; stream: string; label: string; start: number; end: number }[] }) =>
    t.spans.map((s) => `${s.rank} ${s.stream} ${s.label} ${s.start.toFixed(3)} ${s.end.toFixed(3)}`).sort();
  assert.deepEqual(key(parseTimeline(runTrace(ranks), 'trace')), key(parseTimeline(ranks, 'spans')));
  assert.throws(() => parseTimeline({ nothing: 1 }, 'x.json'), /x\.json: not a timeline/);
});

test(
  'weft report --html draws every chart offline in headless Chromium, with no console error',
  { skip: exe ? false : "no chromium (Debian's chromium; .ci/run installs it)", timeout: 180_000 },
  async () => {
    const { chromium: browserType } = await import('playwright-core');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'weft-html-'));
    try {
      const results = path.join(dir, 'results');
      mkdirSync(results);
      writeFileSync(
        path.join(results, 'bench.jsonl'),
        records()
          .map((r) => JSON.stringify(r))
          .join('\n') + '\n',
      );
      writeFileSync(
        path.join(results, 'run-timeline.json'),
        JSON.stringify(
          [0, 1].map((rank) => ({ rank, spans: [{ stream: 'compute', label: 'ring fwd 0', start: 0, end: 3 }] })),
        ),
      );
      const trace = path.join(dir, 'trace.json');
      writeFileSync(trace, JSON.stringify(TRACE));
      const page = path.join(dir, 'report.html');
      const r = weft(['report', results, '--html', page, '--timeline', trace]);
      assert.equal(r.code, 0, r.stderr);
      const html = readFileSync(page, 'utf8');
      assert.doesNotMatch(html, /<script[^>]*\ssrc=/, 'the libraries are inlined, not fetched');

      const browser = await browserType.launch({ executablePath: exe, args: ['--no-sandbox'] });
      try {
        const tab = await browser.newPage({ viewport: { width: 1300, height: 900 } });
        const errors: string[] = [],
          fetched: string[] = [];
        tab.on('console', (m) => {
          if (m.type() === 'error') errors.push(m.text());
        });
        tab.on('pageerror', (e) => errors.push(e.message));
        await tab.route('**/*', (route) => {
          const url = route.request().url();
          if (url.startsWith('file:')) return route.continue();
          fetched.push(url);
          return route.abort();
        });
        await tab.goto(pathToFileURL(page).href);
        // (page code as strings: this file is compiled without the DOM's types)
        await tab.waitForFunction('document.body.dataset.drawn ?? document.body.dataset.error', null, {
          timeout: 120_000,
        });
        const state = (await tab.evaluate(`({
        drawn: document.body.dataset.drawn, error: document.body.dataset.error,
        charts: [...document.querySelectorAll('.chart')].map((c) => ({ id: c.id, marks: c.querySelectorAll('g[class*="role-mark"] path').length })),
      })`)) as { drawn?: string; error?: string; charts: { id: string; marks: number }[] };
        assert.equal(state.error, undefined);
        // kernels fwd, cp 2 GPUs, cp 4 GPUs; scaling; predicted time and memory; timelines: the folder's, the --timeline
        // trace, and the four records' (the report draws at most four from records)
        const ids = state.charts.map((c) => c.id);
        assert.deepEqual(ids, [
          'peers-0',
          'peers-1',
          'peers-2',
          'scaling',
          'predicted-time',
          'predicted-memory',
          ...[0, 1, 2, 3, 4, 5].map((i) => `timeline-${i}`),
        ]);
        assert.equal(state.drawn, String(ids.length));
        for (const c of state.charts) assert.ok(c.marks > 0, `${c.id} drew no marks`);
        // the Gantt of the Chrome trace: one bar per complete event
        assert.equal(await tab.evaluate("document.querySelectorAll('#timeline-1 g.mark-rect path').length"), 6);
        assert.deepEqual(errors, []);
        assert.deepEqual(fetched, []);
        const shot = path.join(dir, 'report.png');
        await tab.screenshot({ path: shot, fullPage: true });
        assert.ok(statSync(shot).size > 20_000);
      } finally {
        await browser.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
