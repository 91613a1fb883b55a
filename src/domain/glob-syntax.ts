// Reads a glob (already validated by pattern.ts) into a tree that glob-automaton.ts compiles.
//
// The meanings follow what picomatch gave these patterns with pattern.ts's options, so that
// stored patterns take the same files as before; where picomatch's '**' rules look odd, the
// comment says what it did. Characters are UTF-16 code units, as in a JavaScript RegExp without
// the 'u' flag ('?' takes one code unit).

/**
 * One code unit out of a set: `ranges` are inclusive [low, high] pairs. '/' is a member only of
 * the set that is a literal '/': a negated set leaves it out, and brackets and ranges never list it.
 */
export interface CharSet {
  ranges: [number, number][];
  negated: boolean;
}

export type GlobNode =
  | { kind: 'char'; set: CharSet }
  /** '*': any run of code units but '/'. */
  | { kind: 'star' }
  /** What '**' stands for: any run of code units, '/' included. */
  | { kind: 'anything' }
  | { kind: 'optional'; body: GlobNode[] }
  | { kind: 'alternatives'; options: GlobNode[][] };

const SLASH = 0x2f;

/** The POSIX classes picomatch knows, as ranges (its POSIX_REGEX_SOURCE). */
const POSIX_RANGES: Record<string, [number, number][]> = {
  alnum: ranges('azAZ09'),
  alpha: ranges('azAZ'),
  ascii: [[0x00, 0x7f]],
  blank: ranges('  \t\t'),
  cntrl: [
    [0x00, 0x1f],
    [0x7f, 0x7f],
  ],
  digit: ranges('09'),
  graph: [[0x21, 0x7e]],
  lower: ranges('az'),
  print: [[0x20, 0x7e]],
  punct: [...'-!"#$%&\'()*+,./:;<=>?@[\\]^_`{|}~'].map((char) => [code(char), code(char)]),
  space: ranges('  \t\t\r\r\n\n\v\v\f\f'),
  upper: ranges('AZ'),
  word: ranges('AZaz09__'),
  xdigit: ranges('AFaf09'),
};

const ANY_BUT_SLASH: CharSet = { ranges: [], negated: true };

/** A token of the flat reading, before '**' is given its meaning and braces their structure. */
type Token =
  /** `brace`: a '{a..c}' range, which picomatch read as braces when deciding what '**' means. */
  | { type: 'char'; set: CharSet; brace?: true }
  /** `escaped`: '\/', which picomatch did not see as a '/' when looking ahead from a '**'. */
  | { type: 'slash'; escaped?: true }
  | { type: 'stars'; count: number }
  | { type: 'open' }
  | { type: 'comma'; depth: number }
  | { type: 'close'; depth: number };

/** The tree of a valid glob body (a leading './' already removed). */
export function parseGlob(body: string): GlobNode[] {
  const tree = buildTree(resolveStars(tokenize(body)));
  // picomatch's shortcut for exactly these two read the last '*' as one character or more, so
  // 'a.' was not taken (its general rules, as in 'x/*.*', would take it): kept as users saw it.
  if (body === '*.*' || body === '**/*.*') tree.splice(-1, 0, { kind: 'char', set: ANY_BUT_SLASH });
  return tree;
}

function tokenize(body: string): Token[] {
  const tokens: Token[] = [];
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const char = body.charAt(i);
    if (char === '\\') {
      const escaped = body.charAt(++i);
      tokens.push(escaped === '/' ? { type: 'slash', escaped: true } : literal(escaped));
    } else if (char === '/') {
      tokens.push({ type: 'slash' });
    } else if (char === '*') {
      const last = tokens.at(-1);
      if (last?.type === 'stars') last.count++;
      else tokens.push({ type: 'stars', count: 1 });
    } else if (char === '?') {
      tokens.push({ type: 'char', set: ANY_BUT_SLASH });
    } else if (char === '[') {
      const end = bracketEnd(body, i);
      tokens.push({ type: 'char', set: bracketSet(body.slice(i + 1, end)) });
      i = end;
    } else if (char === '{') {
      const range = /^\{([^,{}\\[\]])\.\.([^,{}\\[\]])\}/.exec(body.slice(i, i + 6));
      if (range) {
        const [low = 0, high = 0] = [code(range[1] ?? ''), code(range[2] ?? '')].sort((a, b) => a - b);
        tokens.push({
          type: 'char',
          set: { ranges: withoutSlash([[low, high]]), negated: false },
          brace: true,
        });
        i += 5;
      } else {
        depth++;
        tokens.push({ type: 'open' });
      }
    } else if (char === '}') {
      tokens.push({ type: 'close', depth: --depth });
    } else if (char === ',') {
      tokens.push(depth > 0 ? { type: 'comma', depth } : literal(char));
    } else {
      tokens.push(literal(char));
    }
  }
  return tokens;
}

/** An item of the flat reading once '**' has its meaning; braces still flat. */
type Item = GlobNode | { kind: 'open' } | { kind: 'comma' } | { kind: 'close' };

/**
 * Gives each run of stars its meaning, as picomatch did: one star or three and more are '*'; two
 * are '**' only after the start, a '/', a '{' or a ',' of a brace (or a '}' inside another brace):
 *   - the whole pattern ('**', '**\/**'): any path;
 *   - at the start before '/' ('**\/x'): any number of leading folders, none included;
 *   - between slashes ('a/**\/b'): any number of folders between, none included;
 *   - at the end after '/' ('logs/**'): anything below, or the name itself ('logs'), except when
 *     the folder before ends with a star ('*\/**' needs something below);
 *   - elsewhere (in braces: '{**,x}/y'): any run of characters, '/' included, unless what follows
 *     is not a '/', a brace or a comma, where it is a '*' again ('**.txt' is '*.txt').
 */
function resolveStars(tokens: Token[]): Item[] {
  const items: Item[] = [];
  let depth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] as Token;
    switch (token.type) {
      case 'char':
        items.push({ kind: 'char', set: token.set });
        break;
      case 'slash':
        items.push(slashNode());
        break;
      case 'open':
        depth++;
        items.push({ kind: 'open' });
        break;
      case 'comma':
        items.push({ kind: 'comma' });
        break;
      case 'close':
        depth--;
        items.push({ kind: 'close' });
        break;
      case 'stars':
        i = resolveStarRun(tokens, i, depth, items);
        break;
    }
  }
  return items;
}

/** Appends the meaning of the star run at `at` to `items`; returns the index of the last token it used. */
function resolveStarRun(tokens: Token[], at: number, depth: number, items: Item[]): number {
  const run = tokens[at] as { type: 'stars'; count: number };
  const prior = tokens[at - 1];
  const atStart = prior === undefined || prior.type === 'slash';
  const inBrace = depth > 0 && (isBrace(prior) || prior?.type === 'comma');
  if (run.count !== 2 || (!atStart && !inBrace)) {
    items.push({ kind: 'star' });
    return at;
  }
  // '/**' repeated after a globstar adds nothing: 'a/**\/**\/b' is 'a/**\/b'.
  let last = at;
  while (isPlainSlash(tokens[last + 1]) && isGlobstarSegment(tokens, last + 2)) last += 2;
  const next = tokens[last + 1];
  const beforeSlash = tokens[at - 2];
  if (prior === undefined && next === undefined) {
    items.push({ kind: 'anything' });
    return last;
  }
  if (prior?.type === 'slash' && next === undefined && beforeSlash?.type !== 'stars') {
    items.pop(); // the '/' before becomes part of what is optional
    items.push({ kind: 'optional', body: [slashNode(), { kind: 'anything' }] });
    return last;
  }
  if (atStart && isPlainSlash(next)) {
    items.push({ kind: 'optional', body: [{ kind: 'anything' }, slashNode()] });
    return last + 1;
  }
  const staysGlobstar = next === undefined || isSlash(next) || isBrace(next) || next.type === 'comma';
  items.push(staysGlobstar ? { kind: 'anything' } : { kind: 'star' });
  return last;
}

function isSlash(token: Token | undefined): boolean {
  return token?.type === 'slash';
}

function isPlainSlash(token: Token | undefined): boolean {
  return token?.type === 'slash' && token.escaped !== true;
}

function isBrace(token: Token | undefined): boolean {
  return (
    token?.type === 'open' || token?.type === 'close' || (token?.type === 'char' && token.brace === true)
  );
}

/** A '**' that is a whole segment: two stars followed by '/' or the end. */
function isGlobstarSegment(tokens: Token[], at: number): boolean {
  const token = tokens[at];
  const after = tokens[at + 1];
  return token?.type === 'stars' && token.count === 2 && (after === undefined || isPlainSlash(after));
}

/** Folds the flat items into alternatives; a brace without a comma stands for itself ('{a}'). */
function buildTree(items: Item[]): GlobNode[] {
  const stack: { options: GlobNode[][] }[] = [{ options: [[]] }];
  const current = (): GlobNode[] => stack.at(-1)?.options.at(-1) as GlobNode[];
  for (const item of items) {
    if (item.kind === 'open') {
      stack.push({ options: [[]] });
    } else if (item.kind === 'comma') {
      stack.at(-1)?.options.push([]);
    } else if (item.kind === 'close') {
      const group = stack.pop() as { options: GlobNode[][] };
      const [only] = group.options;
      if (group.options.length > 1) current().push({ kind: 'alternatives', options: group.options });
      else current().push(charNode('{'), ...(only ?? []), charNode('}'));
    } else {
      current().push(item);
    }
  }
  return current();
}

function slashNode(): GlobNode {
  return { kind: 'char', set: { ranges: [[SLASH, SLASH]], negated: false } };
}

function charNode(char: string): GlobNode {
  return { kind: 'char', set: literal(char).set };
}

function literal(char: string): { type: 'char'; set: CharSet } {
  return { type: 'char', set: { ranges: [[code(char), code(char)]], negated: false } };
}

/** Index of the ']' closing the bracket expression opening at `start` (pattern.ts checked it closes). */
export function bracketEnd(body: string, start: number): number {
  let i = start + 1;
  if (body[i] === '!' || body[i] === '^') i++;
  if (body[i] === ']') i++;
  while (i < body.length && body[i] !== ']') {
    if (body[i] === '\\') i += 2;
    else if (body[i] === '[' && body[i + 1] === ':') i = body.indexOf(':]', i + 2) + 2;
    else i++;
  }
  return i;
}

/**
 * The set of a bracket expression's inside, read as a RegExp class: '!' or '^' first negates,
 * a ']' first is a member, 'a-z' is a range ('-' first or last is itself), '[:name:]' a POSIX class.
 */
function bracketSet(inside: string): CharSet {
  let i = 0;
  const negated = inside[0] === '!' || inside[0] === '^';
  if (negated) i++;
  const members: [number, number][] = [];
  let first = true;
  while (i < inside.length) {
    if (inside.startsWith('[:', i) && !(first && inside[i] === ']')) {
      const close = inside.indexOf(':]', i + 2);
      members.push(...(POSIX_RANGES[inside.slice(i + 2, close)] ?? []));
      i = close + 2;
      first = false;
      continue;
    }
    const [low, afterLow] = classChar(inside, i);
    first = false;
    if (inside[afterLow] === '-' && afterLow + 1 < inside.length && !inside.startsWith('[:', afterLow + 1)) {
      const [high, afterHigh] = classChar(inside, afterLow + 1);
      if (low <= high) members.push([low, high]); // a reversed range takes nothing
      i = afterHigh;
    } else {
      members.push([low, low]);
      i = afterLow;
    }
  }
  return { ranges: withoutSlash(members), negated };
}

/** A bracket expression or range stands for one character of a name: '/' is taken out ('[[:punct:]]'). */
function withoutSlash(members: [number, number][]): [number, number][] {
  return members.flatMap(([low, high]): [number, number][] =>
    low <= SLASH && SLASH <= high
      ? ([
          [low, SLASH - 1],
          [SLASH + 1, high],
        ].filter(([from = 0, to = 0]) => from <= to) as [number, number][])
      : [[low, high]],
  );
}

/** The code unit at `at` inside a bracket expression (an escape stands for the escaped one), and where the next starts. */
function classChar(inside: string, at: number): [number, number] {
  return inside[at] === '\\' ? [inside.charCodeAt(at + 1), at + 2] : [inside.charCodeAt(at), at + 1];
}

function ranges(pairs: string): [number, number][] {
  const result: [number, number][] = [];
  for (let i = 0; i + 1 < pairs.length; i += 2) result.push([pairs.charCodeAt(i), pairs.charCodeAt(i + 1)]);
  return result;
}

function code(char: string): number {
  return char.charCodeAt(0);
}
