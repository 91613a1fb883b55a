// The event stream of GET /events: listens to the service's events while at least one client is
// connected, numbers each event, writes its frame once, and hands it to every client that wants it
// (each through its own bounded EventWriter); flushes every client's queue one flush interval
// after the first event of a batch; beats a heartbeat to all; ends every stream when the server
// closes. No client, no listener and no timer: the stream costs nothing until it is used.
import type { Writable } from 'node:stream';
import type { EventSource, ServiceEvent } from '../domain/events.js';
import { wireEvent } from './event-catalogue.js';
import { DEFAULT_QUEUE_LIMITS, EventWriter, type Backlog, type QueueLimits } from './event-writer.js';

export interface EventStreamSettings {
  /**
   * How long an event may wait for the ones after it, to go to the socket in the same write. The
   * events of a busy second then cost a few writes per client rather than hundreds.
   */
  flushMs: number;
  /** How often a `: heartbeat` comment goes to every client, so that proxies keep the connection. */
  heartbeatMs: number;
  /** What may wait for one client before it is dropped. */
  queueLimits: QueueLimits;
}

export const DEFAULT_EVENT_STREAM_SETTINGS: EventStreamSettings = {
  flushMs: 100,
  heartbeatMs: 15_000,
  queueLimits: DEFAULT_QUEUE_LIMITS,
};

export const HEARTBEAT_FRAME = ': heartbeat\n\n';

export interface ClientOptions {
  /** Only the events of this upload; all of them when undefined. */
  uploadId?: string;
  /** Called when the client is dropped for not reading (to log it, with who it was). */
  dropped(backlog: Backlog): void;
}

interface Client {
  uploadId: string | undefined;
  writer: EventWriter;
}

/** One SSE frame: the comment-free form every client parses the same way. */
export function eventFrame(id: number, event: ServiceEvent): string {
  const { type, data } = wireEvent(event);
  // JSON.stringify escapes line breaks inside strings: the data is always one line.
  return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class EventStream {
  private readonly clients = new Set<Client>();
  private unsubscribe: (() => void) | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastId = 0;
  private closed = false;

  /** Without a source the stream only beats: the service has nothing to tell (tests, tools). */
  constructor(
    private readonly source: EventSource | undefined,
    private readonly settings: EventStreamSettings = DEFAULT_EVENT_STREAM_SETTINGS,
  ) {}

  /** How many clients are connected. */
  get clientCount(): number {
    return this.clients.size;
  }

  /**
   * A client whose response headers were sent: it gets every event from now on until it leaves,
   * is dropped, or the stream closes.
   */
  add(out: Writable, options: ClientOptions): void {
    if (out.destroyed) return; // the client left already
    if (this.closed) {
      out.end();
      return;
    }
    const client: Client = {
      uploadId: options.uploadId,
      writer: new EventWriter(out, this.settings.queueLimits, {
        dropped: options.dropped,
        closed: () => this.remove(client),
      }),
    };
    this.clients.add(client);
    this.unsubscribe ??= this.source?.subscribe(this.publish);
    this.heartbeat ??= setInterval(this.beat, this.settings.heartbeatMs).unref();
  }

  /** Ends every stream, and refuses new clients: the server is closing. */
  close(): void {
    this.closed = true;
    for (const client of [...this.clients]) client.writer.end();
  }

  private remove(client: Client): void {
    this.clients.delete(client);
    if (this.clients.size > 0) return;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.heartbeat);
    this.heartbeat = undefined;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Called by the engine as each event happens: must be quick, and never throws at it. */
  private readonly publish = (event: ServiceEvent): void => {
    this.lastId += 1;
    const frame = eventFrame(this.lastId, event);
    const bytes = Buffer.byteLength(frame);
    for (const client of this.clients) {
      if (client.uploadId === undefined || client.uploadId === event.uploadId)
        client.writer.write(frame, bytes);
    }
    if (this.clients.size > 0) this.flushTimer ??= setTimeout(this.flush, this.settings.flushMs);
  };

  private readonly flush = (): void => {
    this.flushTimer = undefined;
    for (const client of this.clients) client.writer.flush();
  };

  private readonly beat = (): void => {
    for (const client of this.clients) {
      client.writer.write(HEARTBEAT_FRAME);
      client.writer.flush();
    }
  };
}
