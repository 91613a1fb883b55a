// Markdown tables (to paste into the README) and the formatting of their cells.
import { median } from './statistics.js';

export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** A number with fixed digits; '-' when there is none. */
export function fixed(value: number | null | undefined, digits = 1): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '-' : value.toFixed(digits);
}

/** The median of repeated runs, with their range when there were several: `110 (105–115)`. */
export function summary(values: readonly (number | null)[], digits = 1): string {
  const known = values.filter((value): value is number => value !== null);
  if (known.length === 0) return '-';
  const middle = fixed(median(known), digits);
  if (known.length === 1) return middle;
  return `${middle} (${fixed(Math.min(...known), digits)}–${fixed(Math.max(...known), digits)})`;
}

/** `service ÷ peer` of the medians, as `1.38×`; '-' when either is missing. */
export function ratio(service: readonly (number | null)[], peer: readonly (number | null)[]): string {
  const known = (values: readonly (number | null)[]) =>
    median(values.filter((value): value is number => value !== null));
  const ours = known(service);
  const theirs = known(peer);
  if (ours === null || theirs === null || theirs === 0) return '-';
  return `${(ours / theirs).toFixed(2)}×`;
}
