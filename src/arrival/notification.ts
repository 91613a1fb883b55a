// The notification of an arrival: one POST of a small JSON document to the upload's notify_url,
// tried again with capped exponential backoff and full jitter while the receiver may yet take it
// (5xx, 408, 425, 429, no connection, no answer in time), given up at once when it refused it for
// good (any other 4xx, a redirect). Each attempt's outcome goes to the caller, who keeps it in the
// database. Delivery is at least once: a crash between the receiver's 2xx and its record means one
// more POST after the restart, so each carries an Idempotency-Key for the receiver to drop it by.
import { setTimeout as sleep } from 'node:timers/promises';
import { arrivalData, type EventData } from '../api/event-catalogue.js';
import type { ServiceEvent } from '../domain/events.js';
import type { EpochMs, NotificationOutcome } from '../domain/model.js';
import type { Logger } from '../logger.js';
import { backoffDelayMs, type RetryPolicy } from '../transfer/retry.js';
import { VERSION } from '../version.js';
import { notifyUrlProblem, redactNotifyUrl } from './notify-url.js';

export const DEFAULT_ATTEMPT_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_ATTEMPTS = 10;
export const DEFAULT_BASE_DELAY_MS = 1_000;
export const DEFAULT_MAX_DELAY_MS = 5 * 60_000;

/** Of an answer's body, what an error message quotes. */
const EXCERPT_CHARS = 200;
/** Of an answer's body, what is read for the excerpt: a receiver may answer with a page of HTML. */
const EXCERPT_BYTES = 4096;

export type UploadArrived = Extract<ServiceEvent, { type: 'upload.arrived' }>;

/**
 * The arrival as the receiver gets it: the data of the upload.arrived event on the event stream
 * (one mapping, so that the two never differ), with its type.
 */
export type ArrivalDocument = { event: 'upload.arrived' } & EventData<'upload.arrived'>;

export function arrivalDocument(arrival: UploadArrived): ArrivalDocument {
  return { event: 'upload.arrived', ...arrivalData(arrival) };
}

/** The same for every attempt at one arrival, and different for the next arrival of the upload. */
export function idempotencyKey(arrival: UploadArrived): string {
  return `${arrival.uploadId}:${arrival.at}`;
}

export interface NotificationSenderOptions {
  logger: Logger;
  /** For one attempt, from the request to the end of the answer; default 10 s. */
  attemptTimeoutMs?: number;
  /** Attempts in all, those made before a restart included; default 10. */
  maxAttempts?: number;
  /** Backoff: the wait after attempt n is drawn from [0, min(maxDelayMs, baseDelayMs × 2^(n-1))). */
  baseDelayMs?: number;
  /** Also the longest Retry-After honoured; default 5 minutes. */
  maxDelayMs?: number;
  /**
   * NOTIFY_ALLOWED_HOSTS (see parseAllowedHosts), checked again before a delivery: the setting may
   * have been narrowed since the upload was created. null or unset: any host.
   */
  allowedHosts?: readonly string[] | null;
  now?: () => EpochMs;
}

export interface Delivery {
  arrival: UploadArrived;
  /** The upload's notify_url, secrets included: it is never logged as it is. */
  url: string;
  /** Attempts recorded before (after a restart): the first attempt here is number attemptsSoFar + 1. */
  attemptsSoFar?: number;
  /**
   * Keeps the outcome of an attempt: status 'pending' while more are to come. false when a newer
   * arrival replaced this one: the delivery ends. A rejection ends it too, and rejects deliver().
   */
  record: (outcome: NotificationOutcome) => Promise<boolean> | boolean;
  /** Ends the wait, or the attempt under way, at once; that attempt is not recorded. */
  signal: AbortSignal;
}

/** delivered, failed: as recorded; superseded: record returned false; stopped: the signal aborted. */
export type DeliveryEnd = 'delivered' | 'failed' | 'superseded' | 'stopped';

export interface DeliveryResult {
  end: DeliveryEnd;
  /** Attempts recorded, those before a restart included. */
  attempts: number;
  /** The error of the last attempt this delivery recorded; null when it delivered, or before any. */
  lastError: string | null;
}

/** What one attempt came to. */
type Attempt =
  | { kind: 'delivered'; status: number }
  | { kind: 'retry'; error: string; retryAfterMs: number | null }
  | { kind: 'refused'; error: string }
  | { kind: 'stopped' };

const STOPPED: Attempt = { kind: 'stopped' };

/** The parts of a request that stay the same from one attempt to the next. */
interface Post {
  /** The URL without its user information, which goes in Authorization (fetch refuses it in a URL). */
  target: string;
  /** The URL as logs and errors show it. */
  shown: string;
  /** The secret-bearing forms of the URL, replaced by `shown` in any error text that quotes them. */
  secretForms: string[];
  headers: Record<string, string>;
  body: string;
}

export class NotificationSender {
  private readonly log: Logger;
  private readonly attemptTimeoutMs: number;
  private readonly maxAttempts: number;
  private readonly policy: RetryPolicy;
  private readonly maxDelayMs: number;
  private readonly allowedHosts: readonly string[] | null;
  private readonly now: () => EpochMs;

  constructor(options: NotificationSenderOptions) {
    this.log = options.logger;
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
    this.maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.policy = {
      maxAttempts: this.maxAttempts,
      baseDelayMs: options.baseDelayMs ?? DEFAULT_BASE_DELAY_MS,
      maxDelayMs: this.maxDelayMs,
    };
    this.allowedHosts = options.allowedHosts ?? null;
    this.now = options.now ?? Date.now;
  }

  /**
   * POSTs the arrival until the receiver takes it, refuses it for good, maxAttempts are used (the
   * attempt after a restart is made even past it, as the last), record returns false, or the
   * signal aborts. Resolves with how it ended; rejects only when record does.
   */
  async deliver(delivery: Delivery): Promise<DeliveryResult> {
    const { arrival, url, record, signal } = delivery;
    const shown = redactNotifyUrl(url);
    const context = { uploadId: arrival.uploadId, url: shown };
    let attempts = delivery.attemptsSoFar ?? 0;
    let lastError: string | null = null;

    const problem = notifyUrlProblem(url, this.allowedHosts);
    if (problem !== null) {
      lastError = problem;
      this.log.error({ ...context, attempts, error: problem }, 'notification not sent: its URL is refused');
      const kept = await record({ status: 'failed', attempts, lastError, at: this.now() });
      return { end: kept ? 'failed' : 'superseded', attempts, lastError };
    }

    const request = requestOf(arrival, url, shown);
    // After a restart, the wait that would have followed the last attempt recorded: a service
    // restarting in a loop does not hammer the receiver.
    let delayMs = attempts > 0 ? backoffDelayMs(attempts, this.policy) : 0;
    for (;;) {
      if (delayMs > 0 && !(await pause(delayMs, signal))) return { end: 'stopped', attempts, lastError };
      if (signal.aborted) return { end: 'stopped', attempts, lastError };
      const attempt = await this.attempt(request, signal);
      if (attempt.kind === 'stopped') return { end: 'stopped', attempts, lastError };
      attempts += 1;

      let outcome: NotificationOutcome;
      if (attempt.kind === 'delivered') {
        lastError = null;
        outcome = { status: 'delivered', attempts, lastError, at: this.now() };
        this.log.info({ ...context, attempt: attempts, status: attempt.status }, 'notification delivered');
      } else if (attempt.kind === 'refused' || attempts >= this.maxAttempts) {
        lastError = attempt.error;
        outcome = { status: 'failed', attempts, lastError, at: this.now() };
        const why = attempt.kind === 'refused' ? 'refused for good' : `${attempts} attempts failed`;
        this.log.error(
          { ...context, attempts, error: lastError },
          `notification given up (${why}): the receiver will not hear of this arrival`,
        );
      } else {
        lastError = attempt.error;
        outcome = { status: 'pending', attempts, lastError, at: this.now() };
        delayMs = attempt.retryAfterMs ?? backoffDelayMs(attempts, this.policy);
        this.log.warn(
          { ...context, attempt: attempts, error: lastError, retryInMs: delayMs },
          'notification attempt failed; trying again',
        );
      }

      if (!(await record(outcome))) {
        this.log.info({ ...context, attempts }, 'notification dropped: a newer arrival replaced it');
        return { end: 'superseded', attempts, lastError };
      }
      if (outcome.status !== 'pending') return { end: outcome.status, attempts, lastError };
    }
  }

  private async attempt(request: Post, stop: AbortSignal): Promise<Attempt> {
    const timeout = AbortSignal.timeout(this.attemptTimeoutMs);
    const signal = AbortSignal.any([stop, timeout]);
    const noAnswer = (): Attempt => ({
      kind: 'retry',
      error: `no answer from ${request.shown} within ${this.attemptTimeoutMs} ms`,
      retryAfterMs: null,
    });
    let response: Response;
    try {
      response = await fetch(request.target, {
        method: 'POST',
        headers: request.headers,
        body: request.body,
        // A redirect would send the arrival where notify_url does not say: refused, not followed.
        redirect: 'manual',
        signal,
      });
    } catch (error) {
      if (stop.aborted) return STOPPED;
      if (timeout.aborted) return noAnswer();
      const reason = scrubbed(networkErrorText(error), request);
      return { kind: 'retry', error: `cannot reach ${request.shown}: ${reason}`, retryAfterMs: null };
    }

    const { status } = response;
    if (status >= 200 && status < 300) {
      await discard(response);
      return { kind: 'delivered', status };
    }
    if (status >= 300 && status < 400) {
      await discard(response);
      const location = response.headers.get('location');
      const where =
        location === null ? 'with no Location' : `to ${redactedLocation(location, request.target)}`;
      return {
        kind: 'refused',
        error: `${request.shown} answered ${status}, a redirect ${where}, which is not followed: set notify_url to the final address`,
      };
    }

    let excerpt: string;
    try {
      excerpt = await bodyExcerpt(response);
    } catch {
      if (stop.aborted) return STOPPED;
      if (timeout.aborted) return noAnswer();
      excerpt = '';
    }
    const error = `${request.shown} answered ${status}${excerpt === '' ? '' : `: ${excerpt}`}`;
    if (!isRetryable(status)) return { kind: 'refused', error };
    const retryAfter =
      status === 429 || status === 503
        ? retryAfterMs(response.headers.get('retry-after'), this.now(), this.maxDelayMs)
        : null;
    return { kind: 'retry', error, retryAfterMs: retryAfter };
  }
}

/** The statuses after which the same request may yet succeed. */
function isRetryable(status: number): boolean {
  return status === 408 || status === 425 || status === 429 || (status >= 500 && status < 600);
}

function requestOf(arrival: UploadArrived, url: string, shown: string): Post {
  const parsed = new URL(url);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'User-Agent': `s3-folder-uploader/${VERSION}`,
    'Idempotency-Key': idempotencyKey(arrival),
  };
  if (parsed.username !== '' || parsed.password !== '') {
    const credentials = `${decoded(parsed.username)}:${decoded(parsed.password)}`;
    headers.Authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
    parsed.username = '';
    parsed.password = '';
  }
  const target = parsed.href;
  return {
    target,
    shown,
    secretForms: [...new Set([url, new URL(url).href, target])].filter((form) => form !== shown),
    headers,
    body: JSON.stringify(arrivalDocument(arrival)),
  };
}

function decoded(component: string): string {
  try {
    return decodeURIComponent(component);
  } catch {
    return component;
  }
}

/** Waits, and says whether the wait ran to its end (false: the signal aborted it). */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/** Lets the connection go back to the pool without reading an answer nobody needs. */
async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // The connection is closed instead: nothing more to do.
  }
}

/** The start of the answer's body on one line, at most EXCERPT_CHARS characters. */
async function bodyExcerpt(response: Response): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    while (bytes < EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.byteLength;
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const line = text.replace(/[\s\p{Cc}]+/gu, ' ').trim();
  const characters = Array.from(line);
  return characters.length > EXCERPT_CHARS ? `${characters.slice(0, EXCERPT_CHARS).join('')}…` : line;
}

/** Where a redirect pointed, relative to the request, as logs may show it. */
function redactedLocation(location: string, target: string): string {
  try {
    return redactNotifyUrl(new URL(location, target).href);
  } catch {
    return 'an address that is not a URL';
  }
}

/**
 * fetch fails with "fetch failed"; what happened is in its cause: a system error's code and
 * message (ECONNREFUSED...), or those of the first of several tried (one per address).
 */
function networkErrorText(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  const first = cause instanceof AggregateError && cause.errors[0] instanceof Error ? cause.errors[0] : cause;
  if (!(first instanceof Error)) return String(first);
  const code = (first as { code?: unknown }).code;
  const message = first.message !== '' ? first.message : first.name;
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message;
}

/** The text with every form of the URL that holds a secret replaced by its redacted form. */
function scrubbed(text: string, request: Post): string {
  return request.secretForms.reduce((result, form) => result.replaceAll(form, request.shown), text);
}

/**
 * Retry-After in seconds (or as an HTTP date), capped at `capMs`; null when absent or unreadable,
 * and the usual backoff applies.
 */
function retryAfterMs(value: string | null, now: EpochMs, capMs: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(capMs, Number(text) * 1000);
  const date = Date.parse(text);
  return Number.isNaN(date) ? null : Math.min(capMs, Math.max(0, date - now));
}
