// The form of a log line people read (LOG_FORMAT=pretty): pino-pretty's time and level, then the
// message and the line's context as key=value pairs on the same line; an error's stack follows on
// indented lines. A value is quoted when it holds a space, a quote or a control character, so that a
// file name can neither forge a line nor steer the terminal.
import { createRequire } from 'node:module';
import type PinoPretty from 'pino-pretty';

/** Fields every line has, shown by pino-pretty itself (time, level) or not worth a reader's eye. */
const NOT_CONTEXT = new Set(['level', 'time', 'pid', 'hostname']);

// Control characters are what these two look for.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/gu;
// eslint-disable-next-line no-control-regex
const PLAIN = /^[^\s"'\\\u0000-\u001f\u007f-\u009f]+$/u;
const INDENT = '    ';

/** What pino-pretty hands a message formatter to colour text with (a colorette instance). */
type Paint = (text: string) => string;

export interface PrettyLineOptions {
  /** ANSI colours for the level, the message and the field names (a terminal). */
  colorize: boolean;
}

/** A function from one JSON log line to its readable form, ending with a newline. */
export function prettyLines(options: PrettyLineOptions): (jsonLine: string) => string {
  // Loaded only when asked for: pino-pretty takes about 50 ms to load, and JSON is the default.
  const pinoPretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pinoPretty.prettyFactory({
    colorize: options.colorize,
    translateTime: 'SYS:standard',
    ignore: 'pid,hostname',
    hideObject: true,
    messageFormat: (line, messageKey, _level, { colors }) => readable(line, messageKey, colors.gray),
  });
}

/** The message, the context as key=value, then the stack of each error in the context. */
function readable(line: Record<string, unknown>, messageKey: string, paintKey: Paint): string {
  const message = line[messageKey];
  const parts = message === undefined ? [] : [escaped(String(message))];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(line)) {
    if (key === messageKey || NOT_CONTEXT.has(key) || value === undefined) continue;
    if (isSerializedError(value)) {
      const { type: _type, message: errorMessage, stack, ...more } = value;
      parts.push(`${paintKey(`${key}=`)}${quoted(errorMessage)}`);
      for (const [name, detail] of Object.entries(more)) {
        parts.push(`${paintKey(`${key}.${name}=`)}${quoted(detail)}`);
      }
      stacks.push(indented(stack));
    } else {
      parts.push(`${paintKey(`${key}=`)}${quoted(value)}`);
    }
  }
  return [parts.join(' '), ...stacks].join('\n');
}

/** pino's error serializer gives {type, message, stack, ...the error's own fields}. */
function isSerializedError(
  value: unknown,
): value is { type?: unknown; message?: unknown; stack: string; [field: string]: unknown } {
  return (
    typeof value === 'object' && value !== null && typeof (value as { stack?: unknown }).stack === 'string'
  );
}

function quoted(value: unknown): string {
  if (typeof value === 'string') return PLAIN.test(value) ? value : escaped(JSON.stringify(value));
  if (typeof value === 'object' && value !== null) return escaped(JSON.stringify(value));
  return String(value);
}

const SHORT_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** Control characters written as escapes (JSON.stringify leaves DEL and the C1 ones as they are). */
function escaped(text: string): string {
  return text.replace(
    CONTROL,
    (char) => SHORT_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function indented(stack: string): string {
  return stack
    .split('\n')
    .map((stackLine) => INDENT + escaped(stackLine))
    .join('\n');
}
