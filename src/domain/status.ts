// The two status models. Each list is mirrored by a CHECK constraint in the database schema.

export const REQUEST_STATUSES = ['pending', 'active', 'cancelled'] as const;
/** pending when created, active once the monitor scans it, cancelled by DELETE. */
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

export const TASK_STATUSES = ['pending', 'in_progress', 'completed', 'failed'] as const;
/** The life of one file version: pending → in_progress → completed | failed (→ pending again on requeue or change). */
export type TaskStatus = (typeof TASK_STATUSES)[number];

export function isRequestStatus(value: string): value is RequestStatus {
  return (REQUEST_STATUSES as readonly string[]).includes(value);
}

export function isTaskStatus(value: string): value is TaskStatus {
  return (TASK_STATUSES as readonly string[]).includes(value);
}
