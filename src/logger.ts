// JSON log lines on standard output, with secrets kept out in two ways: fields that hold one are
// censored by name wherever they sit in a line's context, and the secret values themselves (the
// S3 keys and the API token) are replaced in each finished line, so that one quoted in a message
// or an error is censored too.
import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

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
}

export function createLogger(level: LogLevel, options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 1, sync: true });
  return pino(
    { level, redact: { paths: REDACTED_PATHS, censor: CENSOR } },
    scrubbing(destination, options.secrets ?? []),
  );
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
