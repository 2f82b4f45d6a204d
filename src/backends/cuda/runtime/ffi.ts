// koffi, the FFI that reaches the GPU libraries, is an optional dependency: it is imported
// lazily, by the CUDA backend alone, and never inside worker_threads (CPU ranks stay FFI-free).
// Only the small part of koffi's API that weft uses is typed here.
import { isMainThread } from 'node:worker_threads';

export type NativeFn = ((...args: unknown[]) => unknown) & { async?: unknown };

export interface NativeLib {
  func(prototype: string): NativeFn;
  unload(): void;
}

export interface Koffi {
  load(path: string): NativeLib;
  struct(name: string, def: Record<string, unknown>): unknown;
  array(type: string, length: number, hint?: string): unknown;
  sizeof(type: unknown): number;
  version: string;
}

let koffi: Koffi | undefined;

class FfiUnavailable extends Error {}

/** koffi, imported on first use. Throws FfiUnavailable with one line when it is missing. */
export async function loadKoffi(): Promise<Koffi> {
  if (koffi) return koffi;
  if (!isMainThread)
    throw new FfiUnavailable('the CUDA backend runs only on the main thread of a process, not in worker_threads');
  const name = 'koffi'; // a variable, so that TypeScript does not require the optional package
  try {
    const mod = (await import(name)) as { default?: Koffi } & Koffi;
    koffi = mod.default ?? mod;
  } catch (e) {
    throw new FfiUnavailable(
      `the koffi package (optional dependency, needed for CUDA) could not be loaded: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`,
    );
  }
  return koffi;
}

/** The koffi module once loadKoffi() has succeeded. */
export function koffiSync(): Koffi {
  if (!koffi) throw new Error('koffi not loaded yet (call loadKoffi first)');
  return koffi;
}

/**
 * Bind each prototype; a missing symbol names the library. Entries whose name is a list of
 * alternatives ('cuEventElapsedTime_v2|cuEventElapsedTime') take the first that exists.
 */
export function bind<K extends string>(
  lib: NativeLib,
  libName: string,
  protos: Record<K, string>,
): Record<K, NativeFn> {
  const out = {} as Record<K, NativeFn>;
  for (const key of Object.keys(protos) as K[]) {
    const proto = protos[key];
    const m = /^(.*?[\s*])([\w|]+)(\(.*)$/s.exec(proto);
    if (!m) throw new Error(`bad prototype ${proto}`);
    const names = m[2]!.split('|');
    let fn: NativeFn | undefined;
    const errors: string[] = [];
    for (const n of names) {
      try {
        fn = lib.func(`${m[1]}${n}${m[3]}`);
        break;
      } catch (e) {
        errors.push(`${n}: ${e instanceof Error ? e.message : e}`);
      }
    }
    if (!fn) throw new Error(`${libName} lacks ${names.join(' or ')} (${errors.join('; ')})`);
    out[key] = fn;
  }
  return out;
}
