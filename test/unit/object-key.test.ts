import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  keyProblem,
  keySpacesOverlap,
  MAX_KEY_BYTES,
  MAX_PREFIX_BYTES,
  normalizePrefix,
  objectKeyFor,
  prefixProblem,
} from '../../src/domain/object-key.js';

describe('objectKeyFor', () => {
  it('puts the relative path under the prefix, with or without a trailing slash', () => {
    assert.equal(objectKeyFor('pre', 'a/b.txt'), 'pre/a/b.txt');
    assert.equal(objectKeyFor('pre/', 'a/b.txt'), 'pre/a/b.txt');
    assert.equal(objectKeyFor('deep/pre', 'b.txt'), 'deep/pre/b.txt');
  });

  it('uses the relative path alone when the prefix is empty', () => {
    assert.equal(objectKeyFor('', 'a/b.txt'), 'a/b.txt');
    assert.equal(objectKeyFor('/', 'b.txt'), 'b.txt');
  });

  it('never produces a double slash', () => {
    for (const prefix of ['/pre', 'pre//', '//pre//x//', 'pre/']) {
      const key = objectKeyFor(prefix, '/a/b.txt');
      assert.ok(!key.includes('//'), `${prefix} gave ${key}`);
      assert.ok(!key.startsWith('/'), `${prefix} gave ${key}`);
    }
    assert.equal(objectKeyFor('//pre//x//', 'a/b.txt'), 'pre/x/a/b.txt');
  });

  it('keeps spaces and non-ASCII characters as they are', () => {
    assert.equal(objectKeyFor('photos 2024', 'été/plage 1.jpg'), 'photos 2024/été/plage 1.jpg');
  });

  it('keeps characters that URLs, shells and globs treat specially, with no encoding or decoding', () => {
    for (const name of [
      'a+b',
      '100%',
      '%20',
      'x%2Fy',
      '#?&=',
      `it's "quoted"`,
      'back\\slash',
      '-dash',
      '...',
      ' a b ',
      '😀',
    ]) {
      assert.equal(objectKeyFor('pre', `dir/${name}`), `pre/dir/${name}`, name);
    }
  });

  it('keeps the Unicode form of the path: NFC and NFD names are two keys, each its own bytes', () => {
    const nfc = 'caf\u00e9.txt';
    const nfd = 'cafe\u0301.txt';
    const nfcKey = objectKeyFor('p', nfc);
    const nfdKey = objectKeyFor('p', nfd);
    assert.notEqual(nfcKey, nfdKey);
    assert.deepEqual(Buffer.from(nfcKey), Buffer.concat([Buffer.from('p/'), Buffer.from(nfc)]));
    assert.deepEqual(Buffer.from(nfdKey), Buffer.concat([Buffer.from('p/'), Buffer.from(nfd)]));
  });
});

describe('objectKeyFor at the 1024-byte limit', () => {
  const bytes = (text: string): number => Buffer.byteLength(text);

  it('a full-length prefix and path make a key of exactly 1024 bytes, which S3 accepts', () => {
    const prefix = 'p'.repeat(MAX_PREFIX_BYTES);
    // 512 + '/' + 511 = 1024
    const path = `${'d'.repeat(255)}/${'f'.repeat(255)}`;
    const key = objectKeyFor(prefix, path);
    assert.equal(bytes(key), MAX_KEY_BYTES);
    assert.equal(keyProblem(key), null);
    assert.match(keyProblem(`${key}x`) ?? '', /1025 bytes of UTF-8; S3 allows at most 1024/);
  });

  it('counts bytes, not characters, with a multibyte character at the boundary', () => {
    const prefix = 'ü'.repeat(100); // 200 bytes, 100 characters
    const folders = `${'é'.repeat(100)}/${'é'.repeat(100)}/${'é'.repeat(100)}`; // 602 bytes
    const base = `${prefix}/${folders}/`;
    const room = MAX_KEY_BYTES - bytes(base); // 220 bytes for the name
    assert.equal(room, 220);
    const fits = objectKeyFor(prefix, `${folders}/${'n'.repeat(room - 4)}😀`);
    assert.equal(bytes(fits), MAX_KEY_BYTES);
    assert.ok(fits.length < 700, 'far fewer characters than bytes');
    assert.equal(keyProblem(fits), null);
    // One 'n' more, and the emoji's 4 bytes straddle the limit: 1025.
    const straddles = objectKeyFor(prefix, `${folders}/${'n'.repeat(room - 3)}😀`);
    assert.ok(straddles.startsWith(base));
    assert.match(keyProblem(straddles) ?? '', /1025 bytes of UTF-8/);
    const twoBytes = objectKeyFor(prefix, `${folders}/${'n'.repeat(room - 1)}é`);
    assert.match(keyProblem(twoBytes) ?? '', /1025 bytes of UTF-8/);
  });

  it('with no prefix the path alone is the key, and the same limit applies', () => {
    const path = `${'é'.repeat(127)}/${'é'.repeat(127)}/${'é'.repeat(127)}/${'é'.repeat(127)}/${'x'.repeat(4)}`;
    assert.equal(bytes(objectKeyFor('', path)), MAX_KEY_BYTES);
    assert.equal(keyProblem(objectKeyFor('', path)), null);
    assert.match(keyProblem(objectKeyFor('', `${path}y`)) ?? '', /1025 bytes/);
  });
});

describe('normalizePrefix', () => {
  it('trims leading and trailing slashes and collapses repeated ones', () => {
    assert.equal(normalizePrefix(''), '');
    assert.equal(normalizePrefix('/'), '');
    assert.equal(normalizePrefix('///'), '');
    assert.equal(normalizePrefix('a'), 'a');
    assert.equal(normalizePrefix('/a/b/'), 'a/b');
    assert.equal(normalizePrefix('a//b///c'), 'a/b/c');
  });
});

describe('prefixProblem', () => {
  it('accepts ordinary prefixes, including the empty one', () => {
    for (const prefix of ['', 'backups', 'backups/2024/', 'dots.in.names', '..hidden', 'é t é']) {
      assert.equal(prefixProblem(prefix), null, prefix);
    }
    assert.equal(prefixProblem('x'.repeat(MAX_PREFIX_BYTES)), null);
  });

  it("rejects '.' and '..' segments", () => {
    assert.match(prefixProblem('a/../b') ?? '', /'\.\.' segment/);
    assert.match(prefixProblem('..') ?? '', /'\.\.' segment/);
    assert.match(prefixProblem('./a') ?? '', /'\.' segment/);
    assert.match(prefixProblem('a/.') ?? '', /'\.' segment/);
  });

  it('rejects a NUL and control characters', () => {
    assert.match(prefixProblem('a\0b') ?? '', /NUL/);
    assert.match(prefixProblem('a\nb') ?? '', /control character \(U\+000A\)/);
    assert.match(prefixProblem('a\u007fb') ?? '', /control character \(U\+007F\)/);
  });

  it('rejects every C0 and C1 control character and DEL, and nothing next to them', () => {
    const controls = [
      ...Array.from({ length: 0x20 }, (_, code) => code),
      0x7f,
      ...Array.from({ length: 0x20 }, (_, code) => 0x80 + code),
    ];
    for (const code of controls) {
      const hex = code.toString(16).toUpperCase().padStart(4, '0');
      const problem = prefixProblem(`runs/${String.fromCodePoint(code)}x`);
      assert.match(
        problem ?? 'accepted',
        code === 0 ? /NUL/ : new RegExp(`control character \\(U\\+${hex}\\)`),
        hex,
      );
    }
    // Their neighbours are printable: '~' before DEL, NBSP and '¡' after C1, and 'ÿ'.
    for (const neighbour of ['\u00a0', '\u007e', '\u00ff', '\u00a1']) {
      assert.equal(prefixProblem(`runs/${neighbour}x`), null, neighbour);
    }
  });

  it('rejects a prefix that is not valid Unicode', () => {
    assert.match(prefixProblem('a\ud800b') ?? '', /lone surrogate/);
  });

  it('rejects a prefix longer than the limit, counted in UTF-8 bytes', () => {
    assert.match(prefixProblem('x'.repeat(MAX_PREFIX_BYTES + 1)) ?? '', /513 bytes of UTF-8; at most 512/);
    // 'é' is two bytes: 257 of them are 514 bytes though only 257 characters.
    assert.match(prefixProblem('é'.repeat(257)) ?? '', /514 bytes/);
  });
});

describe('keySpacesOverlap', () => {
  const overlapping: [string, string][] = [
    ['', ''],
    ['', 'runs'],
    ['', 'runs/42/raw'],
    ['runs', 'runs'],
    ['runs', 'runs/42'],
    ['runs', 'runs/42/raw'],
    ['runs/42', 'runs/42'],
  ];
  const apart: [string, string][] = [
    ['runs', 'runs2'],
    ['runs', 'run'],
    ['runs/4', 'runs/42'],
    ['runs/42', 'runs/43'],
    ['a/b', 'a/c/b'],
    ['Runs', 'runs'],
  ];
  const inBucket = (bucket: string, prefix: string) => ({ bucket, prefix });

  it('in the same bucket: one prefix is the other or one of its folders, segment by segment', () => {
    for (const [a, b] of overlapping) {
      assert.equal(keySpacesOverlap(inBucket('x', a), inBucket('x', b)), true, `'${a}' and '${b}'`);
      assert.equal(keySpacesOverlap(inBucket('x', b), inBucket('x', a)), true, `'${b}' and '${a}'`);
    }
    for (const [a, b] of apart) {
      assert.equal(keySpacesOverlap(inBucket('x', a), inBucket('x', b)), false, `'${a}' and '${b}'`);
      assert.equal(keySpacesOverlap(inBucket('x', b), inBucket('x', a)), false, `'${b}' and '${a}'`);
    }
  });

  it('never across buckets', () => {
    for (const [a, b] of overlapping) {
      assert.equal(keySpacesOverlap(inBucket('x', a), inBucket('y', b)), false, `'${a}' and '${b}'`);
    }
  });
});

describe('keyProblem', () => {
  it('accepts keys up to 1024 bytes of UTF-8', () => {
    assert.equal(keyProblem('a/b.txt'), null);
    assert.equal(keyProblem('k'.repeat(MAX_KEY_BYTES)), null);
    assert.equal(keyProblem('😀'.repeat(MAX_KEY_BYTES / 4)), null);
  });

  it('rejects an empty key, a longer key and a key that is not valid Unicode', () => {
    assert.match(keyProblem('') ?? '', /empty/);
    assert.match(
      keyProblem('k'.repeat(MAX_KEY_BYTES + 1)) ?? '',
      /1025 bytes of UTF-8; S3 allows at most 1024/,
    );
    assert.match(keyProblem('é'.repeat(513)) ?? '', /1026 bytes/);
    assert.match(keyProblem('a\udc00') ?? '', /lone surrogate/);
  });
});
