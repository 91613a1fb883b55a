import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** Paths of fields that may hold secrets, wherever they appear in a log line's context. */
const REDACTED = [
  'secretAccessKey',
  'sessionToken',
  'accessKeyId',
  '*.secretAccessKey',
  '*.sessionToken',
  '*.accessKeyId',
  'req.headers.authorization',
  'headers.authorization',
];

export function createLogger(level: LogLevel): Logger {
  return pino({ level, redact: { paths: REDACTED, censor: '[redacted]' } });
}
