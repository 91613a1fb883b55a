// The settings a user may change while the service runs. What they steer lives below (the
// transfer's shared bandwidth limit); the API reaches it through here, as it reaches everything.
import { TokenBucket } from '../transfer/token-bucket.js';

/** The settings that can change at run time, in domain words. */
export interface RuntimeSettings {
  /** Bytes per second all uploads may send together; 0: no limit. */
  maxUploadBytesPerSecond: number;
}

export class SettingsService {
  /** `bandwidth`: the process's one limit, the one the S3 client sends every body through. */
  constructor(private readonly bandwidth: TokenBucket) {}

  /** A service whose limit steers nothing but itself: for an app built without a transfer layer (tests). */
  static detached(): SettingsService {
    return new SettingsService(new TokenBucket(0));
  }

  current(): RuntimeSettings {
    return { maxUploadBytesPerSecond: this.bandwidth.bytesPerSecond };
  }

  /** Applies the fields given at once; returns the settings before the change. */
  update(change: Partial<RuntimeSettings>): RuntimeSettings {
    const previous = this.current();
    const limit = change.maxUploadBytesPerSecond;
    if (limit !== undefined && limit !== previous.maxUploadBytesPerSecond) {
      this.bandwidth.setBytesPerSecond(limit);
    }
    return previous;
  }
}
