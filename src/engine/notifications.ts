// Sends the pending notification of each upload's latest arrival, one delivery per upload at a
// time. Pending notifications are in the database with their attempts: at start-up, and then now
// and again, this instance takes those it holds and those of instances that are gone.
import type { Upload } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { NotificationSender } from '../arrival/notification.js';
import { arrivalEvent } from './arrivals.js';

/** How often pending notifications left by instances that are gone are looked for. */
export const TAKE_OVER_INTERVAL_MS = 30_000;

export interface NotificationsOptions {
  store: Store;
  sender: Pick<NotificationSender, 'deliver'>;
  logger: Logger;
  takeOverIntervalMs?: number;
}

interface Delivering {
  arrivalAt: number;
  abort: AbortController;
}

export class Notifications {
  private readonly delivering = new Map<string, Delivering>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly options: NotificationsOptions) {}

  /** Sends what is pending now, then looks again at every interval. */
  start(): void {
    void this.takeOver();
    this.timer = setInterval(
      () => void this.takeOver(),
      this.options.takeOverIntervalMs ?? TAKE_OVER_INTERVAL_MS,
    );
    this.timer.unref();
  }

  /** Stops every delivery where it is: what is left is pending in the database. */
  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const delivery of this.delivering.values()) delivery.abort.abort();
    this.delivering.clear();
  }

  /** Sends the upload's pending notification, unless it is being sent; a newer arrival replaces an older one's. */
  deliver(upload: Upload): void {
    const { notification, notifyUrl, arrival, uploadId } = upload;
    if (this.stopped || notification?.status !== 'pending' || notifyUrl === null || arrival === null) return;
    if (notification.arrivalAt !== arrival.at) return;
    const current = this.delivering.get(uploadId);
    if (current?.arrivalAt === arrival.at) return;
    current?.abort.abort();
    const delivering: Delivering = { arrivalAt: arrival.at, abort: new AbortController() };
    this.delivering.set(uploadId, delivering);
    const { store, sender, logger } = this.options;
    sender
      .deliver({
        arrival: arrivalEvent(upload, arrival),
        url: notifyUrl,
        attemptsSoFar: notification.attempts,
        record: (outcome) => store.recordNotification(uploadId, arrival.at, outcome),
        signal: delivering.abort.signal,
      })
      .catch((error: unknown) =>
        logger.error(
          { err: error, uploadId },
          'cannot record how the notification went; it is sent again at the next start',
        ),
      )
      .finally(() => {
        if (this.delivering.get(uploadId) === delivering) this.delivering.delete(uploadId);
      });
  }

  private async takeOver(): Promise<void> {
    if (this.stopped) return;
    try {
      for (const upload of await this.options.store.takeNotifications()) this.deliver(upload);
    } catch (error) {
      this.options.logger.error(
        { err: error },
        'cannot read the pending notifications; looking again in a while',
      );
    }
  }
}
