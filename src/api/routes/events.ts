// GET /events: the service's events as Server-Sent Events (docs/events.md). The reply is taken over
// from Fastify (hijack) and written to the socket as events happen, through the EventStream; the
// token check, the query's validation and the error replies happen before, as for every route.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EVENT_TYPES, eventStreamDescription } from '../event-catalogue.js';
import { HEARTBEAT_FRAME, type EventStream } from '../event-stream.js';
import { EventsQuery } from '../schemas.js';

export interface EventRoutesOptions {
  stream: EventStream;
  /** What the document says of the stream: its batches, its heartbeat, how much may wait for a client. */
  flushMs: number;
  heartbeatMs: number;
  maxQueuedEvents: number;
  maxQueuedBytes: number;
}

const HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  // Neither a cache nor a buffering proxy (nginx reads X-Accel-Buffering) may hold events back.
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

/** Three frames as the stream sends them, for the document. */
function exampleFrames(): string {
  const example = (id: number, type: 'upload.created' | 'file.started' | 'file.completed'): string => {
    const data = EVENT_TYPES[type].example;
    return `id: ${id}\nevent: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
  };
  return (
    example(41, 'upload.created') +
    example(42, 'file.started') +
    HEARTBEAT_FRAME +
    example(57, 'file.completed')
  );
}

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, options) => {
  const { stream } = options;
  app.addHook('preClose', (done) => {
    // Open streams would keep the server from closing: they end first.
    stream.close();
    done();
  });

  app.get(
    '/events',
    {
      schema: {
        operationId: 'streamEvents',
        tags: ['events'],
        summary: 'Follow what happens, live (Server-Sent Events)',
        description: eventStreamDescription({
          flushSeconds: options.flushMs / 1000,
          heartbeatSeconds: options.heartbeatMs / 1000,
          maxQueuedEvents: options.maxQueuedEvents,
          maxQueuedBytes: options.maxQueuedBytes,
        }),
        querystring: EventsQuery,
        response: {
          200: {
            description:
              'The stream, open until the client leaves, is dropped for not reading, or the service stops. The headers come at once: a client is subscribed when it has them.',
            content: {
              'text/event-stream': { schema: { type: 'string' }, example: exampleFrames() },
            },
          },
        },
      },
    },
    async (request, reply) => {
      reply.hijack();
      const response = reply.raw;
      response.writeHead(200, HEADERS);
      if (request.method === 'HEAD') {
        response.end();
        return;
      }
      response.flushHeaders();
      const uploadId = request.query.upload_id;
      const client = `${request.socket.remoteAddress}:${request.socket.remotePort}`;
      stream.add(response, {
        uploadId,
        dropped: ({ events, bytes }) =>
          request.log.warn(
            { client, uploadId, queuedEvents: events, queuedBytes: bytes },
            'event stream client dropped: it stopped reading, and its queue is full',
          ),
      });
      request.log.debug({ client, uploadId }, 'event stream client connected');
    },
  );
};
