// `status <id> --wait`: polls GET /uploads/{id} until the upload settles. Polling rather than the
// event stream (GET /events): one request a second costs the service nothing, goes through any
// proxy, and needs no reconnection logic; the API's `progress` already carries the throughput and
// the ETA over its own 20-second window, so there is nothing finer to gain from events.
import { setTimeout as sleep } from 'node:timers/promises';
import type { UploadDetailsReply } from '../api/schemas.js';
import type { ApiClient } from './api-client.js';
import type { ProgressDisplay } from './progress-display.js';

/** The phases a wait ends on: up to date, files failed, or cancelled. */
export const SETTLED_PHASES = new Set<string>(['idle', 'failed', 'cancelled']);

/** A one-shot upload is idle only on its way to completed: its wait ends there instead. */
export const ONE_SHOT_SETTLED_PHASES = new Set<string>(['completed', 'failed', 'cancelled']);

export interface WaitOptions {
  intervalMs: number;
  display?: ProgressDisplay;
}

/** Resolves with the upload as it was when its phase became idle (completed, one-shot), failed or cancelled. */
export async function waitUntilSettled(
  client: ApiClient,
  uploadId: string,
  options: WaitOptions,
): Promise<UploadDetailsReply> {
  for (;;) {
    const upload = await client.getUpload(uploadId);
    options.display?.show(upload);
    const settled = upload.watch ? SETTLED_PHASES : ONE_SHOT_SETTLED_PHASES;
    if (settled.has(upload.progress.phase)) return upload;
    await sleep(options.intervalMs);
  }
}
