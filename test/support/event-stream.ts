// A client of GET /events as the dashboard and the CLI are: fetch() with the token, the body read as
// it comes and cut into Server-Sent Events by the rules of the HTML standard's parser (fields up to
// a blank line; a line starting with ':' is a comment).
import assert from 'node:assert/strict';

export interface StreamedEvent {
  id: string;
  event: string;
  data: Record<string, unknown>;
}

export interface EventStreamClient {
  response: Response;
  /** Every event received so far, in order. */
  events: StreamedEvent[];
  /** The comment lines received so far (`heartbeat`). */
  comments: string[];
  /** Resolves when the server ends the stream (or it fails); with the error, if any. */
  ended: Promise<Error | undefined>;
  close(): void;
}

/** Opens the stream and reads it in the background; rejects unless the answer is a 200 event stream. */
export async function openEventStream(url: string, token?: string): Promise<EventStreamClient> {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  if (response.status !== 200) {
    throw new Error(`GET /events answered ${response.status}: ${await response.text()}`);
  }
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: StreamedEvent[] = [];
  const comments: string[] = [];
  const ended = read(response, events, comments).then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  return { response, events, comments, ended, close: () => controller.abort() };
}

async function read(response: Response, events: StreamedEvent[], comments: string[]): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = '';
  let fields: Record<string, string> = {};
  for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline = buffered.indexOf('\n');
    while (newline !== -1) {
      const line = buffered.slice(0, newline).replace(/\r$/, '');
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf('\n');
      if (line === '') {
        if (fields.data !== undefined) {
          events.push({
            id: fields.id ?? '',
            event: fields.event ?? 'message',
            data: JSON.parse(fields.data) as Record<string, unknown>,
          });
        }
        fields = {};
      } else if (line.startsWith(':')) {
        comments.push(line.slice(1).trim());
      } else {
        const colon = line.indexOf(':');
        const name = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        fields[name] = name === 'data' && fields.data !== undefined ? `${fields.data}\n${value}` : value;
      }
    }
  }
}
