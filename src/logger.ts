// Log lines on standard output, JSON or readable (LOG_FORMAT), with secrets kept out in two ways:
// fields that hold one are censored by name wherever they sit in a line's context, and the secret
// values themselves (the S3 keys and the API token) are replaced in each finished JSON line, before
// it is made readable, so that one quoted in a message or an error is censored too.
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogFormat, LogLevel } from './config.js';
import { prettyLines } from './log-pretty.js';

export type { Logger };

const CENSOR = '[redacted]';

const SECRET_FIELDS = ['secretAccessKey', 'sessionToken', 'accessKeyId', 'apiToken', 'authorization'];

/** Each secret field at the top of a line's context and up to three objects deep (s3, config.s3...). */
const REDACTED_PATHS = SECRET_FIELDS.flatMap((field) => [
  field,
  `*.${field}`,
  `*.*.${field}`,
  `*.*.*.${field}`,
]);

/** A value shorter than this is too common a string to censor everywhere it appears. */
const MIN_SCRUBBED_LENGTH = 8;

export interface LoggerOptions {
  /** Values never to print, wherever they appear (empty or undefined entries are ignored). */
  secrets?: readonly (string | undefined)[];
  /** Where the lines go: standard output by default (tests capture them here). */
  destination?: DestinationStream;
  /** 'json' by default. */
  format?: LogFormat;
  /** Colours in the pretty format; by default when the lines go to a terminal and NO_COLOR is unset. */
  colorize?: boolean;
}

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  // Synchronous, in both formats: the ready line is out when start-up ends, and a line logged
  // right before process.exit is not lost.
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
  const colorize =
    options.colorize ??
    (options.destination === undefined &&
      process.stdout.isTTY === true &&
      process.env.NO_COLOR === undefined);
  const output = options.format === 'pretty' ? prettified(destination, colorize) : destination;
  return pino(
    { level, redact: { paths: REDACTED_PATHS, censor: CENSOR } },
    scrubbing(output, options.secrets ?? []),
  );
}

/**
 * The destination, given each JSON line in its readable form. Formatted in this thread, line by
 * line, rather than by pino-pretty's transport in a worker thread, so that nothing is queued
 * between a log call and the output.
 */
function prettified(destination: DestinationStream, colorize: boolean): DestinationStream {
  const readable = prettyLines({ colorize });
  return {
    write(line: string) {
      destination.write(readable(line));
    },
  };
}

/** The destination, given each line with every secret value replaced (as written, and as escaped in JSON). */
function scrubbing(
  destination: DestinationStream,
  secrets: readonly (string | undefined)[],
): DestinationStream {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === undefined || secret.length < MIN_SCRUBBED_LENGTH) continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  if (forms.size === 0) return destination;
  const values = [...forms];
  return {
    write(line: string) {
      let scrubbed = line;
      for (const value of values) {
        if (scrubbed.includes(value)) scrubbed = scrubbed.replaceAll(value, CENSOR);
      }
      destination.write(scrubbed);
    },
  };
}
