// The live connection to GET /events. fetch() rather than EventSource, which cannot send the
// token; the stream is parsed by sse.ts. The contract has no replay (no Last-Event-ID), so every
// time the stream opens, the page rebuilds its view from the REST API (onOpen). A dropped stream is
// opened again after 1 s, 2 s, 4 s ... up to 30 s; a stream silent for three heartbeats (45 s) is
// taken for dead. A service without /events (404) is asked again every 30 s, the page polling
// meanwhile.
import { apiUrl, authorizationHeader } from './api.js';
import { eventOf, type ServiceEvent } from './events.js';
import { SseParser } from './sse.js';

/** `unavailable`: the service has no event stream; `unauthorized`: the token is missing or wrong. */
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'unavailable' | 'unauthorized';

export interface LiveHandlers {
  onEvent(event: ServiceEvent): void;
  onStatus(status: LiveStatus): void;
  /** The stream (re)opened: what happened before it was missed. */
  onOpen(): void;
}

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
const SILENCE_MS = 45_000;

type Outcome = 'dropped' | 'not-found' | 'unauthorized';

/** Opens the stream and keeps it open until the returned function is called. */
export function connectLive(handlers: LiveHandlers): () => void {
  const stop = new AbortController();
  void run(handlers, stop.signal);
  return () => stop.abort();
}

async function run(handlers: LiveHandlers, stopped: AbortSignal): Promise<void> {
  let failures = 0;
  handlers.onStatus('connecting');
  while (!stopped.aborted) {
    const { outcome, opened } = await session(handlers, stopped);
    if (stopped.aborted) return;
    if (outcome === 'unauthorized') {
      handlers.onStatus('unauthorized'); // the page connects again once it has a token
      return;
    }
    failures = opened ? 0 : failures + 1;
    handlers.onStatus(outcome === 'not-found' ? 'unavailable' : 'reconnecting');
    const delay =
      outcome === 'not-found' ? MAX_RETRY_MS : Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** failures);
    await pause(delay * (0.8 + Math.random() * 0.4), stopped); // jitter: many pages, not all at once
  }
}

async function session(
  handlers: LiveHandlers,
  stopped: AbortSignal,
): Promise<{ outcome: Outcome; opened: boolean }> {
  const connection = new AbortController();
  const abort = (): void => connection.abort();
  stopped.addEventListener('abort', abort);
  let silence: number | undefined;
  const listen = (): void => {
    clearTimeout(silence);
    silence = setTimeout(abort, SILENCE_MS);
  };
  let opened = false;
  try {
    const response = await fetch(apiUrl('events'), {
      headers: { accept: 'text/event-stream', ...authorizationHeader() },
      signal: connection.signal,
      cache: 'no-store',
    });
    if (response.status === 401) return { outcome: 'unauthorized', opened };
    const type = response.headers.get('content-type') ?? '';
    if (response.status === 404 || (response.ok && !type.startsWith('text/event-stream'))) {
      return { outcome: 'not-found', opened };
    }
    if (!response.ok || response.body === null) return { outcome: 'dropped', opened };
    opened = true;
    handlers.onStatus('live');
    handlers.onOpen();
    listen();
    const parser = new SseParser();
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      listen();
      for (const message of parser.push(value)) {
        const event = eventOf(message);
        if (event) deliver(handlers, event);
      }
    }
  } catch {
    // a network error, the silence timer, or stop(): the loop decides
  } finally {
    clearTimeout(silence);
    stopped.removeEventListener('abort', abort);
    connection.abort();
  }
  return { outcome: 'dropped', opened };
}

/** A handler that throws must not take the stream down with it. */
function deliver(handlers: LiveHandlers, event: ServiceEvent): void {
  try {
    handlers.onEvent(event);
  } catch (error) {
    console.error(`the dashboard could not apply the event ${event.type}`, error);
  }
}

function pause(ms: number, stopped: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    stopped.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      stopped.removeEventListener('abort', done);
      resolve();
    }
  });
}
