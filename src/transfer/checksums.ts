import { createHash } from 'node:crypto';
import { Crc32, Crc32c } from '@aws-sdk/checksums/crc';
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

/** The field of UploadPart that carries an additional checksum, and the header it becomes. */
export type ChecksumField = 'ChecksumCRC32' | 'ChecksumCRC32C' | 'ChecksumSHA256';

/** An additional checksum computed as the bytes go by. */
export interface RunningChecksum {
  field: ChecksumField;
  update(data: Uint8Array): void;
  /** Base64, as the header carries it. */
  digest(): Promise<string>;
}

/**
 * The additional checksum the SDK puts on a part sent from a Buffer: the configured one, or CRC32
 * when the client adds one to every request that supports it (S3_CHECKSUM_MODE=when_supported). A
 * part sent as a stream must carry it computed beforehand: otherwise the SDK frames the body
 * aws-chunked with a trailing checksum, which S3-compatible servers refuse. The SDK's own CRC
 * implementations, so that the header is exactly the one it would have computed.
 */
export function runningChecksum(
  algorithm: ChecksumAlgorithm,
  whenSupported: boolean,
): RunningChecksum | undefined {
  if (algorithm === 'sha256') {
    const hash = createHash('sha256');
    return {
      field: 'ChecksumSHA256',
      update: (data) => hash.update(data),
      digest: () => Promise.resolve(hash.digest('base64')),
    };
  }
  const crc = algorithm === 'crc32c' ? new Crc32c() : whenSupported ? new Crc32() : undefined;
  if (crc === undefined) return undefined;
  return {
    field: algorithm === 'crc32c' ? 'ChecksumCRC32C' : 'ChecksumCRC32',
    update: (data) => crc.update(data),
    digest: async () => Buffer.from(await crc.digest()).toString('base64'),
  };
}
