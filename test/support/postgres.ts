// The PostgreSQL that the PostgreSQL store's tests run against (POSTGRES_TEST_URL), and a fresh
// schema for each store under test, so that tests never see each other's rows.
import { randomBytes } from 'node:crypto';
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
