// A UserError is bad input the user can fix: the CLI prints its one-line message and exits 2.
// Any other exception is a bug and keeps its stack trace.
export class UserError extends Error {
  override name = 'UserError';
}

// A RunFailure is a failure at run time that is not a bug (a communication timeout, a disk that
// filled while writing): the CLI prints its one-line message and exits 1.
export class RunFailure extends Error {
  override name = 'RunFailure';
}
