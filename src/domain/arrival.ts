// What tells downstream that an upload's files are all in S3 (see docs/run-folders.md): completion
// markers uploaded last, a manifest listing every file, and a notification of the arrival.
import { objectKeyFor } from './object-key.js';
import { compilePattern, patternProblem } from './pattern.js';

/** More markers than a run folder has names for completion is a mistake, not a need. */
export const MAX_COMPLETE_MARKERS = 16;

/** The manifest's name under the upload's prefix, unless manifest_key names another key. */
export const DEFAULT_MANIFEST_NAME = '_manifest.json';

export function defaultManifestKey(destinationPrefix: string): string {
  return objectKeyFor(destinationPrefix, DEFAULT_MANIFEST_NAME);
}

/** What is wrong with a list of marker globs, naming the entry at fault; null when nothing is. */
export function completeMarkersProblem(
  markers: readonly string[],
): { marker: string; problem: string } | null {
  if (markers.length > MAX_COMPLETE_MARKERS)
    return {
      marker: markers[MAX_COMPLETE_MARKERS]!,
      problem: `at most ${MAX_COMPLETE_MARKERS} markers are allowed`,
    };
  const seen = new Set<string>();
  for (const marker of markers) {
    const problem = patternProblem(marker);
    if (problem !== null) return { marker, problem };
    if (seen.has(marker)) return { marker, problem: 'it is listed twice' };
    seen.add(marker);
  }
  return null;
}

/** Whether a relative path is one of the markers; undefined when there are none (nothing to ask). */
export function markerMatcher(markers: readonly string[]): ((relativePath: string) => boolean) | undefined {
  if (markers.length === 0) return undefined;
  const matchers = markers.map(compilePattern);
  return (relativePath) => matchers.some((matches) => matches(relativePath));
}
