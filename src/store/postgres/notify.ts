// Store changes told to the other instances sharing a schema: one NOTIFY on the schema's channel
// per statement or transaction that makes tasks ready, creates or cancels an upload, never one per
// task. A NOTIFY in a transaction is delivered when it commits, so a listener that is told reads
// what was written. The payload names the instance that made the change, so that it ignores its own.
import { createHash } from 'node:crypto';
import type { StoreChange } from '../store.js';
import type { Queryable } from './connection.js';

/** PostgreSQL truncates identifiers, and refuses channel names, at 63 bytes. */
const MAX_CHANNEL_LENGTH = 63;
const CHANNEL_PREFIX = 's3fu_';

/**
 * The channel of a schema: `s3fu_<schema>`, or, for a schema name too long for that, the prefix
 * and a hash of it (schema names are plain lower-case identifiers, see url.ts).
 */
export function channelOf(schema: string): string {
  const plain = `${CHANNEL_PREFIX}${schema}`;
  if (plain.length <= MAX_CHANNEL_LENGTH) return plain;
  return `${CHANNEL_PREFIX}${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}

/** A change told by another instance than the listener's; 'look_again' is never sent. */
export type SentChange = Exclude<StoreChange, { kind: 'look_again' }>;

/** What goes on the wire: the change and the instance that made it, as JSON. */
export function payloadOf(change: SentChange, instanceId: string): string {
  return JSON.stringify({ ...change, instanceId });
}

/** A payload read back; undefined for one this version does not know (a newer instance's). */
export function changeOf(payload: string): { change: SentChange; instanceId: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { kind, uploadId, instanceId } = parsed as Record<string, unknown>;
  if (typeof instanceId !== 'string') return undefined;
  if (kind === 'tasks_ready') return { change: { kind }, instanceId };
  if ((kind === 'upload_created' || kind === 'upload_cancelled') && typeof uploadId === 'string')
    return { change: { kind, uploadId }, instanceId };
  return undefined;
}

/** Where the store sends its changes: the schema's channel, as this instance. */
export interface Notifier {
  channel: string;
  instanceId: string;
}

/** Sends `change` on `db`: in a transaction, at its commit. */
export async function notify(db: Queryable, notifier: Notifier, change: SentChange): Promise<void> {
  await db.query({
    name: 'notify-change',
    text: 'SELECT pg_notify($1, $2)',
    values: [notifier.channel, payloadOf(change, notifier.instanceId)],
  });
}

/**
 * `update` (an UPDATE without RETURNING), made to notify in the same statement when it changed a
 * row: its result is one row, `changed`, the rows it changed. `channel` and `payload` are SQL
 * parameters. Used for statements every instance runs often, to which a transaction would add
 * round trips even when nothing changes.
 */
export function notifyingUpdate(update: string, channel: string, payload: string): string {
  return `
  WITH changed AS (${update} RETURNING 1),
  told AS (SELECT pg_notify(${channel}, ${payload}) FROM (SELECT 1) AS one WHERE EXISTS (SELECT 1 FROM changed))
  SELECT (SELECT count(*) FROM changed)::integer AS changed, (SELECT count(*) FROM told)::integer AS told`;
}
