// Every way a command can fail, turned into one line for stderr and an exit code (docs/cli.md).
import type { CommanderError } from 'commander';
import { ApiRequestError, ServiceUnreachableError } from './api-client.js';
import { CliError, EXIT, type ExitCode } from './exit-codes.js';

/** Words added to an API error where the CLI knows the flag that changes the answer. */
const HINTS: Record<string, string> = {
  unauthorized: 'pass the token with --token or the API_TOKEN environment variable',
  upload_overlaps: 'add --allow-overlap if both uploads are meant',
};

/**
 * The exit code of an HTTP error: 404 (no such upload) and anything the service could not do (5xx,
 * a timeout) say "try later or elsewhere" (3); every other 4xx is a request that cannot succeed as
 * written, however often it is sent, so the command line must change (2). That includes 401: a
 * missing or wrong token is fixed in the arguments or the environment, like any other.
 */
export function exitCodeOfStatus(status: number): ExitCode {
  if (status === 404 || status === 408 || status >= 500) return EXIT.unavailable;
  return EXIT.usage;
}

export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ServiceUnreachableError) return new CliError(error.message, EXIT.unavailable);
  if (error instanceof ApiRequestError) {
    // A message often says already what its details say; a detail is added only when it does not.
    const fields = error.details
      .filter((detail) => !error.message.includes(detail.message))
      .map((detail) => `${detail.field}: ${detail.message}`);
    const hint = HINTS[error.code];
    const message = [
      error.message,
      ...(fields.length > 0 ? [fields.join('; ')] : []),
      ...(hint ? [hint] : []),
    ]
      .map((part) => part.replace(/\.$/, ''))
      .join('; ');
    return new CliError(`${message} (${error.code}, HTTP ${error.status})`, exitCodeOfStatus(error.status));
  }
  const trace = error instanceof Error ? (error.stack ?? error.message) : String(error);
  return new CliError(`unexpected error, a bug of the CLI: ${trace}`, EXIT.internal);
}

/** Commander's own exits: --help and --version are successes, every other one is a usage error. */
export function exitCodeOfCommander(error: CommanderError): ExitCode {
  return error.code === 'commander.helpDisplayed' || error.code === 'commander.version'
    ? EXIT.ok
    : EXIT.usage;
}
