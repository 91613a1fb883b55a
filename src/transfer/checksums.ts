import { createHash } from 'node:crypto';

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
