// A minimal S3-compatible endpoint in memory, for figures only: it answers in microseconds, so that
// a client's own cost shows (on Swift the server is the bottleneck and every client looks alike).
// It keeps each object's size and ETag, never its bytes, and checks Content-MD5 (BadDigest) as S3
// does; it checks no signature and no other checksum. Never for correctness tests: those run
// against a real server (test/support/s3-server.sh).
//
// Path-style requests: bucket create, head, delete and ListObjectsV2; PutObject, HeadObject,
// DeleteObject; CreateMultipartUpload, UploadPart, ListParts, CompleteMultipartUpload (with S3's
// md5-of-md5s ETag), AbortMultipartUpload, ListMultipartUploads. Anything else is a 501.
// Hand-written rather than taken from npm: the S3 servers there are slower than the client they
// would measure, or need a newer Node (../shared/s3/RESULTS.md).
//
// `latencyMs` stands in for a real region: each answer is sent that much later, by a timer per
// request, so that requests in flight wait side by side, not one after another.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MemoryObject {
  size: number;
  etag: string;
  lastModified: Date;
}

interface Part {
  size: number;
  md5: Buffer;
}

interface Multipart {
  bucket: string;
  key: string;
  initiated: Date;
  parts: Map<number, Part>;
}

const LIST_PAGE = 1000;

function xmlEscape(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function xml(body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
}

export interface MemoryS3Options {
  /** Added to every answer, e.g. 30 for a region 30 ms away; 0 (the default) answers at once. */
  latencyMs?: number;
}

/** `PUT object`, `GET bucket?list-type&prefix`: the method, what it is on, and the query's names. */
function kindOf(request: IncomingMessage): string {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const onObject = url.pathname.slice(1).includes('/') && !url.pathname.endsWith('/');
  const names = [...new Set(url.searchParams.keys())].sort().join('&');
  return `${request.method ?? 'GET'} ${onObject ? 'object' : 'bucket'}${names ? `?${names}` : ''}`;
}

export class MemoryS3 {
  private readonly buckets = new Map<string, Map<string, MemoryObject>>();
  private readonly multiparts = new Map<string, Multipart>();
  private readonly delayed = new Set<NodeJS.Timeout>();
  private server: Server | undefined;
  readonly latencyMs: number;
  /** Requests answered, for the report. */
  requests = 0;
  /** Requests by kind (`PUT object`, `GET bucket?list-type&prefix`...): what a client asks for. */
  readonly requestsByKind = new Map<string, number>();

  constructor(options: MemoryS3Options = {}) {
    this.latencyMs = options.latencyMs ?? 0;
  }

  async start(): Promise<string> {
    const server = createServer((request, response) => {
      this.requests += 1;
      const kind = kindOf(request);
      this.requestsByKind.set(kind, (this.requestsByKind.get(kind) ?? 0) + 1);
      this.handle(request, response).catch((error: unknown) => {
        if (!response.headersSent) this.error(response, 500, 'InternalError', String(error));
        else response.destroy();
      });
    });
    // The service keeps connections open between requests, as it does with S3.
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    for (const timer of this.delayed) clearTimeout(timer);
    this.delayed.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  createBucket(bucket: string): void {
    if (!this.buckets.has(bucket)) this.buckets.set(bucket, new Map());
  }

  dropBucket(bucket: string): void {
    this.buckets.delete(bucket);
    for (const [id, upload] of this.multiparts) if (upload.bucket === bucket) this.multiparts.delete(id);
  }

  /** The objects of a bucket, by key (empty when the bucket does not exist). */
  objects(bucket: string): ReadonlyMap<string, MemoryObject> {
    return this.buckets.get(bucket) ?? new Map();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
    const key = decodeURIComponent(rest.join('/'));
    const query = url.searchParams;
    const method = request.method ?? 'GET';
    const objects = this.buckets.get(bucket);
    // Only a completion's body is read as text (its XML); a PUT's bytes are hashed and dropped.
    const body = await this.read(request, response, method === 'POST');
    if (body === undefined) return; // BadDigest, answered

    if (key === '') {
      if (method === 'PUT') {
        this.createBucket(bucket);
        return this.reply(response, 200);
      }
      if (!objects) return this.error(response, 404, 'NoSuchBucket', bucket);
      if (method === 'HEAD') return this.reply(response, 200);
      if (method === 'DELETE') {
        this.dropBucket(bucket);
        return this.reply(response, 204);
      }
      if (method === 'GET' && query.has('uploads')) return this.listMultiparts(response, bucket);
      if (method === 'GET') return this.listObjects(response, bucket, objects, query);
      return this.error(response, 501, 'NotImplemented', `${method} on a bucket`);
    }
    if (!objects) return this.error(response, 404, 'NoSuchBucket', bucket);
    if (request.headers['x-amz-copy-source']) return this.error(response, 501, 'NotImplemented', 'copies');

    const uploadId = query.get('uploadId');
    if (method === 'POST' && query.has('uploads')) {
      const id = randomUUID();
      this.multiparts.set(id, { bucket, key, initiated: new Date(), parts: new Map() });
      return this.reply(
        response,
        200,
        xml(
          `<InitiateMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
        ),
      );
    }
    if (uploadId !== null) {
      const upload = this.multiparts.get(uploadId);
      if (!upload || upload.bucket !== bucket || upload.key !== key)
        return this.error(response, 404, 'NoSuchUpload', uploadId);
      if (method === 'PUT') {
        const partNumber = Number(query.get('partNumber'));
        upload.parts.set(partNumber, { size: body.size, md5: body.md5 });
        return this.reply(response, 200, '', { etag: `"${body.md5.toString('hex')}"` });
      }
      if (method === 'GET') return this.listParts(response, uploadId, upload);
      if (method === 'DELETE') {
        this.multiparts.delete(uploadId);
        return this.reply(response, 204);
      }
      if (method === 'POST') return this.complete(response, uploadId, upload, objects, body.text);
    }
    const object = objects.get(key);
    if (method === 'PUT') {
      const etag = `"${body.md5.toString('hex')}"`;
      objects.set(key, { size: body.size, etag, lastModified: new Date() });
      return this.reply(response, 200, '', { etag });
    }
    if (method === 'HEAD') {
      if (!object) return this.reply(response, 404);
      return this.reply(response, 200, undefined, {
        etag: object.etag,
        'content-length': String(object.size),
        'last-modified': object.lastModified.toUTCString(),
      });
    }
    if (method === 'DELETE') {
      objects.delete(key);
      return this.reply(response, 204);
    }
    return this.error(response, 501, 'NotImplemented', `${method} of an object`);
  }

  /** Reads the body: its size and MD5, and its text when `asText` (the XML of a completion). */
  private async read(
    request: IncomingMessage,
    response: ServerResponse,
    asText: boolean,
  ): Promise<{ size: number; md5: Buffer; text: string } | undefined> {
    const hash = createHash('md5');
    let size = 0;
    const chunks: Buffer[] = [];
    for await (const chunk of request as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (asText) chunks.push(chunk);
    }
    const md5 = hash.digest();
    const expected = request.headers['content-md5'];
    if (typeof expected === 'string' && expected !== md5.toString('base64')) {
      this.error(response, 400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      return undefined;
    }
    return { size, md5, text: asText ? Buffer.concat(chunks).toString('utf8') : '' };
  }

  private complete(
    response: ServerResponse,
    uploadId: string,
    upload: Multipart,
    objects: Map<string, MemoryObject>,
    text: string,
  ): void {
    // Each <Part> holds its <PartNumber> and <ETag> (and maybe checksums), in any order.
    const listed = [...text.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map(([, part]) => ({
      number: /<PartNumber>(\d+)<\/PartNumber>/.exec(part!)?.[1],
      etag: /<ETag>([^<]+)<\/ETag>/.exec(part!)?.[1],
    }));
    if (listed.length === 0) return this.error(response, 400, 'MalformedXML', 'no parts');
    const md5s: Buffer[] = [];
    let size = 0;
    for (const { number, etag } of listed) {
      const part = upload.parts.get(Number(number));
      const quoted = (etag ?? '').replace(/&quot;/g, '"');
      if (!part || `"${part.md5.toString('hex')}"` !== quoted)
        return this.error(response, 400, 'InvalidPart', `part ${number}`);
      md5s.push(part.md5);
      size += part.size;
    }
    const etag = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${listed.length}"`;
    objects.set(upload.key, { size, etag, lastModified: new Date() });
    this.multiparts.delete(uploadId);
    this.reply(
      response,
      200,
      xml(
        `<CompleteMultipartUploadResult><Bucket>${xmlEscape(upload.bucket)}</Bucket><Key>${xmlEscape(upload.key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
      ),
    );
  }

  private listParts(response: ServerResponse, uploadId: string, upload: Multipart): void {
    const parts = [...upload.parts.entries()]
      .sort(([a], [b]) => a - b)
      .map(
        ([number, part]) =>
          `<Part><PartNumber>${number}</PartNumber><ETag>"${part.md5.toString('hex')}"</ETag><Size>${part.size}</Size></Part>`,
      )
      .join('');
    this.reply(
      response,
      200,
      xml(
        `<ListPartsResult><Bucket>${xmlEscape(upload.bucket)}</Bucket><Key>${xmlEscape(upload.key)}</Key><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated>${parts}</ListPartsResult>`,
      ),
    );
  }

  private listMultiparts(response: ServerResponse, bucket: string): void {
    const uploads = [...this.multiparts.entries()]
      .filter(([, upload]) => upload.bucket === bucket)
      .map(
        ([id, upload]) =>
          `<Upload><Key>${xmlEscape(upload.key)}</Key><UploadId>${id}</UploadId><Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`,
      )
      .join('');
    this.reply(
      response,
      200,
      xml(
        `<ListMultipartUploadsResult><Bucket>${xmlEscape(bucket)}</Bucket><IsTruncated>false</IsTruncated>${uploads}</ListMultipartUploadsResult>`,
      ),
    );
  }

  private listObjects(
    response: ServerResponse,
    bucket: string,
    objects: Map<string, MemoryObject>,
    query: URLSearchParams,
  ): void {
    const prefix = query.get('prefix') ?? '';
    const after = query.get('continuation-token') ?? query.get('start-after') ?? '';
    const keys = [...objects.keys()].filter((key) => key.startsWith(prefix) && key > after).sort();
    const page = keys.slice(0, LIST_PAGE);
    const truncated = keys.length > page.length;
    const contents = page
      .map((key) => {
        const object = objects.get(key)!;
        return `<Contents><Key>${xmlEscape(key)}</Key><LastModified>${object.lastModified.toISOString()}</LastModified><ETag>${xmlEscape(object.etag)}</ETag><Size>${object.size}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join('');
    const next = truncated ? `<NextContinuationToken>${xmlEscape(page.at(-1)!)}</NextContinuationToken>` : '';
    this.reply(
      response,
      200,
      xml(
        `<ListBucketResult><Name>${xmlEscape(bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${LIST_PAGE}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`,
      ),
    );
  }

  private reply(
    response: ServerResponse,
    status: number,
    body = '',
    headers: Record<string, string> = {},
  ): void {
    const send = () => {
      if (response.destroyed) return;
      response.writeHead(status, {
        ...(body
          ? { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) }
          : {}),
        ...headers,
        'x-amz-request-id': String(this.requests),
      });
      response.end(body);
    };
    if (this.latencyMs <= 0) return send();
    const timer = setTimeout(() => {
      this.delayed.delete(timer);
      send();
    }, this.latencyMs);
    this.delayed.add(timer);
  }

  private error(response: ServerResponse, status: number, code: string, message: string): void {
    this.reply(
      response,
      status,
      xml(`<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`),
    );
  }
}
