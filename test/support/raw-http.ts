// HTTP/1.1 over a plain socket, for requests a client library would refuse or rewrite: a request
// line with `..` segments or raw bytes, malformed headers. Several replies may come back when the
// server reads trailing bytes as another request.
import { connect } from 'node:net';

export interface RawReply {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export interface RawRequest {
  method: string;
  target: string;
  headers: string;
}

/**
 * Sends the request bytes as written and reads until the server closes the connection. Bytes after
 * the first request's head may be read as a second request, so there may be several replies.
 */
export function sendRaw(port: number, request: RawRequest): Promise<RawReply[]> {
  const head = `${request.method} ${request.target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${request.headers}\r\n`;
  const what = JSON.stringify(head.slice(0, 300));
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete reply within 5 s to ${what}`));
    }, 5_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server may close while the request is still being written (an oversized header).
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseRawReplies(Buffer.concat(chunks), request.method === 'HEAD'));
      } catch (error) {
        reject(new Error(`unreadable reply to ${what}`, { cause: error }));
      }
    });
    // write, not end: a client that half-closes has its pending requests aborted by Node's server.
    socket.write(head);
  });
}

function parseRawReplies(bytes: Buffer, firstIsHead: boolean): RawReply[] {
  const replies: RawReply[] = [];
  let offset = 0;
  do {
    const headerEnd = bytes.indexOf('\r\n\r\n', offset);
    if (headerEnd < 0) {
      throw new Error(
        `no HTTP reply: ${JSON.stringify(bytes.subarray(offset, offset + 200).toString('latin1'))}`,
      );
    }
    const [statusLine = '', ...headerLines] = bytes
      .subarray(offset, headerEnd)
      .toString('latin1')
      .split('\r\n');
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
    if (!status?.[1]) throw new Error(`bad status line: ${statusLine}`);
    const headers: Record<string, string> = {};
    for (const line of headerLines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const statusCode = Number(status[1]);
    const bodyStart = headerEnd + 4;
    // A request the parser refused gets a body even when it said HEAD: the method was never read.
    const headReply =
      firstIsHead && replies.length === 0 && bytes.indexOf('HTTP/1.', headerEnd + 4) === headerEnd + 4;
    const bodiless = headReply || bytes.length === headerEnd + 4 || statusCode === 204 || statusCode === 304;
    const length = headers['content-length'];
    let body: Buffer;
    if (bodiless) {
      body = Buffer.alloc(0);
      offset = bodyStart;
    } else if (headers['transfer-encoding'] === 'chunked') {
      ({ body, end: offset } = dechunk(bytes, bodyStart));
    } else if (length !== undefined) {
      offset = bodyStart + Number(length);
      body = bytes.subarray(bodyStart, offset);
    } else {
      offset = bytes.length;
      body = bytes.subarray(bodyStart);
    }
    replies.push({ statusCode, headers, body: body.toString('utf8') });
  } while (offset < bytes.length);
  return replies;
}

function dechunk(bytes: Buffer, start: number): { body: Buffer; end: number } {
  const parts: Buffer[] = [];
  let offset = start;
  for (;;) {
    const lineEnd = bytes.indexOf('\r\n', offset);
    if (lineEnd < 0) return { body: Buffer.concat(parts), end: bytes.length };
    const size = Number.parseInt(bytes.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!(size > 0)) return { body: Buffer.concat(parts), end: lineEnd + 4 };
    parts.push(bytes.subarray(lineEnd + 2, lineEnd + 2 + size));
    offset = lineEnd + 2 + size + 2;
  }
}
