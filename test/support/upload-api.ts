// The service's API as the end-to-end tests use it: typed answers and waits on upload progress.
import assert from 'node:assert/strict';
import { waitFor } from './poll.js';
import { api, type ServiceProcess } from './service-process.js';

export interface UploadDetails {
  upload_id: string;
  status: string;
  last_error: string | null;
  files: { pending: number; in_progress: number; completed: number; failed: number; total: number };
  bytes: { total: number; uploaded: number };
}

export interface FileItem {
  relative_path: string;
  object_key: string;
  status: string;
  attempts: number;
  bytes_uploaded: number;
  last_error: string | null;
  etag: string | null;
  validation: string | null;
  skipped: string | null;
  ready_at: string | null;
}

/** POST /uploads, asserting a 201; returns the upload id. */
export async function createUpload(service: ServiceProcess, body: Record<string, unknown>): Promise<string> {
  const response = await api<{ upload_id: string }>(service, 'POST', '/uploads', body);
  assert.equal(response.status, 201, JSON.stringify(response.body));
  return response.body.upload_id;
}

export async function uploadDetails(service: ServiceProcess, uploadId: string): Promise<UploadDetails> {
  const response = await api<UploadDetails>(service, 'GET', `/uploads/${uploadId}`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body;
}

/** Every file task of an upload (up to 1,000: enough for a test). */
export async function fileItems(service: ServiceProcess, uploadId: string): Promise<FileItem[]> {
  const response = await api<{ items: FileItem[] }>(service, 'GET', `/uploads/${uploadId}/files?limit=1000`);
  assert.equal(response.status, 200, JSON.stringify(response.body));
  return response.body.items;
}

/** Waits until the upload has exactly `count` tasks, all completed. */
export function waitForCompleted(
  service: ServiceProcess,
  uploadId: string,
  count: number,
  timeoutMs = 30_000,
): Promise<UploadDetails> {
  return waitFor(
    async () => {
      const current = await uploadDetails(service, uploadId);
      return current.files.completed === count && current.files.total === count ? current : undefined;
    },
    { timeoutMs, intervalMs: 100, message: `${count} files of ${uploadId} completed` },
  );
}
