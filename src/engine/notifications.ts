// Sends the pending notification of each upload's latest arrival, one delivery per upload at a
// time. Pending notifications are in the database with their attempts: at each heartbeat's pass
// (the first at start-up), this instance takes those it holds and those of instances that are gone.
import type { Upload } from '../domain/model.js';
import type { Logger } from '../logger.js';
import type { Store } from '../store/store.js';
import type { NotificationSender } from '../arrival/notification.js';
import { arrivalEvent } from './arrivals.js';

export interface NotificationsOptions {
  store: Store;
  sender: Pick<NotificationSender, 'deliver'>;
  logger: Logger;
}

interface Delivering {
  arrivalAt: number;
  abort: AbortController;
}

export class Notifications {
  private readonly delivering = new Map<string, Delivering>();
  private stopped = false;

  constructor(private readonly options: NotificationsOptions) {}

  /** Stops every delivery where it is: what is left is pending in the database. */
  stop(): void {
    this.stopped = true;
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

  /**
   * Sends the pending notifications this instance holds, and those of instances that are gone,
   * taken over (see Store.takeNotifications). A failure to read them is the caller's to report.
   */
  async takeOver(): Promise<void> {
    if (this.stopped) return;
    for (const upload of await this.options.store.takeNotifications()) this.deliver(upload);
  }
}
