// Updating a calibration from `weft bench` records (JSON lines, src/bench/record.ts, as the files
// in bench/results). A record is used when it says what it measured in these fields (others are
// skipped, with the reason):
//   kind 'kernel': config.seqLen (or seq/S), config.headDim (or dim/D), config.mask 'causal'|'full',
//     config.pass 'fwd'|'fwd+bwd' (or mode/direction), derived.tflops. The kernel is config.kernel,
//     or read from the record name: 'sdpa-cudnn' → cudnn, 'sdpa-flash' → fa2, 'weft', 'weft_fwd' →
//     weft; names with anything more ('weft_fwd_sync', 'weft_bwd-abl1') are variants and skipped,
//     as are 'bwd'-only records (the fwd+bwd record of the same shape is used). A record with
//     config.op 'gemm' (or a name starting 'gemm') sets the GEMM rate instead.
//   kind 'comm': config.op 'sendrecv'|'p2p' sets the point-to-point efficiency from derived.algGBps
//     (or GBps); 'allreduce'|'all-reduce'|'alltoall' the collective one from derived.busGBps — each
//     the best over the message sizes recorded, over the measured GPU's nominal NVLink bandwidth.
//   kind 'ops' (`weft bench ops`): the '<op>-fit' records' derived.GBps over the GPU's HBM and the
//     4 KiB records' median µs give the rates of weft's Device operations (calibration.deviceOps).
// The GPU is env.gpus[0] matched to a preset (e.g. 'NVIDIA H200' → h200); rates measured on
// another GPU of the class are rescaled by the ratio of datasheet peaks.
import { readFileSync } from 'node:fs';
import { UserError } from '../../errors.js';
import { GPU_PRESETS, gpuPresetByName, type GpuSpec } from '../hardware.js';
import type { ElementwiseOp } from '../../strategy/accounting.js';
import type { Calibration, DeviceOpRate, KernelPoint } from './types.js';
import { CLASS_CALIBRATIONS } from './classes.js';

interface RecordLike {
  kind?: unknown;
  name?: unknown;
  config?: unknown;
  derived?: unknown;
  env?: unknown;
  time?: unknown;
  summary?: unknown;
}

function gpuOfRecord(r: RecordLike): GpuSpec | undefined {
  const gpus = (r.env as { gpus?: unknown } | undefined)?.gpus;
  return Array.isArray(gpus) && typeof gpus[0] === 'string' ? gpuPresetByName(gpus[0]) : undefined;
}

const num = (o: Record<string, unknown>, ...keys: string[]): number | undefined => {
  for (const k of keys) if (typeof o[k] === 'number' && Number.isFinite(o[k])) return o[k] as number;
  return undefined;
};
const str = (o: Record<string, unknown>, ...keys: string[]): string | undefined => {
  for (const k of keys) if (typeof o[k] === 'string') return o[k] as string;
  return undefined;
};

/** The kernel a bench record name measures, or undefined for a variant (see the header). */
function kernelOfName(name: string): string | undefined {
  const tokens = name
    .toLowerCase()
    .split(/[-_]/)
    .filter((t) => t && !['torch', 'sdpa', 'fwd', 'bwd', 'fwdbwd'].includes(t));
  if (tokens.length !== 1) return undefined;
  const t = tokens[0]!;
  return t === 'flash' || t === 'flashattention' ? 'fa2' : t;
}

/** A copy of `base` with every usable record applied; the reasons records were skipped. */
export function applyRecords(
  base: Calibration,
  records: readonly RecordLike[],
): { calibration: Calibration; used: number; skipped: string[] } {
  const cal: Calibration = {
    ...base,
    attention: [...base.attention],
    gemm: { ...base.gemm },
    links: { ...base.links },
  };
  const target = GPU_PRESETS[cal.gpu]!;
  const skipped: string[] = [];
  let used = 0;
  const best = { p2p: 0, coll: 0 };
  const ops: Record<string, { eff?: number; callUs?: number }> = {};
  let opsSource = '';
  records.forEach((r, i) => {
    const where = `record ${i + 1}${typeof r.name === 'string' ? ` (${r.name})` : ''}`;
    const gpu = gpuOfRecord(r);
    if (!gpu) {
      skipped.push(`${where}: GPU unknown (env.gpus)`);
      return;
    }
    if (gpu.class !== cal.class) {
      skipped.push(`${where}: measured on ${gpu.name}, not a ${cal.class} GPU`);
      return;
    }
    const config = (r.config ?? {}) as Record<string, unknown>,
      derived = (r.derived ?? {}) as Record<string, unknown>;
    const source = `weft bench ${String(r.kind)} ${typeof r.name === 'string' ? r.name : ''} on ${gpu.name}${typeof r.time === 'string' ? `, ${r.time}` : ''}`;
    const scale = target.bf16Tflops / gpu.bf16Tflops;
    if (r.kind === 'kernel') {
      const tflops = num(derived, 'tflops');
      if (tflops === undefined) {
        skipped.push(`${where}: no derived.tflops`);
        return;
      }
      const name = typeof r.name === 'string' ? r.name : '';
      if (str(config, 'op') === 'gemm' || name.startsWith('gemm')) {
        cal.gemm = { tflops: tflops * scale, source };
        used++;
        return;
      }
      const seqLen = num(config, 'seqLen', 'seq', 'S'),
        headDim = num(config, 'headDim', 'dim', 'D');
      const mask = str(config, 'mask'),
        pass = str(config, 'pass', 'mode', 'direction');
      if (pass === 'bwd') {
        skipped.push(`${where}: a backward-only record (the fwd+bwd record of the same shape is used)`);
        return;
      }
      if (!seqLen || !headDim || (mask !== 'causal' && mask !== 'full') || (pass !== 'fwd' && pass !== 'fwd+bwd')) {
        skipped.push(`${where}: needs config.seqLen, headDim, mask (causal|full) and pass (fwd|fwd+bwd)`);
        return;
      }
      const kernel = str(config, 'kernel') ?? kernelOfName(name);
      if (!kernel) {
        skipped.push(`${where}: a variant of a kernel (name '${name}'), not its plain measurement`);
        return;
      }
      const p: KernelPoint = { kernel, pass, seqLen, mask, headDim, tflops: tflops * scale, source };
      const same = cal.attention.findIndex(
        (q) =>
          q.kernel === kernel && q.pass === pass && q.seqLen === seqLen && q.mask === mask && q.headDim === headDim,
      );
      if (same >= 0) cal.attention[same] = p;
      else cal.attention.push(p);
      used++;
      return;
    }
    if (r.kind === 'comm') {
      const op = (str(config, 'op') ?? '').toLowerCase().replace(/[-_]/g, '');
      if (op === 'sendrecv' || op === 'p2p') {
        const g = num(derived, 'algGBps', 'GBps');
        if (g === undefined) {
          skipped.push(`${where}: no derived.algGBps`);
          return;
        }
        if (g > best.p2p) {
          best.p2p = g;
          cal.links = { ...cal.links, p2pEfficiency: g / gpu.intraNode.GBps, source };
        }
        used++;
        return;
      }
      if (op === 'allreduce' || op === 'alltoall') {
        const g = num(derived, 'busGBps', 'GBps');
        if (g === undefined) {
          skipped.push(`${where}: no derived.busGBps`);
          return;
        }
        if (g > best.coll) {
          best.coll = g;
          cal.links = { ...cal.links, collectiveEfficiency: g / gpu.intraNode.GBps, source };
        }
        used++;
        return;
      }
      skipped.push(`${where}: comm op '${op}' is not sendrecv, allreduce or alltoall`);
      return;
    }
    if (r.kind === 'ops') {
      // `weft bench ops`: '<op>-fit' records give the rate (derived.GBps over this GPU's HBM), the
      // 4 KiB record of the op its cost per call
      const op = str(config, 'op'),
        GBps = num(derived, 'GBps');
      if (!op || GBps === undefined) {
        skipped.push(`${where}: needs config.op and derived.GBps`);
        return;
      }
      const name = typeof r.name === 'string' ? r.name : '';
      const o = (ops[op] ??= {});
      if (name === `${op}-fit`) o.eff = GBps / (gpu.hbmTBs * 1000);
      else if (num(config, 'bytes') === 4096) o.callUs = num((r.summary as Record<string, unknown>) ?? {}, 'median');
      else return; // the other sizes are in the fit
      opsSource = source;
      used++;
      return;
    }
    skipped.push(`${where}: kind '${String(r.kind)}' is not kernel, comm or ops`);
  });
  const rates = deviceOpRates(ops);
  if (rates) cal.deviceOps = { ops: rates, source: `weft bench ops (${opsSource})` };
  return { calibration: cal, used, skipped };
}

/**
 * The planner's five classes from `weft bench ops`' operations: box copies are about half
 * contiguous and half strided rows in the strategies (the harmonic mean of 'copy' and
 * 'copy-quarter', their mean call); undefined unless every operation needed was measured.
 */
function deviceOpRates(
  m: Record<string, { eff?: number; callUs?: number }>,
): Record<ElementwiseOp, DeviceOpRate> | undefined {
  const need = ['zeros', 'full', 'copy', 'copy-quarter', 'add', 'cast'];
  if (!need.every((k) => m[k]?.eff !== undefined && m[k]?.callUs !== undefined)) return undefined;
  const r = (k: string): DeviceOpRate => ({ hbmEfficiency: m[k]!.eff!, callUs: m[k]!.callUs! });
  return {
    zeros: r('zeros'),
    full: r('full'),
    add: r('add'),
    cast: r('cast'),
    copyBox: {
      hbmEfficiency: 2 / (1 / m.copy!.eff! + 1 / m['copy-quarter']!.eff!),
      callUs: (m.copy!.callUs! + m['copy-quarter']!.callUs!) / 2,
    },
  };
}

/**
 * Read `--calibration FILE`: a Calibration object (JSON), or bench records (JSON lines) applied
 * to the shipped calibration of the class they were measured on.
 */
export function loadCalibration(file: string): { calibration: Calibration; used: number; skipped: string[] } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(
      `--calibration: cannot read ${file} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  const trimmed = text.trim();
  try {
    const whole = JSON.parse(trimmed) as unknown;
    if (whole && typeof whole === 'object' && !Array.isArray(whole) && 'attention' in whole && 'gemm' in whole) {
      const c = whole as Calibration;
      if (!GPU_PRESETS[c.gpu])
        throw new UserError(
          `--calibration: gpu '${String(c.gpu)}' is not a preset (${Object.keys(GPU_PRESETS).join(', ')})`,
        );
      return { calibration: c, used: 0, skipped: [] };
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    // not one JSON document: JSON lines
  }
  const records: RecordLike[] = [];
  trimmed.split('\n').forEach((line, i) => {
    if (!line.trim()) return;
    try {
      records.push(JSON.parse(line) as RecordLike);
    } catch {
      throw new UserError(`--calibration: ${file} line ${i + 1} is not JSON`);
    }
  });
  const first = records.map(gpuOfRecord).find((g) => g);
  if (!first) throw new UserError(`--calibration: no record in ${file} names a known GPU (env.gpus)`);
  const base = { ...CLASS_CALIBRATIONS[first.class], gpu: CLASS_CALIBRATIONS[first.class].gpu };
  return applyRecords(base, records);
}
