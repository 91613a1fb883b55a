import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePattern, DEFAULT_PATTERN, patternProblem } from '../../src/domain/pattern.js';

/** Asserts which of `paths` the pattern takes, and that it takes none of the others. */
function assertMatches(pattern: string, matching: string[], notMatching: string[]): void {
  const matches = compilePattern(pattern);
  for (const path of matching) assert.equal(matches(path), true, `'${pattern}' should match '${path}'`);
  for (const path of notMatching)
    assert.equal(matches(path), false, `'${pattern}' should not match '${path}'`);
}

describe('compilePattern', () => {
  it('takes every file, hidden ones included, with the default pattern', () => {
    assert.equal(DEFAULT_PATTERN, '**');
    assertMatches(
      DEFAULT_PATTERN,
      ['a', 'a.txt', 'sub/deep/c.bin', '.env', '.git/config', 'x/.hidden/y'],
      [],
    );
  });

  it('matches a pattern without a slash against the file name at any depth', () => {
    assertMatches(
      '*.txt',
      ['a.txt', 'sub/b.txt', 'sub/deep/c.txt'],
      ['a.csv', 'txt', 'a.txt.bak', 'sub.txt/a.csv'],
    );
  });

  it('matches a pattern with a slash against the whole relative path', () => {
    assertMatches('sub/*.txt', ['sub/a.txt'], ['a.txt', 'sub/deep/a.txt', 'other/sub/a.txt']);
    assertMatches('**/x/*.csv', ['x/a.csv', 'p/x/a.csv', 'p/q/x/a.csv'], ['x/y/a.csv', 'a.csv', 'xx/a.csv']);
    assertMatches('logs/**', ['logs/a', 'logs/b/c.gz'], ['a/logs/b', 'logsx/a']);
    assertMatches('sub/**/*.txt', ['sub/a.txt', 'sub/b/c.txt'], ['a.txt', 'sub/c.csv']);
  });

  it("anchors a name pattern at the top of the source folder with a leading './'", () => {
    assertMatches('./*.txt', ['a.txt', '.b.txt'], ['sub/a.txt']);
    assertMatches('./sub/*.txt', ['sub/a.txt'], ['x/sub/a.txt']);
  });

  it('treats hidden files and folders like any other', () => {
    assertMatches('*', ['.env', 'a', '.git/HEAD'], []);
    assertMatches('.*', ['.env', 'sub/.gitignore'], ['env']);
    assertMatches('**/.git/**', ['.git/HEAD', 'a/.git/objects/x'], ['a/git/x']);
  });

  it('supports ? for exactly one character of a name', () => {
    assertMatches('file?.log', ['file1.log', 'a/fileX.log'], ['file.log', 'file12.log']);
    assertMatches('a?c', ['abc'], ['a/c']);
  });

  it('supports bracket expressions: sets, ranges, negation and POSIX classes', () => {
    assertMatches('[abc].txt', ['a.txt', 'c.txt'], ['d.txt', '[abc].txt']);
    assertMatches('img[0-9].png', ['img3.png'], ['imga.png', 'img10.png']);
    assertMatches('[!a].txt', ['b.txt', '!.txt'], ['a.txt']);
    assertMatches('[^a].txt', ['b.txt'], ['a.txt']);
    assertMatches('[[:digit:]][[:alpha:]]', ['1a'], ['a1', '11']);
    assertMatches('[]a].txt', ['a.txt', '].txt'], ['b.txt', ']a.txt']);
    assertMatches('*.[cC][sS][vV]', ['a.csv', 'b.CSV', 'c.cSv'], ['a.tsv']);
  });

  it('supports brace alternatives, nested, and single-character ranges', () => {
    assertMatches('*.{jpg,png}', ['a.jpg', 'b/c.png'], ['a.gif']);
    assertMatches('{a,{b,c}}.txt', ['a.txt', 'b.txt', 'c.txt'], ['d.txt']);
    assertMatches('backup{,.old}', ['backup', 'backup.old'], ['backup.new']);
    assertMatches('{src,lib}/**/*.ts', ['src/a.ts', 'lib/x/y.ts'], ['test/a.ts']);
    assertMatches('part{1..3}.bin', ['part1.bin', 'part3.bin'], ['part4.bin', 'part0.bin']);
    assertMatches('v{a..c}', ['va', 'vb', 'vc'], ['vd']);
  });

  it('keeps parentheses, pipes, quotes, plus, at and a non-leading ! literal', () => {
    assertMatches('report (1).pdf', ['report (1).pdf'], ['report 1.pdf']);
    assertMatches('*(1).pdf', ['x(1).pdf'], ['x1.pdf']);
    assertMatches('a|b', ['a|b'], ['a', 'b']);
    assertMatches('{a|b,c}', ['a|b', 'c'], ['a', 'b']);
    assertMatches('"quoted".txt', ['"quoted".txt'], ['quoted.txt']);
    assertMatches('+(a)', ['+(a)'], ['a']);
    assertMatches('@(a)', ['@(a)'], ['a']);
    assertMatches('a!b', ['a!b'], ['ab']);
    assertMatches('c++ notes $^.txt', ['c++ notes $^.txt'], []);
  });

  it('matches escaped characters literally', () => {
    assertMatches('\\*.txt', ['*.txt'], ['a.txt']);
    assertMatches('data\\[1\\].csv', ['data[1].csv'], ['data1.csv']);
    assertMatches('\\{a,b\\}', ['{a,b}'], ['a']);
    assertMatches('\\!important.txt', ['!important.txt'], ['important.txt']);
  });

  it('matches names with spaces and non-ASCII characters', () => {
    assertMatches('é*.txt', ['école.txt', 'dir/été.txt'], ['ecole.txt']);
    assertMatches('my file.txt', ['my file.txt'], ['my_file.txt']);
  });

  it('matches names holding line breaks and other control characters', () => {
    const names = ['new\nline', 'dir\n/a\rb', 'x/a\u2028b\u2029', 'tab\t/bell\u0007'];
    assertMatches(DEFAULT_PATTERN, names, []);
    assertMatches('**/*b', ['dir\n/a\rb', 'x/a\nb'], ['a\nb/c']);
    assertMatches('*line', ['new\nline', 'd\n/new\nline'], ['new\nline/x']);
  });

  it('refuses to compile an invalid pattern, saying why', () => {
    assert.throws(
      () => compilePattern('[abc'),
      /invalid pattern '\[abc': '\[' at position 1 is never closed/,
    );
  });
});

describe('patternProblem', () => {
  it('accepts valid patterns', () => {
    for (const pattern of [
      '**',
      '*.txt',
      'sub/*.txt',
      '**/x/*.csv',
      './*.txt',
      '{a,b}/**',
      '[!.]*',
      'x{1..9}',
      'a\\[',
      '[a-]',
      '[]-a]',
      '[--a]',
      // A brace range written backwards is not empty: it matches the same characters as {a..z}.
      'x{z..a}',
    ]) {
      assert.equal(patternProblem(pattern), null, pattern);
    }
  });

  const invalid: [pattern: string, expected: RegExp][] = [
    ['', /empty/],
    ['a'.repeat(1025), /1025 characters long; at most 1024/],
    ['a\0b', /NUL/],
    ['/abs/*.txt', /starts with '\/'/],
    ['!*.tmp', /leading '!' \(negation\) is not supported/],
    ['../*.txt', /'\.\.' segment/],
    ['a/../b', /'\.\.' segment/],
    ['**/..', /'\.\.' segment/],
    ['a/./b', /'\.' segment/],
    ['./', /only '\.\/'/],
    ['a//b', /empty segment/],
    ['logs/', /ends with '\/'/],
    ['a\\', /lone '\\'/],
    ['[abc', /'\[' at position 1 is never closed/],
    ['[]', /never closed/],
    ['a]', /'\]' at position 2 has no matching '\['/],
    ['{a,b', /'\{' at position 1 is never closed/],
    ['a,b}', /'\}' at position 4 has no matching '\{'/],
    ['{a,{b}', /never closed/],
    ['[a/b]', /'\/' inside \[\.\.\.\] never matches/],
    ['[[:letter:]]', /unknown character class '\[:letter:\]'/],
    ['[[:alpha]', /never closed/],
    ['[z-a]', /^'\[z-a\]' at position 1 is a reversed range: 'z' comes after 'a'; write \[a-z\]$/],
    ['x[!9-0]y', /'\[!9-0\]' at position 2 is a reversed range: '9' comes after '0'; write \[!0-9\]/],
    ['[a-cz-xq]', /'z' comes after 'x'; write \[a-cx-zq\]/],
    ['[\\z-a]', /'z' comes after 'a'; write \[a-\\z\]/],
    ['[]-A]', /'\]' comes after 'A'; write \[A-\\\]\]/],
    ['[a-/]', /'\/' inside \[\.\.\.\] never matches/],
    ['x{01..10}', /range between single characters/],
    ['{..,a}/x', /range between single characters/],
    ['{1..3,5}', /range between single characters/],
  ];
  for (const [pattern, expected] of invalid) {
    it(`rejects ${JSON.stringify(pattern.length > 40 ? `${pattern.slice(0, 20)}…` : pattern)}`, () => {
      const problem = patternProblem(pattern);
      assert.ok(problem !== null, `'${pattern}' should be rejected`);
      assert.match(problem, expected);
      assert.throws(() => compilePattern(pattern), /invalid pattern/);
    });
  }
});
