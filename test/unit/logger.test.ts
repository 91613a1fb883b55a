// The two forms of a log line: JSON for machines, and LOG_FORMAT=pretty for people; secrets are
// kept out of both.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger, type LoggerOptions } from '../../src/logger.js';

const SECRET = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCY';
/** `[2026-01-31 12:00:00.000 +0100] INFO: ` */
const PRETTY_START =
  /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} [+-]\d{4}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[/;

function capture(options: Omit<LoggerOptions, 'destination'> = {}) {
  const written: string[] = [];
  const logger = createLogger('debug', {
    ...options,
    destination: { write: (chunk: string) => void written.push(chunk) },
  });
  return { logger, written };
}

const isJson = (text: string): boolean => {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
};

describe('LOG_FORMAT=json (the default)', () => {
  test('one JSON object a line, with the level as a number and the context as fields', () => {
    const { logger, written } = capture();
    logger.info({ uploadId: 'run-42', path: 'a b.txt' }, 'file uploaded');
    assert.equal(written.length, 1);
    const line = JSON.parse(written[0]!) as Record<string, unknown>;
    assert.equal(line.level, 30);
    assert.equal(line.msg, 'file uploaded');
    assert.equal(line.uploadId, 'run-42');
    assert.equal(line.path, 'a b.txt');
  });
});

describe('LOG_FORMAT=pretty', () => {
  test('time, level, message and the context as key=value, on one line', () => {
    const { logger, written } = capture({ format: 'pretty' });
    logger.warn(
      { uploadId: 'run-42', path: 'raw/a b.txt', key: 'pre/raw/a b.txt', attempt: 2, url: '/x?status=all' },
      'file failed; retrying',
    );
    // Written within the call, in this thread: nothing waits in a queue to be formatted.
    assert.equal(written.length, 1);
    const text = written[0]!;
    assert.ok(!isJson(text), text);
    assert.ok(text.endsWith('\n'));
    assert.equal(text.split('\n').length, 2, 'one line');
    assert.match(text, PRETTY_START);
    assert.match(text, /WARN: file failed; retrying /);
    assert.match(text, / uploadId=run-42 /);
    assert.match(text, / path="raw\/a b\.txt" /, 'a value with a space is quoted');
    assert.match(text, / key="pre\/raw\/a b\.txt" /);
    assert.match(text, / attempt=2 /);
    assert.match(text, / url=\/x\?status=all\n$/);
    assert.doesNotMatch(text, /pid=|hostname=/);
  });

  test('every level is named', () => {
    const { logger, written } = capture({ format: 'pretty' });
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.error('e');
    logger.fatal('f');
    assert.deepEqual(
      written.map((text) => PRETTY_START.exec(text)?.[1]),
      ['DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL'],
    );
  });

  test('objects and lists are shown as JSON, and an error is followed by its stack', () => {
    const { logger, written } = capture({ format: 'pretty' });
    const error = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    logger.error({ err: error, roots: ['/a', '/b c'], s3: { region: 'eu' } }, 'upload failed');
    const [head, ...stack] = written[0]!.trimEnd().split('\n');
    assert.match(
      head!,
      /ERROR: upload failed err="disk full" err\.code=ENOSPC roots=\["\/a","\/b c"\] s3=\{"region":"eu"\}$/,
    );
    assert.match(stack[0]!, /^ {4}Error: disk full$/);
    assert.ok(stack.length > 1 && stack.slice(1).every((line) => /^ {8}at /.test(line)), stack.join('\n'));
  });

  test('control characters in a message or a value are escaped: a file name cannot forge a line', () => {
    const { logger, written } = capture({ format: 'pretty' });
    logger.info(
      { path: 'evil\n[2026-01-01 00:00:00.000 +0000] INFO: forged\u001b[2J\u009b' },
      'seen\r\nagain',
    );
    const text = written[0]!;
    assert.equal(text.split('\n').length, 2, text);
    // eslint-disable-next-line no-control-regex
    assert.doesNotMatch(text, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    assert.match(
      text,
      /seen\\r\\nagain path="evil\\n\[2026-01-01 00:00:00\.000 \+0000\] INFO: forged\\u001b\[2J\\u009b"/,
    );
  });

  test('secrets are censored, by field name and wherever their value appears', () => {
    const { logger, written } = capture({ format: 'pretty', secrets: [SECRET] });
    logger.info({ s3: { secretAccessKey: 'anything-at-all' }, note: `key ${SECRET}` }, `using ${SECRET}`);
    logger.error({ err: new Error(`refused ${SECRET}`) }, 'failed');
    const text = written.join('');
    assert.ok(!text.includes(SECRET), text);
    assert.ok(!text.includes('anything-at-all'), text);
    assert.match(text, /using \[redacted\] /);
    assert.match(text, /"secretAccessKey":"\[redacted\]"/);
  });

  test('colours only when asked for', () => {
    const plain = capture({ format: 'pretty', colorize: false });
    plain.logger.warn({ uploadId: 'u' }, 'careful');
    assert.doesNotMatch(plain.written[0]!, ANSI);
    const coloured = capture({ format: 'pretty', colorize: true });
    coloured.logger.warn({ uploadId: 'u' }, 'careful');
    assert.match(coloured.written[0]!, ANSI);
  });

  test('lines written to a destination other than the terminal have no colours by default', () => {
    const { logger, written } = capture({ format: 'pretty' });
    logger.error('plain');
    assert.doesNotMatch(written[0]!, ANSI);
  });
});
