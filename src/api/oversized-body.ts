// What happens to the rest of a body refused as too large.
//
// Fastify answers 413 as soon as a body passes the limit, with `Connection: close`, and Node then
// closes the socket while the client is still sending: the client's next write fails (EPIPE,
// "other side closed") and Node's fetch reports that instead of the 413 it was sent. So the
// answer keeps the connection open and the rest of the body is read and thrown away, up to a
// bound in bytes and in time: past it the socket is closed, and a client still sending then may
// see the connection reset rather than the answer.
import type { FastifyReply, FastifyRequest } from 'fastify';

/** How much of a refused body is read and discarded before the connection is closed. */
export const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024;
/** How long a client may take to finish sending a refused body. */
export const DISCARD_LIMIT_MS = 5_000;

/** Lets the client finish sending (within the bounds) so that it can read the 413 it is sent. */
export function discardRestOfBody({ raw: request, log }: FastifyRequest, reply: FastifyReply): void {
  if (request.complete) return; // all of it was read: Fastify's `Connection: close` can stay
  reply.removeHeader('connection');
  let discarded = 0;
  const close = (): void => {
    request.removeListener('data', count);
    log.info(
      { discardedBytes: discarded, limitBytes: DISCARD_LIMIT_BYTES, limitMs: DISCARD_LIMIT_MS },
      'closing the connection: the client went on sending a refused body past the bound',
    );
    request.socket?.destroy();
  };
  const count = (chunk: Buffer): void => {
    discarded += chunk.length;
    if (discarded > DISCARD_LIMIT_BYTES) close();
  };
  const timer = setTimeout(close, DISCARD_LIMIT_MS).unref();
  request.on('data', count);
  const done = (): void => clearTimeout(timer);
  request.once('end', done);
  request.once('close', done);
  request.resume();
}
