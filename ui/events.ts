// The events of GET /events as they arrive: snake_case like the REST API, times in ISO 8601
// (docs/events.md). The page uses them as triggers: a file row changes at once, and the upload it
// belongs to is read again from the API, which stays the source of truth.
import type { UploadPhase } from './api-types.js';
import type { SseMessage } from './sse.js';

interface FileFacts {
  upload_id: string;
  task_id: number;
  path: string;
  at: string;
}

export type ServiceEvent =
  | { type: 'upload.created'; data: { upload_id: string; at: string } }
  | { type: 'upload.cancelled'; data: { upload_id: string; at: string } }
  | { type: 'upload.completed'; data: { upload_id: string; at: string } }
  | {
      type: 'upload.arrived';
      data: {
        upload_id: string;
        bucket: string;
        prefix: string;
        files: number;
        bytes: number;
        manifest_key: string | null;
        marker_key: string | null;
        at: string;
      };
    }
  | {
      type: 'upload.phase';
      data: { upload_id: string; phase: UploadPhase; previous_phase: UploadPhase | null; at: string };
    }
  | {
      type: 'upload.scanned';
      data: {
        upload_id: string;
        kind: 'initial' | 'rescan';
        files_seen: number;
        files_changed: number;
        duration_ms: number;
        error: string | null;
        at: string;
      };
    }
  | { type: 'file.started'; data: FileFacts & { key: string; size: number } }
  | { type: 'file.progress'; data: FileFacts & { bytes_uploaded: number; size: number } }
  | {
      type: 'file.completed';
      data: FileFacts & { key: string; size: number; bytes_sent: number; skipped: string | null };
    }
  | { type: 'file.failed'; data: FileFacts & { key: string; message: string } };

export type FileEvent = Extract<ServiceEvent, { type: `file.${string}` }>;

const TYPES = new Set<string>([
  'upload.created',
  'upload.cancelled',
  'upload.completed',
  'upload.arrived',
  'upload.phase',
  'upload.scanned',
  'file.started',
  'file.progress',
  'file.completed',
  'file.failed',
]);

/**
 * The event a message carries; undefined for a type this page does not know (a newer service may
 * tell more) or data that is not an object naming its upload (and its task, for a file).
 */
export function eventOf(message: SseMessage): ServiceEvent | undefined {
  if (!TYPES.has(message.event)) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    return undefined;
  }
  const facts = data as { upload_id?: unknown; task_id?: unknown } | null;
  if (typeof facts?.upload_id !== 'string') return undefined;
  if (message.event.startsWith('file.') && typeof facts.task_id !== 'number') return undefined;
  return { type: message.event, data } as ServiceEvent;
}

export function isFileEvent(event: ServiceEvent): event is FileEvent {
  return event.type.startsWith('file.');
}
