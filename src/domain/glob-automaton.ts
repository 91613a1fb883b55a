// Matches a path against a glob tree (glob-syntax.ts) in time linear in the path, whatever the
// pattern: the glob becomes a nondeterministic automaton whose states are bits, and every code
// unit of the path moves all live states at once, a 32-bit word at a time (a bit-parallel
// Thompson simulation). Nothing backtracks, so no path can make a match take longer than
// (path length) x (pattern size / 32) word operations plus the epsilon moves of live states.
// The sets of states met are kept with their moves (a lazy DFA, bounded): once warm, a match costs
// one table look-up per code unit.
//
// Written by hand rather than taken from a library: a RegExp is backtracking; re2js (RE2's port)
// builds its DFA lazily and fell back to a Pike VM on long globs, taking 120-190 ms for one match
// of a 1,024-character pattern against a 4,096-byte path; the native 're2' needs a compiler at
// install. A glob needs no captures and no anchors, so the whole engine fits in this file.
import type { CharSet, GlobNode } from './glob-syntax.js';

const SLASH = 0x2f;
/** Code units below this find their class in a table; others by binary search. */
const TABLE_SIZE = 256;

/** A state: before consuming `set` once (or any number of times when `loops`), or a gate that consumes nothing. */
interface State {
  set: CharSet | 'everything' | null;
  loops: boolean;
}

/** true when `text` (from `from` on) matches; built once per pattern. */
export type GlobMatcher = (text: string, from: number) => boolean;

export function compileGlob(tree: GlobNode[]): GlobMatcher {
  const states: State[] = [];
  const epsilon: [from: number, to: number][] = [];
  emit(tree, states, epsilon);
  const accepting = states.length;
  const words = (accepting >>> 5) + 1;

  // Epsilon moves always go forward, so one pass in state order closes a set. The commonest, a
  // star's 'zero times' (state to the next), are taken for a whole word at once (skipMasks); the
  // moves of gates (braces, optional parts) one by one.
  const skipMasks = new Int32Array(words);
  const gateMoves = epsilon.filter(([from, to]) => {
    if (states[from]?.loops !== true || to !== from + 1) return true;
    skipMasks[from >>> 5] = (skipMasks[from >>> 5] ?? 0) | (1 << (from & 31));
    return false;
  });
  gateMoves.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const epsilonStart = new Int32Array(accepting + 2);
  const epsilonTargets = new Int32Array(gateMoves.length);
  const hasEpsilon = new Int32Array(words);
  gateMoves.forEach(([from, to], index) => {
    epsilonStart[from + 1] = index + 1;
    epsilonTargets[index] = to;
    hasEpsilon[from >>> 5] = (hasEpsilon[from >>> 5] ?? 0) | (1 << (from & 31));
  });
  for (let state = 1; state < epsilonStart.length; state++) {
    epsilonStart[state] = Math.max(epsilonStart[state] ?? 0, epsilonStart[state - 1] ?? 0);
  }

  // Code units that every state treats alike share a class, and each class one pair of masks.
  const boundaries = classBoundaries(states);
  const classCount = boundaries.length + 1;
  const moveMasks = new Int32Array(classCount * words);
  const loopMasks = new Int32Array(classCount * words);
  for (let cls = 0; cls < classCount; cls++) {
    const unit = cls === 0 ? 0 : (boundaries[cls - 1] ?? 0);
    states.forEach((state, index) => {
      if (state.set === null || !takes(state.set, unit)) return;
      const masks = state.loops ? loopMasks : moveMasks;
      masks[cls * words + (index >>> 5)] = (masks[cls * words + (index >>> 5)] ?? 0) | (1 << (index & 31));
    });
  }
  const table = new Uint16Array(TABLE_SIZE);
  for (let unit = 0; unit < TABLE_SIZE; unit++) table[unit] = classOf(boundaries, unit);

  const close = (live: Int32Array): void => {
    for (let word = 0; word < words; word++) {
      const skips = skipMasks[word] ?? 0;
      // A live skipping state in bit 31 makes bit 0 of this word live.
      if (word > 0 && ((live[word - 1] ?? 0) & (skipMasks[word - 1] ?? 0) & (1 << 31)) !== 0) {
        live[word] = (live[word] ?? 0) | 1;
      }
      let done = 0;
      for (;;) {
        // Adding the live skipping states to the mask carries each through its run of skipping
        // states to the first state after it; the bits that changed are the states reached.
        const skipping = (live[word] ?? 0) & skips;
        if (skipping !== 0) live[word] = (live[word] ?? 0) | (((skips >>> 0) + (skipping >>> 0)) ^ skips);
        const pending = (live[word] ?? 0) & (hasEpsilon[word] ?? 0) & ~done;
        if (pending === 0) break;
        const bit = pending & -pending;
        const state = (word << 5) + 31 - Math.clz32(bit);
        const end = epsilonStart[state + 1] ?? 0;
        for (let edge = epsilonStart[state] ?? 0; edge < end; edge++) {
          const target = epsilonTargets[edge] ?? 0;
          live[target >>> 5] = (live[target >>> 5] ?? 0) | (1 << (target & 31));
        }
        done |= bit;
      }
    }
  };

  /** One step of the simulation: `next` becomes the closed set `live` leads to on a unit of class `cls`. */
  const step = (live: Int32Array, cls: number, next: Int32Array): boolean => {
    const base = cls * words;
    let carry = 0;
    let any = 0;
    for (let word = 0; word < words; word++) {
      const current = live[word] ?? 0;
      const moved = current & (moveMasks[base + word] ?? 0);
      const stays = (moved << 1) | carry | (current & (loopMasks[base + word] ?? 0));
      next[word] = stays;
      carry = moved >>> 31;
      any |= stays;
    }
    if (any !== 0) close(next);
    return any !== 0;
  };

  const initial = new Int32Array(words);
  initial[0] = 1;
  close(initial);
  const cache = new StateCache(words, classCount, initial);
  let live = new Int32Array(words);
  let next = new Int32Array(words);

  const classAt = (text: string, at: number): number => {
    const unit = text.charCodeAt(at);
    return unit < TABLE_SIZE ? (table[unit] ?? 0) : classOf(boundaries, unit);
  };
  const accepts = (set: Int32Array): boolean => ((set[accepting >>> 5] ?? 0) & (1 << (accepting & 31))) !== 0;

  return (text, from) => {
    // Sets already met, with their moves, are kept (a lazy DFA): a folder's paths mostly walk
    // the same few. Once the cache is full, the rest of the path is simulated without it.
    let cached = 0;
    let misses = 0;
    for (let at = from; at < text.length; at++) {
      const cls = classAt(text, at);
      let target = cache.move(cached, cls);
      if (target === UNKNOWN) {
        // A path that keeps meeting new sets pays for storing them: past a few, it is simulated.
        const room = ++misses <= MISSES_PER_MATCH;
        if (!step(cache.set(cached), cls, next)) target = cache.dead(cached, cls);
        else target = room ? cache.add(cached, cls, next) : FULL;
      }
      if (target === DEAD) return false;
      if (target === FULL) {
        live.set(next);
        for (at++; at < text.length; at++) {
          if (!step(live, classAt(text, at), next)) return false;
          [live, next] = [next, live];
        }
        return accepts(live);
      }
      cached = target;
    }
    return accepts(cache.set(cached));
  };
}

const UNKNOWN = -1;
const DEAD = -2;
const FULL = -3;
/** New sets one match may add to the cache (each costs about 10 µs to store). */
const MISSES_PER_MATCH = 64;
/** Memory the state cache of one pattern may hold. */
const CACHE_BYTES = 1 << 18;

/** The sets of states met so far, each with the set each class of code unit leads to. */
class StateCache {
  private readonly sets: Int32Array[] = [];
  private readonly moves: Int32Array[] = [];
  private readonly ids = new Map<string, number>();
  private readonly capacity: number;

  constructor(
    private readonly words: number,
    private readonly classCount: number,
    initial: Int32Array,
  ) {
    this.capacity = Math.max(16, Math.floor(CACHE_BYTES / ((words + classCount) * 4)));
    this.intern(initial, keyOf(initial));
  }

  /** Where set `from` goes on class `cls`: a set's id, DEAD, or UNKNOWN when not computed yet. */
  move(from: number, cls: number): number {
    return this.moves[from]?.[cls] ?? UNKNOWN;
  }

  set(id: number): Int32Array {
    return this.sets[id] as Int32Array;
  }

  dead(from: number, cls: number): number {
    (this.moves[from] as Int32Array)[cls] = DEAD;
    return DEAD;
  }

  /** Records that `from` leads to `reached` on `cls` and returns its id; FULL when there is no room for it. */
  add(from: number, cls: number, reached: Int32Array): number {
    const key = keyOf(reached);
    const id = this.ids.get(key) ?? (this.sets.length < this.capacity ? this.intern(reached, key) : FULL);
    if (id !== FULL) (this.moves[from] as Int32Array)[cls] = id;
    return id;
  }

  private intern(set: Int32Array, key: string): number {
    this.sets.push(set.slice(0, this.words));
    this.moves.push(new Int32Array(this.classCount).fill(UNKNOWN));
    this.ids.set(key, this.sets.length - 1);
    return this.sets.length - 1;
  }
}

function keyOf(set: Int32Array): string {
  let key = '';
  for (const word of set) key += String.fromCharCode(word & 0xffff, word >>> 16);
  return key;
}

/** Appends the states of `nodes`; the state after the last one is where they lead. */
function emit(nodes: GlobNode[], states: State[], epsilon: [number, number][]): void {
  for (const node of nodes) {
    switch (node.kind) {
      case 'char':
        states.push({ set: node.set, loops: false });
        break;
      case 'star':
      case 'anything': {
        const at = states.push({ set: node.kind === 'star' ? ANY_BUT_SLASH : 'everything', loops: true }) - 1;
        epsilon.push([at, at + 1]); // zero times
        break;
      }
      case 'optional': {
        const gate = states.push({ set: null, loops: false }) - 1;
        epsilon.push([gate, gate + 1]);
        emit(node.body, states, epsilon);
        epsilon.push([gate, states.length]);
        break;
      }
      case 'alternatives': {
        const gate = states.push({ set: null, loops: false }) - 1;
        const exits: number[] = [];
        node.options.forEach((option, index) => {
          epsilon.push([gate, states.length]);
          emit(option, states, epsilon);
          if (index < node.options.length - 1) exits.push(states.push({ set: null, loops: false }) - 1);
        });
        for (const exit of exits) epsilon.push([exit, states.length]);
        break;
      }
    }
  }
}

const ANY_BUT_SLASH: CharSet = { ranges: [], negated: true };

function takes(set: CharSet | 'everything', unit: number): boolean {
  if (set === 'everything') return true;
  const listed = set.ranges.some(([low, high]) => low <= unit && unit <= high);
  return unit === SLASH ? listed && !set.negated : listed !== set.negated;
}

/** Sorted code units where some state's answer may change: class k covers [boundaries[k-1], boundaries[k]). */
function classBoundaries(states: State[]): number[] {
  const points = new Set<number>([SLASH, SLASH + 1]);
  for (const { set } of states) {
    if (set === null || set === 'everything') continue;
    for (const [low, high] of set.ranges) points.add(low).add(high + 1);
  }
  return [...points].filter((point) => point > 0 && point <= 0xffff).sort((a, b) => a - b);
}

function classOf(boundaries: number[], unit: number): number {
  let low = 0;
  let high = boundaries.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((boundaries[middle] ?? 0) <= unit) low = middle + 1;
    else high = middle;
  }
  return low;
}
