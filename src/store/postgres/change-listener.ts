// The store changes other instances tell (notify.ts), heard on a connection of its own: a LISTEN
// holds its connection for as long as it listens, so it cannot be one of the pool's. Opened at the
// first listener; when it breaks it is opened again with a backoff, and once it listens again every
// listener is told 'look_again', since what was told meanwhile is lost.
import pg from 'pg';
import type { Logger } from '../../logger.js';
import type { StoreChange } from '../store.js';
import { changeOf } from './notify.js';

const FIRST_RETRY_MS = 200;
const MAX_RETRY_MS = 5000;

export interface ChangeListenerOptions {
  /** The pool's settings: the same server, user and schema. */
  config: pg.ClientConfig;
  channel: string;
  /** This instance: its own changes are not told back to it. */
  instanceId: string;
  /** Where a lost connection is told; none: nothing is logged. */
  logger?: Logger;
  /** Where the log lines say the database is (the URL without its password). */
  location: string;
}

export class ChangeListener {
  private readonly listeners = new Set<(change: StoreChange) => void>();
  /** The connection that listens, once it does. */
  private client: pg.Client | undefined;
  /** The connection opened last: a late event of an older one is not a loss. */
  private current: pg.Client | undefined;
  private started = false;
  private closed = false;
  private retryMs = FIRST_RETRY_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  /** The connection being opened, awaited by close(). */
  private connecting: Promise<void> | undefined;

  constructor(private readonly options: ChangeListenerOptions) {}

  /** Adds a listener; the first one opens the connection. Returns the way to remove it. */
  add(listener: (change: StoreChange) => void): () => void {
    this.listeners.add(listener);
    if (!this.started && !this.closed) {
      this.started = true;
      this.connect(false);
    }
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Whether the connection listens now (for tests and the dispatcher's poll). */
  get listening(): boolean {
    return this.client !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    await this.connecting;
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connect(again: boolean): void {
    this.connecting = this.open(again).finally(() => {
      this.connecting = undefined;
    });
  }

  private async open(again: boolean): Promise<void> {
    const { config, channel, logger, location } = this.options;
    const client = new pg.Client(config);
    this.current = client;
    client.on('error', (error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new Error('the connection ended')));
    client.on('notification', (message) => {
      if (message.channel === channel && message.payload !== undefined) this.told(message.payload);
    });
    try {
      await client.connect();
      // The channel is a plain identifier (see channelOf): quoting keeps its case as it is.
      await client.query(`LISTEN "${channel}"`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      this.lost(client, error);
      return;
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = FIRST_RETRY_MS;
    if (again) {
      logger?.info({ database: location, channel }, 'database notifications: listening again');
      this.tell({ kind: 'look_again' });
    }
  }

  /** The connection broke, or could not be opened: open another after a backoff. */
  private lost(client: pg.Client, error: unknown): void {
    if (this.closed || this.retryTimer !== undefined || client !== this.current) return;
    this.client = undefined;
    client.removeAllListeners('end');
    void client.end().catch(() => undefined);
    const { logger, location, channel } = this.options;
    logger?.warn(
      { err: error, database: location, channel, retryInMs: this.retryMs },
      'database notifications lost; reconnecting (meanwhile other instances learn of changes by polling)',
    );
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect(true);
    }, this.retryMs);
    this.retryTimer.unref();
    this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
  }

  private told(payload: string): void {
    const told = changeOf(payload);
    if (told === undefined || told.instanceId === this.options.instanceId) return;
    this.tell(told.change);
  }

  private tell(change: StoreChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.options.logger?.error({ err: error, change }, 'a listener of store changes failed');
      }
    }
  }
}
