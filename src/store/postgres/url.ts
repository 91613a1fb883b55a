// What a postgres:// URL says once read: where to connect, and the schema every table lives in.
// No driver here, so that the configuration can check a URL at start-up without loading one.

/** Connections a store opens at most, unless told otherwise (DATABASE_POOL_SIZE). */
export const DEFAULT_POOL_SIZE = 10;

/**
 * Used as it is in search_path and in CREATE SCHEMA: a plain lower-case identifier, which needs no
 * quoting anywhere (PostgreSQL folds unquoted names to lower case).
 */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface PostgresTarget {
  /** The URL without the parameters read here (pg would read them over its config). */
  connectionString: string;
  schema: string;
  /** The URL's `options` (command-line options for the server), with search_path set to the schema. */
  startupOptions: string;
}

/**
 * Reads a postgres:// or postgresql:// URL. The schema is `schema` when given, else the URL's
 * `schema` parameter, else the first schema of a search_path in its `options` parameter, else
 * public. Throws when the URL cannot be read or names a schema that is not a plain identifier;
 * the message never holds the URL's password.
 */
export function postgresTargetOf(databaseUrl: string, schemaOption?: string): PostgresTarget {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw new Error('it is not a URL that PostgreSQL can be reached at');
  }
  const startupOptions = url.searchParams.get('options') ?? '';
  const schema =
    schemaOption ??
    url.searchParams.get('schema') ??
    /(?:^|\s)-c\s*search_path=([^\s,]+)/.exec(startupOptions)?.[1] ??
    'public';
  if (!SCHEMA_NAME.test(schema)) {
    throw new Error(
      `the schema '${schema}' is not supported: use a lower-case name of letters, digits and _ (at most 63)`,
    );
  }
  url.searchParams.delete('schema');
  url.searchParams.delete('options');
  return {
    connectionString: url.href,
    schema,
    startupOptions: [startupOptions, `-c search_path=${schema}`].filter((part) => part !== '').join(' '),
  };
}
