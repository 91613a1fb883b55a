// How numbers and tables look in the CLI's human output. --json prints the API's own values.

const MiB = 1024 * 1024;
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

/** The power of 1024 that writes `bytes` with 1 to 4 digits before the point. */
function exponentOf(bytes: number): number {
  let exponent = 0;
  while (bytes >= 1024 ** (exponent + 1) && exponent < UNITS.length - 1) exponent++;
  return exponent;
}

function scaled(bytes: number, exponent: number, reference: number): string {
  const value = bytes / 1024 ** exponent;
  return value.toFixed(reference / 1024 ** exponent < 10 ? 2 : 1);
}

/** 512 B, 1.50 KiB, 12.0 MiB, 2.31 TiB: binary units, as the service's settings are. */
export function formatBytes(bytes: number): string {
  const exponent = exponentOf(bytes);
  if (exponent === 0) return `${bytes} B`;
  return `${scaled(bytes, exponent, bytes)} ${UNITS[exponent]}`;
}

/** `12.0/26.5 MiB`: both in the total's unit, so that they read as one quantity. */
export function formatBytesOf(done: number, total: number): string {
  const largest = Math.max(done, total);
  const exponent = exponentOf(largest);
  if (exponent === 0) return `${done}/${total} B`;
  return `${scaled(done, exponent, largest)}/${scaled(total, exponent, largest)} ${UNITS[exponent]}`;
}

/** Throughput always in MiB/s, the unit people compare uploads in. */
export function formatRate(bytesPerSecond: number): string {
  const mibPerSecond = bytesPerSecond / MiB;
  return `${mibPerSecond.toFixed(mibPerSecond < 10 ? 2 : 1)} MiB/s`;
}

/** 42s, 3m05s, 2h03m, 4d07h; `--` when the API gives no estimate. */
export function formatEta(seconds: number | null): string {
  if (seconds === null) return '--';
  if (seconds < 60) return `${seconds}s`;
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${pad(seconds % 60)}s`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h${pad(Math.floor((seconds % 3600) / 60))}m`;
  return `${Math.floor(seconds / 86_400)}d${pad(Math.floor((seconds % 86_400) / 3600))}h`;
}

/** Whole percent done, never 100 before the end (rounded down). */
export function formatPercent(done: number, total: number): string {
  if (total <= 0) return '0%';
  return `${Math.floor((Math.min(done, total) / total) * 100)}%`;
}

export function s3Url(bucket: string, prefix: string): string {
  return prefix === '' ? `s3://${bucket}` : `s3://${bucket}/${prefix}`;
}

/** Columns padded to their widest cell; the last one is not padded, so lines end without spaces. */
export function alignColumns(rows: readonly (readonly string[])[]): string[] {
  const columns = Math.max(0, ...rows.map((row) => row.length));
  const widths = Array.from({ length: columns }, (_, column) =>
    Math.max(...rows.map((row) => (row[column] ?? '').length)),
  );
  return rows.map((row) =>
    row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '),
  );
}

export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  return alignColumns([header, ...rows]);
}
