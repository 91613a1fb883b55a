// The exit codes scripts may rely on (docs/cli.md), and the errors that end a command with one.

export const EXIT = {
  /** The command did what was asked. */
  ok: 0,
  /** Files failed: `status --wait` ended on a failed (or cancelled) upload, or `verify` found files not as uploaded. */
  filesFailed: 1,
  /** The command line is wrong, or the service refused the request as given (a 4xx other than 404). */
  usage: 2,
  /** The upload does not exist, or the service cannot be reached or could not answer (5xx). */
  unavailable: 3,
  /** A bug in the CLI itself (EX_SOFTWARE): its stack trace is printed. */
  internal: 70,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure that ends the command with a one-line message on stderr and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** A bad argument found by the CLI itself, before anything is sent. */
export function usageError(message: string): CliError {
  return new CliError(message, EXIT.usage);
}
