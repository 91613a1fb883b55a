import { createHash } from 'node:crypto';
import type { ChecksumAlgorithm as SdkChecksumAlgorithm } from '@aws-sdk/client-s3';
import type { ChecksumAlgorithm } from '../config.js';

export interface Md5 {
  hex: string;
  /** For the Content-MD5 header. */
  base64: string;
}

export function md5Of(data: Uint8Array): Md5 {
  const digest = createHash('md5').update(data).digest();
  return { hex: digest.toString('hex'), base64: digest.toString('base64') };
}

/** S3's ETag of a completed multipart upload: the MD5 of the parts' binary MD5s, then '-' and the part count. */
export function multipartEtag(partMd5Hexes: readonly string[]): string {
  const hash = createHash('md5');
  for (const hex of partMd5Hexes) hash.update(Buffer.from(hex, 'hex'));
  return `${hash.digest('hex')}-${partMd5Hexes.length}`;
}

/** ETags travel quoted ("…"); compare them bare and in lower case. */
export function normalizeEtag(etag: string): string {
  return etag
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
}

/** The SDK's name of the additional checksum to send with every part; none for 'md5' (Content-MD5 only). */
export function sdkChecksumAlgorithm(algorithm: ChecksumAlgorithm): SdkChecksumAlgorithm | undefined {
  if (algorithm === 'crc32c') return 'CRC32C';
  if (algorithm === 'sha256') return 'SHA256';
  return undefined;
}
