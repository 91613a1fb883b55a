// An HTTP proxy that tests put between the service and S3 to inject faults: S3 error replies,
// connection resets before, during or after the request reaches S3, delays, and answers that S3
// gave but the client gets stalled, cut short or with a wrong ETag. It streams bodies both ways and
// forwards the Host header as the client sent it, so SigV4 signatures stay valid.
//
//   const proxy = await startFaultProxy(testS3().endpoint);
//   const fault = proxy.inject({ method: 'PUT', query: ['partNumber'], times: 1, fault: SLOW_DOWN });
//   ... point the service at proxy.endpoint ...
//   assert.equal(fault.hits, 1); assert.equal(proxy.stats.bodyBytesForwarded.PUT, size);
//   await proxy.close();
//
// Each request is also logged with its S3 operation (named from a path-style request), its times,
// its headers and its body bytes, so that tests can say what was sent when:
// stats.bodyBytesByOperation.UploadPart, log[i].headers['x-amz-storage-class'].
//
// With `stripHeaders`, it removes headers the test server refuses before forwarding (signing the
// request again; see header-strip.ts): it then stands in for an S3 that accepts them.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { stripHeaders, type HeaderStrip } from './header-strip.js';

export type Fault =
  /** Answers with this status and an S3 XML error document, after reading the request body; S3 never sees it. */
  | { type: 'error'; status: number; code: string; message?: string }
  /** Destroys the client's connection before anything reaches S3. */
  | { type: 'reset'; stage: 'before-forward' }
  /** Passes `afterBytes` bytes of the request body on to S3 (all of a shorter body), then destroys both connections. */
  | { type: 'reset'; stage: 'during-body'; afterBytes: number }
  /** S3 receives and answers the whole request; the client's connection is destroyed instead of answered. */
  | { type: 'reset'; stage: 'after-forward' }
  /** Holds the request this long before forwarding it. */
  | { type: 'delay'; ms: number }
  /**
   * S3 receives and answers the whole request; the proxy holds the answer (all of it, or its body
   * after the status and headers) for `ms`, or until the client gives up when `ms` is absent.
   */
  | { type: 'stall'; ms?: number; stage?: 'before-headers' | 'after-headers' }
  /**
   * S3 receives and answers the whole request; the client gets the status, the headers (with S3's
   * Content-Length) and the first `keepBytes` bytes of the body (default: half of it), then the
   * connection is destroyed. An answer without a body (PutObject, UploadPart) may arrive whole.
   */
  | { type: 'truncate'; keepBytes?: number }
  /**
   * S3 receives and answers the whole request; the ETag header and any <ETag> of the XML body reach
   * the client as `etag`, or by default as S3's ETag with its first hex digit changed.
   */
  | { type: 'wrong-etag'; etag?: string };

export const SLOW_DOWN: Fault = {
  type: 'error',
  status: 503,
  code: 'SlowDown',
  message: 'Please reduce your request rate.',
};
export const INTERNAL_ERROR: Fault = {
  type: 'error',
  status: 500,
  code: 'InternalError',
  message: 'We encountered an internal error. Please try again.',
};
/** What S3 answers when the client's body stopped coming for a while: a 400, yet worth retrying. */
export const REQUEST_TIMEOUT: Fault = {
  type: 'error',
  status: 400,
  code: 'RequestTimeout',
  message: 'Your socket connection to the server was not read from or written to within the timeout period.',
};
export const ACCESS_DENIED: Fault = {
  type: 'error',
  status: 403,
  code: 'AccessDenied',
  message: 'Access Denied',
};

export interface ProxiedRequest {
  method: string;
  /** as sent (percent-encoded), without the query string, e.g. /bucket/some/key */
  path: string;
  query: URLSearchParams;
}

export interface FaultRule {
  fault: Fault;
  /** e.g. 'PUT'; any method when absent */
  method?: string;
  /** exact path, or a pattern tested against it */
  path?: string | RegExp;
  /** only requests to this bucket (path-style: /bucket or /bucket/key) */
  bucket?: string;
  /** query parameters that must be present, e.g. ['partNumber', 'uploadId'] for UploadPart */
  query?: string[];
  where?: (request: ProxiedRequest) => boolean;
  /** matching requests let through before the fault starts; default 0 */
  skip?: number;
  /** how many matching requests get the fault; default: all of them */
  times?: number;
}

export interface InjectedFault {
  /** how many requests got this fault so far */
  readonly hits: number;
  remove(): void;
}

export interface ProxyStats {
  /** requests received, by method */
  requests: Record<string, number>;
  /** request body bytes passed on to S3, by method */
  bodyBytesForwarded: Record<string, number>;
  /** request body bytes passed on to S3, by S3 operation (UploadPart, PutObject...) */
  bodyBytesByOperation: Partial<Record<S3Operation, number>>;
  faultsInjected: number;
}

/** The S3 operations a path-style request can be told to be from its method, path, query and headers. */
export type S3Operation =
  | 'PutObject'
  | 'CopyObject'
  | 'UploadPart'
  | 'UploadPartCopy'
  | 'CreateMultipartUpload'
  | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload'
  | 'ListParts'
  | 'ListMultipartUploads'
  | 'GetObject'
  | 'HeadObject'
  | 'DeleteObject'
  | 'DeleteObjects'
  | 'ListObjects'
  | 'ListObjectsV2'
  | 'HeadBucket'
  | 'CreateBucket'
  | 'DeleteBucket'
  | 'Other';

export interface RequestRecord extends ProxiedRequest {
  operation: S3Operation;
  /** S3's status, the injected error's status, or 'reset' */
  outcome: number | 'reset';
  /** Date.now() when the request arrived */
  receivedAt: number;
  /** Date.now() when the answer's status was known (S3's, or the injected error's); undefined on a reset */
  answeredAt: number | undefined;
  /** request body bytes passed on to S3 */
  bodyBytes: number;
  /** the fault injected into this request, if any */
  fault: Fault['type'] | undefined;
  /** the request's headers as the client sent them (names in lower case, repeated ones joined by ', ') */
  headers: Readonly<Record<string, string>>;
  /** the headers removed before forwarding (see FaultProxyOptions.stripHeaders) */
  strippedHeaders: readonly string[];
}

export interface FaultProxyOptions {
  /** Headers removed from requests before they reach S3, which are then signed again. */
  stripHeaders?: HeaderStrip;
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly stats: ProxyStats;
  /** every request since the start or the last resetStats, in arrival order */
  readonly log: readonly RequestRecord[];
  /** Rules are tried in the order injected; the first that matches and has faults left applies. */
  inject(rule: FaultRule): InjectedFault;
  clearFaults(): void;
  resetStats(): void;
  /**
   * S3 goes down: the proxy stops listening and drops every connection, so that the client's
   * connections are refused (ECONNREFUSED) until comeBack().
   */
  goDown(): Promise<void>;
  /** S3 is back: the proxy listens again on the same port. */
  comeBack(): Promise<void>;
  close(): Promise<void>;
}

interface ActiveRule {
  rule: FaultRule;
  matched: number;
  hits: number;
}

// Hop-by-hop headers belong to one connection; the proxy's own connections have their own.
// (SigV4 never signs these.) `expect`: the proxy's server has already answered 100-continue.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

export async function startFaultProxy(
  targetEndpoint: string,
  options: FaultProxyOptions = {},
): Promise<FaultProxy> {
  const target = new URL(targetEndpoint);
  if (target.protocol !== 'http:')
    throw new Error(`the fault proxy forwards to http:// only, not ${targetEndpoint}`);
  // A fresh connection to S3 per request: no race with S3 closing an idle kept-alive one.
  const upstreamAgent = new http.Agent({ keepAlive: false });
  let rules: ActiveRule[] = [];
  let stats = emptyStats();
  let log: RequestRecord[] = [];
  let closed = false;
  const pendingDelays = new Set<NodeJS.Timeout>();

  function ruleFor(request: ProxiedRequest): ActiveRule | undefined {
    for (const active of rules) {
      if (!matches(active.rule, request)) continue;
      active.matched += 1;
      if (active.matched <= (active.rule.skip ?? 0)) continue;
      if (active.hits >= (active.rule.times ?? Infinity)) continue;
      active.hits += 1;
      return active;
    }
    return undefined;
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://proxy.invalid');
    const method = req.method ?? 'GET';
    const request: ProxiedRequest = { method, path: url.pathname, query: url.searchParams };
    const record: RequestRecord = {
      ...request,
      operation: s3OperationOf(request, req.headers['x-amz-copy-source'] !== undefined),
      outcome: 'reset',
      receivedAt: Date.now(),
      answeredAt: undefined,
      bodyBytes: 0,
      fault: undefined,
      headers: recordedHeaders(req.headers),
      strippedHeaders: [],
    };
    log.push(record);
    increment(stats.requests, method);

    const fault = ruleFor(request)?.rule.fault;
    if (fault) stats.faultsInjected += 1;
    record.fault = fault?.type;
    if (fault?.type === 'error') {
      req.resume(); // read the body to its end, as S3 would before answering
      await finished(req).catch(() => undefined);
      record.outcome = fault.status;
      record.answeredAt = Date.now();
      sendS3Error(res, fault, request.path);
      return;
    }
    if (fault?.type === 'reset' && fault.stage === 'before-forward') {
      req.socket.destroy();
      return;
    }
    if (fault?.type === 'delay') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          pendingDelays.delete(timer);
          resolve();
        }, fault.ms);
        pendingDelays.add(timer);
      });
      if (closed) return;
    }
    await forward(req, res, record, fault);
  }

  /** Resolves after `ms` (never when absent), or as soon as the client's socket closes or the proxy does. */
  async function hold(ms: number | undefined, socket: Socket): Promise<void> {
    if (socket.destroyed || closed) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        if (timer !== undefined) {
          clearTimeout(timer);
          pendingDelays.delete(timer);
        }
        socket.off('close', done);
        resolve();
      };
      const timer = ms === undefined ? undefined : setTimeout(done, ms);
      if (timer !== undefined) pendingDelays.add(timer);
      socket.once('close', done); // the client gave up, or close() ended every connection
    });
  }

  async function forward(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    record: RequestRecord,
    fault: Fault | undefined,
  ): Promise<void> {
    const cutAfterBytes =
      fault?.type === 'reset' && fault.stage === 'during-body' ? fault.afterBytes : undefined;
    const socket = req.socket; // kept: a destroyed request lets go of its socket
    let sentHeaders = req.headers;
    if (options.stripHeaders) {
      const stripped = stripHeaders(record.method, req.url ?? '/', req.headers, options.stripHeaders);
      sentHeaders = stripped.headers;
      record.strippedHeaders = stripped.removed;
    }
    const upstream = http.request({
      agent: upstreamAgent,
      host: target.hostname,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: forwardableHeaders(sentHeaders), // Host included, as the client signed it
    });
    const method = record.method;
    const counter = new ByteCounter((bytes) => {
      // `stats` may be replaced by resetStats meanwhile: count into the current one
      stats.bodyBytesForwarded[method] = (stats.bodyBytesForwarded[method] ?? 0) + bytes;
      stats.bodyBytesByOperation[record.operation] =
        (stats.bodyBytesByOperation[record.operation] ?? 0) + bytes;
      record.bodyBytes += bytes;
    }, cutAfterBytes);
    const response = new Promise<http.IncomingMessage>((resolve, reject) => {
      upstream.once('response', resolve);
      upstream.on('error', reject); // also after the answer: never an unhandled 'error'
      upstream.once('close', () => reject(new Error('connection to S3 closed before an answer')));
    });
    // S3 answers after the whole body, or earlier to reject it: so wait for the answer, not the body.
    const bodySent = pipeline(req, counter, upstream).catch(() => undefined); // it destroys both on failure

    let upstreamResponse: http.IncomingMessage;
    try {
      upstreamResponse = await response;
    } catch (error) {
      await bodySent;
      if (counter.cut || socket.destroyed) socket.destroy();
      else sendProxyError(res, error);
      return;
    }
    if (fault?.type === 'reset' && fault.stage === 'after-forward') {
      upstreamResponse.resume();
      socket.destroy();
      return;
    }
    const status = upstreamResponse.statusCode ?? 502;
    const headers = forwardableHeaders(upstreamResponse.headers);
    if (fault?.type === 'truncate' || fault?.type === 'wrong-etag') {
      const body = await readAll(upstreamResponse).catch(() => undefined);
      if (body === undefined || socket.destroyed) {
        socket.destroy();
        return;
      }
      record.answeredAt = Date.now();
      if (fault.type === 'wrong-etag') {
        record.outcome = status;
        const altered = withWrongEtags(headers, body, fault.etag);
        res.writeHead(status, upstreamResponse.statusMessage, altered.headers);
        res.end(altered.body);
        return;
      }
      record.outcome = 'reset';
      res.writeHead(status, upstreamResponse.statusMessage, { ...headers, 'content-length': body.length });
      const kept = body.subarray(0, Math.min(body.length, fault.keepBytes ?? Math.floor(body.length / 2)));
      res.write(kept, () => socket.destroy());
      return;
    }
    const stall = fault?.type === 'stall' ? fault : undefined;
    if (stall && (stall.stage ?? 'before-headers') === 'before-headers') {
      await hold(stall.ms, socket);
      if (socket.destroyed || closed) {
        upstreamResponse.destroy();
        return;
      }
    }
    record.outcome = status;
    record.answeredAt = Date.now();
    res.writeHead(status, upstreamResponse.statusMessage, headers);
    if (stall?.stage === 'after-headers') {
      res.flushHeaders();
      await hold(stall.ms, socket);
      if (socket.destroyed || closed) {
        upstreamResponse.destroy();
        record.outcome = 'reset';
        return;
      }
    }
    try {
      await pipeline(upstreamResponse, res);
    } catch {
      socket.destroy(); // S3 or the client went away mid-body: the client sees a cut response
    }
  }

  const server = http.createServer((req, res) => {
    const socket = req.socket;
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !socket.destroyed) sendProxyError(res, error);
      else socket.destroy();
    });
  });
  // Longer than the SDK keeps idle sockets, so that the proxy never closes one the client is about to reuse.
  server.keepAliveTimeout = 60_000;
  server.requestTimeout = 0; // tests bound their own time; a slow 100 MiB body is not an error here
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    get stats() {
      return stats;
    },
    get log() {
      return log;
    },
    inject(rule) {
      const active: ActiveRule = { rule, matched: 0, hits: 0 };
      rules.push(active);
      return {
        get hits() {
          return active.hits;
        },
        remove() {
          rules = rules.filter((candidate) => candidate !== active);
        },
      };
    },
    clearFaults() {
      rules = [];
    },
    resetStats() {
      stats = emptyStats();
      log = [];
    },
    async goDown() {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await stopped;
    },
    async comeBack() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const timer of pendingDelays) clearTimeout(timer);
      pendingDelays.clear();
      const stopped = new Promise<void>((resolve) => {
        if (server.listening) server.close(() => resolve());
        else resolve();
      });
      server.closeAllConnections();
      upstreamAgent.destroy();
      await stopped;
    },
  };
}

function matches(rule: FaultRule, request: ProxiedRequest): boolean {
  if (rule.method !== undefined && rule.method.toUpperCase() !== request.method) return false;
  if (rule.bucket !== undefined && request.path.split('/')[1] !== rule.bucket) return false;
  if (typeof rule.path === 'string' && rule.path !== request.path) return false;
  if (rule.path instanceof RegExp && !rule.path.test(request.path)) return false;
  if (rule.query?.some((name) => !request.query.has(name))) return false;
  return rule.where?.(request) ?? true;
}

function emptyStats(): ProxyStats {
  return { requests: {}, bodyBytesForwarded: {}, bodyBytesByOperation: {}, faultsInjected: 0 };
}

/** Names the operation of a path-style request: /bucket for bucket operations, /bucket/key for objects. */
export function s3OperationOf(request: ProxiedRequest, hasCopySource: boolean): S3Operation {
  const onObject = /^\/[^/]+\/./.test(request.path);
  const { query } = request;
  switch (request.method) {
    case 'PUT':
      if (!onObject) return 'CreateBucket';
      if (query.has('partNumber') && query.has('uploadId'))
        return hasCopySource ? 'UploadPartCopy' : 'UploadPart';
      return hasCopySource ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (query.has('uploads')) return 'CreateMultipartUpload';
      if (query.has('uploadId')) return 'CompleteMultipartUpload';
      if (query.has('delete')) return 'DeleteObjects';
      return 'Other';
    case 'DELETE':
      if (query.has('uploadId')) return 'AbortMultipartUpload';
      return onObject ? 'DeleteObject' : 'DeleteBucket';
    case 'GET':
      if (query.has('uploadId')) return 'ListParts';
      if (!onObject) {
        if (query.has('uploads')) return 'ListMultipartUploads';
        return query.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      }
      return 'GetObject';
    case 'HEAD':
      return onObject ? 'HeadObject' : 'HeadBucket';
    default:
      return 'Other';
  }
}

async function readAll(stream: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** S3's ETag with its first hex digit changed: the same shape (quotes, "-N"), another value. */
export function wrongEtagOf(etag: string): string {
  return etag.replace(/[0-9a-f]/i, (digit) => (digit === '0' ? '1' : '0'));
}

const XML_ETAG = /(<ETag>)([^<]*)(<\/ETag>)/g;

/** The answer with its ETag header and the <ETag> elements of its XML body replaced. */
function withWrongEtags(
  headers: http.OutgoingHttpHeaders,
  body: Buffer,
  etag: string | undefined,
): { headers: http.OutgoingHttpHeaders; body: Buffer } {
  const altered = { ...headers };
  if (typeof altered.etag === 'string') altered.etag = etag ?? wrongEtagOf(altered.etag);
  let text = body.toString('utf8');
  if (text.includes('<ETag>')) {
    text = text.replace(XML_ETAG, (_all, open: string, value: string, close: string) => {
      return `${open}${etag ?? wrongEtagOf(value)}${close}`;
    });
    body = Buffer.from(text, 'utf8');
  }
  altered['content-length'] = body.length;
  return { headers: altered, body };
}

function increment(counts: Record<string, number>, key: string): void {
  counts[key] = (counts[key] ?? 0) + 1;
}

function recordedHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const recorded: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) recorded[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return recorded;
}

function forwardableHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const kept: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) kept[name] = value;
  }
  return kept;
}

function sendS3Error(
  res: http.ServerResponse,
  fault: { status: number; code: string; message?: string },
  resource: string,
) {
  const requestId = randomUUID();
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${escapeXml(fault.code)}</Code><Message>${escapeXml(fault.message ?? fault.code)}</Message>` +
    `<Resource>${escapeXml(resource)}</Resource><RequestId>${requestId}</RequestId></Error>`;
  res.writeHead(fault.status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': requestId,
  });
  res.end(body);
}

/** The proxy could not reach S3: a 502 that says so, so that a broken test setup is not taken for a fault. */
function sendProxyError(res: http.ServerResponse, error: unknown): void {
  const message = `fault proxy: S3 unreachable: ${error instanceof Error ? error.message : String(error)}`;
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendS3Error(res, { status: 502, code: 'BadGateway', message }, '');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** Counts the bytes passing through; with a limit, passes that many and then fails the stream, also at the end of a shorter body. */
class ByteCounter extends Transform {
  cut = false;
  private passed = 0;

  constructor(
    private readonly onBytes: (bytes: number) => void,
    private readonly limit: number | undefined,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.limit === undefined || this.passed + chunk.length < this.limit) {
      this.passed += chunk.length;
      this.onBytes(chunk.length);
      callback(null, chunk);
      return;
    }
    const head = chunk.subarray(0, this.limit - this.passed);
    this.passed += head.length;
    this.onBytes(head.length);
    this.push(head);
    callback(this.cutError());
  }

  override _flush(callback: TransformCallback): void {
    if (this.limit === undefined) callback();
    else callback(this.cutError());
  }

  private cutError(): Error {
    this.cut = true;
    return new Error(`fault proxy: connection reset after ${this.passed} body bytes`);
  }
}
