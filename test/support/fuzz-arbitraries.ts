// Generators for fuzzing the HTTP API: text that breaks assumptions (unicode, lone surrogates, NUL,
// `..`, percent signs, very long strings), JSON that is invalid, nested thousands deep or near the
// body limit, content types, query strings, and raw request lines and headers for a socket.
import fc from 'fast-check';

/** The app's body limit: bodies are generated on both sides of it. */
export const BODY_LIMIT_BYTES = 64 * 1024;

// prettier-ignore
export const EDGE_STRINGS = [
  '', ' ', '.', '..', '../..', '/', '//', '/..', '/../etc', '~', '\0', 'a\0b', '%00', '%', '%zz',
  '%2e%2e', '%2F', '%E0%A4%A', '\u202e', '\ud800', 'e\u0301', '\u00e9', '𝄞', '\ufeff', 'null',
  'undefined', '__proto__', 'constructor', 'prototype', 'hasOwnProperty', '{}', '[]', '\\',
  'C:\\Windows', '*', '**', '{a,b}', '[', '!(', '\n', '\r\n', '\t', "'", '"', '<script>', '$(id)',
  '${x}',
];

/** Long strings of one repeated grapheme, up to a few times the body limit. */
export const longText = fc
  .tuple(
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }),
    fc.integer({ min: 200, max: 2 * BODY_LIMIT_BYTES }),
  )
  .map(([unit, length]) => unit.repeat(Math.ceil(length / unit.length)));

export const shortText = fc.oneof(
  { weight: 3, arbitrary: fc.string() },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme' }) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary' }) },
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
);

export const text = fc.oneof({ weight: 10, arbitrary: shortText }, { weight: 1, arbitrary: longText });

export const validBucket = fc.stringMatching(/^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$/);

export const bucketName = fc.oneof(
  validBucket,
  fc.stringMatching(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/),
  text,
);

export const glob = fc.oneof(
  fc.constantFrom('*', '**', '*.txt', '**/*.csv', '{a,b}', '[a-z]*', '[', '***', '!(x)', '/abs/*', '../*'),
  text,
);

export const prefix = fc.oneof(
  fc.constantFrom('', 'a', 'a/', '/a', 'a//b', '../x', 'a/../b', './a', 'runs/42/', '\u00e9t\u00e9/', '..'),
  fc.webPath(),
  text,
);

export const anyValue = fc.oneof(text, fc.jsonValue({ maxDepth: 3 }));

export const absent = <T>(arbitrary: fc.Arbitrary<T>) => fc.option(arbitrary, { nil: undefined, freq: 3 });

/** JSON nested thousands of levels deep, written as text (a value that deep would not stringify fast). */
export const deeplyNested = fc
  .tuple(fc.integer({ min: 1, max: 20_000 }), fc.constantFrom('[', '{"source_folder":'))
  .map(([depth, open]) => `${open.repeat(depth)}1${(open === '[' ? ']' : '}').repeat(depth)}`);

// prettier-ignore
export const INVALID_JSON = [
  '{', '}', '{"a":}', '{"a" 1}', "{'source_folder':'/'}", 'NaN', 'undefined', '{"a":1,}', '[1,]',
  '{"a":"\\x"}', '"unterminated', '01', '-', '{"a":1}{"b":2}', 'nul', '\u0000',
];

export const invalidJson = fc.oneof(
  fc.constantFrom(...INVALID_JSON),
  fc.string().filter((candidate) => !parsesAsJson(candidate)),
);

export function parsesAsJson(candidate: string): boolean {
  try {
    JSON.parse(candidate);
    return true;
  } catch {
    return false;
  }
}

/** A JSON body within a few bytes of the limit, on either side. */
export const nearLimitBody = fc
  .integer({ min: -64, max: 64 })
  .map((delta) => JSON.stringify({ source_folder: 'x'.repeat(BODY_LIMIT_BYTES - 19 + delta) }));

// prettier-ignore
export const JSON_TYPES = [
  'application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8',
  'APPLICATION/JSON', 'application/json; charset=utf-16', 'application/json; charset=nonsense',
  'application/json; foo=bar; baz', 'application/json ;', 'application/json; charset="utf-8"',
];

// prettier-ignore
export const OTHER_TYPES = [
  'text/plain', 'text/plain; charset=utf-8', 'multipart/form-data; boundary=xyz',
  'multipart/form-data', 'application/x-www-form-urlencoded', 'application/octet-stream',
  'application/json-patch+json', 'application/vnd.api+json', 'application/jsonx', 'text/json',
  'json', '', ';', '*/*', 'application/*',
];

export const contentType = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...JSON_TYPES) },
  { weight: 3, arbitrary: fc.constantFrom(...OTHER_TYPES) },
  { weight: 1, arbitrary: fc.stringMatching(/^[ -~]{0,60}$/) },
  { weight: 2, arbitrary: fc.constant(undefined) },
);

/** Percent-encodes every byte of the UTF-8 text that is not unreserved (lone surrogates included). */
export function percentEncode(value: string): string {
  let encoded = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const char = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9._~-]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

/** Text for a URL: encoded as a client should, or left raw (raw `%`, `/`, `?` and `#` included). */
export const urlPart = (arbitrary: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.tuple(arbitrary, fc.boolean()).map(([value, encode]) => (encode ? percentEncode(value) : value));

/** A path parameter: one of the given ids, any text, very long, or dot segments, encoded or not. */
export const pathParameter = (ids: readonly string[]): fc.Arbitrary<string> =>
  urlPart(
    fc.oneof(
      { weight: 2, arbitrary: fc.constantFrom(...ids) },
      { weight: 4, arbitrary: shortText },
      { weight: 1, arbitrary: fc.integer({ min: 100, max: 2000 }).map((n) => 'a'.repeat(n)) },
      {
        weight: 1,
        arbitrary: fc.constantFrom('..', '../..', '%2e%2e', '..%2F..%2Fpackage.json', '.%2e', '%', '%zz'),
      },
    ),
  );

// prettier-ignore
export const QUERY_KEYS = [
  'status', 'limit', 'cursor', 'status[]', 'limit[0]', 'a[b]', '__proto__', 'constructor',
  'hasOwnProperty',
];

// prettier-ignore
export const QUERY_VALUES = [
  'all', 'pending', 'active', 'cancelled', 'in_progress', 'completed', 'failed', 'ALL', '0', '1',
  '2', '-1', '1000', '1001', '1e3', '0x10', '5.5', ' 5', '5 ', '+5', '99999999999999999999', 'NaN',
  'Infinity', '', '%', '%zz',
];

export const queryString = fc
  .array(
    fc.tuple(
      urlPart(fc.oneof(fc.constantFrom(...QUERY_KEYS), fc.string())),
      urlPart(
        fc.oneof(
          fc.constantFrom(...QUERY_VALUES),
          shortText,
          fc.nat().map(String),
          fc.integer({ min: 100, max: 5000 }).map((n) => '9'.repeat(n)),
        ),
      ),
    ),
    { maxLength: 5 },
  )
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([key, value]) => `${key}=${value}`).join('&')}`));

export const OTHER_METHODS = ['PUT', 'PATCH', 'OPTIONS', 'HEAD', 'DELETE', 'POST', 'GET'];

export const rawTarget = fc.oneof(
  fc.constantFrom(
    '/uploads/..',
    '/uploads/../..',
    '/uploads/../../package.json',
    '/docs/static/../../package.json',
    '/docs/static/..%2F..%2Fpackage.json',
    '/docs/static/%2e%2e/%2e%2e/package.json',
    '/docs/static/....//....//package.json',
    '/redoc/../../package.json',
    '/uploads/%',
    '/uploads/%zz',
    '/uploads/%E0%A4%A',
    '/uploads?status=%',
    '*',
    'http://localhost/uploads',
    '//uploads',
    '/./uploads',
    'uploads',
    '/uploads/\u00e9t\u00e9',
    '/uploads/\ud83d\ude00/files',
    '/uploads/a b',
    '/%00',
    '/uploads\\..\\',
  ),
  fc
    .tuple(
      fc.constantFrom('/uploads/', '/docs/static/', '/uploads/some-id/files?cursor='),
      fc.string({ unit: 'binary' }),
    )
    .map(([prefix, rest]) => prefix + rest.replace(/[\r\n ]/g, '')),
  fc.integer({ min: 1000, max: 40_000 }).map((n) => `/uploads/${'a'.repeat(n)}`),
);

export const rawHeaders = fc.oneof(
  fc.constant(''),
  fc.constantFrom(...JSON_TYPES, ...OTHER_TYPES).map((type) => `Content-Type: ${type}\r\n`),
  fc.constantFrom(
    'Content-Length: abc\r\n',
    'Content-Length: -1\r\n',
    'Content-Length: 1\r\nContent-Length: 2\r\n',
  ),
  fc.constantFrom('Transfer-Encoding: chunked\r\n\r\nzz\r\n', 'Transfer-Encoding: gzip, chunked\r\n'),
  fc.integer({ min: 1, max: 80 }).map((kib) => `X-Filler: ${'f'.repeat(kib * 1024)}\r\n`),
);

export const rawRequest = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'HEAD', 'PUT', 'GARBAGE'),
  target: rawTarget,
  headers: rawHeaders,
});
