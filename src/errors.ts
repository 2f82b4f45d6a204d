// A UserError is bad input the user can fix: the CLI prints its one-line message and exits 2.
// Any other exception is a bug and keeps its stack trace.
export class UserError extends Error {
  override name = 'UserError';
}
