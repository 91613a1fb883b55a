// The failures that say PostgreSQL cannot be used right now (it cannot be reached, it is shutting
// down or restarting, its disk is full, it is read-only), as opposed to a bug: the store throws
// them as DatabaseUnavailableError, which the API answers with a 503 that names the cause.
import pg from 'pg';
import { DatabaseUnavailableError } from '../../domain/errors.js';

/** By SQLSTATE, exact or by class (its first two characters). */
const SERVER_CAUSES: ReadonlyArray<[code: string, cause: string]> = [
  ['57P01', 'its server is shutting down (terminated by an administrator)'],
  ['57P02', 'its server crashed and is restarting'],
  ['57P03', 'its server is starting up or shutting down and accepts no connections now'],
  ['53100', 'the disk that holds it is full'],
  ['53200', 'its server is out of memory'],
  ['53300', 'its server has no connection left (max_connections)'],
  ['53', 'its server lacks resources'],
  ['08', 'the connection to its server failed'],
  ['25006', 'it is read-only (a standby, or a read-only transaction by default)'],
  ['58030', 'its disk failed with an input/output error'],
];

/** Failures of the network or of the socket, by Node.js's error code. */
const NETWORK_CAUSES: ReadonlyArray<[code: string, cause: string]> = [
  ['ECONNREFUSED', 'its server refuses connections'],
  ['ECONNRESET', 'the connection to its server was reset'],
  ['EPIPE', 'the connection to its server was closed'],
  ['ETIMEDOUT', 'its server does not answer'],
  ['EHOSTUNREACH', 'its server cannot be reached'],
  ['ENETUNREACH', 'its server cannot be reached'],
  ['ENOTFOUND', 'the name of its server cannot be resolved'],
  ['EAI_AGAIN', 'the name of its server cannot be resolved'],
];

/** What pg says, with no code, when a connection ends or cannot be had in time. */
const CLIENT_CAUSES: ReadonlyArray<[message: RegExp, cause: string]> = [
  [/^Connection terminated/, 'the connection to its server ended'],
  [/^timeout exceeded when trying to connect/, 'no connection to its server could be opened in time'],
  [/^Client has encountered a connection error/, 'the connection to its server failed'],
];

/**
 * Why the database cannot be used, in words with the error's code ("its server is shutting down
 * (terminated by an administrator) (57P01)"), or undefined when the error is not one of those failures.
 */
export function databaseUnavailableCause(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  if (error instanceof pg.DatabaseError) {
    const code = error.code ?? '';
    const match = SERVER_CAUSES.find(
      ([known]) => code === known || (known.length === 2 && code.startsWith(known)),
    );
    return match ? `${match[1]} (${code})` : undefined;
  }
  const code = (error as NodeJS.ErrnoException).code;
  const network = NETWORK_CAUSES.find(([known]) => code === known);
  if (network) return `${network[1]} (${network[0]})`;
  const client = CLIENT_CAUSES.find(([message]) => message.test(error.message));
  return client?.[1];
}

/** The error as the store throws it: a DatabaseUnavailableError (the driver's error as its cause), or as it was. */
export function asDatabaseUnavailable(error: unknown): unknown {
  const reason = databaseUnavailableCause(error);
  return reason === undefined ? error : new DatabaseUnavailableError(reason, { cause: error });
}
