// The on-disk cubin cache in front of NVRTC. The key hashes everything that changes the
// machine code: the source, the options (architecture and include paths among them), the
// name expressions, the device and the driver and NVRTC versions. Entries are written to a
// temporary file and renamed, so concurrent ranks compiling the same kernel never read half a file.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CompileRequest {
  source: string;
  name: string;
  /** The complete NVRTC option list (architecture included). */
  options: readonly string[];
  /** C++ names (e.g. template instantiations) whose mangled names are wanted. */
  nameExpressions: readonly string[];
}

export interface Program {
  cubin: Uint8Array;
  log: string;
  /** name expression → lowered (mangled) name */
  lowered: Record<string, string>;
}

export interface CompileTarget {
  device: string;
  cc: readonly [number, number];
  driver: number;
  nvrtc: string;
}

const FORMAT = 1;

export function cubinCacheKey(req: CompileRequest, target: CompileTarget): string {
  const h = createHash('sha256');
  h.update(
    JSON.stringify({ format: FORMAT, name: req.name, options: req.options, names: req.nameExpressions, target }),
  );
  h.update('\0');
  h.update(req.source);
  return h.digest('hex');
}

/** WEFT_CACHE_DIR, else $XDG_CACHE_HOME/weft/cubin, else ~/.cache/weft/cubin. */
export function defaultCacheDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  if (env.WEFT_CACHE_DIR) return env.WEFT_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'weft', 'cubin');
}

/** Cache files: a 4-byte little-endian header length, a JSON header, then the cubin bytes. */
export class CubinCache {
  private warned = false;
  constructor(readonly dir: string | null) {}

  private file(key: string): string {
    return path.join(this.dir!, `${key}.cubin`);
  }

  get(key: string): Program | undefined {
    if (!this.dir) return undefined;
    let buf: Buffer;
    try {
      buf = readFileSync(this.file(key));
    } catch {
      return undefined;
    }
    try {
      const hlen = buf.readUInt32LE(0);
      const header = JSON.parse(buf.subarray(4, 4 + hlen).toString('utf8')) as {
        log: string;
        lowered: Record<string, string>;
        bytes: number;
      };
      const cubin = new Uint8Array(buf.subarray(4 + hlen));
      if (cubin.length !== header.bytes) return undefined; // truncated: recompile
      return { cubin, log: header.log, lowered: header.lowered };
    } catch {
      return undefined;
    }
  }

  put(key: string, prog: Program): void {
    if (!this.dir) return;
    try {
      mkdirSync(this.dir, { recursive: true });
      const header = Buffer.from(
        JSON.stringify({ log: prog.log, lowered: prog.lowered, bytes: prog.cubin.length }),
        'utf8',
      );
      const len = Buffer.alloc(4);
      len.writeUInt32LE(header.length, 0);
      const tmp = `${this.file(key)}.${process.pid}.tmp`;
      writeFileSync(tmp, Buffer.concat([len, header, prog.cubin]));
      renameSync(tmp, this.file(key));
    } catch (e) {
      // an unwritable cache slows later runs but must not fail this one
      if (!this.warned)
        process.stderr.write(
          `weft: cubin cache ${this.dir} not writable (${e instanceof Error ? e.message : e}); compiling without it\n`,
        );
      this.warned = true;
    }
  }
}

export interface Compiled {
  program: Program;
  key: string;
  hit: boolean;
  ms: number;
}

/** Look the request up in the cache; compile and store it on a miss. */
export function compileCached(
  req: CompileRequest,
  target: CompileTarget,
  cache: CubinCache,
  compile: (req: CompileRequest) => Program,
): Compiled {
  const t0 = performance.now();
  const key = cubinCacheKey(req, target);
  const cached = cache.get(key);
  if (cached) return { program: cached, key, hit: true, ms: performance.now() - t0 };
  const program = compile(req);
  cache.put(key, program);
  return { program, key, hit: false, ms: performance.now() - t0 };
}
