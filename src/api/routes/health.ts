import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { UploadService } from '../../engine/upload-service.js';
import { errorReplies, HealthReply } from '../schemas.js';

export interface HealthRoutesOptions {
  service: UploadService;
  version: string;
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (
  app,
  { service, version },
) => {
  app.get(
    '/',
    {
      schema: {
        tags: ['health'],
        summary: 'Health of the service',
        description:
          'Answers 200 when the service and its database work, 503 (`degraded`) when the database cannot be reached. `s3` says whether S3 answers; an S3 outage does not make the service unhealthy (it waits the outage out).',
        response: { 200: HealthReply, 503: HealthReply, ...errorReplies() },
      },
    },
    async (_request, reply) => {
      const { databaseReachable, s3 } = await service.health();
      return reply.status(databaseReachable ? 200 : 503).send({
        status: databaseReachable ? 'ok' : 'degraded',
        version,
        database: databaseReachable ? 'reachable' : 'unreachable',
        s3: { status: s3.status, since: new Date(s3.since).toISOString(), last_error: s3.lastError },
      });
    },
  );
};
