// The matcher the service used before its own linear one (src/domain/glob-automaton.ts): picomatch
// with the same options and the same escaping of ( ) | ". Kept as the reference the property test
// compares against; only for patterns that patternProblem() accepts.
import picomatch from 'picomatch';
import { bracketEnd } from '../../src/domain/glob-syntax.js';

const PICOMATCH_OPTIONS: picomatch.PicomatchOptions = {
  dot: true,
  posix: true,
  noextglob: true,
  nonegate: true,
  strictBrackets: true,
  literalBrackets: false,
  windows: false,
  flags: 's',
};

const ESCAPED_LITERALS = new Set(['(', ')', '|', '"']);

export function referenceMatcher(pattern: string): (relativePath: string) => boolean {
  const anchored = pattern.startsWith('./');
  const body = anchored ? pattern.slice(2) : pattern;
  const regex = picomatch.makeRe(escapeLiterals(body), PICOMATCH_OPTIONS);
  if (!anchored && !body.includes('/'))
    return (relativePath) => regex.test(relativePath.slice(relativePath.lastIndexOf('/') + 1));
  return (relativePath) => regex.test(relativePath);
}

/** As pattern.ts did: escapes and bracket expressions kept whole, ( ) | " escaped. */
function escapeLiterals(body: string): string {
  let source = '';
  for (let i = 0; i < body.length; i++) {
    const char = body.charAt(i);
    if (char === '\\') {
      source += body.slice(i, i + 2);
      i++;
    } else if (char === '[') {
      const end = bracketEnd(body, i);
      source += body.slice(i, end + 1);
      i = end;
    } else {
      source += ESCAPED_LITERALS.has(char) ? `\\${char}` : char;
    }
  }
  return source;
}
