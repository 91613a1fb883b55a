// Arguments the CLI checks itself before anything is sent: the s3:// destination, the service's
// URL, and numbers. Each throws commander's InvalidArgumentError, which becomes a usage error (2).
import { InvalidArgumentError } from 'commander';

export interface S3Destination {
  bucket: string;
  /** What follows the bucket, as written (no leading `/`); '' for none. */
  prefix: string;
}

/**
 * `s3://bucket` or `s3://bucket/prefix/...`. Written by hand rather than with `new URL`, which
 * would lowercase the bucket and percent-encode the prefix: keys are taken byte for byte.
 * Whether the bucket name is valid is the service's to say (400 invalid_bucket_name).
 */
export function parseS3Destination(value: string): S3Destination {
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/is.exec(value);
  if (!match) throw new InvalidArgumentError('write it s3://bucket or s3://bucket/prefix.');
  const bucket = match[1]!;
  if (bucket === '') throw new InvalidArgumentError('the bucket is missing: write it s3://bucket/prefix.');
  return { bucket, prefix: match[2] ?? '' };
}

/** The service's address: http or https, nothing else. */
export function parseServiceUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('not a URL: write it like http://127.0.0.1:8000.');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgumentError(`the URL must start with http:// or https://, not ${url.protocol}//.`);
  }
  if (url.search !== '' || url.hash !== '')
    throw new InvalidArgumentError('the URL takes no ?query or #fragment.');
  return url;
}

const BINARY_UNITS: Record<string, number> = { '': 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/**
 * A byte count: a whole number, optionally followed by KiB, MiB or GiB (binary units only, so that
 * 4MiB cannot be mistaken for 4,000,000 bytes).
 */
export function parseByteCount(value: string): number {
  const match = /^(\d+)\s*(kib|mib|gib)?$/i.exec(value.trim());
  if (!match)
    throw new InvalidArgumentError('must be a whole number of bytes, optionally with KiB, MiB or GiB.');
  const bytes = Number(match[1]) * BINARY_UNITS[(match[2] ?? '').toLowerCase()]!;
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError('is too large.');
  return bytes;
}

export function parsePositiveInteger(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw new InvalidArgumentError('must be a whole number from 1 up.');
  }
  return Number(value);
}

/** Seconds between polls: at least 0.1, so that a typo cannot hammer the service. */
export function parseIntervalSeconds(value: string): number {
  const seconds = Number(value);
  if (value.trim() === '' || !Number.isFinite(seconds) || seconds < 0.1) {
    throw new InvalidArgumentError('must be a number of seconds, 0.1 or more.');
  }
  return seconds;
}

/** One value of a repeatable option (--complete-marker), after the ones before it. */
export function collectValues(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * One `key=value` of a repeatable option (--metadata, --tag), added to the ones before it. The key
 * ends at the first `=`; the value may hold more. Whether S3 takes them is the service's to say.
 */
export function collectKeyValue(
  value: string,
  previous: Record<string, string> = {},
): Record<string, string> {
  const at = value.indexOf('=');
  if (at <= 0) throw new InvalidArgumentError('write it key=value.');
  const key = value.slice(0, at);
  if (Object.hasOwn(previous, key)) throw new InvalidArgumentError(`the key '${key}' is given twice.`);
  return { ...previous, [key]: value.slice(at + 1) };
}
