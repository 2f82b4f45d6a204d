// Every file weft writes for the user (attn outputs, timelines, reports, benchmark records) goes
// through here, under the rules `cp` follows: the path is checked before any work is done (its
// folder exists and is writable; it is not one of the inputs, however linked); a symbolic link
// is written through to its target, which stays where it is; a directory, device, FIFO or socket
// is refused, and so is a read-only file. A regular file is replaced atomically: written to a
// temporary file beside it, given the old file's permissions, then renamed over it, so a failed
// run leaves neither half a file nor a temporary one.
import {
  accessSync,
  appendFileSync,
  chmodSync,
  closeSync,
  constants,
  lstatSync,
  openSync,
  realpathSync,
  renameSync,
  statSync,
  type Stats,
  unlinkSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { RunFailure, UserError } from '../errors.js';

export interface OutputTarget {
  /** the path as the user gave it */
  readonly given: string;
  /** the file that is written: the final target of a symbolic link, else `given` */
  readonly file: string;
  /** permission bits of the file being replaced (a new file gets the umask's) */
  readonly mode?: number;
  /** input files the output must not be */
  readonly inputs: readonly string[];
}

const code = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? (e as Error).message;

function statOrUndefined(p: string, stat: (p: string) => Stats, fail: (why: string) => never): Stats | undefined {
  try {
    return stat(p);
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    return fail(code(e) === 'ENOTDIR' ? 'a part of the path is not a folder' : code(e));
  }
}

function writable(p: string): boolean {
  try {
    accessSync(p, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * Check that `given` can be written, before any work: call this when the options are read and pass
 * the result to writeOutput. `inputs` are files the run reads (the output must not be one of them).
 */
export function resolveOutput(given: string, inputs: readonly string[] = []): OutputTarget {
  const fail = (why: string): never => {
    throw new UserError(`cannot write ${given}: ${why}`);
  };
  if (given === '') fail('empty path');
  let file = given;
  const link = statOrUndefined(given, lstatSync, fail);
  if (link?.isSymbolicLink()) {
    try {
      file = realpathSync(given);
    } catch {
      fail('a symbolic link to nothing; weft does not write through a dangling link');
    }
  }
  const st = link?.isSymbolicLink() ? statOrUndefined(file, statSync, fail) : link;
  if (st) {
    if (st.isDirectory()) fail('it is a folder');
    if (!st.isFile()) fail('not a regular file (a device, FIFO or socket); weft replaces only regular files');
    // no write bit at all refuses even root, as `cp` without -f does for everyone else
    if ((st.mode & 0o222) === 0 || !writable(file)) fail('the file is read-only');
    for (const input of inputs) {
      let i: Stats | undefined;
      try {
        i = statSync(input);
      } catch {
        continue;
      } // an input that cannot be read is its reader's to report
      if (i.dev === st.dev && i.ino === st.ino) fail(`it is the input ${input}`);
    }
  }
  const dir = path.dirname(file);
  const d = statOrUndefined(dir, statSync, fail);
  if (!d) fail(`folder ${dir} does not exist`);
  if (!d!.isDirectory()) fail(`${dir} is not a folder`);
  if (!writable(dir)) fail(`folder ${dir} is not writable`);
  return st ? { given, file, mode: st.mode & 0o7777, inputs } : { given, file, inputs };
}

/** Check a folder that files will be created in (made, with its parents, when missing). */
export function resolveOutputDir(given: string): string {
  const fail = (why: string): never => {
    throw new UserError(`cannot write into ${given}: ${why}`);
  };
  let p = path.resolve(given);
  for (;;) {
    const st = statOrUndefined(p, statSync, fail);
    if (st) {
      if (!st.isDirectory()) fail(`${p} is not a folder`);
      if (!writable(p)) fail(`folder ${p} is not writable`);
      return given;
    }
    const up = path.dirname(p);
    if (up === p) fail('no part of the path exists');
    p = up;
  }
}

const asTarget = (t: OutputTarget | string): OutputTarget =>
  typeof t === 'string' ? resolveOutput(t) : resolveOutput(t.given, t.inputs);

/** Write `data` to a checked output (checked again now: the file system may have changed). */
export function writeOutput(target: OutputTarget | string, data: string | Uint8Array): void {
  const t = asTarget(target);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const tmp = path.join(
    path.dirname(t.file),
    `.${path.basename(t.file)}.${process.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o666);
    for (let at = 0; at < bytes.byteLength;) at += writeSync(fd, bytes, at, bytes.byteLength - at);
    closeSync(fd);
    fd = undefined;
    if (t.mode !== undefined) chmodSync(tmp, t.mode);
    renameSync(tmp, t.file);
  } catch (e) {
    if (fd !== undefined)
      try {
        closeSync(fd);
      } catch {
        /* already failing */
      }
    try {
      unlinkSync(tmp);
    } catch {
      /* it may not exist */
    }
    throw new RunFailure(`cannot write ${t.given}: ${code(e)}`);
  }
}

/** Append to a checked output (records kept as they are measured; a new file is created). */
export function appendOutput(target: OutputTarget | string, data: string): void {
  const t = asTarget(target);
  try {
    appendFileSync(t.file, data);
  } catch (e) {
    throw new RunFailure(`cannot write ${t.given}: ${code(e)}`);
  }
}
