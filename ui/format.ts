// Numbers, times and object properties as people read them.
import type { ObjectProperties } from './api-types.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 → "1.5 KiB": binary units, one decimal. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** MiB/s with one decimal; below 0.1 MiB/s in KiB/s, so that a slow upload does not read 0.0. */
export function formatRate(bytesPerSecond: number): string {
  if (bytesPerSecond === 0) return '—';
  const mebibytes = bytesPerSecond / 1024 / 1024;
  return mebibytes < 0.1 ? `${(bytesPerSecond / 1024).toFixed(1)} KiB/s` : `${mebibytes.toFixed(1)} MiB/s`;
}

/** 4000 → "1 h 06 min"; null (no estimate) → "—". */
export function formatEta(seconds: number | null): string {
  if (seconds === null) return '—';
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** The time of day for today, the date and time otherwise; "—" for none. */
export function formatTime(iso: string | null): string {
  if (iso === null) return '—';
  const date = new Date(iso);
  const sameDay = date.toDateString() === new Date().toDateString();
  return sameDay
    ? date.toLocaleTimeString()
    : date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** Whole percent, rounded down, so that 100% means done. */
export function percent(part: number, whole: number): number {
  return whole === 0 ? 0 : Math.floor((part / whole) * 100);
}

/**
 * The properties of an upload's objects that are set, as short phrases in the order of the API's
 * fields ("GLACIER_IR", "aws:kms (key alias/lab)", "metadata project=genomics", "tags lab=seq"); [] when none is.
 */
export function objectPropertyPhrases(properties: ObjectProperties): string[] {
  const pairs = (entries: Record<string, string>): string =>
    Object.entries(entries)
      .map(([key, value]) => `${key}=${value}`)
      .join(', ');
  const phrases: string[] = [];
  if (properties.storage_class !== null) phrases.push(`storage class ${properties.storage_class}`);
  if (properties.sse !== null) {
    const key = properties.sse_kms_key_id === null ? '' : ` (key ${properties.sse_kms_key_id})`;
    phrases.push(`encryption ${properties.sse}${key}`);
  }
  if (Object.keys(properties.metadata).length > 0) phrases.push(`metadata ${pairs(properties.metadata)}`);
  if (Object.keys(properties.tags).length > 0) phrases.push(`tags ${pairs(properties.tags)}`);
  return phrases;
}
