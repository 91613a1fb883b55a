// MAX_UPLOAD_BYTES_PER_SECOND on the wire: every request body goes out in slices taken from the
// process's one token bucket. It is applied innermost in the S3 client, after the SDK has signed the
// request and computed its checksums from the body as given: a Buffer sent as a stream here is
// never framed aws-chunked, and its Content-Length is already set. Each attempt (a retry too) is a
// new request, so it is throttled again. With no limit, the request is left exactly as it was.
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { SLICE_BYTES, sliceBytesAt, type TokenBucket } from './token-bucket.js';

/** A request body that yields its bytes a slice at a time, as the bucket allows. */
export class ThrottledBody extends Readable {
  private readonly stopper = new AbortController();
  private readonly slices: AsyncIterator<Uint8Array>;

  constructor(
    source: Uint8Array | Readable,
    private readonly bucket: TokenBucket,
  ) {
    super({ highWaterMark: SLICE_BYTES });
    this.slices = slicesOf(source, () => sliceBytesAt(bucket.bytesPerSecond));
    // A piped body cannot fail its request: whoever gave a stream body aborts the request and says
    // why (PartStream.failure()); this stream only stops.
    this.on('error', () => undefined);
  }

  override _read(): void {
    this.pump().catch((error: unknown) =>
      this.destroy(error instanceof Error ? error : new Error(String(error))),
    );
  }

  private async pump(): Promise<void> {
    const next = await this.slices.next();
    if (next.done) {
      this.push(null);
      return;
    }
    await this.bucket.take(next.value.length, this.stopper.signal);
    if (!this.destroyed) this.push(next.value);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.stopper.abort(error ?? new Error('request body stopped'));
    callback(error);
  }
}

async function* slicesOf(
  source: Uint8Array | Readable,
  sliceBytes: () => number,
): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    // The Buffer is held until the request is over: its slices need no copy.
    for (let offset = 0; offset < source.length;) {
      const slice = source.subarray(offset, offset + sliceBytes());
      offset += slice.length;
      yield slice;
    }
    return;
  }
  // A part read in pieces reuses its buffers once the request has taken the next piece: each slice
  // is copied, so that bytes waiting here are never overwritten. The source is closed by its owner.
  for await (const chunk of source.iterator({ destroyOnReturn: false })) {
    const bytes = chunk as Uint8Array;
    for (let offset = 0; offset < bytes.length;) {
      const slice = Buffer.from(bytes.subarray(offset, offset + sliceBytes()));
      offset += slice.length;
      yield slice;
    }
  }
}

interface HttpRequestLike {
  body?: unknown;
}

/**
 * Sends every request body of `client` through `bucket` while it has a limit. The body is let go
 * once the request is over, whatever its end: an answer, an abort, a timeout or a reset.
 */
export function throttleRequestBodies(client: S3Client, bucket: TokenBucket): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as HttpRequestLike | undefined;
      const body = request?.body;
      const throttled = bucket.bytesPerSecond > 0 && (body instanceof Uint8Array || body instanceof Readable);
      if (!throttled || request === undefined || (body instanceof Uint8Array && body.length === 0)) {
        return next(args);
      }
      const wrapped = new ThrottledBody(body, bucket);
      request.body = wrapped;
      try {
        return await next(args);
      } finally {
        if (!wrapped.readableEnded) wrapped.destroy();
      }
    },
    { step: 'deserialize', priority: 'low', name: 'uploadBandwidthLimit' },
  );
}
