// The rules for an upload's notify_url, the NOTIFY_ALLOWED_HOSTS setting that confines it, and the
// form of it that logs and API answers show. The service POSTs to whatever URL an API client gave,
// from inside the network it runs in: the allowed hosts keep that from reaching any other machine.
import { isIP } from 'node:net';

export const MAX_NOTIFY_URL_LENGTH = 2048;

/** What a redacted secret becomes. */
const MASK = '***';

/** One entry of NOTIFY_ALLOWED_HOSTS, normalised as the URL parser normalises a URL's host. */
interface HostRule {
  /** Lowercase, IDN in punycode, IPv6 in brackets, no trailing dot. */
  host: string;
  /** `*.host`: any subdomain of host, not host itself. */
  subdomains: boolean;
  /** Decimal, without leading zeros; null: any port. */
  port: string | null;
}

/**
 * null when `url` is acceptable as a notify_url; otherwise what to change, for a user (a 400's
 * message). The URL itself is never quoted, since it may hold a secret; its host may be.
 * `allowedHosts`: NOTIFY_ALLOWED_HOSTS as parseAllowedHosts reads it; null: any host.
 */
export function notifyUrlProblem(url: string, allowedHosts: readonly string[] | null): string | null {
  if (url.length > MAX_NOTIFY_URL_LENGTH) {
    return `notify_url must be at most ${MAX_NOTIFY_URL_LENGTH} characters long (this one has ${url.length})`;
  }
  // The URL parser would silently drop some of these; a URL that is not what it looks like is refused.
  if (/[\s\p{Cc}]/u.test(url)) {
    return 'notify_url must not contain spaces or control characters (percent-encode them)';
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'notify_url must be an absolute URL, like https://hooks.example.org/arrivals';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `notify_url must be an http:// or https:// URL (this one is ${parsed.protocol}//)`;
  }
  // A fragment is never sent in a request: whatever it holds would be lost without a word.
  if (parsed.href.includes('#')) {
    return 'notify_url must not have a fragment (#...): it is never sent to the receiver';
  }
  if (allowedHosts === null) return null;
  const rules = allowedHosts.flatMap((entry) => {
    const rule = hostRuleOf(entry);
    return typeof rule === 'string' ? [] : [rule];
  });
  if (rules.some((rule) => hostMatches(parsed, rule))) return null;
  const host = parsed.port === '' ? parsed.hostname : `${parsed.hostname}:${parsed.port}`;
  const allowed = allowedHosts.length > 0 ? allowedHosts.join(', ') : 'none';
  return `notify_url's host ${host} is not allowed by NOTIFY_ALLOWED_HOSTS (allowed: ${allowed})`;
}

/**
 * NOTIFY_ALLOWED_HOSTS: hosts separated by commas, each `host`, `*.domain` (any subdomain, not the
 * domain itself) or either of these with `:port`; IPv6 addresses in brackets. Returned normalised
 * (lowercase, IDN in punycode). Unset or empty: null, any host. Throws on an entry that is not a host.
 */
export function parseAllowedHosts(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
  if (entries.length === 0) return null;
  return entries.map((entry) => {
    const rule = hostRuleOf(entry);
    if (typeof rule === 'string') throw new Error(`NOTIFY_ALLOWED_HOSTS: ${rule}`);
    return ruleText(rule);
  });
}

/**
 * `url` as logs and API answers may show it: the password of its user information, every query
 * parameter's value and the fragment replaced by ***; a user name alone (`https://token@host/`)
 * is often a token, and is replaced too. The path is kept: a receiver that takes a secret should
 * take it in the query or the user information, where it is redacted. Not a URL: a placeholder.
 */
export function redactNotifyUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '[not a URL]';
  }
  if (parsed.host === '') return `${parsed.protocol}${MASK}`;
  let user = '';
  if (parsed.password !== '') user = `${parsed.username}:${MASK}@`;
  else if (parsed.username !== '') user = `${MASK}@`;
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}${redactedQuery(parsed.search)}${
    parsed.hash === '' ? '' : `#${MASK}`
  }`;
}

/** Each `name=value` as `name=***`; a parameter without `=` may be a bare token, and goes whole. */
function redactedQuery(search: string): string {
  if (search === '') return '';
  const parameters = search
    .slice(1)
    .split('&')
    .map((parameter) => {
      if (parameter === '') return parameter;
      const equalsAt = parameter.indexOf('=');
      return equalsAt === -1 ? MASK : `${parameter.slice(0, equalsAt)}=${MASK}`;
    });
  return `?${parameters.join('&')}`;
}

const ENTRY_EXAMPLES = 'like hooks.example.org, *.example.org, hooks.example.org:8443 or [2001:db8::1]';

/** The rule an entry states, or why it states none. */
function hostRuleOf(entry: string): HostRule | string {
  const trimmed = entry.trim();
  if (/[/?#@\\\s]/.test(trimmed)) {
    return `'${entry}' is not a host: write the host alone, without scheme, path or user, ${ENTRY_EXAMPLES}`;
  }
  const subdomains = trimmed.startsWith('*.');
  const rest = subdomains ? trimmed.slice(2) : trimmed;
  if (rest.includes('*')) return `'${entry}': a '*' may only begin an entry, as in *.example.org`;
  const split = hostAndPort(rest);
  if (typeof split === 'string') return `'${entry}': ${split}`;
  const port = split.port === null ? null : portOf(split.port);
  if (port === undefined) return `'${entry}': the port must be a number from 1 to 65535`;
  let host: string;
  try {
    host = withoutTrailingDot(new URL(`http://${split.host}/`).hostname);
  } catch {
    return `'${entry}' is not a valid host name, ${ENTRY_EXAMPLES}`;
  }
  if (host === '') return `'${entry}' is not a valid host name, ${ENTRY_EXAMPLES}`;
  if (subdomains && (host.startsWith('[') || isIP(host) !== 0)) {
    return `'${entry}': an IP address has no subdomains; name the address alone`;
  }
  return { host, subdomains, port };
}

function hostAndPort(text: string): { host: string; port: string | null } | string {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return "an IPv6 address lacks its closing ']'";
    const after = text.slice(close + 1);
    if (after === '') return { host: text, port: null };
    if (!after.startsWith(':')) return "only ':port' may follow an IPv6 address in brackets";
    return { host: text.slice(0, close + 1), port: after.slice(1) };
  }
  // An IPv6 address without brackets can have no port, and is read as the address.
  if (isIP(text) === 6) return { host: `[${text}]`, port: null };
  const colon = text.lastIndexOf(':');
  if (colon === -1) return { host: text, port: null };
  const host = text.slice(0, colon);
  if (host.includes(':')) return 'write an IPv6 address in brackets, as in [2001:db8::1]:8443';
  return { host, port: text.slice(colon + 1) };
}

/** The port, normalised; undefined when it is not one. */
function portOf(text: string): string | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? String(port) : undefined;
}

function ruleText(rule: HostRule): string {
  return `${rule.subdomains ? '*.' : ''}${rule.host}${rule.port === null ? '' : `:${rule.port}`}`;
}

function hostMatches(url: URL, rule: HostRule): boolean {
  const host = withoutTrailingDot(url.hostname);
  const sameHost = rule.subdomains
    ? host.length > rule.host.length + 1 && host.endsWith(`.${rule.host}`)
    : host === rule.host;
  if (!sameHost) return false;
  if (rule.port === null) return true;
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80';
  return port === rule.port;
}

/** `example.org.` is `example.org`, written as a fully qualified name. */
function withoutTrailingDot(host: string): string {
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
