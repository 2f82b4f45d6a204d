// Which backend runs weft: a small registry in the manner of onnxruntime's
// registerBackend/resolveBackend. Backends are tried by priority; one that cannot start says why
// in one line. With 'auto' weft falls back to the next (CUDA → CPU) and keeps the reason to
// show; a backend asked for by name that cannot start is the user's error (exit 2, that line).
import { UserError } from '../errors.js';
import type { Device } from '../device/device.js';

export type BackendName = 'cpu' | 'cuda';
const BACKEND_NAMES: readonly BackendName[] = ['cpu', 'cuda'];

export interface Backend {
  readonly name: BackendName;
  readonly device: Device;
  /** One line: what it runs on (e.g. 'NVIDIA H200 (sm_90a), driver 13.0'). */
  readonly description: string;
}

export interface BackendFactory {
  /** Higher is tried first by 'auto'. */
  priority: number;
  init(): Promise<Backend>;
}

export interface Resolved {
  backend: Backend;
  /** Backends that 'auto' tried before this one, and why each could not start. */
  skipped: { name: BackendName; reason: string }[];
}

const factories = new Map<BackendName, BackendFactory>();
const started = new Map<BackendName, Promise<Backend>>();

export function registerBackend(name: BackendName, factory: BackendFactory): void {
  factories.set(name, factory);
  started.delete(name);
}

/** The first line of an error's message: why a backend could not start. */
function reasonOf(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]!.trim();
}

function start(name: BackendName): Promise<Backend> {
  let p = started.get(name);
  if (!p) {
    const f = factories.get(name);
    if (!f) return Promise.reject(new Error(`no ${name} backend registered`));
    p = f.init();
    started.set(name, p);
    p.catch(() => started.delete(name)); // a failed start may be retried (e.g. after fixing the environment)
  }
  return p;
}

export async function resolveBackend(request: BackendName | 'auto' = 'auto'): Promise<Resolved> {
  if (request !== 'auto') {
    if (!BACKEND_NAMES.includes(request))
      throw new UserError(`unknown backend '${request}' (expected auto, ${BACKEND_NAMES.join(', ')})`);
    try {
      return { backend: await start(request), skipped: [] };
    } catch (e) {
      throw new UserError(`${request} backend unavailable: ${reasonOf(e)}`);
    }
  }
  const order = [...factories.entries()].sort((a, b) => b[1].priority - a[1].priority).map(([n]) => n);
  const skipped: Resolved['skipped'] = [];
  for (const name of order) {
    try {
      return { backend: await start(name), skipped };
    } catch (e) {
      skipped.push({ name, reason: reasonOf(e) });
    }
  }
  throw new UserError(`no backend could start: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}
