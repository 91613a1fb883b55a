// Which files of a source folder an upload takes, written as a glob.
//
// Syntax (picomatch's, as this service used it before, with the parts that surprise users left out):
//   *        any characters inside one name          ?      exactly one character
//   [abc]    one of a set; [a-z] ranges, [!a] or [^a] negation, [[:alpha:]] POSIX classes
//   {a,b}    alternatives, nestable; {1..9} or {a..f} ranges between single characters
//   **       any number of folders, when it is a whole segment ('**/x/*.csv', 'logs/**')
//   \x       the character x itself ('\[1\]', '\*')
// Everything else is literal, including ( ) | " + @ and a '!' that is not first: no extglobs, no
// negation, no quoting.
//
// Where a pattern applies:
//   - without a '/', it matches a file's NAME at any depth: '*.txt' takes 'a.txt' and 'sub/deep/c.txt';
//   - with a '/', it matches the path relative to the source folder: 'sub/*.txt', '**/x/*.csv';
//   - a leading './' anchors it at the top of the source folder: './*.txt' takes 'a.txt' only.
// Hidden files and folders are matched like any other ('*' takes '.env').
//
// Rejected rather than silently matching nothing (picomatch itself would accept most of these):
// an empty or over-long pattern, a NUL, an absolute pattern, a leading '!', '.' or '..' segments,
// empty segments ('a//b') and a trailing '/', a trailing lone '\', unbalanced [ ] or { },
// a '/' inside [...], a reversed range ('[z-a]'), an unknown [:class:], and '..' inside braces
// other than a single-character range.
//
// Matching takes time linear in the path whatever the pattern (glob-automaton.ts): the RegExp
// picomatch compiled backtracked, and '*-*-*-*-*-*-*.csv' held the event loop for seconds.
import { compileGlob } from './glob-automaton.js';
import { parseGlob } from './glob-syntax.js';

/** The pattern used when the client gives none: every file, at any depth. */
export const DEFAULT_PATTERN = '**';

const MAX_PATTERN_LENGTH = 1024;

const POSIX_CLASSES = new Set([
  'alnum',
  'alpha',
  'ascii',
  'blank',
  'cntrl',
  'digit',
  'graph',
  'lower',
  'print',
  'punct',
  'space',
  'upper',
  'word',
  'xdigit',
]);

interface Translation {
  /** The glob without a leading './'. */
  source: string;
  /** true: match the file's name; false: match its whole relative path. */
  matchesNames: boolean;
}

type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

const fail = (problem: string): { ok: false; problem: string } => ({ ok: false, problem });

/** null when the pattern is valid; otherwise what is wrong with it, for the client. */
export function patternProblem(pattern: string): string | null {
  const outcome = translate(pattern);
  return outcome.ok ? null : outcome.problem;
}

/** A matcher for relative paths ('/' separated). Throws when patternProblem() would report a problem. */
export function compilePattern(pattern: string): (relativePath: string) => boolean {
  const outcome = translate(pattern);
  if (!outcome.ok) throw new Error(`invalid pattern '${pattern}': ${outcome.problem}`);
  const { source, matchesNames } = outcome.value;
  const matches = compileGlob(parseGlob(source));
  if (matchesNames) return (relativePath) => matches(relativePath, relativePath.lastIndexOf('/') + 1);
  return (relativePath) => matches(relativePath, 0);
}

function translate(pattern: string): Checked<Translation> {
  if (pattern.length === 0) return fail('the pattern is empty');
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return fail(
      `the pattern is ${pattern.length} characters long; at most ${MAX_PATTERN_LENGTH} are allowed`,
    );
  }
  if (pattern.includes('\0')) return fail('the pattern contains a NUL character');
  if (pattern.startsWith('/')) {
    return fail("the pattern starts with '/': patterns are relative to the source folder");
  }
  if (pattern.startsWith('!')) {
    return fail(
      "a leading '!' (negation) is not supported; write '\\!' to match a name that starts with '!'",
    );
  }
  const anchored = pattern.startsWith('./');
  const body = anchored ? pattern.slice(2) : pattern;
  if (body.length === 0) return fail("the pattern is only './'");

  const segmentProblem = segmentsProblem(body);
  if (segmentProblem !== null) return fail(segmentProblem);

  const syntax = syntaxProblem(body);
  if (syntax !== null) return fail(syntax);
  return { ok: true, value: { source: body, matchesNames: !anchored && !body.includes('/') } };
}

function segmentsProblem(body: string): string | null {
  if (body.endsWith('/')) {
    return "the pattern ends with '/', which names a folder: write 'folder/**' for every file inside it";
  }
  for (const segment of body.split('/')) {
    if (segment === '') return "the pattern has an empty segment ('//')";
    if (segment === '..') return "the pattern has a '..' segment: patterns cannot leave the source folder";
    if (segment === '.') return "the pattern has a '.' segment (only a leading './' is allowed)";
  }
  return null;
}

/** Checks brackets, braces and escapes in one pass: null when they are well formed. */
function syntaxProblem(body: string): string | null {
  const openBraces: { at: number; hasDots: boolean }[] = [];
  for (let i = 0; i < body.length; i++) {
    const char = body.charAt(i);
    if (char === '\\') {
      if (i + 1 >= body.length) return "the pattern ends with a lone '\\' (an escape with nothing to escape)";
      i++;
    } else if (char === '[') {
      const end = bracketEnd(body, i);
      if (typeof end === 'string') return end;
      i = end;
    } else if (char === ']') {
      return `']' at position ${i + 1} has no matching '['; write '\\]' to match a literal ']'`;
    } else if (char === '{') {
      openBraces.push({ at: i, hasDots: false });
    } else if (char === '}') {
      const open = openBraces.pop();
      if (open === undefined) {
        return `'}' at position ${i + 1} has no matching '{'; write '\\}' to match a literal '}'`;
      }
      const inside = body.slice(open.at + 1, i);
      // A range written backwards ('{z..a}') is kept: unlike '[z-a]' it is not empty, picomatch
      // expanded it in reverse and glob-syntax.ts matches the same characters as '{a..z}'.
      if (open.hasDots && !/^[^,{}\\]\.\.[^,{}\\]$/.test(inside)) {
        return (
          `'{${inside}}' uses '..', which inside braces only makes a range between single characters ` +
          'such as {1..9} or {a..f}; list the values instead, e.g. {01,02,10}'
        );
      }
    } else {
      const innermost = openBraces.at(-1);
      if (char === '.' && body.charAt(i + 1) === '.' && innermost) innermost.hasDots = true;
    }
  }
  const unclosed = openBraces.at(-1);
  if (unclosed !== undefined) {
    return `'{' at position ${unclosed.at + 1} is never closed; write '\\{' to match a literal '{'`;
  }
  return null;
}

const SLASH_IN_BRACKET =
  "'/' inside [...] never matches: a bracket expression stands for one character of a name";

/** Index of the ']' closing the bracket expression that opens at `start`, or what is wrong with it. */
function bracketEnd(body: string, start: number): number | string {
  let i = start + 1;
  if (body[i] === '!' || body[i] === '^') i++;
  let first = true; // a ']' first in the set is a member, as in shells
  let reversed: Range | undefined;
  while (i < body.length) {
    const char = body[i];
    if (char === ']' && !first) {
      return reversed ? reversedRangeProblem(body, start, i, reversed) : i;
    }
    first = false;
    if (char === '/') {
      return SLASH_IN_BRACKET;
    } else if (char === '[' && body[i + 1] === ':') {
      const close = body.indexOf(':]', i + 2);
      if (close === -1) return `'[:' at position ${i + 1} is never closed with ':]'`;
      const name = body.slice(i + 2, close);
      if (!POSIX_CLASSES.has(name)) {
        return `unknown character class '[:${name}:]'; known: ${[...POSIX_CLASSES].join(', ')}`;
      }
      i = close + 2;
    } else {
      // Read as glob-syntax.ts's bracketSet reads it: 'x-y' is a range unless '-' is last or a class follows.
      const afterLow = memberEnd(body, i);
      const dash = body[afterLow] === '-' && afterLow + 1 < body.length;
      if (dash && body[afterLow + 1] !== ']' && !body.startsWith('[:', afterLow + 1)) {
        if (body[afterLow + 1] === '/') return SLASH_IN_BRACKET;
        const range = { from: i, to: afterLow + 1, end: memberEnd(body, afterLow + 1) };
        if (reversed === undefined && member(body, range.from) > member(body, range.to)) reversed = range;
        i = range.end;
      } else {
        i = afterLow;
      }
    }
  }
  return `'[' at position ${start + 1} is never closed; write '\\[' to match a literal '['`;
}

/** A range inside a bracket expression: where its low and high members start, and where it ends. */
interface Range {
  from: number;
  to: number;
  end: number;
}

/** Where the member (a character, or an escape and the character it escapes) starting at `at` ends. */
function memberEnd(body: string, at: number): number {
  return body[at] === '\\' ? at + 2 : at + 1;
}

/** The code unit a member stands for, as glob-syntax.ts compares them. */
function member(body: string, at: number): number {
  return body.charCodeAt(body[at] === '\\' ? at + 1 : at);
}

/**
 * A reversed range ('[z-a]') takes no character, so the bracket expression, or that part of it,
 * can never match: refused, naming the range written the right way round.
 */
function reversedRangeProblem(body: string, start: number, close: number, range: Range): string {
  const bracket = body.slice(start, close + 1);
  const low = body.slice(range.from, range.to - 1);
  const high = body.slice(range.to, range.end);
  const fixed =
    body.slice(start, range.from) + `${movable(high)}-${movable(low)}` + body.slice(range.end, close + 1);
  return (
    `'${bracket}' at position ${start + 1} is a reversed range: ` +
    `'${String.fromCharCode(member(body, range.from))}' comes after '${String.fromCharCode(member(body, range.to))}'; write ${fixed}`
  );
}

/** A member moved to the front of a set must not turn into a closing ']' or a negation. */
function movable(member: string): string {
  return member === ']' || member === '!' || member === '^' ? `\\${member}` : member;
}
