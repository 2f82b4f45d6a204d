// Bad input is the user's problem to fix, not a crash: it gets one line and exit code 2.
// Everything that throws UserError (MaskError and SafetensorsError are UserErrors) is reported
// that way. Running out of GPU memory is a limit, not a bug: one line, exit code 1. Anything
// else is a bug and keeps its stack trace.
import { CU_OUT_OF_MEMORY, GpuError } from '../backends/cuda/runtime/errors.js';
import { UserError } from '../errors.js';

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** The one line for a GPU out-of-memory error, or undefined for any other error. */
export function outOfMemoryLine(e: unknown): string | undefined {
  if (!(e instanceof GpuError && e.api === 'cuda' && e.code === CU_OUT_OF_MEMORY)) return undefined;
  return `weft: ${e.message.replace(/^.*?: out of device memory/, 'out of GPU memory')} — ` +
    'use a shorter sequence, fewer heads or more GPUs (`weft plan` predicts the memory a layout needs)';
}

/** Run a command body; user errors print `weft: <message>` and exit 2, running out of GPU memory one line and exit 1. */
export async function guard(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`weft: ${e.message}\n`);
      process.exit(2);
    }
    const oom = outOfMemoryLine(e);
    if (oom) {
      process.stderr.write(`${oom}\n`);
      process.exit(1);
    }
    throw e;
  }
}
