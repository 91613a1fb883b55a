// DATABASE_URL as text: which store it names, and the same URL with no secret in it, for
// whatever is logged or shown (a start-up line, an error message).

export type DatabaseKind = 'sqlite' | 'postgres';

/** What DATABASE_URL may be, in the words of an error message. */
export const SUPPORTED_URLS =
  'use sqlite:./path.db or sqlite:/absolute/path.db for SQLite, postgres://user@host/database for PostgreSQL';

/** The scheme of `databaseUrl` in lower case ('sqlite', 'postgresql'...), or undefined when it has none. */
export function schemeOf(databaseUrl: string): string | undefined {
  return /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
}

/** The store a URL names by its scheme: sqlite, postgres or postgresql; undefined for any other. */
export function databaseKindOf(databaseUrl: string): DatabaseKind | undefined {
  const scheme = schemeOf(databaseUrl);
  if (scheme === 'sqlite') return 'sqlite';
  if (scheme === 'postgres' || scheme === 'postgresql') return 'postgres';
  return undefined;
}

/**
 * `databaseUrl` with its password, if any, replaced by ***: in the user information
 * (scheme://user:***@host/db) and in password or sslpassword parameters (?password=***). As a
 * URL parser reads it: the user information ends at the last @ before the path.
 */
export function redactPassword(databaseUrl: string): string {
  const authority = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(databaseUrl);
  let redacted = databaseUrl;
  if (authority) {
    const [whole, scheme, userAndHost = ''] = authority;
    const at = userAndHost.lastIndexOf('@');
    const colon = userAndHost.indexOf(':');
    if (at !== -1 && colon !== -1 && colon < at) {
      const hidden = `${userAndHost.slice(0, colon + 1)}***${userAndHost.slice(at)}`;
      redacted = `${scheme}${hidden}${databaseUrl.slice(whole.length)}`;
    }
  }
  return redacted.replace(/([?&](?:ssl)?password=)[^&#]*/gi, '$1***');
}

/**
 * The password in `databaseUrl` (in the user information or a password parameter), as written and
 * decoded, for the log's list of values never to print.
 */
export function secretsOf(databaseUrl: string): string[] {
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    return [];
  }
  const written = [url.password, url.searchParams.get('password'), url.searchParams.get('sslpassword')];
  const secrets = new Set<string>();
  for (const secret of written) {
    if (secret === null || secret === '') continue;
    secrets.add(secret);
    try {
      secrets.add(decodeURIComponent(secret));
    } catch {
      // not percent-encoded as a URL's would be: kept as written
    }
  }
  return [...secrets];
}
