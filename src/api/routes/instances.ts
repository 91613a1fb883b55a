import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@fastify/type-provider-typebox';
import type { UploadService } from '../../service/upload-service.js';
import { instanceReply } from '../representation.js';
import { InstanceReply, ref } from '../schemas.js';

export interface InstanceRoutesOptions {
  service: UploadService;
}

export const instanceRoutes: FastifyPluginAsyncTypebox<InstanceRoutesOptions> = async (app, { service }) => {
  app.get(
    '/instances',
    {
      schema: {
        operationId: 'listInstances',
        tags: ['instances'],
        summary: 'List the running instances and what each uploads',
        description:
          'Every live instance of the service that shares this database, in order of start: on SQLite this one; on PostgreSQL every instance whose last heartbeat is within its lease, whichever instance answers. Each says what it is uploading now.',
        response: {
          200: Type.Array(ref(InstanceReply), { description: 'The live instances, in order of start.' }),
        },
      },
    },
    async () => (await service.listInstances()).map(instanceReply),
  );
};
