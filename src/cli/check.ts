// `weft run --check` on CPU ranks, for every mode: relative errors against the f64 reference and
// the tolerance of the arithmetic type (f64 exact to rounding; f32 to its own precision), and the
// per-rank table every mode prints. One place, so the modes cannot drift apart.
import { type HostTensor, relError } from '../tensor/host.js';

const CPU_TOLERANCE = { f64: 1e-10, f32: 1e-5 } as const;

export interface Check {
  errors: Record<string, number>;
  tolerance: number;
  ok: boolean;
}

/** `ok` also needs `extraOk` (a condition the errors do not show, e.g. ranks that must agree). */
export function checkErrors(errors: Record<string, number>, dtype: 'f64' | 'f32', extraOk = true): Check {
  const tolerance = CPU_TOLERANCE[dtype];
  return { errors, tolerance, ok: extraOk && Object.values(errors).every((e) => e <= tolerance) };
}

type Named = Partial<Record<'out' | 'lse' | 'dq' | 'dk' | 'dv', HostTensor>>;

/** Every tensor both sides hold, compared. */
export function checkTensors(got: Named, want: Named, dtype: 'f64' | 'f32'): Check {
  const errors: Record<string, number> = {};
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const g = got[name],
      w = want[name];
    if (g && w) errors[name] = relError(g, w);
  }
  return checkErrors(errors, dtype);
}

/** "check … (relative error, tolerance T): out 1.2e-16, … — ok", with `note` before the verdict. */
export function checkLine(check: Check, what: string, note = ''): string {
  const errs = Object.entries(check.errors)
    .map(([n, e]) => `${n} ${e.toExponential(2)}`)
    .join(', ');
  return `check ${what} (relative error, tolerance ${check.tolerance}): ${errs}${note}${check.ok ? ' — ok' : ' — FAILED'}`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let x = bytes,
    u = 0;
  while (x >= 1024 && u < units.length - 1) {
    x /= 1024;
    u++;
  }
  return `${u === 0 ? x : x.toFixed(1)} ${units[u]}`;
}

interface RankRow {
  rank: number;
  area: number;
  messages: number;
  bytesSent: number;
  bytesReceived: number;
  computeMs?: number;
}

/** The per-rank lines; a compute column when the rows carry one. */
export function rankTable(rows: readonly RankRow[]): string[] {
  const compute = rows.some((r) => r.computeMs !== undefined);
  const c = (r: RankRow) => (compute ? `  ${(r.computeMs ?? 0).toFixed(1).padStart(10)}` : '');
  return [
    `rank${compute ? '  compute ms' : ''}        area  messages        sent    received`,
    ...rows.map(
      (r) =>
        `${String(r.rank).padStart(4)}${c(r)}  ${String(r.area).padStart(10)}  ${String(r.messages).padStart(8)}  ${formatBytes(r.bytesSent).padStart(10)}  ${formatBytes(r.bytesReceived).padStart(10)}`,
    ),
  ];
}
