// Bad input is the user's problem to fix, not a crash: it gets one line and exit code 2.
// Everything that throws UserError (MaskError and SafetensorsError are UserErrors) is reported
// that way; anything else is a bug and keeps its stack trace.
import { UserError } from '../errors.js';

export { UserError };

export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}

/** Run a command body; user errors print `weft: <message>` and exit 2. */
export async function guard(body: () => Promise<void> | void): Promise<void> {
  try {
    await body();
  } catch (e) {
    if (isUserError(e)) {
      process.stderr.write(`weft: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}
