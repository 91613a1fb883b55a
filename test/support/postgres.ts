// The PostgreSQL that the PostgreSQL store's tests run against (POSTGRES_TEST_URL), and a fresh
// schema for each store under test, so that tests never see each other's rows.
import { randomBytes } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import pg from 'pg';

export const POSTGRES_TEST_URL = process.env.POSTGRES_TEST_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name no other test uses: `prefix_` and 12 random hex digits. */
export function freshSchemaName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** Runs one statement on a connection of its own (to look at what a store wrote, or to set a scene). */
export async function adminQuery<R extends pg.QueryResultRow>(
  text: string,
  values: unknown[] = [],
): Promise<R[]> {
  const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

export async function dropSchema(schema: string): Promise<void> {
  await adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
}

/**
 * Fails, with what to do, when PostgreSQL cannot be reached: these tests must never pass by not
 * running (CI has a server).
 */
export async function assertPostgresReachable(): Promise<void> {
  try {
    await adminQuery('SELECT 1');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_TEST_URL} (${reason}): start it, or set POSTGRES_TEST_URL to one that is`,
      { cause: error },
    );
  }
}

/** A TCP relay to PostgreSQL that a test can cut (every connection, and no new one) and open again. */
export interface PostgresRelay {
  /** POSTGRES_TEST_URL, through the relay. */
  url: string;
  /** Closes every relayed connection, and refuses new ones until `open`. */
  cut(): Promise<void>;
  /** Listens again, on the same port. */
  open(): Promise<void>;
}

export async function startPostgresRelay(): Promise<PostgresRelay> {
  const target = new URL(POSTGRES_TEST_URL);
  const sockets = new Set<Socket>();
  const relay = (client: Socket): void => {
    const server = connect(Number(target.port || 5432), target.hostname);
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.pipe(server).pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  };
  let listener = createServer(relay);
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen(port, '127.0.0.1', () => resolve((listener.address() as AddressInfo).port));
    });
  const port = await listen(0);
  const url = new URL(POSTGRES_TEST_URL);
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return {
    url: url.href,
    async cut() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
    async open() {
      listener = createServer(relay);
      await listen(port);
    },
  };
}
