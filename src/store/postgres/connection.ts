// The pool of connections the store's statements run on: which schema they live in, how bigint
// columns are read, and how a statement or a transaction gets a connection and gives it back.
import pg from 'pg';
import { DEFAULT_POOL_SIZE, postgresTargetOf } from './url.js';

/** How long a statement waits for a connection before failing: a server that is down is an error, not a hang. */
const CONNECT_TIMEOUT_MS = 5000;

/** What a statement runs on: a connection of the pool, in a transaction or not. */
export type Queryable = Pick<pg.PoolClient, 'query'>;

export interface ConnectionOptions {
  /**
   * The schema that holds every table. Default: the URL's `schema` parameter, else the first
   * schema of a search_path in its `options` parameter, else public.
   */
  schema?: string;
  /** Connections the pool opens at most; default DEFAULT_POOL_SIZE. */
  poolSize?: number;
  /** Names the connections in pg_stat_activity. */
  applicationName?: string;
}

/** What the pool connects with. */
export interface Connection {
  config: pg.PoolConfig;
  schema: string;
}

// Epoch milliseconds, sizes and counts are bigint columns: every value stays far below 2^53, so
// they are read as numbers. Set on the store's own clients, not on pg's global parsers, which
// other code in the process may rely on.
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8
      ? Number
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

/**
 * The pool's settings for a postgres:// or postgresql:// URL (see postgresTargetOf). The schema is
 * set as each connection's search_path when it opens (the startup `options`), so that every
 * statement, the migrations too, names its tables without a schema.
 */
export function connectionOf(databaseUrl: string, options: ConnectionOptions = {}): Connection {
  const { connectionString, schema, startupOptions } = postgresTargetOf(databaseUrl, options.schema);
  return {
    schema,
    config: {
      connectionString,
      options: startupOptions,
      max: options.poolSize ?? DEFAULT_POOL_SIZE,
      application_name: options.applicationName,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      keepAlive: true,
      types: TYPES,
    },
  };
}

/** Errors after which the same work may succeed if run again: PostgreSQL undid the whole transaction. */
const RETRYABLE_CODES = new Set([
  '40P01', // deadlock_detected: two transactions met rows in opposite orders (see locks.ts)
  '40001', // serialization_failure
]);
const ATTEMPTS = 3;

function isRetryable(error: unknown): boolean {
  return error instanceof pg.DatabaseError && error.code !== undefined && RETRYABLE_CODES.has(error.code);
}

/** The store's way to the database: work on one connection, outside a transaction or in one. */
export class Sessions {
  constructor(private readonly pool: pg.Pool) {}

  /**
   * Runs `work` on one connection; each of its statements commits on its own. The store's work of
   * this kind writes with one statement at most, so that running it again is safe.
   */
  session<T>(work: (db: Queryable) => Promise<T>): Promise<T> {
    return this.retrying(() => this.withClient(work));
  }

  /** Runs `work` in one transaction, and runs it again (at most twice more) if PostgreSQL undid it. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.retrying(() =>
      this.withClient(async (client, discard) => {
        await client.query('BEGIN');
        try {
          const result = await work(client);
          await client.query('COMMIT');
          return result;
        } catch (error) {
          // A connection that cannot even roll back is not given to anyone else.
          await client.query('ROLLBACK').catch(discard);
          throw error;
        }
      }),
    );
  }

  private async retrying<T>(attempt: () => Promise<T>): Promise<T> {
    for (let attempts = 1; ; attempts += 1) {
      try {
        return await attempt();
      } catch (error) {
        if (attempts >= ATTEMPTS || !isRetryable(error)) throw error;
      }
    }
  }

  /** `work` may call `discard` to have the connection closed rather than returned to the pool. */
  private async withClient<T>(work: (client: pg.PoolClient, discard: () => void) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    // A connection that breaks while checked out also emits 'error' on its client; the statement
    // that meets it fails with that error, so the event needs a listener and nothing more.
    const ignore = (): void => undefined;
    client.on('error', ignore);
    let discarded = false;
    try {
      return await work(client, () => {
        discarded = true;
      });
    } catch (error) {
      // An error the server sent leaves the connection usable (one it ended, the pool drops by
      // itself); any other may not.
      if (!(error instanceof pg.DatabaseError)) discarded = true;
      throw error;
    } finally {
      client.off('error', ignore);
      client.release(discarded);
    }
  }
}
