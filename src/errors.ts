/**
 * Errors that pmpd reports to the user as one line and an exit code.
 *
 * A `PmpdError` is a problem with the user's input (a file, a flag value, a model):
 * the CLI prints its message alone and exits 1 (a malformed command line exits 2, as
 * commander reports it). Anything else is a bug and is printed with its stack.
 */
export class PmpdError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "PmpdError";
  }
}
