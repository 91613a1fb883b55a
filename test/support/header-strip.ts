// Removing request headers on their way to S3, for the fault proxy: what stands in for an S3 that
// accepts a header the test server refuses (Swift's s3api answers 501 to server-side encryption and
// tagging, 400 to a storage class other than STANDARD). SigV4 signs those headers, so the request
// is signed again without them, with the same date, credential scope and payload hash: S3 then
// checks a signature exactly as the client would have made it without the headers.
import { createHash, createHmac } from 'node:crypto';
import type http from 'node:http';

export interface HeaderStrip {
  /** Whether to remove this header (its name in lower case). */
  strips(name: string, value: string): boolean;
  /** The secret of the access key the client signs with. */
  secretAccessKey: string;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=[0-9a-f]{64}$/;

/** RFC 3986's unreserved characters stay; everything else is %XX, as SigV4 wants. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

function canonicalQuery(rawQuery: string): string {
  if (rawQuery === '') return '';
  return rawQuery
    .split('&')
    .map((pair) => {
      const at = pair.indexOf('=');
      const [key, value] = at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
      return [uriEncode(decodeURIComponent(key)), uriEncode(decodeURIComponent(value))] as const;
    })
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

function headerValue(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return text.trim().replace(/\s+/g, ' ');
}

const hmac = (key: Buffer | string, text: string): Buffer => createHmac('sha256', key).update(text).digest();

/**
 * The headers to forward: `headers` without those `strip` removes, signed again when any was
 * removed; `headers` themselves when none was, or when the request is not signed with a header.
 * `removed` receives the names removed.
 */
export function stripHeaders(
  method: string,
  rawUrl: string,
  headers: http.IncomingHttpHeaders,
  strip: HeaderStrip,
): { headers: http.IncomingHttpHeaders; removed: string[] } {
  const removed = Object.entries(headers)
    .filter(([name, value]) => value !== undefined && strip.strips(name, headerValue(value)))
    .map(([name]) => name);
  const match = AUTHORIZATION.exec(headerValue(headers.authorization));
  if (removed.length === 0 || !match) return { headers, removed: [] };
  const [, accessKeyId = '', day = '', region = '', service = '', signed = ''] = match;
  const kept: http.IncomingHttpHeaders = { ...headers };
  for (const name of removed) delete kept[name];
  const signedHeaders = signed.split(';').filter((name) => !removed.includes(name));
  const queryAt = rawUrl.indexOf('?');
  const path = queryAt < 0 ? rawUrl : rawUrl.slice(0, queryAt);
  const query = queryAt < 0 ? '' : rawUrl.slice(queryAt + 1);
  const canonicalRequest = [
    method,
    path,
    canonicalQuery(query),
    signedHeaders.map((name) => `${name}:${headerValue(kept[name])}\n`).join(''),
    signedHeaders.join(';'),
    headerValue(kept['x-amz-content-sha256']) || 'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    headerValue(kept['x-amz-date']),
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${strip.secretAccessKey}`, day), region), service),
    'aws4_request',
  );
  const signature = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  kept.authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`;
  return { headers: kept, removed };
}
