// Benchmark records: one JSON object per measurement, written under bench/results/, carrying
// what is needed to compare it later — machine, GPU, driver, versions (weft's own and, from a
// checkout of weft, its git revision), the configuration, and the median and spread of the
// samples (never a single timing).
import { execFileSync } from 'node:child_process';
import { mkdirSync, realpathSync } from 'node:fs';
import { appendOutput, writeOutput } from '../io/output.js';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, weftVersion } from '../version.js';

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  p10: number;
  p90: number;
}

export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const s = [...samples].sort((a, b) => a - b);
  const at = (f: number): number => s[Math.min(s.length - 1, Math.max(0, Math.round(f * (s.length - 1))))]!;
  return { n: s.length, median: at(0.5), min: s[0]!, max: s[s.length - 1]!, p10: at(0.1), p90: at(0.9) };
}

/** Bytes as 1 GiB, 16 MiB, 4 KiB. */
export function fmtSize(b: number): string {
  return b >= 1 << 30
    ? `${b / (1 << 30)} GiB`
    : b >= 1 << 20
      ? `${b / (1 << 20)} MiB`
      : b >= 1024
        ? `${b / 1024} KiB`
        : `${b} B`;
}

function quiet(cmd: string, args: string[], cwd?: string): string | undefined {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 10_000,
      cwd,
    }).trim();
  } catch {
    return undefined;
  }
}

export interface Environment {
  host: string;
  cpus: string;
  cores: number;
  node: string;
  platform: string;
  /** weft's version (package.json) */
  weft: string;
  /** weft's own git revision when it runs from its checkout (or WEFT_GIT_REVISION), else 'unknown' */
  gitRevision: string;
  /** uncommitted changes to tracked files of that checkout (absent when the revision is unknown) */
  gitDirty?: boolean;
  gpus?: string[];
  driver?: string;
  torch?: string;
}

let cached: Environment | undefined;

/**
 * The revision of the code that runs: WEFT_GIT_REVISION (and WEFT_GIT_DIRTY=1|0) when set — the
 * GPU machine gets the working tree without .git — else, only when weft's package root is the
 * top level of a git work tree (weft's own checkout, not a copy inside another repository), its
 * HEAD and whether tracked files changed; else 'unknown'.
 */
function gitProvenance(
  env: NodeJS.ProcessEnv = process.env,
  root: string = packageRoot(),
): { gitRevision: string; gitDirty?: boolean } {
  if (env.WEFT_GIT_REVISION) {
    return env.WEFT_GIT_DIRTY === undefined
      ? { gitRevision: env.WEFT_GIT_REVISION }
      : { gitRevision: env.WEFT_GIT_REVISION, gitDirty: env.WEFT_GIT_DIRTY === '1' };
  }
  const top = quiet('git', ['rev-parse', '--show-toplevel'], root);
  const real = (p: string): string => {
    try {
      return realpathSync(p);
    } catch {
      return p;
    }
  };
  const rev = top !== undefined && real(top) === real(root) ? quiet('git', ['rev-parse', 'HEAD'], root) : undefined;
  if (!rev) return { gitRevision: 'unknown' };
  return {
    gitRevision: rev,
    gitDirty: (quiet('git', ['status', '--porcelain', '--untracked-files=no'], root) ?? '') !== '',
  };
}

/** What machine and software a record was measured with (looked up once per process). */
export function environment(): Environment {
  if (cached) return cached;
  const env: Environment = {
    host: os.hostname(),
    cpus: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    weft: weftVersion(),
    ...gitProvenance(),
  };
  const smi = quiet('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader']);
  if (smi) {
    const rows = smi.split('\n').map((l) => l.split(',').map((x) => x.trim()));
    env.gpus = rows.map((r) => r[0]!);
    env.driver = rows[0]?.[1];
  }
  cached = env;
  return env;
}

export interface BenchRecord {
  kind: string; // e.g. 'kernel', 'comm', 'cp'
  name: string; // what was measured, e.g. 'weft-fwd' or 'torch-sdpa-cudnn'
  time: string;
  env: Environment;
  config: Record<string, unknown>;
  unit: string; // of the summary, e.g. 'ms'
  summary: Summary;
  derived?: Record<string, number>; // e.g. {tflops: 412.5, GBps: 355}
  extra?: Record<string, unknown>;
}

export function makeRecord(
  kind: string,
  name: string,
  config: Record<string, unknown>,
  unit: string,
  samples: readonly number[],
  derived?: Record<string, number>,
  extra?: Record<string, unknown>,
): BenchRecord {
  const r: BenchRecord = {
    kind,
    name,
    time: new Date().toISOString(),
    env: environment(),
    config,
    unit,
    summary: summarize(samples),
  };
  if (derived) r.derived = derived;
  if (extra) r.extra = extra;
  return r;
}

/** The file a run's records go to: `dir/<kind>-<date>-<rev>.jsonl`. */
export function recordFile(dir: string, kind: string): string {
  const rev = environment().gitRevision.slice(0, 8);
  return path.join(dir, `${kind}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-')}-${rev}.jsonl`);
}

/** Write records as JSON lines to a new file, or over `file` (atomically); returns its path. */
export function writeRecords(
  dir: string,
  records: readonly BenchRecord[],
  file = recordFile(dir, records[0]?.kind ?? ''),
): string {
  if (records.length === 0) throw new Error('writeRecords: nothing to write');
  mkdirSync(dir, { recursive: true });
  writeOutput(file, records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** Append records to `file` as they are measured, so a long run that is cut off keeps what it finished. */
export function appendRecords(file: string, records: readonly BenchRecord[]): void {
  mkdirSync(path.dirname(file), { recursive: true });
  appendOutput(file, records.map((r) => JSON.stringify(r) + '\n').join(''));
}
