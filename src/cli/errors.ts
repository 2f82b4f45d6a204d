// Bad input is the user's problem to fix, not a crash: it gets one line and exit code 2.
// Everything that throws UserError (MaskError and SafetensorsError are UserErrors) is reported
// that way, also when a CPU rank threw it. A failure at run time that is not a bug — a
// RunFailure such as a communication timeout (naming the rank and the operation), or running out
// of GPU memory — is one line and exit code 1. Anything else is a bug and keeps its stack trace.
import { RankError } from '../backends/cpu/comm/launch.js';
import { CU_OUT_OF_MEMORY, GpuError } from '../backends/cuda/runtime/errors.js';
import { RunFailure, UserError } from '../errors.js';

function isUserError(e: unknown): e is UserError {
  return e instanceof UserError || (e instanceof RankError && e.rankErrorName === 'UserError');
}

/** The one line and exit code for a failure that is not a bug, or undefined for a bug. */
export function failureLine(e: unknown): { line: string; code: 1 | 2 } | undefined {
  if (isUserError(e)) return { line: `weft: ${(e as Error).message}`, code: 2 };
  if (e instanceof RunFailure || (e instanceof RankError && e.rankErrorName === 'RunFailure'))
    return { line: `weft: ${e.message}`, code: 1 };
  const oom = outOfMemoryLine(e);
  return oom ? { line: oom, code: 1 } : undefined;
}

/** The one line for a GPU out-of-memory error, or undefined for any other error. */
export function outOfMemoryLine(e: unknown): string | undefined {
  if (!(e instanceof GpuError && e.api === 'cuda' && e.code === CU_OUT_OF_MEMORY)) return undefined;
  return (
    `weft: ${e.message.replace(/^.*?: out of device memory/, 'out of GPU memory')} — ` +
    'use a shorter sequence, fewer heads or more GPUs (`weft plan` predicts the memory a layout needs)'
  );
}

/** Run a command body; user errors print `weft: <message>` and exit 2, run-time failures one line and exit 1. */
export async function guard(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (e) {
    const f = failureLine(e);
    if (!f) throw e;
    process.stderr.write(`${f.line.split('\n')[0]}\n`);
    process.exit(f.code);
  }
}
