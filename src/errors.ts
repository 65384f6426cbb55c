/**
 * Errors that pmpd reports to the user as one line and an exit code.
 *
 * A `PmpdError` is a problem with the user's input (a file, a flag value, a model):
 * the CLI prints its message alone and exits 1. A `UsageError` is a malformed command
 * line and exits 2, as commander does for unknown options. Anything else is a bug and
 * is printed with its stack.
 */
export class PmpdError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PmpdError";
  }
}

export class UsageError extends PmpdError {
  override readonly exitCode: number = 2;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Throws a PmpdError whose message starts with the file it is about. */
export function fileError(file: string, problem: string): never {
  throw new PmpdError(`${file}: ${problem}`);
}
